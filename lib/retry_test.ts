import assert from "node:assert/strict";
import { retry } from "./retry.ts";
import { RetryError } from "./retry_error.ts";

// The backoff schedule is checked without sleeping: setTimeout is replaced by
// one that records each wait and fires at once, and Math.random is fixed.
async function recordWaits<T>(random: number, body: () => Promise<T>) {
  const waits: number[] = [];
  const realSetTimeout = globalThis.setTimeout;
  const realRandom = Math.random;
  globalThis.setTimeout = ((callback: () => void, ms?: number) => {
    waits.push(ms ?? 0);
    return realSetTimeout(callback, 0);
  }) as typeof setTimeout;
  Math.random = () => random;
  try {
    const result = await body().catch((error) => error);
    return { waits, result };
  } finally {
    globalThis.setTimeout = realSetTimeout;
    Math.random = realRandom;
  }
}

const alwaysFails = () => Promise.reject(new Error("down"));

Deno.test("retry() waits minTimeout * multiplier ** n, capped at maxTimeout, with jitter 0", async () => {
  const { waits, result } = await recordWaits(0.5, () =>
    retry(alwaysFails, {
      maxAttempts: 6,
      minTimeout: 100,
      multiplier: 3,
      maxTimeout: 5000,
      jitter: 0,
    }));
  assert.deepEqual(waits, [100, 300, 900, 2700, 5000]);
  assert.ok(result instanceof RetryError);
  assert.equal(result.attempts, 6);
});

Deno.test("retry() has std's defaults: 5 attempts, 1 s doubling, full jitter", async () => {
  // With Math.random() = 0 full jitter waits the whole backoff; with 0.75, a quarter.
  const none = await recordWaits(0, () => retry(alwaysFails));
  assert.deepEqual(none.waits, [1000, 2000, 4000, 8000]);
  const quarter = await recordWaits(0.75, () => retry(alwaysFails));
  assert.deepEqual(quarter.waits, [250, 500, 1000, 2000]);
  const half = await recordWaits(0.5, () => retry(alwaysFails, { jitter: 0.5 }));
  assert.deepEqual(half.waits, [750, 1500, 3000, 6000]);
});

Deno.test("retry() returns the first success and reports each retry", async () => {
  let calls = 0;
  const log: [string, number, number][] = [];
  const { result, waits } = await recordWaits(0, () =>
    retry(() => {
      if (++calls < 3) throw new Error(`fail ${calls}`);
      return Promise.resolve("ok");
    }, {
      minTimeout: 10,
      onRetry: (error, attempt, wait) => log.push([(error as Error).message, attempt, wait]),
    }));
  assert.equal(result, "ok");
  assert.deepEqual(waits, [10, 20]);
  assert.deepEqual(log, [["fail 1", 1, 10], ["fail 2", 2, 20]]);
});

Deno.test("retry() rethrows an error isRetriable rejects, unwrapped and at once", async () => {
  let calls = 0;
  const fatal = new TypeError("bad request");
  await assert.rejects(
    retry(() => {
      calls++;
      throw fatal;
    }, { isRetriable: (error) => !(error instanceof TypeError) }),
    (error) => error === fatal,
  );
  assert.equal(calls, 1);
});

Deno.test("retry() gives up with RetryError whose cause is the last error", async () => {
  let calls = 0;
  const error = await retry(() => Promise.reject(new Error(`attempt ${++calls}`)), {
    maxAttempts: 3,
    minTimeout: 0,
  }).catch((e) => e);
  assert.ok(error instanceof RetryError);
  assert.equal((error.cause as Error).message, "attempt 3");
});

Deno.test("retry() rejects with signal.reason when aborted during a wait, and stops", async () => {
  const controller = new AbortController();
  let calls = 0;
  const pending = retry(() => {
    calls++;
    queueMicrotask(() => controller.abort(new Error("user cancelled")));
    return Promise.reject(new Error("down"));
  }, { minTimeout: 60_000, maxTimeout: 60_000, jitter: 0, signal: controller.signal });
  await assert.rejects(pending, { message: "user cancelled" });
  assert.equal(calls, 1);
});

Deno.test("retry() does not start when the signal is already aborted", async () => {
  let calls = 0;
  await assert.rejects(
    retry(() => Promise.resolve(++calls), { signal: AbortSignal.abort(new Error("stop")) }),
    { message: "stop" },
  );
  assert.equal(calls, 0);
});

Deno.test("retry() refuses contradictory options with TypeError", async () => {
  const ok = () => Promise.resolve(1);
  await assert.rejects(retry(ok, { minTimeout: 10, maxTimeout: 5 }), TypeError);
  await assert.rejects(retry(ok, { jitter: 2 }), TypeError);
  await assert.rejects(retry(ok, { maxAttempts: 0 }), TypeError);
  await assert.rejects(retry(ok, { multiplier: 0.5 }), TypeError);
});

Deno.test("retry() refuses a multiplier that is not a finite number, as std's retry() does", async () => {
  const ok = () => Promise.resolve(1);
  for (const multiplier of [Infinity, NaN]) {
    await assert.rejects(retry(ok, { multiplier }), TypeError, String(multiplier));
  }
});

Deno.test("retry() waits what delayFor returns, given the error, attempt and computed wait", async () => {
  const seen: [string, number, number][] = [];
  const told: number[] = [];
  let calls = 0;
  const { waits, result } = await recordWaits(0, () =>
    retry(() => {
      if (++calls < 4) throw new Error(`busy ${calls}`);
      return Promise.resolve("ok");
    }, {
      minTimeout: 100,
      delayFor: (error, attempt, computed) => {
        seen.push([(error as Error).message, attempt, computed]);
        return attempt === 2 ? 5000 : 0;
      },
      onRetry: (_error, _attempt, wait) => told.push(wait),
    }));
  assert.equal(result, "ok");
  assert.deepEqual(seen, [["busy 1", 1, 100], ["busy 2", 2, 200], ["busy 3", 3, 400]]);
  assert.deepEqual(waits, [0, 5000, 0]);
  assert.deepEqual(told, [0, 5000, 0]);
});

Deno.test("retry() rejects at once with what delayFor throws, without waiting", async () => {
  let calls = 0;
  const stop = new Error("the wait would pass the deadline");
  const { waits, result } = await recordWaits(0, () =>
    retry(() => {
      calls++;
      return Promise.reject(new Error("busy"));
    }, {
      delayFor: () => {
        throw stop;
      },
    }));
  assert.equal(result, stop);
  assert.equal(calls, 1);
  assert.deepEqual(waits, []);
});

Deno.test("retry() refuses a wait from delayFor that is not a number >= 0", async () => {
  for (const bad of [-1, NaN, Infinity]) {
    const { result } = await recordWaits(
      0,
      () => retry(() => Promise.reject(new Error("busy")), { delayFor: () => bad }),
    );
    assert.ok(result instanceof RangeError, String(bad));
  }
});

Deno.test("retry() does not wait when the signal aborts before the wait (in onRetry)", async () => {
  const controller = new AbortController();
  let calls = 0;
  const pending = retry(() => {
    calls++;
    return Promise.reject(new Error("down"));
  }, {
    minTimeout: 60_000,
    maxTimeout: 60_000,
    jitter: 0,
    signal: controller.signal,
    onRetry: () => controller.abort(new Error("user cancelled")),
  });
  await assert.rejects(pending, { message: "user cancelled" });
  assert.equal(calls, 1);
});
