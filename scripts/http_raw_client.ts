#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title HTTP by hand: a client that writes the request and reads the response itself
 * @difficulty intermediate
 * @tags cli, network, tcp, http
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc9112} RFC 9112: HTTP/1.1 (message syntax, body length, chunked, keep-alive)
 * @resource {https://www.rfc-editor.org/rfc/rfc9110} RFC 9110: HTTP Semantics (methods, status codes, fields, redirects)
 *
 * An HTTP/1.1 client on a bare TCP connection (`Deno.connect`, or
 * `Deno.connectTls` for https). It writes the request line and header fields
 * byte by byte, parses the status line and fields strictly (with caps on their
 * size and number), and then finds where the body ends the way RFC 9112 §6.3
 * says: no body (HEAD, 1xx, 204, 304), a chunked body (with its extensions and
 * trailers), exactly Content-Length bytes, or everything until the server
 * closes. Several requests to one origin share one keep-alive connection;
 * redirects are followed on request, at most five. With no arguments it starts
 * the raw server of scripts/http_raw_server.ts on a free loopback port and
 * fetches several pages over one connection.
 * Taught cell by cell in notebooks/09_http_raw_client.ipynb.
 */

import { BufferedReader } from "../lib/buffered_reader.ts";
import { FrameTooLargeError } from "../lib/frame_too_large_error.ts";
import { UnexpectedEofError } from "../lib/unexpected_eof_error.ts";
import { writeAll } from "../lib/write_all.ts";
import { parseFlags } from "../lib/parse_flags.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { serveHttp } from "./http_raw_server.ts";

const USAGE = `
http_raw_client.ts: an HTTP/1.1 client that builds and parses the bytes itself (RFC 9112)

usage:
  http_raw_client.ts                       demo: start the raw server (http_raw_server.ts) on a
                                           free port, fetch several pages over one connection
  http_raw_client.ts get URL [URL..]       fetch each URL, bodies to stdout; URLs of one origin
                                           share one keep-alive connection
  http_raw_client.ts head URL              send HEAD; print the status line and header fields
  http_raw_client.ts post URL --data TEXT  send POST with TEXT (or --data-file FILE) as the body;
                                           print the response body

flags:
  -H, --header 'Name: value'  add a request header field (repeat it for more); a Host
                        given here replaces the one from the URL
  -d, --data TEXT       post: the body (sent as text/plain unless a Content-Type is given)
  --data-file FILE      post: send FILE's bytes as the body (application/octet-stream)
  -L, --follow          follow redirects (301, 302, 303, 307, 308), at most 5, each one
                        explained on stderr; a loop is refused
  -i, --include         print each response's status line and header fields before its body
  -v, --verbose         show the wire on stderr: '>' request bytes, '<' response head,
                        '*' what the client decided (framing, chunks, connection reuse)
  -o, --output FILE     write the bodies to FILE instead of stdout
  --timeout SECS        give up when connecting takes, or the server stays silent (or stops
                        reading what we send), this long (default 30)
  -h, --help            show this help

permissions:
  demo, and URLs on 127.0.0.1:    --allow-net=127.0.0.1
  any other host:                 --allow-net=HOST (e.g. --allow-net=example.com; or plain
                                  --allow-net). https:// URLs use TLS (Deno.connectTls) and
                                  need the same flag; http://localhost needs --allow-net=localhost
  --data-file FILE:               add --allow-read=FILE
  --output FILE:                  add --allow-write=FILE
`;

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const CRLF = "\r\n";

/** The header fields of a message, in the order they came, names as sent. */
export type Fields = [name: string, value: string][];

/**
 * The value of field `name` (case-insensitive), or `undefined`. A field sent
 * more than once is one list, its values joined with ", " (RFC 9110 §5.3).
 *
 * @param fields The fields.
 * @param name The name to look for.
 * @returns The value, or `undefined` if there is no such field.
 *
 * @example
 * ```ts
 * import { fieldValue } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * const fields: [string, string][] = [["Vary", "Accept"], ["vary", "Cookie"]];
 * assert.equal(fieldValue(fields, "VARY"), "Accept, Cookie");
 * assert.equal(fieldValue(fields, "Allow"), undefined);
 * ```
 */
export function fieldValue(fields: Fields, name: string): string | undefined {
  const wanted = name.toLowerCase();
  const values = fields.filter(([n]) => n.toLowerCase() === wanted).map(([, v]) => v);
  return values.length === 0 ? undefined : values.join(", ");
}

/**
 * A response that breaks HTTP/1.1's syntax or its body-length rules. The
 * connection it came on can no longer be trusted (where would the next
 * response start?), so it is closed.
 */
export class HttpProtocolError extends Error {
  /** @param message What is wrong with the response, and which rule it breaks. */
  constructor(message: string) {
    super(`malformed response: ${message}`);
    this.name = "HttpProtocolError";
  }
}

// RFC 9110 §5.6.2: a token is one or more of these characters. Field names
// and methods are tokens, and so are chunk extension names.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;

// ---------------------------------------------------------------------------
// The request: bytes we write ourselves (RFC 9112 §3)
//
//   GET /about HTTP/1.1\r\n          request-line = method SP request-target SP HTTP-version
//   Host: 127.0.0.1:8080\r\n         field-line   = field-name ":" OWS field-value OWS
//   \r\n                             an empty line ends the head; then the body, if any
// ---------------------------------------------------------------------------

/** What {@linkcode buildRequest} turns into bytes. */
export interface RequestSpec {
  /** The method, a token: GET, HEAD, POST, ... */
  method: string;
  /** The request-target in origin form (`/path?query`), or `*`, or `host:port` for CONNECT. */
  target: string;
  /** The Host field's value (`example.com`, `127.0.0.1:8080`): required in HTTP/1.1 (RFC 9112 §3.2). */
  host: string;
  /** More header fields, in order. A `Host` among them replaces `host`. */
  headers?: Fields;
  /** The body's bytes; a Content-Length field is added for them. */
  body?: Uint8Array;
  /** The length of a body sent separately (streamed after the head), for its Content-Length. */
  contentLength?: number;
}

/**
 * Build a request's bytes: the request line, `Host`, the given fields, a
 * `Content-Length` for a body, the empty line, and the body. A request has
 * exactly one Host field (RFC 9112 §3.2: a server answers 400 to two), so one
 * given among the fields takes the place of the one made from `host`.
 *
 * Every name must be a token and no value may hold CR, LF or NUL: a value
 * with a line break in it would let whoever chose it add fields, or a whole
 * second request ("request splitting").
 *
 * @param spec The request.
 * @returns The bytes to write, head and body.
 * @throws {TypeError} If the method, target, a name or a value is not allowed.
 *
 * @example A POST, byte for byte
 * ```ts
 * import { buildRequest } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * const bytes = buildRequest({
 *   method: "POST",
 *   target: "/echo",
 *   host: "127.0.0.1:8400",
 *   body: new TextEncoder().encode("hi"),
 * });
 * assert.equal(
 *   new TextDecoder().decode(bytes),
 *   "POST /echo HTTP/1.1\r\nHost: 127.0.0.1:8400\r\nContent-Length: 2\r\n\r\nhi",
 * );
 * assert.throws(() => buildRequest({ method: "GET", target: "/", host: "a\r\nX: y" }));
 * const named = buildRequest({ method: "GET", target: "/", host: "a", headers: [["host", "b"]] });
 * assert.equal(new TextDecoder().decode(named), "GET / HTTP/1.1\r\nHost: b\r\n\r\n");
 * ```
 */
export function buildRequest(spec: RequestSpec): Uint8Array<ArrayBuffer> {
  const { method, target, host, headers = [], body, contentLength = body?.length } = spec;
  if (!TOKEN.test(method)) throw new TypeError(`the method "${method}" is not a token`);
  if (!/^[\x21-\x7e]+$/.test(target)) {
    throw new TypeError(`the request target "${target}" must be visible ASCII without spaces`);
  }
  const lines = [`${method} ${target} HTTP/1.1`];
  const isHost = ([name]: [string, string]) => name.toLowerCase() === "host";
  const hosts = headers.filter(isHost);
  if (hosts.length > 1) throw new TypeError("more than one Host field (RFC 9112 §3.2)");
  const fields: Fields = [["Host", hosts[0]?.[1] ?? host], ...headers.filter((f) => !isHost(f))];
  const named = (name: string) => fields.some(([n]) => n.toLowerCase() === name);
  if (contentLength !== undefined && !named("content-length") && !named("transfer-encoding")) {
    // A body needs its length said up front: §6.2. (A GET has none and sends
    // no Content-Length; a POST of 0 bytes sends "Content-Length: 0".)
    fields.push(["Content-Length", String(contentLength)]);
  }
  for (const [name, value] of fields) {
    if (!TOKEN.test(name)) throw new TypeError(`the field name "${name}" is not a token`);
    // deno-lint-ignore no-control-regex
    if (/[\r\n\x00]/.test(value)) {
      throw new TypeError(`the value of ${name} holds a CR, LF or NUL (request splitting)`);
    }
    lines.push(`${name}: ${value.trim()}`);
  }
  const head = encoder.encode(lines.join(CRLF) + CRLF + CRLF);
  if (!body || body.length === 0) return head;
  const bytes = new Uint8Array(head.length + body.length);
  bytes.set(head);
  bytes.set(body, head.length);
  return bytes;
}

// ---------------------------------------------------------------------------
// The response head: a status line, then field lines, then an empty line
// ---------------------------------------------------------------------------

/** Caps on what a server may send, so a broken or hostile one cannot exhaust our memory. */
export interface ResponseLimits {
  /** The longest status line, field line or chunk-size line, in bytes. @default {8192} */
  maxLineLength?: number;
  /** The most bytes of head (status line and fields), and again of trailers. @default {65536} */
  maxHeaderBytes?: number;
  /** The most header fields, and again the most trailer fields. @default {100} */
  maxHeaderFields?: number;
}

/** A parsed status line (RFC 9112 §4). */
export interface StatusLine {
  /** `HTTP/1.1` or `HTTP/1.0`. */
  version: string;
  /** The three-digit code, 100 to 599. */
  status: number;
  /** The reason phrase: for people only; clients must not act on it. */
  reason: string;
}

/**
 * Parse a status line: `HTTP-version SP status-code SP [reason-phrase]`.
 *
 * Only HTTP/1.x is accepted. The reason may be empty. The space before it is
 * required by the grammar (§4), but some servers leave it out along with an
 * empty reason; nothing depends on the reason (a client SHOULD ignore it), so
 * this client lets that pass.
 *
 * @param line The line, without its line ending.
 * @returns The version, code and reason.
 * @throws {HttpProtocolError} If it is not a status line.
 *
 * @example
 * ```ts
 * import { parseStatusLine } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseStatusLine("HTTP/1.1 404 Not Found"), {
 *   version: "HTTP/1.1",
 *   status: 404,
 *   reason: "Not Found",
 * });
 * assert.throws(() => parseStatusLine("HTTP/1.1 2000 OK"), /status line/);
 * ```
 */
export function parseStatusLine(line: string): StatusLine {
  const match = line.match(/^(HTTP\/\d\.\d) (\d{3})(?: (.*))?$/);
  if (!match) {
    throw new HttpProtocolError(
      `the status line ${JSON.stringify(shorten(line))} is not "HTTP/1.1 NNN reason" (RFC 9112 §4)`,
    );
  }
  const [, version, code, reason = ""] = match;
  if (!version.startsWith("HTTP/1.")) {
    throw new HttpProtocolError(`unsupported version ${version}; this client speaks HTTP/1.x`);
  }
  const status = Number(code);
  if (status < 100 || status > 599) {
    throw new HttpProtocolError(`status code ${code} is outside 100-599 (RFC 9110 §15)`);
  }
  return { version, status, reason };
}

/**
 * Parse one field line: `field-name ":" OWS field-value OWS` (RFC 9112 §5).
 * The name must be a token right up to the colon: whitespace before the
 * colon is how request smuggling starts (§5.1), so it is an error here.
 *
 * @param line The line, without its line ending.
 * @returns The name (as sent) and the value (without surrounding whitespace).
 * @throws {HttpProtocolError} If the line is not a field line.
 *
 * @example
 * ```ts
 * import { parseFieldLine } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseFieldLine("Content-Type:  text/html "), ["Content-Type", "text/html"]);
 * assert.throws(() => parseFieldLine("Content-Length : 5"), /whitespace before its colon/);
 * ```
 */
export function parseFieldLine(line: string): [string, string] {
  const colon = line.indexOf(":");
  const name = colon === -1 ? "" : line.slice(0, colon);
  if (!TOKEN.test(name)) {
    const why = colon === -1
      ? "has no colon"
      : /\s$/.test(name)
      ? "has whitespace before its colon (§5.1)"
      : `has the invalid name ${JSON.stringify(name)}`;
    throw new HttpProtocolError(`the field line ${JSON.stringify(shorten(line))} ${why}`);
  }
  return [name, line.slice(colon + 1).replace(/^[ \t]+|[ \t]+$/g, "")];
}

/** Options for {@linkcode readFields}. */
export interface ReadFieldsOptions extends ResponseLimits {
  /** Bytes of the head read already (the status line), counted against `maxHeaderBytes`. @default {0} */
  alreadyRead?: number;
  /** Called with each line as it arrives (for `--verbose`). */
  onLine?: (line: string) => void;
}

/**
 * Read field lines up to the empty line that ends them: a message's header
 * section, or the trailer section after a chunked body. Line endings: CRLF,
 * or a bare LF, which RFC 9112 §2.2 lets a recipient accept (as browsers and
 * curl do). A bare CR is an error (§2.2 says to reject it or treat it as a
 * space; accepting it silently is how two parsers come to disagree). An
 * obsolete line folding (a line starting with a space or tab, continuing the
 * previous field) is replaced by one space, which §5.2 requires of a user
 * agent, rather than rejected, which it requires of a server.
 *
 * @param reader Where the lines come from.
 * @param options The caps, and a callback for each raw line.
 * @returns The fields in order.
 * @throws {HttpProtocolError} If a line is malformed, too long, or too many, or the stream ends.
 *
 * @example A folded field and a bare LF, as an old server might send them
 * ```ts
 * import { readFields } from "./http_raw_client.ts";
 * import { BufferedReader } from "../lib/buffered_reader.ts";
 * import assert from "node:assert/strict";
 *
 * const wire = new TextEncoder().encode("A: one\r\n  two\nB: 3\r\n\r\n");
 * let rest = wire; // a connection that has these bytes to give, then ends
 * const reader = new BufferedReader({
 *   read(buffer: Uint8Array) {
 *     if (rest.length === 0) return Promise.resolve(null);
 *     const n = Math.min(buffer.length, rest.length);
 *     buffer.set(rest.subarray(0, n));
 *     rest = rest.subarray(n);
 *     return Promise.resolve(n);
 *   },
 * });
 * assert.deepEqual(await readFields(reader), [["A", "one two"], ["B", "3"]]);
 * ```
 */
export async function readFields(
  reader: BufferedReader,
  options: ReadFieldsOptions = {},
): Promise<Fields> {
  const { maxLineLength = 8192, maxHeaderBytes = 65536, maxHeaderFields = 100, onLine } = options;
  const fields: Fields = [];
  let bytes = options.alreadyRead ?? 0;
  while (true) {
    const line = await readLine(reader, maxLineLength);
    bytes += line.length + 2;
    const text = decoder.decode(line);
    onLine?.(text);
    if (line.length === 0) return fields;
    if (bytes > maxHeaderBytes) {
      throw new HttpProtocolError(`the header section is over ${maxHeaderBytes} bytes`);
    }
    if (line[0] === 0x20 || line[0] === 0x09) {
      // obs-fold: a continuation of the previous field's value (§5.2).
      if (fields.length === 0) {
        throw new HttpProtocolError("a field section starts with whitespace (RFC 9112 §2.2)");
      }
      const last = fields[fields.length - 1];
      last[1] = `${last[1]} ${text.trim()}`.trim();
      continue;
    }
    if (fields.length === maxHeaderFields) {
      throw new HttpProtocolError(`more than ${maxHeaderFields} header fields`);
    }
    fields.push(parseFieldLine(text));
  }
}

// One line through the BufferedReader, its errors turned into protocol errors.
async function readLine(reader: BufferedReader, maxLength: number): Promise<Uint8Array> {
  let line;
  try {
    line = await reader.readLine({ maxLength: Math.max(0, maxLength) });
  } catch (error) {
    if (error instanceof FrameTooLargeError) {
      throw new HttpProtocolError(`a line longer than ${error.limit} bytes`);
    }
    if (error instanceof UnexpectedEofError) {
      throw new HttpProtocolError("the connection closed in the middle of a line");
    }
    throw error;
  }
  if (line === null) {
    throw new HttpProtocolError("the connection closed before the end of the head");
  }
  if (line.includes(0x0d)) {
    throw new HttpProtocolError(
      `a bare CR in ${JSON.stringify(shorten(decoder.decode(line)))} (RFC 9112 §2.2)`,
    );
  }
  if (line.includes(0)) throw new HttpProtocolError("a NUL byte in the head");
  return line;
}

// ---------------------------------------------------------------------------
// Where the body ends: RFC 9112 §6.3, in its order
// ---------------------------------------------------------------------------

/** How a response's body is delimited, and the rule that says so. */
export type Framing =
  | { kind: "none"; rule: string }
  | { kind: "length"; length: number; rule: string }
  | { kind: "chunked"; rule: string }
  | { kind: "close"; rule: string };

/**
 * Decide how the body of a response to `method` with `status` and `fields`
 * is delimited, following RFC 9112 §6.3 rule by rule.
 *
 * @param method The request's method (a response to HEAD has no body).
 * @param status The response's status code.
 * @param fields The response's header fields.
 * @returns The framing, with the rule that chose it.
 * @throws {HttpProtocolError} For both Transfer-Encoding and Content-Length, a
 *   transfer coding other than chunked, or an invalid Content-Length.
 *
 * @example
 * ```ts
 * import { bodyFraming } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(bodyFraming("HEAD", 200, [["Content-Length", "10"]]).kind, "none");
 * assert.equal(bodyFraming("GET", 200, [["Transfer-Encoding", "chunked"]]).kind, "chunked");
 * assert.equal(bodyFraming("GET", 200, []).kind, "close");
 * assert.throws(
 *   () => bodyFraming("GET", 200, [["Content-Length", "3"], ["Transfer-Encoding", "chunked"]]),
 *   /smuggling/,
 * );
 * ```
 */
export function bodyFraming(method: string, status: number, fields: Fields): Framing {
  // Rule 1: never a body, whatever the fields say. A HEAD response carries the
  // Content-Length the GET would have had, but not the bytes.
  if (method === "HEAD") return { kind: "none", rule: "§6.3 rule 1: a response to HEAD" };
  if (status < 200) return { kind: "none", rule: `§6.3 rule 1: a 1xx response` };
  if (status === 204 || status === 304) {
    return { kind: "none", rule: `§6.3 rule 1: a ${status} response` };
  }
  // Rule 2: a 2xx to CONNECT turns the connection into a tunnel.
  if (method === "CONNECT" && status < 300) {
    return { kind: "none", rule: "§6.3 rule 2: a 2xx to CONNECT (the connection is a tunnel now)" };
  }
  const transferEncoding = fieldValue(fields, "transfer-encoding");
  const contentLength = fieldValue(fields, "content-length");
  // Rule 3: both at once may be a smuggling attempt; §6.3 says to treat it as an error.
  if (transferEncoding !== undefined && contentLength !== undefined) {
    throw new HttpProtocolError(
      "both Transfer-Encoding and Content-Length (RFC 9112 §6.3 rule 3: possible smuggling)",
    );
  }
  // Rule 4: chunked must be the final coding. We sent no TE field, so a server
  // may use no other (RFC 9110 §10.1.4) and we decode no other.
  if (transferEncoding !== undefined) {
    const codings = transferEncoding.split(",").map((c) => c.trim().toLowerCase());
    if (codings.length !== 1 || codings[0] !== "chunked") {
      throw new HttpProtocolError(
        `Transfer-Encoding "${transferEncoding}": this client decodes only "chunked"`,
      );
    }
    return { kind: "chunked", rule: "§6.3 rule 4: Transfer-Encoding: chunked" };
  }
  // Rule 5: a valid Content-Length, or an error. "42, 42" (the field repeated
  // with one value) is allowed by RFC 9110 §8.6; differing values are not.
  if (contentLength !== undefined) {
    const values = new Set(contentLength.split(",").map((v) => v.trim()));
    const [value] = values;
    if (values.size !== 1 || !/^\d{1,15}$/.test(value)) {
      throw new HttpProtocolError(
        `invalid Content-Length "${shorten(contentLength)}" (RFC 9112 §6.3 rule 5)`,
      );
    }
    return { kind: "length", length: Number(value), rule: "§6.3 rule 5: Content-Length" };
  }
  // Rule 7 (rule 6 is for requests): the body runs until the server closes.
  return { kind: "close", rule: "§6.3 rule 7: no length given, so until the server closes" };
}

/**
 * Whether the connection stays open after this response (RFC 9112 §9.3):
 * HTTP/1.1 persists unless `Connection: close`; HTTP/1.0 closes unless
 * `Connection: keep-alive`.
 *
 * @param version The response's HTTP version.
 * @param fields Its header fields.
 * @returns True if another request may follow on the same connection.
 *
 * @example
 * ```ts
 * import { isPersistent } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(isPersistent("HTTP/1.1", []), true);
 * assert.equal(isPersistent("HTTP/1.1", [["Connection", "close"]]), false);
 * assert.equal(isPersistent("HTTP/1.0", []), false);
 * ```
 */
export function isPersistent(version: string, fields: Fields): boolean {
  const options = (fieldValue(fields, "connection") ?? "").toLowerCase().split(",")
    .map((option) => option.trim());
  if (options.includes("close")) return false;
  return version === "HTTP/1.1" || options.includes("keep-alive");
}

// ---------------------------------------------------------------------------
// Chunked transfer coding (RFC 9112 §7.1)
//
//   1a;note=hi\r\n        chunk-size in hex, then optional extensions
//   <26 bytes>\r\n        the chunk's data, then CRLF
//   0\r\n                 the last chunk: size 0
//   Expires: never\r\n    optional trailer fields
//   \r\n                  the end
// ---------------------------------------------------------------------------

/** A chunk extension: `;name` or `;name=value` (RFC 9112 §7.1.1). */
export type ChunkExtension = [name: string, value: string | undefined];

/** One step of decoding a chunked body, as {@linkcode readChunked} yields them. */
export type ChunkEvent =
  | { kind: "size"; line: string; size: number; extensions: ChunkExtension[] }
  | { kind: "data"; data: Uint8Array }
  | { kind: "trailers"; fields: Fields };

/**
 * Parse a chunk-size line: hex digits, then `;name[=value]` extensions, the
 * values tokens or quoted strings, with optional whitespace around `;` and `=`.
 *
 * @param line The line, without its CRLF.
 * @returns The size and the extensions.
 * @throws {HttpProtocolError} If the line is malformed or the size too large.
 *
 * @example
 * ```ts
 * import { parseChunkSize } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseChunkSize('1a;name="a value";flag'), {
 *   size: 26,
 *   extensions: [["name", "a value"], ["flag", undefined]],
 * });
 * ```
 */
export function parseChunkSize(line: string): { size: number; extensions: ChunkExtension[] } {
  const match = line.match(/^([0-9A-Fa-f]+)(.*)$/);
  if (!match) {
    throw new HttpProtocolError(
      `the chunk-size line ${JSON.stringify(shorten(line))} does not start with hex digits (§7.1)`,
    );
  }
  const digits = match[1].replace(/^0+(?=.)/, "");
  if (digits.length > 13) throw new HttpProtocolError(`a chunk size of 0x${digits} is too large`);
  const extensions: ChunkExtension[] = [];
  let rest = match[2];
  const extension =
    /^[ \t]*;[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+)(?:[ \t]*=[ \t]*([!#$%&'*+\-.^_`|~0-9A-Za-z]+|"(?:[^"\\]|\\.)*"))?/;
  for (let found = rest.match(extension); found; found = rest.match(extension)) {
    const [all, name, value] = found;
    extensions.push([
      name,
      value?.startsWith('"') ? value.slice(1, -1).replace(/\\(.)/g, "$1") : value,
    ]);
    rest = rest.slice(all.length);
  }
  if (!/^[ \t]*$/.test(rest)) {
    throw new HttpProtocolError(
      `the chunk-size line ${JSON.stringify(shorten(line))} has a malformed extension (§7.1.1)`,
    );
  }
  return { size: parseInt(digits, 16), extensions };
}

/**
 * Decode a chunked body from `reader`, step by step: a `size` event for each
 * chunk-size line, `data` events for its bytes (at most 64 KiB each, so a huge
 * chunk is never held whole), and one `trailers` event at the end.
 *
 * @param reader Positioned at the first chunk-size line.
 * @param limits Caps on line length and the trailer section.
 * @returns The events, in order.
 * @throws {HttpProtocolError} If the coding is malformed or the stream ends early.
 *
 * @example Encode, then decode step by step
 * ```ts
 * import { encodeChunked, readChunked } from "./http_raw_client.ts";
 * import { BufferedReader } from "../lib/buffered_reader.ts";
 * import assert from "node:assert/strict";
 *
 * const wire = encodeChunked([new TextEncoder().encode("hello")], {
 *   trailers: [["X-Sum", "5"]],
 * });
 * assert.equal(new TextDecoder().decode(wire), "5\r\nhello\r\n0\r\nX-Sum: 5\r\n\r\n");
 * let rest = wire; // a connection that has these bytes to give, then ends
 * const reader = new BufferedReader({
 *   read(buffer: Uint8Array) {
 *     if (rest.length === 0) return Promise.resolve(null);
 *     const n = Math.min(buffer.length, rest.length);
 *     buffer.set(rest.subarray(0, n));
 *     rest = rest.subarray(n);
 *     return Promise.resolve(n);
 *   },
 * });
 * const kinds = [];
 * for await (const event of readChunked(reader)) kinds.push(event.kind);
 * assert.deepEqual(kinds, ["size", "data", "size", "trailers"]);
 * ```
 */
export async function* readChunked(
  reader: BufferedReader,
  limits: ResponseLimits = {},
): AsyncGenerator<ChunkEvent> {
  const { maxLineLength = 8192 } = limits;
  while (true) {
    const line = await readChunkLine(reader, maxLineLength);
    const { size, extensions } = parseChunkSize(line);
    yield { kind: "size", line, size, extensions };
    if (size === 0) break;
    for (let left = size; left > 0;) {
      const data = new Uint8Array(Math.min(left, 65536));
      const n = await reader.read(data);
      if (n === null) {
        throw new HttpProtocolError(`the connection closed inside a chunk (${left} bytes missing)`);
      }
      left -= n;
      yield { kind: "data", data: data.subarray(0, n) };
    }
    // The chunk's data ends with CRLF; anything else means the size lied.
    await readChunkEnd(reader, line);
  }
  yield { kind: "trailers", fields: await readFields(reader, limits) };
}

// The framing lines of a chunked body must end in CRLF. RFC 9112 §2.2 lets a
// recipient take a bare LF for the start line and fields, not here: a chunk
// parser that takes one splits the stream where a stricter proxy in front of
// it does not, which is how responses get smuggled (Go's CVE-2025-22871 was a
// bare LF after a chunk size). So these lines are read byte by byte, the CR
// checked; they are a few bytes each.
async function readChunkLine(reader: BufferedReader, maxLength: number): Promise<string> {
  const line: number[] = [];
  const one = new Uint8Array(1);
  while (true) {
    if (await reader.read(one) === null) {
      throw new HttpProtocolError("the connection closed in a chunk-size line");
    }
    if (one[0] === 0x0a) break;
    if (line.length > maxLength) {
      throw new HttpProtocolError(`a chunk-size line longer than ${maxLength} bytes`);
    }
    line.push(one[0]);
  }
  const text = decoder.decode(new Uint8Array(line));
  if (line.pop() !== 0x0d) {
    throw new HttpProtocolError(
      `the chunk-size line ${JSON.stringify(shorten(text))} ends in LF alone, not CRLF (§7.1)`,
    );
  }
  if (line.includes(0x0d)) throw new HttpProtocolError("a bare CR in a chunk-size line");
  return text.slice(0, -1);
}

async function readChunkEnd(reader: BufferedReader, sizeLine: string) {
  const end = new Uint8Array(1);
  for (const expected of [0x0d, 0x0a]) {
    if (await reader.read(end) === null) {
      throw new HttpProtocolError("the connection closed at the end of a chunk");
    }
    if (end[0] !== expected) {
      throw new HttpProtocolError(
        `chunk data longer than its size line says (${JSON.stringify(shorten(sizeLine))}), ` +
          "or not followed by CRLF (§7.1)",
      );
    }
  }
}

/** Options for {@linkcode encodeChunked}. */
export interface EncodeChunkedOptions {
  /** Extensions for each chunk, by index; index `chunks.length` is the last (zero) chunk. */
  extensions?: ChunkExtension[][];
  /** Trailer fields, after the last chunk. */
  trailers?: Fields;
}

/**
 * Encode `chunks` with the chunked transfer coding, the inverse of
 * {@linkcode readChunked}. Empty chunks are skipped (a zero size means "the end").
 *
 * @param chunks The body, in pieces.
 * @param options Extensions and trailers.
 * @returns The coded bytes.
 *
 * @example
 * ```ts
 * import { encodeChunked } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * const wire = encodeChunked([new Uint8Array([104, 105])], { extensions: [[["n", "1"]]] });
 * assert.equal(new TextDecoder().decode(wire), "2;n=1\r\nhi\r\n0\r\n\r\n");
 * ```
 */
export function encodeChunked(
  chunks: Uint8Array[],
  options: EncodeChunkedOptions = {},
): Uint8Array<ArrayBuffer> {
  const { extensions = [], trailers = [] } = options;
  const ext = (index: number) =>
    (extensions[index] ?? []).map(([name, value]) =>
      value === undefined
        ? `;${name}`
        : `;${name}=${TOKEN.test(value) ? value : `"${value.replace(/["\\]/g, "\\$&")}"`}`
    ).join("");
  const parts: Uint8Array[] = [];
  chunks.forEach((chunk, index) => {
    if (chunk.length === 0) return;
    parts.push(
      encoder.encode(`${chunk.length.toString(16)}${ext(index)}${CRLF}`),
      chunk,
      encoder.encode(CRLF),
    );
  });
  const trailer = trailers.map(([name, value]) => `${name}: ${value}${CRLF}`).join("");
  parts.push(encoder.encode(`0${ext(chunks.length)}${CRLF}${trailer}${CRLF}`));
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The response
// ---------------------------------------------------------------------------

/** A response read by {@linkcode readResponse}: the head at once, the body as a stream. */
export interface HttpResponse extends StatusLine {
  /** The header fields, in order. */
  headers: Fields;
  /** The body: read it (or {@linkcode HttpResponse.discard} it) before the next request on the connection. */
  body: ReadableStream<Uint8Array>;
  /** How the body is delimited, and why. */
  framing: Framing;
  /** Trailer fields of a chunked body; filled in once the body has been read. */
  trailers: Fields;
  /** Any 1xx responses that came first (100 Continue, 103 Early Hints). */
  informational: (StatusLine & { headers: Fields })[];
  /** Whether the connection may carry another request afterwards. */
  keepAlive: boolean;
  /** Resolves when the whole body has been read; rejects if that failed. */
  done: Promise<void>;
  /** The value of a header field (case-insensitive). */
  header(name: string): string | undefined;
  /** Read the whole body into memory. */
  bytes(): Promise<Uint8Array<ArrayBuffer>>;
  /** Read the whole body as UTF-8 text. */
  text(): Promise<string>;
  /** Read the body and throw it away. */
  discard(): Promise<void>;
}

/** Options for {@linkcode readResponse}. */
export interface ReadResponseOptions extends ResponseLimits {
  /** The request's method: a response to HEAD has no body. @default {"GET"} */
  method?: string;
  /** Called with a line for each step: `< ` head lines, `* ` decisions. */
  trace?: (line: string) => void;
}

/**
 * Read one response from `reader`: skip any 1xx interim responses, parse the
 * status line and the fields, decide the body's framing, and return with the
 * body as a stream that reads from `reader` as it is consumed.
 *
 * @param reader The connection's reader.
 * @param options The request's method, caps, and a trace callback.
 * @returns The response; its body is not read yet.
 * @throws {HttpProtocolError} If the head is malformed.
 *
 * @example A 100 Continue, then the answer
 * ```ts
 * import { readResponse } from "./http_raw_client.ts";
 * import { BufferedReader } from "../lib/buffered_reader.ts";
 * import assert from "node:assert/strict";
 *
 * const wire = new TextEncoder().encode(
 *   "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
 * );
 * let rest = wire; // a connection that has these bytes to give, then ends
 * const reader = new BufferedReader({
 *   read(buffer: Uint8Array) {
 *     if (rest.length === 0) return Promise.resolve(null);
 *     const n = Math.min(buffer.length, rest.length);
 *     buffer.set(rest.subarray(0, n));
 *     rest = rest.subarray(n);
 *     return Promise.resolve(n);
 *   },
 * });
 * const response = await readResponse(reader);
 * assert.equal(response.status, 200);
 * assert.equal(response.informational[0].status, 100);
 * assert.equal(await response.text(), "ok");
 * ```
 */
export async function readResponse(
  reader: BufferedReader,
  options: ReadResponseOptions = {},
): Promise<HttpResponse> {
  const { method = "GET", trace, ...limits } = options;
  const { maxLineLength = 8192, maxHeaderBytes = 65536 } = limits;
  const informational: HttpResponse["informational"] = [];
  // A server may send any number of 1xx responses first; bound how many we take.
  for (let interim = 0; interim <= 10; interim++) {
    let first;
    try {
      first = await reader.readLine({ maxLength: Math.min(maxLineLength, maxHeaderBytes) });
    } catch (error) {
      if (error instanceof FrameTooLargeError) {
        throw new HttpProtocolError(`a status line longer than ${error.limit} bytes`);
      }
      if (error instanceof UnexpectedEofError) {
        throw new HttpProtocolError("the connection closed in the middle of the status line");
      }
      throw error;
    }
    if (first === null) throw new NoResponseError();
    const statusText = decoder.decode(first);
    trace?.(`< ${visible(statusText)}`);
    if (first.includes(0x0d)) throw new HttpProtocolError("a bare CR in the status line");
    const statusLine = parseStatusLine(statusText);
    const headers = await readFields(reader, {
      ...limits,
      alreadyRead: first.length + 2,
      onLine: (line) => trace?.(`< ${visible(line)}`),
    });
    // 1xx: interim, the real answer follows (RFC 9110 §15.2). 101 Switching
    // Protocols is the last HTTP/1.1 on this connection, so it is final here.
    if (statusLine.status < 200 && statusLine.status !== 101) {
      trace?.(`* ${statusLine.status} is interim; the final response follows (RFC 9110 §15.2)`);
      informational.push({ ...statusLine, headers });
      continue;
    }
    const framing = bodyFraming(method.toUpperCase(), statusLine.status, headers);
    // HTTP/1.0 has no Transfer-Encoding, so a 1.0 message that carries one may
    // be framed differently by each party that handles it: read it, then close
    // the connection, as RFC 9112 §6.1 requires (the next response could be
    // one smuggled inside this one).
    const faulty = statusLine.version === "HTTP/1.0" &&
      fieldValue(headers, "transfer-encoding") !== undefined;
    const keepAlive = statusLine.status !== 101 && framing.kind !== "close" && !faulty &&
      isPersistent(statusLine.version, headers);
    trace?.(`* body: ${describeFraming(framing)}`);
    if (faulty) {
      trace?.("* Transfer-Encoding in an HTTP/1.0 response: closing after it (RFC 9112 §6.1)");
    }
    return makeResponse(
      reader,
      statusLine,
      headers,
      framing,
      keepAlive,
      informational,
      limits,
      trace,
    );
  }
  throw new HttpProtocolError("more than 10 interim (1xx) responses");
}

/** The connection closed before any byte of a response: on a reused connection, retry. */
export class NoResponseError extends Error {
  constructor() {
    super("the server closed the connection without answering");
    this.name = "NoResponseError";
  }
}

/** Describe a framing in a few words, for traces and transcripts. */
export function describeFraming(framing: Framing): string {
  switch (framing.kind) {
    case "none":
      return `none (${framing.rule})`;
    case "length":
      return `${framing.length} bytes (${framing.rule})`;
    case "chunked":
      return `chunked (${framing.rule})`;
    case "close":
      return `until close (${framing.rule})`;
  }
}

function makeResponse(
  reader: BufferedReader,
  statusLine: StatusLine,
  headers: Fields,
  framing: Framing,
  keepAlive: boolean,
  informational: HttpResponse["informational"],
  limits: ResponseLimits,
  trace?: (line: string) => void,
): HttpResponse {
  const trailers: Fields = [];
  let settle!: (error?: unknown) => void;
  const done = new Promise<void>((resolve, reject) => {
    settle = (error) => error === undefined ? resolve() : reject(error);
  });
  done.catch(() => {}); // reported to whoever reads the body

  // Each framing is a source of body pieces; the stream pulls one at a time,
  // so a 50 MiB body flows through in 64 KiB pieces, never whole.
  let pieces: AsyncGenerator<Uint8Array>;
  if (framing.kind === "none") {
    pieces = (async function* () {})();
  } else if (framing.kind === "length") {
    pieces = (async function* () {
      for (let left = framing.length; left > 0;) {
        const buffer = new Uint8Array(Math.min(left, 65536));
        const n = await reader.read(buffer);
        if (n === null) {
          throw new HttpProtocolError(
            `the connection closed after ${framing.length - left} of ${framing.length} body bytes`,
          );
        }
        left -= n;
        yield buffer.subarray(0, n);
      }
    })();
  } else if (framing.kind === "chunked") {
    pieces = (async function* () {
      for await (const event of readChunked(reader, limits)) {
        if (event.kind === "data") yield event.data;
        else if (event.kind === "size") {
          const last = event.size === 0 ? ": the last chunk" : "";
          trace?.(`* chunk-size line "${visible(event.line)}" = ${event.size} bytes${last}`);
        } else {
          trailers.push(...event.fields);
          for (const [name, value] of event.fields) trace?.(`* trailer: ${name}: ${value}`);
        }
      }
    })();
  } else {
    pieces = (async function* () {
      while (true) {
        const buffer = new Uint8Array(65536);
        const n = await reader.read(buffer);
        if (n === null) return;
        yield buffer.subarray(0, n);
      }
    })();
  }

  let finished = false;
  const body = new ReadableStream<Uint8Array>({
    async pull(controller) {
      try {
        const { value, done } = await pieces.next();
        if (done) {
          finished = true;
          controller.close();
          settle();
        } else controller.enqueue(value);
      } catch (error) {
        finished = true;
        controller.error(error);
        settle(error);
      }
    },
    cancel(reason) {
      if (!finished) settle(new Error("the body was cancelled before its end", { cause: reason }));
      finished = true;
    },
  }, { highWaterMark: 0 });

  const response: HttpResponse = {
    ...statusLine,
    headers,
    body,
    framing,
    trailers,
    informational,
    keepAlive,
    done,
    header: (name) => fieldValue(headers, name),
    async bytes() {
      const parts: Uint8Array[] = [];
      for await (const part of body) parts.push(part);
      const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
      let offset = 0;
      for (const part of parts) {
        out.set(part, offset);
        offset += part.length;
      }
      return out;
    },
    async text() {
      return decoder.decode(await response.bytes());
    },
    async discard() {
      for await (const _ of body) { /* dropped */ }
    },
  };
  if (framing.kind === "none") {
    // Nothing to read: the response is complete already.
    finished = true;
    body.cancel().catch(() => {});
    settle();
  }
  return response;
}

// ---------------------------------------------------------------------------
// A connection: one TCP (or TLS) stream, requests one after another
// ---------------------------------------------------------------------------

/** Where a URL points: what to connect to and what to put in Host. */
export interface Origin {
  /** `http:` or `https:`. */
  protocol: "http:" | "https:";
  /** The host to connect to (an IPv6 address without brackets). */
  hostname: string;
  port: number;
  /** The Host field's value: the host, and the port unless it is the scheme's default. */
  host: string;
  /** `http://host:port`, the key for reusing connections. */
  key: string;
}

/**
 * Split a URL into its origin and its request target (path and query; the
 * fragment stays with the client, RFC 9110 §4.2.4).
 *
 * @param url An absolute http or https URL.
 * @returns The origin and the origin-form target.
 * @throws {TypeError} If it is not an http(s) URL, or carries credentials.
 *
 * @example
 * ```ts
 * import { parseUrl } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * const { origin, target } = parseUrl("http://[::1]:8400/a?b=1#c");
 * assert.equal(origin.hostname, "::1");
 * assert.equal(origin.host, "[::1]:8400");
 * assert.equal(target, "/a?b=1");
 * ```
 */
export function parseUrl(url: string | URL): { origin: Origin; target: string; url: URL } {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new TypeError(`"${url}" is not a URL (try http://127.0.0.1:8080/)`);
  }
  if (parsed.protocol !== "http:" && parsed.protocol !== "https:") {
    throw new TypeError(`"${url}" is not an http:// or https:// URL`);
  }
  if (parsed.username || parsed.password) {
    throw new TypeError("credentials in the URL are not supported; send an Authorization header");
  }
  const protocol = parsed.protocol;
  const port = parsed.port ? Number(parsed.port) : protocol === "https:" ? 443 : 80;
  const hostname = parsed.hostname.replace(/^\[|\]$/g, "");
  const origin: Origin = {
    protocol,
    hostname,
    port,
    host: parsed.host,
    key: `${protocol}//${parsed.host}`,
  };
  return { origin, target: (parsed.pathname || "/") + parsed.search, url: parsed };
}

/** Options for {@linkcode HttpConnection.open}. */
export interface ConnectionOptions extends ResponseLimits {
  /** Give up when connecting takes, or a read or a write waits, this long, in ms. @default {30000} */
  timeout?: number;
  /** Extra CA certificates (PEM) to trust for https, such as a test server's own. */
  caCerts?: string[];
  /** Called with a line for each step (`>` sent, `<` received, `*` decided). */
  trace?: (line: string) => void;
}

/** A body sent as a stream (a file, say), with its length for Content-Length. */
export interface StreamBody {
  length: number;
  /** The bytes. A stream is read once: sending the body again needs `reopen`. */
  stream: ReadableStream<Uint8Array>;
  /** A fresh stream of the same bytes, for a redirect that sends the body again (307, 308). */
  reopen?: () => Promise<ReadableStream<Uint8Array>>;
}

/** A request to send on an {@linkcode HttpConnection}. */
export interface ConnectionRequest {
  method: string;
  /** The request target: `/path?query` (see {@linkcode parseUrl}). */
  target: string;
  headers?: Fields;
  /** The body, or a stream of it with its length (for Content-Length). */
  body?: Uint8Array | StreamBody;
}

/**
 * One HTTP/1.1 connection to one origin. Requests go one at a time: each
 * response's body must be read (or discarded) before the next request, since
 * it is the body's end that tells where the next response begins. After a
 * response that does not keep the connection alive, the connection closes.
 */
export class HttpConnection {
  /** The origin this connection talks to. */
  readonly origin: Origin;
  /** The local address (our ephemeral port tells connections apart). */
  readonly localAddr: Deno.NetAddr;
  #conn: Deno.Conn;
  #reader: BufferedReader;
  #writer: { write(data: Uint8Array): Promise<number> };
  #options: ConnectionOptions;
  #requests = 0;
  #busy: Promise<void> | undefined;
  #unread = false;
  #open = true;
  #reusable = true;

  private constructor(origin: Origin, conn: Deno.Conn, options: ConnectionOptions) {
    this.origin = origin;
    this.#conn = conn;
    this.localAddr = conn.localAddr as Deno.NetAddr;
    this.#options = options;
    const timeout = options.timeout ?? 30_000;
    // Every read waits at most `timeout`: a server that goes quiet mid-body
    // fails the request instead of hanging it.
    const source = {
      read: (buffer: Uint8Array) => timed(conn.read(buffer), timeout, () => this.close()),
    };
    this.#reader = new BufferedReader(source, { bufferSize: 65536 });
    // And every write: a server that never reads lets the socket's buffers
    // fill, and then a write waits for ever. Each write that moves some bytes
    // starts the clock again, so a slow upload is fine; a stalled one is not.
    this.#writer = {
      write: (data: Uint8Array) =>
        timed(
          conn.write(data),
          timeout,
          () => this.close(),
          `the server read none of the request for ${timeout / 1000} s`,
        ),
    };
  }

  /**
   * Connect to the origin of `url`: TCP for http, TLS for https.
   *
   * @param url Any URL on the origin.
   * @param options Timeout, CA certificates, limits and trace.
   * @returns The open connection.
   * @throws {Error} "cannot connect to ..." with the cause (refused, timed out, no permission).
   */
  static async open(url: string | URL, options: ConnectionOptions = {}): Promise<HttpConnection> {
    const { origin } = parseUrl(url);
    const { timeout = 30_000, caCerts, trace } = options;
    const { hostname, port } = origin;
    trace?.(`* connecting to ${origin.key} (${origin.protocol === "https:" ? "TLS" : "TCP"})`);
    let conn: Deno.Conn;
    try {
      const connecting: Promise<Deno.Conn> = origin.protocol === "https:"
        ? Deno.connectTls({ hostname, port, caCerts })
        : Deno.connect({ hostname, port });
      conn = await timed(connecting, timeout, () => connecting.then((c) => c.close(), () => {}));
      // TLS: finish the handshake now, so a certificate problem is a failure
      // to connect, not a mystery on the first write.
      if ("handshake" in conn) {
        const tls = conn as Deno.TlsConn;
        await timed(tls.handshake(), timeout, () => tls.close());
      }
    } catch (error) {
      if (error instanceof Deno.errors.ConnectionRefused) {
        // Said here rather than by describeError(), whose advice names --host and --port.
        throw new Error(
          `cannot connect to ${origin.key}: connection refused: nothing is listening there; ` +
            "check the URL's host and port, and that the server is running",
        );
      }
      throw new Error(`cannot connect to ${origin.key}`, { cause: error });
    }
    const connection = new HttpConnection(origin, conn, options);
    const local = connection.localAddr;
    trace?.(`* connected from ${local.hostname}:${local.port}`);
    return connection;
  }

  /** How many requests have been sent on this connection. */
  get requestCount(): number {
    return this.#requests;
  }

  /** Whether another request may be sent once the current response is read. */
  get reusable(): boolean {
    return this.#open && this.#reusable;
  }

  /**
   * Send a request and read the response's head. Waits for the previous
   * response's body to be read first.
   *
   * @param request Method, target, fields and body.
   * @returns The response, its body still to be read.
   * @throws {HttpProtocolError} If the response is malformed (the connection is closed).
   * @throws {Error} If the connection cannot carry another request.
   */
  async send(request: ConnectionRequest): Promise<HttpResponse> {
    const { method, target, headers = [], body } = request;
    const bytes = buildRequest({
      method,
      target,
      host: this.origin.host,
      headers,
      body: body instanceof Uint8Array ? body : undefined,
      contentLength: body === undefined ? undefined : body.length,
    });
    return await this.#exchange(bytes, method, body instanceof Uint8Array ? undefined : body);
  }

  /**
   * Send bytes exactly as given, for requests {@linkcode buildRequest} would
   * refuse (a malformed line, a huge field), and read the response.
   *
   * @param bytes The whole request.
   * @param method The method it uses, so that a HEAD response is read right.
   * @returns The response.
   */
  async sendRaw(bytes: Uint8Array, method = "GET"): Promise<HttpResponse> {
    return await this.#exchange(bytes, method);
  }

  async #exchange(
    bytes: Uint8Array,
    method: string,
    stream?: StreamBody,
  ): Promise<HttpResponse> {
    // The previous response's body must have been read to its end: that end
    // is where the next response will begin.
    if (this.#unread) {
      throw new Error("the previous response's body has not been read; read or discard() it first");
    }
    await this.#busy?.catch(() => {});
    if (!this.reusable) {
      throw new Error(`the connection to ${this.origin.key} is closed; open a new one`);
    }
    const { trace } = this.#options;
    this.#requests++;
    if (this.#requests > 1) {
      trace?.(
        `* reusing the connection from port ${this.localAddr.port} (request ${this.#requests})`,
      );
    }
    traceRequest(bytes, trace);
    let writeError: unknown;
    try {
      await writeAll(this.#writer, bytes);
      if (stream) await this.#writeStream(stream);
    } catch (error) {
      // The server may have answered already (413, say) and closed: read
      // that answer if it is there, or report the failed write.
      writeError = error;
    }
    let response: HttpResponse;
    try {
      response = await readResponse(this.#reader, { ...this.#options, method, trace });
    } catch (error) {
      this.close();
      throw writeError ?? error;
    }
    if (writeError !== undefined) response.keepAlive = false;
    this.#reusable = response.keepAlive;
    this.#unread = true;
    this.#busy = response.done.finally(() => this.#unread = false).then(
      () => {
        if (!response.keepAlive) {
          trace?.("* closing the connection (the response does not keep it alive)");
          this.close();
        }
      },
      () => this.close(),
    );
    return response;
  }

  async #writeStream(body: StreamBody) {
    let sent = 0;
    for await (const chunk of body.stream) {
      sent += chunk.length;
      if (sent > body.length) break;
      await writeAll(this.#writer, chunk);
    }
    if (sent !== body.length) {
      throw new Error(`the body was ${sent} bytes, not the ${body.length} announced`);
    }
    this.#options.trace?.(`> [${body.length} bytes of body]`);
  }

  /** Close the connection (idempotent). */
  close(): void {
    if (!this.#open) return;
    this.#open = false;
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }
}

// Wait for `promise` at most `ms`; on timeout, run `onTimeout` and reject with
// a TimeoutError (describeError turns it into one helpful line).
async function timed<T>(
  promise: Promise<T>,
  ms: number,
  onTimeout: () => void,
  message = `nothing from the server in ${ms / 1000} s`,
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      onTimeout();
      reject(new DOMException(message, "TimeoutError"));
    }, ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

// Show a request's head line by line, and its body as a count.
function traceRequest(bytes: Uint8Array, trace?: (line: string) => void) {
  if (!trace) return;
  const end = indexOfBytes(bytes, [13, 10, 13, 10]);
  const head = decoder.decode(bytes.subarray(0, end === -1 ? bytes.length : end + 4));
  for (const line of head.split("\r\n").slice(0, -1)) trace(`> ${visible(line)}`);
  const rest = end === -1 ? 0 : bytes.length - end - 4;
  if (rest > 0) trace(`> [${rest} bytes of body]`);
}

function indexOfBytes(haystack: Uint8Array, needle: number[]): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}

