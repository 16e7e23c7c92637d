// scripts/concurrent_clients.ts: the two accept loops, told apart by how many
// clients each serves at once (never by timing), and its command line.

import assert from "node:assert/strict";
import {
  Gauge,
  type Mode,
  sendClients,
  serveGreetings,
  slowClient,
} from "../scripts/concurrent_clients.ts";
import { writeAll } from "../lib/write_all.ts";
import { PEERS, peerTest, PYTHON, run, runScript, startServer, within } from "./_helpers.ts";

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** Read until the peer closes; returns what was read, as UTF-8. */
async function readText(conn: Deno.Conn): Promise<string> {
  const decoder = new TextDecoder();
  const buffer = new Uint8Array(1024);
  let text = "";
  for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
    text += decoder.decode(buffer.subarray(0, n), { stream: true });
  }
  return text + decoder.decode();
}

/** Read the server's question, up to its newline. */
async function readQuestion(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64);
  let question = "";
  while (!question.endsWith("\n")) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("no question");
    question += new TextDecoder().decode(buffer.subarray(0, n));
  }
}

/** Write each [conn, byte] in turn, a pause after each, so each is a read of its own. */
async function interleave(writes: [Deno.Conn, number][]): Promise<void> {
  for (const [conn, byte] of writes) {
    await writeAll(conn, Uint8Array.of(byte));
    await sleep(50);
  }
}

function round(mode: Mode, count: number, idleTimeout = 10_000) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const gauge = new Gauge();
  const server = serveGreetings(listener, mode, gauge, idleTimeout);
  return {
    port: listener.addr.port,
    gauge,
    async finish() {
      listener.close();
      await server;
    },
    clients: () => sendClients("127.0.0.1", listener.addr.port, count, 5),
  };
}

Deno.test("concurrent_clients: the one-at-a-time server never serves two clients at once", async () => {
  const server = round("one-at-a-time", 6);
  const answers = await server.clients();
  await server.finish();
  assert.equal(server.gauge.peak, 1);
  assert.deepEqual(
    answers.map((a) => a.reply).sort(),
    Array.from({ length: 6 }, (_, i) => `hello, client ${i + 1}`).sort(),
  );
});

Deno.test("concurrent_clients: the concurrent server serves every waiting client at once", async () => {
  const server = round("concurrent", 6);
  const answers = await server.clients();
  await server.finish();
  // Each client waits for the server's question before it speaks, so all six
  // can only be in progress together if the server took them all at once.
  assert.equal(server.gauge.peak, 6);
  assert.equal(answers.length, 6);
  assert.equal(server.gauge.current, 0);
});

Deno.test("concurrent_clients: a silent client is dropped on idle timeout and the next one is served", async () => {
  for (const mode of ["one-at-a-time", "concurrent"] as const) {
    const server = round(mode, 1, 200);
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    // Dropped after the configured 0.2 s, not the 10 s default.
    const reply = await within(
      5000,
      `${mode}: the patient client served`,
      () => slowClient("127.0.0.1", server.port, "patient", 0),
    );
    assert.equal(reply, "hello, patient", mode);
    // The silent client got the question, then the server hung up on it.
    const heard = await within(5000, `${mode}: the silent client dropped`, async () => {
      let text = "";
      for await (const chunk of silent.readable) text += new TextDecoder().decode(chunk);
      return text;
    });
    assert.equal(heard, "your name?\n", mode);
    await server.finish();
  }
});

Deno.test("concurrent_clients: a name over the cap is refused without an answer", async () => {
  const server = round("concurrent", 1);
  const reply = await slowClient("127.0.0.1", server.port, "x".repeat(300), 0).catch((e) => e);
  await server.finish();
  assert.ok(reply === "" || reply instanceof Error, String(reply));
});

Deno.test("concurrent_clients: two clients sending names split mid-character each get their own name back", async () => {
  const server = round("concurrent", 2);
  const a = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  const b = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
  try {
    await Promise.all([readQuestion(a), readQuestion(b)]);
    // "é" is C3 A9 in UTF-8, "ü" is C3 BC: the server reads each half
    // separately, one client's between the other's.
    await interleave([[a, 0xc3], [b, 0xc3], [a, 0xa9], [b, 0xbc]]);
    await a.closeWrite();
    await b.closeWrite();
    assert.deepEqual(await Promise.all([readText(a), readText(b)]), ["hello, é\n", "hello, ü\n"]);
  } finally {
    a.close();
    b.close();
    await server.finish();
  }
});

