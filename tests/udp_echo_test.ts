// scripts/udp_echo.ts: the server and client as functions, the command line as
// a user runs it, and interop with UDP peers no one here wrote (socat, Python).
//
// Run with --unstable-net (deno task test passes it). Every socket is on
// loopback, port 0; no test asserts how long anything took.

import assert from "node:assert/strict";
import {
  listenUdp,
  MAX_UDP_PAYLOAD,
  serveUdpEcho,
  UdpEchoClient,
  type UdpEchoServerOptions,
} from "../scripts/udp_echo.ts";
import { RetryError } from "../lib/retry_error.ts";
import {
  PEERS,
  peerTest,
  PYTHON,
  randomBytes,
  run,
  runScript,
  sha256,
  startProcess,
  startServer,
} from "./_helpers.ts";

// The largest datagram IPv4 carries: 65535 - 20 (IP header) - 8 (UDP header).
const MAX_IPV4_PAYLOAD = 65507;

// A server in this process, its log, and a way to stop it.
function startEcho(options: UdpEchoServerOptions = {}) {
  const conn = listenUdp("127.0.0.1", 0);
  const lines: string[] = [];
  const controller = new AbortController();
  const done = serveUdpEcho(conn, {
    ...options,
    log: (line) => lines.push(line),
    signal: controller.signal,
  });
  return {
    addr: conn.addr as Deno.NetAddr,
    lines,
    stop: () => {
      controller.abort();
      return done;
    },
  };
}

// A client with generous timeouts: a loaded machine must not look like a loss.
function client(port: number, options: ConstructorParameters<typeof UdpEchoClient>[2] = {}) {
  const lines: string[] = [];
  const echoClient = new UdpEchoClient(listenUdp("127.0.0.1", 0), { hostname: "127.0.0.1", port }, {
    timeout: 2000,
    minTimeout: 10,
    log: (line) => lines.push(line),
    ...options,
  });
  return { client: echoClient, lines };
}

// A port where nothing listens (now): bind one, note it, close it.
function freeUdpPort(): number {
  const conn = listenUdp("127.0.0.1", 0);
  const { port } = conn.addr as Deno.NetAddr;
  conn.close();
  return port;
}

const text = (s: string) => new TextEncoder().encode(s);

// ---------------------------------------------------------------------------
// Behaviour
// ---------------------------------------------------------------------------

Deno.test("serveUdpEcho() echoes 0 B, 1 B and 65507 B datagrams byte for byte", async () => {
  const server = startEcho();
  const { client: c } = client(server.addr.port);
  try {
    for (const size of [0, 1, 1500, MAX_IPV4_PAYLOAD]) {
      const message = randomBytes(size);
      const { reply } = await c.echo(message);
      assert.equal(await sha256(new Uint8Array(reply)), await sha256(message), `${size} B`);
    }
  } finally {
    c.close();
    await server.stop();
  }
});

Deno.test("UdpEchoClient recovers a datagram that --drop-every drops by retrying", async () => {
  const server = startEcho({ dropEvery: 2 });
  const { client: c, lines } = client(server.addr.port, { timeout: 300 });
  try {
    const results = [];
    for (const word of ["a", "b", "c", "d"]) results.push(await c.echo(text(word)));
    assert.deepEqual(results.map((r) => new TextDecoder().decode(r.reply)), ["a", "b", "c", "d"]);
    // Every 2nd datagram is dropped, so at least one message needed a second send.
    assert.ok(results.some((r) => r.attempts > 1), JSON.stringify(results));
    assert.ok(server.lines.some((line) => /dropped on purpose \(--drop-every 2\)/.test(line)));
    assert.ok(lines.some((line) => /no echo within 300 ms .*resending in \d+ ms/.test(line)));
  } finally {
    c.close();
    await server.stop();
  }
});

