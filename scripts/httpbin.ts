#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title httpbin, locally: an HTTP request and response service to test clients against
 * @difficulty beginner
 * @tags cli, network, http, server, testing
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://httpbin.org/} httpbin.org: HTTP Request & Response Service
 * @resource {https://www.rfc-editor.org/rfc/rfc9110} RFC 9110: HTTP Semantics
 * @resource {https://www.rfc-editor.org/rfc/rfc6265} RFC 6265: HTTP State Management (cookies)
 * @resource {https://www.rfc-editor.org/rfc/rfc7617} RFC 7617: The 'Basic' HTTP Authentication Scheme
 * @resource {https://www.rfc-editor.org/rfc/rfc7578} RFC 7578: Returning Values from Forms: multipart/form-data
 *
 * Every HTTP client tutorial sends its requests to httpbin.org, because it
 * answers each one by describing it: the query arguments, headers, body, form
 * fields and files it received, as JSON. Or it answers on command: any status
 * code, a delay, N random bytes, N redirects, cookies, a Basic-auth challenge.
 * This is the same service on Deno.serve, with the same routes and JSON
 * shapes, so the lessons and tests that follow run on loopback, offline and
 * deterministically. It adds one route httpbin.org lacks, /flaky/N, which fails
 * the first N requests (503, or 429 with Retry-After) before answering, for
 * retry logic. With no arguments, it starts on a free loopback port and
 * fetches a few routes. Each route is explained in notebooks/12_httpbin.ipynb.
 */

import { parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";

const USAGE = `
httpbin.ts: a local httpbin.org, an HTTP service that describes each request it gets

usage:
  httpbin.ts                 demo: start it on a free port, fetch a few routes, print the answers
  httpbin.ts serve [flags]   serve until Ctrl-C

routes (as on httpbin.org, plus /flaky):
  /get /post /put /patch /delete   the request described as JSON (each for its own method)
  /anything, /anything/...         the same, for any method, with "method"
  /headers  /ip  /user-agent       one part of the request
  /json  /html                     a sample JSON document, a sample HTML page
  /status/CODES                    answer with a status: 418, or a weighted pick: 200:3,500:1
  /delay/N                         answer after N seconds (at most --max-delay)
  /bytes/N?seed=S                  N random bytes (at most --max-bytes); the same bytes per seed
  /stream/N                        N lines of JSON, sent as they are made (at most 100)
  /redirect/N                      302 redirects N times, then /get (?absolute=true for full URLs)
  /basic-auth/USER/PASS            200 with the right Basic credentials, 401 without
  /cookies  /cookies/set?k=v  /cookies/delete?k
  /flaky/N?key=K&status=S&retry-after=R
                                   fail the first N requests for key K (default: the client's
                                   IP) with status S (default 503; 429 if retry-after is given),
                                   then answer 200 {"attempts": ...}; /flaky/reset forgets them

flags:
  --host HOST        address to listen on (default 127.0.0.1)
  --port PORT        TCP port (default 8500; --port 0 picks any free port)
  --max-body BYTES   answer 413 to a larger request body (default 1048576)
  --max-bytes N      the most bytes /bytes/N sends (default 102400, as httpbin.org)
  --max-delay SECS   the longest /delay/N waits (default 10, as httpbin.org)
  --quiet            do not log requests
  -h, --help         show this help

permissions:
  demo, and serve on 127.0.0.1:   --allow-net=127.0.0.1
  serve on another --host:        --allow-net=HOST (or plain --allow-net)

try it:
  deno run --allow-net=127.0.0.1 scripts/httpbin.ts serve
  curl -s 'http://127.0.0.1:8500/get?lesson=12' -H 'X-Hello: world'
`;

const DEFAULT_PORT = 8500;
const encoder = new TextEncoder();
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------------------
// Options and errors
// ---------------------------------------------------------------------------

/** Options for {@linkcode httpbinHandler} and {@linkcode serveHttpbin}. */
export interface HttpbinOptions {
  /** The most bytes `/bytes/N` sends; a larger N is cut to this (httpbin.org: 100 KiB). @default {102400} */
  maxBytes?: number;
  /** The longest `/delay/N` waits, in seconds; a larger N is cut to this (httpbin.org: 10). @default {10} */
  maxDelay?: number;
  /** The largest request body read; a larger one gets 413 Content Too Large. @default {1048576} */
  maxBodySize?: number;
  /** Gets one line per request answered: `127.0.0.1 "GET /get" 200`. @default {no logging} */
  log?: (line: string) => void;
  /** When it aborts, requests still waiting in `/delay/N` are answered at once (503). */
  signal?: AbortSignal;
}

// A request we refuse: its status and a one-line reason for the JSON body.
class Refusal extends Error {
  constructor(readonly status: number, message: string, readonly headers: HeadersInit = {}) {
    super(message);
  }
}

// ---------------------------------------------------------------------------
// Describing a request: httpbin's JSON fields
// ---------------------------------------------------------------------------

// httpbin shows header names in Title-Case ("User-Agent"), as they look on the
// wire from most clients. The Fetch API has already lowercased them: field
// names are case-insensitive (RFC 9110 §5.1), so both are the same field.
/**
 * Write a field name the way httpbin.org shows it: `user-agent` → `User-Agent`.
 *
 * @param name A header field name, in any case.
 * @returns Each dash-separated word capitalised.
 */
export function titleCase(name: string): string {
  return name.toLowerCase().replace(
    /(^|-)([a-z])/g,
    (_, dash, letter) => dash + letter.toUpperCase(),
  );
}

// Query arguments and form fields: a name given once is a string, a name given
// more than once is a list, as httpbin.org shows them: ?a=1&a=2&b=3 gives
// {"a": ["1", "2"], "b": "3"}.
function multiDict(entries: Iterable<[string, string]>): Record<string, string | string[]> {
  const dict: Record<string, string | string[]> = {};
  for (const [name, value] of entries) {
    const seen = dict[name];
    dict[name] = seen === undefined
      ? value
      : Array.isArray(seen)
      ? [...seen, value]
      : [seen, value];
  }
  return dict;
}

function headerDict(headers: Headers): Record<string, string> {
  const dict: Record<string, string> = {};
  for (const [name, value] of headers) dict[titleCase(name)] = value;
  return dict;
}

// A body that is not UTF-8 text is shown as a data: URL, base64 inside, as
// httpbin.org does, so JSON can carry any bytes.
function bodyText(bytes: Uint8Array, type: string): string {
  try {
    return strictUtf8.decode(bytes);
  } catch {
    let binary = "";
    for (const byte of bytes) binary += String.fromCharCode(byte);
    return `data:${type || "application/octet-stream"};base64,${btoa(binary)}`;
  }
}

/** What httpbin.org reports about a request's body. */
export interface BodyFields {
  /** The body as text (a `data:` URL if it is not UTF-8); `""` for a form. */
  data: string;
  /** Uploaded files of a multipart form: field name → contents. */
  files: Record<string, string | string[]>;
  /** Fields of a urlencoded or multipart form. */
  form: Record<string, string | string[]>;
  /** The body parsed as JSON, or `null` if it is not JSON. */
  json: unknown;
}

// Read the body, but never more than maxBodySize bytes: a declared
// Content-Length over the limit is refused before reading anything, and a
// body that streams past it (chunked, no length) is refused as soon as it does.
async function readBody(request: Request, maxBodySize: number): Promise<Uint8Array<ArrayBuffer>> {
  const tooLarge = () => new Refusal(413, `the request body is over ${maxBodySize} bytes`);
  const declared = Number(request.headers.get("content-length") ?? 0);
  if (declared > maxBodySize) throw tooLarge();
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.length;
    if (size > maxBodySize) throw tooLarge(); // leaving the loop cancels the stream
    chunks.push(chunk);
  }
  const body = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    body.set(chunk, offset);
    offset += chunk.length;
  }
  return body;
}

// The body's meaning depends on its Content-Type (RFC 9110 §8.3): a form
// (urlencoded, or multipart with files, RFC 7578) becomes `form` and `files`;
// anything else is `data`, and `json` too if it parses.
async function describeBody(request: Request, maxBodySize: number): Promise<BodyFields> {
  const bytes = await readBody(request, maxBodySize);
  const type = request.headers.get("content-type") ?? "";
  const mediaType = type.split(";")[0].trim().toLowerCase();
  const fields: BodyFields = { data: "", files: {}, form: {}, json: null };

  if (mediaType === "application/x-www-form-urlencoded") {
    fields.form = multiDict(new URLSearchParams(bodyText(bytes, type)));
  } else if (mediaType === "multipart/form-data") {
    // The boundary-delimited parts are parsed by the Fetch API's own
    // multipart parser; notebooks/12_httpbin.ipynb shows the bytes it reads.
    let formData: FormData;
    try {
      formData = await new Response(bytes, { headers: { "content-type": type } }).formData();
    } catch {
      throw new Refusal(400, "the multipart/form-data body is malformed (RFC 7578)");
    }
    const form: [string, string][] = [];
    const files: [string, string][] = [];
    for (const [name, value] of formData) {
      if (typeof value === "string") form.push([name, value]);
      else files.push([name, bodyText(new Uint8Array(await value.arrayBuffer()), value.type)]);
    }
    fields.form = multiDict(form);
    fields.files = multiDict(files);
  } else {
    fields.data = bodyText(bytes, type);
    try {
      fields.json = JSON.parse(fields.data);
    } catch {
      fields.json = null;
    }
  }
  return fields;
}

// ---------------------------------------------------------------------------
// Small building blocks for the routes
// ---------------------------------------------------------------------------

// httpbin.org indents its JSON by two spaces and ends it with a newline, so
// `curl` output reads well in a terminal. We do the same.
function json(body: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json");
  return new Response(JSON.stringify(body, null, 2) + "\n", { ...init, headers });
}

function wholeNumber(text: string, what: string): number {
  if (!/^\d{1,9}$/.test(text)) {
    throw new Refusal(400, `${what} must be a whole number, got "${text}"`);
  }
  return Number(text);
}

function decodeSegment(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    throw new Refusal(400, `bad percent-encoding in "${text}"`);
  }
}

/**
 * Pick a status code from httpbin's `/status/` syntax: one code (`418`), a
 * list to pick from evenly (`200,500`), or a weighted list (`200:3,500:1`
 * answers 200 three times as often as 500).
 *
 * @param spec The path segment after `/status/`.
 * @param random A source of numbers in [0, 1), for tests. @default {Math.random}
 * @returns A status code from 200 to 599.
 * @throws {RangeError} If a code is not 200-599, a weight is not a number >= 0,
 *   or every weight is 0.
 *
 * @example
 * ```ts
 * import { chooseStatus } from "./httpbin.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(chooseStatus("418"), 418);
 * assert.equal(chooseStatus("200:3,500:1", () => 0.74), 200); // [0, 0.75) is 200
 * assert.equal(chooseStatus("200:3,500:1", () => 0.75), 500);
 * assert.throws(() => chooseStatus("99"), RangeError);
 * ```
 */
export function chooseStatus(spec: string, random: () => number = Math.random): number {
  const choices = spec.split(",").map((item) => {
    const [code, weight = "1", extra] = item.trim().split(":");
    // Deno's Response cannot carry a 1xx status: those are interim answers
    // (RFC 9110 §15.2), sent before the final one, never instead of it.
    if (extra !== undefined || !/^[2-5]\d\d$/.test(code)) {
      throw new RangeError(`invalid status code "${item}": expected 200-599, or CODE:WEIGHT`);
    }
    const w = Number(weight);
    if (!/^\d*\.?\d+$/.test(weight) || !Number.isFinite(w)) {
      throw new RangeError(`invalid weight in "${item}": expected a number >= 0`);
    }
    return { code: Number(code), weight: w };
  });
  const total = choices.reduce((sum, choice) => sum + choice.weight, 0);
  if (total <= 0) throw new RangeError(`the weights in "${spec}" add up to 0`);
  // Lay the weights end to end on [0, total) and see where the random point falls.
  let point = random() * total;
  for (const choice of choices) {
    if (point < choice.weight) return choice.code;
    point -= choice.weight;
  }
  return choices.findLast((choice) => choice.weight > 0)!.code;
}

/**
 * Bytes from a seeded generator (mulberry32): the same seed gives the same
 * bytes, so `/bytes/N?seed=S` can be checked by a test. Not for secrets.
 *
 * @param size How many bytes.
 * @param seed Any whole number.
 * @returns `size` bytes.
 */
export function seededBytes(size: number, seed: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  let state = seed >>> 0;
  for (let i = 0; i < size; i++) {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    bytes[i] = ((t ^ (t >>> 14)) >>> 0) & 0xff;
  }
  return bytes;
}

function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  // getRandomValues fills at most 64 KiB per call.
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(size, offset + 65536)));
  }
  return bytes;
}

