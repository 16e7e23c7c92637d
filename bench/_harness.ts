/**
 * The pieces every benchmark in bench/ shares: what a benchmark is (the
 * {@linkcode Benchmark} interface that bench/run.ts discovers), and the
 * helpers to start a peer, wait for it, measure it and stop it, always.
 *
 * A benchmark is not a test: it asserts nothing, it reports medians and
 * ratios against peers that no one here wrote, measured side by side in the
 * same run on the same machine.
 */

import { fileURLToPath } from "node:url";

/** The checkout's root folder. */
export const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** Debian's Python, as in tests/_helpers.ts. */
export const PYTHON = "/usr/bin/python3";

// ---------------------------------------------------------------------------
// What a benchmark is
// ---------------------------------------------------------------------------

/** A program a benchmark measures: our own script, or a peer no one here wrote. */
export interface Peer {
  /** Short name, used in tables and by `--peers`: `deno`, `iperf3`, `socat`, ... */
  name: string;
  /** What it is, for the table: `scripts/tcp_echo.ts`, `socat TCP-LISTEN,fork PIPE`, ... */
  description: string;
  /** The program that must be installed (a name on PATH or an absolute path). */
  command: string;
  /** How to install it, shown when it is missing. */
  install: string;
  /** Its version, for the report (run only when the peer is installed). */
  version(): Promise<string>;
}

/**
 * One of our own Deno scripts as a peer: the deno running the bench runs it,
 * and its version is Deno's.
 */
export function denoPeer(name: string, description: string): Peer {
  return {
    name,
    description,
    command: Deno.execPath(),
    install: "see https://deno.com",
    version: () => Promise.resolve(`deno ${Deno.version.deno}`),
  };
}

/** One number a benchmark reports per run. */
export interface Metric {
  /** The key in the record `run()` returns. */
  key: string;
  /** Column heading, unit included: `MiB/s`, `p99 ms`. */
  label: string;
  /** Which way is better; `info` metrics are shown but never compared. */
  better: "higher" | "lower" | "info";
  /** Digits after the decimal point. @default {0} */
  digits?: number;
}

/**
 * A goal for the subject against one peer, on one metric:
 * `subject ÷ peer >= atLeast` (or `<= atMost`), comparing medians.
 */
export interface Target {
  metric: string;
  peer: string;
  atLeast?: number;
  atMost?: number;
}

/** What `run()` is given. */
export interface RunOptions {
  /** Small sizes for development: quick, and noisy. */
  quick: boolean;
  /** Aborts on Ctrl-C; whatever is waiting should give up. */
  signal: AbortSignal;
  /** Progress lines (to stderr). */
  log: (line: string) => void;
}

/**
 * One benchmark: a workload run against each peer. bench/run.ts imports every
 * bench/*_bench.ts and runs the benchmarks each exports as `benchmarks`.
 */
export interface Benchmark {
  /** Short name, unique within its file: `bulk`, `round trips`. */
  name: string;
  /** One line: what the workload is. */
  title: string;
  /** The workload in `--quick` mode, if it differs. */
  quickTitle?: string;
  /** The peers, in table order. */
  peers: Peer[];
  /** The peer under test; each row gets `subject ÷ peer`. */
  subject: string;
  /** The peer every row is compared with (`× baseline`). */
  baseline: string;
  /** What `run()` returns; the first one is the headline, with the ratio columns. */
  metrics: Metric[];
  /** Goals for the subject, checked against the medians. */
  targets?: Target[];
  /** Measure `peer` once: start it, load it, stop it (even on failure). */
  run(peer: Peer, options: RunOptions): Promise<Record<string, number>>;
}

// ---------------------------------------------------------------------------
// Processes: start, wait for, measure, stop
// ---------------------------------------------------------------------------

/** A process started by {@linkcode startProcess}. */
export interface RunningProcess {
  pid: number;
  /** Everything it has written to stdout so far. */
  stdout(): string;
  /** Everything it has written to stderr so far. */
  stderr(): string;
  /** Resolves when it exits and its output has been read (waiting at most 1 s for that). */
  status: Promise<Deno.CommandStatus>;
  /** SIGTERM it and its children, SIGKILL whatever is left after `grace` ms; wait for exit. */
  stop(grace?: number): Promise<void>;
}

