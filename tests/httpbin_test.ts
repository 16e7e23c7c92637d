// scripts/httpbin.ts: each route's JSON shape against the fields httpbin.org
// documents, forms and files, the caps (413, /bytes, /delay), /flaky per key,
// weighted status codes by sampling, Basic auth, redirects and cookies; then
// the server against clients no one here wrote: curl and Python's urllib.

import assert from "node:assert/strict";
import {
  chooseStatus,
  httpbinHandler,
  type HttpbinOptions,
  seededBytes,
  serveHttpbin,
  titleCase,
} from "../scripts/httpbin.ts";
import { PEERS, peerTest, PYTHON, run, runScript, startServer } from "./_helpers.ts";

// The fields httpbin.org returns, as its documentation shows them (the
// examples on https://httpbin.org/ and its source, postmanlabs/httpbin,
// httpbin/core.py): /get has args, headers, origin, url; /post, /put, /patch
// and /delete add data, files, form, json; /anything adds method to those;
// /delay/N has the body fields but not json; /stream/N lines are /get's plus id.
const GET_FIELDS = ["args", "headers", "origin", "url"];
const BODY_FIELDS = ["args", "data", "files", "form", "headers", "json", "origin", "url"];
const ANYTHING_FIELDS = [...BODY_FIELDS, "method"].sort();
const DELAY_FIELDS = BODY_FIELDS.filter((field) => field !== "json");

const CLIENT: Deno.ServeHandlerInfo<Deno.NetAddr> = {
  remoteAddr: { transport: "tcp", hostname: "127.0.0.1", port: 50000 },
  completed: Promise.resolve(),
};

function from(hostname: string): Deno.ServeHandlerInfo<Deno.NetAddr> {
  return { ...CLIENT, remoteAddr: { ...CLIENT.remoteAddr, hostname } };
}

/** Call a fresh (or given) handler directly: no sockets, fast enough for thousands of calls. */
function call(
  path: string,
  init: RequestInit = {},
  handle = httpbinHandler(),
  info = CLIENT,
): Promise<Response> {
  return handle(new Request(`http://httpbin.test${path}`, init), info);
}

async function jsonOf(response: Response): Promise<Record<string, unknown>> {
  assert.match(response.headers.get("content-type") ?? "", /^application\/json/);
  return await response.json();
}

/** Start a real server on a free port, for clients that need a socket. */
function start(options: HttpbinOptions = {}) {
  const stop = new AbortController();
  const server = serveHttpbin({ ...options, signal: stop.signal });
  return {
    base: `http://127.0.0.1:${server.addr.port}`,
    async close() {
      stop.abort();
      await server.finished;
    },
  };
}

// ---------------------------------------------------------------------------
// The JSON shapes
// ---------------------------------------------------------------------------

Deno.test("httpbin: /get has exactly httpbin.org's fields, with args as a multi-dict", async () => {
  const body = await jsonOf(await call("/get?a=1&a=2&b=3", { headers: { "X-Thing": "x" } }));
  assert.deepEqual(Object.keys(body).sort(), GET_FIELDS);
  assert.deepEqual(body.args, { a: ["1", "2"], b: "3" });
  assert.equal(body.origin, "127.0.0.1");
  assert.equal(body.url, "http://httpbin.test/get?a=1&a=2&b=3");
  assert.equal((body.headers as Record<string, string>)["X-Thing"], "x");
});

Deno.test("httpbin: /post, /put, /patch, /delete show the body fields; /delay all but json; /anything adds method", async () => {
  for (const method of ["POST", "PUT", "PATCH", "DELETE"]) {
    const response = await call(`/${method.toLowerCase()}`, { method, body: "x" });
    assert.equal(response.status, 200, method);
    assert.deepEqual(Object.keys(await jsonOf(response)), BODY_FIELDS, method);
  }
  const delayed = await call("/delay/0", { method: "POST", body: "x" });
  assert.deepEqual(Object.keys(await jsonOf(delayed)), DELAY_FIELDS);
  for (const method of ["GET", "POST", "PUT", "PATCH", "DELETE", "PROPFIND"]) {
    const body = await jsonOf(await call("/anything/deep/path?q=1", { method }));
    assert.deepEqual(Object.keys(body), ANYTHING_FIELDS, method);
    assert.equal(body.method, method);
    assert.deepEqual(body.args, { q: "1" });
  }
});

