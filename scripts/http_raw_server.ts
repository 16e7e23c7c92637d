#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title A web server from sockets: HTTP/1.1 parsed, framed and answered by hand
 * @difficulty intermediate
 * @tags cli, network, tcp, http, server, security
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc9112} RFC 9112: HTTP/1.1 (message syntax, framing, persistent connections)
 * @resource {https://www.rfc-editor.org/rfc/rfc9110} RFC 9110: HTTP Semantics (methods, status codes, fields)
 *
 * The tutorials' socket web server (`/`, `/time`, `/about`, a 404 page), done
 * properly. HTTP/1.1 is text on a TCP stream, and the hard part is not the
 * text but where each message ends: a request head ends at an empty line, a
 * body after `Content-Length` bytes or at the last chunk. Get that wrong, or
 * let two readers of the same bytes disagree, and one client's body becomes
 * another client's request (request smuggling). So the parser here is strict
 * where RFC 9112 says a server MUST be, every limit has its status code (414,
 * 431, 413, 408), persistent connections, HEAD, `Expect: 100-continue` and
 * chunked bodies work, and whatever is reflected into HTML is escaped. With no
 * arguments, it serves on a free loopback port and shows the bytes of a few
 * exchanges. Built up cell by cell in notebooks/10_http_raw_server.ipynb.
 */

import { acceptConnections } from "../lib/accept_connections.ts";
import { BufferedReader } from "../lib/buffered_reader.ts";
import type { Reader } from "../lib/read_exactly.ts";
import { FrameTooLargeError } from "../lib/frame_too_large_error.ts";
import { UnexpectedEofError } from "../lib/unexpected_eof_error.ts";
import { writeAll, type Writer } from "../lib/write_all.ts";
import { parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";

const USAGE = `
http_raw_server.ts: an HTTP/1.1 server written on raw TCP sockets (RFC 9112, RFC 9110)

usage:
  http_raw_server.ts                 demo: a server on a free port, and a client that shows the bytes
  http_raw_server.ts serve [flags]   serve the pages until Ctrl-C

pages:
  /  /time  /about     GET and HEAD
  /echo                POST or PUT a body (Content-Length or chunked): it comes back as sent
  /redirect            302 to /about
  /chunked             a response in several chunks (?delay=MS between them, at most 1000)
  /status/NNN          answers with status NNN (200-599)
  anything else        a 404 page

flags:
  --host HOST            address to listen on (default 127.0.0.1)
  --port PORT            TCP port (default 8400; --port 0 picks any free port)
  --header-timeout SECS  answer 408 and close when a request head takes longer (default 10)
  --idle-timeout SECS    close a keep-alive connection idle this long, or a client that
                         stops sending its body or reading our response (default 5)
  --min-body-rate BYTES  answer 408 to a request body that arrives slower than this many
                         bytes a second on average, after its first --idle-timeout (default 500)
  --max-body BYTES       answer 413 to a larger request body (default 1048576)
  --max-connections N    answer 503 beyond this many connections at once (default 1000)
  --quiet                do not log requests
  -h, --help             show this help

Ctrl-C or SIGTERM stops it: idle connections close at once, requests in progress get
5 s to finish, then they are closed too.

permissions:
  demo, and serve on 127.0.0.1:   --allow-net=127.0.0.1
  serve on another --host:        --allow-net=HOST (or plain --allow-net)

try it:
  deno run --allow-net=127.0.0.1 scripts/http_raw_server.ts serve
  curl -v http://127.0.0.1:8400/ http://127.0.0.1:8400/about   # two requests, one connection
`;

const DEFAULT_PORT = 8400;
const encoder = new TextEncoder();
const EMPTY = new Uint8Array(0);

// ---------------------------------------------------------------------------
// Limits and errors
// ---------------------------------------------------------------------------

/** Options for {@linkcode serveHttp}. */
export interface RawServerOptions {
  /** The longest request line, in bytes; longer gets 414 URI Too Long. @default {8192} */
  maxRequestLine?: number;
  /** The most bytes of header field lines; more gets 431. @default {16384} */
  maxHeaderBytes?: number;
  /** The most header field lines; more gets 431. @default {100} */
  maxHeaderFields?: number;
  /** The largest request body, in bytes; larger gets 413 Content Too Large. @default {1048576} */
  maxBodySize?: number;
  /** Milliseconds to receive a whole request head, from its first byte; then 408 and close. @default {10000} */
  headerTimeout?: number;
  /** Milliseconds a keep-alive connection may sit idle between requests (or stall mid-body or mid-response). @default {5000} */
  idleTimeout?: number;
  /** Bytes per second a request body must average, after its first idleTimeout; slower gets 408. @default {500} */
  minBodyRate?: number;
  /** Milliseconds that requests in progress get to finish once `signal` aborts; then they are closed. @default {5000} */
  shutdownGrace?: number;
  /** Connections beyond this many at once get 503 and are closed (or, past 64 refusals at once, just closed). @default {1000} */
  maxConnections?: number;
  /** Where request and error lines go. @default {console.log} */
  log?: (line: string) => void;
  /** Abort to stop: no new connections, idle connections close, the rest get `shutdownGrace` to finish. */
  signal?: AbortSignal;
}

/** The size limits a request is read under (see {@linkcode RawServerOptions}). */
export interface RequestLimits {
  maxRequestLine: number;
  maxHeaderBytes: number;
  maxHeaderFields: number;
  maxBodySize: number;
}

/** The defaults: the limits nginx and Node use, give or take. */
export const DEFAULT_LIMITS: Readonly<RequestLimits> = {
  maxRequestLine: 8192,
  maxHeaderBytes: 16384,
  maxHeaderFields: 100,
  maxBodySize: 1024 * 1024,
};

/**
 * A request the server refuses, and the status that says why. The parser
 * throws it; the server answers with it and closes the connection, because
 * after a malformed message nobody knows where the next one starts.
 */
export class HttpError extends Error {
  /** The status code to answer with: 400, 408, 413, 414, 417, 431, 501, 505. */
  readonly status: number;

  /**
   * @param status The status code.
   * @param message What was wrong, for the log and the error page.
   */
  constructor(status: number, message: string) {
    super(message);
    this.name = "HttpError";
    this.status = status;
  }
}

// ---------------------------------------------------------------------------
// Characters: what a token and a field value may contain (RFC 9110 §5.6.2, §5.5)
// ---------------------------------------------------------------------------

// tchar = "!" / "#" / "$" / "%" / "&" / "'" / "*" / "+" / "-" / "." / "^" / "_"
//       / "`" / "|" / "~" / DIGIT / ALPHA. Methods and field names are tokens:
// no spaces, no separators such as ":" or "/", no control bytes.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
// A field value: visible characters, spaces and tabs, and bytes >= 0x80
// (obs-text). Not NUL, CR, LF or any other control byte: a CR or LF that got
// through would let a value end the line early and start a forged one.
const FIELD_VALUE = /^[\t\x20-\x7e\x80-\xff]*$/;
// A request target: visible ASCII only (RFC 9112 §3.2; RFC 3986's characters,
// plus the few clients send unescaped). No spaces, controls or raw UTF-8.
const TARGET = /^[\x21-\x7e]+$/;
// A Host value: uri-host [ ":" port ] (RFC 9110 §7.2, RFC 3986 §3.2.2).
const HOST = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9\-._~%!$&'()*+,;=]*)(?::\d*)?$/;

// Bytes to a string, one character per byte (ISO-8859-1), so that every byte
// survives to be checked. (TextDecoder's "latin1" is really windows-1252, which
// turns 0x80-0x9f into other characters.)
function latin1(bytes: Uint8Array): string {
  let text = "";
  for (let i = 0; i < bytes.length; i += 8192) {
    text += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192) as unknown as number[]);
  }
  return text;
}

// ---------------------------------------------------------------------------
// Reading lines: CRLF, strictly
// ---------------------------------------------------------------------------

/** Options for {@linkcode HttpReader}. */
export interface HttpReaderOptions {
  /** Called with the size of each read from the connection (the server's timers listen here). */
  onRead?: (bytes: number) => void;
}

/**
 * A {@linkcode BufferedReader} that reads HTTP's lines strictly.
 *
 * `readLine()` accepts a line that ends in LF alone, as many protocols must.
 * HTTP lines end in CRLF (RFC 9112 §2.2), and a reader that also takes a bare
 * LF sees line ends where a stricter one in front of it does not: that
 * disagreement is one way to smuggle a request (Go's CVE-2025-22871 was a bare
 * LF ending a chunk-size line). So this reader counts the bytes each line
 * consumed: the line plus 2 for CRLF, or it is refused with 400. A CR anywhere
 * else in a line (a bare CR) is refused too.
 *
 * @example A line that ends in LF alone is refused
 * ```ts
 * import { HttpReader } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * const wire = new TextEncoder().encode("Host: a\r\nBad: b\nrest");
 * const stream = ReadableStream.from([wire]).getReader();
 * const reader = new HttpReader({
 *   async read(buffer: Uint8Array) {
 *     const { value, done } = await stream.read();
 *     if (done) return null;
 *     buffer.set(value);
 *     return value.length;
 *   },
 * });
 * assert.equal(await reader.readCrlfLine(100), "Host: a");
 * await assert.rejects(reader.readCrlfLine(100), { status: 400 });
 * ```
 */
export class HttpReader extends BufferedReader {
  #received: { bytes: number };

