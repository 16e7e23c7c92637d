// scripts/http_client.ts: HttpClient against the local httpbin: URLs and
// query parameters, header fields, JSON and form bodies echoed back, and the
// three failures told apart (an error status, a refused connection, a
// timeout), plus a cancel; then the command line, where each failure is one
// `error:` line, and the demo pointed at a running httpbin with --url.

import assert from "node:assert/strict";
import { HttpClient, HttpError, NetworkError, TimeoutError } from "../scripts/http_client.ts";
import { serveHttpbin } from "../scripts/httpbin.ts";
import { runScript, startServer } from "./_helpers.ts";

type Echo = {
  args: Record<string, string | string[]>;
  data: string;
  files: Record<string, string>;
  form: Record<string, string | string[]>;
  headers: Record<string, string>;
  json: unknown;
  method: string;
  url: string;
};

/** A local httpbin and a client for it; `close()` stops the server. */
function setup(options: ConstructorParameters<typeof HttpClient>[0] = {}) {
  const stop = new AbortController();
  const server = serveHttpbin({ signal: stop.signal });
  const base = `http://127.0.0.1:${server.addr.port}`;
  return {
    base,
    client: new HttpClient({ baseUrl: base, ...options }),
    async close() {
      stop.abort();
      await server.finished;
    },
  };
}

function closedPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return listener.addr.port;
}

// ---------------------------------------------------------------------------
// The class
// ---------------------------------------------------------------------------

Deno.test("HttpClient.url() keeps the base URL's path, adds query parameters, passes absolute URLs", () => {
  const client = new HttpClient({ baseUrl: "https://api.example/v1" });
  assert.equal(client.url("/users").href, "https://api.example/v1/users");
  assert.equal(client.url("users/7").href, "https://api.example/v1/users/7");
  assert.equal(
    client.url("/search?x=1", { q: "a b&c", tag: ["t1", "t2"], skip: undefined, n: 2 }).href,
    "https://api.example/v1/search?x=1&q=a+b%26c&tag=t1&tag=t2&n=2",
  );
  assert.equal(client.url("http://other.example/x").href, "http://other.example/x");
  assert.throws(() => new HttpClient().url("/relative"), TypeError);
  assert.throws(() => new HttpClient({ timeout: 0 }), RangeError);
});

Deno.test("HttpClient: GET with query parameters and header fields, defaults overridden per request", async () => {
  const { client, close } = setup({ headers: { "x-team": "net", "user-agent": "wb/1" } });
  try {
    const echo = await client.get<Echo>("/get", {
      query: { q: "deno", page: 2 },
      headers: { "user-agent": "wb/2", "x-request": "1" },
    });
    assert.deepEqual(echo.args, { q: "deno", page: "2" });
    assert.equal(echo.headers["X-Team"], "net");
    assert.equal(echo.headers["X-Request"], "1");
    assert.equal(echo.headers["User-Agent"], "wb/2");
    // The JSON helpers ask for JSON.
    assert.equal(echo.headers["Accept"], "application/json");
  } finally {
    await close();
  }
});

Deno.test("HttpClient: POST/PUT/PATCH/DELETE with JSON, urlencoded and multipart bodies, echoed", async () => {
  const { client, close } = setup();
  try {
    const json = await client.post<Echo>("/post", { json: { a: [1, "two"], b: null } });
    assert.deepEqual(json.json, { a: [1, "two"], b: null });
    assert.equal(json.headers["Content-Type"], "application/json");

    const form = await client.put<Echo>("/put", { form: { name: "Ada", lang: "ts" } });
    assert.deepEqual(form.form, { name: "Ada", lang: "ts" });
    assert.match(form.headers["Content-Type"], /^application\/x-www-form-urlencoded/);

    const data = new FormData();
    data.append("title", "t");
    data.append("file", new File(["contents"], "f.txt"));
    const multipart = await client.patch<Echo>("/patch", { form: data });
    assert.deepEqual(multipart.form, { title: "t" });
    assert.deepEqual(multipart.files, { file: "contents" });
    assert.match(multipart.headers["Content-Type"], /^multipart\/form-data; boundary=/);

    const deleted = await client.delete<Echo>("/anything/items/3");
    assert.equal(deleted.method, "DELETE");
    assert.match(deleted.url, /\/anything\/items\/3$/);

    const raw = await client.post<Echo>("/post", {
      body: "plain",
      headers: { "content-type": "text/plain" },
    });
    assert.equal(raw.data, "plain");
  } finally {
    await close();
  }
});

