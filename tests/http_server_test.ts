// scripts/http_server.ts: the routes and their status codes (by calling the
// handler directly, no server needed), that nothing a client sends comes back
// as markup (fixed payloads through every route that reflects, and a
// fast-check property of the escaping), the request body's limits, the
// graceful shutdown, and the command line, with curl as the client.

import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import { escapeHtml, html, SafeHtml, serveSite, siteHandler } from "../scripts/http_server.ts";
import { PEERS, peerTest, run, startServer } from "./_helpers.ts";

const SITE = "http://site.test";

// One request to a fresh handler (or the one given), and its answer read.
async function ask(
  path: string,
  init: RequestInit = {},
  handle = siteHandler(),
): Promise<{ status: number; headers: Headers; text: string }> {
  const response = await handle(new Request(SITE + path, init));
  return { status: response.status, headers: response.headers, text: await response.text() };
}

const form = (fields: Record<string, string>) => ({
  method: "POST",
  body: new URLSearchParams(fields),
});
const json = (body: unknown) => ({
  method: "POST",
  headers: { "content-type": "application/json", accept: "application/json" },
  body: JSON.stringify(body),
});

// ---------------------------------------------------------------------------
// Routes, parameters, status codes
// ---------------------------------------------------------------------------

Deno.test("http_server: the pages answer 200 with HTML and the security headers", async () => {
  for (const path of ["/", "/hello", "/hello?name=Ada", "/hello/Ada", "/headers", "/guestbook"]) {
    const { status, headers } = await ask(path);
    assert.equal(status, 200, path);
    assert.equal(headers.get("content-type"), "text/html; charset=utf-8", path);
    assert.match(headers.get("content-security-policy") ?? "", /default-src 'none'/, path);
    assert.equal(headers.get("x-content-type-options"), "nosniff", path);
  }
});

Deno.test("http_server: /hello takes its name from the query or the path, percent-decoded", async () => {
  const cases: [string, string][] = [
    ["/hello", "Hello, world!"],
    ["/hello?name=Ada", "Hello, Ada!"],
    ["/hello?name=Ada+Lovelace", "Hello, Ada Lovelace!"],
    ["/hello?name=Ada%20L%C3%B6w", "Hello, Ada Löw!"],
    ["/hello?name=a%26b&name=second", "Hello, a&amp;b!"], // the first of a repeated name
    ["/hello/Ada", "Hello, Ada!"],
    ["/hello/Ada%20L%C3%B6w", "Hello, Ada Löw!"],
    ["/hello/a+b", "Hello, a+b!"], // "+" is a space only in a query string
  ];
  for (const [path, greeting] of cases) {
    const { text } = await ask(path);
    assert.ok(text.includes(`<p>${greeting}</p>`), `${path}: ${text}`);
  }
});

Deno.test("http_server: bad parameters are 400, with what was wrong", async () => {
  const cases: [string, RegExp][] = [
    ["/hello/%E0%A4", /broken %-escape/],
    [`/hello?name=${"x".repeat(101)}`, /longer than 100/],
    ["/guestbook?limit=lots", /\?limit must be a whole number from 1 to 100/],
    ["/guestbook?limit=0", /\?limit must be/],
    ["/guestbook?limit=101", /\?limit must be/],
    ["/slow?ms=-1", /\?ms must be a whole number from 0 to 5000/],
    ["/slow?ms=5001", /\?ms must be/],
  ];
  for (const [path, message] of cases) {
    const { status, text } = await ask(path);
    assert.equal(status, 400, path);
    assert.match(text, message, path);
  }
});

Deno.test("http_server: an unknown path is 404; a wrong method is 405 with Allow; OPTIONS lists them", async () => {
  for (const path of ["/nowhere", "/hello/a/b", "/guestbook/abc", "/guestbook/99", "/Hello"]) {
    assert.equal((await ask(path)).status, 404, path);
  }
  const wrong = await ask("/guestbook", { method: "DELETE" });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "GET, POST, HEAD, OPTIONS");
  assert.equal(
    (await ask("/hello", { method: "POST" })).headers.get("allow"),
    "GET, HEAD, OPTIONS",
  );
  const options = await ask("/guestbook", { method: "OPTIONS" });
  assert.equal(options.status, 204);
  assert.equal(options.headers.get("allow"), "GET, POST, HEAD, OPTIONS");
});