Deno.test("httpbin: /headers, /ip, /user-agent, /cookies return httpbin.org's single fields", async () => {
  const headers = { "user-agent": "test-agent/1", cookie: "a=1; b=two" };
  assert.deepEqual(Object.keys(await jsonOf(await call("/headers", { headers }))), ["headers"]);
  assert.deepEqual(await jsonOf(await call("/ip", {}, undefined, from("::1"))), { origin: "::1" });
  assert.deepEqual(await jsonOf(await call("/user-agent", { headers })), {
    "user-agent": "test-agent/1",
  });
  assert.deepEqual(await jsonOf(await call("/cookies", { headers })), {
    cookies: { a: "1", b: "two" },
  });
});

Deno.test("httpbin: header names are shown Title-Case, as httpbin.org shows them", async () => {
  const body = await jsonOf(
    await call("/headers", { headers: { "x-amzn-trace-id": "t", "content-type": "text/plain" } }),
  );
  const names = Object.keys(body.headers as object);
  assert.ok(names.includes("X-Amzn-Trace-Id"), names.join());
  assert.ok(names.includes("Content-Type"), names.join());
  assert.equal(titleCase("USER-AGENT"), "User-Agent");
  assert.equal(titleCase("dnt"), "Dnt");
});

Deno.test("httpbin: /json is httpbin.org's slideshow; /html is a page with its h1", async () => {
  const body = await jsonOf(await call("/json"));
  const slideshow = body.slideshow as { title: string; slides: unknown[]; author: string };
  assert.equal(slideshow.title, "Sample Slide Show");
  assert.equal(slideshow.author, "Yours Truly");
  assert.equal(slideshow.slides.length, 2);
  const html = await call("/html");
  assert.match(html.headers.get("content-type")!, /^text\/html/);
  assert.match(await html.text(), /<h1>Herman Melville - Moby-Dick<\/h1>/);
});

// ---------------------------------------------------------------------------
// Bodies: data, json, form, files
// ---------------------------------------------------------------------------

Deno.test("httpbin: a JSON body is shown as data and parsed as json; a non-JSON body has json null", async () => {
  const sent = { a: [1, 2], b: { c: null } };
  const body = await jsonOf(
    await call("/post", { method: "POST", body: JSON.stringify(sent) }),
  );
  assert.equal(body.data, JSON.stringify(sent));
  assert.deepEqual(body.json, sent);
  const text = await jsonOf(await call("/post", { method: "POST", body: "not json" }));
  assert.equal(text.data, "not json");
  assert.equal(text.json, null);
});

Deno.test("httpbin: a body that is not UTF-8 is shown as a base64 data: URL", async () => {
  const bytes = new Uint8Array([0xff, 0x00, 0xfe]);
  const body = await jsonOf(
    await call("/post", {
      method: "POST",
      body: bytes,
      headers: { "content-type": "application/octet-stream" },
    }),
  );
  assert.equal(body.data, "data:application/octet-stream;base64,/wD+");
});

