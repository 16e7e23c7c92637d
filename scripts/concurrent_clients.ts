#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title Concurrent clients: one thread, many connections, the event loop
 * @difficulty beginner
 * @tags cli, network, tcp, concurrency
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc9293#section-3.5} RFC 9293 §3.5: TCP connections, each independent
 * @resource {https://docs.deno.com/runtime/fundamentals/http_server/} Deno: servers and the event loop
 *
 * The simplest server, the one in every tutorial, accepts a connection, serves
 * it to the end, and only then accepts the next: one slow client keeps
 * everyone else waiting. Tutorials fix that with a thread per client; Deno has
 * one thread and an event loop, so the fix is to not `await` each client in
 * the accept loop. The demo sends the same slow clients to both servers and
 * prints when each was answered. Taught in notebooks/06_concurrent_clients.ipynb.
 */

import { acceptConnections } from "../lib/accept_connections.ts";
import { parseFlags } from "../lib/parse_flags.ts";
import { writeAll } from "../lib/write_all.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";

const USAGE = `
concurrent_clients.ts: one server, many slow clients, served one at a time or all at once

usage:
  concurrent_clients.ts                  demo: 5 slow clients against each kind of server
  concurrent_clients.ts serve [flags]    run a greeting server until Ctrl-C
  concurrent_clients.ts clients [flags]  send N slow clients to a server, print when each is answered

flags:
  --mode one-at-a-time|concurrent   serve: how the accept loop treats clients (default concurrent)
  --host HOST       serve: address to listen on; clients: server to reach (default 127.0.0.1)
  --port PORT       TCP port (default 7200; serve --port 0 picks any free port)
  --count N         clients: how many clients (default 5)
  --delay MS        clients: pause between bytes each client sends (default 40)
  --idle-timeout S  serve: drop a client silent this long (default 10, at most 86400)
  -h, --help        show this help

permissions:
  demo, and anything on 127.0.0.1:   --allow-net=127.0.0.1
  another --host:                     --allow-net=HOST (or plain --allow-net)
`;

const DEFAULT_PORT = 7200;
const MAX_NAME = 256;
const encoder = new TextEncoder();
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// The service: a greeting, given once the client has said its whole name
// ---------------------------------------------------------------------------

/** How many clients a server is serving right now, and the most it ever served at once. */
export class Gauge {
  current = 0;
  peak = 0;
  enter(): void {
    this.peak = Math.max(this.peak, ++this.current);
  }
  leave(): void {
    this.current--;
  }
}

/**
 * Serve one client: ask its name, read it until the client closes its side
 * (FIN), answer `hello, <name>` and close. The server speaks first, as SMTP
 * and FTP servers do, so a client cannot say anything until it is served;
 * and a slow client makes this slow: every `await conn.read()` waits on the
 * network, not on the CPU.
 */
export async function greet(conn: Deno.Conn, gauge: Gauge, idleTimeout = 10_000): Promise<void> {
  gauge.enter();
  const idle = setTimeout(() => conn.close(), idleTimeout);
  // A read may end in the middle of a character ("é" is 2 bytes in UTF-8):
  // with `stream: true` the decoder keeps those bytes for the next read. So
  // each connection needs a decoder of its own; a shared one would hand one
  // client's half character to another.
  const decoder = new TextDecoder();
  try {
    await writeAll(conn, encoder.encode("your name?\n"));
    let name = "";
    const buffer = new Uint8Array(MAX_NAME + 1);
    for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
      name += decoder.decode(buffer.subarray(0, n), { stream: true });
      idle.refresh();
      if (name.length > MAX_NAME) throw new RangeError(`name longer than ${MAX_NAME}`);
    }
    name += decoder.decode(); // the end: a character left unfinished becomes U+FFFD
    await writeAll(conn, encoder.encode(`hello, ${name}\n`));
  } catch {
    // A client that talks too long, too slowly, or hangs up: only that one is dropped.
  } finally {
    clearTimeout(idle);
    gauge.leave();
    try {
      conn.close();
    } catch { /* closed on idle */ }
  }
}

/** The two accept loops this lesson compares. */
export type Mode = "one-at-a-time" | "concurrent";

/**
 * Accept clients until the listener closes. The only difference between the
 * modes is one `await`:
 *
 * - one-at-a-time: `await greet(conn)` finishes a client before the next
 *   `accept()`. Meanwhile, new clients wait in the kernel's accept queue.
 * - concurrent: `greet(conn)` starts serving and the loop goes straight back
 *   to `accept()`. While one client's read waits, the event loop runs the
 *   others. No threads, no locks: one thread interleaving at every `await`.
 */
export async function serveGreetings(
  listener: Deno.TcpListener,
  mode: Mode,
  gauge = new Gauge(),
  idleTimeout = 10_000,
  signal?: AbortSignal,
): Promise<void> {
  const serving = new Set<Promise<void>>();
  // Shutting down: stop accepting, and hang up on every client being served.
  const open = new Set<Deno.Conn>();
  const stop = () => {
    listener.close();
    for (const conn of open) conn.close();
  };
  if (signal?.aborted) stop(); // an abort that came first will not fire again
  signal?.addEventListener("abort", stop, { once: true });
  const serve = (conn: Deno.Conn) => {
    open.add(conn);
    return greet(conn, gauge, idleTimeout).finally(() => open.delete(conn));
  };
  // A closed listener is our shutdown; a failed accept() (out of file
  // descriptors, say) is logged and tried again, as in tcp_echo.ts.
  const onError = (error: Error) =>
    console.error(`accept() failed (${error.message}); trying again in 100 ms`);
  try {
    for await (const conn of acceptConnections(listener, { onError })) {
      if (mode === "one-at-a-time") {
        await serve(conn);
      } else {
        const task = serve(conn).finally(() => serving.delete(task));
        serving.add(task);
      }
    }
  } finally {
    signal?.removeEventListener("abort", stop);
  }
  await Promise.all(serving);
}

