/**
 * Give an operation a time limit, and cancel it when the limit passes.
 *
 * @module
 */

/** Options for {@linkcode withTimeout}. */
export interface WithTimeoutOptions {
  /**
   * An outer signal, such as an overall deadline (`AbortSignal.timeout(ms)`)
   * or Ctrl-C: its abort cancels the operation too, with its own reason.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

// The longest delay setTimeout keeps: 2^31 - 1 ms.
const MAX_TIMER_MS = 2 ** 31 - 1;

/**
 * Run `fn` with a signal that aborts after `timeout` milliseconds, and reject
 * with a `TimeoutError` `DOMException` then, even if `fn` ignores its signal.
 *
 * Together with {@linkcode retry} this gives both limits a network client
 * needs: a timeout per attempt (this), and a deadline for the whole operation
 * (the same outer `signal` passed to both).
 *
 * @param fn The operation. It should pass `signal` on (to `fetch`, say) so the
 *   work itself stops, not only the waiting for it.
 * @param timeout The limit, in milliseconds.
 * @param options An outer signal that also cancels.
 * @returns What `fn` resolved to, if it did in time.
 * @throws {RangeError} If `timeout` is not from 0 to 2^31 - 1 ms (what a timer holds).
 * @throws {DOMException} Named `TimeoutError` when the limit passes.
 * @throws {unknown} The outer signal's reason when it aborts; whatever `fn` throws.
 *
 * @example A per-attempt timeout inside an overall deadline
 * ```ts
 * import { withTimeout } from "./with_timeout.ts";
 * import { retry } from "./retry.ts";
 * import assert from "node:assert/strict";
 *
 * const neverAnswers = (signal: AbortSignal) =>
 *   new Promise((_, reject) => signal.addEventListener("abort", () => reject(signal.reason)));
 * const deadline = AbortSignal.timeout(1000);
 * let attempts = 0;
 * await assert.rejects(
 *   retry(() => {
 *     attempts++;
 *     return withTimeout(neverAnswers, 20, { signal: deadline });
 *   }, { maxAttempts: 3, minTimeout: 1, signal: deadline }),
 *   (error: Error) => (error.cause as DOMException).name === "TimeoutError",
 * );
 * assert.equal(attempts, 3);
 * ```
 */
export function withTimeout<T>(
  fn: (signal: AbortSignal) => Promise<T>,
  timeout: number,
  options: WithTimeoutOptions = {},
): Promise<T> {
  const { signal: outer } = options;
  // Timers hold a signed 32-bit count of milliseconds: a longer one (about
  // 24.8 days) would fire after 1 ms instead, so it is refused.
  if (!(timeout >= 0 && timeout <= MAX_TIMER_MS)) {
    throw new RangeError(`timeout must be from 0 to ${MAX_TIMER_MS} ms, got ${timeout}`);
  }
  if (outer?.aborted) return Promise.reject(outer.reason);

  const controller = new AbortController();
  const onOuterAbort = () => controller.abort(outer!.reason);
  outer?.addEventListener("abort", onOuterAbort, { once: true });
  const timer = setTimeout(
    () => controller.abort(new DOMException(`timed out after ${timeout} ms`, "TimeoutError")),
    timeout,
  );

  // Whichever comes first: the operation settles, or the signal aborts.
  let onAbort = () => {};
  const aborted = new Promise<never>((_, reject) => {
    onAbort = () => reject(controller.signal.reason);
    controller.signal.addEventListener("abort", onAbort, { once: true });
  });
  const work = new Promise<T>((resolve) => resolve(fn(controller.signal)));
  return Promise.race([work, aborted]).finally(() => {
    clearTimeout(timer);
    outer?.removeEventListener("abort", onOuterAbort);
    controller.signal.removeEventListener("abort", onAbort);
  });
}