// Wait `ms`, or less if `signal` aborts; resolves to whether the wait was cut short.
function sleep(ms: number, signal?: AbortSignal): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(true);
  return new Promise((resolve) => {
    const done = (aborted: boolean) => {
      clearTimeout(timer);
      signal?.removeEventListener("abort", onAbort);
      resolve(aborted);
    };
    const onAbort = () => done(true);
    const timer = setTimeout(() => done(false), ms);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

// Cookie names are tokens and values a restricted set of octets (RFC 6265
// §4.1.1): no spaces, quotes, commas, semicolons or backslashes, which would
// end the value early or inject an attribute.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const COOKIE_VALUE = /^[\x21\x23-\x2B\x2D-\x3A\x3C-\x5B\x5D-\x7E]*$/;

function parseCookies(header: string | null): Record<string, string> {
  const cookies: Record<string, string> = {};
  for (const pair of (header ?? "").split(";")) {
    const at = pair.indexOf("=");
    if (at > 0) cookies[pair.slice(0, at).trim()] = pair.slice(at + 1).trim();
  }
  return cookies;
}

const SAMPLE_JSON = {
  slideshow: {
    author: "Yours Truly",
    date: "date of publication",
    slides: [
      { title: "Wake up to WonderWidgets!", type: "all" },
      {
        items: ["Why <em>WonderWidgets</em> are great", "Who <em>buys</em> WonderWidgets"],
        title: "Overview",
        type: "all",
      },
    ],
    title: "Sample Slide Show",
  },
};

const SAMPLE_HTML = `<!DOCTYPE html>
<html>
  <head>
  </head>
  <body>
      <h1>Herman Melville - Moby-Dick</h1>

      <div>
        <p>
          Call me Ishmael. Some years ago—never mind how long precisely—having little or no
          money in my purse, and nothing particular to interest me on shore, I thought I would
          sail about a little and see the watery part of the world.
        </p>
      </div>
  </body>
</html>
`;

const TEAPOT = `
    -=[ teapot ]=-

       _...._
     .'  _ _ \`.
    | ."\` ^ \`". _,
    \\_;\`"---"\`|//
      |       ;/
      \\_     _/
        \`"""\`
`;

// ---------------------------------------------------------------------------
// The routes
// ---------------------------------------------------------------------------

// What each route sees: the request, its URL, the path's named parts, and who asked.
interface Context {
  request: Request;
  url: URL;
  params: Record<string, string>;
  origin: string;
}

interface Route {
  pattern: URLPattern;
  // The methods it answers; undefined means any. GET routes answer HEAD too.
  methods?: string[];
  handle: (context: Context) => Response | Promise<Response>;
}

/**
 * The request handler: every route of httpbin.org this project uses, and
 * `/flaky/N`. Pass it to `Deno.serve`, or call it directly in a test. Each
 * handler keeps its own `/flaky` counters.
 *
 * @param options Caps for `/bytes` and `/delay` and the request body, a log, a signal.
 * @returns A function from a request (and who sent it) to its response. It never
 *   throws: a bad request gets a 4xx with a JSON `{"error": ...}` body.
 *
 * @example Called directly, no server needed
 * ```ts
 * import { httpbinHandler } from "./httpbin.ts";
 * import assert from "node:assert/strict";
 *
 * const handle = httpbinHandler();
 * const response = await handle(new Request("http://example.test/get?a=1&a=2&b=3"));
 * assert.equal(response.status, 200);
 * const body = await response.json();
 * assert.deepEqual(body.args, { a: ["1", "2"], b: "3" });
 * ```
 */
export function httpbinHandler(
  options: HttpbinOptions = {},
): (request: Request, info?: Deno.ServeHandlerInfo<Deno.NetAddr>) => Promise<Response> {
  const {
    maxBytes = 100 * 1024,
    maxDelay = 10,
    maxBodySize = 1024 * 1024,
    log = () => {},
    signal,
  } = options;

  // The fields every "describe the request" route shares.
  const describe = ({ request, url, origin }: Context) => ({
    args: multiDict(url.searchParams),
    headers: headerDict(request.headers),
    origin,
    url: request.url,
  });
  const describeWithBody = async (context: Context) => ({
    ...describe(context),
    ...await describeBody(context.request, maxBodySize),
  });
  // httpbin.org's /post shows keys in alphabetical order; so do we.
  const sorted = (body: Record<string, unknown>) =>
    Object.fromEntries(Object.entries(body).sort(([a], [b]) => a < b ? -1 : 1));

  const flaky = new FlakyCounters();

  const routes: Route[] = [
    { pattern: path("/"), methods: ["GET"], handle: () => new Response(USAGE.trimStart()) },
    { pattern: path("/get"), methods: ["GET"], handle: (c) => json(describe(c)) },
    ...["post", "put", "patch", "delete"].map((method): Route => ({
      pattern: path(`/${method}`),
      methods: [method.toUpperCase()],
      handle: async (c) => json(sorted(await describeWithBody(c))),
    })),
    ...["/anything", "/anything/*"].map((pathname): Route => ({
      pattern: path(pathname),
      handle: async (c) => json(sorted({ ...await describeWithBody(c), method: c.request.method })),
    })),
    {
      pattern: path("/headers"),
      methods: ["GET"],
      handle: (c) => json({ headers: describe(c).headers }),
    },
    { pattern: path("/ip"), methods: ["GET"], handle: (c) => json({ origin: c.origin }) },
    {
      pattern: path("/user-agent"),
      methods: ["GET"],
      handle: (c) => json({ "user-agent": c.request.headers.get("user-agent") }),
    },
    { pattern: path("/json"), methods: ["GET"], handle: () => json(SAMPLE_JSON) },
    {
      pattern: path("/html"),
      methods: ["GET"],
      handle: () =>
        new Response(SAMPLE_HTML, { headers: { "content-type": "text/html; charset=utf-8" } }),
    },

    // Status codes on command. A redirect status gets a Location to follow,
    // 401 a challenge, 418 its teapot (RFC 2324 §2.3.2, kept in RFC 9110 §15.5.19).
    {
      pattern: path("/status/:codes"),
      handle: ({ params }) => {
        let status: number;
        try {
          status = chooseStatus(decodeSegment(params.codes));
        } catch (error) {
          throw new Refusal(400, (error as Error).message);
        }
        const headers = new Headers();
        if ([301, 302, 303, 305, 307, 308].includes(status)) headers.set("location", "/redirect/1");
        if (status === 401) headers.set("www-authenticate", 'Basic realm="Fake Realm"');
        if (status === 418) {
          return new Response(TEAPOT, {
            status,
            headers: { "x-more-info": "http://tools.ietf.org/html/rfc2324" },
          });
        }
        return new Response(null, { status, headers });
      },
    },

    // A slow server, for timeouts. The wait ends early only when the server
    // shuts down (options.signal): a client that hangs up mid-wait just
    // leaves it to run out, at most maxDelay seconds.
    {
      pattern: path("/delay/:n"),
      handle: async (c) => {
        const seconds = Number(c.params.n);
        if (!/^\d*\.?\d+$/.test(c.params.n) || !Number.isFinite(seconds)) {
          throw new Refusal(400, `the delay must be a number of seconds, got "${c.params.n}"`);
        }
        // httpbin.org's /delay shows the body fields but not json.
        const { json: _, ...body } = await describeWithBody(c);
        if (await sleep(Math.min(seconds, maxDelay) * 1000, signal)) {
          throw new Refusal(503, "the server is shutting down");
        }
        return json(sorted(body));
      },
    },

    {
      pattern: path("/bytes/:n"),
      methods: ["GET"],
      handle: ({ params, url }) => {
        const size = Math.min(wholeNumber(params.n, "the byte count"), maxBytes);
        const seed = url.searchParams.get("seed");
        const bytes = seed === null
          ? randomBytes(size)
          : seededBytes(size, wholeNumber(seed, "the seed"));
        return new Response(bytes, { headers: { "content-type": "application/octet-stream" } });
      },
    },

    // A body sent as it is made, one JSON object per line: with no total
    // length known up front, HTTP/1.1 sends it chunked (RFC 9112 §7.1).
    {
      pattern: path("/stream/:n"),
      methods: ["GET"],
      handle: (c) => {
        const count = Math.min(wholeNumber(c.params.n, "the line count"), 100);
        const each = describe(c);
        let id = 0;
        const body = new ReadableStream<Uint8Array>({
          pull(controller) {
            if (id === count) return controller.close();
            controller.enqueue(encoder.encode(JSON.stringify({ ...each, id: id++ }) + "\n"));
          },
        });
        return new Response(body, { headers: { "content-type": "application/json" } });
      },
    },

    // 302 Found (RFC 9110 §15.4.3) N times, then /get. A relative Location
    // is resolved against the request's URL (RFC 9110 §10.2.2).
    {
      pattern: path("/redirect/:n"),
      methods: ["GET"],
      handle: ({ params, url }) => {
        const n = wholeNumber(params.n, "the redirect count");
        if (n < 1) throw new Refusal(400, "the redirect count must be at least 1");
        const next = n === 1 ? "/get" : `/redirect/${n - 1}`;
        const absolute = url.searchParams.get("absolute") === "true";
        const location = absolute ? new URL(next + url.search, url).href : next + url.search;
        return new Response(null, { status: 302, headers: { location } });
      },
    },

    // Basic authentication (RFC 7617): the client sends
    // `Authorization: Basic base64(user:password)`; without it, or with the
    // wrong one, the server answers 401 and a WWW-Authenticate challenge
    // (RFC 9110 §11.6.1) saying which scheme to use.
    {
      pattern: path("/basic-auth/:user/:passwd"),
      methods: ["GET"],
      handle: ({ request, params }) => {
        const user = decodeSegment(params.user);
        const credentials = basicCredentials(request.headers.get("authorization"));
        if (credentials?.user === user && credentials.password === decodeSegment(params.passwd)) {
          return json({ authenticated: true, user });
        }
        return new Response(null, {
          status: 401,
          headers: { "www-authenticate": 'Basic realm="Fake Realm"' },
        });
      },
    },

    // Cookies (RFC 6265): the server sets them with Set-Cookie, the client
    // sends them back in Cookie. /cookies/set and /cookies/delete redirect to
    // /cookies, so a client that follows redirects and keeps cookies sees the result.
    {
      pattern: path("/cookies"),
      methods: ["GET"],
      handle: ({ request }) => json({ cookies: parseCookies(request.headers.get("cookie")) }),
    },
    {
      pattern: path("/cookies/set"),
      methods: ["GET"],
      handle: ({ url }) => setCookies(url.searchParams),
    },
    {
      pattern: path("/cookies/set/:name/:value"),
      methods: ["GET"],
      handle: ({ params }) =>
        setCookies([[decodeSegment(params.name), decodeSegment(params.value)]]),
    },
    {
      pattern: path("/cookies/delete"),
      methods: ["GET"],
      handle: ({ url }) => {
        const headers = new Headers({ location: "/cookies" });
        for (const name of url.searchParams.keys()) {
          if (!TOKEN.test(name)) throw new Refusal(400, `invalid cookie name "${name}"`);
          // Deleting a cookie = setting it again, already expired.
          headers.append(
            "set-cookie",
            `${name}=; Expires=Thu, 01 Jan 1970 00:00:00 GMT; Max-Age=0; Path=/`,
          );
        }
        return new Response(null, { status: 302, headers });
      },
    },

    // Not on httpbin.org: a route that fails on purpose, for retry logic.
    {
      pattern: path("/flaky/reset"),
      handle: ({ url }) => json({ reset: flaky.reset(url.searchParams.get("key") ?? undefined) }),
    },
    {
      pattern: path("/flaky/:n"),
      handle: ({ params, url, origin }) => {
        const n = wholeNumber(params.n, "the failure count");
        const retryAfter = parseRetryAfter(url.searchParams.get("retry-after"));
        const statusText = url.searchParams.get("status");
        const status = statusText === null
          ? retryAfter === undefined ? 503 : 429
          : wholeNumber(statusText, "the status");
        if (status < 400 || status > 599) {
          throw new Refusal(400, `the status must be 400-599 (a failure), got ${status}`);
        }
        const key = url.searchParams.get("key") ?? origin;
        const attempts = flaky.count(key);
        if (attempts > n) return json({ attempts });
        const headers = retryAfter === undefined ? undefined : { "retry-after": retryAfter };
        return json({ error: `failing on purpose: attempt ${attempts} of ${n} fails`, attempts }, {
          status,
          headers,
        });
      },
    },
  ];

  return async (request, info) => {
    const url = new URL(request.url);
    const origin = info?.remoteAddr.hostname ?? "127.0.0.1";
    let response: Response;
    try {
      response = await route(routes, { request, url, params: {}, origin });
    } catch (error) {
      response = error instanceof Refusal
        ? json({ error: error.message }, { status: error.status, headers: error.headers })
        : json({ error: "internal error" }, { status: 500 });
      if (!(error instanceof Refusal)) console.error(error);
    }
    // Anyone's web page may call us from a browser (CORS), as httpbin.org allows.
    response.headers.set("access-control-allow-origin", "*");
    log(`${origin} "${request.method} ${url.pathname}${url.search}" ${response.status}`);
    return response;
  };
}

function path(pathname: string): URLPattern {
  return new URLPattern({ pathname });
}

// Find the route for the path; then check the method. A path that exists
// with the wrong method is 405 with an Allow field (RFC 9110 §15.5.6), not 404.
function route(routes: Route[], context: Context): Response | Promise<Response> {
  const { request, url } = context;
  for (const { pattern, methods, handle } of routes) {
    const match = pattern.exec({ pathname: url.pathname });
    if (!match) continue;
    context.params = match.pathname.groups as Record<string, string>;
    const allowed = methods?.includes("GET") ? [...methods, "HEAD"] : methods;
    if (request.method === "OPTIONS") {
      // A browser's CORS preflight: say what may be sent.
      return new Response(null, {
        status: 204,
        headers: {
          allow: (allowed ?? ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE"]).join(", "),
          "access-control-allow-methods": "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS",
          "access-control-allow-headers": request.headers.get("access-control-request-headers") ??
            "*",
          "access-control-max-age": "3600",
        },
      });
    }
    if (allowed && !allowed.includes(request.method)) {
      throw new Refusal(405, `${url.pathname} does not answer ${request.method}`, {
        allow: allowed.join(", "),
      });
    }
    return handle(context);
  }
  throw new Refusal(404, `no route ${url.pathname}; GET / lists them`);
}

// Authorization: Basic dXNlcjpwYXNzd2Q=  ->  { user: "user", password: "passwd" }.
// The credentials are UTF-8 (RFC 7617 §2.1), and the user name ends at the first colon.
function basicCredentials(header: string | null): { user: string; password: string } | undefined {
  const match = header?.match(/^Basic\s+([A-Za-z0-9+/]+={0,2})\s*$/i);
  if (!match) return undefined;
  try {
    const decoded = strictUtf8.decode(Uint8Array.from(atob(match[1]), (c) => c.charCodeAt(0)));
    const colon = decoded.indexOf(":");
    if (colon < 0) return undefined;
    return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  } catch {
    return undefined; // not base64, or not UTF-8
  }
}

function setCookies(pairs: Iterable<[string, string]>): Response {
  const headers = new Headers({ location: "/cookies" });
  for (const [name, value] of pairs) {
    if (!TOKEN.test(name)) throw new Refusal(400, `invalid cookie name "${name}"`);
    if (!COOKIE_VALUE.test(value)) {
      throw new Refusal(400, `invalid cookie value for "${name}" (RFC 6265 §4.1.1)`);
    }
    headers.append("set-cookie", `${name}=${value}; Path=/`);
  }
  return new Response(null, { status: 302, headers });
}

// Retry-After (RFC 9110 §10.2.3) is either a number of seconds or an HTTP-date.
function parseRetryAfter(text: string | null): string | undefined {
  if (text === null) return undefined;
  if (/^\d{1,9}$/.test(text)) return text;
  const date = Date.parse(text);
  if (Number.isNaN(date)) {
    throw new Refusal(400, `retry-after must be seconds or an HTTP-date, got "${text}"`);
  }
  return new Date(date).toUTCString(); // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT"
}

// How many requests each /flaky key has made. Bounded, so a client inventing
// keys cannot grow it without end: past the limit, the oldest key is forgotten.
class FlakyCounters {
  #counts = new Map<string, number>();
  constructor(readonly limit = 10_000) {}
  count(key: string): number {
    const attempts = (this.#counts.get(key) ?? 0) + 1;
    this.#counts.delete(key); // re-insert: Map keeps insertion order, newest last
    this.#counts.set(key, attempts);
    if (this.#counts.size > this.limit) this.#counts.delete(this.#counts.keys().next().value!);
    return attempts;
  }
  reset(key?: string): number {
    if (key !== undefined) return this.#counts.delete(key) ? 1 : 0;
    const size = this.#counts.size;
    this.#counts.clear();
    return size;
  }
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/** Options for {@linkcode serveHttpbin}: the handler's, plus where and how to listen. */
export interface ServeHttpbinOptions extends HttpbinOptions {
  /** The address to listen on. @default {"127.0.0.1"} */
  hostname?: string;
  /** The TCP port; 0 picks any free one (read it from `server.addr.port`). @default {0} */
  port?: number;
  /** Called once listening (instead of Deno.serve's own "Listening on" line). @default {nothing} */
  onListen?: (addr: Deno.NetAddr) => void;
}

/**
 * Serve httpbin with `Deno.serve`. Listening has begun by the time it returns
 * (`server.addr` holds the port). To stop: abort `signal` (which also ends any
 * pending `/delay`), or call `server.shutdown()`; both finish the requests in
 * flight and close idle keep-alive connections.
 *
 * @param options Where to listen, the handler's options, and a signal to stop.
 * @returns The running server.
 * @throws {Deno.errors.AddrInUse} If the port is taken.
 *
 * @example
 * ```ts
 * import { serveHttpbin } from "./httpbin.ts";
 * import assert from "node:assert/strict";
 *
 * const server = serveHttpbin();
 * const response = await fetch(`http://127.0.0.1:${server.addr.port}/ip`);
 * assert.deepEqual(await response.json(), { origin: "127.0.0.1" });
 * await server.shutdown();
 * ```
 */
export function serveHttpbin(options: ServeHttpbinOptions = {}): Deno.HttpServer<Deno.NetAddr> {
  const { hostname = "127.0.0.1", port = 0, signal, onListen = () => {} } = options;
  const server = Deno.serve({ hostname, port, onListen }, httpbinHandler(options));
  // Not Deno.serve's own `signal` option: in Deno 2.9 that drops the answers
  // to requests still in flight. shutdown() lets them finish: the handler's
  // listener on the same signal has ended any pending delay first.
  if (signal?.aborted) server.shutdown();
  else signal?.addEventListener("abort", () => server.shutdown(), { once: true });
  return server;
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  "max-body": { type: "number", default: 1024 * 1024, integer: true, min: 0 },
  "max-bytes": { type: "number", default: 100 * 1024, integer: true, min: 0 },
  "max-delay": { type: "number", default: 10, min: 0 },
  quiet: { type: "boolean" },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (command === undefined) return await demo();
  if (command !== "serve") throw new UsageError(`unknown command "${command}"; expected serve`);

  // Ctrl-C or SIGTERM aborts the signal: Deno.serve stops accepting, ends
  // idle keep-alive connections, lets requests in flight finish (pending
  // delays end at once), and `finished` resolves.
  const server = serveHttpbin({
    hostname: flags.host,
    port: flags.port,
    maxBodySize: flags["max-body"],
    maxBytes: flags["max-bytes"],
    maxDelay: flags["max-delay"],
    log: flags.quiet ? undefined : console.log,
    signal: shutdownSignal(),
    onListen: (addr) => console.log(listeningBanner("http", addr)),
  });
  await server.finished;
}

// The demo: the server on a free port, and a few requests to it, each printed
// as the request, the status, and the part of the answer that matters.
async function demo(): Promise<void> {
  const stop = new AbortController();
  const server = serveHttpbin({ signal: stop.signal });
  const base = `http://127.0.0.1:${server.addr.port}`;
  console.log(`httpbin: ${listeningBanner("http", server.addr)}\n`);
  const show = async (
    label: string,
    input: string,
    init?: RequestInit,
    pick: (body: Record<string, unknown>) => unknown = (body) => body,
  ) => {
    const response = await fetch(base + input, init);
    const type = response.headers.get("content-type") ?? "";
    const body = type.includes("json")
      ? JSON.stringify(pick(await response.json()))
      : `(${(await response.bytes()).length} bytes${type ? ` of ${type.split(";")[0]}` : ""})`;
    console.log(`${label.padEnd(38)} ${response.status}  ${body}`);
  };

  try {
    // One answer in full: what a plain GET with a query looks like to the server.
    const response = await fetch(`${base}/get?lesson=12&tag=a&tag=b`, {
      headers: { "X-Wirebook": "hello" },
    });
    console.log(`GET /get?lesson=12&tag=a&tag=b  ->  ${response.status}`);
    console.log(await response.text());

    // The rest in one line each: only the fields that differ.
    await show("POST /post, a JSON body", "/post", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ hello: "world" }),
    }, ({ data, json }) => ({ data, json }));
    await show("PUT /put, a urlencoded form", "/put", {
      method: "PUT",
      body: new URLSearchParams({ name: "ada", lang: "ts" }),
    }, ({ data, form }) => ({ data, form }));
    await show("DELETE /get (the wrong method)", "/get", { method: "DELETE" });
    await show("GET /status/418", "/status/418");
    await show("GET /redirect/3 (fetch follows it)", "/redirect/3", {}, ({ url }) => ({ url }));
    await show("GET /basic-auth/ada/secret", "/basic-auth/ada/secret");
    await show("GET /basic-auth/ada/secret, logged in", "/basic-auth/ada/secret", {
      headers: { authorization: `Basic ${btoa("ada:secret")}` },
    });
    await show("GET /bytes/32?seed=7", "/bytes/32?seed=7");
    for (let i = 1; i <= 3; i++) {
      await show(`GET /flaky/2?key=demo (request ${i})`, "/flaky/2?key=demo");
    }
  } finally {
    stop.abort();
    await server.finished;
  }
  console.log("\nhttpbin: stopped; nothing left listening");
}

if (import.meta.main) runMain(USAGE, main);
