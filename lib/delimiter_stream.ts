/**
 * Split a byte stream into lines (or any delimited messages), with a cap.
 *
 * @module
 */

import { concat } from "./_bytes.ts";
import { FrameTooLargeError } from "./frame_too_large_error.ts";
import { UnexpectedEofError } from "./unexpected_eof_error.ts";
import { orderedTransform } from "./_ordered_transform.ts";

/** Options for {@linkcode DelimiterStream}. */
export interface DelimiterStreamOptions {
  /**
   * The bytes that end a message. A string is encoded as UTF-8.
   *
   * @default {"\n"}
   */
  delimiter?: string | Uint8Array;
  /**
   * The longest message accepted, in bytes, not counting the delimiter (nor
   * the CR that `trimCarriageReturn` removes before it). A
   * longer one errors the stream with {@linkcode FrameTooLargeError} as soon as
   * it is known to be too long, without buffering the rest.
   *
   * @default {65536}
   */
  maxLength?: number;
  /**
   * Remove one `\r` that ends a message, so `"a\r\n"` and `"a\n"` both give
   * `"a"`. Internet text protocols (HTTP, SMTP, FTP) end lines with CRLF, and
   * tolerant readers accept a bare LF too. A `\r` anywhere else is kept, and
   * a bare `\r` never ends a line.
   *
   * @default {false}
   */
  trimCarriageReturn?: boolean;
  /**
   * What to do with bytes left after the last delimiter when the stream ends:
   * `"error"` treats them as a message cut short ({@linkcode UnexpectedEofError}),
   * `"emit"` passes them on as a last message, `"discard"` drops them.
   *
   * @default {"error"}
   */
  unterminated?: "error" | "emit" | "discard";
}

/**
 * A transform stream (a `readable`/`writable` pair for `pipeThrough`) from
 * bytes to messages: each output chunk is the bytes between two delimiters,
 * without the delimiter.
 *
 * TCP delivers a stream of bytes in pieces of any size: one read may hold half
 * a line, or three lines and the start of a fourth. This stream keeps the bytes
 * after the last delimiter until the rest of that message arrives, and never
 * keeps more than `maxLength` of them. When it fails, every message before
 * the failure is still delivered first, and nothing more is read from the
 * source.
 *
 * @example Lines that arrive split across chunks
 * ```ts
 * import { DelimiterStream } from "./delimiter_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const chunks = ["HELO a\r", "\nMAIL FROM:<b>\r\nQU", "IT\r\n"];
 * const lines = ReadableStream.from(chunks)
 *   .pipeThrough(new TextEncoderStream())
 *   .pipeThrough(new DelimiterStream({ trimCarriageReturn: true }))
 *   .pipeThrough(new TextDecoderStream());
 * assert.deepEqual(await Array.fromAsync(lines), ["HELO a", "MAIL FROM:<b>", "QUIT"]);
 * ```
 *
 * @example A line over the cap
 * ```ts
 * import { DelimiterStream } from "./delimiter_stream.ts";
 * import { FrameTooLargeError } from "./frame_too_large_error.ts";
 * import assert from "node:assert/strict";
 *
 * const input = ReadableStream.from([new TextEncoder().encode("x".repeat(100))]);
 * await assert.rejects(
 *   Array.fromAsync(input.pipeThrough(new DelimiterStream({ maxLength: 10 }))),
 *   FrameTooLargeError,
 * );
 * ```
 */
export class DelimiterStream implements TransformStream<Uint8Array, Uint8Array> {
  /** The messages. */
  readonly readable: ReadableStream<Uint8Array<ArrayBuffer>>;
  /** Where the bytes go in. */
  readonly writable: WritableStream<Uint8Array>;

  /**
   * @param options The delimiter, the cap, and how to treat CR and an unterminated end.
   * @throws {RangeError} If the delimiter is empty or `maxLength` is negative.
   */
  constructor(options: DelimiterStreamOptions = {}) {
    const {
      delimiter = "\n",
      maxLength = 65536,
      trimCarriageReturn = false,
      unterminated = "error",
    } = options;
    const delim = typeof delimiter === "string" ? new TextEncoder().encode(delimiter) : delimiter;
    if (delim.length === 0) throw new RangeError("the delimiter must not be empty");
    if (!(maxLength >= 0)) throw new RangeError(`maxLength must be >= 0, got ${maxLength}`);

    // Bytes after the last delimiter seen: the start of the next message.
    let pending: Uint8Array<ArrayBuffer> = new Uint8Array(0);

    const { readable, writable } = orderedTransform<Uint8Array, Uint8Array<ArrayBuffer>>({
      transform(chunk, enqueue) {
        const data = concat(pending, chunk);
        let start = 0;
        // A delimiter may straddle the old and new bytes, so search from just
        // before where the new bytes begin.
        let from = Math.max(0, pending.length - (delim.length - 1));
        for (let at = indexOf(data, delim, from); at !== -1; at = indexOf(data, delim, from)) {
          // The cap is on the message, not its line ending: trim the CR first.
          let end = at;
          if (trimCarriageReturn && end > start && data[end - 1] === 0x0d) end--;
          if (end - start > maxLength) throw new FrameTooLargeError(maxLength, end - start);
          enqueue(data.slice(start, end));
          start = from = at + delim.length;
        }
        // What is left has no delimiter yet. Its last bytes may be the start
        // of the line ending: up to delim.length - 1 bytes of a delimiter, and
        // a CR before them that trimCarriageReturn will remove. Only past
        // those is it known to be too long.
        const tail = data.subarray(Math.max(start, data.length - delim.length));
        const ending = delim.length - 1 + (trimCarriageReturn && tail.includes(0x0d) ? 1 : 0);
        if (data.length - start > maxLength + ending) {
          throw new FrameTooLargeError(maxLength, data.length - start);
        }
        pending = data.slice(start);
      },
      flush(enqueue) {
        if (pending.length === 0 || unterminated === "discard") return;
        if (unterminated === "emit") {
          if (pending.length > maxLength) throw new FrameTooLargeError(maxLength, pending.length);
          enqueue(pending);
          return;
        }
        throw new UnexpectedEofError(
          pending.length + delim.length,
          pending,
          `stream ended in the middle of a message (${pending.length} bytes, no delimiter)`,
        );
      },
    });
    this.readable = readable;
    this.writable = writable;
  }
}

function indexOf(data: Uint8Array, needle: Uint8Array, from: number): number {
  const first = needle[0];
  for (let at = data.indexOf(first, from); at !== -1; at = data.indexOf(first, at + 1)) {
    if (at + needle.length > data.length) return -1;
    let match = true;
    for (let i = 1; i < needle.length && match; i++) match = data[at + i] === needle[i];
    if (match) return at;
  }
  return -1;
}
