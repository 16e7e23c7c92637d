import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import { DelimiterStream } from "./delimiter_stream.ts";
import { FrameTooLargeError } from "./frame_too_large_error.ts";
import { UnexpectedEofError } from "./unexpected_eof_error.ts";
import { concatAll, splitAt, streamOf } from "./_test_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

async function split(chunks: (string | Uint8Array)[], options = {}): Promise<string[]> {
  const bytes = chunks.map((c) => typeof c === "string" ? encoder.encode(c) : c);
  const out = streamOf(bytes).pipeThrough(new DelimiterStream(options));
  return (await Array.fromAsync(out)).map((line) => decoder.decode(line));
}

Deno.test("DelimiterStream splits lines merged into one chunk and split across chunks", async () => {
  assert.deepEqual(await split(["a\nbb\nc", "cc\n", "\n", "d\n"]), ["a", "bb", "ccc", "", "d"]);
});

Deno.test("DelimiterStream keeps CR unless trimCarriageReturn, which removes only a final CR", async () => {
  assert.deepEqual(await split(["a\r\nb\n"]), ["a\r", "b"]);
  assert.deepEqual(
    await split(["a\r", "\nb\nc\rd\r\r\n"], { trimCarriageReturn: true }),
    ["a", "b", "c\rd\r"],
  );
});

Deno.test("DelimiterStream finds a multi-byte delimiter split across chunks", async () => {
  const chunks = ["GET / HTTP/1.1\r\nHost: x\r", "\n\r", "\nbody"];
  assert.deepEqual(
    await split(chunks, { delimiter: "\r\n\r\n", unterminated: "emit" }),
    ["GET / HTTP/1.1\r\nHost: x", "body"],
  );
});

Deno.test("DelimiterStream accepts a line of exactly maxLength and refuses one byte more", async () => {
  assert.deepEqual(await split(["12345\n"], { maxLength: 5 }), ["12345"]);
  await assert.rejects(split(["123456\n"], { maxLength: 5 }), FrameTooLargeError);
  // Without a delimiter in sight, it errors as soon as the cap is passed.
  await assert.rejects(split(["123", "456"], { maxLength: 5 }), (error: FrameTooLargeError) => {
    assert.ok(error instanceof FrameTooLargeError);
    assert.equal(error.limit, 5);
    return true;
  });
});

Deno.test("DelimiterStream with trimCarriageReturn does not count the CR against maxLength, whole or split", async () => {
  const options = { maxLength: 5, trimCarriageReturn: true };
  for (const chunks of [["12345\r\n"], ["12345\r", "\n"], ["12345", "\r", "\n"]]) {
    assert.deepEqual(await split(chunks, options), ["12345"], JSON.stringify(chunks));
  }
  for (const chunks of [["123456\r\n"], ["123456\r", "\n"], ["123456", "\r\n"]]) {
    await assert.rejects(split(chunks, options), FrameTooLargeError, JSON.stringify(chunks));
  }
  // A CR that is not the end of the line counts like any other byte.
  await assert.rejects(split(["1234\r5\n"], options), FrameTooLargeError);
});

Deno.test("DelimiterStream treats an unterminated end as an error, or emits or drops it on request", async () => {
  await assert.rejects(split(["a\nrest"]), UnexpectedEofError);
  assert.deepEqual(await split(["a\nrest"], { unterminated: "emit" }), ["a", "rest"]);
  assert.deepEqual(await split(["a\nrest"], { unterminated: "discard" }), ["a"]);
  await assert.rejects(
    split(["toolong"], { unterminated: "emit", maxLength: 3 }),
    FrameTooLargeError,
  );
});

Deno.test("DelimiterStream rejects an empty delimiter", () => {
  assert.throws(() => new DelimiterStream({ delimiter: "" }), RangeError);
});

Deno.test("DelimiterStream stops reading an endless line soon after the cap", async () => {
  // A peer that sends one line forever. The stream must fail once the cap is
  // passed, having pulled little more than the cap from the source.
  const maxLength = 10_000;
  const chunkSize = 1000;
  let pulled = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += chunkSize;
      controller.enqueue(new Uint8Array(chunkSize).fill(0x61));
    },
  }, { highWaterMark: 0 });
  await assert.rejects(
    Array.fromAsync(endless.pipeThrough(new DelimiterStream({ maxLength }))),
    FrameTooLargeError,
  );
  assert.ok(pulled <= maxLength + 4 * chunkSize, `pulled ${pulled} bytes`);
});

// Messages that do not contain the delimiter, framed and cut at random places,
// come out unchanged: the core promise of any framing.
Deno.test("DelimiterStream returns every message however the bytes are chunked (property)", async () => {
  const delimiters = fc.constantFrom("\n", "\r\n", "\0", "--");
  await fc.assert(
    fc.asyncProperty(
      delimiters,
      fc.array(fc.string({ maxLength: 40 }), { maxLength: 30 }),
      fc.array(fc.nat(2000), { maxLength: 40 }),
      async (delimiter, texts, cuts) => {
        const messages = texts.filter((t) => !t.includes(delimiter) && !t.endsWith(delimiter[0]));
        const wire = encoder.encode(messages.map((m) => m + delimiter).join(""));
        const out = await split(splitAt(wire, cuts), { delimiter, maxLength: 200 });
        assert.deepEqual(out, messages);
      },
    ),
  );
});

Deno.test("DelimiterStream raises FrameTooLargeError for any line past the cap, after the lines before it (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ maxLength: 50 }), { maxLength: 10 }),
      fc.integer({ min: 51, max: 500 }),
      fc.array(fc.nat(1000), { maxLength: 20 }),
      async (before, tooLong, cuts) => {
        const lines = before.map((line) => line.map((b) => b === 10 ? 11 : b));
        const parts = lines.flatMap((line) => [line, new Uint8Array([10])]);
        parts.push(new Uint8Array(tooLong).fill(0x78), new Uint8Array([10]));
        const wire = concatAll(parts);
        const seen: Uint8Array[] = [];
        const out = streamOf(splitAt(wire, cuts)).pipeThrough(
          new DelimiterStream({ maxLength: 50 }),
        );
        const error = await (async () => {
          for await (const line of out) seen.push(line);
        })().catch((e) => e);
        assert.ok(error instanceof FrameTooLargeError);
        assert.deepEqual(seen, lines);
      },
    ),
  );
});

Deno.test("DelimiterStream with trimCarriageReturn accepts CRLF and LF lines of up to maxLength, however chunked (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.tuple(fc.string({ maxLength: 20 }), fc.boolean()), { maxLength: 10 }),
      fc.array(fc.nat(300), { maxLength: 20 }),
      async (lines, cuts) => {
        const messages = lines.map(([text]) => text.replace(/[\r\n]/g, " "));
        const endings = lines.map(([, crlf]) => crlf ? "\r\n" : "\n");
        const wire = encoder.encode(messages.map((m, i) => m + endings[i]).join(""));
        // The cap is exactly the longest message: every line must still pass.
        const maxLength = Math.max(0, ...messages.map((m) => encoder.encode(m).length));
        const out = await split(splitAt(wire, cuts), { maxLength, trimCarriageReturn: true });
        assert.deepEqual(out, messages);
      },
    ),
  );
});
