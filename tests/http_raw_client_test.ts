// scripts/http_raw_client.ts: the request bytes, the strict response parser,
// chunked decoding (a property: any chunking, extensions and trailers), and
// the client against servers no one here wrote: nginx, Python's http.server
// and Deno.serve, bodies byte-exact from 0 B to 50 MiB; keep-alive counted on
// the server's side; redirects; and malformed responses from a tiny server
// written to misbehave, each of which must end in one `error:` line.

import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import fc from "npm:fast-check@4.3.0";
import { BufferedReader } from "../lib/buffered_reader.ts";
import {
  bodyFraming,
  buildRequest,
  type ChunkEvent,
  encodeChunked,
  type Fields,
  HttpClient,
  HttpConnection,
  HttpProtocolError,
  isPersistent,
  parseChunkSize,
  parseFieldLine,
  parseHeaderFlags,
  parseStatusLine,
  parseUrl,
  readChunked,
  readResponse,
} from "../scripts/http_raw_client.ts";
import { serveHttp } from "../scripts/http_raw_server.ts";
import {
  DENO,
  freePort,
  makeTestCertificates,
  PEERS,
  peerTest,
  PYTHON,
  randomBytes,
  readHeader,
  runScript,
  scriptPath,
  startNginx,
  startProcess,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const encode = (text: string) => encoder.encode(text);
const MiB = 1024 * 1024;
const SIZES = [0, 1, MiB, 50 * MiB];

// ---------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------

/** A BufferedReader over `pieces`, one read() each (as a socket may deliver them). */
function readerOf(pieces: Uint8Array[], bufferSize = 16384): BufferedReader {
  const queue = pieces.map((piece) => piece.slice());
  const source = {
    read(buffer: Uint8Array): Promise<number | null> {
      while (queue.length > 0 && queue[0].length === 0) queue.shift();
      const piece = queue.shift();
      if (!piece) return Promise.resolve(null);
      const n = Math.min(buffer.length, piece.length);
      buffer.set(piece.subarray(0, n));
      if (n < piece.length) queue.unshift(piece.subarray(n));
      return Promise.resolve(n);
    },
  };
  return new BufferedReader(source, { bufferSize });
}

function concat(parts: Uint8Array[]): Uint8Array<ArrayBuffer> {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

function hex(bytes: Uint8Array): string {
  return createHash("sha256").update(bytes).digest("hex");
}

/** SHA-256 and length of a stream, without holding it whole. */
async function hashStream(stream: ReadableStream<Uint8Array>) {
  const hash = createHash("sha256");
  let length = 0;
  for await (const piece of stream) {
    hash.update(piece);
    length += piece.length;
  }
  return { sha256: hash.digest("hex"), length };
}

/** Parse a whole response from bytes; returns it with its body read. */
async function parse(wire: string | Uint8Array, method = "GET") {
  const reader = readerOf([typeof wire === "string" ? encode(wire) : wire]);
  const response = await readResponse(reader, { method });
  const body = decoder.decode(await response.bytes());
  return { response, body, reader };
}

/**
 * A server written to misbehave: for each connection, it reads the request
 * head, then runs `answer` (write canned bytes, close or not).
 */
function badServer(answer: (conn: Deno.Conn, index: number) => Promise<void>) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const conns = new Set<Deno.Conn>();
  const tasks: Promise<void>[] = [];
  const accepting = (async () => {
    let index = 0;
    try {
      for await (const conn of listener) {
        conns.add(conn);
        const i = index++;
        tasks.push((async () => {
          try {
            await readRequestHead(conn);
            await answer(conn, i);
          } catch {
            /* the client went away */
          } finally {
            conns.delete(conn);
            try {
              conn.close();
            } catch { /* closed already */ }
          }
        })());
      }
    } catch { /* listener closed */ }
  })();
  return {
    url: `http://127.0.0.1:${listener.addr.port}`,
    async close() {
      listener.close();
      for (const conn of conns) {
        try {
          conn.close();
        } catch { /* closed already */ }
      }
      await accepting;
      await Promise.all(tasks);
    },
  };
}

// Read until the empty line that ends a request head (bounded: 64 KiB).
async function readRequestHead(conn: Deno.Conn): Promise<string> {
  let text = "";
  const buffer = new Uint8Array(4096);
  while (!text.includes("\r\n\r\n") && text.length < 65536) {
    const n = await conn.read(buffer);
    if (n === null) break;
    text += decoder.decode(buffer.subarray(0, n));
  }
  return text;
}

function cannedServer(wire: string | Uint8Array) {
  return badServer(async (conn) => {
    await conn.write(typeof wire === "string" ? encode(wire) : wire);
  });
}

/** Run the client's CLI, its stdout hashed as it streams (for large bodies). */
async function runHashed(
  args: string[],
  flags = readHeader(scriptPath("http_raw_client")).runFlags,
) {
  const child = new Deno.Command(DENO, {
    args: ["run", "--no-prompt", ...flags, scriptPath("http_raw_client"), ...args],
    stdout: "piped",
    stderr: "piped",
    env: { NO_COLOR: "1" },
  }).spawn();
  const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
  const [out, err, status] = await Promise.all([
    hashStream(child.stdout),
    new Response(child.stderr).text(),
    child.status,
  ]);
  clearTimeout(timer);
  return { ...out, stderr: err, code: status.code };
}

/** Test files of each size in a fresh folder that a server can read. */
async function makeFiles(): Promise<{ dir: string; files: Map<number, Uint8Array> }> {
  const dir = await Deno.makeTempDir({ prefix: "wirebook_http_" });
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/www`, { mode: 0o755 });
  await Deno.chmod(`${dir}/www`, 0o755);
  const files = new Map<number, Uint8Array>();
  for (const size of SIZES) {
    const bytes = randomBytes(size);
    files.set(size, bytes);
    await Deno.writeFile(`${dir}/www/${size}.bin`, bytes, { mode: 0o644 });
  }
  return { dir, files };
}

// ---------------------------------------------------------------------------
// The request's bytes
// ---------------------------------------------------------------------------

Deno.test("buildRequest() writes the request line, Host first, fields, CRLFs and the body", () => {
  const bytes = buildRequest({
    method: "POST",
    target: "/echo?x=1",
    host: "127.0.0.1:8080",
    headers: [["Content-Type", "text/plain"], ["X-Two", " spaced "]],
    body: encode("hello"),
  });
  assert.equal(
    decoder.decode(bytes),
    "POST /echo?x=1 HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: text/plain\r\n" +
      "X-Two: spaced\r\nContent-Length: 5\r\n\r\nhello",
  );
  const get = buildRequest({ method: "GET", target: "/", host: "example.com" });
  assert.equal(decoder.decode(get), "GET / HTTP/1.1\r\nHost: example.com\r\n\r\n");
  const empty = buildRequest({ method: "POST", target: "/", host: "h", body: new Uint8Array() });
  assert.match(decoder.decode(empty), /Content-Length: 0\r\n\r\n$/);
  // A Host among the fields replaces the URL's, still first: one Host (RFC 9112 §3.2).
  const named = buildRequest({
    method: "GET",
    target: "/",
    host: "127.0.0.1:8080",
    headers: [["Accept", "*/*"], ["host", "example.test"]],
  });
  assert.equal(
    decoder.decode(named),
    "GET / HTTP/1.1\r\nHost: example.test\r\nAccept: */*\r\n\r\n",
  );
  assert.throws(
    () =>
      buildRequest({
        method: "GET",
        target: "/",
        host: "h",
        headers: [["Host", "a"], ["Host", "b"]],
      }),
    /more than one Host/,
  );
});

Deno.test("buildRequest() refuses CR/LF in values (request splitting), bad names and methods", () => {
  const base = { method: "GET", target: "/", host: "h" };
  assert.throws(
    () => buildRequest({ ...base, headers: [["X", "a\r\nEvil: 1"]] }),
    /request splitting/,
  );
  assert.throws(() => buildRequest({ ...base, headers: [["Bad Name", "v"]] }), /not a token/);
  assert.throws(() => buildRequest({ ...base, method: "GET /x" }), /not a token/);
  assert.throws(() => buildRequest({ ...base, target: "/a b" }), /visible ASCII/);
  assert.throws(() => buildRequest({ ...base, host: "h\r\nX: y" }), /request splitting/);
});

Deno.test("parseUrl() splits origin and target, defaults ports, keeps IPv6 brackets in Host", () => {
  const a = parseUrl("http://127.0.0.1:8080/a/b?q=1#frag");
  assert.equal(a.target, "/a/b?q=1");
  assert.deepEqual(
    { ...a.origin },
    {
      protocol: "http:",
      hostname: "127.0.0.1",
      port: 8080,
      host: "127.0.0.1:8080",
      key: "http://127.0.0.1:8080",
    },
  );
  const b = parseUrl("https://example.com");
  assert.equal(b.origin.port, 443);
  assert.equal(b.origin.host, "example.com");
  assert.equal(b.target, "/");
  const c = parseUrl("http://[::1]:81/");
  assert.equal(c.origin.hostname, "::1");
  assert.equal(c.origin.host, "[::1]:81");
  assert.throws(() => parseUrl("ftp://example.com/"), /not an http/);
  assert.throws(() => parseUrl("http://user:pw@example.com/"), /credentials/);
  assert.throws(() => parseUrl("nonsense"), /not a URL/);
});

Deno.test("parseHeaderFlags() accepts Name: value and refuses anything else", () => {
  assert.deepEqual(parseHeaderFlags(["X-A: 1", "X-B:2", "Accept: */*"]), [
    ["X-A", "1"],
    ["X-B", "2"],
    ["Accept", "*/*"],
  ]);
  assert.throws(() => parseHeaderFlags(["no colon"]), /not 'Name: value'/);
  assert.throws(() => parseHeaderFlags(["Bad Name: x"]), /not 'Name: value'/);
});

// ---------------------------------------------------------------------------
// Parsing the response head
// ---------------------------------------------------------------------------

Deno.test("parseStatusLine() takes HTTP/1.x, a code 100-599, any reason (even none)", () => {
  assert.deepEqual(parseStatusLine("HTTP/1.1 200 OK"), {
    version: "HTTP/1.1",
    status: 200,
    reason: "OK",
  });
  assert.equal(parseStatusLine("HTTP/1.0 404 Not  Found ").reason, "Not  Found ");
  assert.equal(parseStatusLine("HTTP/1.1 204 ").reason, "");
  assert.equal(parseStatusLine("HTTP/1.1 204").reason, ""); // the missing SP is tolerated
  for (
    const bad of [
      "HTTP/1.1 2000 OK",
      "HTTP/1.1 20 OK",
      "http/1.1 200 OK",
      "HTTP/1.1  200 OK",
      "ICY 200 OK",
      "",
    ]
  ) {
    assert.throws(() => parseStatusLine(bad), HttpProtocolError, bad);
  }
  assert.throws(() => parseStatusLine("HTTP/2.0 200 OK"), /unsupported version/);
  assert.throws(() => parseStatusLine("HTTP/1.1 600 Odd"), /outside 100-599/);
  assert.throws(() => parseStatusLine("HTTP/1.1 099 Low"), /outside 100-599/);
});

Deno.test("parseFieldLine() trims the value's whitespace; a space before the colon is an error", () => {
  assert.deepEqual(parseFieldLine("Content-Type:  text/html \t"), ["Content-Type", "text/html"]);
  assert.deepEqual(parseFieldLine("X-Empty:"), ["X-Empty", ""]);
  assert.deepEqual(parseFieldLine("X-Colon: a:b"), ["X-Colon", "a:b"]);
  assert.throws(() => parseFieldLine("Name : v"), /whitespace before its colon/);
  assert.throws(() => parseFieldLine("no colon here"), /has no colon/);
  assert.throws(() => parseFieldLine(": v"), /invalid name/);
  assert.throws(() => parseFieldLine("Bad(name): v"), /invalid name/);
});

Deno.test("bodyFraming() follows RFC 9112 §6.3 in order", () => {
  const cl: Fields = [["Content-Length", "10"]];
  const te: Fields = [["Transfer-Encoding", "chunked"]];
  assert.equal(bodyFraming("HEAD", 200, cl).kind, "none");
  assert.equal(bodyFraming("GET", 204, cl).kind, "none");
  assert.equal(bodyFraming("GET", 304, cl).kind, "none");
  assert.equal(bodyFraming("GET", 100, []).kind, "none");
  assert.equal(bodyFraming("CONNECT", 200, cl).kind, "none");
  assert.equal(bodyFraming("CONNECT", 407, cl).kind, "length");
  assert.throws(() => bodyFraming("GET", 200, [...cl, ...te]), /both Transfer-Encoding/);
  assert.equal(bodyFraming("GET", 200, [["transfer-encoding", "Chunked"]]).kind, "chunked");
  assert.throws(() => bodyFraming("GET", 200, [["Transfer-Encoding", "gzip, chunked"]]), /only/);
  assert.deepEqual(
    { ...bodyFraming("GET", 200, cl), rule: "" },
    { kind: "length", length: 10, rule: "" },
  );
  assert.equal(bodyFraming("GET", 200, [["Content-Length", "7, 7"]]).kind, "length");
  assert.equal(
    bodyFraming("GET", 200, [["Content-Length", "7"], ["Content-Length", "7"]]).kind,
    "length",
  );
  for (const bad of ["7, 8", "-1", "1e3", "", "0x10", "12345678901234567"]) {
    assert.throws(() => bodyFraming("GET", 200, [["Content-Length", bad]]), /Content-Length/, bad);
  }
  assert.equal(bodyFraming("GET", 200, []).kind, "close");
  assert.equal(bodyFraming("GET", 404, [["Content-Type", "text/plain"]]).kind, "close");
});

Deno.test("isPersistent(): HTTP/1.1 unless close, HTTP/1.0 only with keep-alive (§9.3)", () => {
  assert.equal(isPersistent("HTTP/1.1", []), true);
  assert.equal(isPersistent("HTTP/1.1", [["Connection", "Close"]]), false);
  assert.equal(isPersistent("HTTP/1.1", [["Connection", "upgrade, close"]]), false);
  assert.equal(isPersistent("HTTP/1.0", []), false);
  assert.equal(isPersistent("HTTP/1.0", [["connection", "Keep-Alive"]]), true);
});

Deno.test("readResponse() accepts bare LF endings and unfolds obs-fold, as a user agent must", async () => {
  const { response, body } = await parse(
    "HTTP/1.1 200 OK\nX-Folded: one\r\n  two\r\n\tthree\nContent-Length: 2\n\nhi",
  );
  assert.equal(response.header("x-folded"), "one two three");
  assert.equal(body, "hi");
});

Deno.test("readResponse() skips 1xx interim responses and keeps them", async () => {
  const { response, body } = await parse(
    "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a.css>\r\n\r\n" +
      "HTTP/1.1 201 Created\r\nContent-Length: 3\r\n\r\nnew",
  );
  assert.equal(response.status, 201);
  assert.equal(body, "new");
  assert.deepEqual(response.informational.map((r) => r.status), [100, 103]);
  assert.equal(fieldOf(response.informational[1].headers, "link"), "</a.css>");
});

function fieldOf(fields: Fields, name: string) {
  return fields.find(([n]) => n.toLowerCase() === name)?.[1];
}

Deno.test("readResponse() reads no body for HEAD, 204 and 304, and leaves the next response intact", async () => {
  for (
    const [method, status] of [["HEAD", 200], ["GET", 204], ["GET", 304]] as [string, number][]
  ) {
    const next = "HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\nnext";
    const { response, body, reader } = await parse(
      `HTTP/1.1 ${status} X\r\nContent-Length: 10\r\n\r\n${next}`,
      method,
    );
    assert.equal(body, "", `${method} ${status}`);
    assert.equal(response.framing.kind, "none");
    const second = await readResponse(reader);
    assert.equal(await second.text(), "next");
  }
});

Deno.test("readResponse() reads a close-delimited body to the end and does not keep the connection", async () => {
  const { response, body } = await parse("HTTP/1.0 200 OK\r\n\r\nall of it\nuntil close");
  assert.equal(response.framing.kind, "close");
  assert.equal(body, "all of it\nuntil close");
  assert.equal(response.keepAlive, false);
});

Deno.test("readResponse() decodes chunked bodies with extensions and trailers", async () => {
  const { response, body } = await parse(
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-Sum\r\n\r\n" +
      '5;name=value\r\nhello\r\n7 ; q="a;b\\"c"\r\n, world\r\n0\r\nX-Sum: 12\r\n\r\n',
  );
  assert.equal(body, "hello, world");
  assert.deepEqual(response.trailers, [["X-Sum", "12"]]);
  assert.equal(response.keepAlive, true);
});

Deno.test("parseChunkSize() reads hex, extensions, quoted values; rejects garbage", () => {
  assert.deepEqual(parseChunkSize("1A"), { size: 26, extensions: [] });
  assert.deepEqual(parseChunkSize('00ff;a;b=c ; d = "x y\\"z"'), {
    size: 255,
    extensions: [["a", undefined], ["b", "c"], ["d", 'x y"z']],
  });
  assert.throws(() => parseChunkSize("zz"), /hex digits/);
  assert.throws(() => parseChunkSize(" 1"), /hex digits/);
  assert.throws(() => parseChunkSize("1 x"), /malformed extension/);
  assert.throws(() => parseChunkSize("1;"), /malformed extension/);
  assert.throws(() => parseChunkSize("fffffffffffffff"), /too large/);
});

const tokenArbitrary = fc.stringMatching(/^[a-zA-Z0-9!#$%&'*+.^_`|~-]{1,8}$/);
const extensionArbitrary = fc.tuple(
  tokenArbitrary,
  fc.option(fc.oneof(tokenArbitrary, fc.stringMatching(/^[ -~]{0,10}$/)), { nil: undefined }),
);

