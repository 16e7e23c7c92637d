import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import { readExactly } from "./read_exactly.ts";
import { UnexpectedEofError } from "./unexpected_eof_error.ts";
import { chunkedReader, concatAll, splitAt } from "./_test_util.ts";

Deno.test("readExactly() reads a message split across many reads", async () => {
  const reader = chunkedReader([[1], [2, 3], [4, 5, 6, 7]].map((c) => new Uint8Array(c)));
  const progress: number[] = [];
  const bytes = await readExactly(reader, 6, { onProgress: (received) => progress.push(received) });
  assert.deepEqual([...bytes], [1, 2, 3, 4, 5, 6]);
  assert.deepEqual(progress, [1, 3, 6]);
  // It never asked for more than it needed: byte 7 is still there.
  assert.deepEqual([...await readExactly(reader, 1)], [7]);
});

Deno.test("readExactly() reports how many bytes arrived before an early end", async () => {
  const reader = chunkedReader([new Uint8Array([9, 8, 7])]);
  const error = await readExactly(reader, 10).catch((e) => e);
  assert.ok(error instanceof UnexpectedEofError);
  assert.equal(error.expected, 10);
  assert.equal(error.received, 3);
  assert.deepEqual([...error.partial], [9, 8, 7]);
  assert.equal(error.message, "connection closed after 3 of 10 bytes");
});

Deno.test("readExactly() of 0 bytes does not read", async () => {
  const reader = chunkedReader([]);
  assert.equal((await readExactly(reader, 0)).length, 0);
  assert.equal(reader.reads, 0);
});

Deno.test("readExactly() rejects a negative or fractional count with RangeError", async () => {
  await assert.rejects(readExactly(chunkedReader([]), -1), RangeError);
  await assert.rejects(readExactly(chunkedReader([]), 1.5), RangeError);
});

Deno.test("readExactly() returns the same bytes however the stream is split (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 2000 }),
      fc.array(fc.nat(2000)),
      fc.nat(2000),
      async (bytes, cuts, extra) => {
        const take = Math.min(bytes.length, extra);
        const reader = chunkedReader(splitAt(bytes, cuts));
        const first = await readExactly(reader, take);
        const rest = await readExactly(reader, bytes.length - take);
        assert.deepEqual(concatAll([first, rest]), bytes);
      },
    ),
  );
});
