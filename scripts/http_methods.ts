#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title HTTP methods and status codes: a reference where every row is a live exchange
 * @difficulty beginner
 * @tags cli, network, http, reference
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc9110#section-9} RFC 9110 §9: Methods
 * @resource {https://www.rfc-editor.org/rfc/rfc9110#section-15} RFC 9110 §15: Status Codes
 * @resource {https://www.rfc-editor.org/rfc/rfc5789} RFC 5789: PATCH Method for HTTP
 *
 * What each HTTP method means (safe? idempotent? cacheable?) and what each
 * common status code says, and for every one of them, the request that makes
 * a real server answer it, sent and read with the raw client of
 * scripts/http_raw_client.ts. Most codes come about for a real reason: 404
 * for a path that is not there, 405 (with its Allow field) for DELETE, 413 for
 * a body over the limit, 414 for a huge URL, 431 for huge header fields, 408
 * for a request head that never ends, 505 for HTTP/2.0 in a request line. The
 * rest are asked for from the raw server's /status/NNN page. With no
 * arguments, it starts the raw server (scripts/http_raw_server.ts) on a free
 * loopback port and prints the whole reference with live answers.
 * Taught cell by cell in notebooks/11_http_methods.ipynb.
 */

import { parseFlags } from "../lib/parse_flags.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import {
  type Fields,
  fieldValue,
  HttpConnection,
  type HttpResponse,
  parseUrl,
} from "./http_raw_client.ts";
import { serveHttp } from "./http_raw_server.ts";

const USAGE = `
http_methods.ts: HTTP methods and status codes (RFC 9110 §9, §15), each shown live

usage:
  http_methods.ts                  demo: start the raw server (http_raw_server.ts) on a free
                                   port; print every method and status code with its live answer
  http_methods.ts methods          only the methods
  http_methods.ts statuses         only the status codes
  http_methods.ts show NAME|CODE   one method (e.g. DELETE) or status code (e.g. 405) in detail,
                                   with the exchange on the wire

flags:
  --url URL       send the requests to this server instead of starting the raw server
                  (the probes were written for the raw server; another one answers its own way)
  --timeout SECS  wait this long for each answer (default 5)
  -h, --help      show this help

permissions:
  the demo, and a --url on 127.0.0.1:  --allow-net=127.0.0.1
  a --url elsewhere:                   --allow-net=HOST (or plain --allow-net)
`;

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------
// A probe: one request that makes the server answer in a certain way
// ---------------------------------------------------------------------------

/**
 * A request to send. Either built from `method`, `target`, `headers` and
 * `body` (by the raw client's buildRequest), or `raw`: bytes the client would
 * never build (no Host, HTTP/2.0, a head that never ends), written as given.
 */
export interface Probe {
  /** The method (for a raw probe too: a response to HEAD has no body). */
  method: string;
  /** The request target; `{authority}` becomes host:port (for CONNECT). */
  target: string;
  headers?: Fields;
  body?: string;
  /** The whole request as text; `{host}` becomes the Host value. */
  raw?: string;
  /** What the probe does, when the request line alone does not say it. */
  note?: string;
}

/** What a server answered to a {@linkcode Probe}. */
export interface ProbeResult {
  /** The request line that was sent (and the note, if any). */
  sent: string;
  /** The final response's status line, or `undefined` if there was none. */
  status?: number;
  reason?: string;
  /** Any 1xx responses before it. */
  informational: number[];
  /** The response's header fields. */
  headers: Fields;
  /** How many body bytes came, and how the body was framed. */
  bodyLength: number;
  framing?: string;
  /** The body's gist: an HTML page's `<h1>`, or a text body's first line. */
  gist: string;
  /** What went wrong instead, if no response came. */
  error?: string;
}

/** Options for {@linkcode runProbe}. */
export interface ProbeOptions {
  /** Milliseconds to wait for the answer. @default {5000} */
  timeout?: number;
  /** The wire, line by line (`>` sent, `<` received, `*` decided). */
  trace?: (line: string) => void;
}

/**
 * Send one probe on a new connection to `base`, read the whole answer, and
 * close the connection. Never throws for what the server does: a refusal, a
 * timeout or a malformed answer is the result's `error`.
 *
 * @param base The server's URL (its origin is used).
 * @param probe The request.
 * @param options Timeout and trace.
 * @returns What came back.
 *
 * @example DELETE on a page that takes only GET and HEAD
 * ```ts
 * import { runProbe, startReferenceServer } from "./http_methods.ts";
 * import assert from "node:assert/strict";
 *
 * const server = startReferenceServer();
 * const result = await runProbe(server.url, { method: "DELETE", target: "/about" });
 * assert.equal(result.status, 405);
 * assert.deepEqual(result.headers.find(([name]) => name === "Allow"), ["Allow", "GET, HEAD, OPTIONS"]);
 * await server.close();
 * ```
 */
export async function runProbe(
  base: string,
  probe: Probe,
  options: ProbeOptions = {},
): Promise<ProbeResult> {
  const { timeout = 5000, trace } = options;
  const { origin } = parseUrl(base);
  const authority = `${
    origin.hostname.includes(":") ? `[${origin.hostname}]` : origin.hostname
  }:${origin.port}`;
  const target = probe.target.replace("{authority}", authority);
  const line = probe.raw?.split("\r\n")[0] ?? `${probe.method} ${target} HTTP/1.1`;
  const result: ProbeResult = {
    sent: shorten(line, 48) + (probe.note ? ` (${probe.note})` : ""),
    informational: [],
    headers: [],
    bodyLength: 0,
    gist: "",
  };
  let connection: HttpConnection | undefined;
  try {
    connection = await HttpConnection.open(base, { timeout, trace });
    let response: HttpResponse;
    if (probe.raw !== undefined) {
      const bytes = encoder.encode(probe.raw.replaceAll("{host}", origin.host));
      response = await connection.sendRaw(bytes, probe.method);
    } else {
      response = await connection.send({
        method: probe.method,
        target,
        headers: probe.headers,
        body: probe.body === undefined ? undefined : encoder.encode(probe.body),
      });
    }
    const body = await response.bytes();
    Object.assign(result, {
      status: response.status,
      reason: response.reason,
      informational: response.informational.map((interim) => interim.status),
      headers: response.headers,
      bodyLength: body.length,
      framing: response.framing.kind,
      gist: gist(body, fieldValue(response.headers, "content-type")),
    });
  } catch (error) {
    result.error = describe(error);
  } finally {
    connection?.close();
  }
  return result;
}

function describe(error: unknown): string {
  const parts: string[] = [];
  for (let e = error; e instanceof Error; e = e.cause) parts.push(e.message);
  return parts.join(": ") || String(error);
}

// An HTML page's <h1>, or a text body's first line; nothing for other types.
function gist(body: Uint8Array, type = ""): string {
  const text = decoder.decode(body);
  if (type.startsWith("text/html")) return text.match(/<h1>(.*?)<\/h1>/)?.[1] ?? "";
  if (type.startsWith("text/")) return text.trim().split("\n")[0];
  return body.length > 0 ? `${body.length} bytes of ${type || "data"}` : "";
}

/**
 * One line for a result: `405 Method Not Allowed; Allow: GET, HEAD, OPTIONS; "..."`,
 * with the fields that matter for its status (Allow, Location, ...).
 *
 * @param result What {@linkcode runProbe} returned.
 * @returns The line.
 *
 * @example
 * ```ts
 * import { describeResult } from "./http_methods.ts";
 * import assert from "node:assert/strict";
 *
 * const line = describeResult({
 *   sent: "GET /redirect HTTP/1.1",
 *   status: 302,
 *   reason: "Found",
 *   informational: [],
 *   headers: [["Location", "/about"]],
 *   bodyLength: 0,
 *   gist: "",
 * });
 * assert.equal(line, "302 Found; Location: /about");
 * ```
 */
export function describeResult(result: ProbeResult): string {
  if (result.error !== undefined) return `no answer: ${result.error}`;
  const parts = [`${result.status} ${result.reason}`];
  if (result.informational.length > 0) {
    parts[0] = `${result.informational.join(", then ")}, then ${parts[0]}`;
  }
  for (const name of ["Allow", "Location", "WWW-Authenticate", "Retry-After"]) {
    const value = fieldValue(result.headers, name);
    if (value !== undefined) parts.push(`${name}: ${value}`);
  }
  const length = fieldValue(result.headers, "content-length");
  if (result.framing === "none") {
    parts.push(length === undefined ? "no body" : `no body (Content-Length: ${length})`);
  } else {
    // Error pages start with their status line: say only what follows it.
    const prefix = `${result.status} ${result.reason}`;
    const said = result.gist.startsWith(prefix)
      ? result.gist.slice(prefix.length).replace(/^:\s*/, "")
      : result.gist;
    if (said && said !== result.reason) parts.push(JSON.stringify(shorten(said, 72)));
  }
  return parts.join("; ");
}

function shorten(text: string, max: number): string {
  return text.length > max ? `${text.slice(0, max - 3)}...` : text;
}

// ---------------------------------------------------------------------------
// The methods (RFC 9110 §9; PATCH is RFC 5789)
//
// safe        the client asks for nothing to change (§9.2.1): crawlers and
//             prefetchers may send it freely
// idempotent  sending it twice has the same effect as once (§9.2.2): a
//             client may retry it after a lost connection
// cacheable   a response to it may be stored and reused (§9.2.3)
// ---------------------------------------------------------------------------

/** One method, what it means, and the probe that shows the raw server's answer. */
export interface MethodInfo {
  name: string;
  /** Where it is defined: `RFC 9110 §9.3.1`. */
  section: string;
  safe: boolean;
  idempotent: boolean;
  /** Whether responses may be cached: "yes", "no", or a condition. */
  cacheable: string;
  meaning: string;
  probe: Probe;
}

/** The methods of RFC 9110 §9.3, and PATCH. */
export const METHODS: MethodInfo[] = [
  {
    name: "GET",
    section: "RFC 9110 §9.3.1",
    safe: true,
    idempotent: true,
    cacheable: "yes",
    meaning: "Transfer a current representation of the target resource.",
    probe: { method: "GET", target: "/" },
  },
  {
    name: "HEAD",
    section: "RFC 9110 §9.3.2",
    safe: true,
    idempotent: true,
    cacheable: "yes",
    meaning: "Like GET, but the server sends the header fields only: no body, " +
      "though Content-Length still says how long the GET body would be.",
    probe: { method: "HEAD", target: "/" },
  },
  {
    name: "POST",
    section: "RFC 9110 §9.3.3",
    safe: false,
    idempotent: false,
    cacheable: "only with explicit freshness",
    meaning: "Have the target process the enclosed content by its own rules: " +
      "submit a form, post a message, append to a log.",
    probe: {
      method: "POST",
      target: "/echo",
      headers: [["Content-Type", "text/plain"]],
      body: "posted",
    },
  },
  {
    name: "PUT",
    section: "RFC 9110 §9.3.4",
    safe: false,
    idempotent: true,
    cacheable: "no",
    meaning: "Create the target, or replace its state, with the enclosed representation.",
    probe: {
      method: "PUT",
      target: "/echo",
      headers: [["Content-Type", "text/plain"]],
      body: "put here",
    },
  },
  {
    name: "DELETE",
    section: "RFC 9110 §9.3.5",
    safe: false,
    idempotent: true,
    cacheable: "no",
    meaning: "Remove the association between the target and its current state.",
    probe: { method: "DELETE", target: "/about" },
  },
  {
    name: "CONNECT",
    section: "RFC 9110 §9.3.6",
    safe: false,
    idempotent: false,
    cacheable: "no",
    meaning: "Ask a proxy for a tunnel to host:port (the target is in authority form); " +
      "after a 2xx the connection carries raw bytes, not HTTP.",
    probe: { method: "CONNECT", target: "{authority}", note: "to itself" },
  },
  {
    name: "OPTIONS",
    section: "RFC 9110 §9.3.7",
    safe: true,
    idempotent: true,
    cacheable: "no",
    meaning: "Ask which communication options (methods, ...) the target supports; " +
      "`OPTIONS *` asks about the server as a whole.",
    probe: { method: "OPTIONS", target: "/about" },
  },
  {
    name: "TRACE",
    section: "RFC 9110 §9.3.8",
    safe: true,
    idempotent: true,
    cacheable: "no",
    meaning: "Echo the request back as received, for diagnosing proxies; " +
      "usually disabled, as it can reflect credentials to a script.",
    probe: { method: "TRACE", target: "/" },
  },
  {
    name: "PATCH",
    section: "RFC 5789 §2",
    safe: false,
    idempotent: false,
    cacheable: "no",
    meaning: "Apply a set of changes (a patch document) to the target, partially modifying it.",
    probe: {
      method: "PATCH",
      target: "/echo",
      headers: [["Content-Type", "text/plain"]],
      body: "a patch",
    },
  },
];

// ---------------------------------------------------------------------------
// The status codes (RFC 9110 §15): the first digit is the class
//
// 1xx informational: interim, the final answer follows
// 2xx successful     3xx redirection     4xx client error     5xx server error
// ---------------------------------------------------------------------------

/** One status code, what it means, and how to make the raw server answer it. */
export interface StatusInfo {
  code: number;
  reason: string;
  /** Where it is defined: `RFC 9110 §15.3.1`. */
  section: string;
  meaning: string;
  probe: Probe;
  /** True when the raw server sends it on its own; false when /status/NNN asks for it. */
  natural: boolean;
}

function asked(code: number): Probe {
  return { method: "GET", target: `/status/${code}`, note: "asked for" };
}

/** The status codes the reference shows. */
export const STATUSES: StatusInfo[] = [
  {
    code: 100,
    reason: "Continue",
    section: "RFC 9110 §15.2.1",
    meaning: "Interim: the head is fine, send the body. The answer to `Expect: 100-continue`, " +
      "so a client learns of a refusal before it uploads.",
    natural: true,
    probe: {
      method: "POST",
      target: "/echo",
      headers: [["Expect", "100-continue"], ["Content-Type", "text/plain"]],
      body: "after the 100",
      note: "with Expect: 100-continue",
    },
  },
  {
    code: 200,
    reason: "OK",
    section: "RFC 9110 §15.3.1",
    meaning: "Success; the body is what the method calls for (the representation, for GET).",
    natural: true,
    probe: { method: "GET", target: "/time" },
  },
  {
    code: 201,
    reason: "Created",
    section: "RFC 9110 §15.3.2",
    meaning: "A new resource was created (by PUT or POST); Location names it.",
    natural: false,
    probe: asked(201),
  },
  {
    code: 204,
    reason: "No Content",
    section: "RFC 9110 §15.3.5",
    meaning: "Success, and there is no body: it ends at the empty line (RFC 9112 §6.3).",
    natural: false,
    probe: asked(204),
  },
  {
    code: 206,
    reason: "Partial Content",
    section: "RFC 9110 §15.3.7",
    meaning: "Part of the representation, as a Range field asked. Ranges are optional: " +
      "a server that ignores them answers 200 with everything, as the raw server does.",
    natural: false,
    probe: {
      method: "GET",
      target: "/about",
      headers: [["Range", "bytes=0-9"]],
      note: "with Range: bytes=0-9",
    },
  },
  {
    code: 301,
    reason: "Moved Permanently",
    section: "RFC 9110 §15.4.2",
    meaning: "The target has a new permanent URI, in Location; update links. " +
      "(Clients may turn POST into GET.)",
    natural: false,
    probe: asked(301),
  },
  {
    code: 302,
    reason: "Found",
    section: "RFC 9110 §15.4.3",
    meaning: "The target is temporarily at the URI in Location; keep using this one.",
    natural: true,
    probe: { method: "GET", target: "/redirect" },
  },
  {
    code: 303,
    reason: "See Other",
    section: "RFC 9110 §15.4.4",
    meaning: "Look at the URI in Location, with GET (the answer to a POST, say).",
    natural: false,
    probe: asked(303),
  },
  {
    code: 304,
    reason: "Not Modified",
    section: "RFC 9110 §15.4.5",
    meaning: "The answer to a conditional GET (If-None-Match, If-Modified-Since): " +
      "your cached copy is still good. Never a body.",
    natural: false,
    probe: asked(304),
  },
  {
    code: 307,
    reason: "Temporary Redirect",
    section: "RFC 9110 §15.4.8",
    meaning: "Like 302, but the client must repeat the same method and body.",
    natural: false,
    probe: asked(307),
  },
  {
    code: 308,
    reason: "Permanent Redirect",
    section: "RFC 9110 §15.4.9",
    meaning: "Like 301, but the client must repeat the same method and body.",
    natural: false,
    probe: asked(308),
  },
  {
    code: 400,
    reason: "Bad Request",
    section: "RFC 9110 §15.5.1",
    meaning: "The request is malformed: here, an HTTP/1.1 request without Host (RFC 9112 §3.2).",
    natural: true,
    probe: { method: "GET", target: "/", raw: "GET / HTTP/1.1\r\n\r\n", note: "no Host" },
  },
  {
    code: 401,
    reason: "Unauthorized",
    section: "RFC 9110 §15.5.2",
    meaning: "Authentication needed (or failed); WWW-Authenticate says how to authenticate.",
    natural: false,
    probe: asked(401),
  },
  {
    code: 403,
    reason: "Forbidden",
    section: "RFC 9110 §15.5.4",
    meaning: "Understood, and refused; authenticating will not help.",
    natural: false,
    probe: asked(403),
  },
  {
    code: 404,
    reason: "Not Found",
    section: "RFC 9110 §15.5.5",
    meaning: "No current representation for the target (or the server will not say there is).",
    natural: true,
    probe: { method: "GET", target: "/no-such-page" },
  },
  {
    code: 405,
    reason: "Method Not Allowed",
    section: "RFC 9110 §15.5.6",
    meaning: "The target exists but not for this method; Allow must list those that work.",
    natural: true,
    probe: { method: "DELETE", target: "/" },
  },
  {
    code: 408,
    reason: "Request Timeout",
    section: "RFC 9110 §15.5.9",
    meaning: "The request did not arrive whole in time; the server closes the connection.",
    natural: true,
    probe: {
      method: "GET",
      target: "/",
      raw: "GET / HTTP/1.1\r\nHost: {host}\r\n",
      note: "a head that never ends",
    },
  },
  {
    code: 413,
    reason: "Content Too Large",
    section: "RFC 9110 §15.5.14",
    meaning: "The body is over the server's limit (until RFC 9110: Payload Too Large).",
    natural: true,
    probe: {
      method: "POST",
      target: "/echo",
      headers: [["Content-Type", "text/plain"]],
      body: "x".repeat(2048),
      note: "2 KiB, the limit is 1 KiB",
    },
  },
  {
    code: 414,
    reason: "URI Too Long",
    section: "RFC 9110 §15.5.15",
    meaning: "The request target is longer than the server will read.",
    natural: true,
    probe: { method: "GET", target: `/${"a".repeat(9000)}`, note: "9 KB" },
  },
  {
    code: 417,
    reason: "Expectation Failed",
    section: "RFC 9110 §15.5.18",
    meaning: "An Expect field the server cannot meet (100-continue is the only expectation).",
    natural: true,
    probe: {
      method: "GET",
      target: "/",
      headers: [["Expect", "miracles"]],
      note: "with Expect: miracles",
    },
  },
  {
    code: 429,
    reason: "Too Many Requests",
    section: "RFC 6585 §4",
    meaning: "Rate limited: slow down; Retry-After may say for how long.",
    natural: false,
    probe: asked(429),
  },
  {
    code: 431,
    reason: "Request Header Fields Too Large",
    section: "RFC 6585 §5",
    meaning: "The header section (or one field) is over the server's limit.",
    natural: true,
    probe: {
      method: "GET",
      target: "/",
      headers: [["X-Big", "b".repeat(20_000)]],
      note: "a 20 KB field",
    },
  },
  {
    code: 500,
    reason: "Internal Server Error",
    section: "RFC 9110 §15.6.1",
    meaning: "The server failed in a way it did not anticipate.",
    natural: false,
    probe: asked(500),
  },
  {
    code: 501,
    reason: "Not Implemented",
    section: "RFC 9110 §15.6.2",
    meaning: "The server does not support what the request needs: here, a transfer coding.",
    natural: true,
    probe: {
      method: "POST",
      target: "/echo",
      raw: "POST /echo HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" +
        "0\r\n\r\n",
      note: "Transfer-Encoding: gzip, chunked",
    },
  },
  {
    code: 503,
    reason: "Service Unavailable",
    section: "RFC 9110 §15.6.4",
    meaning: "Overloaded or down for now; the raw server sends it past --max-connections.",
    natural: false,
    probe: asked(503),
  },
  {
    code: 505,
    reason: "HTTP Version Not Supported",
    section: "RFC 9110 §15.6.6",
    meaning: "The request line's major version is not spoken here.",
    natural: true,
    probe: {
      method: "GET",
      target: "/",
      raw: "GET / HTTP/2.0\r\nHost: {host}\r\n\r\n",
      note: "HTTP/2.0 in a request line",
    },
  },
];

// ---------------------------------------------------------------------------
// The reference server: the raw server, with small limits so that the
// probes for 408, 413 and 431 are quick and small
// ---------------------------------------------------------------------------

/** A running raw server for the probes. */
export interface ReferenceServer {
  /** `http://127.0.0.1:PORT` */
  url: string;
  /** Its listener's address. */
  addr: Deno.NetAddr;
  /** Stop it and wait until every connection is closed. */
  close(): Promise<void>;
}

/**
 * Start scripts/http_raw_server.ts's `serveHttp` on a free loopback port,
 * with a 1 KiB body limit and a 500 ms header timeout.
 *
 * @returns The running server.
 *
 * @example
 * ```ts
 * import { startReferenceServer } from "./http_methods.ts";
 * import assert from "node:assert/strict";
 *
 * const server = startReferenceServer();
 * assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
 * await server.close();
 * ```
 */
export function startReferenceServer(): ReferenceServer {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const done = serveHttp(listener, {
    maxBodySize: 1024,
    headerTimeout: 500,
    log: () => {},
    signal: stop.signal,
  });
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    addr: listener.addr,
    async close() {
      stop.abort();
      await done;
    },
  };
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  url: { type: "string" },
  timeout: { type: "number", default: 5, min: 0.001 },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command = "demo", ...rest] = positionals;
  if (!["demo", "methods", "statuses", "show"].includes(command)) {
    throw new UsageError(`unknown command "${command}"; expected methods, statuses or show`);
  }
  if (command === "show" ? rest.length !== 1 : rest.length > 0) {
    throw new UsageError(
      command === "show"
        ? "show takes one method or status code"
        : `unexpected argument "${rest[0]}"`,
    );
  }
  let selected: (MethodInfo | StatusInfo)[] = [];
  if (command === "show") {
    const wanted = rest[0].toUpperCase();
    const found = METHODS.find((m) => m.name === wanted) ??
      STATUSES.find((s) => String(s.code) === wanted);
    if (!found) {
      throw new UsageError(
        `"${rest[0]}" is not in the reference; try one of ${
          METHODS.map((m) => m.name).join(" ")
        } ` +
          `or ${STATUSES.map((s) => s.code).join(" ")}`,
      );
    }
    selected = [found];
  }
  if (flags.url !== undefined) {
    try {
      parseUrl(flags.url);
    } catch (error) {
      throw new UsageError((error as Error).message);
    }
  }

  const server = flags.url === undefined ? startReferenceServer() : undefined;
  const base = flags.url ?? server!.url;
  if (server) {
    console.log(`server: ${listeningBanner("http", server.addr)} (scripts/http_raw_server.ts)`);
  }
  const options = { timeout: flags.timeout * 1000 };
  try {
    if (command === "show") await show(base, selected[0], options);
    if (command === "demo" || command === "methods") await printMethods(base, options);
    if (command === "demo" || command === "statuses") await printStatuses(base, options);
  } finally {
    await server?.close();
  }
  if (server) console.log("\nserver: stopped; nothing left listening");
}

