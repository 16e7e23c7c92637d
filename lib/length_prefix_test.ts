// Tests for the length-prefixed frame functions and streams together:
// encodeFrame, decodeFrame, readFrame, FrameEncoderStream, FrameDecoderStream.
import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import { encodeFrame } from "./encode_frame.ts";
import { decodeFrame } from "./decode_frame.ts";
import { readFrame } from "./read_frame.ts";
import { FrameEncoderStream } from "./frame_encoder_stream.ts";
import { FrameDecoderStream } from "./frame_decoder_stream.ts";
import { FrameTooLargeError } from "./frame_too_large_error.ts";
import { UnexpectedEofError } from "./unexpected_eof_error.ts";
import { chunkedReader, concatAll, splitAt, streamOf } from "./_test_util.ts";

Deno.test("encodeFrame() writes the length big-endian before the payload", () => {
  const frame = encodeFrame(new Uint8Array(258));
  assert.deepEqual([...frame.subarray(0, 4)], [0, 0, 1, 2]);
  assert.equal(frame.length, 262);
});

Deno.test("encodeFrame() refuses a payload over maxFrameSize", () => {
  assert.throws(() => encodeFrame(new Uint8Array(11), { maxFrameSize: 10 }), FrameTooLargeError);
  assert.throws(() => encodeFrame(new Uint8Array(1), { maxFrameSize: -1 }), RangeError);
});

Deno.test("decodeFrame() waits for the whole frame and refuses an oversized header at once", () => {
  assert.equal(decodeFrame(new Uint8Array([0, 0, 0])), null);
  assert.equal(decodeFrame(new Uint8Array([0, 0, 0, 2, 1])), null);
  // The header alone is enough to know: no payload byte has arrived yet.
  assert.throws(
    () => decodeFrame(new Uint8Array([0xff, 0xff, 0xff, 0xff]), { maxFrameSize: 1000 }),
    (error: FrameTooLargeError) => error.size === 0xffff_ffff && error.limit === 1000,
  );
});

Deno.test("readFrame() tells a clean end from an end inside a header or a payload", async () => {
  assert.equal(await readFrame(chunkedReader([])), null);
  await assert.rejects(
    readFrame(chunkedReader([new Uint8Array([0, 0])])),
    (error: UnexpectedEofError) => error.expected === 4 && error.received === 2,
  );
  await assert.rejects(
    readFrame(chunkedReader([new Uint8Array([0, 0, 0, 5, 1, 2])])),
    (error: UnexpectedEofError) => error.expected === 9 && error.received === 6,
  );
  await assert.rejects(
    readFrame(chunkedReader([new Uint8Array([0, 1, 0, 0])]), { maxFrameSize: 100 }),
    FrameTooLargeError,
  );
});

Deno.test("FrameDecoderStream errors with UnexpectedEofError on a truncated last frame, after the whole ones", async () => {
  const wire = concatAll([encodeFrame(new Uint8Array([1])), new Uint8Array([0, 0, 0, 3, 9])]);
  const seen: Uint8Array[] = [];
  const error = await (async () => {
    for await (const payload of streamOf([wire]).pipeThrough(new FrameDecoderStream())) {
      seen.push(payload);
    }
  })().catch((e) => e);
  assert.ok(error instanceof UnexpectedEofError);
  assert.deepEqual(seen, [new Uint8Array([1])]);
});

Deno.test("FrameDecoderStream stops at an oversized header without reading its payload", async () => {
  let pulled = 0;
  const source = new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new Uint8Array([0x7f, 0, 0, 0])); // announces 2 GiB
    },
    pull(controller) {
      pulled += 1024;
      controller.enqueue(new Uint8Array(1024));
    },
  }, { highWaterMark: 0 });
  await assert.rejects(
    Array.fromAsync(source.pipeThrough(new FrameDecoderStream({ maxFrameSize: 4096 }))),
    FrameTooLargeError,
  );
  assert.ok(pulled <= 4 * 1024, `pulled ${pulled} bytes after the header`);
});

const payloads = fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 });
const cuts = fc.array(fc.nat(7000), { maxLength: 40 });

Deno.test("frames survive any chunking: encoder stream -> split -> decoder stream (property)", async () => {
  await fc.assert(
    fc.asyncProperty(payloads, cuts, async (messages, cutPoints) => {
      const frames = await Array.fromAsync(
        streamOf(messages).pipeThrough(new FrameEncoderStream()),
      );
      const wire = concatAll(frames);
      const out = streamOf(splitAt(wire, cutPoints)).pipeThrough(new FrameDecoderStream());
      assert.deepEqual(await Array.fromAsync(out), messages);
    }),
  );
});

Deno.test("frames survive any chunking: encodeFrame -> reader of any read sizes -> readFrame (property)", async () => {
  await fc.assert(
    fc.asyncProperty(payloads, cuts, async (messages, cutPoints) => {
      const wire = concatAll(messages.map((m) => encodeFrame(m)));
      const reader = chunkedReader(splitAt(wire, cutPoints));
      const out: Uint8Array[] = [];
      for (let frame = await readFrame(reader); frame; frame = await readFrame(reader)) {
        out.push(frame);
      }
      assert.deepEqual(out, messages);
    }),
  );
});

Deno.test("any frame over the cap raises FrameTooLargeError after the frames before it (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      payloads,
      fc.integer({ min: 301, max: 5000 }),
      cuts,
      async (messages, size, cutPoints) => {
        const wire = concatAll([
          ...messages.map((m) => encodeFrame(m)),
          encodeFrame(new Uint8Array(size)),
        ]);
        const seen: Uint8Array[] = [];
        const error = await (async () => {
          const stream = streamOf(splitAt(wire, cutPoints))
            .pipeThrough(new FrameDecoderStream({ maxFrameSize: 300 }));
          for await (const payload of stream) seen.push(payload);
        })().catch((e) => e);
        assert.ok(error instanceof FrameTooLargeError);
        assert.equal(error.size, size);
        assert.deepEqual(seen, messages);
      },
    ),
  );
});