Deno.test("httpbin: urlencoded and multipart forms fill form and files, with data empty", async () => {
  const urlencoded = await jsonOf(
    await call("/post", { method: "POST", body: new URLSearchParams("k=v&k=w&x=%C3%A9") }),
  );
  assert.deepEqual(urlencoded.form, { k: ["v", "w"], x: "é" });
  assert.equal(urlencoded.data, "");
  assert.equal(urlencoded.json, null);

  const form = new FormData();
  form.append("title", "notes");
  form.append("upload", new File(["file text\n"], "a.txt", { type: "text/plain" }));
  form.append("blob", new File([new Uint8Array([0xff, 0xfe])], "b.bin"));
  const multipart = await jsonOf(await call("/put", { method: "PUT", body: form }));
  assert.deepEqual(multipart.form, { title: "notes" });
  assert.deepEqual(multipart.files, {
    upload: "file text\n",
    blob: "data:application/octet-stream;base64,//4=",
  });
  assert.equal(multipart.data, "");
});

Deno.test("httpbin: a malformed multipart body is 400, not a crash", async () => {
  const response = await call("/post", {
    method: "POST",
    body: "--x\r\nno end",
    headers: { "content-type": "multipart/form-data" }, // no boundary= parameter
  });
  assert.equal(response.status, 400);
  assert.match(String((await jsonOf(response)).error), /multipart/);
});

// ---------------------------------------------------------------------------
// Caps
// ---------------------------------------------------------------------------

Deno.test("httpbin: a body over maxBodySize is 413, by Content-Length or while streaming", async () => {
  const handle = httpbinHandler({ maxBodySize: 1000 });
  const fits = await call("/post", { method: "POST", body: "x".repeat(1000) }, handle);
  assert.equal(fits.status, 200);
  await fits.body?.cancel();
  const declared = await call("/post", { method: "POST", body: "x".repeat(1001) }, handle);
  assert.equal(declared.status, 413);
  assert.match(String((await jsonOf(declared)).error), /over 1000 bytes/);
  // No Content-Length: a stream, cut off once it passes the cap.
  let pulled = 0;
  const endless = new ReadableStream<Uint8Array>({
    pull(controller) {
      pulled++;
      controller.enqueue(new Uint8Array(300));
      if (pulled > 100) controller.close();
    },
  });
  const streamed = await call("/anything", { method: "POST", body: endless }, handle);
  assert.equal(streamed.status, 413);
  await streamed.body?.cancel();
  assert.ok(pulled < 10, `read ${pulled} chunks past the cap`);
});

Deno.test("httpbin: a 413 over a real connection, sent by fetch", async () => {
  const server = start({ maxBodySize: 10 });
  try {
    const response = await fetch(`${server.base}/post`, { method: "POST", body: "x".repeat(11) });
    assert.equal(response.status, 413);
    await response.body?.cancel();
  } finally {
    await server.close();
  }
});

/**
 * Run `body` on fake time: each setTimeout fires at once, and the wait it
 * asked for is recorded (as tests/http_retry_test.ts does). /delay's answer
 * does not say how long it waited, so this is how a test sees the wait it chose
 * without sleeping through it or timing anything.
 */
async function recordingWaits<T>(body: () => Promise<T>): Promise<{ result: T; waits: number[] }> {
  const waits: number[] = [];
  const realSetTimeout = globalThis.setTimeout;
  globalThis.setTimeout = ((callback: () => void, ms = 0) => {
    waits.push(ms);
    return realSetTimeout(callback, 0);
  }) as typeof setTimeout;
  try {
    return { result: await body(), waits };
  } finally {
    globalThis.setTimeout = realSetTimeout;
  }
}

Deno.test("httpbin: /bytes/N is capped at maxBytes and /delay/N at maxDelay", async () => {
  const handle = httpbinHandler({ maxBytes: 100, maxDelay: 0.01 });
  assert.equal((await (await call("/bytes/50", {}, handle)).bytes()).length, 50);
  assert.equal((await (await call("/bytes/100000", {}, handle)).bytes()).length, 100);
  const defaults = httpbinHandler();
  assert.equal((await (await call("/bytes/999999", {}, defaults)).bytes()).length, 102400);
  // /delay/60 with a cap of 10 ms waits 10 ms; by default the cap is 10 s,
  // as on httpbin.org; a delay under the cap is waited in full.
  for (
    const [path, handler, wait] of [
      ["/delay/60", handle, 10],
      ["/delay/60", defaults, 10_000],
      ["/delay/0.5", defaults, 500],
    ] as const
  ) {
    const { result: delayed, waits } = await recordingWaits(() => call(path, {}, handler));
    assert.equal(delayed.status, 200, path);
    await delayed.body?.cancel();
    assert.deepEqual(waits, [wait], path);
  }
  assert.equal((await call("/delay/soon", {}, handle)).status, 400);
});

