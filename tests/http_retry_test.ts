// scripts/http_retry.ts: against a controlled server on loopback, the exact
// number of attempts in each case, the waits (on fake time: no test sleeps
// through a backoff), Retry-After honoured and capped, POST not retried, the
// deadline and an abort respected; then the command line.
//
// Fake time: setTimeout is replaced by one that records each wait, moves a
// fake clock (Date.now) forward by it, and fires at once, as in
// lib/retry_test.ts. The one timer left on real time is the per-attempt
// timeout, set to an hour here and cleared when each attempt ends. The
// deadline is an AbortSignal.timeout, which runs on Deno's own timers, so
// faking setTimeout does not touch it either.

import assert from "node:assert/strict";
import {
  type AttemptReport,
  type FetchRetryOptions,
  fetchWithRetry,
  formatAttempt,
  isRetriableStatus,
  NetworkError,
  parseRetryAfter,
} from "../scripts/http_retry.ts";
import { RetryError } from "../lib/retry_error.ts";
import { runScript, startServer } from "./_helpers.ts";

const HOUR = 3_600_000;

// ---------------------------------------------------------------------------
// A controlled server: the test says what each request gets
// ---------------------------------------------------------------------------

interface Seen {
  method: string;
  body: string;
  idempotencyKey: string | null;
}

// Answer the n-th request (from 1) with script(n, request). A script may
// return `hang` for a request that is never answered (until the test ends).
async function controlled(
  script: (n: number, request: Request) => Response | "hang",
  body: (server: { url: string; seen: Seen[]; arrived: Promise<void> }) => Promise<void>,
) {
  const seen: Seen[] = [];
  let release = () => {};
  const released = new Promise<void>((resolve) => release = resolve);
  let arrive = () => {};
  const arrived = new Promise<void>((resolve) => arrive = resolve);
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    seen.push({
      method: request.method,
      body: await request.text(),
      idempotencyKey: request.headers.get("idempotency-key"),
    });
    arrive();
    const answer = script(seen.length, request);
    if (answer === "hang") {
      await released;
      return new Response("too late");
    }
    return answer;
  });
  try {
    await body({ url: `http://127.0.0.1:${server.addr.port}/`, seen, arrived });
  } finally {
    release();
    await server.shutdown();
  }
}

const status = (code: number, headers: HeadersInit = {}, text = `status ${code}`) =>
  new Response(text, { status: code, headers });

// fetchWithRetry with its reports collected; the per-attempt timeout is an
// hour unless the test says otherwise (see the note at the top).
interface Attempted {
  /** The response, if fetchWithRetry() resolved, and its body as text. */
  response?: Response;
  text?: string;
  /** What it rejected with, if it did. */
  error?: unknown;
  reports: AttemptReport[];
  /** What each report said would happen next. */
  next: AttemptReport["next"][];
}

async function attempt(url: string, options: FetchRetryOptions = {}): Promise<Attempted> {
  const reports: AttemptReport[] = [];
  const outcome: Pick<Attempted, "response" | "text" | "error"> = await fetchWithRetry(url, {
    timeout: HOUR,
    ...options,
    onAttempt: (report) => {
      reports.push(report);
      options.onAttempt?.(report);
    },
  }).then(
    async (response) => ({ response, text: await response.text() }),
    (error) => ({ error }),
  );
  return { ...outcome, reports, next: reports.map((report) => report.next) };
}

// Run `body` on fake time; return the waits it scheduled and what it returned.
async function onFakeTime<T>(body: () => Promise<T>, random?: number) {
  const waits: number[] = [];
  const realSetTimeout = globalThis.setTimeout;
  const realNow = Date.now;
  const realRandom = Math.random;
  let offset = 0;
  globalThis.setTimeout = ((callback: () => void, ms = 0) => {
    if (ms >= HOUR) return realSetTimeout(callback, ms);
    waits.push(ms);
    offset += ms;
    return realSetTimeout(callback, 0);
  }) as typeof setTimeout;
  Date.now = () => realNow() + offset;
  if (random !== undefined) Math.random = () => random;
  try {
    return { result: await body(), waits };
  } finally {
    globalThis.setTimeout = realSetTimeout;
    Date.now = realNow;
    Math.random = realRandom;
  }
}