// Control characters shown as \xNN, so a trace line is always one line.
function visible(text: string): string {
  return text.replace(
    // deno-lint-ignore no-control-regex
    /[\x00-\x08\x0a-\x1f\x7f]/g,
    (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

function shorten(text: string, max = 60): string {
  return text.length > max ? `${text.slice(0, max)}...` : text;
}

// ---------------------------------------------------------------------------
// A client: connections by origin, redirects, retrying a stale connection
// ---------------------------------------------------------------------------

/** Options for {@linkcode HttpClient}. */
export type ClientOptions = ConnectionOptions;

/** A request for {@linkcode HttpClient.request}. */
export interface ClientRequest {
  /** @default {"GET"} */
  method?: string;
  headers?: Fields;
  body?: Uint8Array | StreamBody;
  /** Follow redirects (at most `maxRedirects`). @default {false} */
  follow?: boolean;
  /** @default {5} */
  maxRedirects?: number;
  /** Told about each redirect followed. */
  onRedirect?: (redirect: Redirect) => void;
}

/** One redirect followed by {@linkcode HttpClient.request}. */
export interface Redirect {
  status: number;
  reason: string;
  from: string;
  to: string;
  /** The method of the next request (303, and 301/302 after POST, switch to GET). */
  method: string;
}

/** A response from {@linkcode HttpClient.request}, with where it came from. */
export interface ClientResponse extends HttpResponse {
  /** The URL that gave this response (after any redirects). */
  url: string;
  /** The redirects followed to get here. */
  redirects: Redirect[];
  /** The connection that carried it. */
  connection: HttpConnection;
}

const REDIRECTS = [301, 302, 303, 307, 308];
// Safe to send twice: RFC 9110 §9.2.2. Only these are retried on a fresh connection.
const IDEMPOTENT = ["GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"];

/**
 * An HTTP client that keeps one connection per origin and reuses it while
 * the server allows (keep-alive), follows redirects when asked, and retries
 * an idempotent request once when a reused connection turns out to have been
 * closed by the server in the meantime (RFC 9112 §9.3.1).
 */
export class HttpClient {
  #options: ClientOptions;
  #pool = new Map<string, HttpConnection>();
  /** How many connections this client has opened. */
  connectionsOpened = 0;

  /** @param options Timeout, limits, CA certificates, trace. */
  constructor(options: ClientOptions = {}) {
    this.#options = options;
  }

  /**
   * Send a request to `url` and read the response's head.
   *
   * @param url The URL.
   * @param request Method, fields, body, redirect handling.
   * @returns The response, its body still to be read.
   * @throws {Error} Wrapping the cause with the method and URL.
   */
  async request(url: string | URL, request: ClientRequest = {}): Promise<ClientResponse> {
    const { follow = false, maxRedirects = 5, onRedirect } = request;
    let method = (request.method ?? "GET").toUpperCase();
    let headers = request.headers ?? [];
    let body = request.body;
    let current = parseUrl(url).url;
    const redirects: Redirect[] = [];
    // A loop is the same request again: the same method to the same URL. (A
    // POST to /form answered 303 -> /form is no loop: the GET that follows
    // is another request.)
    const seen = [`${method} ${current.href}`];
    while (true) {
      const response = await this.#once(current, method, headers, body);
      const location = response.header("location");
      if (!follow || !REDIRECTS.includes(response.status) || location === undefined) {
        return Object.assign(response, { url: current.href, redirects });
      }
      let next: URL;
      try {
        next = new URL(location, current);
      } catch {
        throw new Error(`${method} ${current.href}: the Location "${location}" is not a URL`);
      }
      // Read the redirect's own body so the connection can carry the next request.
      await response.discard();
      // RFC 9110 §15.4: 303 always becomes GET; 301 and 302 after POST do in
      // practice (§15.4.2, §15.4.3); 307 and 308 keep method and body.
      let nextMethod = method;
      if (
        (response.status === 303 && method !== "HEAD") ||
        ((response.status === 301 || response.status === 302) && method === "POST")
      ) {
        nextMethod = "GET";
      }
      const step = `${nextMethod} ${next.href}`;
      if (redirects.length === maxRedirects) {
        throw new Error(
          `too many redirects: gave up after ${maxRedirects} (${[...seen, step].join(" -> ")})`,
        );
      }
      if (seen.includes(step)) {
        throw new Error(`redirect loop: ${[...seen, step].join(" -> ")}`);
      }
      if (nextMethod !== method) {
        method = nextMethod;
        body = undefined;
        headers = headers.filter(([name]) => !/^content-/i.test(name));
      }
      if (body !== undefined && !(body instanceof Uint8Array)) {
        // The body goes again, but a stream is used up by the first request:
        // open it afresh, or stop here rather than announce its length and
        // send nothing.
        if (!body.reopen) {
          throw new Error(
            `${method} ${current.href}: not following the ${response.status} to ${next.href}: ` +
              "it needs the body sent again, and the streamed body has been used up",
          );
        }
        body = { ...body, stream: await body.reopen() };
      }
      if (parseUrl(next).origin.key !== parseUrl(current).origin.key) {
        // Credentials meant for one origin are not sent to another, nor a
        // Host field chosen for it.
        headers = headers.filter(([name]) => !/^(authorization|cookie|host)$/i.test(name));
      }
      const redirect = {
        status: response.status,
        reason: response.reason,
        from: current.href,
        to: next.href,
        method,
      };
      redirects.push(redirect);
      onRedirect?.(redirect);
      seen.push(step);
      current = next;
    }
  }

  async #once(
    url: URL,
    method: string,
    headers: Fields,
    body: ClientRequest["body"],
  ): Promise<ClientResponse> {
    const { origin, target } = parseUrl(url);
    const context = `${method} ${url.href}`;
    for (let attempt = 1;; attempt++) {
      const pooled = this.#pool.get(origin.key);
      // A failure to connect says which origin already ("cannot connect to ...").
      const connection = pooled?.reusable ? pooled : await this.#connect(url);
      try {
        const response = await connection.send({ method, target, headers, body });
        return Object.assign(response, { url: url.href, redirects: [], connection });
      } catch (error) {
        // A kept-alive connection the server closed just before our request
        // arrived: nothing was processed, so an idempotent request with a
        // replayable body may go again on a new connection, once.
        const stale = connection.requestCount > 1 && attempt === 1 &&
          IDEMPOTENT.includes(method) && !(body && !(body instanceof Uint8Array)) &&
          (error instanceof NoResponseError || error instanceof Deno.errors.ConnectionReset ||
            error instanceof Deno.errors.BrokenPipe);
        connection.close();
        if (!stale) throw new Error(context, { cause: error });
        this.#options.trace?.(
          "* the server had closed the idle connection; retrying on a new one (RFC 9112 §9.3.1)",
        );
      }
    }
  }

  async #connect(url: URL): Promise<HttpConnection> {
    const connection = await HttpConnection.open(url, this.#options);
    this.connectionsOpened++;
    this.#pool.get(connection.origin.key)?.close();
    this.#pool.set(connection.origin.key, connection);
    return connection;
  }

  /** Close every connection. */
  close(): void {
    for (const connection of this.#pool.values()) connection.close();
    this.#pool.clear();
  }
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  header: { type: "string", short: "H", multiple: true },
  data: { type: "string", short: "d" },
  "data-file": { type: "string" },
  follow: { type: "boolean", short: "L" },
  include: { type: "boolean", short: "i" },
  verbose: { type: "boolean", short: "v" },
  output: { type: "string", short: "o" },
  timeout: { type: "number", default: 30, min: 0.001 },
} as const;

/**
 * Turn `--header` values (`Name: value`) into request fields.
 *
 * @param values What each `--header`/`-H` was given, in order.
 * @returns The fields.
 * @throws {UsageError} If a value is not `Name: value` with a token for a name.
 *
 * @example
 * ```ts
 * import { parseHeaderFlags } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseHeaderFlags(["A: 1", "B:2"]), [["A", "1"], ["B", "2"]]);
 * ```
 */
export function parseHeaderFlags(values: string[]): Fields {
  return values.map((value) => {
    const colon = value.indexOf(":");
    if (colon < 1 || !TOKEN.test(value.slice(0, colon))) {
      throw new UsageError(`--header "${value}" is not 'Name: value'`);
    }
    return [value.slice(0, colon), value.slice(colon + 1).trim()];
  });
}

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const headers = parseHeaderFlags(flags.header);
  const [command, ...urls] = positionals;
  if (command === undefined) {
    if (headers.length > 0 || flags.data !== undefined || flags.output !== undefined) {
      throw new UsageError("flags need a command: get, head or post");
    }
    return await demo();
  }
  const trace = flags.verbose ? (line: string) => console.error(line) : undefined;
  const client = new HttpClient({ timeout: flags.timeout * 1000, trace });
  const out = flags.output === undefined
    ? Deno.stdout
    : await Deno.open(flags.output, { write: true, create: true, truncate: true });
  try {
    if (command === "get") {
      if (urls.length === 0) throw new UsageError("get needs at least one URL");
      for (const url of urls) checkUrl(url);
      for (const url of urls) {
        await fetchTo(client, out, url, { headers, follow: flags.follow }, flags.include);
      }
    } else if (command === "head") {
      if (urls.length !== 1) throw new UsageError("head takes one URL");
      checkUrl(urls[0]);
      const response = await client.request(urls[0], {
        method: "HEAD",
        headers,
        follow: flags.follow,
        onRedirect: reportRedirect,
      });
      await writeAll(out, encoder.encode(formatHead(response)));
    } else if (command === "post") {
      if (urls.length !== 1) throw new UsageError("post takes one URL");
      checkUrl(urls[0]);
      const body = await postBody(flags.data, flags["data-file"], headers);
      await fetchTo(
        client,
        out,
        urls[0],
        { method: "POST", headers, body, follow: flags.follow },
        flags.include,
      );
    } else {
      throw new UsageError(`unknown command "${command}"; expected get, head or post`);
    }
  } finally {
    client.close();
    if (out !== Deno.stdout) out.close();
  }
}

function checkUrl(url: string) {
  try {
    parseUrl(url);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
}

// The body for post: --data as text, or --data-file streamed from disk.
async function postBody(
  data: string | undefined,
  file: string | undefined,
  headers: Fields,
): Promise<ClientRequest["body"]> {
  if ((data === undefined) === (file === undefined)) {
    throw new UsageError("post needs exactly one of --data TEXT or --data-file FILE");
  }
  const typed = fieldValue(headers, "content-type") !== undefined;
  if (data !== undefined) {
    if (!typed) headers.push(["Content-Type", "text/plain; charset=utf-8"]);
    return encoder.encode(data);
  }
  const opened = await Deno.open(file!).catch((error) => {
    throw new Error(`cannot read --data-file ${file}`, { cause: error });
  });
  if (!typed) headers.push(["Content-Type", "application/octet-stream"]);
  return {
    length: (await opened.stat()).size,
    stream: opened.readable,
    // A 307 or 308 redirect sends the body again: the file is read again.
    reopen: async () => (await Deno.open(file!)).readable,
  };
}

// One request, its body streamed to `out` piece by piece.
async function fetchTo(
  client: HttpClient,
  out: { write(data: Uint8Array): Promise<number> },
  url: string,
  request: ClientRequest,
  include: boolean,
) {
  const response = await client.request(url, { ...request, onRedirect: reportRedirect });
  if (include) await writeAll(out, encoder.encode(formatHead(response) + CRLF));
  try {
    for await (const piece of response.body) await writeAll(out, piece);
  } catch (error) {
    throw new Error(`${request.method ?? "GET"} ${response.url}`, { cause: error });
  }
}

function reportRedirect(redirect: Redirect) {
  console.error(
    `${redirect.status} ${redirect.reason}: following to ${redirect.to} (${redirect.method})`,
  );
}

/**
 * The status line and header fields of a response, as text (CRLF line ends).
 *
 * @param response A status line and fields.
 * @returns The head as text, without the empty line that ends it.
 *
 * @example
 * ```ts
 * import { formatHead } from "./http_raw_client.ts";
 * import assert from "node:assert/strict";
 *
 * const head = formatHead({ version: "HTTP/1.1", status: 204, reason: "No Content", headers: [] });
 * assert.equal(head, "HTTP/1.1 204 No Content\r\n");
 * ```
 */
export function formatHead(response: StatusLine & { headers: Fields }): string {
  return [
    `${response.version} ${response.status} ${response.reason}`,
    ...response.headers.map(([name, value]) => `${name}: ${value}`),
  ].join(CRLF) + CRLF;
}

// ---------------------------------------------------------------------------
// The demo: our own raw server on a free port, several requests, one connection
// ---------------------------------------------------------------------------

async function demo(): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const server = serveHttp(listener, { log: () => {}, signal: stop.signal });
  const host = `127.0.0.1:${listener.addr.port}`;
  console.log(`server: ${listeningBanner("http", listener.addr)} (scripts/http_raw_server.ts)`);
  // The client's trace shows the wire; the demo turns it on where it teaches.
  let showWire = false;
  const client = new HttpClient({
    timeout: 5000,
    trace: (line) => showWire && !line.startsWith(">") && console.log(`  ${line}`),
  });
  try {
    console.log(
      "\n# GET /: the request's bytes as written, the response head as read (RFC 9112 §3, §4)",
    );
    const bytes = buildRequest({ method: "GET", target: "/", host });
    for (const line of decoder.decode(bytes).split("\r\n").slice(0, -1)) {
      console.log(`  > ${JSON.stringify(line + "\r\n")}`);
    }
    showWire = true;
    const home = await client.request(`http://${host}/`);
    showWire = false;
    console.log(`  ${summarize(home, await home.bytes())}`);

    console.log("\n# GET /chunked: a body in chunks, decoded step by step (RFC 9112 §7.1)");
    showWire = true;
    const chunked = await client.request(`http://${host}/chunked`);
    const text = await chunked.text();
    showWire = false;
    console.log(`  ${JSON.stringify(text)}`);

    console.log("\n# more requests on the same connection (keep-alive, RFC 9112 §9.3)");
    const requests: [string, ClientRequest][] = [
      ["/about", { method: "HEAD" }],
      ["/time", {}],
      ["/echo", {
        method: "POST",
        body: encoder.encode("hello, raw HTTP"),
        headers: [["Content-Type", "text/plain"]],
      }],
      ["/redirect", { follow: true }],
      ["/no-such-page", {}],
    ];
    for (const [path, request] of requests) {
      const response = await client.request(`http://${host}${path}`, request);
      const body = await response.bytes();
      const via = response.redirects.map((r) =>
        `${r.status} ${r.reason} -> ${new URL(r.to).pathname}, `
      )
        .join("");
      console.log(
        `  ${(request.method ?? "GET").padEnd(4)} ${path.padEnd(13)} ${via}` +
          `${summarize(response, body)}  [port ${response.connection.localAddr.port}, ` +
          `request ${response.connection.requestCount}]`,
      );
    }
    const total = 2 + requests.length + 1; // the redirect took two requests
    console.log(
      `\n${total} requests over ${client.connectionsOpened} connection, ` +
        `from local port ${home.connection.localAddr.port}`,
    );
  } finally {
    client.close();
    stop.abort();
    await server;
  }
  console.log("server: stopped; nothing left listening");
}

// "200 OK, 688 bytes by Content-Length: <h1> text" in one line.
function summarize(response: HttpResponse, body: Uint8Array): string {
  const how = response.framing.kind === "none"
    ? "no body"
    : `${body.length} bytes ${
      { length: "by Content-Length", chunked: "chunked", close: "until close" }[
        response.framing.kind
      ]
    }`;
  const text = decoder.decode(body);
  const shown = text.match(/<h1>(.*?)<\/h1>/)?.[1] ?? text.trim().split("\n")[0];
  return `${response.status} ${response.reason}, ${how}${
    shown ? `: ${JSON.stringify(shorten(shown, 40))}` : ""
  }`;
}

if (import.meta.main) runMain(USAGE, main);