// Every process started and not yet stopped, so that stopAll() can end them
// whatever went wrong (an exception, a timeout, Ctrl-C).
const running = new Set<RunningProcess>();

/** Options for {@linkcode startProcess}. */
export interface StartOptions {
  /** Raise the soft open-files limit to at least this (see {@linkcode withFileLimit}). */
  files?: number;
  /** Environment variables to add. */
  env?: Record<string, string>;
}

/**
 * Start `command args` from the checkout's root, collecting its output. It is
 * tracked until stopped, so {@linkcode stopAll} can end it.
 */
export function startProcess(
  command: string,
  args: string[],
  options: StartOptions = {},
): RunningProcess {
  const [cmd, ...argv] = withFileLimit([command, ...args], options.files ?? 0);
  const child = new Deno.Command(cmd, {
    args: argv,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...options.env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const out = collect(child.stdout);
  const err = collect(child.stderr);
  let exited = false;
  // A grandchild that outlives its parent could hold the pipes open: wait for
  // the output at most 1 s after the exit.
  const status = child.status.then(async (status) => {
    exited = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const late = new Promise((resolve) => timer = setTimeout(resolve, 1000));
    await Promise.race([Promise.all([out.done, err.done]), late]);
    clearTimeout(timer);
    return status;
  });
  const proc: RunningProcess = {
    pid: child.pid,
    stdout: out.text,
    stderr: err.text,
    status,
    async stop(grace = 3000) {
      running.delete(proc);
      if (!exited) {
        // socat's `fork` leaves one child per connection: end those too, each
        // by its PID, listed before the parent goes (they are then reparented).
        const pids = [...await descendants(child.pid), child.pid];
        for (const pid of pids) signal(pid, "SIGTERM");
        const timer = setTimeout(() => {
          for (const pid of pids) signal(pid, "SIGKILL");
        }, grace);
        await child.status;
        clearTimeout(timer);
      }
      await status;
    },
  };
  running.add(proc);
  return proc;
}

/** Stop every process still running (each by its PID). */
export async function stopAll(): Promise<void> {
  await Promise.all([...running].map((proc) => proc.stop(1000)));
}

function signal(pid: number, sig: Deno.Signal): void {
  try {
    Deno.kill(pid, sig);
  } catch { /* already gone */ }
}

// Children of `pid` and theirs. Deno lets a script read /proc only with
// --allow-all, so we ask `ps`, one of the programs --allow-run lets us start.
async function descendants(pid: number): Promise<number[]> {
  let table = "";
  try {
    const { stdout } = await new Deno.Command("ps", { args: ["-e", "-o", "pid=,ppid="] }).output();
    table = new TextDecoder().decode(stdout);
  } catch {
    return [];
  }
  const children = new Map<number, number[]>();
  for (const line of table.trim().split("\n")) {
    const [child, parent] = line.trim().split(/\s+/).map(Number);
    children.set(parent, [...children.get(parent) ?? [], child]);
  }
  const found: number[] = [];
  const queue = [pid];
  while (queue.length > 0 && found.length < 100_000) {
    for (const child of children.get(queue.shift()!) ?? []) {
      found.push(child);
      queue.push(child);
    }
  }
  return found;
}

function collect(stream: ReadableStream<Uint8Array>) {
  let text = "";
  const done = (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) {
      // Keep the tail: a chatty peer must not fill memory.
      text = (text + chunk).slice(-1_000_000);
    }
  })();
  return { text: () => text, done };
}

/** Options for {@linkcode waitFor}. */
export interface WaitOptions {
  /** Give up after this many ms. @default {15000} */
  timeout?: number;
  signal?: AbortSignal;
}

/**
 * Wait until `ready()` returns a value other than `undefined` (polling every
 * 20 ms), or fail if `proc` exits first or `timeout` passes.
 */