Deno.test("http_server: Accept: application/json gets JSON, and Vary: Accept says so", async () => {
  const accept = { headers: { accept: "application/json", "x-test": "yes" } };
  const headers = await ask("/headers", accept);
  assert.equal(headers.headers.get("content-type"), "application/json");
  assert.equal(headers.headers.get("vary"), "Accept");
  assert.equal(JSON.parse(headers.text).headers["x-test"], "yes");
  const missing = await ask("/nowhere", accept);
  assert.deepEqual(JSON.parse(missing.text), {
    error: "There is no page at /nowhere.",
    status: 404,
  });
});

Deno.test("http_server: error pages are negotiated too, so they carry Vary: Accept", async () => {
  const cases: [string, RequestInit][] = [
    ["/nowhere", {}], // 404
    ["/guestbook/99", {}], // 404 from a route
    ["/guestbook", { method: "DELETE" }], // 405, with Allow
    ["/hello/%E0%A4", {}], // 400
  ];
  for (const [path, init] of cases) {
    for (const accept of ["application/json", "text/html"]) {
      const answer = await ask(path, { ...init, headers: { accept } });
      assert.ok(answer.status >= 400, `${path}: ${answer.status}`);
      assert.equal(answer.headers.get("vary"), "Accept", `${path} (${accept})`);
    }
  }
  const wrong = await ask("/guestbook", { method: "DELETE" });
  assert.equal(wrong.headers.get("allow"), "GET, POST, HEAD, OPTIONS", "its own fields stay");
});

// ---------------------------------------------------------------------------
// The guestbook: request bodies and their limits
// ---------------------------------------------------------------------------

Deno.test("http_server: a form is signed with 303 See Other; JSON with 201 Created and Location", async () => {
  const handle = siteHandler();
  const signed = await ask("/guestbook", form({ name: "Ada", message: "hi" }), handle);
  assert.equal(signed.status, 303);
  assert.equal(signed.headers.get("location"), "/guestbook/1");
  const created = await ask("/guestbook", json({ name: "Eve", message: "hello" }), handle);
  assert.equal(created.status, 201);
  assert.equal(created.headers.get("location"), "/guestbook/2");
  assert.deepEqual(
    { ...JSON.parse(created.text), at: "" },
    { id: 2, name: "Eve", message: "hello", at: "" },
  );
  const shown = await ask("/guestbook/1", {}, handle);
  assert.match(shown.text, /<b>Ada<\/b>: hi/);
  const list = await ask("/guestbook", { headers: { accept: "application/json" } }, handle);
  assert.deepEqual(JSON.parse(list.text).entries.map((e: { id: number }) => e.id), [2, 1]);
});

Deno.test("http_server: the guestbook keeps maxEntries, dropping the oldest", async () => {
  const handle = siteHandler({ maxEntries: 3 });
  for (let i = 1; i <= 5; i++) {
    await ask("/guestbook", form({ name: `n${i}`, message: "m" }), handle);
  }
  const list = await ask("/guestbook?limit=3", { headers: { accept: "application/json" } }, handle);
  assert.deepEqual(JSON.parse(list.text).entries.map((e: { id: number }) => e.id), [5, 4, 3]);
  assert.equal((await ask("/guestbook/1", {}, handle)).status, 404);
});

