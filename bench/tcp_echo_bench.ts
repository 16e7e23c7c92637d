/**
 * scripts/tcp_echo.ts against other echo servers, and against iperf3 as the
 * ceiling for one TCP connection on loopback.
 *
 * - **bulk**: one connection; the client writes 512 MiB in 64 KiB writes and
 *   reads the echo at the same time. MiB/s of echo received. iperf3 runs its
 *   own client (`-n 512M -l 64K`), one way only, and reports what it received.
 * - **round trips**: 1,000 connections at once, each doing 100 sequential
 *   round trips of 64 bytes (send, then read exactly 64 bytes back). Round
 *   trips per second over all clients, and the latency of each one.
 *
 * Every echo server gets the same client, bench/tcp_echo_load.ts, in its own
 * process (so it never shares an event loop with the server it measures).
 */

import {
  type Benchmark,
  cpuSeconds,
  denoPeer,
  freePort,
  type Peer,
  PYTHON,
  type RunningProcess,
  type RunOptions,
  runToEnd,
  startProcess,
  versionOf,
  waitFor,
  waitForBanner,
  waitForPort,
} from "./_harness.ts";

const MIB = 1024 * 1024;
const GIB = 1024 * MIB;

// Sizes: the issue's, and --quick's for development.
const SIZES = {
  full: { bulkBytes: 512 * MIB, clients: 1000, rounds: 100 },
  quick: { bulkBytes: 64 * MIB, clients: 200, rounds: 20 },
};
const WRITE_SIZE = 64 * 1024;
const MESSAGE_SIZE = 64;

// Open files each process needs: one socket per client, plus some slack.
const filesFor = (clients: number) => clients + 256;

const deno: Peer = denoPeer("deno", "scripts/tcp_echo.ts serve");
const iperf3: Peer = {
  name: "iperf3",
  description: "iperf3, one way (the ceiling)",
  command: "iperf3",
  install: "apt-get install -y iperf3",
  version: () => versionOf("iperf3", ["--version"], /\d+\.\d+(\.\d+)?/),
};
const socat: Peer = {
  name: "socat",
  description: "socat TCP-LISTEN:…,fork PIPE",
  command: "socat",
  install: "apt-get install -y socat",
  version: () => versionOf("socat", ["-V"], /\d+\.\d+\.\d+(\.\d+)?/),
};
const pythonThreaded: Peer = {
  name: "python-threaded",
  description: "bench/peers/python_threaded_echo.py",
  command: PYTHON,
  install: "apt-get install -y python3",
  version: () => versionOf(PYTHON, ["--version"], /\d+\.\d+\.\d+/),
};
const pythonAsyncio: Peer = {
  name: "python-asyncio",
  description: "bench/peers/python_asyncio_echo.py",
  command: PYTHON,
  install: "apt-get install -y python3",
  version: () => versionOf(PYTHON, ["--version"], /\d+\.\d+\.\d+/),
};

/** Start one of the echo servers on a free loopback port; returns it and its port. */
async function startEchoServer(
  peer: Peer,
  files: number,
  signal: AbortSignal,
): Promise<{ server: RunningProcess; port: number }> {
  if (peer === deno) {
    const server = startProcess(Deno.execPath(), [
      "run",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      "scripts/tcp_echo.ts",
      "serve",
      "--port",
      "0",
      "--quiet",
      "--max-connections",
      "2000",
    ], { files });
    return { server, port: await waitForBanner(server, { signal }) };
  }
  if (peer === socat) {
    // socat cannot report a port it picked, so we pick one. Its listen
    // backlog defaults to 5; raise it, as for the Python servers.
    const port = freePort();
    const server = startProcess("socat", [
      `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork,backlog=4096`,
      "PIPE",
    ], { files });
    return { server, port: await waitForPort(server, port, { signal }) };
  }
  const script = peer === pythonThreaded
    ? "bench/peers/python_threaded_echo.py"
    : "bench/peers/python_asyncio_echo.py";
  const server = startProcess(PYTHON, ["-u", script], { files });
  return { server, port: await waitForBanner(server, { signal }) };
}

/**
 * Run the load client against `port`, measuring the server's CPU time while
 * it runs. Returns the client's JSON plus `serverCpu` (% of one core).
 */
async function load(
  server: RunningProcess,
  port: number,
  args: string[],
  files: number,
  options: RunOptions,
): Promise<Record<string, number>> {
  const cpuBefore = await cpuSeconds(server.pid);
  const start = performance.now();
  const stdout = await runToEnd(Deno.execPath(), [
    "run",
    "--no-prompt",
    "--allow-net=127.0.0.1",
    "bench/tcp_echo_load.ts",
    ...args,
    "--port",
    String(port),
    "--timeout",
    "240",
  ], { files, timeout: 300_000, signal: options.signal });
  const seconds = (performance.now() - start) / 1000;
  const serverCpuSeconds = await cpuSeconds(server.pid) - cpuBefore;
  return { ...JSON.parse(stdout), serverCpu: serverCpuSeconds / seconds * 100, serverCpuSeconds };
}

