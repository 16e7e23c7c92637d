#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * The load generator for bench/tcp_echo_bench.ts: one client, the same for
 * every echo server, run in its own process so that it never shares an event
 * loop (or a garbage collector) with the server it measures.
 *
 *   deno run --allow-net=127.0.0.1 bench/tcp_echo_load.ts bulk --port P [--bytes N]
 *   deno run --allow-net=127.0.0.1 bench/tcp_echo_load.ts roundtrips --port P [--clients N]
 *
 * It prints one line of JSON (the measurements) to stdout and exits 0, or one
 * `error:` line to stderr and exits 1. Every byte that comes back is checked
 * (bulk: the first and last byte of every read against the stream's pattern;
 * round trips: every byte), so a server that drops or reorders bytes fails
 * the run instead of looking fast.
 */

import process from "node:process";
import { parseFlags } from "../lib/parse_flags.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { writeAll } from "../lib/write_all.ts";

const USAGE = `
tcp_echo_load.ts: load an echo server on loopback, print the measurements as JSON

usage:
  tcp_echo_load.ts bulk [flags]         one connection: write --bytes in --write-size
                                        writes while reading the echo at the same time
  tcp_echo_load.ts roundtrips [flags]   --clients connections at once, each doing --rounds
                                        sequential round trips of --size bytes

flags:
  --host HOST          the echo server (default 127.0.0.1)
  --port PORT          its port (required)
  --bytes N            bulk: bytes to send (default 536870912 = 512 MiB)
  --write-size N       bulk: bytes per write (default 65536)
  --read-size N        bulk: the read buffer (default 262144)
  --clients N          roundtrips: connections (default 1000)
  --rounds N           roundtrips: round trips per connection (default 100)
  --size N             roundtrips: bytes per request (default 64)
  --timeout SECS       give up after this long (default 120)
  --stall SECS         give up when no echo has arrived for this long (default 10)

permissions: --allow-net=127.0.0.1 (or --allow-net=HOST)
`;

const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", integer: true, min: 1, max: 65535 },
  bytes: { type: "number", default: 512 * 1024 * 1024, integer: true, min: 1 },
  "write-size": { type: "number", default: 64 * 1024, integer: true, min: 1 },
  "read-size": { type: "number", default: 256 * 1024, integer: true, min: 1 },
  clients: { type: "number", default: 1000, integer: true, min: 1 },
  rounds: { type: "number", default: 100, integer: true, min: 1 },
  size: { type: "number", default: 64, integer: true, min: 4 },
  timeout: { type: "number", default: 120, min: 0.001 },
  stall: { type: "number", default: 10, min: 0.001 },
} as const;

/** What the bulk mode measured. */
export interface BulkResult {
  /** Bytes sent, and received back. */
  bytes: number;
  /** From the first write to the last byte of echo received. */
  seconds: number;
  /** Echoed MiB per second. */
  mibPerSecond: number;
  /** How many `read()` calls the echo took. */
  reads: number;
  /** This client's CPU time over `seconds`, as a percentage of one core. */
  clientCpu: number;
}

/** What the round-trips mode measured. */
export interface RoundTripsResult {
  /** Completed round trips (clients × rounds). */
  roundTrips: number;
  /** Time to open every connection. */
  connectMs: number;
  /** Then, time for one untimed round trip on every connection at once. */
  warmUpMs: number;
  /** From the first request to the last reply. */
  seconds: number;
  /** Round trips per second, over all clients. */
  perSecond: number;
  /** Round-trip latency percentiles, in ms. */
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  /** This client's CPU time over `seconds`, as a percentage of one core. */
  clientCpu: number;
}

/**
 * Send `bytes` on one connection in `writeSize` writes while reading the echo
 * concurrently (reading only after writing would deadlock once both
 * directions' buffers fill). Measures from the first write to the last byte
 * back.
 */
export async function bulk(
  conn: Deno.Conn,
  bytes: number,
  writeSize: number,
  readSize: number,
  onProgress: () => void = () => {},
): Promise<BulkResult> {
  // The same random block is written again and again, so the byte at stream
  // offset o is always block[o % writeSize]: checking the first and last
  // byte of each read is cheap and catches a lost or repeated run of bytes.
  const block = new Uint8Array(writeSize);
  for (let i = 0; i < writeSize; i += 65536) {
    crypto.getRandomValues(block.subarray(i, Math.min(writeSize, i + 65536)));
  }
  const cpuBefore = process.cpuUsage();
  const start = performance.now();

  const writing = (async () => {
    for (let sent = 0; sent < bytes; sent += writeSize) {
      await writeAll(conn, block.subarray(0, Math.min(writeSize, bytes - sent)));
    }
  })();

  let reads = 0;
  const reading = (async () => {
    const buffer = new Uint8Array(readSize);
    let received = 0;
    while (received < bytes) {
      const n = await conn.read(buffer.subarray(0, Math.min(readSize, bytes - received)));
      if (n === null) {
        throw new Error(`the server closed after echoing ${received} of ${bytes} bytes`);
      }
      reads++;
      onProgress();
      const last = received + n - 1;
      if (buffer[0] !== block[received % writeSize] || buffer[n - 1] !== block[last % writeSize]) {
        throw new Error(`the echo differs from what was sent, near byte ${received}`);
      }
      received += n;
    }
  })();

  await Promise.all([writing, reading]);
  const seconds = (performance.now() - start) / 1000;
  return {
    bytes,
    seconds,
    mibPerSecond: bytes / 1024 / 1024 / seconds,
    reads,
    clientCpu: cpuPercent(cpuBefore, seconds),
  };
}