export async function waitFor<T>(
  proc: RunningProcess,
  what: string,
  ready: () => T | undefined | Promise<T | undefined>,
  options: WaitOptions = {},
): Promise<T> {
  const { timeout = 15_000, signal } = options;
  const deadline = Date.now() + timeout;
  let exited = false;
  proc.status.then(() => exited = true);
  for (let attempt = 0; Date.now() < deadline; attempt++) {
    signal?.throwIfAborted();
    const value = await ready();
    if (value !== undefined) return value;
    if (exited) break;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  const why = exited ? `exited before ${what}` : `no ${what} within ${timeout} ms`;
  throw new Error(`${why}; stderr: ${proc.stderr().trim().slice(-500) || "(empty)"}`);
}

/** Wait for a `listening on tcp://host:port` line on stdout; returns the port. */
export function waitForBanner(proc: RunningProcess, options: WaitOptions = {}): Promise<number> {
  return waitFor(proc, "a `listening on` line", () => {
    const match = proc.stdout().match(/listening on [a-z]+:\/\/\[?[^\]\s]+?\]?:(\d+)/);
    return match ? Number(match[1]) : undefined;
  }, options);
}

/** Wait until a TCP connect to 127.0.0.1:`port` succeeds (and close it). */
export function waitForPort(
  proc: RunningProcess,
  port: number,
  options: WaitOptions = {},
): Promise<number> {
  return waitFor(proc, `port ${port}`, async () => {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return port;
    } catch {
      return undefined;
    }
  }, options);
}

/**
 * A port that was free a moment ago, for peers that cannot pick their own
 * (socat, iperf3). Another program could take it before the peer binds; the
 * peer then fails to start, and the run says so.
 */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** Options for {@linkcode runToEnd}. */
export interface RunToEndOptions extends StartOptions {
  /** SIGKILL it after this many ms. @default {300000} */
  timeout?: number;
  signal?: AbortSignal;
}

/** Run a command to completion; throw with its stderr unless it exits 0. Returns stdout. */
export async function runToEnd(
  command: string,
  args: string[],
  options: RunToEndOptions = {},
): Promise<string> {
  const { timeout = 300_000, signal: abort } = options;
  const proc = startProcess(command, args, options);
  const stop = () => proc.stop(100);
  abort?.addEventListener("abort", stop, { once: true });
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    stop();
  }, timeout);
  try {
    const { code } = await proc.status;
    abort?.throwIfAborted();
    if (timedOut) throw new Error(`${basename(command)}: killed after ${timeout} ms`);
    if (code !== 0) {
      const said = proc.stderr().trim().split("\n").pop() || `exit code ${code}`;
      // Name the script if there is one (`tcp_echo_load.ts`), else the program.
      const script = args.find((arg) => /\.(ts|js|py)$/.test(arg));
      throw new Error(`${basename(script ?? command)}: ${said}`);
    }
    return proc.stdout();
  } finally {
    clearTimeout(timer);
    abort?.removeEventListener("abort", stop);
    await proc.stop();
  }
}

/**
 * CPU seconds a process has used so far: its own threads, its children that
 * have exited (and been waited for), and its live descendants (socat's
 * per-connection forks), from /proc/PID/stat. Read with `cat`, since Deno
 * allows reading /proc only under --allow-all. NaN where that fails.
 */
export async function cpuSeconds(pid: number): Promise<number> {
  const pids = [pid, ...await descendants(pid)];
  let text = "";
  try {
    const paths = pids.map((id) => `/proc/${id}/stat`);
    // cat exits 1 if a descendant is already gone; what it did read counts.
    const { stdout } = await new Deno.Command("cat", { args: paths, stderr: "null" }).output();
    text = new TextDecoder().decode(stdout);
  } catch {
    return NaN;
  }
  let ticks = 0;
  let seen = false;
  for (const stat of text.split("\n").filter(Boolean)) {
    // Fields after the ")" that closes the command name; utime is field 14.
    const id = Number(stat.slice(0, stat.indexOf(" ")));
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    const [utime, stime, cutime, cstime] = fields.slice(11, 15).map(Number);
    ticks += utime + stime + (id === pid ? cutime + cstime : 0);
    seen ||= id === pid;
  }
  return seen ? ticks / 100 : NaN; // USER_HZ is 100 on Linux
}

