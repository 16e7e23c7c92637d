#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title An HTTP server with Deno.serve: routes, parameters, status codes, escaped HTML
 * @difficulty beginner
 * @tags cli, network, http, server, security
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc9110} RFC 9110: HTTP Semantics (methods, status codes, fields)
 * @resource {https://www.rfc-editor.org/rfc/rfc3986#section-3} RFC 3986 §3: URI syntax (path, query, percent-encoding)
 * @resource {https://docs.deno.com/api/deno/~/Deno.serve} Deno.serve: the built-in HTTP server
 * @resource {https://owasp.org/www-community/attacks/xss/} OWASP: Cross-Site Scripting
 *
 * Python's `http.server` lesson, on `Deno.serve`: Deno parses HTTP for us (the
 * socket-level work is in scripts/http_raw_server.ts), and what is left is
 * the application's part. A handler is a function from a `Request` to a
 * `Response`. Routes pick it by path and method (404 when no path matches,
 * 405 with `Allow` when the path exists but not the method); parameters come
 * from the path and the query string, percent-decoded; a body is read only up
 * to a cap (413) and only in a media type we understand (415). Every HTML page
 * is built by a template tag that escapes whatever came from the client, so a
 * name like `<script>` shows up as text and never runs. Ctrl-C stops
 * gracefully: no new connections, requests in flight finish, idle keep-alive
 * connections close. With no arguments, it serves on a free loopback port,
 * sends it a round of requests, and stops it with one still in flight.
 * Taught cell by cell in notebooks/15_http_server.ipynb.
 */

import { parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { formatAddress } from "../lib/format_address.ts";

const USAGE = `
http_server.ts: a small web site on Deno.serve (RFC 9110): routes, path and query parameters,
status codes, escaped HTML, a capped request body, a graceful shutdown

usage:
  http_server.ts                 demo: serve on a free port, send a round of requests, stop
  http_server.ts serve [flags]   serve until Ctrl-C

pages:
  /                   the index
  /hello?name=NAME    a greeting; the name comes from the query string
  /hello/NAME         the same; the name comes from the path
  /headers            the request's header fields (JSON with Accept: application/json)
  /guestbook          GET: the latest entries (?limit=N); POST: sign it, as a form or as JSON
                      with "name" and "message"
  /guestbook/ID       one entry
  /slow?ms=N          answer after N ms (at most 5000), to watch a graceful shutdown
  anything else       404

flags:
  --host HOST        address to listen on (default 127.0.0.1)
  --port PORT        TCP port (default 8600; --port 0 picks any free port)
  --max-body BYTES   answer 413 to a larger request body (default 65536)
  --grace SECS       on Ctrl-C, give requests in flight this long to finish (default 10)
  --quiet            do not log requests
  -h, --help         show this help

permissions:
  demo, and serve on 127.0.0.1:   --allow-net=127.0.0.1
  serve on another --host:        --allow-net=HOST (or plain --allow-net)

try it:
  deno run --allow-net=127.0.0.1 scripts/http_server.ts serve
  curl -i 'http://127.0.0.1:8600/hello?name=Ada'
  curl -i --data-urlencode 'name=Ada' --data-urlencode 'message=<b>hi</b>' http://127.0.0.1:8600/guestbook
`;

const DEFAULT_PORT = 8600;
const strictUtf8 = new TextDecoder("utf-8", { fatal: true });

// ---------------------------------------------------------------------------
// HTML that cannot be injected into
// ---------------------------------------------------------------------------

// Reflecting what a client sent into a page (a name from the query, a path in
// a 404 page, a header, a guestbook entry someone else wrote) is how
// cross-site scripting happens: `?name=<script>...</script>` would run in the
// browser of whoever follows the link. The fix is to turn the five characters
// that mean something in HTML into character references, everywhere, every
// time. "Every time" is the hard part, so it is not left to memory: pages are
// built with the `html` template tag below, which escapes each `${value}`
// unless that value is itself HTML the tag built.

/**
 * Escape text for HTML: `& < > " '` become character references, so the text
 * is shown as written, in an element or a quoted attribute value.
 *
 * @param text Anything a client may have sent.
 * @returns The text, safe to put between tags or inside `"..."` or `'...'`.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./http_server.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeHtml(`<img src=x onerror="alert('hi')">`),
 *   "&lt;img src=x onerror=&quot;alert(&#39;hi&#39;)&quot;&gt;");
 * ```
 */
export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]);
}
const HTML_ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "'": "&#39;",
};

