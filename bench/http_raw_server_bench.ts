/**
 * scripts/http_raw_server.ts against other web servers, all loaded by the same
 * client, wrk, in the same run:
 *
 * - **keep-alive GET**: `wrk -c 64 -t 2 -d 5s --latency` (2 s with --quick)
 *   against each server's home page. Requests per second, and the latency
 *   percentiles wrk measures (p50, p99), plus errors and the server's CPU.
 *
 * The peers: `Deno.serve` answering "Hello, World!" (bench/peers/
 * deno_serve_hello.ts: the HTTP is Deno's, in Rust; the target is that ours,
 * parsed in TypeScript, reaches half its rate); nginx with one worker
 * process (`return 200`, no file I/O); and a beginner tutorial's socket
 * server in Python (bench/peers/python_http_tutorial.py: one connection at a
 * time, closed after each response, so every request also pays for a TCP
 * handshake; the target is ten times its rate).
 *
 * wrk is not a peer but the load generator: without it (apt-get install -y
 * wrk) every run fails, saying so.
 */

import {
  type Benchmark,
  cpuSeconds,
  denoPeer,
  freePort,
  isInstalled,
  type Peer,
  PYTHON,
  ROOT,
  type RunningProcess,
  type RunOptions,
  runToEnd,
  startProcess,
  versionOf,
  waitForBanner,
  waitForPort,
} from "./_harness.ts";

const raw: Peer = denoPeer("raw", "scripts/http_raw_server.ts serve: its home page, 688 B of HTML");
const denoServe: Peer = denoPeer(
  "deno-serve",
  "bench/peers/deno_serve_hello.ts: Deno.serve, hello world (14 B)",
);
const nginx: Peer = {
  name: "nginx",
  description: "nginx, 1 worker, `return 200` hello world (14 B)",
  command: "nginx",
  install: "apt-get install -y nginx",
  version: () => versionOf("nginx", ["-v"], /\d+\.\d+\.\d+/),
};
const pythonTutorial: Peer = {
  name: "python-tutorial",
  description: "bench/peers/python_http_tutorial.py: one at a time, no keep-alive (59 B)",
  command: PYTHON,
  install: "apt-get install -y python3",
  version: () => versionOf(PYTHON, ["--version"], /\d+\.\d+\.\d+/),
};

// wrk's settings, as the issue gives them; --quick only shortens the run.
const CONNECTIONS = 64;
const THREADS = 2;
const SECONDS = { full: 5, quick: 2 };
const FILES = CONNECTIONS + 256;

/** A server under test, on a free loopback port, and how to stop it. */
interface Started {
  server: RunningProcess;
  port: number;
  cleanup?: () => Promise<void>;
}

async function startServer(peer: Peer, signal: AbortSignal): Promise<Started> {
  if (peer === raw) {
    const server = startProcess(Deno.execPath(), [
      "run",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      "scripts/http_raw_server.ts",
      "serve",
      "--port",
      "0",
      "--quiet",
    ], { files: FILES });
    return { server, port: await waitForBanner(server, { signal }) };
  }
  if (peer === denoServe) {
    const server = startProcess(Deno.execPath(), [
      "run",
      "--no-prompt",
      "--allow-net=127.0.0.1",
      "bench/peers/deno_serve_hello.ts",
    ], { files: FILES });
    return { server, port: await waitForBanner(server, { signal }) };
  }
  if (peer === pythonTutorial) {
    const server = startProcess(PYTHON, ["-u", "bench/peers/python_http_tutorial.py"], {
      files: FILES,
    });
    return { server, port: await waitForBanner(server, { signal }) };
  }
  return await startNginx(signal);
}

// nginx reads its configuration from a file, and writes a pid file and temp
// folders beside it: all in a folder of its own, removed after the run. (The
// folder is under bench/results/ because that is where `deno task bench` may
// write.) `daemon off` keeps it in the foreground, where we can stop it.
async function startNginx(signal: AbortSignal): Promise<Started> {
  const prefix = await Deno.makeTempDir({ dir: `${ROOT}bench/results`, prefix: ".nginx-" });
  const port = freePort();
  const conf = `
worker_processes 1;
pid ${prefix}/nginx.pid;
error_log ${prefix}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${prefix}/client_body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  server {
    listen 127.0.0.1:${port};
    location / {
      default_type "text/plain; charset=utf-8";
      return 200 "Hello, World!\\n";
    }
  }
}
`;
  await Deno.writeTextFile(`${prefix}/nginx.conf`, conf);
  const cleanup = () => Deno.remove(prefix, { recursive: true }).catch(() => {});
  try {
    const server = startProcess("nginx", [
      "-p",
      `${prefix}/`,
      "-e",
      `${prefix}/error.log`,
      "-c",
      `${prefix}/nginx.conf`,
      "-g",
      "daemon off;",
    ], { files: FILES });
    return { server, port: await waitForPort(server, port, { signal }), cleanup };
  } catch (error) {
    await cleanup();
    throw error;
  }
}