Deno.test("httpbin: /bytes/N?seed=S gives the same bytes per seed", async () => {
  const a = await (await call("/bytes/64?seed=42")).bytes();
  const b = await (await call("/bytes/64?seed=42")).bytes();
  const c = await (await call("/bytes/64?seed=43")).bytes();
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  assert.deepEqual(a, seededBytes(64, 42));
  assert.equal((await call("/bytes/8?seed=x")).status, 400);
  const unseeded = await call("/bytes/16");
  assert.equal(unseeded.headers.get("content-type"), "application/octet-stream");
  assert.equal((await unseeded.bytes()).length, 16);
});

Deno.test("httpbin: /stream/N sends N JSON lines with ids, at most 100", async () => {
  const text = await (await call("/stream/3?x=1")).text();
  const lines = text.trimEnd().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual(lines.map((line) => line.id), [0, 1, 2]);
  assert.deepEqual(Object.keys(lines[0]).sort(), [...GET_FIELDS, "id"].sort());
  const many = await (await call("/stream/1000")).text();
  assert.equal(many.trimEnd().split("\n").length, 100);
});

Deno.test("httpbin: a pending /delay ends with 503 when the signal aborts, and shutdown delivers it", async () => {
  const stop = new AbortController();
  const { signal } = stop;
  // When /delay starts its wait it listens on the signal for the abort: that
  // is how the test knows the request is in flight (not merely sent).
  const waiting = Promise.withResolvers<void>();
  let started = false;
  const listen = signal.addEventListener.bind(signal);
  signal.addEventListener = ((...args: Parameters<AbortSignal["addEventListener"]>) => {
    if (started && args[0] === "abort") waiting.resolve();
    listen(...args);
  }) as AbortSignal["addEventListener"];
  const server = serveHttpbin({ signal });
  started = true;
  const pending = fetch(`http://127.0.0.1:${server.addr.port}/delay/10`);
  // (Should /delay answer without waiting, that answer is what gets checked.)
  await Promise.race([waiting.promise, pending]);
  stop.abort();
  const response = await pending;
  assert.equal(response.status, 503);
  assert.match(String((await response.json()).error), /shutting down/);
  await server.finished;
});

// ---------------------------------------------------------------------------
// /flaky
// ---------------------------------------------------------------------------

Deno.test("httpbin: /flaky/N fails the first N requests per key, then answers {attempts}", async () => {
  const handle = httpbinHandler();
  const statuses = async (path: string, times: number) => {
    const seen = [];
    for (let i = 0; i < times; i++) {
      const response = await call(path, {}, handle);
      seen.push(response.status);
      await response.body?.cancel();
    }
    return seen;
  };
  assert.deepEqual(await statuses("/flaky/2?key=a", 2), [503, 503]);
  // Another key has its own count.
  assert.deepEqual(await statuses("/flaky/1?key=b", 2), [503, 200]);
  const third = await call("/flaky/2?key=a", {}, handle);
  assert.deepEqual(await jsonOf(third), { attempts: 3 });
  assert.deepEqual(await statuses("/flaky/0?key=c", 1), [200]);
});

