#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title HTTP clients with fetch: from the first request to a small reusable client
 * @difficulty beginner
 * @tags cli, network, http, client, fetch
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://fetch.spec.whatwg.org/} WHATWG Fetch Standard
 * @resource {https://www.rfc-editor.org/rfc/rfc9110} RFC 9110: HTTP Semantics
 * @resource {https://www.rfc-editor.org/rfc/rfc7578} RFC 7578: Returning Values from Forms: multipart/form-data
 * @resource {https://docs.deno.com/api/web/~/fetch} Deno: fetch
 *
 * `fetch` is the HTTP client built into Deno (and browsers, and Node): one
 * call sends a request and resolves with the response's status and header
 * fields, and the body is read after, as JSON, text or bytes. This script
 * goes from that first call to what tutorials wrap it in: query parameters,
 * custom header fields, JSON and form bodies, and the three ways a request
 * fails, which a client must tell apart: the server answered with an error
 * status (fetch does not throw for those), the network failed (it throws a
 * TypeError), or nobody answered in time (an AbortSignal ends the wait). Then
 * `HttpClient`, a small class with a base URL, default header fields, JSON
 * helpers and an error type carrying status and body. With no arguments, it
 * runs against this project's httpbin (scripts/httpbin.ts) on a free loopback
 * port; `--url https://httpbin.org` runs the same demo against the real one.
 * Taught step by step in notebooks/13_http_client.ipynb.
 */

import { parseFlags } from "../lib/parse_flags.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { serveHttpbin } from "./httpbin.ts";

const USAGE = `
http_client.ts: HTTP requests with fetch, and a small reusable client (HttpClient)

usage:
  http_client.ts                     demo: start httpbin (scripts/httpbin.ts) on a free
                                     port and send it every kind of request
  http_client.ts --url BASE          the same demo against BASE, e.g. https://httpbin.org
  http_client.ts get URL [flags]     send one request and print the answer's body
  http_client.ts head URL [flags]
  http_client.ts delete URL [flags]
  http_client.ts post URL [--json JSON | --form K=V ...] [flags]
  http_client.ts put URL [--json JSON | --form K=V ...] [flags]
  http_client.ts patch URL [--json JSON | --form K=V ...] [flags]

flags:
  --query K=V       add a query parameter (repeatable)
  --header 'K: V'   add a header field (repeatable)
  --json JSON       send JSON as the body (Content-Type: application/json)
  --form K=V        send a urlencoded form field (repeatable); K=@FILE is not supported
  --timeout SECS    give up when no full answer came in this long (default 10)
  --include, -i     print the status line and header fields before the body
  --url BASE        demo: the httpbin to use instead of starting one
  -h, --help        show this help

An error status (4xx, 5xx), a failed connection and a timeout each end with
one "error:" line on stderr and exit status 1; an error status prints its body first.

permissions:
  the demo, and URLs on 127.0.0.1:     --allow-net=127.0.0.1
  --url https://httpbin.org:           --allow-net=httpbin.org (add 127.0.0.1 for the
                                       demo's refused connection, to a closed loopback port)
  any other URL:                       --allow-net=HOST (or plain --allow-net)
`;

// ---------------------------------------------------------------------------
// The three ways a request fails
// ---------------------------------------------------------------------------

/**
 * The server answered, with a status of 400 or more (or any status that is
 * not 2xx, as `response.ok` sees it). `fetch` itself does not throw for
 * these: an answer is an answer. Carries what the server said, so a caller
 * can show the server's own reason.
 *
 * @example
 * ```ts
 * import { HttpError } from "./http_client.ts";
 * import assert from "node:assert/strict";
 *
 * const error = new HttpError("GET", "http://x/nope", 404, "Not Found", new Headers(), "gone");
 * assert.equal(error.message, "GET http://x/nope: 404 Not Found");
 * ```
 */
export class HttpError extends Error {
  /**
   * @param method The request's method.
   * @param url The URL that answered (after any redirects).
   * @param status The status code.
   * @param statusText The reason phrase (may be empty: HTTP/2 has none).
   * @param headers The response's header fields.
   * @param body The response's body: parsed JSON if it was JSON, else text.
   */
  constructor(
    readonly method: string,
    readonly url: string,
    readonly status: number,
    readonly statusText: string,
    readonly headers: Headers,
    readonly body: unknown,
  ) {
    super(`${method} ${url}: ${status}${statusText ? ` ${statusText}` : ""}`);
    this.name = "HttpError";
  }
}

/**
 * No answer came because the network failed: the connection was refused,
 * the host name did not resolve, the connection broke mid-answer. `fetch`
 * rejects with a bare `TypeError("fetch failed")` for all of these, its
 * `cause` holding the detail; this says which, in words.
 */
export class NetworkError extends Error {
  /**
   * @param method The request's method.
   * @param url The URL it was sent to.
   * @param reason What failed, in a few words.
   * @param options `cause`: the error `fetch` threw.
   */
  constructor(
    readonly method: string,
    readonly url: string,
    readonly reason: string,
    options?: ErrorOptions,
  ) {
    super(`${method} ${url}: ${reason}`, options);
    this.name = "NetworkError";
  }
}

/** No complete answer came within the time allowed (the request was aborted then). */
export class TimeoutError extends Error {
  /**
   * @param method The request's method.
   * @param url The URL it was sent to.
   * @param timeout The limit that passed, in ms.
   * @param options `cause`: the abort reason `fetch` rejected with.
   */
  constructor(
    readonly method: string,
    readonly url: string,
    readonly timeout: number,
    options?: ErrorOptions,
  ) {
    super(`${method} ${url}: no complete answer within ${timeout} ms`, options);
    this.name = "TimeoutError";
  }
}

// fetch's TypeError says "fetch failed"; the words that matter are in its
// cause, e.g. "error sending request for url (...): client error (Connect):
// tcp connect error: Connection refused (os error 111)".
function networkReason(error: unknown): string {
  let text = "";
  for (let e = error; e instanceof Error; e = e.cause) text += ` ${e.message}`;
  const blocked = text.match(/requests to port (\d+) are blocked/i);
  if (blocked) {
    return `fetch refuses port ${blocked[1]} (a "bad port" in the Fetch standard)`;
  }
  if (/connection refused/i.test(text)) {
    return "connection refused (nothing listens on that port)";
  }
  if (/dns error|failed to lookup|name or service not known/i.test(text)) {
    return "the host name did not resolve";
  }
  if (/closed before message completed|connection reset|broken pipe/i.test(text)) {
    return "the server closed the connection without a complete answer";
  }
  if (/certificate|tls|ssl/i.test(text)) return `TLS failed (${text.trim()})`;
  return text.trim() || "the request failed";
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/** A query value; an array repeats the name (`?tag=a&tag=b`), `undefined` leaves it out. */
export type QueryValue =
  | string
  | number
  | boolean
  | undefined
  | readonly (string | number | boolean)[];

/** Options for {@linkcode HttpClient}. */
export interface HttpClientOptions {
  /** Where relative paths point: `new HttpClient({ baseUrl: "https://httpbin.org" }).get("/get")`. */
  baseUrl?: string | URL;
  /** Header fields sent with every request (a request's own override them). @default {{}} */
  headers?: HeadersInit;
  /** Give up on a request, body included, after this many ms. @default {10000} */
  timeout?: number;
}

/** Options for one request. */
export interface RequestOptions {
  /** Query parameters, added to any already in the path. */
  query?: Record<string, QueryValue> | URLSearchParams;
  /** Header fields for this request only. */
  headers?: HeadersInit;
  /** A value to send as JSON (`Content-Type: application/json`). */
  json?: unknown;
  /**
   * A form: a record or `URLSearchParams` goes as
   * `application/x-www-form-urlencoded`, `FormData` (which can hold files)
   * as `multipart/form-data` (RFC 7578).
   */
  form?: Record<string, string> | URLSearchParams | FormData;
  /** Any other body, sent as is. */
  body?: BodyInit;
  /** This request's time limit, in ms. @default {the client's timeout} */
  timeout?: number;
  /** Cancel the request; it rejects with the signal's reason. */
  signal?: AbortSignal;
}

/**
 * A small HTTP client over `fetch`, like the wrapper class every tutorial
 * builds, done with the platform's own pieces: `URL` and `URLSearchParams`
 * for the address, `Headers` for fields, `AbortSignal.timeout()` for time
 * limits. Every failure is one of three errors: {@linkcode HttpError} (the
 * server said no), {@linkcode NetworkError} (no answer could come),
 * {@linkcode TimeoutError} (no answer came in time). A missing permission is
 * passed on as Deno's own error, and a cancel as the signal's reason.
 *
 * @example Against a local httpbin
 * ```ts
 * import { HttpClient, HttpError } from "./http_client.ts";
 * import { serveHttpbin } from "./httpbin.ts";
 * import assert from "node:assert/strict";
 *
 * const server = serveHttpbin();
 * const client = new HttpClient({
 *   baseUrl: `http://127.0.0.1:${server.addr.port}`,
 *   headers: { "x-api-key": "k1" },
 * });
 * const echoed = await client.post<{ json: unknown; headers: Record<string, string> }>(
 *   "/post",
 *   { json: { n: 1 } },
 * );
 * assert.deepEqual(echoed.json, { n: 1 });
 * assert.equal(echoed.headers["X-Api-Key"], "k1");
 * await assert.rejects(client.get("/status/404"), (e: HttpError) => e.status === 404);
 * await server.shutdown();
 * ```
 */
export class HttpClient {
  /** The base URL relative paths are resolved against, if any. */
  readonly baseUrl?: URL;
  /** The header fields sent with every request. */
  readonly headers: Headers;
  /** The default time limit, in ms. */
  readonly timeout: number;

  /** @param options Base URL, default header fields, time limit. */
  constructor(options: HttpClientOptions = {}) {
    const { baseUrl, headers = {}, timeout = 10_000 } = options;
    if (!(timeout > 0)) throw new RangeError(`timeout must be > 0 ms, got ${timeout}`);
    this.baseUrl = baseUrl === undefined ? undefined : new URL(baseUrl);
    this.headers = new Headers(headers);
    this.timeout = timeout;
  }

  /**
   * The URL a request goes to. A path is relative to the base URL, even with
   * a leading slash (`/users` under `https://api.example/v1` is
   * `https://api.example/v1/users`, not `https://api.example/users`, as
   * plain `new URL("/users", base)` would give); an absolute URL is used as is.
   *
   * @param path A path under the base URL, or an absolute URL.
   * @param query Query parameters to add.
   * @returns The URL.
   * @throws {TypeError} If `path` is relative and there is no base URL.
   */
  url(path: string, query?: RequestOptions["query"]): URL {
    let url: URL;
    if (URL.canParse(path)) {
      url = new URL(path);
    } else if (this.baseUrl) {
      const base = this.baseUrl.href.replace(/[?#].*$/, "").replace(/\/?$/, "/");
      url = new URL(path.replace(/^\/+/, ""), base);
    } else {
      throw new TypeError(`"${path}" is not an absolute URL, and the client has no baseUrl`);
    }
    const entries = query instanceof URLSearchParams ? query : Object.entries(query ?? {});
    for (const [name, value] of entries) {
      if (value === undefined) continue;
      for (const item of Array.isArray(value) ? value : [value]) {
        url.searchParams.append(name, String(item));
      }
    }
    return url;
  }

  /**
   * Send a request and return the response once its status is 2xx; its body
   * is still to be read (within the same time limit).
   *
   * @param method `GET`, `POST`, ... (RFC 9110 §9).
   * @param path A path under the base URL, or an absolute URL.
   * @param options Query, header fields, body, time limit, signal.
   * @returns The response, its status 2xx (a redirect has been followed).
   * @throws {HttpError} For any other status, with the body read.
   * @throws {NetworkError} When no answer could come.
   * @throws {TimeoutError} When none came in time.
   */
  async request(method: string, path: string, options: RequestOptions = {}): Promise<Response> {
    return (await this.#send(method, path, options)).response;
  }

  // The request itself; returns the response with what reading its body
  // needs: the body is read under the same time limit as the head.
  async #send(method: string, path: string, options: RequestOptions) {
    const { json, form, body, timeout = this.timeout, signal } = options;
    const url = this.url(path, options.query);
    const headers = new Headers(this.headers);
    for (const [name, value] of new Headers(options.headers)) headers.set(name, value);

    // The body, and the Content-Type that says how to read it (RFC 9110
    // §8.3). For forms, fetch writes the Content-Type itself: for FormData,
    // it carries the boundary string that separates the parts.
    let payload: BodyInit | undefined = body;
    if (json !== undefined) {
      payload = JSON.stringify(json);
      if (!headers.has("content-type")) headers.set("content-type", "application/json");
    } else if (form !== undefined) {
      payload = form instanceof FormData || form instanceof URLSearchParams
        ? form
        : new URLSearchParams(form);
    }

    // fetch would reject this with a TypeError, which would read as a network failure.
    if (payload !== undefined && /^(GET|HEAD)$/i.test(method)) {
      throw new TypeError(`a ${method} request cannot have a body`);
    }

    // One signal for both limits, ours (a timeout) and the caller's (a
    // cancel). fetch watches it until the body has been read to the end.
    const timer = AbortSignal.timeout(timeout);
    const limits = { method, timeout, timer, signal };
    const combined = signal ? AbortSignal.any([timer, signal]) : timer;
    let response: Response;
    try {
      response = await fetch(url, { method, headers, body: payload, signal: combined });
    } catch (error) {
      throw translate(error, url.href, limits);
    }
    if (!response.ok) {
      const body = await readBody(response, limits);
      throw new HttpError(
        method,
        response.url,
        response.status,
        response.statusText,
        response.headers,
        body,
      );
    }
    return { response, limits };
  }

  // The JSON helpers: send, check the status, read the body (JSON parsed).
  async #call<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
    const headers = new Headers(options.headers);
    if (!headers.has("accept") && !this.headers.has("accept")) {
      headers.set("accept", "application/json");
    }
    const { response, limits } = await this.#send(method, path, { ...options, headers });
    return await readBody(response, limits) as T;
  }

  /** GET `path`; resolves to the body (JSON parsed). @throws As {@linkcode HttpClient.request}. */
  get<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return this.#call("GET", path, options);
  }
  /** POST to `path` (body from `json`, `form` or `body`); resolves to the answer's body. */
  post<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return this.#call("POST", path, options);
  }
  /** PUT to `path`; resolves to the answer's body. */
  put<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return this.#call("PUT", path, options);
  }
  /** PATCH `path`; resolves to the answer's body. */
  patch<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return this.#call("PATCH", path, options);
  }
  /** DELETE `path`; resolves to the answer's body. */
  delete<T = unknown>(path: string, options?: RequestOptions): Promise<T> {
    return this.#call("DELETE", path, options);
  }
}

// What a request's body is read under: the same limits as its head.
interface Limits {
  method: string;
  timeout: number;
  timer: AbortSignal;
  signal?: AbortSignal;
}

// Which of the three failures (or the caller's cancel) a rejection was.
function translate(error: unknown, url: string, limits: Limits): unknown {
  const { method, timeout, timer, signal } = limits;
  if (signal?.aborted) return signal.reason;
  if (timer.aborted) return new TimeoutError(method, url, timeout, { cause: error });
  // fetch's TypeError means the network; a missing permission stays as it is.
  if (error instanceof TypeError) {
    return new NetworkError(method, url, networkReason(error), { cause: error });
  }
  return error;
}

/**
 * Read a response's body by its Content-Type: JSON (`application/json`, or
 * any `+json` type) parsed, anything else as text; an empty body is
 * `undefined`. A body labelled JSON that is not one JSON value comes back as
 * its text (see {@linkcode parseJsonOrText}).
 */
async function readBody(response: Response, limits: Limits): Promise<unknown> {
  let text: string;
  try {
    text = await response.text();
  } catch (error) {
    throw translate(error, response.url, limits);
  }
  if (text === "") return undefined;
  const type = response.headers.get("content-type") ?? "";
  if (!/^application\/([\w.+-]*\+)?json\b/i.test(type)) return text;
  return parseJsonOrText(text);
}

/**
 * Parse `text` as JSON if it is one JSON value; otherwise return it as it
 * is. A JSON text is exactly one value (RFC 8259 §2), but servers label
 * other things `application/json` too: newline-delimited JSON, one value per
 * line (httpbin's /stream/N), or a broken error page. Those are still worth
 * showing, and an error status must not turn into a parse error.
 *
 * @param text A body that says it is JSON.
 * @returns The parsed value, or `text` itself.
 *
 * @example
 * ```ts
 * import { parseJsonOrText } from "./http_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseJsonOrText('{"id":0}'), { id: 0 });
 * assert.equal(parseJsonOrText('{"id":0}\n{"id":1}\n'), '{"id":0}\n{"id":1}\n');
 * ```
 */
export function parseJsonOrText(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return text;
  }
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  // These three may be given many times: each value adds one more.
  query: { type: "string", multiple: true },
  header: { type: "string", multiple: true },
  form: { type: "string", multiple: true },
  json: { type: "string" },
  timeout: { type: "number", default: 10, min: 0.001 },
  include: { type: "boolean", short: "i" },
  url: { type: "string" },
} as const;