  /**
   * @param source The connection.
   * @param options A callback for each read.
   */
  constructor(source: Reader, options: HttpReaderOptions = {}) {
    const received = { bytes: 0 };
    const { onRead } = options;
    super({
      read: (buffer: Uint8Array) =>
        source.read(buffer).then((count) => {
          if (count !== null) {
            received.bytes += count;
            onRead?.(count);
          }
          return count;
        }),
    });
    this.#received = received;
  }

  /** Bytes handed out so far: read from the connection, minus those still held. */
  get consumed(): number {
    return this.#received.bytes - this.buffered;
  }

  /**
   * Read one line that ends in CRLF, as a string of ISO-8859-1 characters.
   *
   * @param maxLength The longest line accepted, in bytes, CRLF not counted.
   * @returns The line without its CRLF, or `null` if the stream ended before it began.
   * @throws {HttpError} 400 for a line ending in LF alone, or holding a bare CR.
   * @throws {FrameTooLargeError} If the line is longer than `maxLength`.
   * @throws {UnexpectedEofError} If the stream ends in the middle of the line.
   */
  async readCrlfLine(maxLength: number): Promise<string | null> {
    const before = this.consumed;
    const line = await this.readLine({ maxLength });
    if (line === null) return null;
    if (this.consumed - before !== line.length + 2) {
      throw new HttpError(400, "a line ended in LF alone; HTTP lines end in CRLF (RFC 9112 §2.2)");
    }
    if (line.includes(0x0d)) {
      throw new HttpError(400, "a bare CR inside a line (RFC 9112 §2.2)");
    }
    return latin1(line);
  }
}

// ---------------------------------------------------------------------------
// Parsing a request head (pure functions: strings in, a request or an HttpError out)
// ---------------------------------------------------------------------------

/** How the request's body is delimited (RFC 9112 §6.3). */
export type Framing =
  | { kind: "none" }
  | { kind: "length"; length: number }
  | { kind: "chunked" };

/** A request line and header fields, parsed and checked. */
export interface RequestHead {
  /** The method, case-sensitive: `GET`, `HEAD`, `POST`, ... */
  method: string;
  /** The request target as sent: `/about?x=1`, or `http://host/about` (absolute form). */
  target: string;
  /** The path part of the target, without the query: `/about`. */
  path: string;
  /** The query, without its `?` (empty if none). */
  query: string;
  /** `HTTP/1.1` or `HTTP/1.0` (a later HTTP/1.x is answered as 1.1). */
  version: "HTTP/1.0" | "HTTP/1.1";
  /** The header fields in the order received, names as sent. */
  fields: [string, string][];
  /** The same fields by lowercase name, each name's values in order. */
  headers: Map<string, string[]>;
  /** How the body is delimited. */
  framing: Framing;
  /** Whether the client wants the connection kept open after the response (RFC 9112 §9.3). */
  keepAlive: boolean;
  /** Whether the client waits for `100 Continue` before sending its body (RFC 9110 §10.1.1). */
  expectContinue: boolean;
}

/** A whole request: its head and its body. */
export interface HttpRequest extends RequestHead {
  /** The body, de-chunked; empty if there was none. */
  body: Uint8Array;
}

/**
 * Parse a request line: `method SP request-target SP HTTP-version` (RFC 9112
 * §3), exactly one space between the three parts.
 *
 * @param line The request line, without CRLF.
 * @returns Its parts; `version` is normalized to `HTTP/1.0` or `HTTP/1.1`.
 * @throws {HttpError} 400 if malformed; 505 for an HTTP version other than 1.x.
 *
 * @example
 * ```ts
 * import { parseRequestLine } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseRequestLine("GET /about HTTP/1.1"), {
 *   method: "GET",
 *   target: "/about",
 *   version: "HTTP/1.1",
 * });
 * assert.throws(() => parseRequestLine("GET  /about HTTP/1.1"), { status: 400 });
 * assert.throws(() => parseRequestLine("GET / HTTP/2.0"), { status: 505 });
 * ```
 */
export function parseRequestLine(
  line: string,
): { method: string; target: string; version: "HTTP/1.0" | "HTTP/1.1" } {
  const parts = line.split(" ");
  if (parts.length !== 3) {
    throw new HttpError(400, "the request line is not `method SP target SP version` (RFC 9112 §3)");
  }
  const [method, target, version] = parts;
  if (!TOKEN.test(method)) throw new HttpError(400, "the method is not a token (RFC 9110 §9.1)");
  if (!TARGET.test(target)) {
    throw new HttpError(400, "the request target holds a byte it may not (RFC 9112 §3.2)");
  }
  if (version === "HTTP/1.1" || version === "HTTP/1.0") return { method, target, version };
  const match = /^HTTP\/(\d)\.(\d)$/.exec(version);
  if (!match) throw new HttpError(400, "the version is not HTTP/x.y (RFC 9112 §2.3)");
  if (match[1] !== "1") {
    throw new HttpError(505, `${version} is not spoken here; only HTTP/1.x (RFC 9110 §15.6.6)`);
  }
  return { method, target, version: match[2] === "0" ? "HTTP/1.0" : "HTTP/1.1" };
}

/**
 * Parse one header field line: `field-name ":" OWS field-value OWS` (RFC
 * 9112 §5). Refused with 400, as RFC 9112 says a server MUST or may: a line
 * that starts with whitespace (obs-fold, §5.2), whitespace between the name
 * and the colon (§5.1), a name that is not a token, a value with a control byte.
 *
 * @param line The field line, without CRLF.
 * @returns The name as sent, and the value without surrounding spaces and tabs.
 * @throws {HttpError} 400 if malformed.
 *
 * @example
 * ```ts
 * import { parseFieldLine } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseFieldLine("Content-Type:  text/plain "), ["Content-Type", "text/plain"]);
 * assert.throws(() => parseFieldLine("Content-Length : 5"), { status: 400 });
 * assert.throws(() => parseFieldLine(" folded continuation"), { status: 400 });
 * ```
 */
export function parseFieldLine(line: string): [string, string] {
  if (line[0] === " " || line[0] === "\t") {
    throw new HttpError(400, "a field line starts with whitespace: obs-fold (RFC 9112 §5.2)");
  }
  const colon = line.indexOf(":");
  if (colon === -1) throw new HttpError(400, "a field line has no colon (RFC 9112 §5)");
  const name = line.slice(0, colon);
  if (!TOKEN.test(name)) {
    throw new HttpError(
      400,
      /[ \t]$/.test(name)
        ? "whitespace between a field name and its colon (RFC 9112 §5.1)"
        : "a field name is not a token (RFC 9110 §5.1)",
    );
  }
  const value = line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "");
  if (!FIELD_VALUE.test(value)) {
    throw new HttpError(400, `the value of ${name} holds a control byte (RFC 9110 §5.5)`);
  }
  return [name, value];
}

// A comma-separated list (RFC 9110 §5.6.1): elements trimmed, empty ones dropped.
function listElements(values: string[]): string[] {
  return values.flatMap((value) => value.split(",")).map((item) => item.trim())
    .filter((item) => item !== "");
}

/**
 * Decide how a request's body is delimited, from its `Transfer-Encoding` and
 * `Content-Length` (RFC 9112 §6.1, §6.3). This is where request smuggling is
 * stopped: wherever two readers could disagree about where the body ends, the
 * request is refused.
 *
 * @param version The request's HTTP version.
 * @param headers The fields by lowercase name.
 * @returns The framing.
 * @throws {HttpError} 400 for both fields at once, differing lengths, a length
 *   that is not digits, `chunked` not last or twice, Transfer-Encoding in
 *   HTTP/1.0; 501 for a transfer coding other than chunked.
 *
 * @example
 * ```ts
 * import { bodyFraming } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * const headers = (fields: Record<string, string[]>) => new Map(Object.entries(fields));
 * assert.deepEqual(bodyFraming("HTTP/1.1", headers({ "content-length": ["5", "5"] })), {
 *   kind: "length",
 *   length: 5,
 * });
 * assert.throws(
 *   () => bodyFraming("HTTP/1.1", headers({
 *     "content-length": ["5"],
 *     "transfer-encoding": ["chunked"],
 *   })),
 *   { status: 400 },
 * );
 * ```
 */
export function bodyFraming(version: string, headers: Map<string, string[]>): Framing {
  const transferEncoding = headers.get("transfer-encoding");
  const contentLength = headers.get("content-length");
  if (transferEncoding) {
    // A front end that goes by one field and a back end that goes by the
    // other split the stream in different places: the classic CL.TE / TE.CL
    // smuggling. RFC 9112 §6.1 lets a server refuse such a request; we do.
    if (contentLength) {
      throw new HttpError(400, "both Content-Length and Transfer-Encoding (RFC 9112 §6.1)");
    }
    if (version === "HTTP/1.0") {
      throw new HttpError(400, "Transfer-Encoding in an HTTP/1.0 request (RFC 9112 §6.1)");
    }
    const codings = listElements(transferEncoding).map((coding) => coding.toLowerCase());
    // Only a final `chunked` says where the body ends (§6.3, point 4).
    if (codings.at(-1) !== "chunked") {
      throw new HttpError(400, "chunked is not the final transfer coding (RFC 9112 §6.3)");
    }
    if (codings.indexOf("chunked") !== codings.length - 1) {
      throw new HttpError(400, "chunked is applied more than once (RFC 9112 §6.1)");
    }
    if (codings.length > 1) {
      throw new HttpError(501, `transfer coding ${codings[0]} is not implemented (RFC 9112 §6.1)`);
    }
    return { kind: "chunked" };
  }
  if (contentLength) {
    // Content-Length = 1*DIGIT: no sign, no spaces inside, no hex. The same
    // value repeated ("5, 5" or two fields) is one length; different values
    // are two opinions about where the body ends (RFC 9110 §8.6, RFC 9112 §6.3).
    const values = contentLength.flatMap((value) => value.split(",")).map((v) => v.trim());
    if (!values.every((value) => /^\d+$/.test(value))) {
      throw new HttpError(400, "Content-Length is not a decimal number (RFC 9110 §8.6)");
    }
    const distinct = new Set(values.map((value) => value.replace(/^0+(?=\d)/, "")));
    if (distinct.size > 1) {
      throw new HttpError(400, "Content-Length values differ (RFC 9112 §6.3)");
    }
    const [length] = distinct;
    // 16 digits or more is beyond any limit here (and beyond exact numbers).
    return { kind: "length", length: length.length > 15 ? Infinity : Number(length) };
  }
  return { kind: "none" };
}

