/**
 * The error every framing reader throws when a message grows past its cap.
 *
 * @module
 */

/**
 * Thrown when a line or frame is longer than the reader allows.
 *
 * A server must never buffer without limit on behalf of a peer: a peer that
 * sends one endless line would otherwise eat all its memory. So every framing
 * reader in lib/ takes a cap, and past it throws this error instead of reading
 * on. `limit` is the cap; `size` is how long the message was known to be when
 * the reader gave up (for a length prefix, the length it announced; for a
 * line, the bytes seen so far, which is already more than `limit`).
 *
 * @example Reporting the cap
 * ```ts
 * import { FrameTooLargeError } from "./frame_too_large_error.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new FrameTooLargeError(1024, 4096);
 * assert.equal(error.message, "message of 4096 bytes exceeds the limit of 1024 bytes");
 * ```
 */
export class FrameTooLargeError extends Error {
  /** The largest message the reader accepts, in bytes. */
  readonly limit: number;
  /** How large the message was known to be when the reader gave up. */
  readonly size: number;

  /**
   * @param limit The cap, in bytes.
   * @param size How large the message was known to be.
   */
  constructor(limit: number, size: number) {
    super(`message of ${size} bytes exceeds the limit of ${limit} bytes`);
    this.name = "FrameTooLargeError";
    this.limit = limit;
    this.size = size;
  }
}
