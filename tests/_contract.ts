// The contract checks (CONTRACT.md, "Every script in scripts/", points 1-8),
// as functions that return violations instead of asserting, so the same code
// proves every real script and catches every broken fixture in tests/fixtures/.
//
// Each violation is one line that starts with the contract point it breaks:
// "point 3: the demo exited with code 1 ...". A script keeps the contract when
// checkScript() returns [].
//
// What is checked, point by point:
//   1  the shebang and `@run` carry the same flags; @title, @difficulty, @tags,
//      @run <flags> <url>, one or more @resource {URL} title, and a description
//      that names notebooks/NN_<name>.ipynb
//   2  no -A and no unscoped --allow-* flag in @run; every flag is needed (the
//      demo fails without it); network-only scripts also run with plain --allow-net
//   3  the demo (no arguments, the @run flags, --no-prompt) exits 0 within 10 s,
//      prints a transcript, and leaves nothing listening or running
//   4  if --help mentions `serve`: `serve --port 0` prints `listening on
//      <scheme>://127.0.0.1:<port>` (a real listener), then exits 0 on SIGTERM
//      and, started again, on SIGINT (Ctrl-C), leaving nothing behind
//   6  --help and -h print to stdout and exit 0; --help mentions each subcommand
//      the script dispatches on; an unknown flag is one `error:` line, exit 2
//   7  with no --allow-* flag at all: one `error:` line naming the missing
//      permission, exit 1, no stack trace
//   8  every module the script loads (Deno's own module graph, `deno info`)
//      imports only relative paths inside the checkout, `node:` and pinned
//      `npm:name@x.y.z`; no import.meta.dirname/filename (no files beside it)
// Point 5 (client flags) has no mechanical form; the per-script tests cover it.
//
// Processes: "leaves nothing listening" means that after the run no process
// it started is still alive, and no TCP listener or bound UDP socket that
// appeared during the run (from /proc/net/{tcp,tcp6,udp,udp6}) is still held
// by one. Only processes in the test's own process group that no running test
// process is parent of count, so other work on the machine (another test
// suite, a server someone started) is never blamed on the script. Leftovers are
// killed, by PID, once reported.

import { relative } from "node:path";
import { DENO, ROOT } from "./_helpers.ts";

/** The contract's limit for a demo, in ms: killed at this point, and a violation. */
export const DEMO_LIMIT_MS = 10_000;

// Generous safety limits for runs the contract sets no time on (help, errors,
// serve start-up), so that a hang fails the check instead of the whole suite.
const SAFETY_MS = 60_000;
const SIGTERM_LIMIT_MS = 10_000;
const BANNER_GRACE_MS = 10_000;
const SCHEMES = ["tcp", "udp", "http", "ws", "ftp", "smtp", "dns"];
const DIFFICULTIES = ["beginner", "intermediate", "advanced"];

// ---------------------------------------------------------------------------
// Everything at once
// ---------------------------------------------------------------------------

/**
 * Check one script against contract points 1-8. Runs it several times, one
 * run after another (never concurrently: the leftover checks compare what
 * exists before and after each run).
 *
 * @param path The script's absolute path.
 * @returns The violations, one line each; empty if the script keeps the contract.
 */
export async function checkScript(path: string): Promise<string[]> {
  const header = parseHeader(path);
  const violations = [...checkHeader(path, header), ...checkFlags(header)];
  violations.push(...await checkImports(path));
  const flags = header.runFlags ?? header.shebangFlags ?? [];
  const help = await checkHelp(path, flags);
  violations.push(...help.violations);
  violations.push(...await checkUnknownFlag(path, flags));
  const demo = await checkDemo(path, flags);
  violations.push(...demo);
  if (demo.length === 0) {
    // Only a demo that works can tell us whether it also works another way.
    violations.push(...await checkPlainNet(path, flags));
    violations.push(...await checkEveryFlagNeeded(path, flags));
  }
  violations.push(...await checkNoPermissions(path, flags));
  if (help.mentionsServe) {
    violations.push(...await checkServe(path, flags));
    violations.push(...await checkServeStopsOnSigint(path, flags));
  }
  return violations;
}

// ---------------------------------------------------------------------------
// Point 1: the header
// ---------------------------------------------------------------------------

/** What a script's header says; a part is `undefined` where it is missing or malformed. */
export interface Header {
  /** The flags on line 1 (`#!/usr/bin/env -S deno run <flags>`). */
  shebangFlags?: string[];
  /** The flags of `@run <flags> <url>`. */
  runFlags?: string[];
  /** Every tag's values, in order (`@resource` may appear many times). */
  tags: Map<string, string[]>;
  /** The JSDoc block's text that is not a tag. */
  description: string;
  /** Whether the JSDoc block comes right after the shebang. */
  blockAfterShebang: boolean;
}