Deno.test("http_server: a body over the cap is 413, declared or streamed", async () => {
  const handle = siteHandler({ maxBodySize: 1000 });
  const declared = await ask("/guestbook", form({ name: "a", message: "x".repeat(2000) }), handle);
  assert.equal(declared.status, 413);
  assert.match(declared.text, /larger than 1000 bytes/);
  // No Content-Length: a stream that goes on past the cap. Only so much is read.
  let pulled = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled += 100;
      controller.enqueue(new TextEncoder().encode("x".repeat(100)));
    },
  });
  const streamed = await ask("/guestbook", {
    method: "POST",
    headers: { "content-type": "application/x-www-form-urlencoded" },
    body: endless,
  }, handle);
  assert.equal(streamed.status, 413);
  assert.ok(pulled < 2000, `read ${pulled} bytes of an endless body`);
  // Exactly at the cap is fine; one byte over is not.
  const body = `name=a&message=${"x".repeat(400)}`;
  const post = (maxBodySize: number) =>
    ask("/guestbook", {
      method: "POST",
      headers: { "content-type": "application/x-www-form-urlencoded" },
      body,
    }, siteHandler({ maxBodySize }));
  assert.equal((await post(body.length)).status, 303);
  assert.equal((await post(body.length - 1)).status, 413);
});

Deno.test("http_server: what is not a form or JSON is 415 with Accept-Post", async () => {
  for (const type of ["text/plain", "multipart/form-data; boundary=x", undefined]) {
    const { status, headers } = await ask("/guestbook", {
      method: "POST",
      headers: type ? { "content-type": type } : {},
      body: "name=a&message=b",
    });
    assert.equal(status, 415, type);
    assert.equal(
      headers.get("accept-post"),
      "application/x-www-form-urlencoded, application/json",
    );
  }
  // Media types are case-insensitive, parameters aside (RFC 9110 §8.3.1).
  const upper = await ask("/guestbook", {
    method: "POST",
    headers: { "content-type": "Application/JSON; charset=utf-8" },
    body: JSON.stringify({ name: "a", message: "b" }),
  });
  assert.equal(upper.status, 201);
});

Deno.test("http_server: a malformed or incomplete entry is 400", async () => {
  const bad: [RequestInit, RegExp][] = [
    [json([1, 2]), /must be an object/],
    [json("text"), /must be an object/],
    [{ ...json({}), body: "{not json" }, /not valid JSON/],
    [{ ...json({}), body: new Uint8Array([0x7b, 0xff, 0x7d]) }, /not UTF-8/],
    [json({ name: "a" }), /both a name and a message/],
    [json({ name: "a", message: 5 }), /both a name and a message/],
    [form({ name: "  ", message: "x" }), /both a name and a message/],
    [form({ name: "x".repeat(61), message: "x" }), /60 characters/],
    [form({ name: "x", message: "x".repeat(501) }), /500/],
  ];
  for (const [init, message] of bad) {
    const { status, text } = await ask("/guestbook", init);
    assert.equal(status, 400, String(init.body));
    assert.match(text, message, String(init.body));
  }
});

// ---------------------------------------------------------------------------
// Escaping: nothing the client sends comes back as markup
// ---------------------------------------------------------------------------

const PAYLOADS = [
  "<script>alert(1)</script>",
  `"><img src=x onerror=alert(1)>`,
  `'><svg onload=alert(1)>`,
  "</title><script>alert(1)</script>",
  "&lt;script&gt;", // already escaped: must come back escaped again, not unescaped
];