// "K=V" -> [K, V], splitting at the first "="; "K: V" at the first ":".
function splitPair(text: string, separator: string, flag: string): [string, string] {
  const at = text.indexOf(separator);
  if (at <= 0) {
    throw new UsageError(`--${flag} must look like NAME${separator}VALUE, got "${text}"`);
  }
  return [text.slice(0, at).trim(), text.slice(at + 1).trim()];
}

const COMMANDS = ["get", "head", "post", "put", "patch", "delete"];

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, target, ...extra] = positionals;
  if (command === undefined) return await demo(flags.url);
  if (!COMMANDS.includes(command)) {
    throw new UsageError(`unknown command "${command}"; expected ${COMMANDS.join(", ")}`);
  }
  if (target === undefined) throw new UsageError(`${command} needs a URL`);
  if (extra.length > 0) throw new UsageError(`unexpected argument "${extra[0]}"`);

  const options: RequestOptions = {
    query: new URLSearchParams(flags.query.map((pair) => splitPair(pair, "=", "query"))),
    headers: flags.header.map((field) => splitPair(field, ":", "header")),
  };
  if (flags.json !== undefined) {
    try {
      options.json = JSON.parse(flags.json);
    } catch {
      throw new UsageError(`--json is not valid JSON: ${flags.json}`);
    }
  }
  if (flags.form.length > 0) {
    if (options.json !== undefined) throw new UsageError("give --json or --form, not both");
    options.form = new URLSearchParams(flags.form.map((pair) => splitPair(pair, "=", "form")));
  }
  if ((command === "get" || command === "head") && (flags.json ?? options.form) !== undefined) {
    throw new UsageError(`a ${command.toUpperCase()} request has no body; use post or put`);
  }
  if (flags.url === undefined && !URL.canParse(target)) {
    throw new UsageError(`"${target}" is not a URL (http://host:port/path), and no --url is given`);
  }
  const client = new HttpClient({ baseUrl: flags.url, timeout: flags.timeout * 1000 });
  await sendCommand(client, command.toUpperCase(), target, options, flags.include);
}

