/**
 * Encode one length-prefixed frame.
 *
 * @module
 */

import { FrameTooLargeError } from "./frame_too_large_error.ts";
import { checkMaxFrameSize, DEFAULT_MAX_FRAME_SIZE, HEADER_SIZE } from "./_length_prefix.ts";

/** Options for {@linkcode encodeFrame}. */
export interface EncodeFrameOptions {
  /**
   * The largest payload to send, in bytes: the receiver's cap, so an oversized
   * message fails here rather than at the peer.
   *
   * @default {1048576}
   */
  maxFrameSize?: number;
}

/**
 * Encode `payload` as a frame: its length as a 4-byte unsigned big-endian
 * integer (network byte order), then the payload itself.
 *
 * A length prefix lets a binary protocol carry any bytes, delimiters
 * included, with no escaping: the reader knows how many bytes to wait for
 * before it has them.
 *
 * @param payload The message.
 * @param options The cap on the payload's size.
 * @returns A new buffer of `4 + payload.length` bytes.
 * @throws {FrameTooLargeError} If the payload is larger than `maxFrameSize`.
 *
 * @example The bytes on the wire
 * ```ts
 * import { encodeFrame } from "./encode_frame.ts";
 * import assert from "node:assert/strict";
 *
 * const frame = encodeFrame(new TextEncoder().encode("hi"));
 * assert.deepEqual([...frame], [0, 0, 0, 2, 0x68, 0x69]);
 * ```
 */
export function encodeFrame(
  payload: Uint8Array,
  options: EncodeFrameOptions = {},
): Uint8Array<ArrayBuffer> {
  const { maxFrameSize = DEFAULT_MAX_FRAME_SIZE } = options;
  checkMaxFrameSize(maxFrameSize);
  if (payload.length > maxFrameSize) throw new FrameTooLargeError(maxFrameSize, payload.length);
  const frame = new Uint8Array(HEADER_SIZE + payload.length);
  new DataView(frame.buffer).setUint32(0, payload.length, false);
  frame.set(payload, HEADER_SIZE);
  return frame;
}
