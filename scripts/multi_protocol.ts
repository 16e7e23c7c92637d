#!/usr/bin/env -S deno run --unstable-net --allow-net=127.0.0.1
/**
 * @title Several protocols, one process: TCP echo, UDP echo and HTTP on one event loop
 * @difficulty intermediate
 * @tags cli, network, tcp, udp, http, server
 * @run --unstable-net --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc862} RFC 862: Echo Protocol (over TCP and over UDP)
 * @resource {https://www.rfc-editor.org/rfc/rfc8085} RFC 8085: UDP Usage Guidelines
 * @resource {https://www.rfc-editor.org/rfc/rfc9110} RFC 9110: HTTP Semantics
 * @resource {https://www.rfc-editor.org/rfc/rfc791#section-3.1} RFC 791 §3.1: the Protocol field, which hands a packet to TCP or to UDP
 * @resource {https://www.rfc-editor.org/rfc/rfc6335} RFC 6335: the port number registry, kept per transport protocol
 *
 * Three servers that earlier lessons wrote separately, in one process: the
 * TCP echo of scripts/tcp_echo.ts (an accept loop), the UDP echo of
 * scripts/udp_echo.ts (a receive loop on one socket), and the site of
 * scripts/http_server.ts (a handler given to Deno.serve), imported, not
 * copied. One thread runs all three, because each of them spends its time
 * waiting in an `await`, and while one waits the event loop runs the others.
 * Every socket is opened before any is served, so a port already in use fails
 * the whole start and leaves nothing half-open; one signal (Ctrl-C, SIGTERM or
 * an AbortController) stops all three, and the process exits once each has
 * closed everything it had open. A port number belongs to one transport: IP
 * hands each packet to TCP or to UDP first, and each has its own ports, so by
 * default both echoes listen on 9000 and the web site on 9001. With no
 * arguments, it starts all three on free loopback ports, talks to each, and
 * stops them with a TCP client still connected.
 * Taught cell by cell in notebooks/19_multi_protocol.ipynb.
 */

import { parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { listenUdp } from "../lib/listen_udp.ts";
import { connectEcho, echo, serveEcho } from "./tcp_echo.ts";
import { serveUdpEcho, UdpEchoClient } from "./udp_echo.ts";
import { siteHandler } from "./http_server.ts";

const USAGE = `
multi_protocol.ts: a TCP echo, a UDP echo and an HTTP site in one process, stopped together

usage:
  multi_protocol.ts                 demo: all three on free ports, a client for each, one stop
  multi_protocol.ts serve [flags]   serve all three until Ctrl-C

flags:
  --host HOST        address all three listen on (default 127.0.0.1)
  --port PORT        TCP echo and UDP echo on PORT, the site on PORT+1 (default 9000;
                     --port 0 gives each any free port)
  --tcp-port PORT    the TCP echo's port alone (overrides --port)
  --udp-port PORT    the UDP echo's port alone (overrides --port)
  --http-port PORT   the site's port alone (overrides --port)
  --quiet            do not log connections, datagrams and requests
  -h, --help         show this help

permissions (UDP needs --unstable-net: Deno's UDP API is unstable):
  demo, and serve on 127.0.0.1:   --unstable-net --allow-net=127.0.0.1
  serve on another --host:        --unstable-net --allow-net=HOST (or plain --allow-net)

try it:
  deno run --unstable-net --allow-net=127.0.0.1 scripts/multi_protocol.ts serve
  echo hello | nc -q1 127.0.0.1 9000          # TCP echo
  echo hello | nc -u -w1 127.0.0.1 9000       # UDP echo, the same port number
  curl 'http://127.0.0.1:9001/hello?name=Ada'
`;

const DEFAULT_PORT = 9000;

// ---------------------------------------------------------------------------
// Three servers, one start, one stop
// ---------------------------------------------------------------------------

/** Options for {@linkcode serveAll}. */
export interface MultiServerOptions {
  /** The address all three listen on. @default {"127.0.0.1"} */
  hostname?: string;
  /** The TCP echo's port; 0 picks any free one. @default {0} */
  tcpPort?: number;
  /** The UDP echo's port; 0 picks any free one. @default {0} */
  udpPort?: number;
  /** The HTTP site's port; 0 picks any free one. @default {0} */
  httpPort?: number;
  /** Gets every server's log lines, each prefixed `tcp: `, `udp: ` or `http: `. @default {console.log} */
  log?: (line: string) => void;
  /** Stops all three: no new connections, every connection closed, then `finished` resolves. */
  signal?: AbortSignal;
}

/** What {@linkcode serveAll} started. */
export interface MultiServer {
  /** Where the TCP echo listens. */
  tcp: Deno.NetAddr;
  /** Where the UDP echo listens. */
  udp: Deno.NetAddr;
  /** Where the HTTP site listens. */
  http: Deno.NetAddr;
  /**
   * Resolves when all three have stopped. If one of them fails, the other two
   * are stopped as well, and it rejects with that failure.
   */
  finished: Promise<void>;
}

/**
 * Start a TCP echo, a UDP echo and the HTTP site, all on `hostname`, all
 * served by this one process and stopped by one signal.
 *
 * @param options Where to listen, where to log, a signal to stop.
 * @returns The three addresses (with the ports picked, for port 0) and a
 *   promise that settles once all three have stopped.
 * @throws {Deno.errors.AddrInUse} If any of the ports is taken; nothing is left open then.
 * @throws {unknown} `signal.reason`, if `signal` has already aborted; nothing is opened then.
 * @throws {Error} If Deno's UDP API is off (`--unstable-net` missing).
 *
 * @example
 * ```ts
 * import { serveAll } from "./multi_protocol.ts";
 * import assert from "node:assert/strict";
 *
 * // Needs --unstable-net, for the UDP socket.
 * const stop = new AbortController();
 * const server = serveAll({ signal: stop.signal, log: () => {} });
 * const response = await fetch(`http://127.0.0.1:${server.http.port}/hello?name=doc`);
 * assert.match(await response.text(), /Hello, doc!/);
 * stop.abort();
 * await server.finished;
 * ```
 */
export function serveAll(options: MultiServerOptions = {}): MultiServer {
  const {
    hostname = "127.0.0.1",
    tcpPort = 0,
    udpPort = 0,
    httpPort = 0,
    log = console.log,
    signal,
  } = options;

  signal?.throwIfAborted();
  // Open every socket first, and serve only once all three are open. If the
  // second or third cannot be opened (a port in use, a missing permission),
  // close the ones already open before giving up: a failed start must not
  // leave a listener behind.
  const opened: { close(): void }[] = [];
  let listener: Deno.TcpListener, socket: Deno.DatagramConn, http: Deno.HttpServer<Deno.NetAddr>;
  // One controller stops all three: the caller's signal aborts it, and so
  // does any of the three failing on its own.
  const stop = new AbortController();
  try {
    listener = Deno.listen({ hostname, port: tcpPort });
    opened.push(listener);
    socket = listenUdp(hostname, udpPort);
    opened.push(socket);
    // Deno.serve binds its socket before it returns. Its requests go to
    // http_server.ts's handler, a plain function from Request to Response.
    http = Deno.serve(
      { hostname, port: httpPort, onListen: () => {} },
      siteHandler({ log: (line) => log(`http: ${line}`) }),
    );
  } catch (error) {
    for (const socket of opened) socket.close();
    throw error;
  }

  const forward = () => stop.abort(signal!.reason);
  signal?.addEventListener("abort", forward, { once: true });
  // The HTTP server's stop is graceful: it refuses new connections, lets
  // requests in flight finish, and closes idle keep-alive connections.
  stop.signal.addEventListener("abort", () => void http.shutdown(), { once: true });

  // The three loops run side by side. None is awaited here: each one sits in
  // an `await` (accept, receive, the next request) almost all the time, and
  // the event loop runs whichever has something to do.
  const running = [
    serveEcho(listener, { log: (line) => log(`tcp: ${line}`), signal: stop.signal }),
    serveUdpEcho(socket, { log: (line) => log(`udp: ${line}`), signal: stop.signal }),
    http.finished,
  ].map((done) =>
    done.catch((error) => {
      stop.abort(error); // one server failing stops the other two
      throw error;
    })
  );
  const finished = Promise.all(running).then(() => {}).finally(() =>
    signal?.removeEventListener("abort", forward)
  );

  return {
    tcp: listener.addr,
    udp: socket.addr as Deno.NetAddr,
    http: http.addr,
    finished,
  };
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const PORT = { type: "number", integer: true, min: 0, max: 65535 } as const;
const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { ...PORT, default: DEFAULT_PORT },
  "tcp-port": PORT,
  "udp-port": PORT,
  "http-port": PORT,
  quiet: { type: "boolean" },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (command === undefined) return await demo();
  if (command !== "serve") throw new UsageError(`unknown command "${command}"; expected serve`);

  const base = flags.port;
  const httpPort = flags["http-port"] ?? (base === 0 ? 0 : base + 1);
  if (httpPort > 65535) throw new UsageError(`--port ${base} leaves no port for HTTP (${base}+1)`);
  const server = serveAll({
    hostname: flags.host,
    tcpPort: flags["tcp-port"] ?? base,
    udpPort: flags["udp-port"] ?? base,
    httpPort,
    log: flags.quiet ? () => {} : console.log,
    signal: shutdownSignal(),
  });
  // One banner line per listener, each as its own lesson's server prints it.
  console.log(listeningBanner("tcp", server.tcp));
  console.log(listeningBanner("udp", server.udp));
  console.log(listeningBanner("http", server.http));
  await server.finished;
}

// The demo: all three on free ports; a TCP client connects and stays
// connected while a UDP client and an HTTP client are served; then one abort
// stops everything, hanging up on the TCP client.
async function demo(): Promise<void> {
  const stop = new AbortController();
  const server = serveAll({ log: (line) => console.log(`  ${line}`), signal: stop.signal });
  console.log(listeningBanner("tcp", server.tcp));
  console.log(listeningBanner("udp", server.udp));
  console.log(listeningBanner("http", server.http));
  const encoder = new TextEncoder();
  const decoder = new TextDecoder();

  const udpClient = new UdpEchoClient(listenUdp("127.0.0.1", 0), server.udp, {
    log: (line) => console.log(`udp client: ${line}`),
  });
  let tcpClient: Deno.TcpConn | undefined;
  try {
    console.log("\ntcp client: connect, and stay connected while the others talk");
    tcpClient = await connectEcho("127.0.0.1", server.tcp.port);
    const first = await echo(tcpClient, encoder.encode("hello over tcp"));
    console.log(`tcp client: echo ${JSON.stringify(decoder.decode(first.reply))}`);

    console.log("\nudp client: one datagram");
    const { reply, attempts } = await udpClient.echo(encoder.encode("hello over udp"));
    console.log(`udp client: echo ${JSON.stringify(decoder.decode(reply))} (${attempts} send)`);

    console.log("\nhttp client: GET /hello?name=multi");
    const response = await fetch(`http://127.0.0.1:${server.http.port}/hello?name=multi`);
    const greeting = (await response.text()).match(/<p>(.*)<\/p>/)?.[1];
    console.log(`http client: ${response.status} ${response.statusText}, ${greeting}`);

    console.log("\ntcp client: still connected");
    const second = await echo(tcpClient, encoder.encode("still here"));
    console.log(`tcp client: echo ${JSON.stringify(decoder.decode(second.reply))}`);

    console.log("\nstop: one abort() for all three");
    stop.abort();
    await server.finished;
    const read = await tcpClient.read(new Uint8Array(16));
    console.log(`tcp client: read() -> ${read}: the server closed our connection`);
  } finally {
    tcpClient?.close();
    udpClient.close();
    stop.abort();
    await server.finished;
  }
  console.log("all three stopped; nothing left listening");
}

if (import.meta.main) runMain(USAGE, main);