Deno.test("HttpClient: bodies are read by type: JSON parsed, text as text, empty as undefined", async () => {
  const { client, close } = setup();
  try {
    assert.equal(
      (await client.get<{ slideshow: { title: string } }>("/json")).slideshow.title,
      "Sample Slide Show",
    );
    assert.match(await client.get<string>("/html"), /^<!DOCTYPE html>/);
    assert.equal(await client.get("/status/204"), undefined);
    // request() gives the Response itself, for bytes or streaming.
    const response = await client.request("GET", "/bytes/10?seed=1");
    assert.equal((await response.bytes()).length, 10);
  } finally {
    await close();
  }
});

Deno.test("HttpClient: a body labelled JSON that is not one JSON value comes back as text", async () => {
  const { client, close } = setup();
  // A server that sends a 500 whose "JSON" body is cut short.
  const broken = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () =>
      new Response('{"error": "oops', {
        status: 500,
        headers: { "content-type": "application/json" },
      }),
  );
  try {
    // httpbin's /stream/N: newline-delimited JSON under application/json.
    const lines = await client.get<string>("/stream/3");
    assert.equal(typeof lines, "string");
    assert.deepEqual(lines.trimEnd().split("\n").map((line) => JSON.parse(line).id), [0, 1, 2]);
    // An error status stays an HttpError, its body the text it was.
    const error = await client.get(`http://127.0.0.1:${broken.addr.port}/`).catch((e) => e);
    assert.ok(error instanceof HttpError, String(error));
    assert.equal(error.status, 500);
    assert.equal(error.body, '{"error": "oops');
  } finally {
    await broken.shutdown();
    await close();
  }
});

Deno.test("HttpClient: an error status is an HttpError carrying status, header fields and body", async () => {
  const { client, base, close } = setup();
  try {
    const error = await client.get("/flaky/1?key=t&retry-after=7").catch((e) => e);
    assert.ok(error instanceof HttpError, String(error));
    assert.equal(error.status, 429);
    assert.equal(error.statusText, "Too Many Requests");
    assert.equal(error.headers.get("retry-after"), "7");
    assert.deepEqual(error.body, {
      error: "failing on purpose: attempt 1 of 1 fails",
      attempts: 1,
    });
    assert.equal(error.message, `GET ${base}/flaky/1?key=t&retry-after=7: 429 Too Many Requests`);
  } finally {
    await close();
  }
});

Deno.test("HttpClient: a redirect is followed, and the error names the URL that answered", async () => {
  const { client, base, close } = setup();
  // httpbin has no redirect that ends in an error: a one-line server here sends one.
  const redirector = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    () => Response.redirect(`${base}/status/418`, 302),
  );
  try {
    const start = `http://127.0.0.1:${redirector.addr.port}/old`;
    const teapot = await client.get(start).catch((e) => e);
    assert.ok(teapot instanceof HttpError, String(teapot));
    assert.equal(teapot.status, 418);
    assert.match(String(teapot.body), /teapot/);
    assert.equal(teapot.url, `${base}/status/418`);
    assert.match(teapot.message, new RegExp(`^GET ${RegExp.escape(`${base}/status/418`)}: 418`));
  } finally {
    await redirector.shutdown();
    await close();
  }
});

Deno.test("HttpClient: a refused connection is a NetworkError, not an HttpError", async () => {
  const client = new HttpClient({ baseUrl: `http://127.0.0.1:${closedPort()}` });
  const error = await client.get("/get").catch((e) => e);
  assert.ok(error instanceof NetworkError, String(error));
  assert.equal(error.reason, "connection refused (nothing listens on that port)");
  assert.ok(error.cause instanceof TypeError, "the cause is fetch's own TypeError");
});

