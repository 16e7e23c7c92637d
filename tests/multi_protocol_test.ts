// scripts/multi_protocol.ts: three servers in one process, each reached by
// its own client, one stop for all of them, a failed start that leaves
// nothing open, and the command line (three banners, SIGTERM, --port).
//
// Run with --unstable-net (deno task test passes it), for the UDP echo.

import assert from "node:assert/strict";
import { serveAll } from "../scripts/multi_protocol.ts";
import { connectEcho, echo, hangUp } from "../scripts/tcp_echo.ts";
import { listenUdp, UdpEchoClient } from "../scripts/udp_echo.ts";
import { runScript, startServer } from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();

// A TCP port that was free a moment ago (bind port 0, note it, close).
function freeTcpPort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  listener.close();
  return listener.addr.port;
}

async function udpEcho(port: number, text: string): Promise<string> {
  const client = new UdpEchoClient(listenUdp("127.0.0.1", 0), { hostname: "127.0.0.1", port }, {
    timeout: 2000,
    log: () => {},
  });
  try {
    return decoder.decode((await client.echo(encoder.encode(text))).reply);
  } finally {
    client.close();
  }
}

async function tcpEcho(port: number, text: string): Promise<string> {
  const conn = await connectEcho("127.0.0.1", port);
  try {
    return decoder.decode((await echo(conn, encoder.encode(text))).reply);
  } finally {
    await hangUp(conn);
  }
}

async function hello(port: number, name: string): Promise<string> {
  const response = await fetch(`http://127.0.0.1:${port}/hello?name=${name}`);
  return (await response.text()).match(/<p>(.*)<\/p>/)?.[1] ?? `(status ${response.status})`;
}

Deno.test("serveAll(): a TCP echo, a UDP echo and the site, each with its own log prefix", async () => {
  const stop = new AbortController();
  const lines: string[] = [];
  const server = serveAll({ log: (line) => lines.push(line), signal: stop.signal });
  try {
    assert.equal(await tcpEcho(server.tcp.port, "over tcp"), "over tcp");
    assert.equal(await udpEcho(server.udp.port, "over udp"), "over udp");
    assert.equal(await hello(server.http.port, "multi"), "Hello, multi!");
  } finally {
    stop.abort();
    await server.finished;
  }
  assert.ok(lines.some((line) => /^tcp: 127\.0\.0\.1:\d+ connected$/.test(line)), lines.join("\n"));
  assert.ok(lines.some((line) => /^udp: #1 from 127\.0\.0\.1:\d+: 8 bytes, echoed$/.test(line)));
  assert.ok(
    lines.some((line) => /^http: 127\.0\.0\.1:\d+ "GET \/hello\?name=multi" 200$/.test(line)),
  );
});

Deno.test("serveAll(): the three loops serve at once: a TCP client left connected blocks no one", async () => {
  const stop = new AbortController();
  const server = serveAll({ log: () => {}, signal: stop.signal });
  const parked = await connectEcho("127.0.0.1", server.tcp.port);
  try {
    // Twenty of each, all in flight together with the parked connection.
    const results = await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        Promise.all([
          tcpEcho(server.tcp.port, `t${i}`),
          udpEcho(server.udp.port, `u${i}`),
          hello(server.http.port, `h${i}`),
        ])),
    );
    results.forEach(([t, u, h], i) => {
      assert.deepEqual([t, u, h], [`t${i}`, `u${i}`, `Hello, h${i}!`]);
    });
    assert.equal(decoder.decode((await echo(parked, encoder.encode("still"))).reply), "still");
  } finally {
    stop.abort();
    await server.finished;
    parked.close();
  }
});

Deno.test("serveAll(): one abort stops all three, hanging up on a connected client", async () => {
  const stop = new AbortController();
  const server = serveAll({ log: () => {}, signal: stop.signal });
  const client = await connectEcho("127.0.0.1", server.tcp.port);
  await echo(client, encoder.encode("hi"));
  stop.abort();
  await server.finished;
  assert.equal(await client.read(new Uint8Array(8)), null);
  client.close();
  await assert.rejects(connectEcho("127.0.0.1", server.tcp.port));
  await assert.rejects(fetch(`http://127.0.0.1:${server.http.port}/`));
  // The UDP port is free again: binding it works.
  const again = listenUdp("127.0.0.1", server.udp.port);
  again.close();
});

