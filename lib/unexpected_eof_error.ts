/**
 * The error a framing reader throws when the peer closes the connection in the
 * middle of a message: fewer bytes arrived than the message needed.
 *
 * @module
 */

/**
 * Thrown when a stream ends before a whole message has arrived.
 *
 * `expected` is how many bytes the message needed, `received` how many did
 * arrive, and `partial` holds exactly those bytes, so a caller can log or
 * resume from them.
 *
 * @example Catching a short read
 * ```ts
 * import { UnexpectedEofError } from "./unexpected_eof_error.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new UnexpectedEofError(10, new Uint8Array([1, 2, 3]));
 * assert.equal(error.received, 3);
 * assert.equal(error.message, "connection closed after 3 of 10 bytes");
 * ```
 */
export class UnexpectedEofError extends Error {
  /** How many bytes the message needed. */
  readonly expected: number;
  /** How many bytes arrived before the end of the stream. */
  readonly received: number;
  /** The bytes that did arrive. */
  readonly partial: Uint8Array;

  /**
   * @param expected How many bytes the message needed.
   * @param partial The bytes that arrived before the stream ended.
   * @param message What was cut short, when "after N of M bytes" would not say it well.
   */
  constructor(expected: number, partial: Uint8Array, message?: string) {
    super(message ?? `connection closed after ${partial.length} of ${expected} bytes`);
    this.name = "UnexpectedEofError";
    this.expected = expected;
    this.received = partial.length;
    this.partial = partial;
  }
}