// ---------------------------------------------------------------------------
// The clients: each sends its name one byte at a time
// ---------------------------------------------------------------------------

/**
 * Connect, wait for the server's question, send `name` a byte at a time with
 * `delay` ms between bytes (a client on a slow link, or a person typing),
 * close our side, and read the reply.
 */
export async function slowClient(
  hostname: string,
  port: number,
  name: string,
  delay: number,
): Promise<string> {
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname, port });
  } catch (error) {
    throw new Error(`cannot connect to tcp://${hostname}:${port}`, { cause: error });
  }
  try {
    // Connecting only reaches the kernel: it completes the handshake and
    // queues the connection even while the server is busy. The server's
    // question is what tells us it is really listening to us.
    await readQuestion(conn);
    for (const byte of encoder.encode(name)) {
      await writeAll(conn, Uint8Array.of(byte));
      await sleep(delay);
    }
    await conn.closeWrite();
    // A decoder of our own, as in greet(): other clients decode at the same time.
    const decoder = new TextDecoder();
    let reply = "";
    for await (const chunk of conn.readable) reply += decoder.decode(chunk, { stream: true });
    reply += decoder.decode();
    return reply.trimEnd();
  } finally {
    try {
      conn.close();
    } catch { /* reading to the end closed it */ }
  }
}

async function readQuestion(conn: Deno.Conn): Promise<void> {
  const buffer = new Uint8Array(64);
  const decoder = new TextDecoder();
  let question = "";
  while (!question.endsWith("\n")) {
    const n = await conn.read(buffer);
    if (n === null) throw new Error("the server hung up before asking a name");
    question += decoder.decode(buffer.subarray(0, n), { stream: true });
    if (question.length > 64) throw new Error("the server's question is too long");
  }
}

/** When one client was answered, in ms since the round began. */
export interface Answer {
  name: string;
  reply: string;
  at: number;
}

/** Start `count` slow clients at once against a server; resolve with their answers in order of arrival. */
export async function sendClients(
  hostname: string,
  port: number,
  count: number,
  delay: number,
  onAnswer: (answer: Answer) => void = () => {},
): Promise<Answer[]> {
  const start = performance.now();
  const answers: Answer[] = [];
  await Promise.all(Array.from({ length: count }, async (_, i) => {
    const name = `client ${i + 1}`;
    const reply = await slowClient(hostname, port, name, delay);
    const answer = { name, reply, at: Math.round(performance.now() - start) };
    answers.push(answer);
    onAnswer(answer);
  }));
  return answers;
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

// setTimeout waits at most 2^31 - 1 ms (24.8 days); a longer delay becomes
// 1 ms, and the timeout would fire at once. So a timeout is at most a day.
const MAX_TIMEOUT_SECONDS = 86_400;

const FLAGS = {
  mode: { type: "string", default: "concurrent" },
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  count: { type: "number", default: 5, integer: true, min: 1, max: 1000 },
  delay: { type: "number", default: 40, min: 0, max: 10_000 },
  "idle-timeout": { type: "number", default: 10, min: 0.001, max: MAX_TIMEOUT_SECONDS },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  if (flags.mode !== "one-at-a-time" && flags.mode !== "concurrent") {
    throw new UsageError(`--mode must be one-at-a-time or concurrent, got "${flags.mode}"`);
  }
  const mode: Mode = flags.mode;
  const [command, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (command === undefined) return await demo();
  if (command === "serve") {
    const listener = Deno.listen({ hostname: flags.host, port: flags.port });
    console.log(listeningBanner("tcp", listener.addr));
    const idleTimeout = flags["idle-timeout"] * 1000;
    return await serveGreetings(listener, mode, new Gauge(), idleTimeout, shutdownSignal());
  }
  if (command === "clients") {
    await sendClients(flags.host, flags.port, flags.count, flags.delay, printAnswer);
    return;
  }
  throw new UsageError(`unknown command "${command}"; expected serve or clients`);
}

function printAnswer({ name, reply, at }: Answer): void {
  console.log(`  ${String(at).padStart(5)} ms  ${name}: ${JSON.stringify(reply)}`);
}

// The demo: five clients, each taking about 8 × 40 ms to say its name, sent at
// once to each server in turn. The one-at-a-time server answers them one
// after another; the concurrent server answers them all together.
async function demo(): Promise<void> {
  for (const mode of ["one-at-a-time", "concurrent"] as const) {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const gauge = new Gauge();
    const server = serveGreetings(listener, mode, gauge);
    console.log(`${mode} server, ${listeningBanner("tcp", listener.addr)}`);
    const answers = await sendClients("127.0.0.1", listener.addr.port, 5, 40, printAnswer);
    listener.close();
    await server;
    const last = Math.max(...answers.map((answer) => answer.at));
    console.log(
      `  all 5 answered after ${last} ms; at most ${gauge.peak} client(s) served at once\n`,
    );
  }
  console.log("Same clients, same work, one thread: only the accept loop's `await` differs.");
}

if (import.meta.main) runMain(USAGE, main);