Deno.test("UdpEchoClient ignores stale echoes and datagrams from strangers", async () => {
  // A hand-driven "server": it answers the second request first with the
  // echo of the first (late, as after a retry), and a stranger writes too.
  const fake = listenUdp("127.0.0.1", 0);
  const stranger = listenUdp("127.0.0.1", 0);
  const { client: c, lines } = client((fake.addr as Deno.NetAddr).port);
  try {
    const first = c.echo(text("first"));
    const [one, from] = await fake.receive();
    await fake.send(one, from);
    assert.equal(new TextDecoder().decode((await first).reply), "first");

    const second = c.echo(text("second"));
    const [two] = await fake.receive();
    await stranger.send(text("second"), c.addr);
    await fake.send(text("first"), c.addr);
    await fake.send(two, c.addr);
    const result = await second;
    assert.equal(new TextDecoder().decode(result.reply), "second");
    assert.equal(result.attempts, 1);
    assert.ok(
      lines.some((line) => /ignored 6 bytes from 127\.0\.0\.1:\d+: not the server/.test(line)),
    );
    assert.ok(lines.some((line) => /ignored a stale echo \(5 bytes\)/.test(line)));
  } finally {
    c.close();
    fake.close();
    stranger.close();
  }
});

Deno.test("UdpEchoClient gives up with a RetryError after maxAttempts sends", async () => {
  // A socket that receives but never answers, so we can count the sends.
  const silent = listenUdp("127.0.0.1", 0);
  const { client: c, lines } = client((silent.addr as Deno.NetAddr).port, {
    timeout: 50,
    maxAttempts: 3,
  });
  try {
    await assert.rejects(c.echo(text("anyone?")), (error) => {
      assert.ok(error instanceof RetryError);
      assert.equal(error.attempts, 3);
      assert.equal((error.cause as DOMException).name, "TimeoutError");
      return true;
    });
    assert.equal(lines.filter((line) => line.startsWith("no echo within 50 ms")).length, 2);
    for (let i = 0; i < 3; i++) {
      const [datagram] = await silent.receive();
      assert.equal(new TextDecoder().decode(datagram), "anyone?");
    }
  } finally {
    c.close();
    silent.close();
  }
});

Deno.test("serveUdpEcho() drops datagrams over maxSize (cut to fit its buffer, then seen)", async () => {
  const server = startEcho({ maxSize: 100 });
  const raw = listenUdp("127.0.0.1", 0);
  try {
    // 101 and 5000 bytes both arrive cut to 101: too long, not echoed.
    // 100 bytes fit: the only echo that comes back is theirs.
    const fits = randomBytes(100);
    for (const size of [101, 5000]) await raw.send(randomBytes(size), server.addr);
    await raw.send(fits, server.addr);
    const [reply] = await raw.receive(new Uint8Array(65536));
    assert.deepEqual(reply, fits);
    const dropped = server.lines.filter((line) =>
      /longer than 100 bytes \(--max-size\), dropped/.test(line)
    );
    assert.equal(dropped.length, 2, server.lines.join("\n"));
  } finally {
    raw.close();
    await server.stop();
  }
});

Deno.test("UdpEchoClient fails at once on a datagram over 65507 B (EMSGSIZE), no retry", async () => {
  const server = startEcho();
  const { client: c, lines } = client(server.addr.port);
  try {
    await assert.rejects(c.echo(new Uint8Array(MAX_IPV4_PAYLOAD + 1)), (error: Error) => {
      assert.ok(!(error instanceof RetryError));
      assert.match(error.message, /cannot send 65508 bytes to udp:\/\/127\.0\.0\.1:\d+/);
      assert.match((error.cause as Error).message, /too long/i);
      return true;
    });
    assert.deepEqual(lines, []);
    assert.equal(MAX_UDP_PAYLOAD, 65527);
  } finally {
    c.close();
    await server.stop();
  }
});