const sum = (numbers: number[]) => numbers.reduce((a, b) => a + b, 0);
const reportedWaits = (reports: AttemptReport[]) =>
  reports.filter((report) => report.next === "retry").map((report) => report.wait!);

// ---------------------------------------------------------------------------
// Which answers are retried, and how many times
// ---------------------------------------------------------------------------

Deno.test("fetchWithRetry() retries a 503 until the first success: exactly 3 attempts", async () => {
  await controlled((n) => n <= 2 ? status(503) : status(200), async ({ url, seen }) => {
    const { result } = await onFakeTime(() => attempt(url));
    assert.equal(result.response?.status, 200);
    assert.equal(result.text, "status 200");
    assert.deepEqual(result.next, ["retry", "retry", "done"]);
    assert.equal(seen.length, 3);
  });
});

Deno.test("fetchWithRetry() gives up after maxAttempts and returns the last 5xx, body intact", async () => {
  let n = 0;
  await controlled(() => status(500, {}, `failure ${++n}`), async ({ url, seen }) => {
    const { result } = await onFakeTime(() => attempt(url, { maxAttempts: 3 }));
    assert.equal(result.response?.status, 500);
    assert.equal(result.text, "failure 3");
    assert.deepEqual(result.next, ["retry", "retry", "give up"]);
    assert.match(result.reports[2].why, /all 3 attempts used/);
    assert.equal(seen.length, 3);
  });
});

Deno.test("fetchWithRetry() never retries a 4xx (or 501, 505): one attempt each", async () => {
  for (const code of [400, 401, 403, 404, 409, 422, 501, 505]) {
    await controlled(() => status(code), async ({ url, seen }) => {
      const { result, waits } = await onFakeTime(() => attempt(url));
      assert.equal(result.response?.status, code);
      assert.deepEqual(result.next, ["done"], `${code}`);
      assert.equal(seen.length, 1, `${code}`);
      assert.deepEqual(waits, []);
    });
  }
});

Deno.test("fetchWithRetry() retries 429 and every retriable 5xx", async () => {
  for (const code of [429, 500, 502, 503, 504]) {
    await controlled((n) => n === 1 ? status(code) : status(200), async ({ url, seen }) => {
      const { result } = await onFakeTime(() => attempt(url));
      assert.equal(result.response?.status, 200, `${code}`);
      assert.equal(seen.length, 2, `${code}`);
    });
  }
});

Deno.test("isRetriableStatus() is 429 and 5xx but 501 and 505", () => {
  const retried = [];
  for (let code = 100; code <= 599; code++) if (isRetriableStatus(code)) retried.push(code);
  const expected = [429];
  for (let code = 500; code <= 599; code++) if (code !== 501 && code !== 505) expected.push(code);
  assert.deepEqual(retried, expected);
});

// ---------------------------------------------------------------------------
// The waits: backoff with jitter, on fake time
// ---------------------------------------------------------------------------

Deno.test("fetchWithRetry() backs off minTimeout * multiplier ** n, capped, with jitter 0", async () => {
  await controlled(() => status(503), async ({ url }) => {
    const { result, waits } = await onFakeTime(() =>
      attempt(url, { maxAttempts: 6, minTimeout: 100, maxTimeout: 1000, jitter: 0 })
    );
    assert.deepEqual(reportedWaits(result.reports), [100, 200, 400, 800, 1000]);
    assert.deepEqual(waits, [100, 200, 400, 800, 1000]);
  });
});

