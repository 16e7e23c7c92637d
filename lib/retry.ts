/**
 * Call a function again, after a growing and randomised wait, until it works.
 *
 * @module
 */

import { RetryError } from "./retry_error.ts";

/**
 * Options for {@linkcode retry}. The names and defaults are those of the Deno
 * standard library's `retry()`, plus `onRetry`.
 */
export interface RetryOptions {
  /**
   * How much the wait grows after each failed attempt: a finite number >= 1.
   *
   * @default {2}
   */
  multiplier?: number;
  /**
   * The longest wait between attempts, in milliseconds.
   *
   * @default {60000}
   */
  maxTimeout?: number;
  /**
   * How many attempts in all, the first included.
   *
   * @default {5}
   */
  maxAttempts?: number;
  /**
   * The wait before the second attempt, in milliseconds.
   *
   * @default {1000}
   */
  minTimeout?: number;
  /**
   * How much of each wait is random, from 0 (none: every client waits the same
   * and they all come back at once) to 1 ("full jitter": anywhere from 0 to
   * the full wait).
   *
   * @default {1}
   */
  jitter?: number;
  /**
   * Whether an error is worth another attempt. One it rejects is rethrown at
   * once, unwrapped.
   *
   * @default {() => true}
   */
  isRetriable?: (error: unknown) => boolean;
  /**
   * Stops the retrying: an abort rejects with `signal.reason`, during a wait
   * or after an attempt. Pass `AbortSignal.timeout(ms)` for an overall deadline.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
  /**
   * The wait before the next attempt, when the failure itself says how long
   * to wait (an HTTP `Retry-After`, say). Given the error, the number of the
   * attempt that failed (from 1) and the wait computed from the options
   * above, it returns the wait to use instead, in milliseconds. It may throw
   * to stop retrying (the wait it would take is too long, say): `retry()`
   * then rejects with what it threw, at once. `onRetry` is told the wait
   * this returns.
   *
   * @default {(error, attempt, computed) => computed}
   */
  delayFor?: (error: unknown, attempt: number, computed: number) => number;
  /**
   * Called after a failed attempt, before the wait: for logging.
   *
   * @default {undefined}
   */
  onRetry?: (error: unknown, attempt: number, waitMs: number) => void;
}

/**
 * Call `fn` until it resolves, waiting longer after each failure.
 *
 * After failed attempt number `n` (from 0) the wait is
 * `min(maxTimeout, minTimeout * multiplier ** n)`, of which a `jitter`
 * fraction is random: exponential backoff with jitter. Backing off gives an
 * overloaded peer room to recover; jitter stops a crowd of clients that failed
 * together from retrying together. `delayFor` can replace that wait with one
 * the failure asks for.
 *
 * @param fn The operation; each call is one attempt.
 * @param options Backoff, which errors to retry, a signal to stop.
 * @returns What `fn` resolved to.
 * @throws {RetryError} When `maxAttempts` attempts failed; `cause` is the last error.
 * @throws {TypeError} If the options contradict each other.
 * @throws {RangeError} If `delayFor` returns a wait that is not a number >= 0.
 * @throws {unknown} An error `isRetriable` rejects, what `delayFor` throws, or `signal.reason`.
 *
 * @example The third attempt works
 * ```ts
 * import { retry } from "./retry.ts";
 * import assert from "node:assert/strict";
 *
 * let calls = 0;
 * const answer = await retry(() => {
 *   calls++;
 *   if (calls < 3) throw new Error("not yet");
 *   return "done";
 * }, { minTimeout: 1 });
 * assert.equal(answer, "done");
 * assert.equal(calls, 3);
 * ```
 *
 * @example Giving up
 * ```ts
 * import { retry } from "./retry.ts";
 * import { RetryError } from "./retry_error.ts";
 * import assert from "node:assert/strict";
 *
 * await assert.rejects(
 *   retry(() => Promise.reject(new Error("refused")), { maxAttempts: 2, minTimeout: 1 }),
 *   (error) => error instanceof RetryError && (error.cause as Error).message === "refused",
 * );
 * ```
 *
 * @example Waiting as long as the failure asks
 * ```ts
 * import { retry } from "./retry.ts";
 * import assert from "node:assert/strict";
 *
 * class Busy extends Error {
 *   constructor(readonly retryAfter: number) {
 *     super("busy");
 *   }
 * }
 * const waits: number[] = [];
 * let calls = 0;
 * await retry(() => {
 *   if (++calls === 1) throw new Busy(5);
 *   return "done";
 * }, {
 *   minTimeout: 1,
 *   jitter: 0,
 *   delayFor: (error, _attempt, computed) =>
 *     error instanceof Busy ? Math.max(computed, error.retryAfter) : computed,
 *   onRetry: (_error, _attempt, wait) => waits.push(wait),
 * });
 * assert.deepEqual(waits, [5]);
 * ```
 */
export async function retry<T>(
  fn: (() => Promise<T>) | (() => T),
  options: RetryOptions = {},
): Promise<T> {
  const {
    multiplier = 2,
    maxTimeout = 60000,
    maxAttempts = 5,
    minTimeout = 1000,
    jitter = 1,
    isRetriable = () => true,
    signal,
    delayFor,
    onRetry,
  } = options;
  if (!(maxTimeout >= 0)) throw new TypeError(`maxTimeout must be >= 0, got ${maxTimeout}`);
  if (!(minTimeout >= 0)) throw new TypeError(`minTimeout must be >= 0, got ${minTimeout}`);
  if (minTimeout > maxTimeout) {
    throw new TypeError(`minTimeout (${minTimeout}) must be <= maxTimeout (${maxTimeout})`);
  }
  // Infinity is refused, as std's retry() refuses it: it is no backoff (the
  // second wait is already maxTimeout), and with minTimeout 0 the wait is NaN.
  if (!(multiplier >= 1 && Number.isFinite(multiplier))) {
    throw new TypeError(`multiplier must be a finite number >= 1, got ${multiplier}`);
  }
  if (!(jitter >= 0 && jitter <= 1)) {
    throw new TypeError(`jitter must be from 0 to 1, got ${jitter}`);
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1) {
    throw new TypeError(`maxAttempts must be a whole number >= 1, got ${maxAttempts}`);
  }

  for (let attempt = 0;; attempt++) {
    signal?.throwIfAborted();
    try {
      return await fn();
    } catch (error) {
      signal?.throwIfAborted();
      if (!isRetriable(error)) throw error;
      if (attempt + 1 >= maxAttempts) throw new RetryError(error, maxAttempts);
      const base = Math.min(maxTimeout, minTimeout * multiplier ** attempt);
      const computed = Math.round(base * (1 - jitter * Math.random()));
      const wait = delayFor ? delayFor(error, attempt + 1, computed) : computed;
      if (!(wait >= 0 && Number.isFinite(wait))) {
        throw new RangeError(`delayFor must return a wait in ms >= 0, got ${wait}`);
      }
      onRetry?.(error, attempt + 1, wait);
      await sleep(wait, signal);
    }
  }
}

function sleep(ms: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    // Aborted already (by onRetry, say): an abort event will not come again.
    if (signal?.aborted) return reject(signal.reason);
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal!.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}