Deno.test("chunked: encodeChunked() then readChunked() gives back the body, extensions and trailers (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.uint8Array({ minLength: 0, maxLength: 300 }), { maxLength: 8 }),
      fc.array(fc.array(extensionArbitrary, { maxLength: 3 }), { maxLength: 9 }),
      fc.array(
        fc.tuple(
          tokenArbitrary,
          fc.stringMatching(/^[!-~]([ -~]{0,20}[!-~])?$/),
        ),
        { maxLength: 4 },
      ),
      fc.array(fc.nat(), { maxLength: 10 }),
      async (chunks, extensions, trailers, cuts) => {
        const wire = encodeChunked(chunks, { extensions, trailers });
        // Any split of the wire into reads; and bytes after the body stay unread.
        const full = concat([wire, encode("NEXT")]);
        const points = [...new Set(cuts.map((c) => c % (full.length + 1)))].sort((a, b) => a - b);
        const pieces: Uint8Array[] = [];
        let start = 0;
        for (const point of [...points, full.length]) {
          pieces.push(full.slice(start, point));
          start = point;
        }
        const reader = readerOf(pieces, 7);
        const events: ChunkEvent[] = [];
        for await (const event of readChunked(reader)) events.push(event);
        const data = concat(events.flatMap((e) => e.kind === "data" ? [e.data] : []));
        assert.deepEqual(data, concat(chunks));
        const sent = chunks.map((c, i) => [c, extensions[i] ?? []] as const)
          .filter(([c]) => c.length > 0).map(([, e]) => e);
        sent.push(extensions[chunks.length] ?? []);
        const got = events.flatMap((e) => e.kind === "size" ? [e.extensions] : []);
        assert.deepEqual(got, sent);
        const last = events.at(-1);
        assert.ok(last?.kind === "trailers");
        assert.deepEqual(last.fields, trailers);
        assert.equal(decoder.decode(await reader.readExactly(4)), "NEXT");
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("readResponse() caps the head: line length, total size, field count", async () => {
  const many = Array.from({ length: 101 }, (_, i) => `X-${i}: v\r\n`).join("");
  await assert.rejects(parse(`HTTP/1.1 200 OK\r\n${many}\r\n`), /more than 100 header fields/);
  const long = `X-Long: ${"a".repeat(9000)}\r\n`;
  await assert.rejects(parse(`HTTP/1.1 200 OK\r\n${long}\r\n`), /longer than 8192 bytes/);
  const big = Array.from({ length: 20 }, (_, i) => `X-${i}: ${"b".repeat(4000)}\r\n`).join("");
  await assert.rejects(parse(`HTTP/1.1 200 OK\r\n${big}\r\n`), /section is over 65536 bytes/);
  const reader = readerOf([encode(`HTTP/1.1 200 OK\r\nA: ${"c".repeat(100)}\r\n\r\n`)]);
  await assert.rejects(readResponse(reader, { maxLineLength: 50 }), /longer than 50 bytes/);
});

// ---------------------------------------------------------------------------
// Malformed responses, end to end: one `error:` line, exit 1
// ---------------------------------------------------------------------------

const MALFORMED: [string, string | Uint8Array, RegExp][] = [
  ["not HTTP at all", "HELLO THERE\r\n\r\n", /status line "HELLO THERE"/],
  ["HTTP/2 on an HTTP/1.1 connection", "HTTP/2.0 200 OK\r\n\r\n", /unsupported version/],
  ["a status code out of range", "HTTP/1.1 999 Odd\r\n\r\n", /outside 100-599/],
  [
    "Content-Length and Transfer-Encoding both",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
    /both Transfer-Encoding and Content-Length/,
  ],
  [
    "a non-numeric Content-Length",
    "HTTP/1.1 200 OK\r\nContent-Length: five\r\n\r\nhello",
    /invalid Content-Length/,
  ],
  [
    "two different Content-Lengths",
    "HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!",
    /invalid Content-Length "5, 6"/,
  ],
  [
    "a transfer coding other than chunked",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\nxx",
    /decodes only "chunked"/,
  ],
  ["a field line without a colon", "HTTP/1.1 200 OK\r\nBroken\r\n\r\n", /has no colon/],
  [
    "whitespace before a colon",
    "HTTP/1.1 200 OK\r\nContent-Length : 0\r\n\r\n",
    /whitespace before its colon/,
  ],
  ["a bare CR", "HTTP/1.1 200 OK\r\nX-A: b\rc\r\n\r\n", /bare CR/],
  [
    "too many fields",
    `HTTP/1.1 200 OK\r\n${"X: y\r\n".repeat(101)}\r\n`,
    /more than 100 header fields/,
  ],
  [
    "a field line too long",
    `HTTP/1.1 200 OK\r\nX: ${"y".repeat(10000)}\r\n\r\n`,
    /longer than 8192 bytes/,
  ],
  [
    "a bad chunk size",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n",
    /does not start with hex digits/,
  ],
  [
    "a chunk longer than its size",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n",
    /chunk data longer than its size/,
  ],
  [
    "a chunk-size line ending in LF alone",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n",
    /ends in LF alone, not CRLF/,
  ],
  [
    "chunk data followed by LF alone",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\n0\r\n\r\n",
    /not followed by CRLF/,
  ],
  [
    "a body cut short",
    "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nhello",
    /closed after 5 of 10 body bytes/,
  ],
  [
    "a chunked body cut short",
    "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\na\r\nhello",
    /closed inside a chunk/,
  ],
  ["no answer at all", "", /closed the connection without answering/],
  ["a head cut short", "HTTP/1.1 200 OK\r\nContent-Le", /closed in the middle of a line/],
];

for (const [what, wire, message] of MALFORMED) {
  Deno.test(`http_raw_client get: ${what} is one error: line, exit 1`, async () => {
    const server = cannedServer(wire);
    try {
      const result = await runScript("http_raw_client", ["get", `${server.url}/x`]);
      const lines = result.stderr.trim().split("\n");
      assert.equal(result.code, 1, result.stderr);
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0], /^error: GET http:\/\/127\.0\.0\.1:\d+\/x: /);
      assert.match(lines[0], message);
    } finally {
      await server.close();
    }
  });
}