Deno.test("fetchWithRetry() waits fall within the jitter bounds", async () => {
  const bases = [100, 200, 400, 800, 1000];
  // Each wait is backoff * (1 - jitter * Math.random()), rounded: random 0
  // waits the whole backoff, random near 1 skips the jitter's share of it.
  const exact: [jitter: number, random: number, waits: number[]][] = [
    [0.5, 0, bases],
    [0.5, 0.5, [75, 150, 300, 600, 750]],
    [0.5, 0.999, [50, 100, 200, 400, 500]],
    [1, 0, bases],
    [1, 0.5, [50, 100, 200, 400, 500]],
    [1, 0.999, [0, 0, 0, 1, 1]],
  ];
  await controlled(() => status(503), async ({ url }) => {
    for (const [jitter, random, expected] of exact) {
      const { result, waits } = await onFakeTime(
        () => attempt(url, { maxAttempts: 6, minTimeout: 100, maxTimeout: 1000, jitter }),
        random,
      );
      const which = `jitter ${jitter}, Math.random() ${random}`;
      assert.deepEqual(reportedWaits(result.reports), expected, which);
      assert.deepEqual(waits, expected, which);
    }
    // And with Math.random() itself: always within the bounds.
    for (const jitter of [0.5, 1]) {
      for (let run = 0; run < 20; run++) {
        const { result, waits } = await onFakeTime(() =>
          attempt(url, { maxAttempts: 6, minTimeout: 100, maxTimeout: 1000, jitter })
        );
        const reported = reportedWaits(result.reports);
        assert.equal(reported.length, bases.length);
        for (const [i, wait] of reported.entries()) {
          const low = Math.round(bases[i] * (1 - jitter));
          assert.ok(
            wait >= low && wait <= bases[i],
            `wait ${i}: ${wait} not in [${low}, ${bases[i]}]`,
          );
        }
        // What was reported is what was waited.
        assert.equal(sum(waits), sum(reported));
      }
    }
  });
});

Deno.test("fetchWithRetry() with full jitter and Math.random() near 1 waits almost nothing", async () => {
  await controlled(() => status(503), async ({ url }) => {
    const { result } = await onFakeTime(
      () => attempt(url, { maxAttempts: 3, minTimeout: 1000 }),
      0.9999,
    );
    assert.deepEqual(reportedWaits(result.reports), [0, 0]);
  });
});

// ---------------------------------------------------------------------------
// Retry-After
// ---------------------------------------------------------------------------

Deno.test("fetchWithRetry() honours Retry-After in seconds when it is longer than the backoff", async () => {
  await controlled(
    (n) => n === 1 ? status(503, { "retry-after": "3" }) : status(200),
    async ({ url, seen }) => {
      const { result, waits } = await onFakeTime(() =>
        attempt(url, { minTimeout: 100, jitter: 0 })
      );
      assert.equal(result.response?.status, 200);
      assert.deepEqual(reportedWaits(result.reports), [3000]);
      assert.equal(sum(waits), 3000);
      assert.match(result.reports[0].why, /Retry-After: 3 s/);
      assert.equal(seen.length, 2);
    },
  );
});

Deno.test("fetchWithRetry() honours Retry-After as an HTTP-date", async () => {
  await controlled(
    (n) =>
      n === 1
        ? status(429, { "retry-after": new Date(Date.now() + 5000).toUTCString() })
        : status(200),
    async ({ url }) => {
      const { result, waits } = await onFakeTime(() =>
        attempt(url, { minTimeout: 100, jitter: 0 })
      );
      assert.equal(result.response?.status, 200);
      // An HTTP-date has whole seconds: 5 s from now, rounded down, is 4 to 5 s away.
      const [wait] = reportedWaits(result.reports);
      assert.ok(wait > 3900 && wait <= 5000, `waited ${wait}`);
      assert.equal(sum(waits), wait);
    },
  );
});

Deno.test("fetchWithRetry() caps Retry-After at maxRetryAfter", async () => {
  await controlled(
    (n) => n === 1 ? status(503, { "retry-after": "3600" }) : status(200),
    async ({ url }) => {
      const { result, waits } = await onFakeTime(() =>
        attempt(url, { minTimeout: 100, jitter: 0, maxRetryAfter: 5000, deadline: HOUR })
      );
      assert.equal(result.response?.status, 200);
      assert.deepEqual(reportedWaits(result.reports), [5000]);
      assert.equal(sum(waits), 5000);
      assert.match(result.reports[0].why, /Retry-After: 3600 s, cut to 5 s/);
    },
  );
});

Deno.test("fetchWithRetry() never waits less than the backoff, and ignores a malformed Retry-After", async () => {
  for (const retryAfter of ["0", "soon", "-5", "1.5"]) {
    await controlled(
      (n) => n === 1 ? status(503, { "retry-after": retryAfter }) : status(200),
      async ({ url }) => {
        const { result } = await onFakeTime(() => attempt(url, { minTimeout: 700, jitter: 0 }));
        assert.deepEqual(reportedWaits(result.reports), [700], retryAfter);
      },
    );
  }
});