/** Read the shebang and the module JSDoc block of a script, without judging them. */
export function parseHeader(path: string): Header {
  const lines = Deno.readTextFileSync(path).split("\n");
  const shebang = lines[0].match(/^#!\/usr\/bin\/env -S deno run(\s.*)?$/);
  const header: Header = {
    shebangFlags: shebang ? splitFlags(shebang[1] ?? "") : undefined,
    tags: new Map(),
    description: "",
    blockAfterShebang: false,
  };
  let start = 1;
  while (start < lines.length && lines[start].trim() === "") start++;
  if (!lines[start]?.startsWith("/**")) return header;
  header.blockAfterShebang = true;
  const description: string[] = [];
  for (let i = start; i < lines.length; i++) {
    const text = lines[i].replace(/^\s*\/\*\*\s?/, "").replace(/\*\/\s*$/, "")
      .replace(/^\s*\*\s?/, "").trim();
    const tag = text.match(/^@(\w+)\s*(.*)$/);
    if (tag) header.tags.set(tag[1], [...header.tags.get(tag[1]) ?? [], tag[2].trim()]);
    else if (text) description.push(text);
    if (lines[i].includes("*/")) break;
  }
  header.description = description.join(" ");
  const run = header.tags.get("run");
  const runMatch = run?.length === 1 ? run[0].match(/^(.*?)\s*<url>$/) : null;
  if (runMatch) header.runFlags = splitFlags(runMatch[1]);
  return header;
}

/** Point 1: the shebang, the tags, the resources and the description. */
export function checkHeader(path: string, header: Header = parseHeader(path)): string[] {
  const name = scriptName(path);
  const violations: string[] = [];
  const bad = (message: string) => violations.push(`point 1: ${message}`);
  const one = (tag: string) => {
    const values = header.tags.get(tag) ?? [];
    if (values.length !== 1 || values[0] === "") {
      const found = values.length === 0
        ? "none"
        : values.length > 1
        ? values.length
        : "an empty one";
      bad(`the header needs exactly one non-empty @${tag} (found ${found})`);
      return undefined;
    }
    return values[0];
  };

  if (!header.shebangFlags) {
    bad("line 1 must be a shebang: #!/usr/bin/env -S deno run <the @run flags>");
  }
  if (!header.blockAfterShebang) bad("a JSDoc module block (/** ... */) must follow the shebang");
  one("title");
  const difficulty = one("difficulty");
  if (difficulty && !DIFFICULTIES.includes(difficulty)) {
    bad(`@difficulty "${difficulty}" is not one of ${DIFFICULTIES.join(", ")}`);
  }
  const tags = one("tags");
  if (tags && !tags.split(",").every((tag) => /^[a-z0-9][a-z0-9-]*$/.test(tag.trim()))) {
    bad(`@tags must be a comma-separated list of lowercase words, got "${tags}"`);
  }
  const run = one("run");
  if (run !== undefined && !header.runFlags) {
    bad(`@run must read "@run <flags> <url>", got "${run}"`);
  }
  if (header.shebangFlags && header.runFlags) {
    const shebang = [...header.shebangFlags].sort().join(" ");
    const atRun = [...header.runFlags].sort().join(" ");
    if (shebang !== atRun) {
      bad(`the shebang's flags (${shebang || "none"}) and @run's (${atRun || "none"}) differ`);
    }
  }
  const resources = header.tags.get("resource") ?? [];
  if (resources.length === 0) bad("the header needs at least one @resource {URL} title");
  for (const resource of resources) {
    if (!/^\{https?:\/\/[^\s}]+\}\s+\S/.test(resource)) {
      bad(`@resource must read "{https://...} title", got "${resource}"`);
    }
  }
  const notebook = new RegExp(`notebooks/\\d{2}_${name}\\.ipynb`);
  if (!notebook.test(header.description)) {
    bad(`the header's description must name its notebook, notebooks/NN_${name}.ipynb`);
  }
  return violations;
}

// ---------------------------------------------------------------------------
// Point 2: least privilege
// ---------------------------------------------------------------------------

/** Point 2, on paper: no `-A`, no short permission flags, no unscoped `--allow-*`. */
export function checkFlags(header: Header): string[] {
  const violations: string[] = [];
  for (const flag of header.runFlags ?? []) {
    if (flag === "-A" || flag === "--allow-all") {
      violations.push(`point 2: @run asks for every permission (${flag}); scope each one`);
    } else if (/^-[A-Z]/.test(flag)) {
      violations.push(`point 2: @run uses the short flag ${flag}; write the scoped --allow-* form`);
    } else if (flag.startsWith("--allow-") && !flag.includes("=")) {
      violations.push(
        `point 2: @run's ${flag} is unscoped; scope it (${flag}=127.0.0.1, ${flag}=<folder>, ...)`,
      );
    }
  }
  return violations;
}