Deno.test("HttpClient: a server that closes without answering is a NetworkError", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const rude = (async () => {
    const conn = await listener.accept();
    // Read the request, then hang up without a word.
    await conn.read(new Uint8Array(4096));
    conn.close();
  })();
  try {
    const client = new HttpClient({ baseUrl: `http://127.0.0.1:${listener.addr.port}` });
    const error = await client.get("/").catch((e) => e);
    assert.ok(error instanceof NetworkError, String(error));
    assert.match(error.reason, /closed the connection/);
  } finally {
    await rude;
    listener.close();
  }
});

Deno.test("HttpClient: no answer within the timeout is a TimeoutError (a /delay beyond it)", async () => {
  const { client, close } = setup({ timeout: 5_000 });
  try {
    const error = await client.get("/delay/5", { timeout: 200 }).catch((e) => e);
    assert.ok(error instanceof TimeoutError, String(error));
    assert.equal(error.timeout, 200);
    assert.match(error.message, /\/delay\/5: no complete answer within 200 ms$/);
    assert.equal((error.cause as DOMException).name, "TimeoutError");
    // The client's default applies when the request sets none.
    const quick = new HttpClient({ baseUrl: client.baseUrl, timeout: 150 });
    assert.ok(await quick.get("/delay/5").catch((e) => e) instanceof TimeoutError);
  } finally {
    await close();
  }
});

Deno.test("HttpClient: a cancel rejects with the caller's own reason, not a TimeoutError", async () => {
  const { client, close } = setup();
  try {
    const controller = new AbortController();
    const pending = client.get("/delay/5", { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("user pressed stop")), 50);
    await assert.rejects(pending, /user pressed stop/);
  } finally {
    await close();
  }
});

Deno.test("HttpClient: a GET with a body is a TypeError before anything is sent", async () => {
  const client = new HttpClient({ baseUrl: `http://127.0.0.1:${closedPort()}` });
  await assert.rejects(client.get("/get", { json: {} }), /a GET request cannot have a body/);
});

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