/**
 * Parse and check a request head: its request line, then its field lines.
 * Besides the syntax, it enforces what RFC 9112 makes a server check: exactly
 * one valid `Host` in HTTP/1.1 (§3.2), an unambiguous body length (§6.3), and
 * it works out persistence (§9.3) and `Expect` (RFC 9110 §10.1.1).
 *
 * @param lines The request line, then each field line, without CRLFs.
 * @returns The head.
 * @throws {HttpError} With the status that says what is wrong.
 *
 * @example
 * ```ts
 * import { parseRequestHead } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * const head = parseRequestHead(["GET /about?x=1 HTTP/1.1", "Host: example.com"]);
 * assert.equal(head.path, "/about");
 * assert.equal(head.query, "x=1");
 * assert.equal(head.keepAlive, true);
 * assert.throws(() => parseRequestHead(["GET / HTTP/1.1"]), { status: 400 }); // no Host
 * ```
 */
export function parseRequestHead(lines: string[]): RequestHead {
  const { method, target, version } = parseRequestLine(lines[0] ?? "");
  const fields = lines.slice(1).map(parseFieldLine);
  const headers = new Map<string, string[]>();
  for (const [name, value] of fields) {
    const key = name.toLowerCase();
    const values = headers.get(key);
    if (values) values.push(value);
    else headers.set(key, [value]);
  }

  // Host: exactly one in HTTP/1.1, and a valid one (RFC 9112 §3.2).
  const hosts = headers.get("host") ?? [];
  if (version === "HTTP/1.1" && hosts.length === 0) {
    throw new HttpError(400, "an HTTP/1.1 request without Host (RFC 9112 §3.2)");
  }
  if (hosts.length > 1) throw new HttpError(400, "more than one Host (RFC 9112 §3.2)");
  if (hosts.length === 1 && !HOST.test(hosts[0])) {
    throw new HttpError(400, "the Host value is not host[:port] (RFC 9112 §3.2)");
  }

  // The target's forms (RFC 9112 §3.2): origin-form `/path?query` almost
  // always; absolute-form `http://host/path` must be accepted too; `*` only
  // with OPTIONS; authority-form `host:port` only with CONNECT.
  let pathAndQuery = target;
  if (target[0] !== "/") {
    if (/^https?:\/\//i.test(target)) {
      try {
        const url = new URL(target);
        pathAndQuery = url.pathname + url.search;
      } catch {
        throw new HttpError(400, "the absolute-form target is not a URL (RFC 9112 §3.2.2)");
      }
    } else if (!(target === "*" && method === "OPTIONS") && method !== "CONNECT") {
      throw new HttpError(400, "the request target is not a path (RFC 9112 §3.2)");
    }
  }
  const question = pathAndQuery.indexOf("?");
  const path = question === -1 ? pathAndQuery : pathAndQuery.slice(0, question);
  const query = question === -1 ? "" : pathAndQuery.slice(question + 1);

  const framing = bodyFraming(version, headers);

  // Persistence (RFC 9112 §9.3): HTTP/1.1 keeps the connection unless either
  // side says `Connection: close`; HTTP/1.0 closes unless it says keep-alive.
  const connectionField = headers.get("connection");
  const connection = connectionField
    ? listElements(connectionField).map((t) => t.toLowerCase())
    : [];
  const keepAlive = !connection.includes("close") &&
    (version === "HTTP/1.1" || connection.includes("keep-alive"));

  // Expect (RFC 9110 §10.1.1): 100-continue is the only expectation there is;
  // an HTTP/1.0 client cannot have meant it, so it is ignored there.
  let expectContinue = false;
  const expect = headers.get("expect");
  if (expect && version === "HTTP/1.1") {
    if (expect.length !== 1 || expect[0].toLowerCase() !== "100-continue") {
      throw new HttpError(417, "the only expectation is 100-continue (RFC 9110 §10.1.1)");
    }
    expectContinue = true;
  }

  return {
    method,
    target,
    path,
    query,
    version,
    fields,
    headers,
    framing,
    keepAlive,
    expectContinue,
  };
}

// ---------------------------------------------------------------------------
// Reading a request from the connection, within limits
// ---------------------------------------------------------------------------

// A client may send an empty line or two before a request (after a POST body,
// say): RFC 9112 §2.2 says to ignore at least one.
const MAX_LEADING_EMPTY_LINES = 2;
// A chunk-size line with its extensions: nobody needs more.
const MAX_CHUNK_LINE = 4096;
// What all the chunk-size lines of one body may carry besides their sizes:
// extensions, and zeros padding a size. Those bytes are no part of the body,
// so maxBodySize does not count them; without a cap of their own, a client
// could send gigabytes of them around one byte of data (Node's CVE-2024-22019).
// 16 KiB is Node's cap for extensions.
const MAX_CHUNK_EXTRAS = 16384;

/**
 * Read a request head: the request line (at most `maxRequestLine` bytes, or
 * 414), then field lines up to the empty line (at most `maxHeaderFields` of
 * them and `maxHeaderBytes` in all, or 431), then parse it.
 *
 * @param reader The connection's reader.
 * @param limits The size limits.
 * @returns The head, or `null` if the client closed the connection before a
 *   request began (the normal end of a persistent connection).
 * @throws {HttpError} With the status that says what is wrong.
 * @throws {UnexpectedEofError} If the client closed in the middle of the head.
 */
export async function readRequestHead(
  reader: HttpReader,
  limits: RequestLimits = DEFAULT_LIMITS,
): Promise<RequestHead | null> {
  let requestLine: string | null;
  let empty = 0;
  do {
    try {
      requestLine = await reader.readCrlfLine(limits.maxRequestLine);
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error;
      throw new HttpError(414, `a request line over ${limits.maxRequestLine} bytes`);
    }
    if (requestLine === null) return null;
  } while (requestLine === "" && ++empty <= MAX_LEADING_EMPTY_LINES);

  const lines = [requestLine];
  let headerBytes = 0;
  while (true) {
    let line: string | null;
    try {
      line = await reader.readCrlfLine(limits.maxHeaderBytes - headerBytes);
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error;
      throw new HttpError(431, `header fields over ${limits.maxHeaderBytes} bytes`);
    }
    if (line === null) {
      throw new UnexpectedEofError(1, EMPTY, "the client closed in the middle of a request head");
    }
    if (line === "") break;
    if (lines.length > limits.maxHeaderFields) {
      throw new HttpError(431, `more than ${limits.maxHeaderFields} header fields`);
    }
    headerBytes += line.length + 2;
    lines.push(line);
  }
  return parseRequestHead(lines);
}

/**
 * Refuse a body that is known to be too large before reading any of it (or,
 * with `Expect: 100-continue`, before the client sends it).
 *
 * @param head The request head.
 * @param limits The size limits.
 * @throws {HttpError} 413 if its Content-Length is over `maxBodySize`.
 */
export function checkBodySize(head: RequestHead, limits: RequestLimits = DEFAULT_LIMITS): void {
  if (head.framing.kind === "length" && head.framing.length > limits.maxBodySize) {
    throw new HttpError(
      413,
      `a body of ${head.framing.length} bytes; the limit is ${limits.maxBodySize}`,
    );
  }
}

/**
 * Read a request's body, as its head frames it: nothing, exactly
 * `Content-Length` bytes, or chunks.
 *
 * @param reader The connection's reader, just past the head.
 * @param head The request head.
 * @param limits The size limits.
 * @returns The body (de-chunked).
 * @throws {HttpError} 413 over `maxBodySize`; 400 for broken chunked coding.
 * @throws {UnexpectedEofError} If the client closed in the middle of the body.
 */
export async function readBody(
  reader: HttpReader,
  head: RequestHead,
  limits: RequestLimits = DEFAULT_LIMITS,
): Promise<Uint8Array> {
  checkBodySize(head, limits);
  if (head.framing.kind === "length") return await reader.readExactly(head.framing.length);
  if (head.framing.kind === "chunked") return await readChunkedBody(reader, limits);
  return EMPTY;
}

// chunk-size [ chunk-ext ] (RFC 9112 §7.1, §7.1.1):
//   chunk-size = 1*HEXDIG
//   chunk-ext  = *( BWS ";" BWS ext-name [ BWS "=" BWS ( token / quoted-string ) ] )
// Nothing else: no "0x", no sign, no spaces after the size unless a ";" follows.
const CHUNK_LINE = new RegExp(
  "^([0-9A-Fa-f]+)(?:[ \\t]*;[ \\t]*[!#$%&'*+\\-.^_`|~0-9A-Za-z]+" +
    "(?:[ \\t]*=[ \\t]*(?:[!#$%&'*+\\-.^_`|~0-9A-Za-z]+|" +
    '"(?:[\\t \\x21\\x23-\\x5b\\x5d-\\x7e\\x80-\\xff]|\\\\[\\t \\x21-\\x7e\\x80-\\xff])*"))?)*$',
);

