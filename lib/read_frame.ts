/**
 * Read one length-prefixed frame from a connection.
 *
 * @module
 */

import { type Reader, readExactly } from "./read_exactly.ts";
import { concat } from "./_bytes.ts";
import { FrameTooLargeError } from "./frame_too_large_error.ts";
import { UnexpectedEofError } from "./unexpected_eof_error.ts";
import { checkMaxFrameSize, DEFAULT_MAX_FRAME_SIZE, HEADER_SIZE } from "./_length_prefix.ts";

/** Options for {@linkcode readFrame}. */
export interface ReadFrameOptions {
  /**
   * The largest payload accepted, in bytes; checked before the payload is read.
   *
   * @default {1048576}
   */
  maxFrameSize?: number;
}

/**
 * Read the next frame (a u32 big-endian length, then that many bytes) from
 * `reader`.
 *
 * @param reader Where to read from, such as a {@linkcode Deno.Conn}.
 * @param options The cap on a payload's size.
 * @returns The payload, or `null` if the stream ended cleanly before a new frame began.
 * @throws {FrameTooLargeError} If the header announces more than `maxFrameSize`.
 * @throws {UnexpectedEofError} If the stream ends inside a frame.
 *
 * @example Reading frames until the end
 * ```ts
 * import { readFrame } from "./read_frame.ts";
 * import { encodeFrame } from "./encode_frame.ts";
 * import assert from "node:assert/strict";
 *
 * const wire = new Blob([encodeFrame(new Uint8Array([1])), encodeFrame(new Uint8Array([2, 3]))]);
 * const reader = wire.stream().getReader({ mode: "byob" });
 * const conn = {
 *   async read(buffer: Uint8Array) {
 *     const { value, done } = await reader.read(new Uint8Array(buffer.length));
 *     if (done) return null;
 *     buffer.set(value);
 *     return value.length;
 *   },
 * };
 * assert.deepEqual(await readFrame(conn), new Uint8Array([1]));
 * assert.deepEqual(await readFrame(conn), new Uint8Array([2, 3]));
 * assert.equal(await readFrame(conn), null);
 * ```
 */
export async function readFrame(
  reader: Reader,
  options: ReadFrameOptions = {},
): Promise<Uint8Array<ArrayBuffer> | null> {
  const { maxFrameSize = DEFAULT_MAX_FRAME_SIZE } = options;
  checkMaxFrameSize(maxFrameSize);
  // The header, read by hand so that an end before its first byte is a clean
  // end, and an end inside it is an error.
  const header = new Uint8Array(HEADER_SIZE);
  let received = 0;
  while (received < HEADER_SIZE) {
    const count = await reader.read(header.subarray(received));
    if (count === null) {
      if (received === 0) return null;
      throw new UnexpectedEofError(HEADER_SIZE, header.slice(0, received));
    }
    received += count;
  }
  const size = new DataView(header.buffer).getUint32(0, false);
  if (size > maxFrameSize) throw new FrameTooLargeError(maxFrameSize, size);
  try {
    return await readExactly(reader, size);
  } catch (error) {
    if (!(error instanceof UnexpectedEofError)) throw error;
    throw new UnexpectedEofError(HEADER_SIZE + size, concat(header, error.partial));
  }
}