async function sendCommand(
  client: HttpClient,
  method: string,
  target: string,
  options: RequestOptions,
  include: boolean,
): Promise<void> {
  const printHead = (status: number, statusText: string, headers: Headers) => {
    console.log(`${status} ${statusText}`);
    for (const [name, value] of headers) console.log(`${name}: ${value}`);
    console.log();
  };
  try {
    const response = await client.request(method, target, options);
    if (include || method === "HEAD") {
      printHead(response.status, response.statusText, response.headers);
    }
    if (method !== "HEAD") console.log(await showBody(response));
  } catch (error) {
    // An error status: show what the server said, then one error line.
    if (error instanceof HttpError) {
      if (include) printHead(error.status, error.statusText, error.headers);
      if (error.body !== undefined) console.log(bodyText(error.body));
      throw new Error(`${error.message}: the server answered with an error status`);
    }
    if (error instanceof NetworkError) {
      throw new Error(`${error.message}; is the server running, and is the URL right?`);
    }
    throw error;
  }
}

function bodyText(body: unknown): string {
  return typeof body === "string" ? body.trimEnd() : JSON.stringify(body, null, 2);
}

// A body, shown by its type: JSON indented, text as it is, anything else
// (images, random bytes) as its size and first bytes in hex. JSON is read as
// text first, not with response.json(): a body labelled JSON that is not one
// value (newline-delimited JSON, from /stream/N) is printed as it came.
async function showBody(response: Response): Promise<string> {
  const type = response.headers.get("content-type") ?? "";
  if (/json/i.test(type)) return bodyText(parseJsonOrText(await response.text()));
  if (/^text\/|xml|javascript|urlencoded/i.test(type)) return (await response.text()).trimEnd();
  const bytes = await response.bytes();
  const hex = Array.from(bytes.subarray(0, 32), (b) => b.toString(16).padStart(2, "0")).join(" ");
  return `(${bytes.length} bytes${type ? ` of ${type}` : ""}) ${hex}${
    bytes.length > 32 ? " ..." : ""
  }`;
}