Deno.test("http_raw_client: a server that never answers times out with one error: line", async () => {
  // It reads the request, then waits for the client to leave.
  const server = badServer(async (conn) => void await readRequestHead(conn));
  try {
    const result = await runScript("http_raw_client", ["get", server.url, "--timeout", "0.3"]);
    assert.equal(result.code, 1);
    assert.match(result.stderr.trim(), /^error: .*timed out.*nothing from the server in 0.3 s/);
    assert.equal(result.stderr.trim().split("\n").length, 1);
  } finally {
    await server.close();
  }
});

Deno.test("http_raw_client: a server that never reads the upload times out with one error: line", async () => {
  // It reads the request head, then nothing more: the body fills the sockets' buffers.
  const release = Promise.withResolvers<void>();
  const server = badServer(() => release.promise);
  const dir = await Deno.makeTempDir({ prefix: "wirebook_http_cli_" });
  try {
    const input = `${dir}/big.bin`;
    await Deno.writeFile(input, new Uint8Array(32 * MiB));
    const result = await runScript(
      "http_raw_client",
      ["post", `${server.url}/upload`, "--data-file", input, "--timeout", "0.3"],
      { flags: ["--allow-net=127.0.0.1", `--allow-read=${input}`], timeout: 20_000 },
    );
    assert.equal(result.code, 1, result.stderr);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    assert.match(
      result.stderr,
      /^error: POST http:\/\/127\.0\.0\.1:\d+\/upload: timed out \(the server read none of the request for 0\.3 s\)/,
    );
  } finally {
    release.resolve();
    await server.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("http_raw_client: connection refused, a missing permission, a bad URL", async () => {
  const port = freePort();
  const refused = await runScript("http_raw_client", ["get", `http://127.0.0.1:${port}/`]);
  assert.equal(refused.code, 1);
  assert.match(
    refused.stderr,
    /^error: cannot connect to http:\/\/127\.0\.0\.1:\d+: connection refused/,
  );
  const denied = await runScript("http_raw_client", ["get", `http://localhost:${port}/`]);
  assert.equal(denied.code, 1);
  assert.match(denied.stderr, /^error: .*--allow-net=localhost/);
  const ftp = await runScript("http_raw_client", ["get", "ftp://127.0.0.1/"]);
  assert.equal(ftp.code, 2);
  assert.match(ftp.stderr, /^error: .*not an http/);
  const none = await runScript("http_raw_client", ["head"]);
  assert.equal(none.code, 2);
  const post = await runScript("http_raw_client", ["post", "http://127.0.0.1:1/"]);
  assert.equal(post.code, 2);
  assert.match(post.stderr, /--data/);
});

// ---------------------------------------------------------------------------
// Keep-alive and a stale connection
// ---------------------------------------------------------------------------

Deno.test("HttpClient retries once on a new connection when the server closed the kept-alive one", async () => {
  // The first connection answers one request (keep-alive, by HTTP/1.1's
  // default) and then closes anyway, as servers do when their idle timeout
  // fires just as the next request is on its way.
  const server = badServer(async (conn, index) => {
    const body = `answer from connection ${index}`;
    await conn.write(encode(`HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n\r\n${body}`));
    if (index > 0) await readRequestHead(conn); // later connections stay until the client leaves
  });
  const trace: string[] = [];
  const client = new HttpClient({ trace: (line) => trace.push(line) });
  try {
    const first = await client.request(`${server.url}/a`);
    assert.equal(await first.text(), "answer from connection 0");
    await new Promise((resolve) => setTimeout(resolve, 100)); // the server's FIN arrives
    const second = await client.request(`${server.url}/b`);
    assert.equal(await second.text(), "answer from connection 1");
    assert.equal(client.connectionsOpened, 2);
    assert.ok(trace.some((line) => line.includes("retrying on a new one")), trace.join("\n"));
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("HttpClient closes the connection after an HTTP/1.0 response with Transfer-Encoding (RFC 9112 §6.1)", async () => {
  // It answers every request on a connection, and asks to keep it alive.
  const server = badServer(async (conn) => {
    do {
      await conn.write(encode(
        "HTTP/1.0 200 OK\r\nTransfer-Encoding: chunked\r\nConnection: keep-alive\r\n\r\n" +
          "3\r\nhi\n\r\n0\r\n\r\n",
      ));
    } while (await readRequestHead(conn) !== "");
  });
  const trace: string[] = [];
  const client = new HttpClient({ trace: (line) => trace.push(line) });
  try {
    for (const path of ["/a", "/b"]) {
      const response = await client.request(`${server.url}${path}`);
      assert.equal(await response.text(), "hi\n");
      assert.equal(response.keepAlive, false);
    }
    assert.equal(client.connectionsOpened, 2);
    assert.ok(!trace.some((line) => line.includes("reusing")), trace.join("\n"));
  } finally {
    client.close();
    await server.close();
  }
});

Deno.test("HttpConnection refuses a second request before the body is read, and after Connection: close", async () => {
  const server = badServer(async (conn) => {
    await conn.write(encode("HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok"));
  });
  try {
    const connection = await HttpConnection.open(server.url);
    const response = await connection.send({ method: "GET", target: "/" });
    await assert.rejects(connection.send({ method: "GET", target: "/" }), /has not been read/);
    assert.equal(response.keepAlive, false);
    assert.equal(await response.text(), "ok");
    await assert.rejects(connection.send({ method: "GET", target: "/" }), /is closed/);
    connection.close();
  } finally {
    await server.close();
  }
});

// ---------------------------------------------------------------------------
// The raw server of this project: the demo, 100 Continue, keep-alive
// ---------------------------------------------------------------------------

Deno.test("http_raw_client: the demo fetches pages from the raw server over one connection", async () => {
  const result = await runScript("http_raw_client");
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^ {2}> "GET \/ HTTP\/1\.1\\r\\n"$/m);
  assert.match(result.stdout, /chunk-size line "0" = 0 bytes: the last chunk/);
  assert.match(result.stdout, /302 Found -> \/about, 200 OK/);
  assert.match(result.stdout, /^8 requests over 1 connection/m);
  assert.match(result.stdout, /server: stopped; nothing left listening/);
});

Deno.test("HttpClient and serveHttp: 100 Continue is skipped, chunks decoded, one connection throughout", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const log: string[] = [];
  const server = serveHttp(listener, { log: (line) => log.push(line), signal: stop.signal });
  const base = `http://127.0.0.1:${listener.addr.port}`;
  const client = new HttpClient();
  try {
    const body = randomBytes(100_000);
    const echoed = await client.request(`${base}/echo`, {
      method: "PUT",
      headers: [["Expect", "100-continue"]],
      body,
    });
    assert.deepEqual(echoed.informational.map((r) => r.status), [100]);
    assert.equal(hex(await echoed.bytes()), hex(body));
    const chunked = await client.request(`${base}/chunked`);
    assert.equal(chunked.framing.kind, "chunked");
    assert.equal(await chunked.text(), "This response came in chunks.\n");
    const head = await client.request(`${base}/`, { method: "HEAD" });
    assert.ok(Number(head.header("content-length")) > 0);
    assert.equal((await head.bytes()).length, 0);
    assert.equal(client.connectionsOpened, 1);
  } finally {
    client.close();
    stop.abort();
    await server;
  }
  const ports = new Set(log.map((line) => line.split(" ")[0]));
  assert.equal(ports.size, 1, log.join("\n"));
});

Deno.test("http_raw_client get -H 'Host: ...': one Host field, which the raw server accepts", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const log: string[] = [];
  const server = serveHttp(listener, { log: (line) => log.push(line), signal: stop.signal });
  try {
    const url = `http://127.0.0.1:${listener.addr.port}/about`;
    const result = await runScript("http_raw_client", [
      "get",
      "-v",
      "-H",
      "Host: example.test",
      url,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /<h1>About<\/h1>/);
    assert.deepEqual(result.stderr.match(/^> Host: .*$/gm), ["> Host: example.test"]);
  } finally {
    stop.abort();
    await server;
  }
  assert.match(log.join("\n"), /"GET \/about HTTP\/1\.1" 200/);
});

// ---------------------------------------------------------------------------
// Deno.serve: chunked (a stream of unknown length) and Content-Length, keep-alive
// ---------------------------------------------------------------------------

function startDenoServe(files: Map<number, Uint8Array<ArrayBuffer>>) {
  const ports = new Set<number>();
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    async (request, info) => {
      ports.add(info.remoteAddr.port);
      const url = new URL(request.url);
      const [, kind, size] = url.pathname.split("/");
      const bytes = files.get(Number(size));
      if (kind === "echo") return new Response(await request.arrayBuffer());
      if (kind === "method") {
        return new Response(`${request.method} ${await request.text()}`);
      }
      if (kind === "hop") {
        const left = Number(size);
        if (left === 0) return new Response("arrived");
        return new Response(null, { status: 302, headers: { location: `/hop/${left - 1}` } });
      }
      if (kind === "loop") {
        return new Response(null, {
          status: 301,
          headers: { location: size === "a" ? "/loop/b" : "/loop/a" },
        });
      }
      if (kind === "see-other") {
        return new Response(null, { status: 303, headers: { location: "/method" } });
      }
      if (kind === "form") {
        // Post/Redirect/Get: a POST is answered 303 to the same URL, which a GET then shows.
        if (request.method !== "POST") return new Response("the form");
        await request.body?.cancel();
        return new Response(null, { status: 303, headers: { location: "/form" } });
      }
      if (kind === "temporary") {
        return new Response(null, { status: 307, headers: { location: "/method" } });
      }
      if (!bytes) return new Response("no such size\n", { status: 404 });
      if (kind === "fixed") return new Response(bytes);
      // A stream of unknown length: Deno.serve sends it chunked, one chunk per piece.
      let offset = 0;
      return new Response(
        new ReadableStream<Uint8Array>({
          pull(controller) {
            if (offset >= bytes.length) return controller.close();
            const step = 1 + ((offset * 7919) % 100_000); // uneven chunk sizes
            controller.enqueue(bytes.slice(offset, offset + step));
            offset += step;
          },
        }),
      );
    },
  );
  return { server, url: `http://127.0.0.1:${server.addr.port}`, ports };
}

const FILES = new Map(SIZES.map((size) => [size, randomBytes(size)]));

Deno.test("against Deno.serve: chunked and Content-Length bodies of 0 B to 50 MiB, byte-exact, one connection", async () => {
  const { server, url, ports } = startDenoServe(FILES);
  const client = new HttpClient();
  try {
    for (const size of SIZES) {
      for (const kind of ["stream", "fixed"]) {
        const response = await client.request(`${url}/${kind}/${size}`);
        assert.equal(response.status, 200);
        assert.equal(response.framing.kind, kind === "stream" ? "chunked" : "length");
        const got = await hashStream(response.body);
        assert.deepEqual(got, { sha256: hex(FILES.get(size)!), length: size }, `${kind} ${size}`);
      }
    }
    assert.equal(client.connectionsOpened, 1);
    assert.equal(ports.size, 1, "the server saw one client port");
  } finally {
    client.close();
    await server.shutdown();
  }
});

Deno.test("against Deno.serve: POST bodies up to 1 MiB come back byte-exact", async () => {
  const { server, url } = startDenoServe(FILES);
  const client = new HttpClient();
  try {
    for (const size of [0, 1, MiB]) {
      const body = FILES.get(size)!;
      const response = await client.request(`${url}/echo`, { method: "POST", body });
      assert.equal(hex(await response.bytes()), hex(body));
    }
    const streamed = await client.request(`${url}/echo`, {
      method: "POST",
      body: { length: MiB, stream: ReadableStream.from([FILES.get(MiB)!]) },
    });
    assert.equal(hex(await streamed.bytes()), hex(FILES.get(MiB)!));
    assert.equal(client.connectionsOpened, 1);
  } finally {
    client.close();
    await server.shutdown();
  }
});

Deno.test("http_raw_client get: several URLs of one origin share one connection (counted by Deno.serve)", async () => {
  const { server, url, ports } = startDenoServe(FILES);
  try {
    const result = await runHashed([
      "get",
      `${url}/stream/${MiB}`,
      `${url}/fixed/1`,
      `${url}/stream/${50 * MiB}`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    const expected = hex(concat([FILES.get(MiB)!, FILES.get(1)!, FILES.get(50 * MiB)!]));
    assert.equal(result.sha256, expected);
    assert.equal(ports.size, 1);
  } finally {
    await server.shutdown();
  }
});

Deno.test("redirects: --follow takes at most 5, says why, refuses loops; 303 turns POST into GET, 307 keeps it", async () => {
  const { server, url } = startDenoServe(FILES);
  const client = new HttpClient();
  try {
    const five = await client.request(`${url}/hop/5`, { follow: true });
    assert.equal(await five.text(), "arrived");
    assert.equal(five.redirects.length, 5);
    assert.equal(five.url, `${url}/hop/0`);
    await assert.rejects(
      client.request(`${url}/hop/6`, { follow: true }),
      /too many redirects: gave up after 5/,
    );
    await assert.rejects(client.request(`${url}/loop/a`, { follow: true }), /redirect loop/);
    const unfollowed = await client.request(`${url}/hop/1`);
    assert.equal(unfollowed.status, 302);
    await unfollowed.discard();
    const body = encode("payload");
    const seeOther = await client.request(`${url}/see-other`, {
      method: "POST",
      body,
      follow: true,
    });
    assert.equal(await seeOther.text(), "GET ");
    const temporary = await client.request(`${url}/temporary`, {
      method: "POST",
      body,
      follow: true,
    });
    assert.equal(await temporary.text(), "POST payload");
    // POST /form -> 303 -> GET /form: the same URL, but another request, no loop.
    const form = await client.request(`${url}/form`, { method: "POST", body, follow: true });
    assert.equal(await form.text(), "the form");
    assert.deepEqual(form.redirects.map((r) => r.method), ["GET"]);
  } finally {
    client.close();
    await server.shutdown();
  }

  const cli = startDenoServe(FILES);
  try {
    const ok = await runScript("http_raw_client", ["get", "--follow", `${cli.url}/hop/5`]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.equal(ok.stdout, "arrived");
    assert.equal(ok.stderr.trim().split("\n").length, 5);
    assert.match(ok.stderr, /^302 Found: following to http:\/\/127\.0\.0\.1:\d+\/hop\/4 \(GET\)/);
    const tooMany = await runScript("http_raw_client", ["get", "-L", `${cli.url}/hop/6`]);
    assert.equal(tooMany.code, 1);
    assert.match(tooMany.stderr.trim().split("\n").at(-1)!, /^error: too many redirects/);
    const loop = await runScript("http_raw_client", ["get", "-L", `${cli.url}/loop/a`]);
    assert.equal(loop.code, 1);
    assert.match(loop.stderr, /error: redirect loop: .*\/loop\/a -> .*\/loop\/b -> .*\/loop\/a/);
    const unfollowed = await runScript("http_raw_client", ["get", "-i", `${cli.url}/hop/1`]);
    assert.equal(unfollowed.code, 0);
    assert.match(unfollowed.stdout, /^HTTP\/1\.1 302 Found\r\n/);
  } finally {
    await cli.server.shutdown();
  }
});

Deno.test("redirects: a 307 sends a streamed body again only if it can be reopened; post --data-file reopens the file", async () => {
  const { server, url } = startDenoServe(FILES);
  const client = new HttpClient();
  const dir = await Deno.makeTempDir({ prefix: "wirebook_http_cli_" });
  try {
    const bytes = encode("streamed");
    const stream = () => ReadableStream.from([bytes]);
    await assert.rejects(
      client.request(`${url}/temporary`, {
        method: "POST",
        body: { length: bytes.length, stream: stream() },
        follow: true,
      }),
      /not following the 307 to .*\/method: it needs the body sent again/,
    );
    const again = await client.request(`${url}/temporary`, {
      method: "POST",
      body: { length: bytes.length, stream: stream(), reopen: () => Promise.resolve(stream()) },
      follow: true,
    });
    assert.equal(await again.text(), "POST streamed");

    const input = `${dir}/in.bin`;
    await Deno.writeTextFile(input, "from a file");
    const cli = await runScript(
      "http_raw_client",
      ["post", "-L", "--data-file", input, `${url}/temporary`],
      { flags: ["--allow-net=127.0.0.1", `--allow-read=${input}`] },
    );
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, "POST from a file");
    assert.match(cli.stderr, /^307 Temporary Redirect: following to .*\/method \(POST\)$/m);
  } finally {
    client.close();
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("http_raw_client: head, post --data, repeated --header, --verbose, --output, --data-file", async () => {
  const seen: Headers[] = [];
  const server = Deno.serve({ hostname: "127.0.0.1", port: 0, onListen() {} }, async (request) => {
    seen.push(request.headers);
    return new Response(`${request.method} ${await request.text()}`, {
      headers: { "X-Answer": "42" },
    });
  });
  const url = `http://127.0.0.1:${server.addr.port}/`;
  const dir = await Deno.makeTempDir({ prefix: "wirebook_http_cli_" });
  try {
    const head = await runScript("http_raw_client", ["head", url]);
    assert.equal(head.code, 0, head.stderr);
    assert.match(head.stdout, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(head.stdout, /x-answer: 42\r\n/i);
    assert.match(head.stdout, /content-length: 5\r\n/i); // "HEAD " is what GET would send

    const post = await runScript("http_raw_client", [
      "post",
      url,
      "--data",
      "hello",
      "-H",
      "X-One: 1",
      "--header",
      "X-Two: 2",
      "--verbose",
    ]);
    assert.equal(post.code, 0, post.stderr);
    assert.equal(post.stdout, "POST hello");
    assert.equal(seen.at(-1)!.get("x-one"), "1");
    assert.equal(seen.at(-1)!.get("x-two"), "2");
    assert.equal(seen.at(-1)!.get("content-type"), "text/plain; charset=utf-8");
    assert.match(post.stderr, /^> POST \/ HTTP\/1\.1$/m);
    assert.match(post.stderr, /^> Content-Length: 5$/m);
    assert.match(post.stderr, /^< HTTP\/1\.1 200 OK$/m);
    assert.match(post.stderr, /^\* body: 10 bytes \(§6\.3 rule 5: Content-Length\)$/m);

    const output = `${dir}/out.txt`;
    const written = await runScript("http_raw_client", ["get", url, "-o", output], {
      flags: ["--allow-net=127.0.0.1", `--allow-write=${output}`],
    });
    assert.equal(written.code, 0, written.stderr);
    assert.equal(written.stdout, "");
    assert.equal(await Deno.readTextFile(output), "GET ");

    const input = `${dir}/in.bin`;
    await Deno.writeTextFile(input, "from a file");
    const fromFile = await runScript("http_raw_client", ["post", url, "--data-file", input], {
      flags: ["--allow-net=127.0.0.1", `--allow-read=${input}`],
    });
    assert.equal(fromFile.code, 0, fromFile.stderr);
    assert.equal(fromFile.stdout, "POST from a file");
    const denied = await runScript("http_raw_client", ["post", url, "--data-file", input]);
    assert.equal(denied.code, 1);
    assert.match(denied.stderr, /^error: cannot read --data-file .*--allow-read=/);
  } finally {
    await server.shutdown();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// nginx: static files, a chunked response, keep-alive counted by $connection
// ---------------------------------------------------------------------------

peerTest(
  "against nginx: static files of 0 B to 50 MiB, plain and chunked, byte-exact over one keep-alive connection",
  [PEERS.nginx],
  async () => {
    const { dir, files } = await makeFiles();
    const nginx = await startNginx(dir);
    const client = new HttpClient();
    try {
      const connections = new Set<string>();
      let requests = 0;
      for (const size of SIZES) {
        for (const prefix of ["", "/chunked"]) {
          const response = await client.request(`${nginx.url}${prefix}/${size}.bin`);
          assert.equal(response.status, 200);
          const expected = prefix === "" || size === 0 ? "length" : "chunked";
          assert.equal(response.framing.kind, expected, `${prefix}/${size}.bin`);
          assert.deepEqual(await hashStream(response.body), {
            sha256: hex(files.get(size)!),
            length: size,
          });
          connections.add(response.header("x-connection")!);
          assert.equal(Number(response.header("x-connection-requests")), ++requests);
        }
      }
      const head = await client.request(`${nginx.url}/${MiB}.bin`, { method: "HEAD" });
      assert.equal(head.header("content-length"), String(MiB));
      assert.equal((await head.bytes()).length, 0);
      const missing = await client.request(`${nginx.url}/nope`);
      assert.equal(missing.status, 404);
      await missing.discard();
      assert.equal(connections.size, 1, "nginx saw one connection");
      assert.equal(client.connectionsOpened, 1);
    } finally {
      client.close();
      await nginx.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

peerTest(
  "against nginx: the CLI streams 50 MiB to stdout byte-exact; one connection for two URLs",
  [
    PEERS.nginx,
  ],
  async () => {
    const { dir, files } = await makeFiles();
    const nginx = await startNginx(dir);
    try {
      const result = await runHashed([
        "get",
        "-v",
        `${nginx.url}/${50 * MiB}.bin`,
        `${nginx.url}/chunked/${MiB}.bin`,
      ]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.sha256, hex(concat([files.get(50 * MiB)!, files.get(MiB)!])));
      assert.equal(result.stderr.match(/^\* connected from/gm)?.length, 1, result.stderr);
      assert.match(result.stderr, /^< X-Connection-Requests: 2$/m);
      assert.match(result.stderr, /^\* body: chunked/m);
    } finally {
      await nginx.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

peerTest("against nginx over TLS: https:// uses Deno.connectTls (a CA passed with --cert)", [
  PEERS.nginx,
  PEERS.openssl,
], async () => {
  const { dir, files } = await makeFiles();
  await makeTestCertificates(dir);
  const tlsPort = freePort();
  const nginx = await startNginx(
    dir,
    `}
  server {
    listen 127.0.0.1:${tlsPort} ssl;
    ssl_certificate ${dir}/cert.pem;
    ssl_certificate_key ${dir}/key.pem;
    root ${dir}/www;`,
  );
  try {
    const caCerts = [await Deno.readTextFile(`${dir}/ca.pem`)];
    const client = new HttpClient({ caCerts });
    try {
      const response = await client.request(`https://127.0.0.1:${tlsPort}/${MiB}.bin`);
      assert.equal(hex(await response.bytes()), hex(files.get(MiB)!));
    } finally {
      client.close();
    }
    const cli = await runScript("http_raw_client", ["get", `https://127.0.0.1:${tlsPort}/1.bin`], {
      flags: ["--allow-net=127.0.0.1", "--cert", `${dir}/ca.pem`],
    });
    assert.equal(cli.code, 0, cli.stderr);
    assert.equal(cli.stdout, decoder.decode(files.get(1)!));
    const untrusted = await runScript("http_raw_client", [
      "get",
      `https://127.0.0.1:${tlsPort}/1.bin`,
    ]);
    assert.equal(untrusted.code, 1);
    assert.match(untrusted.stderr, /^error: cannot connect to https:\/\/127\.0\.0\.1:\d+: /);
    assert.equal(untrusted.stderr.trim().split("\n").length, 1);
  } finally {
    await nginx.stop();
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// Python's http.server: HTTP/1.0 (a connection per request), HTTP/1.1
// (keep-alive), and a body delimited by closing the connection
// ---------------------------------------------------------------------------

const PYTHON_SERVER = `
import functools, http.server, sys
directory, protocol = sys.argv[1], sys.argv[2]

class Handler(http.server.SimpleHTTPRequestHandler):
    protocol_version = protocol

    def log_message(self, *args):
        pass

    def do_GET(self):
        if self.path == "/until-close":
            # No Content-Length, no chunked: the body ends when we close.
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.send_header("X-Port", str(self.client_address[1]))
            self.end_headers()
            for i in range(1000):
                self.wfile.write(b"line %d of a body with no length\\n" % i)
            self.close_connection = True
            return
        super().do_GET()

    def end_headers(self):
        self.send_header("X-Port", str(self.client_address[1]))
        super().end_headers()

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Handler, directory=directory))
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
`;

for (const protocol of ["HTTP/1.0", "HTTP/1.1"]) {
  peerTest(
    `against Python's http.server (${protocol}): static files byte-exact, ${
      protocol === "HTTP/1.0" ? "a new connection per request" : "one keep-alive connection"
    }`,
    [PEERS.python3],
    async () => {
      const { dir, files } = await makeFiles();
      const python = await startProcess(PYTHON, ["-c", PYTHON_SERVER, `${dir}/www`, protocol], {
        scheme: "http",
      });
      const client = new HttpClient();
      try {
        const ports = new Set<string>();
        for (const size of SIZES) {
          const response = await client.request(`http://127.0.0.1:${python.port}/${size}.bin`);
          assert.equal(response.version, protocol);
          assert.equal(response.keepAlive, protocol === "HTTP/1.1");
          assert.deepEqual(await hashStream(response.body), {
            sha256: hex(files.get(size)!),
            length: size,
          });
          ports.add(response.header("x-port")!);
        }
        const expected = protocol === "HTTP/1.0" ? SIZES.length : 1;
        assert.equal(ports.size, expected, "client ports the server saw");
        assert.equal(client.connectionsOpened, expected);

        const close = await client.request(`http://127.0.0.1:${python.port}/until-close`);
        assert.equal(close.framing.kind, "close");
        assert.equal(close.keepAlive, false);
        const text = await close.text();
        assert.equal(text.split("\n").length, 1001);
        assert.match(text, /^line 999 of a body with no length$/m);
        // A request after a close-delimited body goes on a new connection.
        const after = await client.request(`http://127.0.0.1:${python.port}/1.bin`);
        assert.notEqual(after.header("x-port"), close.header("x-port"));
        await after.discard();
      } finally {
        client.close();
        await python.stop();
        await Deno.remove(dir, { recursive: true });
      }
    },
  );
}

peerTest("against Python's http.server: the CLI gets a close-delimited body and HTTP/1.0 files", [
  PEERS.python3,
], async () => {
  const { dir, files } = await makeFiles();
  const python = await startProcess(PYTHON, ["-c", PYTHON_SERVER, `${dir}/www`, "HTTP/1.0"], {
    scheme: "http",
  });
  try {
    const base = `http://127.0.0.1:${python.port}`;
    const result = await runHashed(["get", "-v", `${base}/${MiB}.bin`, `${base}/${50 * MiB}.bin`]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.sha256, hex(concat([files.get(MiB)!, files.get(50 * MiB)!])));
    assert.equal(result.stderr.match(/^\* connected from/gm)?.length, 2, result.stderr);
    const close = await runScript("http_raw_client", ["get", "-v", `${base}/until-close`]);
    assert.equal(close.code, 0, close.stderr);
    assert.match(close.stderr, /^\* body: until close \(§6\.3 rule 7/m);
    assert.equal(close.stdout.split("\n").length, 1001);
  } finally {
    await python.stop();
    await Deno.remove(dir, { recursive: true });
  }
});