Deno.test("parseRetryAfter() reads delay-seconds and the three HTTP-date forms", () => {
  const now = Date.parse("Sun, 06 Nov 1994 08:49:00 GMT");
  assert.equal(parseRetryAfter("0", now), 0);
  assert.equal(parseRetryAfter("120", now), 120_000);
  assert.equal(parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now), 37_000);
  assert.equal(parseRetryAfter("Sunday, 06-Nov-94 08:49:37 GMT", now), 37_000);
  assert.equal(parseRetryAfter("Sun Nov  6 08:49:37 1994", now), 37_000);
  assert.equal(parseRetryAfter("Sun, 06 Nov 1994 08:00:00 GMT", now), 0); // in the past
  for (const bad of ["", "-1", "1.5", "1e3", "soon", "Sun", "tomorrow, 9am", "0x10"]) {
    assert.equal(parseRetryAfter(bad, now), undefined, bad);
  }
  assert.equal(parseRetryAfter(null, now), undefined);
});

// ---------------------------------------------------------------------------
// Idempotency: POST is not retried unless it is safe
// ---------------------------------------------------------------------------

Deno.test("fetchWithRetry() does not retry a POST or a PATCH that got a 503", async () => {
  for (const method of ["POST", "PATCH"]) {
    await controlled(() => status(503), async ({ url, seen }) => {
      const { result, waits } = await onFakeTime(() => attempt(url, { method, body: "pay 10" }));
      assert.equal(result.response?.status, 503);
      assert.deepEqual(result.next, ["give up"]);
      assert.match(result.reports[0].why, new RegExp(`${method} is not idempotent`));
      assert.equal(seen.length, 1);
      assert.deepEqual(waits, []);
    });
  }
});

Deno.test("fetchWithRetry() retries the idempotent PUT and DELETE", async () => {
  for (const method of ["PUT", "DELETE"]) {
    await controlled((n) => n === 1 ? status(503) : status(200), async ({ url, seen }) => {
      const { result } = await onFakeTime(() => attempt(url, { method }));
      assert.equal(result.response?.status, 200);
      assert.deepEqual(seen.map((request) => request.method), [method, method]);
    });
  }
});

Deno.test("fetchWithRetry() retries a POST with an Idempotency-Key, sending the same key and body", async () => {
  await controlled((n) => n <= 2 ? status(503) : status(201), async ({ url, seen }) => {
    const { result } = await onFakeTime(() =>
      attempt(url, { method: "POST", body: "pay 10", headers: { "Idempotency-Key": "order-42" } })
    );
    assert.equal(result.response?.status, 201);
    assert.deepEqual(
      seen,
      Array(3).fill({ method: "POST", body: "pay 10", idempotencyKey: "order-42" }),
    );
  });
});

Deno.test("fetchWithRetry() retries a POST when the caller opts in", async () => {
  await controlled((n) => n === 1 ? status(502) : status(200), async ({ url, seen }) => {
    const { result } = await onFakeTime(() =>
      attempt(url, { method: "POST", body: "x", retryNonIdempotent: true })
    );
    assert.equal(result.response?.status, 200);
    assert.equal(seen.length, 2);
  });
});

Deno.test("fetchWithRetry() retries even a POST when the connection is refused: nothing was sent", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${listener.addr.port}/`;
  listener.close();
  const { result } = await onFakeTime(() => attempt(url, { method: "POST", maxAttempts: 3 }));
  assert.ok(result.error instanceof RetryError);
  assert.equal(result.error.attempts, 3);
  const cause = result.error.cause as NetworkError;
  assert.ok(cause instanceof NetworkError);
  assert.equal(cause.sent, false);
  assert.ok(cause.cause instanceof TypeError); // fetch's own error, kept
  assert.deepEqual(result.next, ["retry", "retry", "give up"]);
  assert.match(
    result.reports[0].outcome,
    /^cannot connect to 127\.0\.0\.1:\d+ \(Connection refused/,
  );
});

// A server that reads a request and hangs up without answering: the request
// was sent, so whether the server acted on it is unknown.
async function hangsUp(body: (url: string, requests: () => number) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let requests = 0;
  const serving = (async () => {
    for await (const conn of listener) {
      const buffer = new Uint8Array(4096);
      let head = "";
      while (!head.includes("\r\n\r\n")) {
        const n = await conn.read(buffer);
        if (n === null) break;
        head += new TextDecoder().decode(buffer.subarray(0, n));
      }
      requests++;
      conn.close();
    }
  })();
  try {
    await body(`http://127.0.0.1:${listener.addr.port}/`, () => requests);
  } finally {
    listener.close();
    await serving.catch(() => {});
  }
}

