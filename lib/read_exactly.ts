/**
 * Read exactly `n` bytes from a connection, however many reads that takes.
 *
 * @module
 */

import { UnexpectedEofError } from "./unexpected_eof_error.ts";

/** Anything with a `read()` like {@linkcode Deno.Conn}'s: fills `buffer`, returns the count, or `null` at the end. */
export interface Reader {
  /** Read up to `buffer.length` bytes into `buffer`; `null` means the stream has ended. */
  read(buffer: Uint8Array): Promise<number | null>;
}

/** Options for {@linkcode readExactly}. */
export interface ReadExactlyOptions {
  /**
   * Called after every `read()` with the bytes received so far and the total
   * wanted: a progress bar, or a lesson that counts the reads.
   *
   * @default {undefined}
   */
  onProgress?: (received: number, total: number) => void;
}

/**
 * Read exactly `n` bytes from `reader`.
 *
 * TCP is a stream of bytes, not of messages: one `read()` returns whatever has
 * arrived so far, which may be part of a message or the end of one and the
 * start of the next. So this loops until all `n` bytes are in, and never asks
 * for more than `n`, leaving the next message's bytes in the socket.
 *
 * @param reader Where to read from, such as a {@linkcode Deno.Conn}.
 * @param n How many bytes to read.
 * @param options Optional progress callback.
 * @returns A new `Uint8Array` of length `n`.
 * @throws {UnexpectedEofError} If the stream ends first; it carries the bytes that did arrive.
 * @throws {RangeError} If `n` is not a non-negative safe integer.
 *
 * @example Three reads for one six-byte message
 * ```ts
 * import { readExactly } from "./read_exactly.ts";
 * import assert from "node:assert/strict";
 *
 * const chunks = [[1, 2], [3, 4, 5], [6, 7]].map((c) => new Uint8Array(c));
 * const reader = {
 *   async read(buffer: Uint8Array) {
 *     const chunk = chunks.shift();
 *     if (!chunk) return null;
 *     const n = Math.min(buffer.length, chunk.length);
 *     buffer.set(chunk.subarray(0, n));
 *     if (n < chunk.length) chunks.unshift(chunk.subarray(n));
 *     return n;
 *   },
 * };
 * assert.deepEqual(await readExactly(reader, 6), new Uint8Array([1, 2, 3, 4, 5, 6]));
 * assert.deepEqual(await readExactly(reader, 1), new Uint8Array([7]));
 * ```
 */
export async function readExactly(
  reader: Reader,
  n: number,
  options: ReadExactlyOptions = {},
): Promise<Uint8Array<ArrayBuffer>> {
  if (!Number.isSafeInteger(n) || n < 0) {
    throw new RangeError(`cannot read ${n} bytes: the count must be a whole number >= 0`);
  }
  const { onProgress } = options;
  const buffer = new Uint8Array(n);
  let received = 0;
  while (received < n) {
    const count = await reader.read(buffer.subarray(received));
    if (count === null) throw new UnexpectedEofError(n, buffer.slice(0, received));
    received += count;
    onProgress?.(received, n);
  }
  return buffer;
}
