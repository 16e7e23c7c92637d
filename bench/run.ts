/**
 * `deno task bench`: run every benchmark in bench/ against its peers, side by
 * side, and report medians and ratios as Markdown tables.
 *
 *   deno task bench [--quick] [--only NAME] [--peers A,B] [--runs N]
 *
 * Each bench/*_bench.ts exports `benchmarks: Benchmark[]` (see _harness.ts).
 * Every peer runs `--runs` times, round-robin: run 1 of every peer, then run
 * 2 of every peer (starting one peer later), and so on, so that whatever else
 * the machine is doing hits every peer alike. A peer that is not installed is
 * reported as such and the rest still run. A full run (no `--quick`, no
 * `--peers`) also writes each file's report to bench/results/<file>.md.
 */

import { cpus } from "node:os";
import { fileURLToPath } from "node:url";
import { parseFlags } from "../lib/parse_flags.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import {
  type Benchmark,
  fileLimits,
  formatNumber,
  formatRatio,
  isInstalled,
  markdownTable,
  median,
  type Peer,
  stopAll,
} from "./_harness.ts";

const USAGE = `
bench/run.ts: benchmarks against real peers, reported as medians and ratios

usage:
  deno task bench [flags]

flags:
  --quick         small sizes and one run: for checking that everything works (noisy)
  --only NAME     only the benchmarks of bench/NAME_bench.ts, or only NAME/BENCH
                  (for example --only tcp_echo or --only "tcp_echo/round trips")
  --peers A,B     only these peers (the report is then printed, not saved)
  --runs N        runs per peer (default 3; 1 with --quick)
  -h, --help      show this help

Writes bench/results/<name>.md after a full run (no --quick, no --peers).
permissions: see the bench task in deno.json
`;

const FLAGS = {
  quick: { type: "boolean" },
  only: { type: "string" },
  peers: { type: "string" },
  runs: { type: "number", integer: true, min: 1, max: 50 },
} as const;

const BENCH_DIR = fileURLToPath(new URL(".", import.meta.url));

/** A benchmark, with the file it came from. */
interface Loaded {
  file: string;
  benchmark: Benchmark;
}

/** Everything measured for one peer in one benchmark. */
interface PeerResults {
  peer: Peer;
  installed: boolean;
  version?: string;
  runs: Record<string, number>[];
  failures: string[];
}