/** Point 2: a network-only script's demo also runs with plain `--allow-net`. */
export async function checkPlainNet(path: string, flags: string[]): Promise<string[]> {
  const permissions = flags.filter(isPermissionFlag);
  const netOnly = permissions.length > 0 &&
    permissions.every((flag) => flag === "--allow-net" || flag.startsWith("--allow-net="));
  if (!netOnly) return [];
  const plain = [...flags.filter((flag) => !isPermissionFlag(flag)), "--allow-net"];
  const result = await runTracked(["run", "--no-prompt", ...plain, path], DEMO_LIMIT_MS);
  return outcomeViolations(2, `the plain form (deno run ${plain.join(" ")})`, result);
}

/**
 * Point 2: each `--allow-*` and `--unstable-*` flag in `@run` is needed, that
 * is, the demo does not exit 0 without it. (A lone `--allow-*` flag is the
 * no-permissions run of {@linkcode checkNoPermissions}.)
 */
export async function checkEveryFlagNeeded(path: string, flags: string[]): Promise<string[]> {
  const violations: string[] = [];
  const permissions = flags.filter(isPermissionFlag);
  for (const flag of flags) {
    const lone = isPermissionFlag(flag) && permissions.length === 1;
    if (lone || !(isPermissionFlag(flag) || flag.startsWith("--unstable-"))) continue;
    const without = flags.filter((other) => other !== flag);
    const result = await runTracked(["run", "--no-prompt", ...without, path], DEMO_LIMIT_MS);
    violations.push(...leftoverViolations(2, `the demo without ${flag}`, result));
    if (result.code === 0 && !result.timedOut) {
      violations.push(`point 2: the demo also exits 0 without ${flag}; drop it from @run`);
    }
  }
  return violations;
}

// ---------------------------------------------------------------------------
// Point 3: the demo
// ---------------------------------------------------------------------------

/** Point 3: no arguments, the `@run` flags and `--no-prompt`: exit 0 within 10 s, nothing left. */
export async function checkDemo(path: string, flags: string[]): Promise<string[]> {
  const result = await runTracked(["run", "--no-prompt", ...flags, path], DEMO_LIMIT_MS);
  const violations = outcomeViolations(3, "the demo", result);
  if (result.code === 0 && result.stdout.trim() === "") {
    violations.push("point 3: the demo printed nothing on stdout; it should show a transcript");
  }
  return violations;
}

// ---------------------------------------------------------------------------
// Point 4: serve
// ---------------------------------------------------------------------------

// A whole line of stdout that starts "listening on".
const BANNER_LINE = /^listening on .*\n/m;

/** `serve --port 0` started, its exit status, and whether it has exited yet. */
function startServe(path: string, flags: string[]) {
  const child = spawnDeno(["run", "--no-prompt", ...flags, path, "serve", "--port", "0"]);
  let exited = false;
  const status = child.process.status.then((status) => {
    exited = true;
    return status;
  });
  return { child, status, exited: () => exited };
}

/**
 * Send `signal`; if the process has not exited SIGTERM_LIMIT_MS later, kill
 * it. Resolves once it has exited: true if it had to be killed.
 */
async function stopWithin(
  process: Deno.ChildProcess,
  status: Promise<Deno.CommandStatus>,
  signal: Deno.Signal,
): Promise<boolean> {
  let killed = false;
  kill(process, signal);
  const timer = setTimeout(() => {
    killed = true;
    kill(process, "SIGKILL");
  }, SIGTERM_LIMIT_MS);
  await status;
  clearTimeout(timer);
  return killed;
}

/**
 * Point 4: `serve --port 0` prints `listening on <scheme>://127.0.0.1:<port>`
 * for a real listener, then exits 0 on SIGTERM and leaves nothing behind.
 */
