/**
 * The error {@linkcode retry} throws when every attempt has failed.
 *
 * @module
 */

/**
 * Thrown by {@linkcode retry} once `maxAttempts` attempts have failed. Its
 * `cause` is the last attempt's error, so nothing about the failure is lost.
 *
 * @example Reading the last error
 * ```ts
 * import { RetryError } from "./retry_error.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new RetryError(new Error("connection refused"), 3);
 * assert.equal(error.attempts, 3);
 * assert.equal((error.cause as Error).message, "connection refused");
 * assert.equal(error.message, "Retrying exceeded the maxAttempts (3).");
 * ```
 */
export class RetryError extends Error {
  /** How many attempts were made. */
  readonly attempts: number;

  /**
   * @param cause The last attempt's error.
   * @param attempts How many attempts were made.
   */
  constructor(cause: unknown, attempts: number) {
    // The same message as std's RetryError, so a reader who moves on finds it unchanged.
    super(`Retrying exceeded the maxAttempts (${attempts}).`, { cause });
    this.name = "RetryError";
    this.attempts = attempts;
  }
}