async function printMethods(base: string, options: ProbeOptions) {
  console.log("\nMETHODS (RFC 9110 §9.3; PATCH: RFC 5789)");
  console.log(
    "  safe: asks for no change (§9.2.1); idempotent: twice = once (§9.2.2); " +
      "cacheable: §9.2.3",
  );
  for (const method of METHODS) {
    const result = await runProbe(base, method.probe, options);
    console.log(`\n${method.name.padEnd(8)} ${method.section.padEnd(17)} ${traits(method)}`);
    console.log(wrap(method.meaning, "         "));
    console.log(wrap(`live: ${result.sent} -> ${describeResult(result)}`, "         "));
  }
}

async function printStatuses(base: string, options: ProbeOptions) {
  console.log("\nSTATUS CODES (RFC 9110 §15; 429 and 431: RFC 6585)");
  console.log("  1xx interim, 2xx success, 3xx redirection, 4xx client error, 5xx server error");
  for (const status of STATUSES) {
    const result = await runProbe(base, status.probe, options);
    console.log(`\n${`${status.code} ${status.reason}`.padEnd(36)} ${status.section}`);
    console.log(wrap(status.meaning, "    "));
    console.log(wrap(`live: ${result.sent} -> ${describeResult(result)}`, "    "));
  }
}

