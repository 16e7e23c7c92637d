/**
 * Decode one length-prefixed frame from the front of a buffer.
 *
 * @module
 */

import { FrameTooLargeError } from "./frame_too_large_error.ts";
import { checkMaxFrameSize, DEFAULT_MAX_FRAME_SIZE, HEADER_SIZE } from "./_length_prefix.ts";

/** Options for {@linkcode decodeFrame}. */
export interface DecodeFrameOptions {
  /**
   * The largest payload accepted, in bytes. A header announcing more is an
   * error at once, before any of the payload is waited for.
   *
   * @default {1048576}
   */
  maxFrameSize?: number;
}

/** A frame found by {@linkcode decodeFrame}. */
export interface DecodedFrame {
  /** The payload (a view into the input buffer). */
  payload: Uint8Array;
  /** How many bytes of the input the frame took, header included. */
  byteLength: number;
}

/**
 * Decode the frame at the start of `buffer`, if all of it is there.
 *
 * This is the building block for reading frames from bytes that arrive in
 * pieces: append what arrives, call this, and when it returns `null`, wait for
 * more bytes. When it returns a frame, drop `byteLength` bytes and call again.
 *
 * @param buffer Bytes received so far.
 * @param options The cap on a payload's size.
 * @returns The first frame, or `null` if `buffer` does not hold a whole one yet.
 * @throws {FrameTooLargeError} If the header announces more than `maxFrameSize`.
 *
 * @example Two frames, then half of a third
 * ```ts
 * import { decodeFrame } from "./decode_frame.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = new Uint8Array([0, 0, 0, 1, 65, 0, 0, 0, 0, 0, 0, 0, 9, 66]);
 * const first = decodeFrame(bytes)!;
 * assert.deepEqual([...first.payload], [65]);
 * const second = decodeFrame(bytes.subarray(first.byteLength))!;
 * assert.equal(second.payload.length, 0);
 * assert.equal(decodeFrame(bytes.subarray(first.byteLength + second.byteLength)), null);
 * ```
 */
export function decodeFrame(
  buffer: Uint8Array,
  options: DecodeFrameOptions = {},
): DecodedFrame | null {
  const { maxFrameSize = DEFAULT_MAX_FRAME_SIZE } = options;
  checkMaxFrameSize(maxFrameSize);
  if (buffer.length < HEADER_SIZE) return null;
  const size = new DataView(buffer.buffer, buffer.byteOffset, HEADER_SIZE).getUint32(0, false);
  if (size > maxFrameSize) throw new FrameTooLargeError(maxFrameSize, size);
  if (buffer.length < HEADER_SIZE + size) return null;
  return {
    payload: buffer.subarray(HEADER_SIZE, HEADER_SIZE + size),
    byteLength: HEADER_SIZE + size,
  };
}
