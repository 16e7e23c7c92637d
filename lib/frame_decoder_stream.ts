/**
 * A Web stream that turns a byte stream back into length-prefixed messages.
 *
 * @module
 */

import { concat } from "./_bytes.ts";
import { decodeFrame, type DecodeFrameOptions } from "./decode_frame.ts";
import { UnexpectedEofError } from "./unexpected_eof_error.ts";
import { orderedTransform } from "./_ordered_transform.ts";

/**
 * A transform stream (a `readable`/`writable` pair for `pipeThrough`) from
 * bytes, in chunks of any size, to the payloads of the frames they carry.
 *
 * A header that announces more than `maxFrameSize` errors the stream with
 * {@linkcode FrameTooLargeError} at once, before any of that payload is
 * buffered. A stream that ends inside a frame errors with
 * {@linkcode UnexpectedEofError}. Either way, every whole frame before the
 * failure is delivered first.
 *
 * @example Frames split across chunks at awkward places
 * ```ts
 * import { FrameDecoderStream } from "./frame_decoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const chunks = [[0, 0], [0, 2, 104], [105, 0, 0, 0, 1, 33]].map((c) => new Uint8Array(c));
 * const messages = ReadableStream.from(chunks)
 *   .pipeThrough(new FrameDecoderStream())
 *   .pipeThrough(new TextDecoderStream());
 * assert.deepEqual(await Array.fromAsync(messages), ["hi", "!"]);
 * ```
 */
export class FrameDecoderStream implements TransformStream<Uint8Array, Uint8Array> {
  /** The payloads. */
  readonly readable: ReadableStream<Uint8Array<ArrayBuffer>>;
  /** Where the bytes go in. */
  readonly writable: WritableStream<Uint8Array>;

  /**
   * @param options The cap on a payload's size.
   */
  constructor(options: DecodeFrameOptions = {}) {
    // Bytes received but not yet part of a whole frame.
    let pending: Uint8Array<ArrayBuffer> = new Uint8Array(0);
    const { readable, writable } = orderedTransform<Uint8Array, Uint8Array<ArrayBuffer>>({
      transform(chunk, enqueue) {
        const data = concat(pending, chunk);
        let offset = 0;
        for (
          let frame = decodeFrame(data, options);
          frame !== null;
          frame = decodeFrame(data.subarray(offset), options)
        ) {
          enqueue(frame.payload.slice());
          offset += frame.byteLength;
        }
        pending = data.slice(offset);
      },
      flush() {
        if (pending.length === 0) return;
        const announced = pending.length >= 4
          ? new DataView(pending.buffer, pending.byteOffset).getUint32(0, false) + 4
          : 4;
        throw new UnexpectedEofError(announced, pending);
      },
    });
    this.readable = readable;
    this.writable = writable;
  }
}