Deno.test("serveAll(): TCP and UDP can share one port number", async () => {
  // The UDP side of a free TCP port is almost always free too; try a few.
  for (let i = 0;; i++) {
    const port = freeTcpPort();
    const stop = new AbortController();
    let server;
    try {
      server = serveAll({ tcpPort: port, udpPort: port, log: () => {}, signal: stop.signal });
    } catch (error) {
      if (error instanceof Deno.errors.AddrInUse && i < 5) continue;
      throw error;
    }
    try {
      assert.equal(server.tcp.port, server.udp.port);
      assert.equal(await tcpEcho(port, "tcp side"), "tcp side");
      assert.equal(await udpEcho(port, "udp side"), "udp side");
    } finally {
      stop.abort();
      await server.finished;
    }
    return;
  }
});

Deno.test("serveAll(): a port in use fails the start and leaves nothing open", () => {
  const taken = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const tcpPort = freeTcpPort();
  const udp = listenUdp("127.0.0.1", 0);
  const udpPort = (udp.addr as Deno.NetAddr).port;
  udp.close();
  try {
    assert.throws(
      () => serveAll({ tcpPort, udpPort, httpPort: taken.addr.port, log: () => {} }),
      Deno.errors.AddrInUse,
    );
    // The TCP and UDP sockets it had opened before the HTTP one failed were closed.
    Deno.listen({ hostname: "127.0.0.1", port: tcpPort }).close();
    listenUdp("127.0.0.1", udpPort).close();
  } finally {
    taken.close();
  }
});

Deno.test("serveAll(): an already aborted signal opens nothing", () => {
  const reason = new Error("stopped before it started");
  assert.throws(
    () => serveAll({ log: () => {}, signal: AbortSignal.abort(reason) }),
    (error) => error === reason,
  );
});

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

Deno.test("multi_protocol serve: three banners, all three answer, SIGTERM stops them, exit 0", async () => {
  const [tcp, http] = [freeTcpPort(), freeTcpPort()];
  const udpSocket = listenUdp("127.0.0.1", 0);
  const udp = (udpSocket.addr as Deno.NetAddr).port;
  udpSocket.close();
  const server = await startServer("multi_protocol", [
    "--tcp-port",
    String(tcp),
    "--udp-port",
    String(udp),
    "--http-port",
    String(http),
  ]);
  assert.equal(server.banner, `listening on tcp://127.0.0.1:${tcp}`);
  const idle = await connectEcho("127.0.0.1", tcp);
  try {
    assert.equal(await tcpEcho(tcp, "cli tcp"), "cli tcp");
    assert.equal(await udpEcho(udp, "cli udp"), "cli udp");
    assert.equal(await hello(http, "cli"), "Hello, cli!");
  } finally {
    const { code, stdout } = await server.stop();
    idle.close();
    assert.equal(code, 0);
    const banners = stdout.split("\n").filter((line) => line.startsWith("listening on"));
    assert.deepEqual(banners, [
      `listening on tcp://127.0.0.1:${tcp}`,
      `listening on udp://127.0.0.1:${udp}`,
      `listening on http://127.0.0.1:${http}`,
    ]);
    assert.match(stdout, /^tcp: .* disconnected after 0 bytes echoed \(shutdown\)$/m);
  }
});

Deno.test("multi_protocol serve --port P: both echoes on P, the site on P+1", async () => {
  for (let i = 0;; i++) {
    const a = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = a.addr.port;
    let b;
    try {
      b = Deno.listen({ hostname: "127.0.0.1", port: port + 1 });
    } catch (error) {
      a.close();
      if (i < 10) continue;
      throw error;
    }
    a.close();
    b.close();
    let server;
    try {
      server = await startServer("multi_protocol", ["--port", String(port), "--quiet"]);
    } catch (error) {
      if (i < 10 && /AddrInUse|in use/i.test(String(error))) continue;
      throw error;
    }
    try {
      assert.equal(await tcpEcho(port, "p"), "p");
      assert.equal(await udpEcho(port, "p"), "p");
      assert.equal(await hello(port + 1, "p"), "Hello, p!");
    } finally {
      assert.equal((await server.stop()).code, 0);
    }
    return;
  }
});

Deno.test("multi_protocol: usage errors exit 2; no --unstable-net is one error line, exit 1", async () => {
  for (const args of [["serve", "--port", "65535"], ["listen"], ["serve", "extra"]]) {
    const result = await runScript("multi_protocol", args);
    assert.equal(result.code, 2, `${args.join(" ")}: ${result.stderr}`);
    assert.match(result.stderr, /^error: .+\n$/, `${args.join(" ")}: ${result.stderr}`);
  }
  const stable = await runScript("multi_protocol", ["serve", "--port", "0"], {
    flags: ["--allow-net=127.0.0.1"],
  });
  assert.equal(stable.code, 1);
  assert.match(stable.stderr, /^error: .*--unstable-net\s*$/);
  assert.equal(stable.stdout, "");
});
