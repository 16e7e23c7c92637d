import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import { BufferedReader } from "./buffered_reader.ts";
import { FrameTooLargeError } from "./frame_too_large_error.ts";
import { UnexpectedEofError } from "./unexpected_eof_error.ts";
import { chunkedReader, concatAll, splitAt } from "./_test_util.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const text = (bytes: Uint8Array | null) => bytes === null ? null : decoder.decode(bytes);

function readerOf(chunks: string[], bufferSize = 16384) {
  return new BufferedReader(chunkedReader(chunks.map((c) => encoder.encode(c))), { bufferSize });
}

Deno.test("BufferedReader.readLine() takes CRLF and LF endings, keeps a bare CR, and ends cleanly", async () => {
  const reader = readerOf(["GET / HTTP/1.1\r\nHost: a\nX: b\rc\r", "\n\r\n"]);
  assert.equal(text(await reader.readLine()), "GET / HTTP/1.1");
  assert.equal(text(await reader.readLine()), "Host: a");
  assert.equal(text(await reader.readLine()), "X: b\rc");
  assert.equal(text(await reader.readLine()), "");
  assert.equal(await reader.readLine(), null);
});

Deno.test("BufferedReader.readLine() refuses a line over maxLength, with or without its LF", async () => {
  const exact = readerOf(["12345\r\n"]);
  assert.equal(text(await exact.readLine({ maxLength: 5 })), "12345");
  await assert.rejects(readerOf(["123456\n"]).readLine({ maxLength: 5 }), FrameTooLargeError);
  // No LF at all: it gives up once the cap is passed, without waiting for more.
  let reads = 0;
  const endless = new BufferedReader({
    read(buffer: Uint8Array) {
      reads++;
      buffer.fill(0x61);
      return Promise.resolve(buffer.length);
    },
  }, { bufferSize: 100 });
  await assert.rejects(endless.readLine({ maxLength: 1000 }), (error: FrameTooLargeError) => {
    assert.ok(error instanceof FrameTooLargeError);
    assert.ok(error.size > 1000);
    return true;
  });
  assert.ok(reads <= 12, `read ${reads} times for a 1000-byte cap`);
});

Deno.test("BufferedReader.readLine() reports a stream cut mid-line", async () => {
  await assert.rejects(readerOf(["partial"]).readLine(), UnexpectedEofError);
});

Deno.test("BufferedReader hands bytes read ahead to readExactly() and read() first", async () => {
  const reader = readerOf(["HEAD\r\nbody1", "body2tail"], 4);
  assert.equal(text(await reader.readLine()), "HEAD");
  assert.equal(text(await reader.readExactly(10)), "body1body2");
  const rest = new Uint8Array(100);
  const n = await reader.read(rest);
  assert.equal(text(rest.subarray(0, n!)), "tail".slice(0, n!));
  await assert.rejects(reader.readExactly(50), UnexpectedEofError);
  assert.equal(await reader.read(rest), null);
});

Deno.test("BufferedReader reads straight from the source when it holds nothing", async () => {
  const source = chunkedReader([encoder.encode("abc")]);
  const reader = new BufferedReader(source);
  const buffer = new Uint8Array(10);
  assert.equal(await reader.read(buffer), 3);
  assert.equal(reader.buffered, 0);
  assert.equal(source.reads, 1);
});

// Lines then a body, cut anywhere, read with any buffer size: the same lines
// and the same body come out. This is how HTTP and SMTP read a message.
Deno.test("BufferedReader returns the same lines and body however the stream is cut (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.string({ maxLength: 30 }).map((s) => s.replace(/[\r\n]/g, "_")), {
        maxLength: 10,
      }),
      fc.constantFrom("\n", "\r\n"),
      fc.uint8Array({ maxLength: 500 }),
      fc.array(fc.nat(1000), { maxLength: 20 }),
      fc.integer({ min: 1, max: 64 }),
      async (lines, ending, body, cuts, bufferSize) => {
        const wire = concatAll([
          encoder.encode(lines.map((line) => line + ending).join("") + ending),
          body,
        ]);
        const reader = new BufferedReader(chunkedReader(splitAt(wire, cuts)), { bufferSize });
        for (const line of lines) assert.equal(text(await reader.readLine()), line);
        assert.equal(text(await reader.readLine()), "");
        assert.deepEqual(await reader.readExactly(body.length), body);
        assert.equal(await reader.read(new Uint8Array(1)), null);
      },
    ),
  );
});

Deno.test("BufferedReader refuses a bad bufferSize and a bad count", async () => {
  assert.throws(() => new BufferedReader(chunkedReader([]), { bufferSize: 0 }), RangeError);
  await assert.rejects(readerOf([]).readExactly(-1), RangeError);
});
