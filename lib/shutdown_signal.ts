/**
 * An AbortSignal that fires when the user presses Ctrl-C or the process is
 * asked to terminate.
 *
 * @module
 */

/**
 * Return a signal that aborts on the first SIGINT (Ctrl-C) or SIGTERM (what
 * `kill` and service managers send). A server passes it to its accept loop:
 * stop accepting, close every connection, and return, so the process exits 0
 * with nothing left behind instead of dying mid-write.
 *
 * The OS signal handlers are removed once it fires, so a second Ctrl-C ends
 * the process at once, the usual escape from a shutdown that hangs. On Windows,
 * only Ctrl-C (SIGINT, SIGBREAK) can be caught.
 *
 * @returns A signal whose `reason` names the OS signal.
 *
 * @example A server loop that stops on Ctrl-C
 * ```ts
 * import { shutdownSignal } from "./shutdown_signal.ts";
 * import assert from "node:assert/strict";
 *
 * const signal = shutdownSignal();
 * assert.equal(signal.aborted, false); // until someone presses Ctrl-C
 * ```
 */
export function shutdownSignal(): AbortSignal {
  const controller = new AbortController();
  const names: Deno.Signal[] = Deno.build.os === "windows"
    ? ["SIGINT", "SIGBREAK"]
    : ["SIGINT", "SIGTERM"];
  const handlers = names.map((name) => {
    const handler = () => {
      for (const [i, n] of names.entries()) Deno.removeSignalListener(n, handlers[i]);
      controller.abort(new DOMException(`received ${name}`, "AbortError"));
    };
    Deno.addSignalListener(name, handler);
    return handler;
  });
  return controller.signal;
}
