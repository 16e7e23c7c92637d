#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title TCP echo: a server and a client that never trust one read()
 * @difficulty beginner
 * @tags cli, network, tcp
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc862} RFC 862: Echo Protocol
 * @resource {https://www.rfc-editor.org/rfc/rfc9293} RFC 9293: Transmission Control Protocol (TCP)
 *
 * The smallest useful network program: a server that sends back every byte it
 * receives, and a client that checks it got them all. TCP gives us a reliable,
 * ordered stream of bytes, but not messages: one `read()` returns whatever has
 * arrived, so the client reads until it has as many bytes as it sent. With no
 * arguments, it runs a server and three clients on loopback, one of them
 * sending 1 MiB to show one message arriving in many reads.
 * Taught cell by cell in notebooks/01_tcp_echo.ipynb.
 */

import { acceptConnections } from "../lib/accept_connections.ts";
import { parseFlags } from "../lib/parse_flags.ts";
import { readExactly } from "../lib/read_exactly.ts";
import { writeAll } from "../lib/write_all.ts";
import { withTimeout } from "../lib/with_timeout.ts";
import { DelimiterStream } from "../lib/delimiter_stream.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { formatAddress } from "../lib/format_address.ts";

const USAGE = `
tcp_echo.ts: a TCP echo server and client (RFC 862, on port 7007 by default)

usage:
  tcp_echo.ts                      demo: a server and three clients on loopback
  tcp_echo.ts serve [flags]        run the echo server until Ctrl-C
  tcp_echo.ts send [flags] [MSG..] send each MSG (or each line of stdin), print the echo

flags:
  --host HOST           serve: address to listen on; send: server to reach (default 127.0.0.1)
  --port PORT           TCP port (default 7007; serve --port 0 picks any free port)
  --idle-timeout SECS   serve: close a connection idle this long (default 30, at most 86400)
  --max-connections N   serve: refuse connections beyond this many (default 4096)
  --timeout SECS        send: give up on an echo after this long (default 10, at most 86400)
  --quiet               serve: do not log connections
  -h, --help            show this help

permissions:
  demo, and anything on 127.0.0.1:   --allow-net=127.0.0.1
  serve or send with another --host:  --allow-net=HOST (or plain --allow-net)
`;

const DEFAULT_PORT = 7007;

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/** Options for {@linkcode serveEcho}. */
export interface EchoServerOptions {
  /** Close a connection that makes no progress (no read, no write) for this long, in ms. @default {30000} */
  idleTimeout?: number;
  /** Refuse connections beyond this many at once. @default {4096} */
  maxConnections?: number;
  /** Where connect and disconnect lines go. @default {console.log} */
  log?: (line: string) => void;
  /** Stop: close the listener and every connection, then return. */
  signal?: AbortSignal;
}

/**
 * Echo every byte each client sends, for many clients at once, until the
 * listener is closed or `signal` aborts. Resolves when every connection is closed.
 */
export async function serveEcho(
  listener: Deno.Listener<Deno.TcpConn, Deno.NetAddr>,
  options: EchoServerOptions = {},
): Promise<void> {
  const { idleTimeout = 30_000, maxConnections = 4096, log = console.log, signal } = options;
  const open = new Map<Deno.TcpConn, Promise<void>>();

  // Shutting down means: stop accepting (closing the listener ends the loop
  // below) and close every open connection (which ends its echo loop).
  const stop = () => {
    listener.close();
    for (const conn of open.keys()) conn.close();
  };
  if (signal?.aborted) stop(); // an abort that came first will not fire again
  signal?.addEventListener("abort", stop, { once: true });

  // The accept loop. Each connection gets its own echo loop; we do not await
  // it here, or one slow client would keep every other client waiting. Deno's
  // event loop runs all of them at once, on one thread.
  //
  // acceptConnections (lib) is `for await (const conn of listener)` that
  // ends only when the listener closes. A failed accept() (a burst of clients
  // took every file descriptor we may open, EMFILE) is logged, and after a
  // pause the loop goes on, instead of ending the server for everyone.
  const onError = (error: Error) =>
    log(`accept() failed (${error.message}); trying again in 100 ms`);
  try {
    for await (const conn of acceptConnections(listener, { onError, signal })) {
      const peer = formatAddress(conn.remoteAddr);
      if (open.size >= maxConnections) {
        log(`${peer} refused: already ${open.size} connections`);
        conn.close();
        continue;
      }
      log(`${peer} connected`);
      const done = echoConnection(conn, idleTimeout)
        .then((result) => log(`${peer} disconnected after ${result}`))
        .finally(() => open.delete(conn));
      open.set(conn, done);
    }
  } finally {
    signal?.removeEventListener("abort", stop);
  }
  await Promise.all(open.values());
}

// One client's echo loop: read whatever has arrived, write all of it back.
// We never assume a read is a message; an echo server does not need to know
// where messages end, it only has to return every byte in order.
// Returns a summary for the log, and never throws: one client's trouble must
// not stop the server.
async function echoConnection(conn: Deno.TcpConn, idleTimeout: number): Promise<string> {
  // Most clients send little, so each connection starts with a small buffer;
  // one that fills it (bytes are queuing up: a bulk sender) gets a large one,
  // so a big transfer takes fewer, larger reads and writes.
  let buffer = new Uint8Array(16 * 1024);
  let echoed = 0;
  let reason = "the client closed";

  // A peer that stops sending, or stops reading our replies (so our write
  // waits forever), is closed once nothing has moved for idleTimeout ms.
  const idle = setTimeout(() => {
    reason = `${idleTimeout / 1000} s idle`;
    conn.close();
  }, idleTimeout);
  const progress = () => idle.refresh();

  try {
    while (true) {
      const n = await conn.read(buffer);
      if (n === null) break;
      progress();
      await writeAll(conn, buffer.subarray(0, n));
      progress();
      echoed += n;
      if (n === buffer.length && buffer.length < 256 * 1024) buffer = new Uint8Array(256 * 1024);
    }
  } catch (error) {
    // A reset connection, or our own close() on idle or shutdown.
    if (reason === "the client closed") {
      reason = error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted
        ? "shutdown"
        : `an error (${(error as Error).message})`;
    }
  } finally {
    clearTimeout(idle);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  return `${echoed} bytes echoed (${reason})`;
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/** What {@linkcode echo} learned about one message's round trip. */
export interface EchoResult {
  /** The bytes that came back. */
  reply: Uint8Array<ArrayBuffer>;
  /** How many `read()` calls it took to receive them. */
  reads: number;
}

/**
 * Send `message` on `conn` and read back exactly as many bytes.
 *
 * Writing and reading happen at the same time. If we wrote a large message
 * first and only then read, the echo would fill our receive buffer, the
 * server's writes would stall, then its reads, then ours: a deadlock.
 */
export async function echo(conn: Deno.Conn, message: Uint8Array): Promise<EchoResult> {
  let reads = 0;
  const [, reply] = await Promise.all([
    writeAll(conn, message),
    readExactly(conn, message.length, { onProgress: () => reads++ }),
  ]);
  return { reply, reads };
}

/**
 * Say goodbye the TCP way: send FIN (we will write no more), wait for the
 * server to finish and send its own FIN, then release the socket. Closing
 * outright could discard echo bytes still in flight.
 */
export async function hangUp(conn: Deno.Conn): Promise<void> {
  try {
    await conn.closeWrite();
    const rest = new Uint8Array(1024);
    while (await conn.read(rest) !== null) { /* late bytes: the server is still echoing */ }
  } finally {
    conn.close();
  }
}

/** Connect to an echo server, wrapping a failure with the address tried. */
export async function connectEcho(hostname: string, port: number): Promise<Deno.TcpConn> {
  try {
    return await Deno.connect({ hostname, port });
  } catch (error) {
    throw new Error(`cannot connect to tcp://${hostname}:${port}`, { cause: error });
  }
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

// setTimeout waits at most 2^31 - 1 ms (24.8 days); a longer delay becomes
// 1 ms, and the timeout would fire at once. So a timeout is at most a day.
const MAX_TIMEOUT_SECONDS = 86_400;

const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  "idle-timeout": { type: "number", default: 30, min: 0.001, max: MAX_TIMEOUT_SECONDS },
  "max-connections": { type: "number", default: 4096, integer: true, min: 1 },
  timeout: { type: "number", default: 10, min: 0.001, max: MAX_TIMEOUT_SECONDS },
  quiet: { type: "boolean" },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command = "demo", ...messages] = positionals;
  if (command === "serve") {
    if (messages.length > 0) throw new UsageError(`serve takes no arguments, got "${messages[0]}"`);
    return await serveCommand(flags.host, flags.port, flags);
  }
  if (command === "send") return await sendCommand(flags.host, flags.port, flags.timeout, messages);
  if (command === "demo" && positionals.length === 0) return await demo();
  throw new UsageError(`unknown command "${command}"; expected serve or send`);
}

async function serveCommand(hostname: string, port: number, flags: {
  "idle-timeout": number;
  "max-connections": number;
  quiet: boolean;
}): Promise<void> {
  // A deep accept queue, so a burst of connects (a thousand clients at once)
  // waits to be accepted instead of being dropped and retried a second later.
  const listener = Deno.listen({ hostname, port, tcpBacklog: 4096 });
  console.log(listeningBanner("tcp", listener.addr));
  await serveEcho(listener, {
    idleTimeout: flags["idle-timeout"] * 1000,
    maxConnections: flags["max-connections"],
    log: flags.quiet ? () => {} : console.log,
    signal: shutdownSignal(),
  });
}

// Each message goes out on one connection, one after another; each echo is
// checked against what was sent. With no messages, each line of stdin is one.
async function sendCommand(
  hostname: string,
  port: number,
  timeoutSeconds: number,
  messages: string[],
): Promise<void> {
  const conn = await connectEcho(hostname, port);
  const encoder = new TextEncoder();
  try {
    for await (const text of messages.length > 0 ? messages : stdinLines()) {
      const message = encoder.encode(text + "\n");
      const { reply } = await withTimeout(() => echo(conn, message), timeoutSeconds * 1000);
      console.log(new TextDecoder().decode(reply).replace(/\n$/, ""));
    }
  } catch (error) {
    // A server that did not echo in time will not send its FIN in time either:
    // hangUp() would wait for it forever. After a failure, close outright.
    conn.close();
    throw error;
  }
  await hangUp(conn);
}

async function* stdinLines(): AsyncGenerator<string> {
  yield* Deno.stdin.readable
    .pipeThrough(new DelimiterStream({ trimCarriageReturn: true, unterminated: "emit" }))
    .pipeThrough(new TextDecoderStream());
}

// The default run: a server on any free loopback port, and three clients at
// once. Two send a short line; the third sends 1 MiB, which crosses the
// loopback interface in many segments and so arrives in many reads.
async function demo(): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(`server: ${listeningBanner("tcp", listener.addr)}`);
  const stop = new AbortController();
  const server = serveEcho(listener, {
    log: (line) => console.log(`server: ${line}`),
    signal: stop.signal,
  });

  const big = new Uint8Array(1024 * 1024).map((_, i) => i % 251);
  const clients = [
    { name: "client A", message: new TextEncoder().encode("hello, echo") },
    { name: "client B", message: new TextEncoder().encode("ping 1 2 3") },
    { name: "client C", message: big },
  ];
  await Promise.all(clients.map(async ({ name, message }) => {
    const conn = await connectEcho("127.0.0.1", listener.addr.port);
    try {
      const { reply, reads } = await echo(conn, message);
      const same = reply.length === message.length && reply.every((b, i) => b === message[i]);
      const shown = message.length > 64 ? `${message.length} bytes` : JSON.stringify(
        new TextDecoder().decode(reply),
      );
      console.log(
        `${name}: sent ${message.length} bytes, echo arrived in ${reads} read(s): ${shown}` +
          ` (${same ? "identical" : "DIFFERENT"})`,
      );
      if (!same) throw new Error(`${name}: the echo differs from what was sent`);
    } finally {
      await hangUp(conn);
    }
  }));

  stop.abort();
  await server;
  console.log("server: stopped; nothing left listening");
}

if (import.meta.main) runMain(USAGE, main);