Deno.test("httpbin: /flaky keys default to the client's IP, and /flaky/reset forgets them", async () => {
  const handle = httpbinHandler();
  const status = async (path: string, info: Deno.ServeHandlerInfo<Deno.NetAddr>) => {
    const response = await call(path, {}, handle, info);
    await response.body?.cancel();
    return response.status;
  };
  assert.equal(await status("/flaky/1", from("10.0.0.1")), 503);
  assert.equal(await status("/flaky/1", from("10.0.0.2")), 503);
  assert.equal(await status("/flaky/1", from("10.0.0.1")), 200);
  assert.deepEqual(await jsonOf(await call("/flaky/reset?key=10.0.0.1", {}, handle)), {
    reset: 1,
  });
  assert.equal(await status("/flaky/1", from("10.0.0.1")), 503);
  assert.equal(await status("/flaky/1", from("10.0.0.2")), 200);
  assert.deepEqual(await jsonOf(await call("/flaky/reset", {}, handle)), { reset: 2 });
  assert.equal(await status("/flaky/1", from("10.0.0.2")), 503);
});

Deno.test("httpbin: /flaky answers 429 with Retry-After (seconds or HTTP-date), or ?status=", async () => {
  const handle = httpbinHandler();
  const seconds = await call("/flaky/1?key=s&retry-after=2", {}, handle);
  assert.equal(seconds.status, 429);
  assert.equal(seconds.headers.get("retry-after"), "2");
  await seconds.body?.cancel();
  const when = "Wed, 21 Oct 2037 07:28:00 GMT";
  const date = await call(`/flaky/1?key=d&retry-after=${encodeURIComponent(when)}`, {}, handle);
  assert.equal(date.status, 429);
  assert.equal(date.headers.get("retry-after"), when);
  await date.body?.cancel();
  const custom = await call("/flaky/1?key=e&status=500&retry-after=1", {}, handle);
  assert.equal(custom.status, 500);
  assert.equal(custom.headers.get("retry-after"), "1");
  await custom.body?.cancel();
  for (const bad of ["status=200", "status=abc", "retry-after=soon"]) {
    const response = await call(`/flaky/1?key=f&${bad}`, {}, handle);
    assert.equal(response.status, 400, bad);
    await response.body?.cancel();
  }
});

// ---------------------------------------------------------------------------
// Status codes, auth, redirects, cookies, methods
// ---------------------------------------------------------------------------

Deno.test("httpbin: /status/CODE answers that code, with Location for 3xx and a challenge for 401", async () => {
  for (const code of [200, 204, 304, 404, 418, 500, 599]) {
    const response = await call(`/status/${code}`);
    assert.equal(response.status, code);
    await response.body?.cancel();
  }
  assert.equal((await call("/status/302")).headers.get("location"), "/redirect/1");
  assert.match((await call("/status/401")).headers.get("www-authenticate")!, /^Basic /);
  for (const bad of ["99", "600", "abc", "200:x", "200:0", "1%3A2%3A3"]) {
    assert.equal((await call(`/status/${bad}`)).status, 400, bad);
  }
});

Deno.test("httpbin: /status/200:3,500:1 picks 500 about a quarter of the time (4000 samples)", async () => {
  const handle = httpbinHandler();
  const counts: Record<number, number> = {};
  const samples = 4000;
  for (let i = 0; i < samples; i++) {
    const { status } = await call("/status/200:3,500:1", {}, handle);
    counts[status] = (counts[status] ?? 0) + 1;
  }
  assert.deepEqual(Object.keys(counts).sort(), ["200", "500"]);
  // Binomial(4000, 0.25): mean 1000, standard deviation about 27; 0.2-0.3 is over 7 of them.
  const share = counts[500] / samples;
  assert.ok(share > 0.2 && share < 0.3, `500 came ${counts[500]} times out of ${samples}`);
  // Without weights, each code is equally likely.
  assert.equal(chooseStatus("201,202,203", () => 0.5), 202);
  assert.equal(chooseStatus("201,202,203", () => 0.99), 203);
  assert.equal(chooseStatus("200:0,503:2", () => 0), 503);
});