Deno.test("serveUdpEcho() keeps serving after garbage and clients that vanish", async () => {
  const server = startEcho({ maxSize: 1000 });
  try {
    // Random bytes, an empty datagram and an oversized one, from a socket that
    // closes before the echoes come back (so they meet a closed port).
    const rude = listenUdp("127.0.0.1", 0);
    for (const junk of [randomBytes(999), new Uint8Array(0), randomBytes(5000)]) {
      await rude.send(junk, server.addr);
    }
    rude.close();
    const { client: c } = client(server.addr.port);
    try {
      const message = text("still there?");
      assert.deepEqual((await c.echo(message)).reply, message);
    } finally {
      c.close();
    }
    assert.ok(server.lines.some((line) => /longer than 1000 bytes/.test(line)));
  } finally {
    await server.stop();
  }
});

Deno.test("listenUdp() without --unstable-net says to add it (run as a script)", async () => {
  const result = await runScript("udp_echo", [], { flags: ["--allow-net=127.0.0.1"] });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: .*--unstable-net\n$/);
});

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

Deno.test("udp_echo.ts demo shows a datagram dropped and recovered by a retry", async () => {
  const result = await runScript("udp_echo");
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /listening on udp:\/\/127\.0\.0\.1:\d+/);
  assert.match(result.stdout, /dropped on purpose/);
  assert.match(result.stdout, /no echo within 500 ms .*resending in \d+ ms/);
  assert.match(result.stdout, /client: echo "three" \(\d+ attempts\)/);
  assert.match(result.stdout, /server: stopped; nothing left open\n$/);
});