/**
 * Read a body in chunked coding (RFC 9112 §7.1): `size-in-hex CRLF data CRLF`,
 * again and again, until a chunk of size 0; then trailer fields and an empty
 * line. Chunk extensions are checked and ignored (16 KiB of them per body at
 * most); trailer fields are checked and dropped (§7.1.2 allows that).
 *
 * @param reader The connection's (or a response's) reader.
 * @param limits `maxBodySize` caps the sum of the chunks (413); the header
 *   limits cap the trailers (431).
 * @returns The chunks' data, joined.
 * @throws {HttpError} 400 for anything malformed, 413 or 431 past a limit.
 * @throws {UnexpectedEofError} If the stream ends first.
 *
 * @example A body sent in two chunks
 * ```ts
 * import { HttpReader, readChunkedBody } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * const wire = new TextEncoder().encode("5\r\nhello\r\n7;ext=1\r\n, world\r\n0\r\n\r\n");
 * const stream = ReadableStream.from([wire]).getReader();
 * const reader = new HttpReader({
 *   async read(buffer: Uint8Array) {
 *     const { value, done } = await stream.read();
 *     if (done) return null;
 *     buffer.set(value);
 *     return value.length;
 *   },
 * });
 * const body = await readChunkedBody(reader);
 * assert.equal(new TextDecoder().decode(body), "hello, world");
 * ```
 */
export async function readChunkedBody(
  reader: HttpReader,
  limits: RequestLimits = DEFAULT_LIMITS,
): Promise<Uint8Array> {
  // The data goes into one buffer, grown by doubling up to maxBodySize. Kept
  // as a list of chunks instead, a body of 1-byte chunks would cost a hundred
  // bytes of memory and more per byte of data: each chunk an object of its own.
  let body = EMPTY;
  let total = 0;
  let extras = 0;
  const end = new Uint8Array(2);
  while (true) {
    let line: string | null;
    try {
      line = await reader.readCrlfLine(MAX_CHUNK_LINE);
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error;
      throw new HttpError(400, `a chunk-size line over ${MAX_CHUNK_LINE} bytes`);
    }
    if (line === null) {
      throw new UnexpectedEofError(1, EMPTY, "the body ended before its last chunk");
    }
    const match = CHUNK_LINE.exec(line);
    if (!match) throw new HttpError(400, "a malformed chunk-size line (RFC 9112 §7.1)");
    const digits = match[1].replace(/^0+/, "");
    // Well-formed, but past a limit of ours, as an oversized body is: 413
    // (RFC 9110 §15.5.14), as Node answers. (400 would say the syntax is wrong.)
    extras += line.length - digits.length;
    if (extras > MAX_CHUNK_EXTRAS) {
      throw new HttpError(413, `chunk extensions over ${MAX_CHUNK_EXTRAS} bytes in one body`);
    }
    // Eight hex digits is 4 GiB already: anything longer is over the limit.
    const size = digits.length > 8 ? Infinity : parseInt(digits || "0", 16);
    if (total + size > limits.maxBodySize) {
      throw new HttpError(413, `a chunked body over the limit of ${limits.maxBodySize} bytes`);
    }
    if (size === 0) break;
    if (total + size > body.length) {
      const grown = new Uint8Array(
        Math.min(limits.maxBodySize, Math.max(total + size, 2 * body.length, 1024)),
      );
      grown.set(body.subarray(0, total));
      body = grown;
    }
    await readInto(reader, body.subarray(total, total + size));
    total += size;
    await readInto(reader, end);
    if (end[0] !== 0x0d || end[1] !== 0x0a) {
      throw new HttpError(400, "chunk data is not followed by CRLF (RFC 9112 §7.1)");
    }
  }
  // The trailer section: field lines, then an empty line.
  let trailerBytes = 0;
  for (let count = 0;; count++) {
    let line: string | null;
    try {
      line = await reader.readCrlfLine(limits.maxHeaderBytes - trailerBytes);
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error;
      throw new HttpError(431, `trailer fields over ${limits.maxHeaderBytes} bytes`);
    }
    if (line === null) throw new UnexpectedEofError(1, EMPTY, "the body ended in its trailers");
    if (line === "") break;
    if (count >= limits.maxHeaderFields) {
      throw new HttpError(431, `more than ${limits.maxHeaderFields} trailer fields`);
    }
    parseFieldLine(line);
    trailerBytes += line.length + 2;
  }
  return body.subarray(0, total);
}

// Fill `buffer` from the reader, or throw if the stream ends first.
async function readInto(reader: HttpReader, buffer: Uint8Array): Promise<void> {
  for (let filled = 0; filled < buffer.length;) {
    const count = await reader.read(buffer.subarray(filled));
    if (count === null) {
      throw new UnexpectedEofError(buffer.length, buffer.slice(0, filled));
    }
    filled += count;
  }
}

function joinChunks(chunks: Uint8Array[], total: number): Uint8Array {
  if (chunks.length === 1) return chunks[0];
  const joined = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    joined.set(chunk, offset);
    offset += chunk.length;
  }
  return joined;
}

/** Options for {@linkcode readRequest}. */
export interface ReadRequestOptions {
  /** Called after the head of a request that has a body, before the body is read: where `100 Continue` is sent. */
  beforeBody?: (head: RequestHead) => Promise<void> | void;
}

/**
 * Read one whole request: its head, then its body.
 *
 * @param reader The connection's reader.
 * @param limits The size limits.
 * @param options A hook between head and body.
 * @returns The request, or `null` if the client closed before one began.
 * @throws {HttpError} With the status that says what is wrong.
 * @throws {UnexpectedEofError} If the client closed in the middle of it.
 *
 * @example Two requests on one connection, the second with a body
 * ```ts
 * import { HttpReader, readRequest } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * const wire = new TextEncoder().encode(
 *   "GET / HTTP/1.1\r\nHost: a\r\n\r\n" +
 *     "POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi",
 * );
 * const stream = ReadableStream.from([wire]).getReader();
 * const reader = new HttpReader({
 *   async read(buffer: Uint8Array) {
 *     const { value, done } = await stream.read();
 *     if (done) return null;
 *     buffer.set(value);
 *     return value.length;
 *   },
 * });
 * assert.equal((await readRequest(reader))?.path, "/");
 * const post = await readRequest(reader);
 * assert.equal(new TextDecoder().decode(post?.body), "hi");
 * assert.equal(await readRequest(reader), null);
 * ```
 */
export async function readRequest(
  reader: HttpReader,
  limits: RequestLimits = DEFAULT_LIMITS,
  options: ReadRequestOptions = {},
): Promise<HttpRequest | null> {
  const head = await readRequestHead(reader, limits);
  if (head === null) return null;
  // The head becomes the request: one object, not a copy per request.
  const request = head as HttpRequest;
  request.body = EMPTY;
  if (head.framing.kind === "none") return request;
  checkBodySize(head, limits);
  await options.beforeBody?.(head);
  request.body = await readBody(reader, head, limits);
  return request;
}

// ---------------------------------------------------------------------------
// Responses, as bytes
// ---------------------------------------------------------------------------

/** Reason phrases (RFC 9110 §15). The phrase is for people; clients go by the number. */
export const STATUS_TEXT: Readonly<Record<number, string>> = {
  100: "Continue",
  101: "Switching Protocols",
  200: "OK",
  201: "Created",
  202: "Accepted",
  203: "Non-Authoritative Information",
  204: "No Content",
  205: "Reset Content",
  206: "Partial Content",
  300: "Multiple Choices",
  301: "Moved Permanently",
  302: "Found",
  303: "See Other",
  304: "Not Modified",
  307: "Temporary Redirect",
  308: "Permanent Redirect",
  400: "Bad Request",
  401: "Unauthorized",
  402: "Payment Required",
  403: "Forbidden",
  404: "Not Found",
  405: "Method Not Allowed",
  406: "Not Acceptable",
  407: "Proxy Authentication Required",
  408: "Request Timeout",
  409: "Conflict",
  410: "Gone",
  411: "Length Required",
  412: "Precondition Failed",
  413: "Content Too Large",
  414: "URI Too Long",
  415: "Unsupported Media Type",
  416: "Range Not Satisfiable",
  417: "Expectation Failed",
  418: "I'm a teapot",
  421: "Misdirected Request",
  422: "Unprocessable Content",
  426: "Upgrade Required",
  429: "Too Many Requests",
  431: "Request Header Fields Too Large",
  500: "Internal Server Error",
  501: "Not Implemented",
  502: "Bad Gateway",
  503: "Service Unavailable",
  504: "Gateway Timeout",
  505: "HTTP Version Not Supported",
};

/** What a route answers. {@linkcode writeResponse} adds the framing and connection fields. */
export interface HttpResponse {
  /** The status code. */
  status: number;
  /**
   * Fields such as Content-Type, Location, Allow. Not Date, Content-Length,
   * Transfer-Encoding or Connection: the writer sets those, so they are always right.
   */
  headers?: [string, string][];
  /** The body, whole. */
  body?: Uint8Array | string;
  /** Or: a body sent piece by piece, in chunked coding (RFC 9112 §7.1). */
  chunks?: AsyncIterable<Uint8Array>;
}

