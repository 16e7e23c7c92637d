// scripts/tcp_echo.ts: its server and client as a library, its command line,
// and both against peers no one here wrote (socat, Python's socket module).

import assert from "node:assert/strict";
import { connectEcho, echo, hangUp, serveEcho } from "../scripts/tcp_echo.ts";
import { withTimeout } from "../lib/with_timeout.ts";
import {
  DENO,
  freePort,
  PEERS,
  peerTest,
  PYTHON,
  randomBytes,
  readHeader,
  run,
  runScript,
  scriptPath,
  sha256,
  startServer,
  within,
} from "./_helpers.ts";

/** Start serveEcho on a free loopback port, collecting its log lines. */
function startEcho(options: { idleTimeout?: number; maxConnections?: number } = {}) {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const log: string[] = [];
  const done = serveEcho(listener, {
    ...options,
    log: (line) => log.push(line),
    signal: stop.signal,
  });
  return {
    port: listener.addr.port,
    log,
    async close() {
      stop.abort();
      await done;
    },
  };
}

/** Read until the peer closes; returns everything read. */
async function readToEnd(conn: Deno.Conn): Promise<Uint8Array> {
  const parts: Uint8Array[] = [];
  const buffer = new Uint8Array(65536);
  for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
    parts.push(buffer.slice(0, n));
  }
  const all = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    all.set(part, offset);
    offset += part.length;
  }
  return all;
}

Deno.test("tcp_echo: echo() returns exactly the bytes sent, for 0 B, 1 B and 10 MiB", async () => {
  const server = startEcho();
  try {
    const conn = await connectEcho("127.0.0.1", server.port);
    for (const size of [0, 1, 10 * 1024 * 1024]) {
      const message = randomBytes(size);
      const { reply, reads } = await echo(conn, message);
      assert.equal(await sha256(reply), await sha256(message), `${size} bytes`);
      if (size === 10 * 1024 * 1024) assert.ok(reads > 1, "10 MiB came in more than one read");
    }
    await hangUp(conn);
  } finally {
    await server.close();
  }
});

Deno.test("tcp_echo: 50 concurrent clients each get their own bytes back", async () => {
  const server = startEcho();
  try {
    await Promise.all(Array.from({ length: 50 }, async (_, i) => {
      const conn = await connectEcho("127.0.0.1", server.port);
      const message = randomBytes(1000 + i * 997);
      const { reply } = await echo(conn, message);
      assert.deepEqual(reply, message);
      await hangUp(conn);
    }));
    assert.equal(server.log.filter((line) => line.endsWith("connected")).length, 50);
  } finally {
    await server.close();
  }
  assert.equal(server.log.filter((line) => line.includes("disconnected")).length, 50);
});

Deno.test("tcp_echo: the server logs each peer's address on connect and disconnect", async () => {
  const server = startEcho();
  const conn = await connectEcho("127.0.0.1", server.port);
  const { port } = conn.localAddr as Deno.NetAddr;
  await echo(conn, new TextEncoder().encode("abc"));
  await hangUp(conn);
  await server.close();
  assert.deepEqual(server.log, [
    `127.0.0.1:${port} connected`,
    `127.0.0.1:${port} disconnected after 3 bytes echoed (the client closed)`,
  ]);
});

Deno.test("tcp_echo: an idle client is disconnected and others are still served", async () => {
  const server = startEcho({ idleTimeout: 200 });
  try {
    const idle = await connectEcho("127.0.0.1", server.port);
    // The server closes the idle connection: our read sees the end of the stream,
    // after the configured 0.2 s, not the 30 s default.
    const rest = await within(5000, "the idle connection closed", () => readToEnd(idle));
    assert.equal(rest.length, 0);
    idle.close();
    const fresh = await connectEcho("127.0.0.1", server.port);
    assert.deepEqual((await echo(fresh, new Uint8Array([7]))).reply, new Uint8Array([7]));
    await hangUp(fresh);
  } finally {
    await server.close();
  }
  assert.ok(server.log.some((line) => line.includes("(0.2 s idle)")), server.log.join("\n"));
});