Deno.test("udp_echo.ts serve --port 0 and send: round trip, from arguments and stdin", async () => {
  const server = await startServer("udp_echo", [], { scheme: "udp" });
  try {
    const port = String(server.port);
    const args = await runScript("udp_echo", ["send", "--port", port, "hello", "wide world"]);
    assert.equal(args.code, 0, args.stderr);
    assert.equal(args.stdout, "hello\nwide world\n");
    const stdin = await runScript("udp_echo", ["send", "--port", port], {
      stdin: "one\r\ntwo\nthree",
    });
    assert.equal(stdin.code, 0, stdin.stderr);
    assert.equal(stdin.stdout, "one\ntwo\nthree\n");
  } finally {
    const { code, stdout } = await server.stop();
    assert.equal(code, 0);
    assert.match(stdout, /#1 from 127\.0\.0\.1:\d+: 5 bytes, echoed/);
  }
});

Deno.test("udp_echo.ts send to a port where nothing listens: exit 1, one error line", async () => {
  const port = String(freeUdpPort());
  const result = await runScript("udp_echo", [
    "send",
    "--port",
    port,
    "--timeout",
    "0.1",
    "--attempts",
    "2",
    "hello",
  ]);
  assert.equal(result.code, 1);
  assert.equal(result.stdout, "");
  const errors = result.stderr.split("\n").filter((line) => line.startsWith("error:"));
  assert.equal(errors.length, 1, result.stderr);
  assert.match(errors[0], /^error: gave up after 2 attempts; .*timed out/);
  // The rest of stderr is the retry notes, which --quiet leaves out.
  const quiet = await runScript("udp_echo", [
    "send",
    "--quiet",
    "--port",
    port,
    "--timeout",
    "0.1",
    "--attempts",
    "2",
    "hello",
  ]);
  assert.equal(quiet.code, 1);
  assert.match(quiet.stderr, /^error: gave up after 2 attempts[^\n]*\n$/);
});

Deno.test("udp_echo.ts send --timeout over 60 s is a usage error, exit 2", async () => {
  // Each wait is also retry()'s first pause, which is at most 60 s.
  for (const timeout of ["61", "3000000"]) {
    const result = await runScript("udp_echo", [
      "send",
      "--port",
      String(freeUdpPort()),
      "--timeout",
      timeout,
      "hello",
    ]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error: --timeout must be a number from 0\.001 to 60, got /);
  }
});

Deno.test("udp_echo.ts without net permission: one error line naming it", async () => {
  const result = await runScript("udp_echo", [], { flags: ["--unstable-net"] });
  assert.equal(result.code, 1);
  assert.match(
    result.stderr,
    /^error: missing permission: needs net access .*--allow-net=127\.0\.0\.1\n$/,
  );
});

// ---------------------------------------------------------------------------
// Interop: peers no one here wrote
// ---------------------------------------------------------------------------

// Python's socket module as a client of our server: it sends 0 B, 1 B and
// 65507 B datagrams and compares each echo; 65508 B it cannot even send.
const PYTHON_CLIENT = `
import os, socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(10)
for size in (0, 1, 65507):
    data = os.urandom(size)
    s.sendto(data, ("127.0.0.1", int(sys.argv[1])))
    reply, _ = s.recvfrom(65536)
    print(size, "identical" if reply == data else "DIFFERENT")
try:
    s.sendto(b"x" * 65508, ("127.0.0.1", int(sys.argv[1])))
except OSError as e:
    print(65508, e.strerror)
`;

peerTest("interop: Python's socket module as a client of our server", [PEERS.python3], async () => {
  const server = await startServer("udp_echo", [], { scheme: "udp" });
  try {
    const result = await run(PYTHON, ["-c", PYTHON_CLIENT, String(server.port)]);
    assert.equal(result.code, 0, result.stderr);
    assert.equal(
      result.stdout,
      "0 identical\n1 identical\n65507 identical\n65508 Message too long\n",
    );
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

// socat reads a file into one datagram (-b sets its buffer above 65507) and
// writes the echo to another file. It cannot send an empty datagram: to
// socat, reading 0 bytes means end of input, so it sends nothing.
peerTest("interop: socat as a client of our server (1 B and 65507 B)", [PEERS.socat], async () => {
  const server = await startServer("udp_echo", [], { scheme: "udp" });
  const dir = await Deno.makeTempDir({ prefix: "udp_echo_test_" });
  try {
    for (const size of [1, MAX_IPV4_PAYLOAD]) {
      const message = randomBytes(size);
      await Deno.writeFile(`${dir}/in`, message);
      const result = await run("socat", [
        "-b",
        "65536",
        "-t",
        "2",
        `OPEN:${dir}/in,rdonly!!CREATE:${dir}/out`,
        `UDP:127.0.0.1:${server.port}`,
      ]);
      assert.equal(result.code, 0, result.stderr);
      const reply = await Deno.readFile(`${dir}/out`);
      assert.equal(await sha256(reply), await sha256(message), `${size} B`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
    assert.equal((await server.stop()).code, 0);
  }
});

// socat as the server: UDP-LISTEN takes the first peer that writes as its
// partner (no fork, so no child processes to outlive the test), and PIPE
// writes back what it read. socat cannot tell us which port it got, so we
// pick a free one, and start again if it was taken meanwhile.
async function startSocatEcho(): Promise<{
  port: number;
  status: Promise<Deno.CommandStatus>;
  stop: () => Promise<void>;
}> {
  for (let tries = 0;; tries++) {
    const port = freeUdpPort();
    const child = new Deno.Command("socat", {
      args: ["-b", "65536", `UDP-LISTEN:${port},bind=127.0.0.1`, "PIPE"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const early = await Promise.race([
      child.status,
      new Promise<null>((resolve) => setTimeout(() => resolve(null), 300)),
    ]);
    if (early === null) {
      const stderr = new Response(child.stderr).text();
      return {
        port,
        status: child.status,
        stop: async () => {
          try {
            child.kill("SIGTERM");
          } catch { /* it has exited already */ }
          await child.status;
          await stderr;
        },
      };
    }
    const stderr = new TextDecoder().decode((await child.output()).stderr);
    if (tries >= 3) throw new Error(`socat did not start: ${stderr}`);
  }
}

peerTest("interop: our client against a socat UDP echo (PIPE)", [PEERS.socat], async () => {
  const socat = await startSocatEcho();
  // Until socat has bound its port, our datagrams fall on a closed port and
  // vanish: the client's retries ride that out, as they would a loss.
  const { client: c } = client(socat.port, { timeout: 1000, maxAttempts: 10 });
  try {
    for (const size of [1, 1500, MAX_IPV4_PAYLOAD]) {
      const message = randomBytes(size);
      const { reply } = await c.echo(message);
      assert.equal(await sha256(new Uint8Array(reply)), await sha256(message), `${size} B`);
    }
    // An empty datagram is end of input to socat: it exits without an echo.
    // (Python's socket module echoes it; see the next test.)
    await assert.rejects(
      c.echo(new Uint8Array(0), AbortSignal.timeout(1000)),
      (error: Error) => error.name === "TimeoutError",
    );
    assert.equal((await socat.status).code, 0);
  } finally {
    c.close();
    await socat.stop();
  }
});

// Python's socket module as the server, for what socat cannot do: an empty
// datagram. It prints its port and echoes until it is stopped.
const PYTHON_SERVER = `
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("127.0.0.1", 0))
print("listening on udp://127.0.0.1:%d" % s.getsockname()[1], flush=True)
while True:
    data, peer = s.recvfrom(65536)
    s.sendto(data, peer)
`;

peerTest("interop: our client against a Python UDP echo (0 B, 1 B, 65507 B)", [
  PEERS.python3,
], async () => {
  const server = await startProcess(PYTHON, ["-c", PYTHON_SERVER], { scheme: "udp" });
  const { client: c } = client(server.port);
  try {
    for (const size of [0, 1, MAX_IPV4_PAYLOAD]) {
      const message = randomBytes(size);
      const { reply } = await c.echo(message);
      assert.equal(await sha256(new Uint8Array(reply)), await sha256(message), `${size} B`);
    }
  } finally {
    c.close();
    await server.stop();
  }
});

Deno.test("udp_echo.ts serve --drop-every and --max-size drop what they say, --quiet logs nothing", async () => {
  const client = listenUdp("127.0.0.1", 0);
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();
  /** Send each text in turn, then collect the echoes up to and including `last`. */
  async function exchange(port: number, texts: string[], last: string): Promise<string[]> {
    for (const text of texts) {
      await client.send(encoder.encode(text), { transport: "udp", hostname: "127.0.0.1", port });
    }
    const echoes: string[] = [];
    const deadline = AbortSignal.timeout(5000);
    while (!echoes.includes(last)) {
      const [bytes] = await Promise.race([
        client.receive(),
        new Promise<never>((_, reject) =>
          deadline.addEventListener("abort", () => reject(new Error(`no echo of ${last}`)))
        ),
      ]);
      echoes.push(decoder.decode(bytes));
    }
    return echoes;
  }
  try {
    const server = await startServer("udp_echo", ["--drop-every", "2", "--max-size", "5"], {
      scheme: "udp",
    });
    let stdout = "";
    try {
      // #1 echoed, #2 and #4 dropped (every 2nd), #3 is over 5 bytes, #5 echoed.
      const echoes = await exchange(server.port, ["a1", "a2", "toolong", "a4", "a5"], "a5");
      assert.deepEqual(echoes, ["a1", "a5"]);
    } finally {
      ({ stdout } = await server.stop());
    }
    assert.match(
      stdout,
      /#2 from 127\.0\.0\.1:\d+: 2 bytes, dropped on purpose \(--drop-every 2\)/,
    );
    assert.match(stdout, /#3 from 127\.0\.0\.1:\d+: longer than 5 bytes \(--max-size\), dropped/);

    const quiet = await startServer("udp_echo", ["--quiet"], { scheme: "udp" });
    try {
      assert.deepEqual(await exchange(quiet.port, ["hush"], "hush"), ["hush"]);
    } finally {
      ({ stdout } = await quiet.stop());
    }
    assert.doesNotMatch(stdout, /from 127\.0\.0\.1/);
  } finally {
    client.close();
  }
});