async function bulk(peer: Peer, options: RunOptions): Promise<Record<string, number>> {
  const { bulkBytes } = options.quick ? SIZES.quick : SIZES.full;
  if (peer === iperf3) return await bulkIperf3(bulkBytes, options);
  const { server, port } = await startEchoServer(peer, 256, options.signal);
  try {
    const result = await load(
      server,
      port,
      [
        "bulk",
        "--bytes",
        String(bulkBytes),
        "--write-size",
        String(WRITE_SIZE),
      ],
      256,
      options,
    );
    return {
      mibPerSecond: result.mibPerSecond,
      serverSecondsPerGiB: result.serverCpuSeconds / (bulkBytes / GIB),
      serverCpu: result.serverCpu,
      clientCpu: result.clientCpu,
    };
  } finally {
    await server.stop();
  }
}

// iperf3 measures itself: its server takes one test (-1) and exits; its
// client sends `bytes` in 64 KiB writes and prints a JSON report (-J).
async function bulkIperf3(bytes: number, options: RunOptions): Promise<Record<string, number>> {
  const port = freePort();
  const server = startProcess("iperf3", [
    "-s",
    "-1",
    "-p",
    String(port),
    "-B",
    "127.0.0.1",
    "--forceflush",
  ]);
  try {
    // Not a probe connection: iperf3 -1 would count it as its one test.
    await waitFor(server, "iperf3's `Server listening` line", () => {
      return /Server listening/.test(server.stdout()) ? true : undefined;
    }, { signal: options.signal });
    const stdout = await runToEnd("iperf3", [
      "-c",
      "127.0.0.1",
      "-p",
      String(port),
      "-n",
      String(bytes),
      "-l",
      String(WRITE_SIZE),
      "-J",
    ], { timeout: 300_000, signal: options.signal });
    const report = JSON.parse(stdout);
    if (report.error) throw new Error(`iperf3: ${report.error}`);
    const received = report.end.sum_received;
    const cpu = report.end.cpu_utilization_percent;
    return {
      mibPerSecond: received.bytes / MIB / received.seconds,
      serverSecondsPerGiB: cpu.remote_total / 100 * received.seconds / (received.bytes / GIB),
      serverCpu: cpu.remote_total,
      clientCpu: cpu.host_total,
    };
  } finally {
    await server.stop();
  }
}

async function roundTrips(peer: Peer, options: RunOptions): Promise<Record<string, number>> {
  const { clients, rounds } = options.quick ? SIZES.quick : SIZES.full;
  const files = filesFor(clients);
  const { server, port } = await startEchoServer(peer, files, options.signal);
  try {
    const result = await load(
      server,
      port,
      [
        "roundtrips",
        "--clients",
        String(clients),
        "--rounds",
        String(rounds),
        "--size",
        String(MESSAGE_SIZE),
      ],
      files,
      options,
    );
    // The server's CPU time covers the connects and warm-up round trips too.
    const trips = result.roundTrips + clients;
    return {
      perSecond: result.perSecond,
      serverMicrosPerTrip: result.serverCpuSeconds / trips * 1e6,
      p50Ms: result.p50Ms,
      p99Ms: result.p99Ms,
      maxMs: result.maxMs,
      setupMs: result.connectMs + result.warmUpMs,
      serverCpu: result.serverCpu,
      clientCpu: result.clientCpu,
    };
  } finally {
    await server.stop();
  }
}

const CPU_METRICS = [
  { key: "serverCpu", label: "server CPU %", better: "info" },
  { key: "clientCpu", label: "client CPU %", better: "info" },
] as const;

/** The benchmarks bench/run.ts discovers. */
export const benchmarks: Benchmark[] = [
  {
    name: "bulk",
    title: "One connection: 512 MiB written in 64 KiB writes while the echo is read " +
      "concurrently; MiB/s of echo received (iperf3: of data received, one way).",
    quickTitle: "One connection: 64 MiB in 64 KiB writes (--quick).",
    peers: [deno, iperf3, socat, pythonThreaded, pythonAsyncio],
    subject: "deno",
    baseline: "iperf3",
    metrics: [
      { key: "mibPerSecond", label: "MiB/s", better: "higher" },
      { key: "serverSecondsPerGiB", label: "server CPU s/GiB", better: "lower", digits: 2 },
      ...CPU_METRICS,
    ],
    targets: [
      { metric: "mibPerSecond", peer: "iperf3", atLeast: 0.35 },
      { metric: "mibPerSecond", peer: "socat", atLeast: 2.5 },
      { metric: "mibPerSecond", peer: "python-threaded", atLeast: 4 },
    ],
    run: bulk,
  },
  {
    name: "round trips",
    title: "1,000 connections at once, each doing 100 sequential round trips of 64 B " +
      "(write 64 B, read exactly 64 B back); round trips/s over all clients, and the " +
      "latency of each round trip. Connections are opened first and not timed.",
    quickTitle: "200 connections × 20 round trips of 64 B (--quick).",
    peers: [deno, socat, pythonThreaded, pythonAsyncio],
    subject: "deno",
    baseline: "python-asyncio",
    metrics: [
      { key: "perSecond", label: "round trips/s", better: "higher" },
      { key: "p50Ms", label: "p50 ms", better: "lower", digits: 1 },
      { key: "p99Ms", label: "p99 ms", better: "lower", digits: 1 },
      { key: "maxMs", label: "max ms", better: "lower" },
      { key: "serverMicrosPerTrip", label: "server CPU µs/trip", better: "lower", digits: 1 },
      { key: "setupMs", label: "setup ms", better: "info" },
      ...CPU_METRICS,
    ],
    targets: [
      { metric: "perSecond", peer: "python-asyncio", atLeast: 1.5 },
      { metric: "p99Ms", peer: "python-asyncio", atMost: 1 },
    ],
    run: roundTrips,
  },
];