/** HTML the {@linkcode html} tag built: already escaped, so not escaped again. */
export class SafeHtml {
  /** @param text Markup, trusted as it is. */
  constructor(readonly text: string) {}
  /** The markup. */
  toString(): string {
    return this.text;
  }
}

/**
 * A template tag for HTML that escapes every interpolated value: strings,
 * numbers, anything, with {@linkcode escapeHtml}; arrays item by item; only a
 * {@linkcode SafeHtml} (what this tag returns) goes in as it is. The literal
 * parts are the programmer's markup; the `${values}` never become markup.
 *
 * Escaping is for text between tags and in quoted attributes. It does not
 * make a URL safe in `href` (`javascript:alert(1)` has nothing to escape), so
 * this server never puts a client's text in a URL.
 *
 * @param strings The literal parts.
 * @param values The interpolated values.
 * @returns The page or fragment.
 *
 * @example
 * ```ts
 * import { html } from "./http_server.ts";
 * import assert from "node:assert/strict";
 *
 * const name = "<script>alert(1)</script>";
 * const items = ["a&b", "c"].map((item) => html`<li>${item}</li>`);
 * assert.equal(String(html`<p>${name}</p><ul>${items}</ul>`),
 *   "<p>&lt;script&gt;alert(1)&lt;/script&gt;</p><ul><li>a&amp;b</li><li>c</li></ul>");
 * ```
 */
export function html(strings: TemplateStringsArray, ...values: unknown[]): SafeHtml {
  let out = strings[0];
  values.forEach((value, i) => out += render(value) + strings[i + 1]);
  return new SafeHtml(out);
}

function render(value: unknown): string {
  if (value instanceof SafeHtml) return value.text;
  if (Array.isArray(value)) return value.map(render).join("");
  return escapeHtml(String(value ?? ""));
}

function page(title: string, body: SafeHtml): SafeHtml {
  // (deno fmt would re-indent HTML in an html`` template; this one is kept as it is sent.)
  // deno-fmt-ignore
  return html`<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${title}</title></head>
<body>
<h1>${title}</h1>
${body}
<p><a href="/">home</a></p>
</body>
</html>
`;
}

// Two more layers, in case a bug ever lets markup through. A Content Security
// Policy that allows no scripts at all means an injected <script> still does
// not run; `nosniff` stops a browser from guessing that a text or JSON answer
// is HTML after all.
const SECURITY_HEADERS = {
  "content-security-policy": "default-src 'none'; form-action 'self'",
  "x-content-type-options": "nosniff",
};

function htmlResponse(body: SafeHtml, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "text/html; charset=utf-8");
  for (const [name, value] of Object.entries(SECURITY_HEADERS)) headers.set(name, value);
  return new Response(body.text, { ...init, headers });
}

function jsonResponse(body: unknown, init: ResponseInit = {}): Response {
  const headers = new Headers(init.headers);
  headers.set("content-type", "application/json");
  headers.set("x-content-type-options", "nosniff");
  return new Response(JSON.stringify(body, null, 2) + "\n", { ...init, headers });
}

// Content negotiation, the simple way: a client that says it accepts JSON gets
// JSON, anyone else (a browser) gets HTML. The answer then depends on a
// request field, so `Vary: Accept` tells caches to keep one copy per value.
function wantsJson(request: Request): boolean {
  return (request.headers.get("accept") ?? "").includes("application/json");
}

// ---------------------------------------------------------------------------
// Status codes: a request we refuse says why
// ---------------------------------------------------------------------------

/** A request the site refuses: the status code, and what to tell the client. */
export class HttpError extends Error {
  /**
   * @param status The status code: 400, 404, 405, 413, 415, ...
   * @param message What was wrong, shown to the client (escaped in HTML).
   * @param headers Fields the status calls for, such as `Allow` with 405.
   */
  constructor(readonly status: number, message: string, readonly headers: HeadersInit = {}) {
    super(message);
    this.name = "HttpError";
  }
}