// ---------------------------------------------------------------------------
// The demo
// ---------------------------------------------------------------------------

// Every kind of request, first with fetch itself, then with HttpClient,
// against httpbin on a free loopback port (or the one --url names).
async function demo(url?: string): Promise<void> {
  const stop = new AbortController();
  let base: string;
  if (url === undefined) {
    const server = serveHttpbin({ signal: stop.signal });
    base = `http://127.0.0.1:${server.addr.port}`;
    console.log(`httpbin (scripts/httpbin.ts) listening on ${base}`);
  } else {
    if (!URL.canParse(url)) throw new UsageError(`--url "${url}" is not a URL`);
    base = url.replace(/\/+$/, "");
    console.log(`using ${base}`);
  }
  try {
    await demoFetch(base);
    await demoFailures(base);
    await demoClient(base);
  } finally {
    stop.abort();
  }
}

const step = (title: string) => console.log(`\n== ${title}`);

async function demoFetch(base: string): Promise<void> {
  step("1. fetch: one call sends the request; the body is read after");
  const response = await fetch(`${base}/get`);
  console.log(`GET /get -> ${response.status} ${response.statusText}, ok: ${response.ok}`);
  console.log(`  content-type: ${response.headers.get("content-type")}`);
  const body = await response.json();
  console.log(`  body.url: ${body.url}`);

  step("2. query parameters (URLSearchParams encodes them) and header fields");
  const url = new URL("/get", base);
  url.search = new URLSearchParams({ q: "deno & fetch", page: "2" }).toString();
  const withQuery = await fetch(url, { headers: { "X-Request-Id": "wb-13" } });
  const { args, headers } = await withQuery.json();
  console.log(`GET ${url.pathname}${url.search}`);
  console.log(`  args: ${JSON.stringify(args)}, X-Request-Id: ${headers["X-Request-Id"]}`);

  step("3. request bodies: JSON, a urlencoded form, a multipart form with a file");
  const sent = [
    ["POST", "/post", "JSON", {
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Ada", langs: ["ts", "go"] }),
    }],
    ["POST", "/post", "form", { body: new URLSearchParams({ name: "Ada", lang: "ts" }) }],
    ["PUT", "/put", "multipart", { body: multipartExample() }],
    ["DELETE", "/delete", "no body", {}],
  ] as const;
  for (const [method, path, kind, init] of sent) {
    const answer = await (await fetch(base + path, { method, ...init })).json();
    const { json, form, files } = answer;
    console.log(`${method} ${path} (${kind})`);
    console.log(
      `  json: ${JSON.stringify(json)}, form: ${JSON.stringify(form)}, files: ${
        JSON.stringify(files)
      }`,
    );
  }

  step("4. reading the answer: JSON, text, bytes");
  const slides = await (await fetch(`${base}/json`)).json();
  console.log(`GET /json -> .json(): slideshow title "${slides.slideshow.title}"`);
  const html = await (await fetch(`${base}/html`)).text();
  console.log(
    `GET /html -> .text(): ${html.length} characters, ${html.match(/<h1>.*<\/h1>/)?.[0]}`,
  );
  const bytes = await (await fetch(`${base}/bytes/8`)).bytes();
  console.log(`GET /bytes/8 -> .bytes(): Uint8Array(${bytes.length})`);
}

