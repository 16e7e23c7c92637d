/**
 * A Web stream that turns messages into length-prefixed frames.
 *
 * @module
 */

import { encodeFrame, type EncodeFrameOptions } from "./encode_frame.ts";

/**
 * A `TransformStream` from messages to frames: each chunk written becomes one
 * frame, as {@linkcode encodeFrame} builds it.
 *
 * @example Encoding two messages
 * ```ts
 * import { FrameEncoderStream } from "./frame_encoder_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const frames = ReadableStream.from([new Uint8Array([7]), new Uint8Array([])])
 *   .pipeThrough(new FrameEncoderStream());
 * assert.deepEqual(
 *   (await Array.fromAsync(frames)).map((frame) => [...frame]),
 *   [[0, 0, 0, 1, 7], [0, 0, 0, 0]],
 * );
 * ```
 */
export class FrameEncoderStream extends TransformStream<Uint8Array, Uint8Array> {
  /**
   * @param options The cap on a payload's size.
   * @throws {FrameTooLargeError} (through the stream) For a message over the cap.
   */
  constructor(options: EncodeFrameOptions = {}) {
    super({
      transform(payload, controller) {
        controller.enqueue(encodeFrame(payload, options));
      },
    });
  }
}