Deno.test("fetchWithRetry() does not resend a POST whose connection failed after sending", async () => {
  await hangsUp(async (url, requests) => {
    const { result } = await onFakeTime(() => attempt(url, { method: "POST", body: "pay 10" }));
    assert.ok(result.error instanceof NetworkError, String(result.error));
    assert.equal(result.error.sent, true);
    assert.deepEqual(result.next, ["give up"]);
    assert.equal(requests(), 1);
  });
});

Deno.test("fetchWithRetry() resends a GET whose connection failed after sending", async () => {
  await hangsUp(async (url, requests) => {
    const { result } = await onFakeTime(() => attempt(url, { maxAttempts: 3 }));
    assert.ok(result.error instanceof RetryError);
    assert.ok((result.error.cause as NetworkError).sent);
    assert.equal(requests(), 3);
  });
});

// ---------------------------------------------------------------------------
// Timeouts, the deadline, and abort (these use real time, briefly)
// ---------------------------------------------------------------------------

Deno.test("fetchWithRetry() times out a hung attempt and retries it", async () => {
  await controlled((n) => n <= 2 ? "hang" : status(200), async ({ url, seen }) => {
    const result = await attempt(url, { timeout: 500, minTimeout: 1 });
    assert.equal(result.response?.status, 200);
    assert.deepEqual(result.next, ["retry", "retry", "done"]);
    assert.match(result.reports[0].outcome, /no answer within 500 ms/);
    assert.equal(seen.length, 3);
  });
});

Deno.test("fetchWithRetry() does not resend a POST that timed out", async () => {
  await controlled(() => "hang", async ({ url, seen }) => {
    const result = await attempt(url, { method: "POST", body: "x", timeout: 100, minTimeout: 1 });
    assert.ok(result.error instanceof DOMException && result.error.name === "TimeoutError");
    assert.deepEqual(result.next, ["give up"]);
    assert.equal(seen.length, 1);
  });
});

Deno.test("fetchWithRetry() stops when the next wait would end past the deadline", async () => {
  await controlled(() => status(503), async ({ url, seen }) => {
    const { result, waits } = await onFakeTime(() =>
      attempt(url, { maxAttempts: 10, minTimeout: 1000, jitter: 0, deadline: 2500 })
    );
    // Waits of 1000 and then 2000 ms: the second would end at 3000 ms, past 2500.
    assert.equal(result.response?.status, 503);
    assert.deepEqual(waits, [1000]);
    assert.deepEqual(result.next, ["retry", "give up"]);
    assert.match(result.reports[1].why, /2000 ms wait would pass the 2500 ms deadline/);
    assert.equal(seen.length, 2);
  });
});

Deno.test("fetchWithRetry() gives up at once on a Retry-After that ends past the deadline", async () => {
  await controlled(() => status(503, { "retry-after": "20" }), async ({ url, seen }) => {
    const { result, waits } = await onFakeTime(() => attempt(url, { deadline: 5000 }));
    assert.equal(result.response?.status, 503);
    assert.deepEqual(result.next, ["give up"]);
    assert.deepEqual(waits, []);
    assert.equal(seen.length, 1);
  });
});

Deno.test("fetchWithRetry() cancels an attempt in flight when the deadline passes", async () => {
  await controlled(() => "hang", async ({ url, seen }) => {
    const result = await attempt(url, { deadline: 200 });
    assert.ok(result.error instanceof DOMException, String(result.error));
    assert.equal(result.error.name, "TimeoutError");
    assert.match(result.error.message, /200 ms deadline, after 1 attempts/);
    assert.equal(seen.length, 1);
  });
});

// A 200 whose body starts, then stops coming: the connection stays open.
const stalling = () =>
  new Response(
    new ReadableStream({ start: (c) => c.enqueue(new TextEncoder().encode("partial\n")) }),
    { headers: { "content-type": "text/plain" } },
  );