function multipartExample(): FormData {
  const form = new FormData();
  form.append("title", "notes");
  form.append("upload", new File(["hello, file\n"], "notes.txt", { type: "text/plain" }));
  return form;
}

// A URL on loopback where nothing listens, if we may use loopback (with
// --url, the demo may run with --allow-net=httpbin.org alone).
async function closedPort(): Promise<string | undefined> {
  const status = await Deno.permissions.query({ name: "net", host: "127.0.0.1" });
  if (status.state !== "granted") return undefined;
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return `http://127.0.0.1:${listener.addr.port}/get`;
}

// The three ways a request fails, as fetch shows them.
async function demoFailures(base: string): Promise<void> {
  step("5. three failures, and how fetch shows each");
  const response = await fetch(`${base}/status/404`);
  console.log(`GET /status/404 -> fetch resolves: status ${response.status}, ok: ${response.ok}`);
  await response.body?.cancel(); // an unread body holds the connection

  // A port nothing listens on: ask for a free one, then close it.
  const closed = await closedPort();
  if (closed) {
    try {
      await fetch(closed);
    } catch (error) {
      console.log(`GET a closed port -> fetch rejects: ${error}`);
      console.log(`  its cause: ${((error as Error).cause as Error)?.message}`);
    }
  } else {
    console.log("GET a closed port: skipped (needs --allow-net=127.0.0.1)");
  }

  try {
    await fetch(`${base}/delay/3`, { signal: AbortSignal.timeout(500) });
  } catch (error) {
    console.log(`GET /delay/3, AbortSignal.timeout(500) -> fetch rejects: ${error}`);
  }
}