Deno.test("httpbin: /basic-auth answers 200 with the right credentials, else 401 with a challenge", async () => {
  const basic = (text: string) => ({ authorization: `Basic ${btoa(text)}` });
  const ok = await call("/basic-auth/ada/s3cret", { headers: basic("ada:s3cret") });
  assert.deepEqual(await jsonOf(ok), { authenticated: true, user: "ada" });
  for (
    const headers of [{}, basic("ada:wrong"), basic("bob:s3cret"), basic("ada"), {
      authorization: "Bearer abc",
    }, { authorization: "Basic !!!" }]
  ) {
    const response = await call("/basic-auth/ada/s3cret", { headers });
    assert.equal(response.status, 401, JSON.stringify(headers));
    assert.equal(response.headers.get("www-authenticate"), 'Basic realm="Fake Realm"');
  }
  // A password may hold a colon: only the first one ends the user name (RFC 7617 §2).
  const colon = await call("/basic-auth/u/a%3Ab", { headers: basic("u:a:b") });
  assert.equal(colon.status, 200);
  await colon.body?.cancel();
});

Deno.test("httpbin: /redirect/N is a chain of N 302s ending at /get", async () => {
  const chain = [];
  let path = "/redirect/3";
  for (let i = 0; i < 3; i++) {
    const response = await call(path, { redirect: "manual" });
    assert.equal(response.status, 302);
    path = response.headers.get("location")!;
    chain.push(path);
  }
  assert.deepEqual(chain, ["/redirect/2", "/redirect/1", "/get"]);
  const absolute = await call("/redirect/2?absolute=true");
  assert.equal(absolute.headers.get("location"), "http://httpbin.test/redirect/1?absolute=true");
  assert.equal((await call("/redirect/0")).status, 400);

  const server = start();
  try {
    const followed = await fetch(`${server.base}/redirect/4`);
    assert.equal(followed.status, 200);
    assert.equal(followed.redirected, true);
    assert.equal((await followed.json()).url, `${server.base}/get`);
  } finally {
    await server.close();
  }
});

Deno.test("httpbin: /cookies/set and /cookies/delete answer Set-Cookie and a redirect to /cookies", async () => {
  const set = await call("/cookies/set?a=1&b=two");
  assert.equal(set.status, 302);
  assert.equal(set.headers.get("location"), "/cookies");
  assert.deepEqual(set.headers.getSetCookie(), ["a=1; Path=/", "b=two; Path=/"]);
  const byPath = await call("/cookies/set/name/value");
  assert.deepEqual(byPath.headers.getSetCookie(), ["name=value; Path=/"]);
  const deleted = await call("/cookies/delete?a");
  assert.match(deleted.headers.getSetCookie()[0], /^a=; Expires=Thu, 01 Jan 1970 .*Max-Age=0/);
  // A value that would inject an attribute is refused (RFC 6265 §4.1.1).
  assert.equal((await call("/cookies/set?a=1%3B%20Domain%3Devil")).status, 400);
  assert.equal((await call("/cookies/set?a%20b=1")).status, 400);
});

Deno.test("httpbin: a wrong method is 405 with Allow; an unknown path is 404; OPTIONS is a CORS preflight", async () => {
  const wrong = await call("/get", { method: "POST", body: "x" });
  assert.equal(wrong.status, 405);
  assert.equal(wrong.headers.get("allow"), "GET, HEAD");
  await wrong.body?.cancel();
  const post = await call("/post");
  assert.equal(post.status, 405);
  assert.equal(post.headers.get("allow"), "POST");
  await post.body?.cancel();
  const missing = await call("/nope");
  assert.equal(missing.status, 404);
  assert.match(String((await jsonOf(missing)).error), /no route \/nope/);
  const preflight = await call("/post", {
    method: "OPTIONS",
    headers: { "access-control-request-headers": "x-custom" },
  });
  assert.equal(preflight.status, 204);
  assert.equal(preflight.headers.get("access-control-allow-origin"), "*");
  assert.equal(preflight.headers.get("access-control-allow-headers"), "x-custom");
  const index = await (await call("/")).text();
  assert.match(index, /\/flaky\/N/);
});