export async function checkServe(path: string, flags: string[]): Promise<string[]> {
  const violations: string[] = [];
  const bad = (message: string) => violations.push(`point 4: ${message}`);
  const before = await snapshot();
  const { child, status, exited } = startServe(path, flags);

  // Wait for a whole line that starts "listening on", or for the process to end.
  const bannered = () => BANNER_LINE.test(child.stdout.text());
  // A server that already listens gets BANNER_GRACE_MS more to say so.
  let deadline = Date.now() + SAFETY_MS;
  let listening: string | undefined;
  for (let i = 0; !exited() && Date.now() < deadline && !bannered(); i++) {
    await delay(20);
    if (listening === undefined && i % 10 === 9) {
      listening = (await socketsOf(child.process.pid))[0];
      if (listening) deadline = Math.min(deadline, Date.now() + BANNER_GRACE_MS);
    }
  }
  const ready = !exited() && bannered();
  if (exited()) await child.finish(); // read all it printed before deciding
  if (ready) {
    const port = Number(child.stdout.text().match(/^listening on .*:(\d+)\s*$/m)?.[1]);
    if (port > 0 && !await listensOn(port)) {
      bad(`the banner names port ${port}, but nothing listens there`);
    }
  } else if (exited() && bannered()) {
    bad(
      `serve exited (code ${(await status).code}) by itself; it must serve until SIGINT/SIGTERM` +
        stderrTail(child.stderr.text()),
    );
  } else if (exited()) {
    bad(
      `serve --port 0 exited (code ${(await status).code}) without a "listening on" line` +
        stderrTail(child.stderr.text()),
    );
  } else {
    const printed = nonEmptyLines(child.stdout.text()).slice(0, 2).join(" | ");
    bad(
      `serve --port 0 printed no "listening on" line` +
        (listening ? ` although it has ${listening}` : ` in ${SAFETY_MS / 1000} s`) +
        (printed ? ` (stdout: ${printed})` : ""),
    );
  }

  // A client that connects and then says nothing: on SIGTERM the server must
  // hang up on it, not wait for it (CONTRACT point 4: "close every connection").
  let client: Deno.TcpConn | undefined;
  const streamPort = child.stdout.text().match(/^listening on (?!udp:)[a-z]+:\/\/.*:(\d+)\s*$/m)
    ?.[1];
  if (ready && streamPort) {
    client = await Deno.connect({ hostname: "127.0.0.1", port: Number(streamPort) }).catch(() =>
      undefined
    );
  }

  let killed = false;
  let exitedByItself = exited();
  if (!exited()) {
    // A moment for the script to finish setting up after its banner (a
    // script should install its signal handlers before it prints it).
    await delay(250);
    exitedByItself = exited();
    killed = await stopWithin(child.process, status, "SIGTERM");
  }
  const { code, signal } = await status;
  try {
    client?.close();
  } catch { /* the server closed it */ }
  const leftovers = await settleLeftovers(before);
  await child.finish();

  const banners = child.stdout.text().split("\n").filter((line) => line.startsWith("listening on"));
  const pattern = new RegExp(
    `^listening on (${SCHEMES.join("|")})://(\\[[0-9a-f:.]+\\]|[^\\s:/\\[\\]]+):(\\d+)$`,
  );
  for (const line of banners) {
    const match = line.trimEnd().match(pattern);
    if (!match) {
      bad(`banner "${line}" is not "listening on <scheme>://<host>:<port>" (${SCHEMES.join("|")})`);
    } else if (match[2] !== "127.0.0.1") {
      bad(`serve's default --host must be 127.0.0.1, but the banner says "${match[2]}"`);
    } else if (match[3] === "0") {
      bad(`banner "${line}" shows port 0; print the port the listener got`);
    }
  }
  if (ready) {
    if (exitedByItself) {
      bad(`serve exited (code ${code}) by itself; it must serve until SIGINT/SIGTERM`);
    } else if (killed) {
      bad(
        `serve did not exit within ${SIGTERM_LIMIT_MS / 1000} s of SIGTERM` +
          (client ? " with an idle client connected: close every connection on shutdown" : ""),
      );
    } else if (code !== 0) {
      bad(
        `serve exited with ${signal ? `signal ${signal}` : `code ${code}`} on SIGTERM; expected 0` +
          stderrTail(child.stderr.text()),
      );
    }
  }
  violations.push(...leftoverViolations(4, "serve", { leftovers }));
  return violations;
}

/**
 * Point 4, Ctrl-C: `serve` also stops on SIGINT, exit 0, nothing left behind.
 * (checkServe does the rest with SIGTERM; a server that handles only one of
 * the two dies by the other, with no clean shutdown.)
 */
export async function checkServeStopsOnSigint(path: string, flags: string[]): Promise<string[]> {
  const violations: string[] = [];
  const before = await snapshot();
  const { child, status, exited } = startServe(path, flags);
  const deadline = Date.now() + SAFETY_MS;
  while (!exited() && Date.now() < deadline && !BANNER_LINE.test(child.stdout.text())) {
    await delay(20);
  }
  if (exited() || !BANNER_LINE.test(child.stdout.text())) {
    // checkServe reports why; this check has nothing to add.
    if (!exited()) kill(child.process, "SIGKILL");
    await status;
    await child.finish();
    return violations;
  }
  await delay(250); // as in checkServe: signal handlers go in before the banner, but allow a moment
  const killed = await stopWithin(child.process, status, "SIGINT");
  const { code, signal } = await status;
  const leftovers = await settleLeftovers(before);
  await child.finish();
  if (killed) {
    violations.push(`point 4: serve did not exit within ${SIGTERM_LIMIT_MS / 1000} s of SIGINT`);
  } else if (code !== 0) {
    violations.push(
      `point 4: serve exited with ${
        signal ? `signal ${signal}` : `code ${code}`
      } on SIGINT (Ctrl-C); expected 0` + stderrTail(child.stderr.text()),
    );
  }
  violations.push(...leftoverViolations(4, "serve", { leftovers }));
  return violations;
}