/** Find bench/*_bench.ts and import the benchmarks each exports. */
async function discover(only?: string): Promise<Loaded[]> {
  const files = [...Deno.readDirSync(BENCH_DIR)]
    .filter((entry) => entry.isFile && entry.name.endsWith("_bench.ts"))
    .map((entry) => entry.name.slice(0, -"_bench.ts".length))
    .sort();
  const loaded: Loaded[] = [];
  for (const file of files) {
    const module = await import(new URL(`./${file}_bench.ts`, import.meta.url).href);
    const benchmarks = module.benchmarks as Benchmark[] | undefined;
    if (!Array.isArray(benchmarks)) {
      throw new Error(`bench/${file}_bench.ts exports no \`benchmarks\` array`);
    }
    for (const benchmark of benchmarks) {
      if (!only || only === file || only === `${file}/${benchmark.name}`) {
        loaded.push({ file, benchmark });
      }
    }
  }
  if (loaded.length === 0) {
    throw new UsageError(
      only ? `no benchmark matches --only ${only}` : "no bench/*_bench.ts with benchmarks",
    );
  }
  return loaded;
}

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  if (positionals.length > 0) throw new UsageError(`unexpected argument "${positionals[0]}"`);
  const runs = flags.runs ?? (flags.quick ? 1 : 3);
  const onlyPeers = flags.peers?.split(",").map((name) => name.trim()).filter(Boolean);
  const loaded = await discover(flags.only);
  const log = (line: string) => console.error(line);

  // Ctrl-C (or SIGTERM): abort whatever runs, stop every process we started.
  const controller = new AbortController();
  const onSignal = () => controller.abort(new Error("interrupted"));
  for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.addSignalListener(sig, onSignal);

  const started = new Date();
  const machine = describeMachine();
  const results = new Map<Loaded, PeerResults[]>();
  try {
    // Which peers are installed, and their versions, once per peer name.
    const versions = new Map<string, string | undefined>();
    for (const item of loaded) {
      const rows: PeerResults[] = [];
      for (const peer of item.benchmark.peers) {
        if (onlyPeers && !onlyPeers.includes(peer.name)) continue;
        if (!versions.has(peer.name)) {
          versions.set(
            peer.name,
            await isInstalled(peer.command) ? await peer.version() : undefined,
          );
        }
        const version = versions.get(peer.name);
        rows.push({ peer, installed: version !== undefined, version, runs: [], failures: [] });
      }
      results.set(item, rows);
    }

    for (let run = 0; run < runs; run++) {
      for (const [item, rows] of results) {
        const ready = rows.filter((row) => row.installed);
        // Rotate the order each run, so that no peer always goes first.
        const order = ready.map((_, i) => ready[(i + run) % ready.length]);
        for (const row of order) {
          controller.signal.throwIfAborted();
          const label = `run ${run + 1}/${runs} · ${item.file}/${item.benchmark.name} · ` +
            row.peer.name;
          // A failed run is tried once more, so one hang (socat's, see the
          // README) does not cost the peer its median; the failure is reported.
          for (let attempt = 1; attempt <= 2; attempt++) {
            try {
              const metrics = await item.benchmark.run(row.peer, {
                quick: flags.quick,
                signal: controller.signal,
                log: (line) => log(`${label}: ${line}`),
              });
              row.runs.push(metrics);
              const [headline] = item.benchmark.metrics;
              log(
                `${label}: ${formatNumber(metrics[headline.key], headline.digits)} ` +
                  headline.label,
              );
              break;
            } catch (error) {
              controller.signal.throwIfAborted();
              const message = error instanceof Error ? error.message : String(error);
              row.failures.push(message);
              log(`${label}: failed${attempt === 1 ? " (trying once more)" : ""}: ${message}`);
            } finally {
              await stopAll();
            }
          }
        }
      }
    }
  } finally {
    await stopAll();
    for (const sig of ["SIGINT", "SIGTERM"] as const) Deno.removeSignalListener(sig, onSignal);
  }

  // One report per file, in the order the files were found.
  const files = [...new Set(loaded.map((item) => item.file))];
  for (const file of files) {
    const items = loaded.filter((item) => item.file === file);
    const report = renderReport(file, items.map((item) => [item, results.get(item)!]), {
      started,
      machine,
      runs,
      command: ["deno task bench", ...args].join(" "),
      quick: flags.quick,
    });
    console.log(report);
    if (!flags.quick && !onlyPeers && !flags.only?.includes("/")) {
      const path = `${BENCH_DIR}results/${file}.md`;
      await Deno.writeTextFile(`${path}.tmp`, report);
      await Deno.rename(`${path}.tmp`, path);
      log(`wrote bench/results/${file}.md`);
    }
  }
}

/** What a report says about the machine it ran on. */
interface Machine {
  cores: number;
  cpu: string;
  os: string;
  loadAverage: string;
  openFiles: string;
}

function describeMachine(): Machine {
  let cpu = "unknown CPU";
  try {
    cpu = cpus()[0]?.model.trim() || cpu;
  } catch { /* no --allow-sys=cpus */ }
  let os: string = Deno.build.os;
  try {
    os = `${Deno.build.os} ${Deno.osRelease()}`;
  } catch { /* no --allow-sys=osRelease */ }
  let loadAverage = "unknown";
  try {
    loadAverage = Deno.loadavg().map((value) => value.toFixed(2)).join(", ");
  } catch { /* no --allow-sys=loadavg */ }
  const { soft, hard } = fileLimits();
  return {
    cores: navigator.hardwareConcurrency,
    cpu,
    os,
    loadAverage,
    openFiles: `${soft}/${hard}`,
  };
}

interface ReportContext {
  started: Date;
  machine: Machine;
  runs: number;
  command: string;
  quick: boolean;
}