Deno.test("http_client: get, post --json, put --form and head against httpbin serve", async () => {
  const server = await startServer("httpbin", ["--quiet"], { scheme: "http" });
  const base = `http://127.0.0.1:${server.port}`;
  try {
    const got = await runScript("http_client", [
      "get",
      `${base}/get`,
      "--query",
      "a=1",
      "--query=a=2",
      "--header",
      "X-One: 1",
      "--header",
      "X-Two: a: b",
    ]);
    assert.equal(got.code, 0, got.stderr);
    const echo = JSON.parse(got.stdout);
    assert.deepEqual(echo.args, { a: ["1", "2"] });
    assert.equal(echo.headers["X-One"], "1");
    assert.equal(echo.headers["X-Two"], "a: b");

    const posted = await runScript("http_client", ["post", `${base}/post`, "--json", '{"k":[1]}']);
    assert.equal(posted.code, 0, posted.stderr);
    assert.deepEqual(JSON.parse(posted.stdout).json, { k: [1] });

    const put = await runScript("http_client", [
      "put",
      "/put",
      "--url",
      base,
      "--form",
      "k=v",
      "--form",
      "k=w",
      "-i",
    ]);
    assert.equal(put.code, 0, put.stderr);
    assert.match(put.stdout, /^200 OK\n/);
    assert.match(put.stdout, /^content-type: application\/json$/m);
    assert.deepEqual(JSON.parse(put.stdout.slice(put.stdout.indexOf("{"))).form, { k: ["v", "w"] });

    const head = await runScript("http_client", ["head", `${base}/get`]);
    assert.equal(head.code, 0, head.stderr);
    assert.match(head.stdout, /^200 OK\n/);
    assert.doesNotMatch(head.stdout, /"args"/);

    const bytes = await runScript("http_client", ["get", `${base}/bytes/4?seed=1`]);
    assert.match(bytes.stdout, /^\(4 bytes of application\/octet-stream\) [0-9a-f ]+$/m);
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("http_client: get /stream/N (newline-delimited JSON) prints the lines, exit 0", async () => {
  const server = await startServer("httpbin", ["--quiet"], { scheme: "http" });
  try {
    const result = await runScript("http_client", [
      "get",
      `http://127.0.0.1:${server.port}/stream/3`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    const lines = result.stdout.trimEnd().split("\n");
    assert.deepEqual(lines.map((line) => JSON.parse(line).id), [0, 1, 2]);
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("http_client: an error status, a refused port and a timeout are one error: line each, exit 1", async () => {
  const server = await startServer("httpbin", ["--quiet"], { scheme: "http" });
  const base = `http://127.0.0.1:${server.port}`;
  const cases = [
    {
      args: ["get", `${base}/status/404`],
      error:
        /^error: GET .*\/status\/404: 404 Not Found: the server answered with an error status$/,
    },
    {
      args: ["get", `http://127.0.0.1:${closedPort()}/get`],
      error: /^error: GET .*: connection refused \(nothing listens on that port\); is the server/,
    },
    {
      args: ["get", `${base}/delay/5`, "--timeout", "0.2"],
      error: /^error: timed out \(GET .*\/delay\/5: no complete answer within 200 ms\).*--timeout$/,
    },
  ];
  try {
    for (const { args, error } of cases) {
      const result = await runScript("http_client", args);
      assert.equal(result.code, 1, `${args.join(" ")}: ${result.stderr}`);
      const lines = result.stderr.trim().split("\n");
      assert.equal(lines.length, 1, result.stderr);
      assert.match(lines[0], error);
    }
    // An error status with a body prints the body first, on stdout.
    const flaky = await runScript("http_client", ["get", `${base}/flaky/1?key=cli`]);
    assert.equal(flaky.code, 1);
    assert.match(flaky.stdout, /"attempts": 1/);
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("http_client: usage mistakes are one error: line, exit 2", async () => {
  for (
    const args of [
      ["get"],
      ["fetch", "http://127.0.0.1:1/"],
      ["get", "not a url"],
      ["post", "http://127.0.0.1:1/", "--json", "{"],
      ["post", "http://127.0.0.1:1/", "--json", "{}", "--form", "a=b"],
      ["get", "http://127.0.0.1:1/", "--json", "{}"],
      ["get", "http://127.0.0.1:1/", "--header", "no colon"],
      ["get", "http://127.0.0.1:1/", "--query"],
    ]
  ) {
    const result = await runScript("http_client", args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    const lines = result.stderr.trim().split("\n");
    assert.equal(lines.length, 1, result.stderr);
    assert.match(lines[0], /^error: /);
  }
});

Deno.test("http_client: a URL outside --allow-net is one error: line naming the flag", async () => {
  const result = await runScript("http_client", ["get", "http://example.com/"]);
  assert.equal(result.code, 1);
  assert.equal(
    result.stderr.trim(),
    "error: missing permission: needs net access to example.com:80; " +
      "run again with --allow-net=example.com",
  );
});

Deno.test("http_client: the demo shows each step and every failure kind, and --url points it elsewhere", async () => {
  const own = await runScript("http_client");
  assert.equal(own.code, 0, own.stderr);
  for (
    const expected of [
      /^== 1\. fetch/m,
      /GET \/status\/404 -> fetch resolves: status 404, ok: false/,
      /GET a closed port -> fetch rejects: TypeError: fetch failed/,
      /-> fetch rejects: TimeoutError/,
      /-> HttpError 418/,
      /-> NetworkError: connection refused/,
      /-> TimeoutError: no answer within 300 ms/,
    ]
  ) {
    assert.match(own.stdout, expected);
  }

  const server = await startServer("httpbin", ["--quiet"], { scheme: "http" });
  try {
    const base = `http://127.0.0.1:${server.port}`;
    const remote = await runScript("http_client", ["--url", base]);
    assert.equal(remote.code, 0, remote.stderr);
    assert.match(remote.stdout, new RegExp(`^using ${base}$`, "m"));
    assert.match(remote.stdout, new RegExp(`body\\.url: ${base}/get`));
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});