Deno.test("tcp_echo: a client that sends but never reads is cut off once the server's writes stall", async () => {
  const server = startEcho({ idleTimeout: 300 });
  try {
    const greedy = await connectEcho("127.0.0.1", server.port);
    // Write far more than the socket buffers hold, never reading the echo. The
    // cut-off comes after the configured 0.3 s of stalled writes, not the 30 s default.
    const outcome = await within(
      5000,
      "the stalled connection cut off",
      () => writeUntilFails(greedy, 256 * 1024 * 1024),
    );
    assert.ok(
      outcome.failed,
      `the server never closed the stalled connection (${outcome.sent} B sent)`,
    );
    greedy.close();
    const fresh = await connectEcho("127.0.0.1", server.port);
    assert.deepEqual((await echo(fresh, new Uint8Array([1, 2]))).reply, new Uint8Array([1, 2]));
    await hangUp(fresh);
  } finally {
    await server.close();
  }
  assert.ok(server.log.some((line) => line.includes("idle")), server.log.join("\n"));
});

async function writeUntilFails(conn: Deno.Conn, limit: number) {
  const chunk = new Uint8Array(64 * 1024);
  let sent = 0;
  try {
    while (sent < limit) sent += await conn.write(chunk);
    return { failed: false, sent };
  } catch {
    return { failed: true, sent };
  }
}

Deno.test("tcp_echo: connections beyond maxConnections are refused, the others unharmed", async () => {
  const server = startEcho({ maxConnections: 2 });
  try {
    const first = await connectEcho("127.0.0.1", server.port);
    const second = await connectEcho("127.0.0.1", server.port);
    await echo(first, new Uint8Array([1])); // both are accepted and served
    await echo(second, new Uint8Array([2]));
    const third = await connectEcho("127.0.0.1", server.port);
    assert.equal((await readToEnd(third).catch(() => new Uint8Array())).length, 0);
    third.close();
    assert.deepEqual((await echo(first, new Uint8Array([3]))).reply, new Uint8Array([3]));
    await hangUp(first);
    await hangUp(second);
  } finally {
    await server.close();
  }
  assert.ok(server.log.some((line) => line.includes("refused: already 2 connections")));
});

Deno.test("tcp_echo: shutting down closes open connections and serveEcho returns", async () => {
  const server = startEcho();
  const conn = await connectEcho("127.0.0.1", server.port);
  await echo(conn, new Uint8Array([5]));
  await server.close();
  assert.equal((await readToEnd(conn).catch(() => new Uint8Array())).length, 0);
  conn.close();
  await assert.rejects(connectEcho("127.0.0.1", server.port), /cannot connect/);
});

Deno.test("tcp_echo: the demo shows three clients, a 1 MiB message in many reads, and a clean stop", async () => {
  const { code, stdout, stderr } = await runScript("tcp_echo");
  assert.equal(code, 0, stderr);
  assert.match(stdout, /server: listening on tcp:\/\/127\.0\.0\.1:\d+/);
  assert.match(
    stdout,
    /client A: sent 11 bytes, echo arrived in \d+ read\(s\): "hello, echo" \(identical\)/,
  );
  const big = stdout.match(/client C: sent 1048576 bytes, echo arrived in (\d+) read\(s\)/);
  assert.ok(big && Number(big[1]) > 1, stdout);
  assert.equal(stdout.match(/disconnected after/g)?.length, 3);
  assert.match(stdout, /server: stopped/);
});

Deno.test("tcp_echo: `serve` and `send` talk over loopback, messages from args and stdin", async () => {
  const server = await startServer("tcp_echo");
  try {
    const port = String(server.port);
    const fromArgs = await runScript("tcp_echo", ["send", "--port", port, "one", "two words"]);
    assert.equal(fromArgs.code, 0, fromArgs.stderr);
    assert.equal(fromArgs.stdout, "one\ntwo words\n");
    const fromStdin = await runScript("tcp_echo", ["send", "--port", port], {
      stdin: "alpha\r\nbeta\ngamma",
    });
    assert.equal(fromStdin.code, 0, fromStdin.stderr);
    assert.equal(fromStdin.stdout, "alpha\nbeta\ngamma\n");
  } finally {
    const { code, stdout } = await server.stop();
    assert.equal(code, 0);
    assert.match(stdout, /disconnected after \d+ bytes echoed \(the client closed\)/);
  }
});

Deno.test("tcp_echo: `send` to a port where nothing listens is one error line, exit 1", async () => {
  const port = freePort();
  const { code, stdout, stderr } = await runScript("tcp_echo", [
    "send",
    "--port",
    String(port),
    "x",
  ]);
  assert.equal(code, 1);
  assert.equal(stdout, "");
  assert.equal(stderr.trim().split("\n").length, 1);
  assert.match(
    stderr,
    new RegExp(`^error: cannot connect to tcp://127.0.0.1:${port}: connection refused`),
  );
});