async function demoClient(base: string): Promise<void> {
  step("6. HttpClient: base URL, default header fields, JSON helpers, one error type each");
  const client = new HttpClient({
    baseUrl: base,
    headers: { "user-agent": "wirebook-http-client/1.0" },
    timeout: 2000,
  });
  type Echo = { args: unknown; headers: Record<string, string>; json: unknown; method: string };
  const got = await client.get<Echo>("/get", { query: { page: 2, tag: ["a", "b"] } });
  console.log(`client.get("/get", { query }) -> args ${JSON.stringify(got.args)}`);
  console.log(`  User-Agent seen by the server: ${got.headers["User-Agent"]}`);
  const posted = await client.patch<Echo>("/anything/users/7", { json: { admin: false } });
  console.log(
    `client.patch("/anything/users/7", { json }) -> ${posted.method} ${
      JSON.stringify(posted.json)
    }`,
  );

  const closed = await closedPort();
  const failures: [string, () => Promise<unknown>][] = [
    ['client.get("/status/418")', () => client.get("/status/418")],
    ["client.get(a closed port)", () => closed ? client.get(closed) : Promise.resolve()],
    ['client.get("/delay/3", { timeout: 300 })', () => client.get("/delay/3", { timeout: 300 })],
  ];
  for (const [label, call] of failures) {
    try {
      await call();
    } catch (error) {
      if (error instanceof HttpError) {
        const teapot = String(error.body).match(/\[ (\w+) \]/)?.[1] ?? "";
        console.log(`${label} -> HttpError ${error.status}, body mentions "${teapot}"`);
      } else if (error instanceof NetworkError) {
        console.log(`${label} -> NetworkError: ${error.reason}`);
      } else if (error instanceof TimeoutError) {
        console.log(`${label} -> TimeoutError: no answer within ${error.timeout} ms`);
      } else {
        throw error;
      }
    }
  }
}

if (import.meta.main) runMain(USAGE, main);