const STATUS_TEXT: Record<number, string> = {
  400: "Bad Request",
  404: "Not Found",
  405: "Method Not Allowed",
  413: "Content Too Large",
  415: "Unsupported Media Type",
  500: "Internal Server Error",
};

// An error page is negotiated too (JSON or HTML, by Accept), so it carries
// `Vary: Accept` like any negotiated answer (RFC 9110 §12.5.5): without it, a
// cache could hand a browser the JSON 404 it stored for a script.
function errorResponse(request: Request, status: number, message: string, headers: HeadersInit) {
  const title = `${status} ${STATUS_TEXT[status] ?? "Error"}`;
  const fields = new Headers(headers);
  fields.append("vary", "Accept");
  const init = { status, headers: fields };
  return wantsJson(request)
    ? jsonResponse({ error: message, status }, init)
    : htmlResponse(page(title, html`<p>${message}</p>`), init);
}

// ---------------------------------------------------------------------------
// Reading what the client sent: path, query, body
// ---------------------------------------------------------------------------

// A path segment arrives percent-encoded (RFC 3986 §2.1): /hello/Ada%20L%C3%B6w
// is "Ada Löw". URLPattern hands us the raw segment; decoding it can fail on a
// broken escape such as %E0%A4, which is the client's mistake: 400, not 500.
function decodeSegment(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(400, `The path segment "${segment}" has a broken %-escape.`);
  }
}

// The query string (RFC 3986 §3.4) is name=value pairs joined by "&". The
// URL's searchParams decodes both %XX and "+" (a space, in HTML forms), and a
// name may come more than once (?tag=a&tag=b: getAll). Numbers come as text:
// check them, and say what was wrong.
function wholeNumberParam(url: URL, name: string, fallback: number, min: number, max: number) {
  const text = url.searchParams.get(name);
  if (text === null) return fallback;
  if (!/^\d{1,9}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw new HttpError(
      400,
      `?${name} must be a whole number from ${min} to ${max}, not "${text}".`,
    );
  }
  return Number(text);
}

