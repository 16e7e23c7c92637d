/**
 * A server's accept loop that ends only when the listener closes.
 *
 * @module
 */

/** Options for {@linkcode acceptConnections}. */
export interface AcceptConnectionsOptions {
  /**
   * Told of each accept() that failed while the listener stayed open, before
   * the pause and the next try: a server logs it.
   *
   * @default {undefined}
   */
  onError?: (error: Error) => void;
  /**
   * How long to wait after a failed accept() before trying again, in ms.
   *
   * @default {100}
   */
  retryDelay?: number;
  /**
   * Stop once this aborts. Close the listener too: that is what wakes an
   * accept() already waiting.
   *
   * @default {undefined}
   */
  signal?: AbortSignal;
}

/**
 * Yield each connection `listener` accepts, until the listener is closed (or
 * `signal` aborts); then end, without an error.
 *
 * `for await (const conn of listener)` ends the loop, and with it the server,
 * at the first failed accept(). But accept() fails for reasons that pass: a
 * burst of clients has taken every file descriptor the process may open
 * (EMFILE), or a client reset its connection while it waited in the queue
 * (Linux reports that as accept()'s own error). Here such a failure goes to
 * `onError`, and after `retryDelay` ms (time for a closing connection to free
 * its descriptor) the loop accepts again. Only a closed listener, which is
 * how a server stops, ends it.
 *
 * @param listener What accepts the connections (a `Deno.Listener`).
 * @param options `onError`, `retryDelay`, `signal`.
 * @returns The connections, one by one.
 * @throws {RangeError} If `retryDelay` is negative or not a number.
 *
 * @example Serve until the listener closes
 * ```ts
 * import { acceptConnections } from "./accept_connections.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
 * let served = 0;
 * for await (const conn of acceptConnections(listener)) {
 *   served++;
 *   conn.close();
 *   listener.close(); // a server's shutdown: the loop ends, no error
 * }
 * client.close();
 * assert.equal(served, 1);
 * ```
 */
export async function* acceptConnections<C extends Deno.Conn>(
  listener: { accept(): Promise<C> },
  options: AcceptConnectionsOptions = {},
): AsyncGenerator<C, void, undefined> {
  const { onError, retryDelay = 100, signal } = options;
  if (!(retryDelay >= 0)) throw new RangeError(`retryDelay must be >= 0, got ${retryDelay}`);
  while (!signal?.aborted) {
    let conn: C;
    try {
      conn = await listener.accept();
    } catch (error) {
      // Closing the listener while accept() waits is how a server stops.
      if (error instanceof Deno.errors.BadResource || signal?.aborted) return;
      onError?.(error as Error);
      await new Promise((resolve) => setTimeout(resolve, retryDelay));
      continue;
    }
    yield conn;
  }
}
