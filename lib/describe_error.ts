/**
 * Turn an error into one line that says what happened and what to try.
 *
 * @module
 */

import { RetryError } from "./retry_error.ts";

/**
 * Describe `error` in one line, for a person at a terminal: what went wrong,
 * in plain words, and what to try next. Used by {@linkcode runMain} for the
 * `error: ...` line a script prints before it exits with status 1.
 *
 * Context travels in `cause` chains: a script that wraps an error as
 * `new Error("cannot connect to tcp://127.0.0.1:7", { cause })` gets
 * `cannot connect to tcp://127.0.0.1:7: connection refused (...)`.
 *
 * Known causes: a missing permission (Deno's `NotCapable`, `PermissionDenied`),
 * `ConnectionRefused`, `ConnectionReset`, `BrokenPipe`, `TimedOut` and
 * `TimeoutError`, `AddrInUse`, `AddrNotAvailable`, a name that does not
 * resolve, and {@linkcode RetryError}; also the same causes as `fetch()`
 * reports them, as words in the message of a `TypeError("fetch failed")`'s
 * cause. Anything else gives its own message.
 *
 * @param error Whatever was thrown.
 * @returns One line, without the `error: ` prefix.
 *
 * @example A refused connection and a missing permission
 * ```ts
 * import { describeError } from "./describe_error.ts";
 * import assert from "node:assert/strict";
 *
 * const refused = new Error("cannot connect to tcp://127.0.0.1:9", {
 *   cause: new Deno.errors.ConnectionRefused("Connection refused (os error 111)"),
 * });
 * assert.match(describeError(refused), /^cannot connect to tcp:\/\/127.0.0.1:9: connection refused/);
 *
 * const denied = new Deno.errors.NotCapable(
 *   'Requires net access to "127.0.0.1:0", run again with the --allow-net flag',
 * );
 * assert.match(describeError(denied), /missing permission.*--allow-net=127.0.0.1/);
 * ```
 */
export function describeError(error: unknown): string {
  const context: string[] = [];
  let root = error;
  // Walk down the chain of wrapping errors, keeping their messages as context.
  while (
    root instanceof Error && !(root instanceof RetryError) && root.cause !== undefined &&
    !isKnown(root)
  ) {
    // fetch()'s own "fetch failed" says nothing its cause will not say better.
    if (!/^fetch failed$/i.test(root.message)) context.push(root.message);
    root = root.cause;
  }
  return [...context, explain(root)].join(": ");
}

// A wrapper is known by its class only: its words may merely mention a cause
// ("GET /: connection refused (...)") and say it better than we would.
function isKnown(error: Error): boolean {
  return explainKnown(error, false) !== undefined;
}

function explain(error: unknown): string {
  if (error instanceof RetryError) {
    return `gave up after ${error.attempts} attempts; the last one failed with: ${
      describeError(error.cause)
    }`;
  }
  if (error instanceof Error) return explainKnown(error, true) ?? (error.message || error.name);
  return String(error);
}

function explainKnown(error: Error, byWords: boolean): string | undefined {
  const { errors } = Deno;
  if (error instanceof errors.NotCapable || error instanceof errors.PermissionDenied) {
    return explainPermission(error.message);
  }
  if (error instanceof errors.ConnectionRefused) {
    return "connection refused: nothing is listening there; is the server running, " +
      "and are --host and --port right?";
  }
  if (error instanceof errors.ConnectionReset || error instanceof errors.BrokenPipe) {
    return "the peer closed the connection abruptly (reset); try again, or check the server's log";
  }
  if (error instanceof errors.AddrInUse) {
    return "address already in use: another program is listening on that port; " +
      "choose another with --port (0 picks any free port)";
  }
  if (error instanceof errors.AddrNotAvailable) {
    return "address not available: this machine has no such address; check --host";
  }
  if (error instanceof errors.TimedOut || error.name === "TimeoutError") {
    return `timed out (${error.message.replace(/\.$/, "")}): the peer did not answer in time; ` +
      "check the address, or allow longer with --timeout";
  }
  if (!byWords) return undefined;
  // fetch() reports a plain TypeError("fetch failed"), with the reason only
  // in the text of its cause: at the end of a chain, recognise it by the
  // operating system's own words ("Connection refused (os error 111)").
  const text = error.message;
  if (/failed to lookup address|Name or service not known|No address associated/i.test(text)) {
    return "could not resolve the host name: check its spelling and your DNS settings";
  }
  if (/Connection refused \(os error \d+\)/.test(text)) {
    return explainKnown(new errors.ConnectionRefused(text), false);
  }
  if (/(Connection reset by peer|Broken pipe) \(os error \d+\)/.test(text)) {
    return explainKnown(new errors.ConnectionReset(text), false);
  }
  return undefined;
}

// Deno says: Requires net access to "127.0.0.1:0", run again with the --allow-net flag
function explainPermission(message: string): string {
  const match = message.match(/Requires (\w+) access to "?([^",]*)"?/);
  if (!match) return `missing permission: ${message}`;
  const [, kind, target] = match;
  // Suggest the narrowest flag: a host without its port, a path, a variable name.
  const scope = kind === "net" ? target.replace(/:\d+$/, "") : target;
  return `missing permission: needs ${kind} access to ${target}; ` +
    `run again with --allow-${kind}=${scope}`;
}