/**
 * One round trip on `conn`: send `request`, read exactly as many bytes back
 * into `reply` (however many reads that takes), and check them.
 */
async function roundTrip(conn: Deno.Conn, request: Uint8Array, reply: Uint8Array) {
  await writeAll(conn, request);
  let received = 0;
  while (received < reply.length) {
    const n = await conn.read(reply.subarray(received));
    if (n === null) throw new Error("the server closed the connection");
    received += n;
  }
  for (let i = 0; i < reply.length; i++) {
    if (reply[i] !== request[i]) throw new Error("the echo differs from the request");
  }
}

/**
 * Start all clients at once on connections already open: each does `rounds`
 * round trips of `size` bytes in a row, recording each one's latency. Before
 * the clock starts, each connection does one round trip untimed, so that the
 * server has accepted every connection (a connect can complete before the
 * server's accept) and no one pays for start-up.
 */
export async function roundTrips(
  conns: Deno.Conn[],
  rounds: number,
  size: number,
  onProgress: () => void = () => {},
): Promise<Omit<RoundTripsResult, "connectMs">> {
  const latencies = new Float64Array(conns.length * rounds);
  const clients = conns.map((conn, client) => {
    const request = new Uint8Array(size);
    crypto.getRandomValues(request);
    return { conn, client, request, reply: new Uint8Array(size) };
  });
  const warmUpStart = performance.now();
  await Promise.all(clients.map(async ({ conn, client, request, reply }) => {
    try {
      await roundTrip(conn, request, reply);
      onProgress();
    } catch (error) {
      throw new Error(`client ${client}, warm-up: ${(error as Error).message}`, { cause: error });
    }
  }));

  const warmUpMs = performance.now() - warmUpStart;

  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  await Promise.all(clients.map(async ({ conn, client, request, reply }) => {
    const view = new DataView(request.buffer);
    for (let round = 0; round < rounds; round++) {
      // Every request differs from the last, so a stale echo cannot pass.
      view.setUint32(size - 4, round);
      const sent = performance.now();
      try {
        await roundTrip(conn, request, reply);
      } catch (error) {
        throw new Error(`client ${client}, round ${round}: ${(error as Error).message}`, {
          cause: error,
        });
      }
      latencies[client * rounds + round] = performance.now() - sent;
      onProgress();
    }
  }));

  const seconds = (performance.now() - start) / 1000;
  latencies.sort();
  const at = (q: number) =>
    latencies[Math.min(latencies.length - 1, Math.floor(q * latencies.length))];
  return {
    warmUpMs,
    roundTrips: latencies.length,
    seconds,
    perSecond: latencies.length / seconds,
    p50Ms: at(0.5),
    p99Ms: at(0.99),
    maxMs: latencies[latencies.length - 1],
    clientCpu: cpuPercent(cpuBefore, seconds),
  };
}

function cpuPercent(before: { user: number; system: number }, seconds: number): number {
  const { user, system } = process.cpuUsage(before);
  return (user + system) / 1e6 / seconds * 100;
}

// A watchdog: every connection closes when the deadline passes, or when
// nothing has been received for `stall` seconds (a server that stopped
// echoing), so whatever was waiting on one of them fails at once and the
// process exits. No loop runs unbounded.
function watchdog(conns: Set<Deno.Conn>, seconds: number, stall: number) {
  let expired = "";
  let lastProgress = Date.now();
  const start = Date.now();
  const closeAll = (why: string) => {
    expired = why;
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* already closed */ }
    }
  };
  const timer = setInterval(() => {
    const now = Date.now();
    if (now - start > seconds * 1000) closeAll(`timed out after ${seconds} s`);
    else if (now - lastProgress > stall * 1000) {
      closeAll(`stalled: no echo for ${stall} s (the server stopped echoing)`);
    }
  }, 250);
  return {
    progress: () => lastProgress = Date.now(),
    check(error: unknown): never {
      if (expired) throw new Error(expired);
      throw error;
    },
    clear: () => clearInterval(timer),
  };
}

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [mode, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (mode !== "bulk" && mode !== "roundtrips") {
    throw new UsageError(mode ? `unknown mode "${mode}"; expected bulk or roundtrips` : "no mode");
  }
  if (flags.port === undefined) throw new UsageError("--port is required");
  const address = { hostname: flags.host, port: flags.port };
  const conns = new Set<Deno.Conn>();
  const timer = watchdog(conns, flags.timeout, flags.stall);

  try {
    if (mode === "bulk") {
      const conn = await Deno.connect(address);
      conns.add(conn);
      const result = await bulk(
        conn,
        flags.bytes,
        flags["write-size"],
        flags["read-size"],
        timer.progress,
      );
      console.log(JSON.stringify(result));
    } else {
      const connectStart = performance.now();
      await Promise.all(Array.from({ length: flags.clients }, async () => {
        const conn = await Deno.connect(address);
        conns.add(conn);
      }));
      const connectMs = performance.now() - connectStart;
      const result = await roundTrips([...conns], flags.rounds, flags.size, timer.progress);
      console.log(JSON.stringify({ connectMs, ...result }));
    }
  } catch (error) {
    timer.check(error);
  } finally {
    timer.clear();
    for (const conn of conns) {
      try {
        conn.close();
      } catch { /* closed by the deadline */ }
    }
  }
}

if (import.meta.main) runMain(USAGE, main);