// ---------------------------------------------------------------------------
// Open files: 1,000 clients need more than the usual soft limit of 1,024
// ---------------------------------------------------------------------------

/** The soft and hard open-files limits a child of this process inherits (from `ulimit`). */
export function fileLimits(): { soft: number; hard: number } {
  try {
    const { stdout } = new Deno.Command("sh", { args: ["-c", "ulimit -Sn; ulimit -Hn"] })
      .outputSync();
    const [soft, hard] = new TextDecoder().decode(stdout).trim().split(/\s+/)
      .map((value) => value === "unlimited" ? Infinity : Number(value));
    if (soft > 0 && hard > 0) return { soft, hard };
  } catch { /* no sh */ }
  return { soft: Infinity, hard: Infinity };
}

/**
 * Prefix `argv` with `prlimit --nofile=N:HARD --` when this process's soft
 * limit is below `needed`, so that the child can open that many sockets.
 * A soft limit can be raised up to the hard limit without privileges; past
 * that it throws, saying what to do.
 */
export function withFileLimit(argv: string[], needed: number): string[] {
  const { soft, hard } = fileLimits();
  if (soft >= needed) return argv;
  if (hard < needed) {
    throw new Error(
      `needs ${needed} open files but the hard limit is ${hard}; raise it (as root: ` +
        `ulimit -Hn ${needed}), or run with --quick`,
    );
  }
  const hardText = hard === Infinity ? "unlimited" : String(hard);
  return ["prlimit", `--nofile=${needed}:${hardText}`, "--", ...argv];
}

// ---------------------------------------------------------------------------
// Peers: installed or not, and their versions
// ---------------------------------------------------------------------------

/** Whether `command` can be run (tries `command --version`). */
export async function isInstalled(command: string): Promise<boolean> {
  try {
    await new Deno.Command(command, { args: ["--version"], stdout: "null", stderr: "null" })
      .output();
    return true;
  } catch {
    return false;
  }
}

/** The first line of `command args` (stdout, else stderr) matching `pattern`, or the first line. */
export async function versionOf(command: string, args: string[], pattern?: RegExp) {
  const { stdout, stderr } = await new Deno.Command(command, { args }).output();
  const lines = new TextDecoder().decode(stdout).concat("\n", new TextDecoder().decode(stderr))
    .split("\n").map((line) => line.trim()).filter(Boolean);
  const line = (pattern && lines.find((l) => pattern.test(l))) || lines[0] || "unknown";
  return pattern ? line.match(pattern)?.[0] ?? line : line;
}

function basename(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1);
}

// ---------------------------------------------------------------------------
// Numbers
// ---------------------------------------------------------------------------

/** The median of `values` (the mean of the middle two for an even count). */
export function median(values: number[]): number {
  if (values.length === 0) return NaN;
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** A number with thousands separators and `digits` decimals. */
export function formatNumber(value: number, digits = 0): string {
  if (!Number.isFinite(value)) return "–";
  return value.toLocaleString("en-US", {
    minimumFractionDigits: digits,
    maximumFractionDigits: digits,
  });
}

/** A ratio such as `0.34×`, with two significant decimals below 10. */
export function formatRatio(value: number): string {
  if (!Number.isFinite(value)) return "–";
  return `${value.toFixed(value >= 10 ? 1 : 2)}×`;
}

/** A Markdown table; numeric-looking columns are right-aligned. */
export function markdownTable(header: string[], rows: string[][], right: boolean[] = []): string {
  const escape = (cell: string) => cell.replaceAll("|", "\\|");
  const line = (cells: string[]) => `| ${cells.map(escape).join(" | ")} |`;
  const rule = header.map((_, i) => right[i] ? "--:" : "---");
  return [line(header), `| ${rule.join(" | ")} |`, ...rows.map(line)].join("\n");
}