Deno.test("concurrent_clients: a name that ends mid-character is answered with U+FFFD, and does not spill into the next", async () => {
  const server = round("one-at-a-time", 2);
  try {
    for (
      const [bytes, expected] of [[[0x61, 0xc3], "hello, a\uFFFD\n"], [
        [0xa9],
        "hello, \uFFFD\n",
      ]] as const
    ) {
      const conn = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
      await readQuestion(conn);
      await writeAll(conn, Uint8Array.from(bytes));
      await conn.closeWrite();
      assert.equal(await readText(conn), expected);
      conn.close();
    }
  } finally {
    await server.finish();
  }
});

Deno.test("concurrent_clients: two slowClients each decode their own reply, split mid-character", async () => {
  // A server of our own that answers both clients a byte at a time, interleaved.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const serving = (async () => {
    const conns = [await listener.accept(), await listener.accept()];
    try {
      for (const conn of conns) await writeAll(conn, new TextEncoder().encode("your name?\n"));
      for (const conn of conns) await readText(conn);
      const [a, b] = conns;
      await interleave([[a, 0xc3], [b, 0xc3], [a, 0xa9], [b, 0xbc]]);
    } finally {
      for (const conn of conns) conn.close();
    }
  })();
  const port = listener.addr.port;
  const replies = await Promise.all([
    slowClient("127.0.0.1", port, "a", 0),
    slowClient("127.0.0.1", port, "b", 0),
  ]);
  await serving;
  listener.close();
  assert.deepEqual(replies.sort(), ["é", "ü"]);
});

Deno.test("concurrent_clients: an --idle-timeout longer than a timer can wait is a usage error, exit 2", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = String(busy.addr.port);
    const result = await runScript("concurrent_clients", [
      "serve",
      "--port",
      port,
      "--idle-timeout",
      "3000000",
    ], { timeout: 10_000 });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error: --idle-timeout must be a number from 0\.001 to 86400/);
  } finally {
    busy.close();
  }
});

Deno.test("concurrent_clients: the demo contrasts the two servers", async () => {
  const { code, stdout, stderr } = await runScript("concurrent_clients");
  assert.equal(code, 0, stderr);
  assert.match(stdout, /one-at-a-time server, listening on tcp:\/\/127\.0\.0\.1:\d+/);
  assert.match(stdout, /all 5 answered after \d+ ms; at most 1 client\(s\) served at once/);
  assert.match(stdout, /all 5 answered after \d+ ms; at most 5 client\(s\) served at once/);
  assert.equal(stdout.match(/"hello, client \d"/g)?.length, 10);
});

Deno.test("concurrent_clients: `serve` answers `clients`, in both modes; a bad mode is a usage error", async () => {
  for (const mode of ["one-at-a-time", "concurrent"]) {
    const server = await startServer("concurrent_clients", ["--mode", mode]);
    const result = await runScript("concurrent_clients", [
      "clients",
      "--port",
      String(server.port),
      "--count",
      "3",
      "--delay",
      "1",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.match(/"hello, client \d"/g)?.length, 3);
    assert.equal((await server.stop()).code, 0);
  }
  const bad = await runScript("concurrent_clients", ["serve", "--mode", "threads"]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: --mode must be one-at-a-time or concurrent/);
});

peerTest("concurrent_clients: Python clients in threads are all served at once", [
  PEERS.python3,
], async () => {
  const server = await startServer("concurrent_clients");
  const clients = `
import socket, sys, threading
replies = []
def client(i):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    f = s.makefile("rb")
    assert f.readline() == b"your name?\\n"
    s.sendall(b"py%d" % i)
    s.shutdown(socket.SHUT_WR)
    replies.append(f.read().decode())
threads = [threading.Thread(target=client, args=(i,)) for i in range(20)]
for t in threads: t.start()
for t in threads: t.join()
print(len(replies), all(r == "hello, py%d\\n" % int(r.split("py")[1]) for r in replies))
`;
  try {
    const result = await run(PYTHON, ["-c", clients, String(server.port)]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stdout.trim(), "20 True");
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("concurrent_clients: SIGTERM hangs up on clients being served, in both modes", async () => {
  for (const mode of ["one-at-a-time", "concurrent"]) {
    const server = await startServer("concurrent_clients", [
      "--mode",
      mode,
      "--idle-timeout",
      "600",
    ]);
    const silent = await Deno.connect({ hostname: "127.0.0.1", port: server.port });
    const question = new Uint8Array(64);
    assert.ok((await silent.read(question)) !== null, "the server is serving the silent client");
    const { code } = await server.stop();
    assert.equal(code, 0, mode);
    assert.equal(await silent.read(question), null, `${mode}: the server hung up`);
    silent.close();
  }
});

Deno.test("concurrent_clients: serveGreetings with a signal aborted already returns at once", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await serveGreetings(listener, "concurrent", new Gauge(), 1000, AbortSignal.abort());
  await assert.rejects(Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }));
});