/** How a response is sent: what the request allows. */
export interface ResponseOptions {
  /** The request's method: a response to HEAD has the same fields and no body. @default {"GET"} */
  method?: string;
  /** The request's version: an HTTP/1.0 client gets no chunked coding. @default {"HTTP/1.1"} */
  version?: string;
  /** Whether the connection stays open after this response. @default {true} */
  keepAlive?: boolean;
  /**
   * Where to build the message, if it fits: the result is then a view of this
   * buffer, valid until it is reused. A server reuses one per connection (its
   * previous response is written by then) and saves an allocation per
   * response. @default {undefined} (a new buffer each time)
   */
  buffer?: Uint8Array;
}

// The Date field (RFC 9110 §6.6.1) in IMF-fixdate form, "Sun, 06 Nov 1994
// 08:49:37 GMT", which is what toUTCString() writes. It changes once a
// second, so it is formatted once a second, not once a response.
let dateSecond = -1;
let dateText = "";
/** The current time as an HTTP date (RFC 9110 §5.6.7). */
export function httpDate(now = Date.now()): string {
  const second = Math.floor(now / 1000);
  if (second !== dateSecond) {
    dateSecond = second;
    dateText = new Date(second * 1000).toUTCString();
  }
  return dateText;
}

/**
 * A response's head as text: the status line, one line per field, an empty
 * line (RFC 9112 §4, §5). A field name or value that could break the framing
 * (a CR or LF in it: response splitting) is a bug here, so it throws.
 *
 * @param status The status code.
 * @param fields The fields, in order.
 * @returns The head, ending in CRLF CRLF.
 * @throws {TypeError} For a name that is not a token or a value with a control byte.
 *
 * @example
 * ```ts
 * import { responseHead } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(
 *   responseHead(404, [["Content-Length", "0"]]),
 *   "HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n",
 * );
 * ```
 */
export function responseHead(status: number, fields: [string, string][]): string {
  let head = `HTTP/1.1 ${status} ${STATUS_TEXT[status] ?? ""}\r\n`;
  for (const [name, value] of fields) {
    if (!TOKEN.test(name) || !FIELD_VALUE.test(value)) {
      throw new TypeError(`refusing to send the field ${JSON.stringify(`${name}: ${value}`)}`);
    }
    head += `${name}: ${value}\r\n`;
  }
  return head + "\r\n";
}

const NON_ASCII = /[\u0080-\uffff]/;

// Which responses have no body at all (RFC 9110 §6.4.1): 1xx, 204 and 304.
function bodyAllowed(status: number): boolean {
  return status >= 200 && status !== 204 && status !== 304;
}

/**
 * A whole response with a fixed body, as the bytes that go on the wire:
 * status line, fields, CRLF, body. The fields it adds are always right:
 * `Date`; `Content-Length` (except where a body is not allowed: RFC 9110
 * §8.6); `Connection: keep-alive` or `close`. A response to HEAD has the
 * same fields, Content-Length included, and no body (RFC 9110 §9.3.2).
 *
 * @param response The status, fields and body (not `chunks`).
 * @param options The request's method, and whether the connection stays open.
 * @returns The message.
 *
 * @example
 * ```ts
 * import { serializeResponse } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = serializeResponse({ status: 200, body: "hi\n" }, { keepAlive: false });
 * const text = new TextDecoder().decode(bytes);
 * assert.match(text, /^HTTP\/1\.1 200 OK\r\nDate: .+ GMT\r\n/);
 * assert.ok(text.endsWith("Content-Length: 3\r\nConnection: close\r\n\r\nhi\n"));
 * ```
 */
export function serializeResponse(
  response: HttpResponse,
  options: ResponseOptions = {},
): Uint8Array {
  const { method = "GET", keepAlive = true, buffer } = options;
  const { status, headers = [] } = response;
  const body = typeof response.body === "string"
    ? encoder.encode(response.body)
    : response.body ?? EMPTY;
  const fields: [string, string][] = [["Date", httpDate()], ...headers];
  if (bodyAllowed(status)) fields.push(["Content-Length", String(body.length)]);
  fields.push(["Connection", keepAlive ? "keep-alive" : "close"]);
  const head = responseHead(status, fields);
  const bodyLength = method === "HEAD" || !bodyAllowed(status) ? 0 : body.length;
  // Head and body in one buffer, so that they usually leave in one write().
  const size = head.length + bodyLength;
  const message = buffer && buffer.length >= size ? buffer.subarray(0, size) : new Uint8Array(size);
  // The head is ISO-8859-1, one byte per character, as it was read: a field
  // value with bytes >= 0x80 goes back out as the same bytes (TextEncoder
  // would turn each into two bytes of UTF-8).
  // (Pure ASCII, the usual case, goes through encodeInto(), which is quicker.)
  if (NON_ASCII.test(head)) {
    for (let i = 0; i < head.length; i++) {
      message[i] = head.charCodeAt(i);
    }
  } else encoder.encodeInto(head, message);
  if (bodyLength > 0) message.set(body, head.length);
  return message;
}

/**
 * One chunk of chunked coding: its size in hex, CRLF, the data, CRLF (RFC
 * 9112 §7.1).
 *
 * @param data The chunk's data; must not be empty (a size of 0 ends the body).
 * @returns The chunk's bytes.
 *
 * @example
 * ```ts
 * import { encodeChunk } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * const chunk = encodeChunk(new TextEncoder().encode("hello, world"));
 * assert.equal(new TextDecoder().decode(chunk), "c\r\nhello, world\r\n");
 * ```
 */
export function encodeChunk(data: Uint8Array): Uint8Array {
  const size = encoder.encode(`${data.length.toString(16)}\r\n`);
  const chunk = new Uint8Array(size.length + data.length + 2);
  chunk.set(size);
  chunk.set(data, size.length);
  chunk.set([0x0d, 0x0a], size.length + data.length);
  return chunk;
}

const LAST_CHUNK = encoder.encode("0\r\n\r\n");

/**
 * Write a response with {@linkcode writeAll}. A fixed body goes as one message
 * ({@linkcode serializeResponse}); `chunks` go in chunked coding, one write
 * per chunk as it is produced, then the last chunk `0 CRLF CRLF`. An HTTP/1.0
 * client does not know chunked coding (RFC 9112 §7.1), so it gets the chunks
 * joined, with a Content-Length.
 *
 * @param writer The connection.
 * @param response What to send.
 * @param options The request's method and version; whether to keep the connection.
 * @returns How many bytes were sent, head included, once all were handed to the connection.
 */
export async function writeResponse(
  writer: Writer,
  response: HttpResponse,
  options: ResponseOptions = {},
): Promise<number> {
  const { chunks } = response;
  if (!chunks) {
    const message = serializeResponse(response, options);
    await writeAll(writer, message);
    return message.length;
  }
  const { method = "GET", version = "HTTP/1.1", keepAlive = true } = options;
  if (version === "HTTP/1.0") {
    const parts: Uint8Array[] = [];
    for await (const part of chunks) parts.push(part);
    const body = joinChunks(parts, parts.reduce((sum, part) => sum + part.length, 0));
    const message = serializeResponse({ ...response, chunks: undefined, body }, options);
    await writeAll(writer, message);
    return message.length;
  }
  const fields: [string, string][] = [
    ["Date", httpDate()],
    ...response.headers ?? [],
    ["Transfer-Encoding", "chunked"],
    ["Connection", keepAlive ? "keep-alive" : "close"],
  ];
  const head = Uint8Array.from(responseHead(response.status, fields), (c) => c.charCodeAt(0));
  await writeAll(writer, head);
  if (method === "HEAD") return head.length;
  let sent = head.length;
  for await (const part of chunks) {
    if (part.length === 0) continue;
    const chunk = encodeChunk(part);
    await writeAll(writer, chunk);
    sent += chunk.length;
  }
  await writeAll(writer, LAST_CHUNK);
  return sent + LAST_CHUNK.length;
}

// ---------------------------------------------------------------------------
// The pages
// ---------------------------------------------------------------------------

/**
 * Escape text for HTML, so that a path such as `/<script>alert(1)</script>`
 * shows as text instead of running (the tutorials' 404 page puts the path in
 * raw: a reflected XSS).
 *
 * @param text Any text.
 * @returns The text with `& < > " '` as character references.
 *
 * @example
 * ```ts
 * import { escapeHtml } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(escapeHtml(`<a href="x">'&'</a>`), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
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

const HTML = "text/html; charset=utf-8";
const TEXT = "text/plain; charset=utf-8";
const GET_HEAD = ["GET", "HEAD"];

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>${escapeHtml(title)}</title></head>
<body>
<h1>${escapeHtml(title)}</h1>
${body}
</body>
</html>
`;
}

// Pages that never change are encoded once.
const HOME = encoder.encode(page(
  "wirebook: a web server from sockets",
  `<p>This page came over a TCP socket, parsed and answered by hand.</p>
<ul>
<li><a href="/time">/time</a>: the server's clock</li>
<li><a href="/about">/about</a>: what this is</li>
<li><a href="/echo">/echo</a>: POST or PUT a body, get it back</li>
<li><a href="/redirect">/redirect</a>: a 302 to /about</li>
<li><a href="/chunked">/chunked</a>: a response in chunks</li>
<li><a href="/status/418">/status/418</a>: any status you like</li>
<li><a href="/nowhere">/nowhere</a>: the 404 page</li>
</ul>`,
));
const ABOUT = encoder.encode(page(
  "About",
  `<p>scripts/http_raw_server.ts from wirebook: HTTP/1.1 (RFC 9112, RFC 9110) on
<code>Deno.listen()</code>, with no HTTP library.</p>`,
));

/** A plain-text error page, for statuses this server answers by itself. */
export function errorResponse(status: number, message: string): HttpResponse {
  return {
    status,
    headers: [["Content-Type", TEXT], ["X-Content-Type-Options", "nosniff"]],
    body: `${status} ${STATUS_TEXT[status] ?? ""}: ${message}\n`,
  };
}

