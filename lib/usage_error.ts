/**
 * The error for a command line that cannot be run as written.
 *
 * @module
 */

/**
 * Thrown for an unknown flag, a missing argument or a bad value.
 * {@linkcode runMain} prints it as one line on stderr and exits with status 2,
 * the Unix convention for "you called me wrong".
 *
 * @example
 * ```ts
 * import { UsageError } from "./usage_error.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new UsageError("--port must be a number from 0 to 65535");
 * assert.equal(error.name, "UsageError");
 * ```
 */
export class UsageError extends Error {
  /** @param message What is wrong with the command line. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