Deno.test("fetchWithRetry() keeps the deadline on the body: a stalled body rejects at the deadline", async () => {
  await controlled(stalling, async ({ url }) => {
    // A guard, so that a body nothing cuts off fails the test instead of hanging it.
    const guard = new AbortController();
    const timer = setTimeout(() => guard.abort(new Error("the body still hangs after 5 s")), 5000);
    try {
      const response = await fetchWithRetry(url, {
        timeout: HOUR,
        deadline: 300,
        signal: guard.signal,
      });
      assert.equal(response.status, 200, "the head came in time");
      await assert.rejects(response.text(), (error: unknown) => {
        assert.ok(error instanceof DOMException, String(error));
        assert.equal(error.name, "TimeoutError");
        return true;
      });
    } finally {
      clearTimeout(timer);
    }
  });
});

Deno.test("fetchWithRetry() stops at once when aborted during a wait", async () => {
  await controlled(() => status(503), async ({ url, seen }) => {
    const controller = new AbortController();
    const result = await attempt(url, {
      minTimeout: 60_000,
      maxTimeout: 60_000,
      jitter: 0,
      deadline: HOUR,
      signal: controller.signal,
      onAttempt: (report) => {
        if (report.next === "retry") queueMicrotask(() => controller.abort(new Error("cancelled")));
      },
    });
    assert.equal((result.error as Error)?.message, "cancelled");
    assert.equal(seen.length, 1);
    assert.deepEqual(
      result.reports.map(formatAttempt),
      [
        "attempt 1: 503 Service Unavailable; retry in 60000 ms (a 5xx may pass)",
        "attempt 2: not sent; give up (aborted)",
      ],
    );
  });
});

Deno.test("fetchWithRetry() stops at once when aborted during an attempt", async () => {
  await controlled(() => "hang", async ({ url, seen, arrived }) => {
    const controller = new AbortController();
    arrived.then(() => controller.abort(new Error("cancelled")));
    const result = await attempt(url, { signal: controller.signal });
    assert.equal((result.error as Error)?.message, "cancelled");
    assert.deepEqual(result.next, ["give up"]);
    assert.equal(
      formatAttempt(result.reports[0]),
      "attempt 1: cancelled in flight; give up (aborted)",
    );
    assert.equal(seen.length, 1);
  });
});

Deno.test("fetchWithRetry() sends nothing when the signal is already aborted", async () => {
  await controlled(() => status(200), async ({ url, seen }) => {
    const result = await attempt(url, { signal: AbortSignal.abort(new Error("too late")) });
    assert.equal((result.error as Error)?.message, "too late");
    assert.equal(seen.length, 0);
  });
});

Deno.test("formatAttempt() says what happened, what next, and why", () => {
  assert.equal(
    formatAttempt({ attempt: 3, outcome: "200 OK", status: 200, next: "done", why: "" }),
    "attempt 3: 200 OK; done",
  );
  assert.equal(
    formatAttempt({ attempt: 1, outcome: "503", next: "give up", why: "POST is not idempotent" }),
    "attempt 1: 503; give up (POST is not idempotent)",
  );
});

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

Deno.test("http_retry fetch: logs each attempt on stderr, prints the body, exits 0", async () => {
  await controlled((n) => n === 1 ? status(503) : status(200, {}, "made it\n"), async ({ url }) => {
    const result = await runScript("http_retry", ["fetch", url, "--backoff", "0.01"]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout, "made it\n");
    assert.match(result.stderr, /^note: attempt 1: 503 Service Unavailable; retry in \d+ ms/m);
    assert.match(result.stderr, /^note: attempt 2: 200 OK; done$/m);
  });
});

Deno.test("http_retry fetch: a POST with --idempotency-key is retried; without it, not", async () => {
  await controlled((n) => n <= 2 ? status(503) : status(200), async ({ url, seen }) => {
    const unsafe = await runScript("http_retry", ["fetch", url, "--method", "post", "--data", "x"]);
    assert.equal(unsafe.code, 1);
    assert.match(unsafe.stderr, /^error: .* answered 503 Service Unavailable$/m);
    assert.equal(seen.length, 1);
    const keyed = await runScript("http_retry", [
      "fetch",
      url,
      "--method=POST",
      "--data=x",
      "--idempotency-key=k1",
      "--backoff=0.01",
      "--quiet",
    ]);
    assert.equal(keyed.code, 0, keyed.stderr);
    assert.equal(keyed.stderr, "");
    assert.deepEqual(seen.slice(1).map((request) => request.idempotencyKey), ["k1", "k1"]);
  });
});