function renderReport(
  file: string,
  items: [Loaded, PeerResults[]][],
  context: ReportContext,
): string {
  const { started, machine, runs } = context;
  const versions = new Map<string, string>();
  for (const [, rows] of items) {
    for (const row of rows) if (row.version) versions.set(row.peer.name, row.version);
  }
  const lines = [
    `# ${file}${context.quick ? " (quick: small sizes, not saved)" : ""}`,
    "",
    `Measured ${started.toISOString().replace(/\.\d+Z$/, "Z")} with \`${context.command}\`: ` +
    `${runs} run${runs === 1 ? "" : "s"} per peer, round-robin, medians shown.`,
    "",
    `Machine: ${machine.cores} cores (${machine.cpu}), ${machine.os}, ` +
    `load average ${machine.loadAverage} at the start, open files ${machine.openFiles} ` +
    `(soft/hard).`,
    "",
    `Versions: ${
      [...versions].map(([name, version]) =>
        version.startsWith(`${name} `) ? version : `${name} ${version}`
      ).join(" · ")
    }.`,
  ];

  const checks: string[][] = [];
  for (const [item, rows] of items) {
    const { benchmark } = item;
    lines.push("", `## ${benchmark.name}`, "");
    lines.push(context.quick && benchmark.quickTitle ? benchmark.quickTitle : benchmark.title, "");

    const medians = new Map<string, Record<string, number>>();
    for (const row of rows) {
      if (row.runs.length === 0) continue;
      const values: Record<string, number> = {};
      for (const metric of benchmark.metrics) {
        values[metric.key] = median(row.runs.map((r) => r[metric.key]));
      }
      medians.set(row.peer.name, values);
    }

    const [headline, ...others] = benchmark.metrics;
    const base = medians.get(benchmark.baseline)?.[headline.key] ?? NaN;
    const subject = medians.get(benchmark.subject)?.[headline.key] ?? NaN;
    const header = [
      "peer",
      "what",
      `${headline.label} (median)`,
      "min – max",
      ...others.map((metric) => metric.label),
      `× ${benchmark.baseline}`,
      `${benchmark.subject} ÷ peer`,
    ];
    const table: string[][] = [];
    const notes: string[] = [];
    for (const row of rows) {
      const name = row.peer.name === benchmark.subject ? `**${row.peer.name}**` : row.peer.name;
      const values = medians.get(row.peer.name);
      if (!row.installed) {
        table.push([name, row.peer.description, `not installed: ${row.peer.install}`]);
        continue;
      }
      if (!values) {
        table.push([name, row.peer.description, `failed: ${row.failures[0] ?? "no runs"}`]);
        continue;
      }
      const all = row.runs.map((r) => r[headline.key]);
      const value = values[headline.key];
      table.push([
        name,
        row.peer.description,
        formatNumber(value, headline.digits),
        `${formatNumber(Math.min(...all), headline.digits)} – ` +
        formatNumber(Math.max(...all), headline.digits),
        ...others.map((metric) => formatNumber(values[metric.key], metric.digits)),
        formatRatio(value / base),
        formatRatio(subject / value),
      ]);
      if (row.failures.length > 0) {
        notes.push(
          `${row.peer.name}: ${row.failures.length} of ${
            row.failures.length + row.runs.length
          } attempts failed (${row.failures[0]}); the median is of the ${row.runs.length} ` +
            "that succeeded.",
        );
      }
    }
    const right = header.map((_, i) => i >= 2);
    lines.push(markdownTable(header, table, right));
    if (notes.length > 0) lines.push("", ...notes.map((note) => `- ${note}`));

    for (const target of benchmark.targets ?? []) {
      const metric = benchmark.metrics.find((m) => m.key === target.metric);
      const ours = medians.get(benchmark.subject)?.[target.metric];
      const theirs = medians.get(target.peer)?.[target.metric];
      const ratio = ours !== undefined && theirs !== undefined ? ours / theirs : NaN;
      const goal = target.atLeast !== undefined ? `≥ ${target.atLeast}×` : `≤ ${target.atMost}×`;
      const met = Number.isNaN(ratio)
        ? "not measured"
        : (target.atLeast === undefined || ratio >= target.atLeast) &&
            (target.atMost === undefined || ratio <= target.atMost)
        ? "yes"
        : "**no**";
      checks.push([
        `${benchmark.name}: ${benchmark.subject} ${metric?.label ?? target.metric} ${goal} ` +
        target.peer,
        `${formatNumber(ours ?? NaN, metric?.digits)} vs ${
          formatNumber(theirs ?? NaN, metric?.digits)
        }`,
        formatRatio(ratio),
        met,
      ]);
    }
  }
  if (checks.length > 0) {
    lines.push("", "## Targets", "");
    lines.push(markdownTable(["target", "medians", "ratio", "met"], checks, [false, true, true]));
  }
  return lines.join("\n") + "\n";
}

if (import.meta.main) runMain(USAGE, main);
