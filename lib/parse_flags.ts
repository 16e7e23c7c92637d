/**
 * Parse a script's command line into typed flags and positional arguments.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { UsageError } from "./usage_error.ts";

/** One flag a script accepts. */
export interface FlagSpec {
  /** `boolean` takes no value; `string` and `number` take one (`--port 80` or `--port=80`). */
  type: "boolean" | "string" | "number";
  /** A one-letter alias, such as `p` for `-p`. */
  short?: string;
  /** The value when the flag is absent. Booleans default to `false`. */
  default?: string | number;
  /** For numbers: the smallest value allowed. */
  min?: number;
  /** For numbers: the largest value allowed. */
  max?: number;
  /** For numbers: whether only whole numbers are allowed. */
  integer?: boolean;
  /**
   * For strings: the flag may be given many times (`-H a -H b`), and its value
   * is the list of all of them, in order (empty when absent).
   */
  multiple?: boolean;
}

/** The parsed value of each flag in `S`: typed by the spec, never `undefined` where a default is given. */
export type Flags<S extends Record<string, FlagSpec>> = {
  [K in keyof S]: S[K]["type"] extends "boolean" ? boolean
    : S[K] extends { multiple: true } ? string[]
    : S[K] extends { default: string | number } ? (S[K]["type"] extends "number" ? number : string)
    : (S[K]["type"] extends "number" ? number : string) | undefined;
};

/** What {@linkcode parseFlags} returns. */
export interface ParsedCommandLine<S extends Record<string, FlagSpec>> {
  /** Each flag's value. */
  flags: Flags<S>;
  /** The arguments that are not flags, in order (a subcommand, messages, ...). */
  positionals: string[];
}

/**
 * Parse `args` against `spec`, strictly: an unknown flag, a flag missing its
 * value, or a number that is not one (or is out of range) is a
 * {@linkcode UsageError} that names the flag. `--help`/`-h` are accepted
 * always (as `help` is handled by {@linkcode runMain}). `--` ends the flags.
 *
 * @param args The command line, usually `Deno.args`.
 * @param spec Each flag by its long name.
 * @returns The flags, typed, and the positional arguments.
 * @throws {UsageError} If the command line does not fit the spec.
 *
 * @example Flags of a server
 * ```ts
 * import { parseFlags } from "./parse_flags.ts";
 * import assert from "node:assert/strict";
 *
 * const spec = {
 *   host: { type: "string", default: "127.0.0.1" },
 *   port: { type: "number", default: 7007, integer: true, min: 0, max: 65535 },
 *   verbose: { type: "boolean", short: "v" },
 *   header: { type: "string", short: "H", multiple: true },
 * } as const;
 * const { flags, positionals } = parseFlags(["serve", "--port=0", "-v", "-H", "a: 1"], spec);
 * assert.deepEqual(positionals, ["serve"]);
 * assert.deepEqual(flags, { host: "127.0.0.1", port: 0, verbose: true, header: ["a: 1"] });
 * assert.throws(() => parseFlags(["--port", "http"], spec), /--port/);
 * ```
 */
export function parseFlags<const S extends Record<string, FlagSpec>>(
  args: string[],
  spec: S,
): ParsedCommandLine<S> {
  const options: Record<
    string,
    { type: "boolean" | "string"; short?: string; multiple?: boolean }
  > = {
    help: { type: "boolean", short: "h" },
  };
  for (const [name, flag] of Object.entries(spec)) {
    options[name] = { type: flag.type === "boolean" ? "boolean" : "string" };
    if (flag.short) options[name].short = flag.short;
    if (flag.multiple) {
      if (flag.type !== "string") throw new TypeError(`--${name}: only string flags can repeat`);
      options[name].multiple = true;
    }
  }

  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    // node:util's messages are long and mention its own API; keep the gist.
    const message = error instanceof Error ? error.message : String(error);
    throw new UsageError(message.split(".")[0].replace(/^Unknown option/, "unknown flag"));
  }

  const flags: Record<string, unknown> = {};
  for (const [name, flag] of Object.entries(spec)) {
    const raw = parsed.values[name];
    if (flag.type === "boolean") flags[name] = raw === true;
    else if (flag.multiple) flags[name] = raw ?? [];
    else if (raw === undefined) flags[name] = flag.default;
    else if (flag.type === "string") flags[name] = raw;
    else flags[name] = toNumber(name, String(raw), flag);
  }
  return { flags: flags as Flags<S>, positionals: parsed.positionals };
}

function toNumber(name: string, raw: string, flag: FlagSpec): number {
  const value = raw.trim() === "" ? NaN : Number(raw);
  const kind = flag.integer ? "a whole number" : "a number";
  const range = flag.min !== undefined && flag.max !== undefined
    ? ` from ${flag.min} to ${flag.max}`
    : flag.min !== undefined
    ? ` >= ${flag.min}`
    : "";
  if (
    !Number.isFinite(value) || (flag.integer && !Number.isInteger(value)) ||
    (flag.min !== undefined && value < flag.min) || (flag.max !== undefined && value > flag.max)
  ) {
    throw new UsageError(`--${name} must be ${kind}${range}, got "${raw}"`);
  }
  return value;
}