Deno.test("httpbin: HEAD /get answers the header fields and no body", async () => {
  const server = start();
  try {
    const response = await fetch(`${server.base}/get`, { method: "HEAD" });
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "application/json");
    assert.equal((await response.bytes()).length, 0);
  } finally {
    await server.close();
  }
});

Deno.test("httpbin: the log option gets one line per request", async () => {
  const lines: string[] = [];
  const handle = httpbinHandler({ log: (line) => lines.push(line) });
  await (await call("/status/204", {}, handle)).body?.cancel();
  await (await call("/get?x=1", {}, handle)).body?.cancel();
  assert.deepEqual(lines, ['127.0.0.1 "GET /status/204" 204', '127.0.0.1 "GET /get?x=1" 200']);
});

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

Deno.test("httpbin: the demo prints each route's answer and exits 0", async () => {
  const { code, stdout, stderr } = await runScript("httpbin");
  assert.equal(code, 0, stderr);
  assert.match(stdout, /^httpbin: listening on http:\/\/127\.0\.0\.1:\d+$/m);
  assert.match(stdout, /"X-Wirebook": "hello"/);
  assert.match(stdout, /DELETE \/get \(the wrong method\)\s+405/);
  assert.match(stdout, /GET \/flaky\/2\?key=demo \(request 3\)\s+200\s+\{"attempts":3\}/);
  assert.match(stdout, /stopped; nothing left listening/);
});

Deno.test("httpbin: serve logs requests and exits 0 on SIGTERM", async () => {
  const server = await startServer("httpbin", [], { scheme: "http" });
  const base = `http://127.0.0.1:${server.port}`;
  const response = await fetch(`${base}/ip`);
  assert.deepEqual(await response.json(), { origin: "127.0.0.1" });
  const { code, stdout } = await server.stop();
  assert.equal(code, 0);
  assert.match(stdout, /^127\.0\.0\.1 "GET \/ip" 200$/m);
});

Deno.test("httpbin: serve refuses a bad flag in one line, exit 2", async () => {
  const { code, stderr } = await runScript("httpbin", ["serve", "--max-delay", "x"]);
  assert.equal(code, 2);
  assert.match(stderr, /^error: --max-delay must be a number/);
  assert.equal(stderr.trim().split("\n").length, 1);
});

// ---------------------------------------------------------------------------
// Peers: curl and Python's urllib
// ---------------------------------------------------------------------------