// A body is read only up to the cap. A declared Content-Length over it is
// refused before a byte is read; a body without one (chunked) is refused as
// soon as it passes the cap. Either way the server never holds more than
// maxBodySize bytes for one request, whatever the client sends.
async function readBody(request: Request, maxBodySize: number): Promise<Uint8Array> {
  const tooLarge = () =>
    new HttpError(413, `The request body is larger than ${maxBodySize} bytes.`);
  if (Number(request.headers.get("content-length") ?? 0) > maxBodySize) throw tooLarge();
  if (request.body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of request.body) {
    size += chunk.length;
    if (size > maxBodySize) throw tooLarge(); // leaving the loop cancels the body stream
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

// What a body means depends on its Content-Type (RFC 9110 §8.3). We take the
// two a guestbook needs, an HTML form and JSON, and refuse the rest with 415.
const FORM = "application/x-www-form-urlencoded";
const JSON_TYPE = "application/json";

async function readFields(request: Request, maxBodySize: number): Promise<Map<string, string>> {
  const mediaType = (request.headers.get("content-type") ?? "").split(";")[0].trim().toLowerCase();
  if (mediaType !== FORM && mediaType !== JSON_TYPE) {
    throw new HttpError(
      415,
      `Send the entry as ${FORM} or ${JSON_TYPE}, not "${mediaType || "(no Content-Type)"}".`,
      { "accept-post": `${FORM}, ${JSON_TYPE}` },
    );
  }
  let text: string;
  try {
    text = strictUtf8.decode(await readBody(request, maxBodySize));
  } catch (error) {
    if (error instanceof HttpError) throw error;
    throw new HttpError(400, "The request body is not UTF-8 text.");
  }
  if (mediaType === FORM) return new Map(new URLSearchParams(text));
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new HttpError(400, "The request body is not valid JSON.");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) {
    throw new HttpError(400, 'The JSON body must be an object: {"name": ..., "message": ...}.');
  }
  return new Map(
    Object.entries(parsed).filter((entry): entry is [string, string] =>
      typeof entry[1] === "string"
    ),
  );
}

// ---------------------------------------------------------------------------
// The site
// ---------------------------------------------------------------------------

/** One guestbook entry. */
export interface Entry {
  id: number;
  name: string;
  message: string;
  /** When it was written, as an ISO 8601 date. */
  at: string;
}

/** Options for {@linkcode siteHandler}. */
export interface SiteOptions {
  /** The largest request body, in bytes; a larger one gets 413 Content Too Large. @default {65536} */
  maxBodySize?: number;
  /** How many guestbook entries to keep; the oldest go first. @default {100} */
  maxEntries?: number;
  /** The longest `/slow?ms=N` waits, in ms. @default {5000} */
  maxDelay?: number;
  /** Gets one line per request answered: `127.0.0.1:50000 "GET /hello?name=Ada" 200`. @default {no logging} */
  log?: (line: string) => void;
}

// What a route's handler gets: the request, its parsed URL, the named parts of the path.
interface Context {
  request: Request;
  url: URL;
  params: Record<string, string | undefined>;
}
type Handle = (context: Context) => Response | Promise<Response>;

// A route is a path pattern and a handler per method. URLPattern matches a
// path such as /guestbook/:id(\d+) and names its parts.
interface Route {
  pattern: URLPattern;
  methods: Record<string, Handle>;
}

/**
 * The site's request handler: the pages listed in `--help`, each request
 * logged. Pass it to `Deno.serve`, or call it directly in a test. Each
 * handler has its own guestbook, in memory.
 *
 * @param options The body cap, the guestbook's size, the longest `/slow`, a log.
 * @returns A function from a request (and who sent it) to its response. It
 *   never throws: a refused request gets its 4xx, a bug gets a plain 500.
 *
 * @example Called directly, no server needed
 * ```ts
 * import { siteHandler } from "./http_server.ts";
 * import assert from "node:assert/strict";
 *
 * const handle = siteHandler();
 * const response = await handle(new Request("http://site.test/hello?name=%3Cb%3EAda"));
 * assert.equal(response.status, 200);
 * assert.match(await response.text(), /Hello, &lt;b&gt;Ada!/);
 * ```
 */
export function siteHandler(
  options: SiteOptions = {},
): (request: Request, info?: Deno.ServeHandlerInfo<Deno.NetAddr>) => Promise<Response> {
  const { maxBodySize = 64 * 1024, maxEntries = 100, maxDelay = 5000, log = () => {} } = options;
  const entries: Entry[] = [];
  let nextId = 1;

  const hello: Handle = ({ url, params }) => {
    const name = params.name === undefined
      ? url.searchParams.get("name") ?? "world"
      : decodeSegment(params.name);
    if (name.length > 100) throw new HttpError(400, "That name is longer than 100 characters.");
    return htmlResponse(page("Hello", html`<p>Hello, ${name}!</p>`));
  };

  const headers: Handle = ({ request }) => {
    // Field names are case-insensitive (RFC 9110 §5.1); the Fetch API gives them lowercased.
    const fields = [...request.headers];
    const vary = { vary: "Accept" };
    if (wantsJson(request)) {
      return jsonResponse({ headers: Object.fromEntries(fields) }, { headers: vary });
    }
    // deno-fmt-ignore
    const rows = fields.map(([name, value]) => html`<tr><th>${name}</th><td>${value}</td></tr>\n`);
    return htmlResponse(page("Your request's header fields", html`<table>\n${rows}</table>`), {
      headers: vary,
    });
  };

  const listEntries: Handle = ({ request, url }) => {
    const limit = wholeNumberParam(url, "limit", 20, 1, maxEntries);
    const latest = entries.slice(-limit).reverse();
    const vary = { vary: "Accept" };
    if (wantsJson(request)) return jsonResponse({ entries: latest }, { headers: vary });
    const items = latest.map((entry) => html`<li>${entryHtml(entry)}</li>`);
    return htmlResponse(
      page(
        "Guestbook",
        html`<ul>${items}</ul>
<form method="post" action="/guestbook">
<input name="name" placeholder="name"> <input name="message" placeholder="message">
<button>sign</button>
</form>`,
      ),
      { headers: vary },
    );
  };

  const sign: Handle = async ({ request }) => {
    const fields = await readFields(request, maxBodySize);
    const name = fields.get("name")?.trim() ?? "";
    const message = fields.get("message")?.trim() ?? "";
    if (name === "" || message === "") throw new HttpError(400, "Give both a name and a message.");
    if (name.length > 60 || message.length > 500) {
      throw new HttpError(400, "Keep the name to 60 characters and the message to 500.");
    }
    // Stored as written, escaped when shown: the text stays the client's own,
    // whether it ends up in HTML, JSON or a terminal.
    const entry = { id: nextId++, name, message, at: new Date().toISOString() };
    entries.push(entry);
    if (entries.length > maxEntries) entries.shift();
    const location = `/guestbook/${entry.id}`;
    // A browser's form gets 303 See Other (RFC 9110 §15.4.4): it then GETs
    // the entry, so reloading that page does not sign the guestbook twice.
    // An API client gets 201 Created, with the new entry and where it lives.
    const isForm = request.headers.get("content-type")?.toLowerCase().startsWith(FORM);
    if (isForm) return new Response(null, { status: 303, headers: { location } });
    return jsonResponse(entry, { status: 201, headers: { location } });
  };

  const showEntry: Handle = ({ request, params }) => {
    const entry = entries.find((entry) => entry.id === Number(params.id));
    if (!entry) throw new HttpError(404, `There is no entry ${params.id}.`);
    if (wantsJson(request)) return jsonResponse(entry, { headers: { vary: "Accept" } });
    return htmlResponse(page(`Entry ${entry.id}`, html`<p>${entryHtml(entry)}</p>`), {
      headers: { vary: "Accept" },
    });
  };

  const slow: Handle = async ({ url }) => {
    const ms = wholeNumberParam(url, "ms", 1000, 0, maxDelay);
    await new Promise((resolve) => setTimeout(resolve, ms));
    return new Response(`answered after ${ms} ms\n`, {
      headers: { "content-type": "text/plain; charset=utf-8" },
    });
  };

  const home: Handle = () =>
    htmlResponse(page(
      "wirebook: a site on Deno.serve",
      // deno-fmt-ignore
      html`<ul>
<li><a href="/hello?name=Ada">/hello?name=Ada</a> and <a href="/hello/Ada">/hello/Ada</a>: a greeting</li>
<li><a href="/headers">/headers</a>: what your browser sent</li>
<li><a href="/guestbook">/guestbook</a>: sign it</li>
<li><a href="/slow?ms=2000">/slow?ms=2000</a>: an answer that takes its time</li>
</ul>`,
    ));

  const route = (pathname: string, methods: Record<string, Handle>): Route => ({
    pattern: new URLPattern({ pathname }),
    methods,
  });
  const routes: Route[] = [
    route("/", { GET: home }),
    route("/hello", { GET: hello }),
    route("/hello/:name", { GET: hello }),
    route("/headers", { GET: headers }),
    route("/guestbook", { GET: listEntries, POST: sign }),
    route("/guestbook/:id(\\d{1,9})", { GET: showEntry }),
    route("/slow", { GET: slow }),
  ];

  return async (request, info) => {
    const url = new URL(request.url);
    let response: Response;
    try {
      response = await dispatch(routes, request, url);
    } catch (error) {
      if (error instanceof HttpError) {
        response = errorResponse(request, error.status, error.message, error.headers);
      } else {
        // A bug of ours: log it, and tell the client nothing about our insides.
        log(`error: ${request.method} ${url.pathname}: ${(error as Error)?.stack ?? error}`);
        response = errorResponse(request, 500, "Something went wrong on our side.", {});
      }
    }
    // url.pathname and url.search are percent-encoded: no control characters
    // from the client reach the log (or the terminal showing it).
    const who = info ? formatAddress(info.remoteAddr) : "-";
    log(`${who} "${request.method} ${url.pathname}${url.search}" ${response.status}`);
    return response;
  };
}

function entryHtml(entry: Entry): SafeHtml {
  return html`<a href="/guestbook/${entry.id}">#${entry.id}</a> <b>${entry.name}</b>: ${entry.message}`;
}

// Find the route for the path, then the handler for the method. A path that
// exists with the wrong method is 405 with an Allow field (RFC 9110 §15.5.6),
// not 404. HEAD is GET without the body (§9.3.2): Deno.serve drops the body of
// a response to HEAD for us. OPTIONS (§9.3.7) asks what the path allows.
function dispatch(routes: Route[], request: Request, url: URL): Response | Promise<Response> {
  for (const { pattern, methods } of routes) {
    const match = pattern.exec({ pathname: url.pathname });
    if (!match) continue;
    const allowed = Object.keys(methods);
    if (allowed.includes("GET")) allowed.push("HEAD");
    allowed.push("OPTIONS");
    const allow = { allow: allowed.join(", ") };
    if (request.method === "OPTIONS") return new Response(null, { status: 204, headers: allow });
    const handle = methods[request.method === "HEAD" ? "GET" : request.method];
    if (!handle) {
      throw new HttpError(405, `${url.pathname} does not answer ${request.method}.`, allow);
    }
    return handle({ request, url, params: match.pathname.groups });
  }
  throw new HttpError(404, `There is no page at ${url.pathname}.`);
}

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/** Options for {@linkcode serveSite}: the handler's, plus where and how to listen. */
export interface ServeSiteOptions extends SiteOptions {
  /** The address to listen on. @default {"127.0.0.1"} */
  hostname?: string;
  /** The TCP port; 0 picks any free one (read it from `server.addr.port`). @default {0} */
  port?: number;
  /** Called once listening (instead of Deno.serve's own "Listening on" line). @default {nothing} */
  onListen?: (addr: Deno.NetAddr) => void;
  /** When it aborts, the server shuts down gracefully, as `server.shutdown()` does. */
  signal?: AbortSignal;
}

/**
 * Serve the site with `Deno.serve`. Listening has begun when it returns
 * (`server.addr` holds the port).
 *
 * To stop, abort `signal` or call `server.shutdown()`: the listener closes, so
 * new connections are refused; requests in flight run to the end; idle
 * keep-alive connections are closed; then `server.finished` resolves. (We do
 * not hand `signal` to `Deno.serve` itself: its abort closes every connection
 * at once, cutting off answers in flight.)
 *
 * @param options Where to listen, the handler's options, and a signal to stop.
 * @returns The running server.
 * @throws {Deno.errors.AddrInUse} If the port is taken.
 *
 * @example
 * ```ts
 * import { serveSite } from "./http_server.ts";
 * import assert from "node:assert/strict";
 *
 * const server = serveSite();
 * const response = await fetch(`http://127.0.0.1:${server.addr.port}/nowhere`);
 * assert.equal(response.status, 404);
 * await response.body?.cancel();
 * await server.shutdown();
 * ```
 */
export function serveSite(options: ServeSiteOptions = {}): Deno.HttpServer<Deno.NetAddr> {
  const { hostname = "127.0.0.1", port = 0, signal, onListen = () => {} } = options;
  const server = Deno.serve({ hostname, port, onListen }, siteHandler(options));
  const stop = () => void server.shutdown();
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", stop, { once: true });
  server.finished.then(() => signal?.removeEventListener("abort", stop));
  return server;
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  "max-body": { type: "number", default: 64 * 1024, integer: true, min: 0 },
  grace: { type: "number", default: 10, min: 0 },
  quiet: { type: "boolean" },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (command === undefined) return await demo();
  if (command !== "serve") throw new UsageError(`unknown command "${command}"; expected serve`);

  const signal = shutdownSignal();
  const server = serveSite({
    hostname: flags.host,
    port: flags.port,
    maxBodySize: flags["max-body"],
    log: flags.quiet ? undefined : console.log,
    signal,
    onListen: (addr) => console.log(listeningBanner("http", addr)),
  });
  // A graceful shutdown waits for requests in flight; a client that never
  // finishes its request would make it wait forever. After --grace seconds,
  // we stop waiting. (unrefTimer: the timer alone does not keep us running.)
  signal.addEventListener("abort", () => {
    Deno.unrefTimer(setTimeout(() => {
      console.error(`note: requests still running after ${flags.grace} s; stopping anyway`);
      Deno.exit(0);
    }, flags.grace * 1000));
  }, { once: true });
  await server.finished;
}

// The demo: the site on a free port, a round of requests each printed as the
// request, the status and the line of the answer that matters, then a
// graceful shutdown with a slow request still in flight.
async function demo(): Promise<void> {
  // A handler is a function, so wrapping one adds behaviour around it
  // ("middleware"): here, a note when /slow starts, so the demo knows the
  // request is in flight before it shuts the server down.
  let slowStarted = () => {};
  const inFlight = new Promise<void>((resolve) => slowStarted = resolve);
  const handle = siteHandler();
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen: () => {} }, (req, info) => {
    if (new URL(req.url).pathname === "/slow") slowStarted();
    return handle(req, info);
  });
  const base = `http://127.0.0.1:${server.addr.port}`;
  console.log(`server: ${listeningBanner("http", server.addr)}`);

  const show = async (label: string, path: string, init: RequestInit = {}) => {
    console.log(`\n${label}`);
    const response = await fetch(base + path, { redirect: "manual", ...init });
    const fields = ["location", "allow"].filter((name) => response.headers.has(name))
      .map((name) => `, ${name}: ${response.headers.get(name)}`);
    console.log(`  -> ${response.status} ${response.statusText}${fields.join("")}`);
    // The part of the answer that matters: JSON on one line, or the <p> of a
    // page, as it went over the wire (escaped).
    const body = await response.text();
    const shown = response.headers.get("content-type")?.includes("json")
      ? JSON.stringify(JSON.parse(body))
      : body.match(/<p>(.*)<\/p>/)?.[1];
    if (shown) console.log(`     ${shown}`);
  };

  try {
    await show("GET /hello?name=Ada+Lovelace", "/hello?name=Ada+Lovelace");
    await show("GET /hello/Ada%20L%C3%B6w (a path segment, %-decoded)", "/hello/Ada%20L%C3%B6w");
    await show(
      "GET /hello?name=<script>alert(1)</script> (reflected, so escaped)",
      "/hello?name=<script>alert(1)</script>",
    );
    await show("POST /guestbook, a form with HTML in it", "/guestbook", {
      method: "POST",
      body: new URLSearchParams({ name: "Eve", message: `<img src=x onerror="alert('hi')">` }),
    });
    await show("GET /guestbook/1 (stored, so escaped when shown)", "/guestbook/1");
    await show("POST /guestbook, JSON", "/guestbook", {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ name: "Ada", message: "hello" }),
    });
    await show("GET /guestbook/99", "/guestbook/99");
    await show("DELETE /guestbook", "/guestbook", { method: "DELETE" });
    await show("POST /guestbook, text/plain", "/guestbook", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: "hello",
    });
    await show("POST /guestbook, 100 kB", "/guestbook", {
      method: "POST",
      body: new URLSearchParams({ name: "Big", message: "x".repeat(100_000) }),
    });
    await show("GET /guestbook?limit=lots", "/guestbook?limit=lots");

    // Graceful shutdown: a slow request is in flight when we stop.
    console.log("\nGET /slow?ms=300, and shutdown() while it is in flight");
    const slow = fetch(`${base}/slow?ms=300`).then(async (r) => `${r.status} ${await r.text()}`);
    await inFlight;
    const stopped = server.shutdown();
    const late = await fetch(`${base}/hello`).then(
      (response) => `${response.status}`,
      // fetch says "fetch failed"; the reason is at the end of its cause's message.
      (error) => `failed (${error.cause?.message.split(": ").at(-1) ?? error.message})`,
    );
    console.log(`  a new request meanwhile: ${late}`);
    console.log(`  the request in flight: ${(await slow).trim()}`);
    await stopped;
  } finally {
    await server.shutdown();
  }
  console.log("server: stopped; nothing left listening");
}

if (import.meta.main) runMain(USAGE, main);
