import assert from "node:assert/strict";
import { describeError } from "./describe_error.ts";
import { RetryError } from "./retry_error.ts";

// Real errors, from the real APIs, so the test follows Deno's own messages.
async function errorOf(fn: () => Promise<unknown> | unknown): Promise<unknown> {
  try {
    await fn();
  } catch (error) {
    return error;
  }
  throw new Error("expected an error");
}

function unusedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

Deno.test("describeError() explains a refused connection, keeping the caller's context", async () => {
  const port = unusedPort();
  const refused = await errorOf(() => Deno.connect({ hostname: "127.0.0.1", port }));
  const wrapped = new Error(`cannot connect to tcp://127.0.0.1:${port}`, { cause: refused });
  const line = describeError(wrapped);
  assert.match(line, new RegExp(`^cannot connect to tcp://127.0.0.1:${port}: connection refused`));
  assert.match(line, /--host and --port/);
  assert.ok(!line.includes("\n"));
});

Deno.test("describeError() explains an address in use and suggests --port 0", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const error = await errorOf(() =>
    Deno.listen({ hostname: "127.0.0.1", port: listener.addr.port })
  );
  listener.close();
  assert.match(describeError(error), /^address already in use: .*--port \(0 picks any free port\)/);
});

Deno.test("describeError() names the missing permission and the narrowest flag", () => {
  const net = new Deno.errors.NotCapable(
    'Requires net access to "example.com:21", run again with the --allow-net flag',
  );
  assert.equal(
    describeError(net),
    "missing permission: needs net access to example.com:21; run again with --allow-net=example.com",
  );
  const read = new Deno.errors.NotCapable(
    'Requires read access to "/srv/ftp", run again with the --allow-read flag',
  );
  assert.match(describeError(read), /--allow-read=\/srv\/ftp$/);
});

Deno.test("describeError() explains timeouts, name resolution, resets and retries", () => {
  assert.match(
    describeError(new DOMException("timed out after 500 ms", "TimeoutError")),
    /^timed out \(timed out after 500 ms\): the peer did not answer in time/,
  );
  assert.match(
    describeError(new Error("failed to lookup address information: Name or service not known")),
    /^could not resolve the host name/,
  );
  assert.match(describeError(new Deno.errors.ConnectionReset("reset")), /closed the connection/);
  const retried = new RetryError(new Deno.errors.ConnectionRefused("refused"), 5);
  assert.match(describeError(retried), /^gave up after 5 attempts; .*connection refused/);
});

Deno.test("describeError() falls back to the message, or the value itself", () => {
  assert.equal(describeError(new Error("something odd")), "something odd");
  assert.equal(describeError("a string"), "a string");
});

Deno.test("describeError() explains fetch() failures from the words down their cause chain", async () => {
  const port = unusedPort();
  const refused = await errorOf(() => fetch(`http://127.0.0.1:${port}/`));
  const wrapped = new Error(`cannot reach http://127.0.0.1:${port}`, { cause: refused });
  assert.match(
    describeError(wrapped),
    /^cannot reach http:\/\/127.0.0.1:\d+: connection refused: nothing is listening/,
  );
  const unresolved = new TypeError("fetch failed", {
    cause: new Error(
      "error sending request for url (http://x.invalid/): client error (Connect): dns error: " +
        "failed to lookup address information: Name or service not known",
    ),
  });
  assert.match(describeError(unresolved), /could not resolve the host name/);
});

Deno.test("describeError() keeps a wrapper's own words even when they mention a known cause", () => {
  const cause = new TypeError("fetch failed", {
    cause: new Error(
      "client error (Connect): tcp connect error: Connection refused (os error 111)",
    ),
  });
  const wrapper = new Error("GET http://127.0.0.1:9/: connection refused (nothing listens there)", {
    cause,
  });
  assert.match(describeError(wrapper), /^GET http:\/\/127.0.0.1:9\/: connection refused \(nothing/);
});
