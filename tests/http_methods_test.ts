// scripts/http_methods.ts: every probe in the reference makes the raw server
// answer what the reference says it does; the command line (the tables,
// `show`, `--url`); and the same probes against nginx, a server no one here
// wrote, which answers several of them in its own way.

import assert from "node:assert/strict";
import {
  describeResult,
  METHODS,
  runProbe,
  startReferenceServer,
  STATUSES,
} from "../scripts/http_methods.ts";
import { fieldValue } from "../scripts/http_raw_client.ts";
import { PEERS, peerTest, runScript, startNginx } from "./_helpers.ts";

Deno.test("http_methods: each status probe gets its status from the raw server (206: a 200, ranges unsupported)", async () => {
  const server = startReferenceServer();
  try {
    for (const status of STATUSES) {
      const result = await runProbe(server.url, status.probe);
      assert.equal(result.error, undefined, `${status.code}: ${result.error}`);
      if (status.code === 100) {
        assert.deepEqual(result.informational, [100]);
        assert.equal(result.status, 200);
      } else if (status.code === 206) {
        assert.equal(result.status, 200);
        assert.equal(status.natural, false);
      } else {
        assert.equal(result.status, status.code, `${status.code} ${result.sent}`);
        assert.equal(result.reason, status.reason);
      }
      // A probe that asks /status/NNN is marked as not natural, and the other way round.
      assert.equal(
        status.probe.target.startsWith("/status/"),
        !status.natural && status.code !== 206,
        `${status.code}`,
      );
    }
  } finally {
    await server.close();
  }
});

Deno.test("http_methods: the method probes: GET/HEAD/POST/PUT/OPTIONS work, the others get 405 with Allow (CONNECT 501)", async () => {
  const server = startReferenceServer();
  try {
    const results = new Map<string, Awaited<ReturnType<typeof runProbe>>>();
    for (const method of METHODS) {
      results.set(method.name, await runProbe(server.url, method.probe));
    }
    const get = results.get("GET")!;
    const head = results.get("HEAD")!;
    assert.equal(get.status, 200);
    assert.equal(head.status, 200);
    assert.equal(head.bodyLength, 0);
    assert.equal(head.framing, "none");
    // HEAD's Content-Length is the one GET's body has (RFC 9110 §9.3.2).
    assert.equal(Number(fieldValue(head.headers, "content-length")), get.bodyLength);
    assert.equal(results.get("POST")!.gist, "posted");
    assert.equal(results.get("PUT")!.gist, "put here");
    const options = results.get("OPTIONS")!;
    assert.deepEqual([options.status, options.bodyLength], [200, 0]);
    assert.equal(fieldValue(options.headers, "allow"), "GET, HEAD, OPTIONS");
    for (const name of ["DELETE", "TRACE"]) {
      assert.equal(results.get(name)!.status, 405, name);
      assert.equal(fieldValue(results.get(name)!.headers, "allow"), "GET, HEAD, OPTIONS", name);
    }
    assert.equal(
      fieldValue(results.get("PATCH")!.headers, "allow"),
      "GET, HEAD, POST, PUT, OPTIONS",
    );
    // CONNECT: no tunnel here; the server is no proxy.
    assert.equal(results.get("CONNECT")!.status, 501);
    // Safe methods are idempotent (RFC 9110 §9.2.2).
    for (const method of METHODS) assert.ok(!method.safe || method.idempotent, method.name);
  } finally {
    await server.close();
  }
});

Deno.test("describeResult() shows the status, the fields that matter, and the error text", () => {
  const base = { sent: "X", informational: [], bodyLength: 0, gist: "" };
  assert.equal(
    describeResult({
      ...base,
      status: 405,
      reason: "Method Not Allowed",
      headers: [["Allow", "GET, HEAD"]],
      framing: "length",
      gist: "405 Method Not Allowed: use GET or HEAD",
    }),
    '405 Method Not Allowed; Allow: GET, HEAD; "use GET or HEAD"',
  );
  assert.equal(
    describeResult({
      ...base,
      status: 200,
      reason: "OK",
      informational: [100],
      headers: [["Content-Length", "5"]],
      framing: "none",
    }),
    "100, then 200 OK; no body (Content-Length: 5)",
  );
  assert.equal(
    describeResult({ ...base, headers: [], error: "timed out" }),
    "no answer: timed out",
  );
});

Deno.test("runProbe() reports a refused connection as its error, never throws", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const url = `http://127.0.0.1:${listener.addr.port}`;
  listener.close();
  const result = await runProbe(url, METHODS[0].probe);
  assert.match(result.error!, /connection refused/);
});