// The methods of RFC 9110 §9.3 and PATCH (RFC 5789): a request with one of
// these gets 405 where the page does not take it; any other method, 501.
const RECOGNIZED_METHODS = new Set([
  "GET",
  "HEAD",
  "POST",
  "PUT",
  "DELETE",
  "CONNECT",
  "OPTIONS",
  "TRACE",
  "PATCH",
]);

function methodNotAllowed(allowed: string[]): HttpResponse {
  // 405 must say what is allowed (RFC 9110 §15.5.6, §10.2.1).
  const response = errorResponse(405, `use ${allowed.join(" or ")}`);
  response.headers!.push(["Allow", allowList(allowed)]);
  return response;
}

async function* slowChunks(delay: number): AsyncGenerator<Uint8Array> {
  const words = ["This ", "response ", "came ", "in ", "chunks.\n"];
  for (const [i, word] of words.entries()) {
    if (i > 0 && delay > 0) await new Promise((resolve) => setTimeout(resolve, delay));
    yield encoder.encode(word);
  }
}

/** The routes: path, the methods it allows, and what it answers. */
const ROUTES: Record<
  string,
  { methods: string[]; answer: (request: HttpRequest) => HttpResponse }
> = {
  "/": {
    methods: GET_HEAD,
    answer: () => ({ status: 200, headers: [["Content-Type", HTML]], body: HOME }),
  },
  "/about": {
    methods: GET_HEAD,
    answer: () => ({ status: 200, headers: [["Content-Type", HTML]], body: ABOUT }),
  },
  "/time": {
    methods: GET_HEAD,
    answer: () => ({
      status: 200,
      headers: [["Content-Type", TEXT], ["Cache-Control", "no-store"]],
      body: `${new Date().toISOString()}\n`,
    }),
  },
  "/echo": {
    methods: ["GET", "HEAD", "POST", "PUT"],
    answer: (request) => {
      if (request.method === "GET" || request.method === "HEAD") {
        return {
          status: 200,
          headers: [["Content-Type", TEXT]],
          body: "POST or PUT a body here; it comes back as sent.\n",
        };
      }
      // The body comes back with the client's own Content-Type. A browser
      // would render an echoed text/html page, scripts and all, as ours:
      // the sandbox policy and nosniff take that power away.
      const type = request.headers.get("content-type")?.[0] ?? "application/octet-stream";
      return {
        status: 200,
        headers: [
          ["Content-Type", type],
          ["Content-Security-Policy", "sandbox"],
          ["X-Content-Type-Options", "nosniff"],
        ],
        body: request.body,
      };
    },
  },
  "/redirect": {
    methods: GET_HEAD,
    answer: () => ({
      status: 302,
      headers: [["Location", "/about"], ["Content-Type", HTML]],
      body: page("Found", `<p>This page is at <a href="/about">/about</a>.</p>`),
    }),
  },
  "/chunked": {
    methods: GET_HEAD,
    answer: (request) => {
      const delay = Math.min(
        1000,
        Math.max(0, Number(new URLSearchParams(request.query).get("delay")) || 0),
      );
      return { status: 200, headers: [["Content-Type", TEXT]], chunks: slowChunks(delay) };
    },
  },
};

/**
 * Answer a request: find its route, check its method, build the response.
 * Unknown paths get a 404 page that shows the path, escaped; unknown methods, 501.
 *
 * @param request The request.
 * @returns The response.
 *
 * @example
 * ```ts
 * import { parseRequestHead, route } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * const request = (line: string) => ({ ...parseRequestHead([line, "Host: a"]), body: new Uint8Array() });
 * assert.equal(route(request("GET /about HTTP/1.1")).status, 200);
 * assert.deepEqual(route(request("DELETE /about HTTP/1.1")).headers?.at(-1), ["Allow", "GET, HEAD, OPTIONS"]);
 * assert.equal(route(request("BREW /about HTTP/1.1")).status, 501);
 * assert.match(String(route(request("GET /<b> HTTP/1.1")).body), /&lt;b&gt;/);
 * ```
 */
export function route(request: HttpRequest): HttpResponse {
  // A method the server does not know at all (methods are case-sensitive:
  // `get` is not GET) gets 501, not 405: 405 says "this page takes other
  // methods", 501 "this server has no such method" (RFC 9110 §9.1, §15.6.2).
  // CONNECT is known, but asks for a tunnel, which only a proxy makes.
  if (!RECOGNIZED_METHODS.has(request.method)) {
    return errorResponse(501, `${request.method} is not a method this server knows`);
  }
  if (request.method === "CONNECT") {
    return errorResponse(501, "this server is not a proxy: no CONNECT tunnels");
  }
  // OPTIONS asks what a target supports, and `OPTIONS *` what the server
  // does as a whole (RFC 9110 §9.3.7): 200, the answer in `Allow`, no body.
  if (request.method === "OPTIONS") {
    const methods = request.path === "*" ? SERVER_METHODS : methodsFor(request.path);
    if (methods) return { status: 200, headers: [["Allow", allowList(methods)]], body: "" };
  }
  const known = ROUTES[request.path];
  if (known) {
    if (!known.methods.includes(request.method)) return methodNotAllowed(known.methods);
    return known.answer(request);
  }
  if (request.path.startsWith("/status/")) {
    if (!GET_HEAD.includes(request.method)) return methodNotAllowed(GET_HEAD);
    return statusPage(request.path.slice("/status/".length));
  }
  // The 404 page names the path the client asked for. Decoding %3C to "<"
  // makes it readable, and makes escaping all the more necessary.
  let shown = request.path;
  try {
    shown = decodeURIComponent(shown);
  } catch { /* not valid percent-encoding: show it as sent */ }
  return {
    status: 404,
    headers: [["Content-Type", HTML]],
    body: page(
      "Not Found",
      `<p>There is no page at <code>${escapeHtml(shown)}</code>.</p>
<p><a href="/">Home</a></p>`,
    ),
  };
}

// The methods a path takes (besides OPTIONS), or undefined if it is no page.
function methodsFor(path: string): string[] | undefined {
  return ROUTES[path]?.methods ?? (path.startsWith("/status/") ? GET_HEAD : undefined);
}

// Every method some page takes: the answer to `OPTIONS *`.
const SERVER_METHODS = [...new Set(Object.values(ROUTES).flatMap((known) => known.methods))];

// An Allow value: a page's methods, and OPTIONS, which every page answers.
function allowList(methods: string[]): string {
  return [...methods, "OPTIONS"].join(", ");
}

// /status/NNN: any final status (200-599). 1xx are not final responses, so 400.
function statusPage(code: string): HttpResponse {
  const status = /^\d{3}$/.test(code) ? Number(code) : NaN;
  if (!(status >= 200 && status <= 599)) {
    return errorResponse(400, "/status/NNN takes a final status code, 200 to 599");
  }
  // 204 and 304 have no body (RFC 9110 §6.4.1), so no Content-Type either. A
  // 205 may have one as far as framing goes, but a server MUST NOT generate
  // content in it (RFC 9110 §15.3.6): it goes out with Content-Length: 0.
  const content = bodyAllowed(status) && status !== 205;
  const headers: [string, string][] = content ? [["Content-Type", TEXT]] : [];
  // Some statuses come with a field they require (RFC 9110 §15).
  if (status === 405) headers.push(["Allow", allowList(GET_HEAD)]);
  if (status === 401) headers.push(["WWW-Authenticate", 'Basic realm="wirebook"']);
  if (status === 407) headers.push(["Proxy-Authenticate", 'Basic realm="wirebook"']);
  if ([301, 302, 303, 307, 308].includes(status)) headers.push(["Location", "/"]);
  const body = content ? `${status} ${STATUS_TEXT[status] ?? ""}\n` : "";
  // A 206 says which part of the representation it carries (here: all of
  // this page); a 416 says how long the representation is (RFC 9110 §14.4).
  const length = encoder.encode(body).length;
  if (status === 206) headers.push(["Content-Range", `bytes 0-${length - 1}/${length}`]);
  if (status === 416) headers.push(["Content-Range", `bytes */${length}`]);
  return { status, headers, body };
}

// ---------------------------------------------------------------------------
// The server: connections, keep-alive, timeouts, limits, shutdown
// ---------------------------------------------------------------------------

const CONTINUE = encoder.encode("HTTP/1.1 100 Continue\r\n\r\n");
// After an error response the client may still be sending. Closing a socket
// with unread bytes resets it, and a reset can destroy our response before the
// client reads it. So: send FIN, read and discard for a moment, then close.
const LINGER_MS = 1000;
const LINGER_BYTES = 1024 * 1024;
// A 503 is a courtesy, and each one holds a descriptor while it lingers. Past
// this many at once (a flood), a connection over the limit is closed at once.
const MAX_REFUSING = 64;
// How long to wait before accepting again after accept() failed.
const ACCEPT_RETRY_MS = 100;

