import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import { writeAll } from "./write_all.ts";

function limitedWriter(sizes: number[]) {
  const written: number[] = [];
  let call = 0;
  return {
    written,
    write(data: Uint8Array): Promise<number> {
      const limit = Math.max(1, sizes.length ? sizes[call++ % sizes.length] : data.length);
      const n = Math.min(limit, data.length);
      written.push(...data.subarray(0, n));
      return Promise.resolve(n);
    },
  };
}

Deno.test("writeAll() completes partial writes, in order (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.uint8Array({ maxLength: 5000 }),
      fc.array(fc.integer({ min: 1, max: 700 }), { maxLength: 20 }),
      async (bytes, sizes) => {
        const writer = limitedWriter(sizes);
        await writeAll(writer, bytes);
        assert.deepEqual(writer.written, [...bytes]);
      },
    ),
  );
});

Deno.test("writeAll() passes on the writer's error", async () => {
  const writer = { write: () => Promise.reject(new Deno.errors.BrokenPipe("gone")) };
  await assert.rejects(writeAll(writer, new Uint8Array([1])), Deno.errors.BrokenPipe);
});

Deno.test("writeAll() of nothing writes nothing", async () => {
  let calls = 0;
  await writeAll({ write: () => Promise.resolve(++calls) }, new Uint8Array());
  assert.equal(calls, 0);
});

Deno.test("writeAll() completes a real socket write larger than its send buffer", async () => {
  // 8 MiB is far more than a loopback send buffer takes in one write().
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const data = new Uint8Array(8 * 1024 * 1024).map((_, i) => i * 7);
  const received = (async () => {
    const conn = await listener.accept();
    const chunks: Uint8Array[] = [];
    for await (const chunk of conn.readable) chunks.push(chunk);
    return chunks;
  })();
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  await writeAll(client, data);
  client.close();
  const chunks = await received;
  listener.close();
  const joined = new Uint8Array(data.length);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  assert.equal(offset, data.length);
  assert.deepEqual(joined, data);
});