Deno.test("http_methods: the demo prints both tables with live answers", async () => {
  const result = await runScript("http_methods");
  assert.equal(result.code, 0, result.stderr);
  assert.equal(result.stderr, "");
  for (const method of METHODS) assert.match(result.stdout, new RegExp(`^${method.name} `, "m"));
  for (const status of STATUSES) {
    assert.match(result.stdout, new RegExp(`^${status.code} ${status.reason}`, "m"));
  }
  assert.match(
    result.stdout,
    /live: DELETE \/about HTTP\/1\.1 -> 405 Method Not Allowed; Allow: GET, HEAD, OPTIONS/,
  );
  assert.match(result.stdout, /live: GET \/ HTTP\/2\.0 .* -> 505 HTTP Version Not Supported/);
  assert.match(result.stdout, /server: stopped; nothing left listening/);
});

Deno.test("http_methods: methods, statuses, show NAME|CODE, and bad arguments", async () => {
  const methods = await runScript("http_methods", ["methods"]);
  assert.equal(methods.code, 0, methods.stderr);
  assert.match(methods.stdout, /^PATCH /m);
  assert.doesNotMatch(methods.stdout, /STATUS CODES/);

  const show = await runScript("http_methods", ["show", "delete"]);
  assert.equal(show.code, 0, show.stderr);
  assert.match(show.stdout, /^DELETE \(RFC 9110 §9\.3\.5\)$/m);
  assert.match(show.stdout, /^ {2}> DELETE \/about HTTP\/1\.1$/m);
  assert.match(show.stdout, /^ {2}< HTTP\/1\.1 405 Method Not Allowed$/m);
  assert.match(show.stdout, /^ {2}< Allow: GET, HEAD, OPTIONS$/m);

  const code = await runScript("http_methods", ["show", "408"]);
  assert.equal(code.code, 0, code.stderr);
  assert.match(code.stdout, /^ {2}> Host: 127\.0\.0\.1:\d+$/m);
  assert.match(code.stdout, /^ {2}< HTTP\/1\.1 408 Request Timeout$/m);

  for (const args of [["show"], ["show", "999"], ["show", "GET", "POST"], ["dance"]]) {
    const bad = await runScript("http_methods", args);
    assert.equal(bad.code, 2, args.join(" "));
    assert.match(bad.stderr, /^error: /);
    assert.equal(bad.stderr.trim().split("\n").length, 1);
  }
});

Deno.test("http_methods --url: another server (Deno.serve) answers in its own way", async () => {
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen() {} },
    (request) => new Response(`${request.method} seen\n`, { status: 418 }),
  );
  try {
    const result = await runScript("http_methods", [
      "methods",
      "--url",
      `http://127.0.0.1:${server.addr.port}/`,
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.doesNotMatch(result.stdout, /^server: listening/m);
    assert.match(result.stdout, /live: PATCH \/echo HTTP\/1\.1 -> 418 I'm a Teapot; "PATCH seen"/i);
  } finally {
    await server.shutdown();
  }
});

// nginx, on a port of its own, with an empty site.
async function startEmptyNginx(): Promise<{ url: string; stop(): Promise<void> }> {
  const dir = await Deno.makeTempDir({ prefix: "wirebook_methods_" });
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/www`, { mode: 0o755 });
  try {
    const nginx = await startNginx(dir, "client_header_timeout 1s;");
    return {
      url: nginx.url,
      async stop() {
        await nginx.stop();
        await Deno.remove(dir, { recursive: true });
      },
    };
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw error;
  }
}

peerTest("http_methods --url: nginx answers the malformed-request probes as RFC 9110 says", [
  PEERS.nginx,
], async () => {
  const nginx = await startEmptyNginx();
  try {
    const expected = new Map([[400, 400], [404, 404], [405, 405], [414, 414], [501, 501], [
      505,
      505,
    ]]);
    for (const status of STATUSES.filter((s) => expected.has(s.code))) {
      const result = await runProbe(nginx.url, status.probe);
      assert.equal(
        result.status,
        expected.get(status.code),
        `${status.code}: ${describeResult(result)}`,
      );
    }
    // nginx's own reason phrase for 405: the phrase is for people, the code is what counts.
    const del = await runProbe(nginx.url, { method: "DELETE", target: "/" });
    assert.equal(del.status, 405);
    const cli = await runScript("http_methods", ["statuses", "--url", nginx.url, "--timeout", "3"]);
    assert.equal(cli.code, 0, cli.stderr);
    assert.match(cli.stdout, /live: GET \/ HTTP\/1\.1 \(no Host\) -> 400 Bad Request/);
    // nginx's client_header_timeout (1 s here) closes without a word: no 408 on the wire.
    assert.match(cli.stdout, /a head that never ends\) -> (408|no answer)/);
  } finally {
    await nginx.stop();
  }
});
