// Private test helpers for lib/'s tests: feed bytes in chosen pieces.

/** A reader that hands out `chunks` one `read()` at a time (splitting a chunk only if the buffer is smaller). */
export function chunkedReader(chunks: Uint8Array[]) {
  const queue = chunks.map((chunk) => chunk.slice());
  let reads = 0;
  return {
    get reads() {
      return reads;
    },
    read(buffer: Uint8Array): Promise<number | null> {
      reads++;
      while (queue.length > 0 && queue[0].length === 0) queue.shift();
      const chunk = queue.shift();
      if (!chunk) return Promise.resolve(null);
      const n = Math.min(buffer.length, chunk.length);
      buffer.set(chunk.subarray(0, n));
      if (n < chunk.length) queue.unshift(chunk.subarray(n));
      return Promise.resolve(n);
    },
  };
}

/** Split `bytes` at the given cut points (any order, duplicates and out-of-range ignored). */
export function splitAt(bytes: Uint8Array, cuts: number[]): Uint8Array[] {
  const points = [...new Set(cuts.filter((c) => c > 0 && c < bytes.length))].sort((a, b) => a - b);
  const pieces: Uint8Array[] = [];
  let start = 0;
  for (const point of [...points, bytes.length]) {
    pieces.push(bytes.slice(start, point));
    start = point;
  }
  return pieces;
}

/** Concatenate many buffers. */
export function concatAll(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** A stream of `chunks`. */
export function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return ReadableStream.from(chunks);
}
