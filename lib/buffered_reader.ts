/**
 * Read lines and exact byte counts from one connection, in any mix.
 *
 * @module
 */

import { concat } from "./_bytes.ts";
import type { Reader } from "./read_exactly.ts";
import { FrameTooLargeError } from "./frame_too_large_error.ts";
import { UnexpectedEofError } from "./unexpected_eof_error.ts";

/** Options for {@linkcode BufferedReader}. */
export interface BufferedReaderOptions {
  /**
   * How many bytes to ask the underlying reader for at a time.
   *
   * @default {16384}
   */
  bufferSize?: number;
}

/** Options for {@linkcode BufferedReader.prototype.readLine}. */
export interface ReadLineOptions {
  /**
   * The longest line accepted, in bytes, not counting its line ending. A
   * longer one throws {@linkcode FrameTooLargeError} as soon as it is known
   * to be too long; the bytes read so far are consumed.
   *
   * @default {8192}
   */
  maxLength?: number;
}

/**
 * A reader that keeps what it read ahead, so a protocol can switch between
 * lines and byte counts on one connection: HTTP reads a request line and
 * headers line by line, then exactly `Content-Length` bytes of body; SMTP and
 * FTP read command lines, then data.
 *
 * Reading a line means reading past its end (a `read()` returns what has
 * arrived, which may include the next line or the body). Those bytes stay
 * here, and the next `readLine()`, `readExactly()` or `read()` starts with
 * them. So once a connection has a `BufferedReader`, read it only through
 * that reader.
 *
 * Lines end with LF; a CR just before the LF is removed too, so CRLF and bare
 * LF lines read alike. A bare CR is kept in the line (a strict protocol can
 * refuse it: `line.includes(13)`).
 *
 * @example A header line, then a body of known length
 * ```ts
 * import { BufferedReader } from "./buffered_reader.ts";
 * import assert from "node:assert/strict";
 *
 * const wire = new TextEncoder().encode("Content-Length: 5\r\n\r\nhelloNEXT");
 * const source = ReadableStream.from([wire]).getReader();
 * const conn = { // one read() may return everything at once, as a socket can
 *   async read(buffer: Uint8Array) {
 *     const { value, done } = await source.read();
 *     if (done) return null;
 *     buffer.set(value);
 *     return value.length;
 *   },
 * };
 * const reader = new BufferedReader(conn, { bufferSize: 64 });
 * const decode = (bytes: Uint8Array | null) => new TextDecoder().decode(bytes!);
 * assert.equal(decode(await reader.readLine()), "Content-Length: 5");
 * assert.equal(decode(await reader.readLine()), "");
 * assert.equal(decode(await reader.readExactly(5)), "hello");
 * assert.equal(reader.buffered, 4); // "NEXT" waits for whoever reads next
 * ```
 */
export class BufferedReader implements Reader {
  #source: Reader;
  #chunk: Uint8Array;
  // Bytes read from the source but not yet handed out: #pending[#start..].
  #pending: Uint8Array<ArrayBuffer> = new Uint8Array(0);
  #start = 0;
  #eof = false;

  /**
   * @param source The connection (or any reader) to read from.
   * @param options How much to read at a time.
   * @throws {RangeError} If `bufferSize` is not a positive whole number.
   */
  constructor(source: Reader, options: BufferedReaderOptions = {}) {
    const { bufferSize = 16384 } = options;
    if (!Number.isSafeInteger(bufferSize) || bufferSize < 1) {
      throw new RangeError(`bufferSize must be a whole number >= 1, got ${bufferSize}`);
    }
    this.#source = source;
    this.#chunk = new Uint8Array(bufferSize);
  }

  /** How many bytes are held here, read from the source but not yet returned. */
  get buffered(): number {
    return this.#pending.length - this.#start;
  }

  /**
   * Read the next line, without its line ending.
   *
   * @param options The cap on the line's length.
   * @returns The line, or `null` if the stream ended cleanly before it began.
   * @throws {FrameTooLargeError} If the line is longer than `maxLength`. The
   *   connection's framing is lost after this (the rest of the line may
   *   follow): answer with the protocol's error and close it.
   * @throws {UnexpectedEofError} If the stream ends in the middle of a line.
   */
  async readLine(options: ReadLineOptions = {}): Promise<Uint8Array<ArrayBuffer> | null> {
    const { maxLength = 8192 } = options;
    let searched = 0; // bytes of the pending data already known to hold no LF
    while (true) {
      const at = this.#pending.indexOf(0x0a, this.#start + searched);
      if (at !== -1) {
        const end = at > this.#start && this.#pending[at - 1] === 0x0d ? at - 1 : at;
        const length = end - this.#start;
        if (length > maxLength) {
          this.#start = at + 1;
          throw new FrameTooLargeError(maxLength, length);
        }
        const line = this.#pending.slice(this.#start, end);
        this.#start = at + 1;
        return line;
      }
      searched = this.buffered;
      // Without an LF yet, the line is at least this long (a final CR may
      // still turn out to be part of a CRLF, so it does not count yet).
      const known = this.#pending[this.#pending.length - 1] === 0x0d ? searched - 1 : searched;
      if (known > maxLength) {
        this.#start = this.#pending.length;
        throw new FrameTooLargeError(maxLength, known);
      }
      if (!await this.#fill()) {
        if (this.buffered === 0) return null;
        const partial = this.#pending.slice(this.#start);
        this.#start = this.#pending.length;
        throw new UnexpectedEofError(
          partial.length + 1,
          partial,
          `stream ended in the middle of a line (${partial.length} bytes, no line ending)`,
        );
      }
    }
  }

  /**
   * Read exactly `n` bytes: first any held here, then from the source.
   *
   * @param n How many bytes.
   * @returns A new buffer of `n` bytes.
   * @throws {UnexpectedEofError} If the stream ends first.
   * @throws {RangeError} If `n` is not a whole number >= 0.
   */
  async readExactly(n: number): Promise<Uint8Array<ArrayBuffer>> {
    if (!Number.isSafeInteger(n) || n < 0) {
      throw new RangeError(`cannot read ${n} bytes: the count must be a whole number >= 0`);
    }
    const out = new Uint8Array(n);
    let filled = 0;
    while (filled < n) {
      const count = await this.read(out.subarray(filled));
      if (count === null) throw new UnexpectedEofError(n, out.slice(0, filled));
      filled += count;
    }
    return out;
  }

  /**
   * Read up to `buffer.length` bytes, like a socket's `read()`: held bytes
   * first, and only when none are held, one read from the source.
   *
   * @param buffer Where to put the bytes.
   * @returns How many bytes were read, or `null` at the end of the stream.
   */
  async read(buffer: Uint8Array): Promise<number | null> {
    if (buffer.length === 0) return 0;
    if (this.buffered === 0) {
      // Nothing held: read straight into the caller's buffer, no copy.
      if (this.#eof) return null;
      const count = await this.#source.read(buffer);
      if (count === null) this.#eof = true;
      return count;
    }
    const count = Math.min(buffer.length, this.buffered);
    buffer.set(this.#pending.subarray(this.#start, this.#start + count));
    this.#start += count;
    return count;
  }

  // Read once more from the source, appending to what is held. False at the end.
  async #fill(): Promise<boolean> {
    if (this.#eof) return false;
    const count = await this.#source.read(this.#chunk);
    if (count === null) {
      this.#eof = true;
      return false;
    }
    const rest = this.#pending.subarray(this.#start);
    this.#pending = concat(rest, this.#chunk.subarray(0, count));
    this.#start = 0;
    return true;
  }
}