// ---------------------------------------------------------------------------
// Point 6: help and usage
// ---------------------------------------------------------------------------

/** What {@linkcode checkHelp} found. */
export interface HelpCheck {
  violations: string[];
  /** Whether `--help` mentions a `serve` subcommand (so point 4 applies). */
  mentionsServe: boolean;
}

/**
 * Point 6: `--help` and `-h` print to stdout and exit 0; `--help` mentions
 * each subcommand the script's source dispatches on (`command === "send"`,
 * or `case "send":` in a `switch (command)`).
 */
export async function checkHelp(path: string, flags: string[]): Promise<HelpCheck> {
  const violations: string[] = [];
  let help = "";
  for (const flag of ["--help", "-h"]) {
    const result = await runTracked(["run", "--no-prompt", ...flags, path, flag], SAFETY_MS);
    violations.push(...leftoverViolations(6, flag, result));
    if (result.timedOut || result.code !== 0) {
      violations.push(`point 6: ${flag} exited with ${describeExit(result)}; expected 0`);
    }
    if (result.stdout.trim() === "") {
      violations.push(`point 6: ${flag} printed nothing on stdout (usage goes to stdout)`);
    }
    if (flag === "--help") help = result.stdout;
  }
  for (const command of subcommands(Deno.readTextFileSync(path))) {
    if (!new RegExp(`\\b${command}\\b`).test(help)) {
      violations.push(`point 6: --help does not mention the subcommand "${command}"`);
    }
  }
  return { violations, mentionsServe: /\bserve\b/.test(help) };
}

/** Point 6: an unknown flag gets one `error:` line on stderr and exit 2. */
export async function checkUnknownFlag(path: string, flags: string[]): Promise<string[]> {
  const flag = "--no-such-flag-wirebook";
  const result = await runTracked(["run", "--no-prompt", ...flags, path, flag], SAFETY_MS);
  const violations = leftoverViolations(6, `an unknown flag`, result);
  if (result.timedOut || result.code !== 2) {
    violations.push(
      `point 6: an unknown flag (${flag}) exited with ${describeExit(result)}; expected 2`,
    );
  }
  const lines = nonEmptyLines(result.stderr);
  if (lines.length !== 1 || !lines[0].startsWith("error:")) {
    violations.push(
      `point 6: an unknown flag must print one "error:" line on stderr, got ${lines.length} line(s)` +
        stderrTail(result.stderr),
    );
  }
  return violations;
}

