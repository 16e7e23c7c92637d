/**
 * Write every byte of a buffer, however many writes that takes.
 *
 * @module
 */

/** Anything with a `write()` like {@linkcode Deno.Conn}'s: writes some prefix of `data`, returns its length. */
export interface Writer {
  /** Write some or all of `data`; returns how many bytes were written. */
  write(data: Uint8Array): Promise<number>;
}

/**
 * Write all of `data` to `writer`.
 *
 * A socket's `write()` may take only part of a buffer (the kernel's send
 * buffer is full) and return how much it took. The rest is the caller's job:
 * this is C's `sendall()` loop, for any writer.
 *
 * @param writer Where to write, such as a {@linkcode Deno.Conn}.
 * @param data The bytes to write.
 * @returns Once every byte has been handed to the writer.
 * @throws {Error} Whatever the writer throws (a reset connection, say).
 *
 * @example A writer that takes at most three bytes at a time
 * ```ts
 * import { writeAll } from "./write_all.ts";
 * import assert from "node:assert/strict";
 *
 * const written: number[] = [];
 * const writer = {
 *   async write(data: Uint8Array) {
 *     const n = Math.min(3, data.length);
 *     written.push(...data.subarray(0, n));
 *     return n;
 *   },
 * };
 * await writeAll(writer, new Uint8Array([1, 2, 3, 4, 5, 6, 7]));
 * assert.deepEqual(written, [1, 2, 3, 4, 5, 6, 7]);
 * ```
 */
export async function writeAll(writer: Writer, data: Uint8Array): Promise<void> {
  let offset = 0;
  while (offset < data.length) {
    offset += await writer.write(data.subarray(offset));
  }
}