/** What wrk printed, as numbers; latencies in ms. */
export interface WrkResult {
  requestsPerSecond: number;
  requests: number;
  p50Ms: number;
  p75Ms: number;
  p90Ms: number;
  p99Ms: number;
  socketErrors: number;
  non2xx: number;
}

/**
 * Read wrk's report (with `--latency`). Latencies come as `785.00us`,
 * `1.02ms` or `1.10s`.
 */
export function parseWrk(output: string): WrkResult {
  const number = (pattern: RegExp) => {
    const match = output.match(pattern);
    if (!match) throw new Error(`wrk's output has no ${pattern}: ${output.slice(0, 400)}`);
    return Number(match[1]);
  };
  const latency = (percent: number) => {
    const match = output.match(new RegExp(`^\\s*${percent}%\\s+([\\d.]+)(us|ms|s)\\s*$`, "m"));
    if (!match) throw new Error(`wrk's output has no ${percent}% latency`);
    const scale = { us: 0.001, ms: 1, s: 1000 }[match[2] as "us" | "ms" | "s"];
    return Number(match[1]) * scale;
  };
  const errors = output.match(
    /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/,
  );
  return {
    requestsPerSecond: number(/Requests\/sec:\s+([\d.]+)/),
    requests: number(/(\d+) requests in/),
    p50Ms: latency(50),
    p75Ms: latency(75),
    p90Ms: latency(90),
    p99Ms: latency(99),
    socketErrors: errors ? errors.slice(1).reduce((sum, n) => sum + Number(n), 0) : 0,
    non2xx: Number(output.match(/Non-2xx or 3xx responses: (\d+)/)?.[1] ?? 0),
  };
}

async function keepAliveGet(peer: Peer, options: RunOptions): Promise<Record<string, number>> {
  if (!await isInstalled("wrk")) throw new Error("wrk is not installed: apt-get install -y wrk");
  const seconds = options.quick ? SECONDS.quick : SECONDS.full;
  const { server, port, cleanup } = await startServer(peer, options.signal);
  try {
    const cpuBefore = await cpuSeconds(server.pid);
    const start = performance.now();
    const output = await runToEnd("wrk", [
      "-c",
      String(CONNECTIONS),
      "-t",
      String(THREADS),
      "-d",
      `${seconds}s`,
      "--latency",
      `http://127.0.0.1:${port}/`,
    ], { timeout: (seconds + 30) * 1000, signal: options.signal, files: FILES });
    const elapsed = (performance.now() - start) / 1000;
    const cpu = await cpuSeconds(server.pid) - cpuBefore;
    const result = parseWrk(output);
    if (result.requests === 0) throw new Error("wrk completed no request");
    return {
      ...result,
      errors: result.socketErrors + result.non2xx,
      serverCpu: cpu / elapsed * 100,
      // CPU per request varies far less than requests/s on a shared machine.
      cpuPerRequest: cpu / result.requests * 1e6,
    };
  } finally {
    await server.stop();
    await cleanup?.();
  }
}

/** The benchmarks bench/run.ts discovers. */
export const benchmarks: Benchmark[] = [
  {
    name: "keep-alive GET",
    title: `wrk -c ${CONNECTIONS} -t ${THREADS} -d ${SECONDS.full}s --latency, GET / over ` +
      "persistent connections (the Python tutorial closes each one, so wrk reconnects); " +
      "requests/s, latency percentiles from wrk, errors = socket errors + non-2xx/3xx.",
    quickTitle: `wrk -c ${CONNECTIONS} -t ${THREADS} -d ${SECONDS.quick}s (--quick).`,
    peers: [raw, denoServe, nginx, pythonTutorial],
    subject: "raw",
    baseline: "deno-serve",
    metrics: [
      { key: "requestsPerSecond", label: "requests/s", better: "higher" },
      { key: "p50Ms", label: "p50 ms", better: "lower", digits: 2 },
      { key: "p99Ms", label: "p99 ms", better: "lower", digits: 2 },
      { key: "errors", label: "errors", better: "lower" },
      { key: "cpuPerRequest", label: "server CPU µs/request", better: "lower", digits: 1 },
      { key: "serverCpu", label: "server CPU %", better: "info" },
    ],
    targets: [
      { metric: "requestsPerSecond", peer: "deno-serve", atLeast: 0.5 },
      { metric: "requestsPerSecond", peer: "python-tutorial", atLeast: 10 },
    ],
    run: keepAliveGet,
  },
];