/** The subcommands a script's source dispatches on. */
export function subcommands(source: string): string[] {
  const found = new Set<string>();
  const names = "command|cmd|subcommand|mode|verb|action";
  const compare = new RegExp(
    `\\b(?:${names})\\s*===?\\s*["']([a-z][\\w-]*)["']|["']([a-z][\\w-]*)["']\\s*===?\\s*(?:${names})\\b`,
    "g",
  );
  for (const match of source.matchAll(compare)) found.add(match[1] ?? match[2]);
  // switch (command) { case "serve": ... } up to the closing brace at the switch's indentation.
  for (
    const match of source.matchAll(new RegExp(`^(\\s*)switch\\s*\\(\\s*(?:${names})\\s*\\)`, "gm"))
  ) {
    const rest = source.slice(match.index);
    const end = rest.search(new RegExp(`\\n${match[1]}\\}`));
    for (
      const item of rest.slice(0, end < 0 ? undefined : end).matchAll(
        /case\s+["']([a-z][\w-]*)["']\s*:/g,
      )
    ) {
      found.add(item[1]);
    }
  }
  return [...found].sort();
}

// ---------------------------------------------------------------------------
// Point 7: a missing permission is one line
// ---------------------------------------------------------------------------

/**
 * Point 7: with every `--allow-*` flag removed (`--unstable-*` and other flags
 * kept), the demo prints one `error:` line naming the missing permission
 * (`--allow-<kind>`, a kind from `@run`), exits 1, and shows no stack trace.
 */
export async function checkNoPermissions(path: string, flags: string[]): Promise<string[]> {
  const kinds = flags.filter(isPermissionFlag).map((flag) => flag.match(/^--allow-([\w-]+)/)?.[1])
    .filter((kind): kind is string => kind !== undefined && kind !== "all");
  if (kinds.length === 0) return [];
  const bare = flags.filter((flag) => !isPermissionFlag(flag));
  const result = await runTracked(["run", "--no-prompt", ...bare, path], SAFETY_MS);
  const violations = leftoverViolations(7, "the run without permissions", result);
  const bad = (message: string) =>
    violations.push(`point 7: without permissions, ${message}${stderrTail(result.stderr)}`);
  const lines = nonEmptyLines(result.stderr);
  if (result.timedOut || result.code !== 1) {
    bad(`the demo exited with ${describeExit(result)}; expected 1`);
  }
  if (lines.some((line) => /^\s+at\s/.test(line) || /\bUncaught\b|Stack backtrace/.test(line))) {
    bad("stderr shows a stack trace");
  } else if (lines.length !== 1 || !lines[0].startsWith("error:")) {
    bad(`stderr must be one "error:" line, got ${lines.length} line(s)`);
  } else if (!kinds.some((kind) => lines[0].includes(`--allow-${kind}`))) {
    bad(`the error line does not name the flag to add (--allow-${kinds.join(" or --allow-")})`);
  }
  return violations;
}

// ---------------------------------------------------------------------------
// Point 8: imports that work from a URL
// ---------------------------------------------------------------------------

/**
 * Point 8: ask Deno for the script's module graph (`deno info --json`, without
 * deno.json, npm or remote fetches) and check every import in every local
 * module it loads: relative inside the checkout, `node:`, or pinned `npm:`.
 */
export async function checkImports(path: string): Promise<string[]> {
  const violations: string[] = [];
  const bad = (message: string) => violations.push(`point 8: ${message}`);
  const result = await runTracked(
    ["info", "--json", "--no-config", "--no-npm", "--no-remote", path],
    SAFETY_MS,
  );
  let graph: DenoInfo;
  try {
    graph = JSON.parse(result.stdout);
  } catch {
    bad(`deno info could not read the module graph${stderrTail(result.stderr)}`);
    return violations;
  }
  for (const module of graph.modules) {
    if (!module.specifier.startsWith("file:")) continue;
    const where = relative(ROOT, module.local ?? module.specifier);
    if (module.error) bad(`${where} cannot be loaded: ${module.error}`);
    if (where.startsWith("..")) bad(`${where} lies outside the checkout, so no URL serves it`);
    if (module.local) {
      const source = Deno.readTextFileSync(module.local);
      if (/import\.meta\.(dirname|filename)/.test(source)) {
        bad(`${where} uses import.meta.dirname/filename, which a script run from a URL lacks`);
      }
    }
    for (const dependency of module.dependencies ?? []) {
      const problem = importProblem(dependency.specifier);
      if (problem) bad(`${where} imports "${dependency.specifier}": ${problem}`);
    }
  }
  return violations;
}

/** Why an import specifier breaks running from a URL, or `undefined` if it is fine. */
export function importProblem(specifier: string): string | undefined {
  if (specifier.startsWith("./") || specifier.startsWith("../")) return undefined;
  if (specifier.startsWith("node:")) return undefined;
  if (specifier.startsWith("npm:")) {
    const pinned =
      /^npm:(@[a-z0-9][\w.-]*\/)?[a-z0-9][\w.-]*@\d+\.\d+\.\d+(-[0-9a-z.-]+)?(\+[0-9a-z.-]+)?(\/.*)?$/i;
    return pinned.test(specifier)
      ? undefined
      : "an npm: specifier must pin an exact version (npm:name@1.2.3)";
  }
  if (/^[a-z][a-z0-9+.-]*:/i.test(specifier)) {
    return "only relative, node: and pinned npm: imports are allowed";
  }
  if (specifier.startsWith("/")) return "an absolute path; import relative to the script";
  return "a bare specifier (deno.json's import map is not applied when a script runs from a URL)";
}

interface DenoInfo {
  modules: {
    specifier: string;
    local?: string;
    error?: string;
    dependencies?: { specifier: string }[];
  }[];
}

// ---------------------------------------------------------------------------
// Running a script and seeing what it leaves behind
// ---------------------------------------------------------------------------

/** What {@linkcode runTracked} saw. */
export interface TrackedRun {
  code: number;
  signal: Deno.Signal | null;
  stdout: string;
  stderr: string;
  /** Killed for running past its limit. */
  timedOut: boolean;
  /** Processes the run left alive (now killed), each with the sockets it held. */
  leftovers: Leftover[];
}

/** A process a run left behind. */
export interface Leftover {
  pid: number;
  command: string;
  /** Listening TCP or bound UDP sockets it held that appeared during the run. */
  sockets: string[];
}

/**
 * Run `deno <args>` from the checkout's root; kill it (SIGKILL) after
 * `limitMs`; then report, and kill, anything it left running.
 */
export async function runTracked(args: string[], limitMs: number): Promise<TrackedRun> {
  const before = await snapshot();
  const child = spawnDeno(args);
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    kill(child.process, "SIGKILL");
  }, limitMs);
  const { code, signal } = await child.process.status;
  clearTimeout(timer);
  const leftovers = await settleLeftovers(before);
  await child.finish();
  return {
    code,
    signal,
    stdout: child.stdout.text(),
    stderr: child.stderr.text(),
    timedOut,
    leftovers,
  };
}

interface Spawned {
  process: Deno.ChildProcess;
  stdout: Collected;
  stderr: Collected;
  /** Wait for both outputs to end (a leftover holding the pipe may keep them open), then stop reading. */
  finish(): Promise<void>;
}

