import assert from "node:assert/strict";
import { withTimeout } from "./with_timeout.ts";

const waitForAbort = (signal: AbortSignal) =>
  new Promise<never>((_, reject) =>
    signal.addEventListener("abort", () => reject(new Error("saw abort")))
  );

Deno.test("withTimeout() resolves with fn's value when it is in time", async () => {
  assert.equal(await withTimeout(() => Promise.resolve(42), 1000), 42);
});

Deno.test("withTimeout() rejects with TimeoutError and aborts fn's signal", async () => {
  let signalSeen: AbortSignal | undefined;
  const error = await withTimeout((signal) => {
    signalSeen = signal;
    return new Promise(() => {}); // ignores its signal entirely
  }, 10).catch((e: DOMException) => e);
  assert.equal((error as DOMException).name, "TimeoutError");
  assert.equal(signalSeen?.aborted, true);
});

Deno.test("withTimeout() passes on an outer signal's reason", async () => {
  const outer = new AbortController();
  const pending = withTimeout(waitForAbort, 60_000, { signal: outer.signal });
  outer.abort(new Error("deadline passed"));
  await assert.rejects(pending, { message: "deadline passed" });
  await assert.rejects(
    withTimeout(() => Promise.resolve(1), 1000, { signal: AbortSignal.abort(new Error("early")) }),
    { message: "early" },
  );
});

Deno.test("withTimeout() passes on fn's own error, thrown or rejected", async () => {
  await assert.rejects(
    withTimeout(() => {
      throw new Error("sync");
    }, 1000),
    { message: "sync" },
  );
  await assert.rejects(withTimeout(() => Promise.reject(new Error("async")), 1000), {
    message: "async",
  });
});

Deno.test("withTimeout() refuses a timeout a timer cannot hold, instead of firing at once", () => {
  const fn = () => Promise.resolve(1);
  for (const timeout of [-1, NaN, 2 ** 31, Infinity]) {
    assert.throws(() => withTimeout(fn, timeout), RangeError, String(timeout));
  }
  // The longest one a timer holds is fine (and cleared as soon as fn settles).
  return withTimeout(fn, 2 ** 31 - 1).then((value) => assert.equal(value, 1));
});