Deno.test("tcp_echo: `serve` on a port in use is one error line, exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const result = await runScript("tcp_echo", ["serve", "--port", String(listener.addr.port)]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: address already in use/);
  } finally {
    listener.close();
  }
});

Deno.test("tcp_echo: `send --timeout` to a server that never echoes is one error line, exit 1", async () => {
  // A server that accepts, then neither reads, writes nor closes.
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const held: Deno.Conn[] = [];
  const accepting = (async () => {
    for await (const conn of listener) held.push(conn);
  })();
  try {
    const port = String(listener.addr.port);
    const result = await runScript("tcp_echo", ["send", "--port", port, "--timeout", "0.3", "x"], {
      timeout: 10_000,
    });
    assert.equal(result.timedOut, false, "send went on waiting after its timeout");
    assert.equal(result.code, 1);
    assert.equal(result.stdout, "");
    assert.match(result.stderr, /^error: timed out \(timed out after 300 ms\)[^\n]*\n$/);
  } finally {
    listener.close();
    await accepting;
    for (const conn of held) conn.close();
  }
});

Deno.test("tcp_echo: a timeout longer than a timer can wait is a usage error, exit 2", async () => {
  // 3,000,000 s is past setTimeout's limit (2^31 - 1 ms), which would fire at once.
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    for (
      const args of [
        ["serve", "--port", String(busy.addr.port), "--idle-timeout", "3000000"],
        ["send", "--port", String(freePort()), "--timeout", "3000000", "x"],
      ]
    ) {
      const { code, stderr } = await runScript("tcp_echo", args, { timeout: 10_000 });
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, /^error: --(idle-)?timeout must be a number from 0\.001 to 86400/);
    }
  } finally {
    busy.close();
  }
});