function traits(method: MethodInfo): string {
  return [
    method.safe ? "safe" : "unsafe",
    method.idempotent ? "idempotent" : "not idempotent",
    method.cacheable === "yes"
      ? "cacheable"
      : method.cacheable === "no"
      ? "not cacheable"
      : `cacheable ${method.cacheable}`,
  ].join(", ");
}

// Wrap text at 96 columns, each line indented.
function wrap(text: string, indent: string, width = 96): string {
  const lines: string[] = [];
  let line = "";
  for (const word of text.split(" ")) {
    if (line && indent.length + line.length + 1 + word.length > width) {
      lines.push(line);
      line = word;
    } else line = line ? `${line} ${word}` : word;
  }
  lines.push(line);
  return lines.map((l, i) => (i === 0 ? indent : indent + "  ") + l).join("\n");
}

// One entry in detail, with its exchange on the wire.
async function show(base: string, entry: MethodInfo | StatusInfo, options: ProbeOptions) {
  if ("name" in entry) {
    console.log(`\n${entry.name} (${entry.section})`);
    console.log(wrap(entry.meaning, "  "));
    console.log(`  ${traits(entry)}`);
  } else {
    console.log(`\n${entry.code} ${entry.reason} (${entry.section})`);
    console.log(wrap(entry.meaning, "  "));
    console.log(
      entry.natural
        ? "  the raw server sends it by itself, for the request below"
        : entry.probe.target.startsWith("/status/")
        ? "  the raw server sends it only when asked, at /status/NNN"
        : "  the raw server never sends it; below, what it does instead",
    );
  }
  console.log("\nthe exchange (> sent, < received, * what the client decided):");
  const result = await runProbe(base, entry.probe, {
    ...options,
    trace: (line) => console.log(`  ${shorten(line, 100)}`),
  });
  console.log(`\n  ${result.sent} -> ${describeResult(result)}`);
}

if (import.meta.main) runMain(USAGE, main);