// Where a connection is in its request cycle. Its deadline means something
// different in each phase:
//   idle     waiting for a request: idleTimeout, then close quietly (the first
//            request gets headerTimeout: a client that connects and says
//            nothing is a slow client too)
//   head     from the request's first byte: headerTimeout for the whole head,
//            then 408 and close. This is what stops slowloris, the client that
//            sends one header byte every few seconds to hold a connection forever.
//   body     idleTimeout without a read, and the whole body by its start plus
//            idleTimeout plus 1 s per minBodyRate bytes received, then 408 and
//            close. A deadline that each read pushed back would let a client
//            send a byte every few seconds and hold the connection for weeks
//            (slow POST, R.U.D.Y.); a minimum average rate is Apache's answer
//            (mod_reqtimeout's MinRate, 500 bytes/s by default).
//   respond  idleTimeout for each write (a client that does not read), then
//            close. While the page itself takes its time between chunks, none.
//   closing  none: the connection is on its way out
type Phase = "idle" | "head" | "body" | "respond" | "closing";

// One client connection, as the server's sweeper and shutdown see it.
class Connection {
  phase: Phase = "idle";
  /** When the current phase times out, in Date.now() ms. */
  deadline = Infinity;
  timedOut = false;
  /** When the request body began, and how many bytes of it were read since. */
  bodyStart = 0;
  bodyBytes = 0;
  readonly peer: string;
  constructor(readonly conn: Deno.TcpConn) {
    this.peer = formatAddress(conn.remoteAddr);
  }
  enter(phase: Phase, timeout: number): void {
    this.phase = phase;
    this.deadline = Date.now() + timeout;
  }
}

/**
 * Serve HTTP/1.1 on `listener`, many connections at once, each kept open for
 * more requests as RFC 9112 §9.3 allows. Resolves once the listener is closed
 * (or `signal` aborts) and every connection has finished.
 *
 * @param listener A TCP listener.
 * @param options Limits, timeouts, a log, and a signal to stop.
 * @returns When the server has stopped.
 *
 * @example
 * ```ts
 * import { serveHttp } from "./http_raw_server.ts";
 * import assert from "node:assert/strict";
 *
 * const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
 * const stop = new AbortController();
 * const server = serveHttp(listener, { log: () => {}, signal: stop.signal });
 * const response = await fetch(`http://127.0.0.1:${listener.addr.port}/about`);
 * assert.equal(response.status, 200);
 * await response.body?.cancel();
 * stop.abort();
 * await server;
 * ```
 */
export async function serveHttp(
  listener: Deno.TcpListener,
  options: RawServerOptions = {},
): Promise<void> {
  const {
    maxRequestLine = DEFAULT_LIMITS.maxRequestLine,
    maxHeaderBytes = DEFAULT_LIMITS.maxHeaderBytes,
    maxHeaderFields = DEFAULT_LIMITS.maxHeaderFields,
    maxBodySize = DEFAULT_LIMITS.maxBodySize,
    headerTimeout = 10_000,
    idleTimeout = 5_000,
    minBodyRate = 500,
    shutdownGrace = 5_000,
    maxConnections = 1000,
    log = console.log,
    signal,
  } = options;
  const settings: ConnectionSettings = {
    limits: { maxRequestLine, maxHeaderBytes, maxHeaderFields, maxBodySize },
    headerTimeout,
    idleTimeout,
    minBodyRate,
    log,
  };
  const open = new Map<Connection, Promise<void>>();
  const refused = new Set<Promise<void>>(); // 503s on their way out

  // The timeouts. A timer per connection, re-armed at every phase, would cost
  // more than parsing the request. Instead each connection only writes down
  // its deadline, and one sweep, a few times a second, acts on those that
  // have passed: a timeout fires up to a quarter of the shortest one late.
  const sweep = () => {
    const now = Date.now();
    for (const connection of open.keys()) {
      if (now >= connection.deadline) timeOut(connection, log);
    }
  };
  const tick = Math.max(10, Math.min(1000, Math.min(headerTimeout, idleTimeout) / 4));
  const sweeper = setInterval(sweep, tick);

  // Stopping: close the listener (which ends the accept loop), and every
  // connection waiting for a request. A connection in the middle of a
  // request body or a response gets shutdownGrace to finish it, with
  // `Connection: close`; then it is closed too, finished or not, so that no
  // slow client can hold the server up (SIGTERM must end it).
  let graceTimer: ReturnType<typeof setTimeout> | undefined;
  const stop = () => {
    closeQuietly(listener);
    for (const connection of open.keys()) {
      if (connection.phase === "idle" || connection.phase === "head") {
        connection.phase = "closing";
        closeQuietly(connection.conn);
      }
    }
    graceTimer = setTimeout(() => {
      for (const connection of open.keys()) {
        if (connection.phase === "body" || connection.phase === "respond") {
          log(
            `${connection.peer} closed at shutdown, in the middle of the ${
              connection.phase === "body" ? "request body" : "response"
            }`,
          );
        }
        connection.phase = "closing";
        closeQuietly(connection.conn);
      }
    }, shutdownGrace);
  };
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", stop, { once: true });

  // The accept loop ends when stop() closes the listener. A failed accept()
  // is the system short of something for a moment: out of file descriptors
  // (EMFILE) while clients hold them all, say. The clients waiting in the
  // kernel's backlog, and the ones being served, are better off if the server
  // waits a little and tries again (acceptConnections, from lib, does).
  const onError = (error: Error) =>
    log(`accept() failed (${errorText(error)}); trying again in ${ACCEPT_RETRY_MS} ms`);
  const accepted = acceptConnections(listener, { onError, retryDelay: ACCEPT_RETRY_MS, signal });
  try {
    for await (const conn of accepted) {
      if (open.size >= maxConnections) {
        if (refused.size >= MAX_REFUSING) {
          closeQuietly(conn);
          continue;
        }
        log(`${formatAddress(conn.remoteAddr)} 503: already ${open.size} connections`);
        const busy = errorResponse(503, "too many connections; try again");
        busy.headers!.push(["Retry-After", "1"]);
        const refusing: Promise<void> = writeAll(
          conn,
          serializeResponse(busy, { keepAlive: false }),
        )
          .then(() => lingeringClose(conn), () => closeQuietly(conn))
          .finally(() => refused.delete(refusing));
        refused.add(refusing);
        continue;
      }
      const connection = new Connection(conn);
      open.set(
        connection,
        serveConnection(connection, settings, signal).finally(() => open.delete(connection)),
      );
    }
  } finally {
    signal?.removeEventListener("abort", stop);
    await Promise.all([...open.values(), ...refused]);
    clearInterval(sweeper);
    clearTimeout(graceTimer);
  }
}

// A deadline passed. A client that is sending a request too slowly hears
// why (408); one that is idle, or not reading our response, is just closed.
function timeOut(connection: Connection, log: (line: string) => void): void {
  const { conn, peer, phase } = connection;
  connection.timedOut = true;
  connection.phase = "closing";
  connection.deadline = Infinity;
  if (phase === "head" || phase === "body") {
    log(`${peer} 408: the request ${phase} did not arrive in time`);
    const late = serializeResponse(errorResponse(408, `the request ${phase} took too long`), {
      keepAlive: false,
    });
    // The client is not reading, but the kernel takes these few bytes at once.
    writeAll(conn, late).catch(() => {}).finally(() => closeQuietly(conn));
  } else {
    if (phase === "respond") log(`${peer} closed: it did not read the response in time`);
    closeQuietly(conn);
  }
}

interface ConnectionSettings {
  limits: RequestLimits;
  headerTimeout: number;
  idleTimeout: number;
  minBodyRate: number;
  log: (line: string) => void;
}

