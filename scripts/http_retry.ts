#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title Retries that behave: HTTP requests that survive a bad network without making it worse
 * @difficulty intermediate
 * @tags cli, network, http, retry, resilience
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc9110#section-9.2.2} RFC 9110 §9.2.2: Idempotent Methods
 * @resource {https://www.rfc-editor.org/rfc/rfc9110#section-10.2.3} RFC 9110 §10.2.3: Retry-After
 * @resource {https://www.rfc-editor.org/rfc/rfc9110#section-15.6} RFC 9110 §15.6: Server Error 5xx
 * @resource {https://www.rfc-editor.org/rfc/rfc6585#section-4} RFC 6585 §4: 429 Too Many Requests
 * @resource {https://datatracker.ietf.org/doc/draft-ietf-httpapi-idempotency-key-header/} The Idempotency-Key HTTP Header Field (IETF draft)
 * @resource {https://aws.amazon.com/builders-library/timeouts-retries-and-backoff-with-jitter/} Amazon Builders' Library: Timeouts, retries, and backoff with jitter
 *
 * A request that fails may work a moment later: the server was restarting,
 * overloaded, or a connection broke on the way. Asking again is easy; asking
 * again *well* is the lesson. Retry only what may change (a network error, a
 * 5xx, a 429), never a 4xx, which will say the same thing again. Wait longer
 * after each failure, and a random part of it, so a crowd of clients does not
 * come back all at once (exponential backoff with jitter, from
 * lib/retry.ts). When the server says how long to wait (`Retry-After`, in
 * seconds or as a date), wait at least that, up to a cap. Do not repeat a
 * POST: the server may have acted on the first one, unless the request
 * carries an `Idempotency-Key` or the caller says it is safe. Bound every
 * attempt with a timeout, and all of them together with a deadline. With no
 * arguments, it starts scripts/httpbin.ts on a free loopback port and sends
 * requests that fail in different ways, logging each attempt and its wait.
 * Taught cell by cell in notebooks/14_http_retry.ipynb.
 */

import { parseFlags } from "../lib/parse_flags.ts";
import { retry } from "../lib/retry.ts";
import { RetryError } from "../lib/retry_error.ts";
import { withTimeout } from "../lib/with_timeout.ts";
import { writeAll } from "../lib/write_all.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { describeError } from "../lib/describe_error.ts";
import { serveHttpbin } from "./httpbin.ts";

const USAGE = `
http_retry.ts: HTTP requests retried the careful way: backoff with jitter, Retry-After,
idempotency, a timeout per attempt and a deadline for all (RFC 9110 §9.2.2, §10.2.3; RFC 6585)

usage:
  http_retry.ts                   demo: start httpbin (scripts/httpbin.ts) on a free port and send
                                  requests that fail in different ways; print what happens to each
  http_retry.ts --url BASE        the same demo against BASE, e.g. https://httpbin.org (which has
                                  no /flaky route: those cases then end at once with a 404)
  http_retry.ts fetch URL [flags] send one request, retried as needed: each attempt is logged on
                                  stderr, the final answer's body goes to stdout

flags (demo):
  --url BASE                the httpbin to use instead of starting one

flags (fetch):
  --method METHOD           the request method (default GET)
  --data TEXT               a request body
  --idempotency-key KEY     send Idempotency-Key: KEY, which makes a POST safe to retry
  --retry-post              retry a non-idempotent request (POST, PATCH) anyway
  --attempts N              at most N attempts in all (default 4)
  --backoff SECS            the wait after the first failure; it doubles after each, and a random
                            part of it is skipped (full jitter) (default 0.5)
  --max-backoff SECS        the longest backoff (default 10)
  --timeout SECS            give up on one attempt after this long (default 10)
  --deadline SECS           give up on all attempts, waits and the body after this long
                            (default 30)
  --max-retry-after SECS    honour a Retry-After up to this long, and no longer (default 30)
  --quiet                   do not log the attempts
  -h, --help                show this help

exit status (fetch): 0 for a 2xx or 3xx answer, 1 otherwise (a 4xx, a 5xx we gave up on, no answer)

permissions:
  demo, and a URL on 127.0.0.1:   --allow-net=127.0.0.1
  a URL elsewhere, or --url:      --allow-net=HOST,127.0.0.1 (or plain --allow-net; the demo
                                  also tries a closed port on 127.0.0.1)
`;

// ---------------------------------------------------------------------------
// What is worth another attempt
// ---------------------------------------------------------------------------

// RFC 9110 §9.2.2: a method is idempotent if sending the request twice has
// the same effect on the server as sending it once. GET, HEAD, OPTIONS and
// TRACE change nothing; PUT replaces, DELETE removes, and doing either again
// leaves things as they were. POST ("append this", "pay this") and PATCH may
// do it twice, and CONNECT opens a second tunnel.
/** The methods RFC 9110 §9.2.2 calls idempotent: repeating one does no harm. */
export const IDEMPOTENT_METHODS: ReadonlySet<string> = new Set([
  "GET",
  "HEAD",
  "OPTIONS",
  "TRACE",
  "PUT",
  "DELETE",
]);

/**
 * Whether an answer with this status may be different if asked again: 429
 * Too Many Requests (RFC 6585 §4) and the 5xx server errors (RFC 9110
 * §15.6), except 501 Not Implemented and 505 HTTP Version Not Supported,
 * which say the server cannot do this at all, not that it cannot right now.
 * A 4xx says the request itself is wrong; sent again, it is wrong again.
 *
 * @param status An HTTP status code.
 * @returns Whether to retry it (for a request that is safe to repeat).
 *
 * @example
 * ```ts
 * import { isRetriableStatus } from "./http_retry.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([200, 404, 429, 500, 501, 503].map(isRetriableStatus),
 *   [false, false, true, true, false, true]);
 * ```
 */
export function isRetriableStatus(status: number): boolean {
  return status === 429 || (status >= 500 && status <= 599 && status !== 501 && status !== 505);
}

/**
 * Read a `Retry-After` field (RFC 9110 §10.2.3): how long the server asks us
 * to wait, either `delay-seconds` (`120`) or an HTTP-date
 * (`Wed, 21 Oct 2015 07:28:00 GMT`, or one of the two obsolete forms). A
 * date in the past means no wait. Anything else is not a Retry-After and is
 * ignored, as the RFC expects of a malformed field.
 *
 * @param value The field's value, or `null` if there is none.
 * @param now The current time in ms since the epoch, for dates. @default {Date.now()}
 * @returns The wait in ms, or `undefined` if there is no valid field.
 *
 * @example
 * ```ts
 * import { parseRetryAfter } from "./http_retry.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseRetryAfter("120"), 120_000);
 * const now = Date.parse("Wed, 21 Oct 2015 07:28:00 GMT");
 * assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:28:30 GMT", now), 30_000);
 * assert.equal(parseRetryAfter("Wed, 21 Oct 2015 07:00:00 GMT", now), 0);
 * assert.equal(parseRetryAfter("soon"), undefined);
 * assert.equal(parseRetryAfter(null), undefined);
 * ```
 */
export function parseRetryAfter(
  value: string | null,
  now: number = Date.now(),
): number | undefined {
  if (value === null) return undefined;
  const text = value.trim();
  if (/^\d+$/.test(text)) return Number(text) * 1000;
  // Each HTTP-date form starts with a day name: "Sun, 06 Nov 1994 08:49:37 GMT"
  // (IMF-fixdate), "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994"
  // (asctime, which is GMT but does not say so).
  if (!/^(Mon|Tue|Wed|Thu|Fri|Sat|Sun)[a-z]*,? /.test(text)) return undefined;
  const date = Date.parse(/GMT$/.test(text) ? text : `${text} GMT`);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/**
 * An answer worth another attempt (a 5xx or a 429), thrown so that
 * {@linkcode retry} sees it as a failure. It carries the response: if the
 * retrying stops here, this response is what the caller gets.
 */
export class RetriableResponse extends Error {
  /** @param response The answer, its body not yet read. */
  constructor(readonly response: Response) {
    super(`${response.status} ${response.statusText}`.trim());
    this.name = "RetriableResponse";
  }
}

/**
 * A request that got no answer because the network failed. `sent` says
 * whether the failure came after the connection was made: if it did not (a
 * refused connection, a name that did not resolve), the server never saw the
 * request, and even a POST is safe to send again.
 */
export class NetworkError extends Error {
  /**
   * @param message What failed, for a person.
   * @param sent Whether the request may have reached the server.
   * @param options The underlying error, as `cause`.
   */
  constructor(message: string, readonly sent: boolean, options?: ErrorOptions) {
    super(message, options);
    this.name = "NetworkError";
  }
}

// fetch reports every network failure as TypeError("fetch failed"), with the
// real reason at the end of its cause's message: "error sending request for
// url (...): client error (Connect): tcp connect error: Connection refused
// (os error 111)". "(Connect)" means it failed while connecting, before a
// byte of the request was sent. That is the one fact retrying needs; the
// fetch error stays the cause, for lib/describe_error.ts to explain.
function networkError(error: unknown, url: URL): unknown {
  if (!(error instanceof TypeError) || !(error.cause instanceof Error)) return error;
  const sent = !error.cause.message.includes("(Connect)");
  const what = sent ? `the connection to ${url.host} failed` : `cannot connect to ${url.host}`;
  return new NetworkError(what, sent, { cause: error });
}

// The operating system's words at the end of fetch's message, for a report.
function networkReason(error: NetworkError): string {
  const detail = ((error.cause as Error).cause as Error).message;
  return detail.split(": ").at(-1) ?? detail;
}

// ---------------------------------------------------------------------------
// The request, retried
// ---------------------------------------------------------------------------

/**
 * What became of one attempt, for a log: {@linkcode formatAttempt} makes it a line.
 */
export interface AttemptReport {
  /** The attempt's number, from 1. */
  attempt: number;
  /** What it got: `503 Service Unavailable`, or what went wrong. */
  outcome: string;
  /** The status, when an answer came. */
  status?: number;
  /** What happens next: `done` (a final answer), `retry`, or `give up`. */
  next: "done" | "retry" | "give up";
  /** For `retry`: how long we wait first, in ms. */
  wait?: number;
  /** Why, in a few words. */
  why: string;
}

/**
 * One line for an attempt's report.
 *
 * @param report What became of the attempt.
 * @returns `attempt 2: 503 Service Unavailable; retry in 840 ms (a 5xx may pass)`.
 *
 * @example
 * ```ts
 * import { formatAttempt } from "./http_retry.ts";
 * import assert from "node:assert/strict";
 *
 * const line = formatAttempt({ attempt: 1, outcome: "429 Too Many Requests", status: 429,
 *   next: "retry", wait: 2000, why: "Retry-After: 2 s" });
 * assert.equal(line, "attempt 1: 429 Too Many Requests; retry in 2000 ms (Retry-After: 2 s)");
 * ```
 */
export function formatAttempt(report: AttemptReport): string {
  const { attempt, outcome, next, wait, why } = report;
  const then = next === "retry" ? `retry in ${wait} ms` : next;
  return `attempt ${attempt}: ${outcome}; ${then}${why ? ` (${why})` : ""}`;
}

/**
 * Options for {@linkcode fetchWithRetry}: the request (anything `fetch`
 * takes), and how to retry it. The backoff options have lib/retry.ts's names.
 */
export interface FetchRetryOptions extends RequestInit {
  /** How many attempts in all, the first included. @default {4} */
  maxAttempts?: number;
  /** The backoff after the first failure, in ms; it grows by `multiplier` after each. @default {500} */
  minTimeout?: number;
  /** The longest backoff, in ms. @default {10000} */
  maxTimeout?: number;
  /** How much the backoff grows after each failure. @default {2} */
  multiplier?: number;
  /** How much of each backoff is random, from 0 to 1 (full jitter). @default {1} */
  jitter?: number;
  /** Give up on one attempt (no answer yet) after this many ms. @default {10000} */
  timeout?: number;
  /**
   * Give up on the whole request after this many ms: attempts, waits, and
   * reading the returned response's body. @default {30000}
   */
  deadline?: number;
  /** Honour a Retry-After up to this many ms; a longer one is cut to this. @default {30000} */
  maxRetryAfter?: number;
  /** Retry a request that is not idempotent and has no Idempotency-Key: the caller knows it is safe. @default {false} */
  retryNonIdempotent?: boolean;
  /** Stops everything at once: the attempt in flight, the wait, or the body being read. */
  signal?: AbortSignal;
  /** Gets a report of each attempt, with what happens next and why. @default {nothing} */
  onAttempt?: (report: AttemptReport) => void;
}

// Why retrying stopped early: the reason, and the failure we stopped on.
class GiveUp extends Error {
  constructor(readonly failure: unknown, readonly why: string) {
    super(why);
  }
}

/**
 * `fetch`, retried when that can help and is safe.
 *
 * Retried: a network error, a per-attempt timeout, a 429 or a 5xx (see
 * {@linkcode isRetriableStatus}), after exponential backoff with jitter, or
 * after the server's `Retry-After` if that is longer (cut to
 * `maxRetryAfter`). Only for a request that is safe to repeat: an idempotent
 * method, an `Idempotency-Key` field, or `retryNonIdempotent`; other requests
 * are retried only when they never left (the connection was refused).
 * Retrying stops after `maxAttempts`, or at once when the next wait would end
 * past the `deadline`. The deadline goes on watching the body of the
 * response returned: reading it past the deadline rejects with the
 * deadline's `TimeoutError`, so a server that stalls mid-body cannot hang
 * the caller.
 *
 * @param input The URL or `Request`, as for `fetch`.
 * @param options The request (`method`, `headers`, `body`, ...) and how to retry it.
 * @returns The last answer: a success, an answer that retrying will not
 *   change (a 4xx), or the last 5xx or 429 when retrying stopped. As with
 *   `fetch`, check `response.ok`.
 * @throws {RetryError} When every attempt failed without an answer; `cause` is the last failure.
 * @throws {NetworkError} When a request that is not safe to repeat failed after it was sent.
 * @throws {DOMException} A `TimeoutError` when the deadline passed during an
 *   attempt, or one attempt timed out and could not be repeated.
 * @throws {unknown} `signal.reason`, when `signal` aborts.
 *
 * @example
 * ```ts
 * import { fetchWithRetry } from "./http_retry.ts";
 * import assert from "node:assert/strict";
 *
 * // A server that fails twice with 503, then answers.
 * let requests = 0;
 * const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, () =>
 *   new Response(null, { status: ++requests <= 2 ? 503 : 204 }));
 * const response = await fetchWithRetry(`http://127.0.0.1:${server.addr.port}/`, {
 *   minTimeout: 1,
 * });
 * assert.equal(response.status, 204);
 * assert.equal(requests, 3);
 * await server.shutdown();
 * ```
 */
export async function fetchWithRetry(
  input: string | URL | Request,
  options: FetchRetryOptions = {},
): Promise<Response> {
  const {
    maxAttempts = 4,
    minTimeout = 500,
    maxTimeout = 10_000,
    multiplier = 2,
    jitter = 1,
    timeout = 10_000,
    deadline = 30_000,
    maxRetryAfter = 30_000,
    retryNonIdempotent = false,
    signal,
    onAttempt = () => {},
    ...init
  } = options;
  const request = new Request(input, init);
  const url = new URL(request.url);

  // Safe to send twice? (RFC 9110 §9.2.2.) An Idempotency-Key is the client
  // saying "this is one operation, however many times it arrives": a server
  // that supports it does the work once and answers repeats from memory.
  const method = request.method;
  const replayable = retryNonIdempotent || IDEMPOTENT_METHODS.has(method) ||
    request.headers.has("idempotency-key");
  const unsafe = `${method} is not idempotent and has no Idempotency-Key`;

  // The deadline covers everything: attempts, waits, and the body. As a
  // signal, it cancels an attempt in flight (or the body being read); as a
  // time, it lets us see in advance that a wait would end too late, and stop
  // then instead of waiting for nothing.
  const deadlineAt = Date.now() + deadline;
  const stop = AbortSignal.any([AbortSignal.timeout(deadline), ...signal ? [signal] : []]);

  // Is this failure worth another attempt? The reason is for the log.
  const judge = (failure: unknown): { retry: boolean; why: string } => {
    if (failure instanceof RetriableResponse) {
      const kind = failure.response.status === 429
        ? "too many requests, for now"
        : "a 5xx may pass";
      return replayable ? { retry: true, why: kind } : { retry: false, why: unsafe };
    }
    if (failure instanceof NetworkError && !failure.sent) {
      return { retry: true, why: "the request was never sent, so resending is safe" };
    }
    if (failure instanceof NetworkError || isTimeout(failure)) {
      return replayable
        ? { retry: true, why: "no answer; the network may recover" }
        : { retry: false, why: `${unsafe}, and the server may have acted on it` };
    }
    return { retry: false, why: "not a failure that retrying can fix" };
  };

  // How long to wait before the next attempt: the backoff retry() computed,
  // or the server's Retry-After if that is longer, cut to maxRetryAfter. If
  // that wait would end after the deadline, stop now.
  const planWait = (failure: unknown, computed: number): { wait: number; why: string } => {
    let wait = computed;
    let why = judge(failure).why;
    if (failure instanceof RetriableResponse) {
      const asked = parseRetryAfter(failure.response.headers.get("retry-after"));
      if (asked !== undefined) {
        const honoured = Math.min(asked, maxRetryAfter);
        wait = Math.max(computed, honoured);
        why = `Retry-After: ${asked / 1000} s` +
          (honoured < asked ? `, cut to ${maxRetryAfter / 1000} s` : "");
      }
    }
    if (Date.now() + wait > deadlineAt) {
      throw new GiveUp(failure, `a ${wait} ms wait would pass the ${deadline} ms deadline`);
    }
    return { wait, why };
  };

  let attempts = 0;
  let inFlight = false;
  let plan = { wait: 0, why: "" };
  const attempt = async (): Promise<Response> => {
    attempts++;
    inFlight = true;
    let response: Response;
    try {
      // Each attempt sends a fresh copy: a body can be read only once.
      // The attempt's own signal aborts on its timeout, on the deadline, or
      // on the caller's signal. Once the head is in, the per-attempt timeout
      // is over, but fetch still watches `stop` (the deadline and the
      // caller's signal) until the body has been read: a body that stalls
      // is cut off at the deadline instead of hanging forever.
      response = await withTimeout(
        (attemptSignal) =>
          fetch(request.clone(), { signal: AbortSignal.any([attemptSignal, stop]) }),
        timeout,
        { signal: stop },
      );
    } catch (error) {
      // Cut off by the caller or the deadline: remember it was mid-attempt, for the report.
      inFlight = stop.aborted;
      throw networkError(error, url);
    }
    inFlight = false;
    if (isRetriableStatus(response.status)) throw new RetriableResponse(response);
    return response;
  };

  try {
    const response = await retry(attempt, {
      maxAttempts,
      minTimeout,
      maxTimeout,
      multiplier,
      jitter,
      signal: stop,
      isRetriable: (failure) => judge(failure).retry,
      // retry() asks how long to wait, then reports the wait to onRetry.
      delayFor: (failure, _n, computed) => (plan = planWait(failure, computed)).wait, // may throw GiveUp
      onRetry: (failure, n, wait) => {
        // The answer we are not going to use: cancel its body, which frees
        // the connection for the next request.
        if (failure instanceof RetriableResponse) void failure.response.body?.cancel();
        onAttempt({
          attempt: n,
          ...outcomeOf(failure, timeout),
          next: "retry",
          wait,
          why: plan.why,
        });
      },
    });
    const why = response.ok || response.status < 400 ? "" : "a 4xx will not change if asked again";
    onAttempt({ attempt: attempts, ...outcomeOf(response, timeout), next: "done", why });
    return response;
  } catch (error) {
    // Stopped from outside: the caller's signal, or the deadline's.
    if (stop.aborted) {
      const byCaller = signal?.aborted ?? false;
      const why = byCaller ? "aborted" : `the ${deadline} ms deadline passed`;
      // Stopped during an attempt, or during the wait before the next one.
      const [attempt, outcome] = inFlight
        ? [attempts, "cancelled in flight"]
        : [attempts + 1, "not sent"];
      onAttempt({ attempt, outcome, next: "give up", why });
      if (byCaller) throw signal!.reason;
      throw new DOMException(
        `no answer within the ${deadline} ms deadline, after ${attempts} attempts`,
        "TimeoutError",
      );
    }
    const failure = error instanceof GiveUp
      ? error.failure
      : error instanceof RetryError
      ? error.cause
      : error;
    const why = error instanceof GiveUp
      ? error.why
      : error instanceof RetryError
      ? `all ${maxAttempts} attempts used`
      : judge(failure).why;
    onAttempt({ attempt: attempts, ...outcomeOf(failure, timeout), next: "give up", why });
    // An answer is still an answer: the caller gets the last 5xx or 429.
    if (failure instanceof RetriableResponse) return failure.response;
    throw error instanceof GiveUp ? failure : error;
  }
}

function isTimeout(error: unknown): boolean {
  return error instanceof DOMException && error.name === "TimeoutError";
}

function outcomeOf(failure: unknown, timeout: number): { outcome: string; status?: number } {
  const response = failure instanceof RetriableResponse ? failure.response : failure;
  if (response instanceof Response) {
    return { outcome: `${response.status} ${response.statusText}`.trim(), status: response.status };
  }
  if (isTimeout(failure)) return { outcome: `no answer within ${timeout} ms` };
  if (failure instanceof NetworkError) {
    return { outcome: `${failure.message} (${networkReason(failure)})` };
  }
  return { outcome: failure instanceof Error ? failure.message : String(failure) };
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  method: { type: "string", default: "GET" },
  data: { type: "string" },
  "idempotency-key": { type: "string" },
  "retry-post": { type: "boolean" },
  attempts: { type: "number", default: 4, integer: true, min: 1, max: 100 },
  backoff: { type: "number", default: 0.5, min: 0 },
  "max-backoff": { type: "number", default: 10, min: 0 },
  timeout: { type: "number", default: 10, min: 0.001 },
  deadline: { type: "number", default: 30, min: 0.001 },
  "max-retry-after": { type: "number", default: 30, min: 0 },
  quiet: { type: "boolean" },
  url: { type: "string" },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (command === undefined) return await demo(flags.url);
  if (flags.url !== undefined) throw new UsageError("--url is for the demo; fetch takes a URL");
  if (command !== "fetch") throw new UsageError(`unknown command "${command}"; expected fetch`);
  if (rest.length !== 1) throw new UsageError("fetch takes one URL");
  let url: URL;
  try {
    url = new URL(rest[0]);
  } catch {
    throw new UsageError(`"${rest[0]}" is not a URL (try http://127.0.0.1:8500/get)`);
  }
  if (flags.backoff > flags["max-backoff"]) {
    throw new UsageError("--backoff must not be longer than --max-backoff");
  }
  const method = flags.method.toUpperCase();
  if (flags.data !== undefined && (method === "GET" || method === "HEAD")) {
    throw new UsageError(`a ${method} request has no body; use --method POST (or PUT) with --data`);
  }
  const headers = new Headers();
  if (flags["idempotency-key"] !== undefined) {
    headers.set("idempotency-key", flags["idempotency-key"]);
  }
  const response = await fetchWithRetry(url, {
    method,
    headers,
    body: flags.data,
    maxAttempts: flags.attempts,
    minTimeout: flags.backoff * 1000,
    maxTimeout: flags["max-backoff"] * 1000,
    timeout: flags.timeout * 1000,
    deadline: flags.deadline * 1000,
    maxRetryAfter: flags["max-retry-after"] * 1000,
    retryNonIdempotent: flags["retry-post"],
    onAttempt: flags.quiet
      ? undefined
      : (report) => console.error(`note: ${formatAttempt(report)}`),
  });
  // The body goes to stdout, as curl would print it, whatever the status.
  // The deadline still applies while it arrives (see fetchWithRetry), so a
  // server that stops sending mid-body ends in one error line, not a hang.
  // (A chunk at a time, not pipeTo: Deno's pipe to stdout would report the
  // cut as a bare "operation canceled" instead of the deadline's TimeoutError.)
  try {
    for await (const chunk of response.body ?? []) await writeAll(Deno.stdout, chunk);
  } catch (error) {
    if (!isTimeout(error)) throw error;
    throw new Error(
      `${url.href}: the body was not complete within the ${flags.deadline} s deadline ` +
        `(the server stopped sending); try a longer --deadline`,
    );
  }
  if (response.status >= 400) {
    throw new Error(`${url.href} answered ${response.status} ${response.statusText}`);
  }
}

// The demo: httpbin on a free port, and requests that fail in different
// ways. Short backoffs (100 ms, doubling, half of each random), so the whole
// demo takes a few seconds and the growth of the waits shows.
// The demo runs against our own httpbin on a free port, or with --url against
// another one (httpbin.org, say): the same requests, the same lessons, except
// that /flaky is this project's route.
async function demo(url?: string): Promise<void> {
  let given: string | undefined;
  if (url !== undefined) {
    try {
      given = new URL(url).href.replace(/\/$/, "");
    } catch {
      throw new UsageError(`--url "${url}" is not a URL (try https://httpbin.org)`);
    }
  }
  const stop = new AbortController();
  const server = given === undefined ? serveHttpbin({ signal: stop.signal }) : undefined;
  const base = given ?? `http://127.0.0.1:${server!.addr.port}`;
  console.log(
    server ? `httpbin: ${listeningBanner("http", server.addr)}` : `httpbin: ${base} (--url)`,
  );
  // A port where nothing listens: open one, note its number, close it.
  const closed = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const nowhere = `http://127.0.0.1:${closed.addr.port}/get`;
  closed.close();

  const cases: { title: string; url: string; options?: FetchRetryOptions }[] = [
    { title: "GET /flaky/2: two 503s, then an answer", url: `${base}/flaky/2?key=demo` },
    {
      title: "GET /flaky/1 with Retry-After: 1 (a 429)",
      url: `${base}/flaky/1?key=demo-429&retry-after=1`,
    },
    { title: "GET /status/500: a 5xx every time", url: `${base}/status/500` },
    { title: "GET /status/404: a 4xx is final", url: `${base}/status/404` },
    { title: "GET a port where nothing listens", url: nowhere },
    {
      title: "POST /flaky/1: a 503, and POST is not idempotent",
      url: `${base}/flaky/1?key=demo-post`,
      options: { method: "POST", body: "pay 10 EUR" },
    },
    {
      title: "POST /flaky/1 with an Idempotency-Key",
      url: `${base}/flaky/1?key=demo-post-key`,
      options: { method: "POST", body: "pay 10 EUR", headers: { "idempotency-key": "order-42" } },
    },
    {
      title: "GET /delay/3 with a 300 ms timeout per attempt and a 1 s deadline",
      url: `${base}/delay/3`,
      options: { timeout: 300, deadline: 1000 },
    },
  ];
  try {
    for (const { title, url, options } of cases) {
      console.log(`\n${title}`);
      try {
        const response = await fetchWithRetry(url, {
          minTimeout: 100,
          jitter: 0.5,
          onAttempt: (report) => console.log(`  ${formatAttempt(report)}`),
          ...options,
        });
        const body = await response.text();
        const shown = response.headers.get("content-type")?.includes("json")
          ? JSON.stringify(JSON.parse(body))
          : `(${body.length} bytes)`;
        console.log(`  => ${response.status} ${response.statusText} ${shown}`);
      } catch (error) {
        console.log(`  => error: ${describeError(error)}`);
      }
    }
  } finally {
    stop.abort();
    await server?.finished;
  }
  if (server) console.log("\nhttpbin: stopped; nothing left listening");
}

if (import.meta.main) runMain(USAGE, main);
