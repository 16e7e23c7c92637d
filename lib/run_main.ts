/**
 * The entry point every script's command line goes through.
 *
 * @module
 */

import { describeError } from "./describe_error.ts";
import { UsageError } from "./usage_error.ts";

/**
 * Run a script's `main` with the command line, and turn its outcome into the
 * exit status and output the wirebook contract promises:
 *
 * - `--help` or `-h` anywhere before `--`: print `usage` to stdout, exit 0.
 * - a {@linkcode UsageError}: `error: <message>` and a pointer to `--help` on
 *   stderr, exit 2.
 * - any other error: one `error: ...` line from {@linkcode describeError} on
 *   stderr, exit 1, no stack trace (set `WIREBOOK_DEBUG=1` to see it).
 * - `main` returns: the process ends when its last connection and timer are
 *   gone, as any Deno program does; nothing is cut short by a forced exit.
 *
 * @param usage The text `--help` prints.
 * @param main The script's command line logic.
 * @param args The command line.
 * @returns When `main` has finished (or the failure has been reported).
 *
 * @example A script's last line is `if (import.meta.main) runMain(USAGE, main);`
 * ```ts
 * import { runMain } from "./run_main.ts";
 * import assert from "node:assert/strict";
 *
 * const seen: string[][] = [];
 * await runMain("usage: demo [serve]", (args) => void seen.push(args), ["serve"]);
 * await runMain("usage: demo [serve]", (args) => void seen.push(args), ["--help"]);
 * assert.deepEqual(seen, [["serve"]]); // --help printed the usage instead
 * ```
 */
export async function runMain(
  usage: string,
  main: (args: string[]) => Promise<void> | void,
  args: string[] = Deno.args,
): Promise<void> {
  const beforeSeparator = args.includes("--") ? args.slice(0, args.indexOf("--")) : args;
  if (beforeSeparator.includes("--help") || beforeSeparator.includes("-h")) {
    console.log(usage.trim());
    return;
  }
  try {
    await main(args);
  } catch (error) {
    if (debugging()) console.error(error);
    if (error instanceof UsageError) {
      console.error(`error: ${error.message} (see --help)`);
      Deno.exit(2);
    }
    console.error(`error: ${describeError(error)}`);
    Deno.exit(1);
  }
}

// Reading the environment needs --allow-env; without it, there is no debugging.
function debugging(): boolean {
  try {
    return Deno.env.get("WIREBOOK_DEBUG") === "1";
  } catch {
    return false;
  }
}
