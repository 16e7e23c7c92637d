import assert from "node:assert/strict";
import { acceptConnections } from "./accept_connections.ts";

// A listener that fails or succeeds as told: real accept() failures (EMFILE)
// are hard to cause on demand; scripts/tcp_echo's tests cause one for real.
function scriptedListener(steps: (Error | Deno.Conn)[]) {
  return {
    accept(): Promise<Deno.Conn> {
      const step = steps.shift() ?? new Deno.errors.BadResource("Listener has been closed");
      return step instanceof Error ? Promise.reject(step) : Promise.resolve(step);
    },
  };
}
const fakeConn = (name: string) => ({ name }) as unknown as Deno.Conn;

Deno.test("acceptConnections() yields every connection and ends when the listener closes", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const clients = await Promise.all(
    [1, 2, 3].map(() => Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port })),
  );
  const accepted: Deno.Conn[] = [];
  for await (const conn of acceptConnections(listener)) {
    accepted.push(conn);
    if (accepted.length === 3) listener.close();
  }
  assert.equal(accepted.length, 3);
  for (const conn of [...accepted, ...clients]) conn.close();
});

Deno.test("acceptConnections() reports a failed accept(), waits retryDelay, and goes on", async () => {
  const emfile = new Error("Too many open files (os error 24)");
  const reset = new Deno.errors.ConnectionReset("Connection reset by peer");
  const scripted = scriptedListener([fakeConn("a"), emfile, reset, fakeConn("b")]);
  // What happens, in order: each accept() call, each error reported, and each
  // timer started (with its delay). The timers are recorded, then run at once,
  // so the test checks that the pause is asked for, not how long it took.
  const events: string[] = [];
  const listener = {
    accept() {
      events.push("accept");
      return scripted.accept();
    },
  };
  const errors: Error[] = [];
  const names: string[] = [];
  const realSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = ((fn: () => void, ms?: number) => {
    events.push(`wait ${ms} ms`);
    return realSetTimeout(fn, 0);
  }) as typeof setTimeout;
  try {
    for await (
      const conn of acceptConnections(listener, {
        onError: (e) => {
          errors.push(e);
          events.push("error");
        },
        retryDelay: 37,
      })
    ) {
      names.push((conn as unknown as { name: string }).name);
    }
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  assert.deepEqual(names, ["a", "b"]);
  assert.deepEqual(errors, [emfile, reset]);
  assert.deepEqual(events, [
    "accept", // a
    "accept", // EMFILE
    "error",
    "wait 37 ms",
    "accept", // reset
    "error",
    "wait 37 ms",
    "accept", // b
    "accept", // closed: the end
  ]);
});

Deno.test("acceptConnections() stops when its signal aborts, even between failures", async () => {
  const controller = new AbortController();
  const failing = {
    accept(): Promise<Deno.Conn> {
      controller.abort(); // the server shuts down while accept() fails
      return Promise.reject(new Error("Too many open files (os error 24)"));
    },
  };
  const errors: Error[] = [];
  for await (
    const _ of acceptConnections(failing, {
      onError: (e) => errors.push(e),
      signal: controller.signal,
    })
  ) {
    assert.fail("nothing is accepted");
  }
  assert.deepEqual(errors, []);
  for await (
    const _ of acceptConnections(scriptedListener([fakeConn("x")]), { signal: controller.signal })
  ) {
    assert.fail("an aborted signal accepts nothing");
  }
});

Deno.test("acceptConnections() refuses a bad retryDelay", async () => {
  for (const retryDelay of [-1, NaN]) {
    await assert.rejects(
      acceptConnections(scriptedListener([]), { retryDelay }).next(),
      RangeError,
    );
  }
});