Deno.test("http_retry fetch: a 404 is one attempt and exit 1; a refused port, one error line", async () => {
  await controlled(() => status(404), async ({ url, seen }) => {
    const result = await runScript("http_retry", ["fetch", url]);
    assert.equal(result.code, 1);
    assert.equal(seen.length, 1);
    assert.match(result.stderr, /^error: .* answered 404 Not Found$/m);
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  const refused = await runScript("http_retry", [
    "fetch",
    `http://127.0.0.1:${listener.addr.port}/`,
    "--attempts=2",
    "--backoff=0.01",
    "--quiet",
  ]);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /^error: gave up after 2 attempts; the last one failed with: cannot connect to 127\.0\.0\.1:\d+: connection refused/,
  );
  assert.equal(refused.stderr.trim().split("\n").length, 1);
});

Deno.test("http_retry fetch: a body that stalls ends at --deadline, one error line, exit 1", async () => {
  await controlled(stalling, async ({ url }) => {
    const result = await runScript("http_retry", ["fetch", url, "--deadline=0.5", "--quiet"], {
      timeout: 10_000,
    });
    assert.ok(!result.timedOut, "still running after 10 s");
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "partial\n");
    assert.match(
      result.stderr,
      /^error: http:\/\/127\.0\.0\.1:\d+\/: the body was not complete within the 0\.5 s deadline .*--deadline\n$/,
    );
  });
});

Deno.test("http_retry: bad command lines exit 2 with one error line", async () => {
  for (
    const args of [["fetch"], ["fetch", "not a url"], ["get", "http://x/"], [
      "fetch",
      "http://127.0.0.1/",
      "--data=x",
    ], [
      "fetch",
      "http://127.0.0.1/",
      "--backoff=5",
      "--max-backoff=1",
    ]]
  ) {
    const result = await runScript("http_retry", args);
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.stderr, /^error: .+\n$/, `${args.join(" ")}: ${result.stderr}`);
  }
});

Deno.test("http_retry demo --url BASE: the same cases against another httpbin, none started", async () => {
  // "Another httpbin" is our own, run as a separate process: the demo must
  // send every request there, and start and stop nothing of its own.
  const httpbin = await startServer("httpbin", [], { scheme: "http" });
  const base = `http://${httpbin.hostname}:${httpbin.port}`;
  // (runScript never throws: it returns the exit code, and has its own time limit.)
  const result = await runScript("http_retry", ["--url", `${base}/`]);
  const { stdout: log } = await httpbin.stop();
  assert.equal(result.code, 0, result.stderr);
  assert.ok(result.stdout.startsWith(`httpbin: ${base} (--url)\n`), result.stdout);
  assert.doesNotMatch(result.stdout, /listening on|stopped/);
  assert.match(result.stdout, /attempt 3: 200 OK; done/); // /flaky/2, served over there
  assert.match(log, /GET \/flaky\/2/);
  const bad = await runScript("http_retry", ["fetch", "http://127.0.0.1:1/", "--url", "x"]);
  assert.equal(bad.code, 2);
});

Deno.test("http_retry demo: each case ends as the lesson says", async () => {
  const result = await runScript("http_retry");
  assert.equal(result.code, 0, result.stderr);
  const cases = result.stdout.split("\n\n");
  const find = (title: RegExp) => cases.find((text) => title.test(text)) ?? "";
  assert.match(find(/^GET \/flaky\/2/), /attempt 3: 200 OK; done/);
  assert.match(find(/Retry-After: 1/), /attempt 1: 429 Too Many Requests; retry in 1000 ms/);
  assert.match(find(/^GET \/status\/500/), /attempt 4: 500 .*give up \(all 4 attempts used\)/);
  assert.match(find(/^GET \/status\/404/), /attempt 1: 404 Not Found; done/);
  assert.match(find(/nothing listens/), /=> error: gave up after 4 attempts/);
  assert.match(find(/POST is not idempotent/), /attempt 1: 503 .*; give up \(POST is not/);
  assert.match(find(/^POST \/flaky\/1 with an Idempotency-Key/), /attempt 2: 200 OK; done/);
  assert.match(find(/deadline/), /=> error: timed out/);
});