// The markup a payload must never show up as, and the text it must show up as.
function assertEscaped(page: string, payload: string, where: string) {
  if (/[<>"'&]/.test(payload)) {
    assert.ok(!page.includes(payload), `${where}: the payload came back as is`);
  }
  for (const tag of ["<script", "<img", "<svg"]) {
    assert.ok(!page.includes(tag), `${where}: ${tag} in the page`);
  }
  assert.ok(page.includes(escapeHtml(payload)), `${where}: the escaped payload is missing`);
}

Deno.test("http_server: every route that reflects the client's text escapes it", async () => {
  for (const payload of PAYLOADS) {
    const q = encodeURIComponent(payload);
    const handle = siteHandler();
    const reflected: [string, string, RequestInit?][] = [
      ["the query", `/hello?name=${q}`],
      ["the path", `/hello/${q}`],
      ["a header", "/headers", { headers: { "x-payload": payload } }],
      ["a 400 message", `/guestbook?limit=${q}`],
    ];
    for (const [where, path, init] of reflected) {
      const { text } = await ask(path, init, handle);
      assertEscaped(text, payload, where);
    }
    // A 404 page shows the path as the URL parser left it: < > " and space
    // %-encoded, but ' and & as they came. Those are escaped.
    const missing = `/${payload}`;
    const { text } = await ask(missing, {}, handle);
    assertEscaped(text, new URL(SITE + missing).pathname, "a 404 page");
    // Stored: written by one client, shown to another.
    await ask("/guestbook", form({ name: payload, message: payload }), handle);
    assertEscaped((await ask("/guestbook", {}, handle)).text, payload, "the guestbook");
    assertEscaped((await ask("/guestbook/1", {}, handle)).text, payload, "an entry");
  }
});

Deno.test("http_server: a Content-Type is escaped in the 415 message", async () => {
  const { text } = await ask("/guestbook", {
    method: "POST",
    headers: { "content-type": "text/<script>" },
    body: "x",
  });
  assert.ok(!text.includes("<script>"));
  assert.ok(text.includes("text/&lt;script&gt;"));
});

Deno.test("escapeHtml() leaves no markup character, and is undone by unescaping (property)", () => {
  const unescape = (text: string) =>
    text.replace(
      /&(lt|gt|quot|#39|amp);/g,
      (_, name) => ({ lt: "<", gt: ">", quot: '"', "#39": "'", amp: "&" })[name as string]!,
    );
  fc.assert(
    fc.property(fc.string({ unit: "binary" }), (text) => {
      const escaped = escapeHtml(text);
      assert.ok(!/[<>"']/.test(escaped));
      // Every & starts one of the five references.
      assert.ok(!/&(?!(lt|gt|quot|#39|amp);)/.test(escaped));
      assert.equal(unescape(escaped), text);
    }),
  );
});

Deno.test("html`` escapes every value but its own output, arrays item by item (property)", () => {
  fc.assert(
    fc.property(fc.string(), fc.array(fc.string()), (text, items) => {
      const fragment = html`<p>${text}</p>`;
      assert.ok(fragment instanceof SafeHtml);
      assert.equal(fragment.text, `<p>${escapeHtml(text)}</p>`);
      // Nested: not escaped twice.
      assert.equal(html`<div>${fragment}</div>`.text, `<div><p>${escapeHtml(text)}</p></div>`);
      const list = html`<ul>${items.map((item) => html`<li>${item}</li>`)}</ul>`;
      assert.equal(list.text, `<ul>${items.map((i) => `<li>${escapeHtml(i)}</li>`).join("")}</ul>`);
    }),
  );
  assert.equal(html`${null}${undefined}${0}${false}`.text, "0false");
});

// ---------------------------------------------------------------------------
// A real server: HEAD, graceful shutdown
// ---------------------------------------------------------------------------

Deno.test("serveSite(): HEAD has GET's fields and no body", async () => {
  const server = serveSite();
  try {
    const url = `http://127.0.0.1:${server.addr.port}/hello?name=Ada`;
    const get = await fetch(url);
    const getBody = await get.bytes();
    const head = await fetch(url, { method: "HEAD" });
    assert.equal(head.status, 200);
    assert.equal((await head.bytes()).length, 0);
    assert.equal(head.headers.get("content-length"), String(getBody.length));
    assert.equal(head.headers.get("content-type"), get.headers.get("content-type"));
  } finally {
    await server.shutdown();
  }
});

Deno.test("serveSite(): on abort, a request in flight finishes, new ones fail, idle connections close", async () => {
  const controller = new AbortController();
  const server = serveSite({ signal: controller.signal });
  const base = `http://127.0.0.1:${server.addr.port}`;
  // A keep-alive connection that sent one request and then sits idle.
  const idle = await Deno.connect({ hostname: "127.0.0.1", port: server.addr.port });
  await idle.write(new TextEncoder().encode("GET /hello HTTP/1.1\r\nHost: x\r\n\r\n"));
  await idle.read(new Uint8Array(4096));

  // /slow waits with setTimeout: a spy on it tells us when the request is in flight.
  const realSetTimeout = globalThis.setTimeout;
  let slowStarted = () => {};
  const inFlight = new Promise<void>((resolve) => slowStarted = resolve);
  globalThis.setTimeout = ((callback: () => void, ms?: number) => {
    if (ms === 200) slowStarted();
    return realSetTimeout(callback, ms);
  }) as typeof setTimeout;
  const slow = fetch(`${base}/slow?ms=200`);
  try {
    await inFlight;
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
  controller.abort();
  const late = await fetch(`${base}/hello`).then((r) => r.status, () => "failed");
  assert.equal(late, "failed");
  const answer = await slow;
  assert.equal(answer.status, 200);
  assert.equal(await answer.text(), "answered after 200 ms\n");
  await server.finished;
  // The idle connection was closed by the server: reading gives end of stream.
  const buffer = new Uint8Array(64);
  let rest = 0;
  for (let n = await idle.read(buffer); n !== null; n = await idle.read(buffer)) rest += n;
  assert.equal(rest, 0);
  idle.close();
});

// ---------------------------------------------------------------------------
// The command line, with curl as the client
// ---------------------------------------------------------------------------

async function curl(args: string[]) {
  const result = await run("curl", ["-s", "--max-time", "10", ...args]);
  assert.equal(result.code, 0, result.stderr);
  return result.stdout;
}

peerTest("http_server serve: curl GETs, POSTs a form, is refused 413, and the server logs it all", [
  PEERS.curl,
], async () => {
  const server = await startServer("http_server", ["--max-body", "2000"], { scheme: "http" });
  const base = `http://127.0.0.1:${server.port}`;
  try {
    assert.match(server.banner, /^listening on http:\/\/127\.0\.0\.1:\d+$/);
    const hello = await curl(["-i", `${base}/hello?name=%3Cb%3Ecurl`]);
    assert.match(hello, /^HTTP\/1\.1 200 OK\r\n/);
    assert.match(hello, /<p>Hello, &lt;b&gt;curl!<\/p>/);
    const posted = await curl([
      "-i",
      "--data-urlencode",
      "name=curl",
      "--data-urlencode",
      "message=<i>hi</i>",
      `${base}/guestbook`,
    ]);
    assert.match(posted, /^HTTP\/1\.1 303 See Other\r\n/);
    assert.match(posted, /\r\nlocation: \/guestbook\/1\r\n/i);
    // -L follows the 303 with a GET, as a browser does.
    const followed = await curl([
      "-L",
      "--data-urlencode",
      "name=b",
      "-d",
      "message=x",
      `${base}/guestbook`,
    ]);
    assert.match(followed, /<title>Entry 2<\/title>/);
    const head = await curl(["-I", `${base}/`]);
    assert.match(head, /^HTTP\/1\.1 200 OK\r\n[^]*content-length: \d+/i);
    const big = await curl(["-i", "-d", `name=a&message=${"x".repeat(3000)}`, `${base}/guestbook`]);
    assert.match(big, /^HTTP\/1\.1 (100 Continue\r\n\r\nHTTP\/1\.1 )?413 /);
    const json = await curl(["-H", "Accept: application/json", `${base}/guestbook/1`]);
    assert.equal(JSON.parse(json).message, "<i>hi</i>");
  } finally {
    const { code, stdout } = await server.stop();
    assert.equal(code, 0);
    assert.match(stdout, /"GET \/hello\?name=%3Cb%3Ecurl" 200$/m);
    assert.match(stdout, /"POST \/guestbook" 303$/m);
    assert.match(stdout, /"POST \/guestbook" 413$/m);
  }
});

peerTest("http_server serve: after --grace, a request still running does not hold the exit", [
  PEERS.curl,
], async () => {
  const server = await startServer("http_server", ["--grace", "0.2", "--quiet"], {
    scheme: "http",
  });
  const slow = run("curl", [
    "-s",
    "--max-time",
    "10",
    `http://127.0.0.1:${server.port}/slow?ms=5000`,
  ]);
  await new Promise((resolve) => setTimeout(resolve, 1000)); // let the request arrive
  const { code, stderr } = await server.stop();
  assert.equal(code, 0);
  assert.match(stderr, /^note: requests still running after 0\.2 s; stopping anyway$/m);
  await slow;
});