Deno.test("tcp_echo: `serve` out of file descriptors logs the failed accept() and keeps serving", async () => {
  // With at most 64 descriptors, 100 clients at once use up the server's:
  // the kernel completes each connect, but accept() fails with EMFILE. Once
  // those clients leave, the server must accept and echo again.
  const path = scriptPath("tcp_echo");
  const flags = readHeader(path).runFlags;
  const limited = ["-c", 'ulimit -n 64 && exec "$@"', "sh", DENO, "run", "--no-prompt", ...flags];
  const server = new Deno.Command("sh", {
    args: [...limited, path, "serve", "--port", "0"],
    env: { NO_COLOR: "1" },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stderr = new Response(server.stderr).text();
  const reader = server.stdout.pipeThrough(new TextDecoderStream()).getReader();
  let stdout = "";
  const waitFor = (pattern: RegExp) =>
    withTimeout(async () => {
      while (!pattern.test(stdout)) {
        const { value, done } = await reader.read();
        if (done) return false;
        stdout += value;
      }
      return true;
    }, 15_000);
  const clients: Deno.Conn[] = [];
  try {
    if (!await waitFor(/listening on tcp:\/\/127\.0\.0\.1:\d+/)) assert.fail(await stderr);
    const port = Number(stdout.match(/:(\d+)\n/)![1]);
    for (let i = 0; i < 100; i++) clients.push(await connectEcho("127.0.0.1", port));
    if (!await waitFor(/accept\(\) failed \(Too many open files/)) {
      assert.fail(`the server stopped: ${await stderr}`);
    }
    for (const conn of clients.splice(0)) conn.close();
    const conn = await connectEcho("127.0.0.1", port);
    const { reply } = await withTimeout(() => echo(conn, new Uint8Array([4, 2])), 10_000);
    assert.deepEqual(reply, new Uint8Array([4, 2]));
    await hangUp(conn);
    server.kill("SIGTERM");
    const { code } = await server.status;
    assert.equal(code, 0, await stderr);
  } finally {
    for (const conn of clients) conn.close();
    try {
      server.kill("SIGKILL");
    } catch { /* exited */ }
    await server.status;
    await reader.cancel();
    await stderr;
  }
});

// ---------------------------------------------------------------------------
// Interop: peers that no one here wrote.
// ---------------------------------------------------------------------------

const SIZES = [0, 1, 10 * 1024 * 1024];

peerTest("tcp_echo: socat as a client of our server, byte-exact", [PEERS.socat], async () => {
  const server = await startServer("tcp_echo");
  try {
    for (const size of SIZES) {
      const data = randomBytes(size);
      // socat copies stdin to the server, half-closes when stdin ends, and
      // prints what comes back until the server closes (-t: at most 10 s more).
      const result = await runRaw("socat", ["-t", "10", "-", `TCP:127.0.0.1:${server.port}`], data);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.length, size);
      assert.equal(await sha256(result.stdout), await sha256(data), `${size} bytes`);
    }
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

peerTest("tcp_echo: Python's socket module as a client of our server, byte-exact", [
  PEERS.python3,
], async () => {
  const server = await startServer("tcp_echo");
  const client = `
import hashlib, socket, sys, threading
size = int(sys.argv[2])
data = bytes(i * 7 % 256 for i in range(size))
sock = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
def send():
    sock.sendall(data)
    sock.shutdown(socket.SHUT_WR)
threading.Thread(target=send).start()
received = bytearray()
while chunk := sock.recv(65536):
    received += chunk
print(len(received), hashlib.sha256(received).hexdigest() == hashlib.sha256(data).hexdigest())
`;
  try {
    for (const size of SIZES) {
      const result = await run(PYTHON, ["-c", client, String(server.port), String(size)]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), `${size} True`);
    }
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

peerTest(
  "tcp_echo: our client against socat's echo (PIPE), byte-exact",
  [PEERS.socat],
  async () => {
    const port = freePort();
    const socat = await startSocatEcho(port);
    try {
      const conn = await connectEcho("127.0.0.1", port);
      for (const size of SIZES) {
        const message = randomBytes(size);
        const { reply } = await echo(conn, message);
        assert.equal(await sha256(reply), await sha256(message), `${size} bytes`);
      }
      await hangUp(conn);
      const cli = await runScript("tcp_echo", ["send", "--port", String(port), "hello socat"]);
      assert.equal(cli.code, 0, cli.stderr);
      assert.equal(cli.stdout, "hello socat\n");
    } finally {
      socat.kill("SIGTERM");
      await socat.status;
    }
  },
);

/**
 * socat echoing on `port`; resolves once the port accepts connections.
 *
 * `-b 4096`: with its default 8 KiB blocks, socat's `PIPE` echo can hang for
 * good on a bulk echo. Its child writes each block into a pipe that only it
 * reads; when the pipe has a page free but not 8 KiB, `poll` says "writable"
 * and the blocking write waits for space no one else will make. It happens
 * when the client is slow to read (a loaded CI machine: this test once hung
 * there for 30 minutes). A block of at most `PIPE_BUF` (4 KiB) always fits
 * into a free page, so the echo cannot stall (bench/README.md has the story).
 */
async function startSocatEcho(port: number): Promise<Deno.ChildProcess> {
  const socat = new Deno.Command("socat", {
    args: ["-b", "4096", `TCP-LISTEN:${port},bind=127.0.0.1,reuseaddr,fork`, "PIPE"],
    stdout: "null",
    stderr: "null",
  }).spawn();
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      (await Deno.connect({ hostname: "127.0.0.1", port })).close();
      return socat;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 25));
    }
  }
  socat.kill("SIGKILL");
  await socat.status;
  throw new Error(`socat did not start listening on port ${port}`);
}

/** Run a command with binary stdin, returning binary stdout. */
async function runRaw(command: string, args: string[], stdin: Uint8Array) {
  const child = new Deno.Command(command, {
    args,
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const writing = (async () => {
    const writer = child.stdin.getWriter();
    await writer.write(stdin);
    await writer.close();
  })();
  const [{ code, stdout, stderr }] = await Promise.all([child.output(), writing]);
  return { code, stdout, stderr: new TextDecoder().decode(stderr) };
}

Deno.test("tcp_echo: serveEcho with a signal aborted already returns at once, listener closed", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  await serveEcho(listener, { signal: AbortSignal.abort(), log: () => {} });
  await assert.rejects(connectEcho("127.0.0.1", listener.addr.port), /cannot connect/);
});

Deno.test("tcp_echo.ts serve --quiet echoes without logging connections", async () => {
  const server = await startServer("tcp_echo", ["--quiet"]);
  let stdout = "";
  try {
    const conn = await connectEcho("127.0.0.1", server.port);
    assert.deepEqual((await echo(conn, new Uint8Array([5, 6]))).reply, new Uint8Array([5, 6]));
    await hangUp(conn);
  } finally {
    ({ stdout } = await server.stop());
  }
  assert.match(stdout, /^listening on tcp:\/\/127\.0\.0\.1:\d+$/m);
  assert.doesNotMatch(stdout, /connected|disconnected/);
});