function spawnDeno(args: string[]): Spawned {
  const process = new Deno.Command(DENO, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdout = collect(process.stdout);
  const stderr = collect(process.stderr);
  return {
    process,
    stdout,
    stderr,
    async finish() {
      let timer: ReturnType<typeof setTimeout> | undefined;
      await Promise.race([
        Promise.all([stdout.done, stderr.done]),
        new Promise((resolve) => timer = setTimeout(resolve, 5_000)),
      ]);
      clearTimeout(timer);
      await Promise.all([stdout.cancel(), stderr.cancel()]);
    },
  };
}

interface Collected {
  text(): string;
  done: Promise<void>;
  cancel(): Promise<void>;
}

function collect(stream: ReadableStream<Uint8Array>): Collected {
  let text = "";
  const reader = stream.getReader();
  const decoder = new TextDecoder();
  const done = (async () => {
    try {
      while (true) {
        const { value, done } = await reader.read();
        if (done) break;
        text += decoder.decode(value, { stream: true });
      }
    } catch { /* cancelled */ }
  })();
  return {
    text: () => text,
    done,
    async cancel() {
      await reader.cancel().catch(() => {});
      await done;
    },
  };
}

interface Process {
  pid: number;
  ppid: number;
  pgrp: number;
  state: string;
  start: string;
}

interface Snapshot {
  processes: Map<number, Process>;
  /** inode -> "tcp 127.0.0.1:7007" */
  sockets: Map<string, string>;
}

// Deno 2 lets a program read /proc only with --allow-all, so /proc is read by
// a shell (the suite runs with --allow-run), in one process per look.
async function procText(script: string): Promise<string> {
  const { stdout } = await new Deno.Command("/bin/sh", {
    args: ["-c", script],
    stdin: "null",
    stdout: "piped",
    stderr: "null",
  }).output();
  return new TextDecoder().decode(stdout);
}

async function snapshot(): Promise<Snapshot> {
  const text = await procText(
    "cat /proc/[0-9]*/stat 2>/dev/null; " +
      'for kind in tcp tcp6 udp udp6; do echo "@@ $kind"; cat /proc/net/$kind 2>/dev/null; done',
  );
  const processes = new Map<number, Process>();
  const sockets = new Map<string, string>();
  let kind = "";
  for (const line of text.split("\n")) {
    if (line.startsWith("@@ ")) {
      kind = line.slice(3);
    } else if (kind === "" && /^\d+ \(/.test(line)) {
      // "pid (comm) state ppid pgrp session ...": comm may hold spaces and parentheses.
      const pid = Number(line.slice(0, line.indexOf(" ")));
      const fields = line.slice(line.lastIndexOf(")") + 2).split(" ");
      processes.set(pid, {
        pid,
        state: fields[0],
        ppid: Number(fields[1]),
        pgrp: Number(fields[2]),
        start: fields[19],
      });
    } else if (kind !== "") {
      // "sl local_address rem_address st ... uid timeout inode ..."
      const fields = line.trim().split(/\s+/);
      if (fields.length < 10 || !/^\d+:$/.test(fields[0]) || fields[9] === "0") continue;
      // TCP: only listeners (state 0A). UDP: every socket is bound to a port.
      if (kind.startsWith("tcp") && fields[3] !== "0A") continue;
      const what = kind.startsWith("tcp") ? "listening" : "bound";
      sockets.set(fields[9], `${kind.slice(0, 3)} ${decodeAddress(fields[1])} ${what}`);
    }
  }
  return { processes, sockets };
}

async function listensOn(port: number): Promise<boolean> {
  const { sockets } = await snapshot();
  return [...sockets.values()].some((socket) => socket.split(" ")[1].endsWith(`:${port}`));
}

// "0100007F:1B5F" -> "127.0.0.1:7007"; IPv6 is four little-endian 32-bit words.
function decodeAddress(hex: string): string {
  const [address, port] = hex.split(":");
  const words = address.match(/.{8}/g) ?? [];
  const bytes = words.flatMap((word) =>
    (word.match(/../g) ?? []).reverse().map((b) => parseInt(b, 16))
  );
  let host: string;
  if (bytes.length === 4) {
    host = bytes.join(".");
  } else {
    const groups = [];
    for (let i = 0; i < 16; i += 2) groups.push(((bytes[i] << 8) | bytes[i + 1]).toString(16));
    host = `[${groups.join(":").replace(/(^|:)0(:0)+(:|$)/, "::").replace(/:{3,}/, "::")}]`;
  }
  return `${host}:${parseInt(port, 16)}`;
}

// Processes that appeared since `before`, in our process group, are still
// alive, and do not descend from this test process (those belong to work in
// progress, not to a run that has ended): the run's orphans.
function findLeftovers(before: Snapshot, after: Snapshot): Process[] {
  const group = after.processes.get(Deno.pid)?.pgrp;
  const descendsFromUs = (process: Process) => {
    const seen = new Set<number>();
    for (
      let p: Process | undefined = process;
      p && !seen.has(p.pid);
      p = after.processes.get(p.ppid)
    ) {
      if (p.ppid === Deno.pid) return true;
      seen.add(p.pid);
    }
    return false;
  };
  return [...after.processes.values()].filter((process) => {
    const old = before.processes.get(process.pid);
    return process.pid !== Deno.pid && process.pgrp === group && process.state !== "Z" &&
      !(old && old.start === process.start) && !descendsFromUs(process);
  });
}

// A process a script killed on its way out may take a moment to go: look
// again for up to 2 s before calling it left behind. Then kill what is left.
async function settleLeftovers(before: Snapshot): Promise<Leftover[]> {
  let after = await snapshot();
  let found = findLeftovers(before, after);
  for (let waited = 0; found.length > 0 && waited < 2_000; waited += 100) {
    await delay(100);
    after = await snapshot();
    found = findLeftovers(before, after);
  }
  const appeared = new Map([...after.sockets].filter(([inode]) => !before.sockets.has(inode)));
  const leftovers: Leftover[] = [];
  for (const { pid } of found) {
    const inodes = await socketInodes(pid);
    leftovers.push({
      pid,
      command: await commandLine(pid),
      sockets: inodes.filter((inode) => appeared.has(inode)).map((inode) => appeared.get(inode)!),
    });
  }
  for (const { pid } of leftovers) {
    try {
      Deno.kill(pid, "SIGKILL");
    } catch { /* gone by now */ }
  }
  return leftovers;
}

// The listening TCP and bound UDP sockets a process holds.
async function socketsOf(pid: number): Promise<string[]> {
  const { sockets } = await snapshot();
  return (await socketInodes(pid)).filter((inode) => sockets.has(inode))
    .map((inode) => sockets.get(inode)!);
}

async function commandLine(pid: number): Promise<string> {
  const line = (await procText(`tr '\\0' ' ' < /proc/${pid}/cmdline`)).trim() || "?";
  return line.length > 120 ? `${line.slice(0, 117)}...` : line;
}

// "lrwx------ 1 u u 64 Jan 1 00:00 3 -> socket:[12345]"
async function socketInodes(pid: number): Promise<string[]> {
  const listing = await procText(`ls -l /proc/${pid}/fd 2>/dev/null`);
  return [...listing.matchAll(/-> socket:\[(\d+)\]/g)].map((match) => match[1]);
}

// ---------------------------------------------------------------------------
// Small helpers
// ---------------------------------------------------------------------------

// A run that must exit 0 within its limit, leaving nothing behind.
function outcomeViolations(point: number, what: string, result: TrackedRun): string[] {
  const violations = leftoverViolations(point, what, result);
  if (result.timedOut) {
    violations.unshift(
      `point ${point}: ${what} did not exit within ${DEMO_LIMIT_MS / 1000} s (killed)`,
    );
  } else if (result.code !== 0) {
    violations.unshift(
      `point ${point}: ${what} exited with ${describeExit(result)}; expected 0${
        stderrTail(result.stderr)
      }`,
    );
  }
  return violations;
}

function leftoverViolations(
  point: number,
  what: string,
  result: Pick<TrackedRun, "leftovers">,
): string[] {
  return result.leftovers.flatMap(({ pid, command, sockets }) =>
    sockets.length > 0
      ? sockets.map((socket) => `point ${point}: ${what} left ${socket} (pid ${pid}: ${command})`)
      : [`point ${point}: ${what} left a process running (pid ${pid}: ${command})`]
  );
}

function describeExit(result: Pick<TrackedRun, "code" | "signal" | "timedOut">): string {
  if (result.timedOut) return "no exit (killed at its time limit)";
  return result.signal ? `signal ${result.signal}` : `code ${result.code}`;
}

function stderrTail(stderr: string): string {
  const lines = nonEmptyLines(stderr);
  if (lines.length === 0) return "";
  const shown = lines.slice(0, 3).join(" | ");
  return ` (stderr: ${shown.length > 200 ? shown.slice(0, 197) + "..." : shown}${
    lines.length > 3 ? " | ..." : ""
  })`;
}

function nonEmptyLines(text: string): string[] {
  return text.split("\n").filter((line) => line.trim() !== "");
}

function isPermissionFlag(flag: string): boolean {
  return flag.startsWith("--allow-") || /^-[A-Z]/.test(flag);
}

function splitFlags(text: string): string[] {
  return text.trim().split(/\s+/).filter(Boolean);
}

function scriptName(path: string): string {
  return path.slice(path.lastIndexOf("/") + 1).replace(/\.ts$/, "");
}

function kill(process: Deno.ChildProcess, signal: Deno.Signal): void {
  try {
    process.kill(signal);
  } catch { /* it has just exited */ }
}

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