peerTest(
  "httpbin: curl sends headers, a multipart file, Basic auth; follows redirects and keeps cookies",
  [
    PEERS.curl,
  ],
  async () => {
    const server = await startServer("httpbin", ["--quiet"], { scheme: "http" });
    const base = `http://127.0.0.1:${server.port}`;
    const dir = await Deno.makeTempDir({ prefix: "wirebook_httpbin_" });
    const curl = async (...args: string[]) => {
      const result = await run("curl", ["-sS", "--max-time", "10", ...args]);
      assert.equal(result.code, 0, result.stderr);
      return result.stdout;
    };
    try {
      const got = JSON.parse(await curl("-H", "X-From-Curl: yes", `${base}/get?via=curl`));
      assert.deepEqual(got.args, { via: "curl" });
      assert.equal(got.headers["X-From-Curl"], "yes");
      assert.match(got.headers["User-Agent"], /^curl\//);

      await Deno.writeTextFile(`${dir}/upload.txt`, "uploaded by curl\n");
      const posted = JSON.parse(
        await curl("-F", "field=value", "-F", `file=@${dir}/upload.txt`, `${base}/post`),
      );
      assert.deepEqual(posted.form, { field: "value" });
      assert.deepEqual(posted.files, { file: "uploaded by curl\n" });

      const auth = JSON.parse(await curl("-u", "ada:pw", `${base}/basic-auth/ada/pw`));
      assert.deepEqual(auth, { authenticated: true, user: "ada" });
      assert.equal(
        await curl("-o", "/dev/null", "-w", "%{http_code}", `${base}/basic-auth/ada/pw`),
        "401",
      );

      const redirected = await curl(
        "-L",
        "-o",
        "/dev/null",
        "-w",
        "%{num_redirects} %{url_effective}",
        `${base}/redirect/3`,
      );
      assert.equal(redirected, `3 ${base}/get`);

      // A cookie jar: /cookies/set sets, the redirect to /cookies sends them back.
      const jar = `${dir}/jar.txt`;
      const cookies = JSON.parse(
        await curl("-L", "-c", jar, "-b", jar, `${base}/cookies/set?k=v&n=1`),
      );
      assert.deepEqual(cookies, { cookies: { k: "v", n: "1" } });
      const afterDelete = JSON.parse(
        await curl("-L", "-c", jar, "-b", jar, `${base}/cookies/delete?k`),
      );
      assert.deepEqual(afterDelete, { cookies: { n: "1" } });

      // A chunked upload over the cap: curl sends no Content-Length.
      const big = await curl(
        "-o",
        "/dev/null",
        "-w",
        "%{http_code}",
        "-H",
        "Transfer-Encoding: chunked",
        "--data-binary",
        `@${await bigFile(dir)}`,
        `${base}/post`,
      );
      assert.equal(big, "413");
    } finally {
      await Deno.remove(dir, { recursive: true });
      assert.equal((await server.stop()).code, 0);
    }
  },
);

async function bigFile(dir: string): Promise<string> {
  const path = `${dir}/big.bin`;
  await Deno.writeFile(path, new Uint8Array(2 * 1024 * 1024));
  return path;
}

peerTest(
  "httpbin: Python's urllib posts a form, answers a Basic challenge, sees HTTPError and redirects",
  [
    PEERS.python3,
  ],
  async () => {
    const server = await startServer("httpbin", ["--quiet"], { scheme: "http" });
    const base = `http://127.0.0.1:${server.port}`;
    const program = `
import base64, json, sys, urllib.error, urllib.parse, urllib.request
base = sys.argv[1]
out = {}
data = urllib.parse.urlencode({"name": "ada", "tag": ["a", "b"]}, doseq=True).encode()
with urllib.request.urlopen(base + "/post", data=data) as r:
    out["form"] = json.load(r)["form"]
# HTTPBasicAuthHandler sends credentials only after a 401 challenge names the realm.
passwords = urllib.request.HTTPPasswordMgrWithDefaultRealm()
passwords.add_password(None, base, "ada", "pw")
opener = urllib.request.build_opener(urllib.request.HTTPBasicAuthHandler(passwords))
with opener.open(base + "/basic-auth/ada/pw") as r:
    out["auth"] = json.load(r)
try:
    urllib.request.urlopen(base + "/status/418")
except urllib.error.HTTPError as e:
    out["error"] = [e.code, "teapot" in e.read().decode()]
with urllib.request.urlopen(base + "/redirect/2") as r:
    out["redirected"] = r.geturl()
req = urllib.request.Request(base + "/anything", data=b'{"x": 1}', method="PATCH",
                             headers={"Content-Type": "application/json"})
with urllib.request.urlopen(req) as r:
    body = json.load(r)
    out["patch"] = [body["method"], body["json"], body["headers"]["User-Agent"].split("/")[0]]
print(json.dumps(out))
`;
    try {
      const result = await run(PYTHON, ["-c", program, base]);
      assert.equal(result.code, 0, result.stderr);
      assert.deepEqual(JSON.parse(result.stdout), {
        form: { name: "ada", tag: ["a", "b"] },
        auth: { authenticated: true, user: "ada" },
        error: [418, true],
        redirected: `${base}/get`,
        patch: ["PATCH", { x: 1 }, "Python-urllib"],
      });
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
  },
);