// One connection: read a request, answer it, and again, until either side
// closes, something is malformed, a deadline passes, or the server stops.
// Never throws: one client's trouble ends that client's connection only.
async function serveConnection(
  connection: Connection,
  settings: ConnectionSettings,
  signal: AbortSignal | undefined,
): Promise<void> {
  const { limits, headerTimeout, idleTimeout, minBodyRate, log } = settings;
  const { conn, peer } = connection;

  // Reads move the deadlines: the first byte of a request starts the clock
  // for its head; while a body arrives, each read buys another idleTimeout,
  // but never past what the bytes so far have earned at minBodyRate.
  const reader = new HttpReader(conn, {
    onRead: (bytes) => {
      if (connection.phase === "idle") connection.enter("head", headerTimeout);
      else if (connection.phase === "body") {
        connection.bodyBytes += bytes;
        const earned = connection.bodyStart + idleTimeout +
          connection.bodyBytes * 1000 / minBodyRate;
        connection.deadline = Math.min(Date.now() + idleTimeout, earned);
      }
    },
  });
  // Each response is built in this buffer (when it fits), written, and only
  // then is the next one built: one allocation per connection, not per response.
  const output = new Uint8Array(8192);
  // Writes move the deadline too: each write gets idleTimeout to finish, so
  // a response goes on for as long as the client keeps reading it.
  const writer: Writer = {
    write(data) {
      connection.deadline = Date.now() + idleTimeout;
      return conn.write(data);
    },
  };
  const readOptions: ReadRequestOptions = {
    beforeBody: async (head) => {
      connection.enter("body", idleTimeout);
      connection.bodyStart = Date.now();
      connection.bodyBytes = 0;
      // The client waits for this before sending its body (curl does, for
      // large uploads). A body we would refuse was refused just before.
      if (head.expectContinue) await writeAll(conn, CONTINUE);
    },
  };

  try {
    for (let served = 0; !signal?.aborted; served++) {
      // A pipelining client may have sent the next request already.
      if (reader.buffered > 0) connection.enter("head", headerTimeout);
      else connection.enter("idle", served === 0 ? headerTimeout : idleTimeout);

      let request: HttpRequest | null;
      try {
        request = await readRequest(reader, limits, readOptions);
      } catch (error) {
        if (!(error instanceof HttpError) || connection.timedOut) throw error;
        // A malformed request: answer why, then close, because nobody can
        // tell where the next request would start.
        log(`${peer} ${error.status}: ${error.message}`);
        connection.enter("closing", Infinity);
        const refusal = errorResponse(error.status, error.message);
        await writeAll(conn, serializeResponse(refusal, { keepAlive: false }));
        return await lingeringClose(conn);
      }
      if (request === null) break; // the client closed between requests: the normal end

      connection.enter("respond", idleTimeout);
      const keepAlive = request.keepAlive && !signal?.aborted;
      let response: HttpResponse;
      try {
        response = route(request);
      } catch (error) {
        // A bug in a page must not take the connection's framing with it.
        log(`${peer} 500: ${errorText(error)}`);
        response = errorResponse(500, "the page failed; see the server's log");
      }
      if (response.chunks) response.chunks = untimed(response.chunks, connection);
      const sent = await writeResponse(writer, response, {
        method: request.method,
        version: request.version,
        keepAlive,
        buffer: output,
      });
      log(
        `${peer} "${request.method} ${request.target} ${request.version}" ${response.status} ${sent}`,
      );
      if (!keepAlive) {
        connection.enter("closing", Infinity);
        return await lingeringClose(conn);
      }
    }
  } catch (error) {
    // The client reset or closed mid-request, or we closed it (timeout, shutdown).
    if (error instanceof UnexpectedEofError) log(`${peer} closed in the middle of a request`);
    else if (connection.timedOut || signal?.aborted) {
      // Said already where we closed it: timeOut(), or the shutdown.
    } else if (connection.phase === "respond") {
      log(`${peer} closed before the whole response was sent: ${errorText(error)}`);
    } else if (!isClosedError(error)) log(`${peer} dropped: ${errorText(error)}`);
  } finally {
    // A timed-out connection is closed by timeOut(), once its 408 is written.
    if (!connection.timedOut) closeQuietly(conn);
  }
}

// A response's chunks, as the page produces them. Waiting for the next one is
// the server's own doing (/chunked?delay=1000), not the client being idle:
// no deadline runs meanwhile. The writer sets one again for each write.
async function* untimed(
  chunks: AsyncIterable<Uint8Array>,
  connection: Connection,
): AsyncGenerator<Uint8Array> {
  connection.deadline = Infinity;
  for await (const chunk of chunks) {
    yield chunk;
    connection.deadline = Infinity;
  }
}

// Send FIN, then read and discard what the client still sends, for a moment,
// so the close does not reset the connection under our last response.
async function lingeringClose(conn: Deno.TcpConn): Promise<void> {
  const timer = setTimeout(() => closeQuietly(conn), LINGER_MS);
  try {
    await conn.closeWrite();
    const sink = new Uint8Array(16384);
    for (let total = 0; total < LINGER_BYTES;) {
      const n = await conn.read(sink);
      if (n === null) break;
      total += n;
    }
  } catch {
    /* closed by the timer, or reset by the client: either way, done */
  } finally {
    clearTimeout(timer);
    closeQuietly(conn);
  }
}

function closeQuietly(resource: { close(): void }): void {
  try {
    resource.close();
  } catch { /* already closed */ }
}

function errorText(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

function isClosedError(error: unknown): boolean {
  return error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted ||
    error instanceof Deno.errors.ConnectionReset || error instanceof Deno.errors.BrokenPipe;
}

function formatAddress(address: Deno.Addr): string {
  if (address.transport !== "tcp" && address.transport !== "udp") return address.transport;
  const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
  return `${host}:${address.port}`;
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  "header-timeout": { type: "number", default: 10, min: 0.001 },
  "idle-timeout": { type: "number", default: 5, min: 0.001 },
  "min-body-rate": { type: "number", default: 500, min: 1 },
  "max-body": { type: "number", default: DEFAULT_LIMITS.maxBodySize, integer: true, min: 0 },
  "max-connections": { type: "number", default: 1000, integer: true, min: 1 },
  quiet: { type: "boolean" },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (command === undefined) return await demo();
  if (command !== "serve") throw new UsageError(`unknown command "${command}"; expected serve`);
  const listener = Deno.listen({ hostname: flags.host, port: flags.port });
  const signal = shutdownSignal();
  console.log(listeningBanner("http", listener.addr));
  await serveHttp(listener, {
    headerTimeout: flags["header-timeout"] * 1000,
    idleTimeout: flags["idle-timeout"] * 1000,
    minBodyRate: flags["min-body-rate"],
    maxBodySize: flags["max-body"],
    maxConnections: flags["max-connections"],
    log: flags.quiet ? () => {} : console.log,
    signal,
  });
}

// The demo: the server on a free loopback port, and a client that sends raw
// requests and prints both sides' bytes: `>` what went out, `<` what came back.
async function demo(): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  console.log(`server: ${listeningBanner("http", listener.addr)}`);
  const stop = new AbortController();
  const server = serveHttp(listener, {
    log: (line) => console.log(`server: ${line}`),
    signal: stop.signal,
  });
  const host = `Host: 127.0.0.1:${port}\r\n`;

  console.log("\n# three requests on one connection (HTTP/1.1 keeps it open)");
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  const reader = new HttpReader(conn);
  await send(conn, `GET /time HTTP/1.1\r\n${host}\r\n`);
  await receive(reader);
  await send(conn, `HEAD /about HTTP/1.1\r\n${host}\r\n`);
  await receive(reader, { head: true });
  await send(
    conn,
    `POST /echo HTTP/1.1\r\n${host}Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `7\r\nhello, \r\n7\r\nchunks!\r\n0\r\n\r\n`,
  );
  await receive(reader);
  conn.close();

  console.log("\n# a path that tries to inject a script: escaped in the 404 page");
  await oneShot(port, `GET /%3Cscript%3Ealert(1)%3C/script%3E HTTP/1.1\r\n${host}\r\n`);

  console.log("\n# a smuggling attempt: Content-Length and Transfer-Encoding together");
  await oneShot(
    port,
    `POST /echo HTTP/1.1\r\n${host}Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n` +
      `0\r\n\r\nGET /admin HTTP/1.1\r\n${host}\r\n`,
    { untilClosed: true },
  );

  console.log("\n# a response in chunks, every byte as it came (CRLF shown as \\r\\n)");
  await oneShot(port, `GET /chunked HTTP/1.1\r\n${host}Connection: close\r\n\r\n`, { raw: true });

  stop.abort();
  await server;
  console.log("\nserver: stopped; nothing left listening");
}

function show(text: string, mark: string): void {
  console.log(text.replace(/\r\n$/, "").split("\r\n").map((line) => `${mark} ${line}`).join("\n"));
}

async function send(conn: Deno.Conn, request: string): Promise<void> {
  show(request, ">");
  await writeAll(conn, encoder.encode(request));
}

// Read one response: its head line by line, then its body by Content-Length
// or by chunks. HTML bodies are cut down to their <h1> and <code> lines.
async function receive(reader: HttpReader, options: { head?: boolean } = {}): Promise<void> {
  const lines: string[] = [];
  for (let line = await reader.readCrlfLine(8192); line; line = await reader.readCrlfLine(8192)) {
    lines.push(line);
  }
  show(lines.join("\r\n") + "\r\n\r\n", "<");
  const field = (name: string) =>
    lines.find((line) => line.toLowerCase().startsWith(`${name}:`))?.slice(name.length + 1).trim();
  const body = options.head
    ? EMPTY
    : field("transfer-encoding") === "chunked"
    ? await readChunkedBody(reader)
    : await reader.readExactly(Number(field("content-length") ?? 0));
  const text = new TextDecoder().decode(body).trimEnd().split("\n");
  const shown = field("content-type")?.startsWith("text/html")
    ? [...text.filter((line) => /<h1>|<code>/.test(line)), `(${body.length} bytes of HTML)`]
    : text;
  if (body.length > 0) show(shown.join("\r\n"), "<");
}

// Send one request on a new connection and read the response; or, raw, every
// byte until the server closes.
async function oneShot(
  port: number,
  request: string,
  { raw = false, untilClosed = false } = {},
): Promise<void> {
  const conn = await Deno.connect({ hostname: "127.0.0.1", port });
  try {
    await send(conn, request);
    if (!raw) {
      const reader = new HttpReader(conn);
      await receive(reader);
      if (!untilClosed) return;
      // After an error the server closes: the rest of what we sent is never read as a request.
      const more = await reader.read(new Uint8Array(1));
      console.log(more === null ? "  (the server closed the connection)" : "  (more bytes came!)");
      return;
    }
    let received = "";
    for await (const chunk of conn.readable) received += new TextDecoder().decode(chunk);
    show(received.replace(/\r?\n/g, (end) => end === "\n" ? "\\n" : "\\r\\n\r\n"), "<");
  } finally {
    try {
      conn.close();
    } catch { /* reading to the end closed it */ }
  }
}

if (import.meta.main) runMain(USAGE, main);
