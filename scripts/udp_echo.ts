#!/usr/bin/env -S deno run --unstable-net --allow-net=127.0.0.1
/**
 * @title UDP echo: datagrams keep their edges, but nothing promises they arrive
 * @difficulty beginner
 * @tags cli, network, udp
 * @run --unstable-net --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc768} RFC 768: User Datagram Protocol
 * @resource {https://www.rfc-editor.org/rfc/rfc862} RFC 862: Echo Protocol
 * @resource {https://www.rfc-editor.org/rfc/rfc8085} RFC 8085: UDP Usage Guidelines (timeouts, backoff)
 *
 * The same echo as tcp_echo.ts, over UDP. One send() is one datagram and one
 * receive() returns one whole datagram: message edges come for free. What does
 * not come is any promise that it arrives: UDP has no acknowledgements and
 * never sends anything twice. So the client sets a timer, sends again when it
 * runs out, backs off, and checks that a reply is the echo of *this* request.
 * With no arguments, it runs a server that drops every 3rd datagram and a
 * client that recovers from the loss. Deno's UDP API is unstable: it needs
 * `--unstable-net`. Taught cell by cell in notebooks/02_udp_echo.ipynb.
 */

import { parseFlags } from "../lib/parse_flags.ts";
import { retry } from "../lib/retry.ts";
import { withTimeout } from "../lib/with_timeout.ts";
import { DelimiterStream } from "../lib/delimiter_stream.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { listenUdp } from "../lib/listen_udp.ts";
import { localAddressFor } from "../lib/local_address_for.ts";
import { formatAddress } from "../lib/format_address.ts";

// The notebook opens its sockets through this script.
export { listenUdp };

const USAGE = `
udp_echo.ts: a UDP echo server and a client that retries (RFC 862, on port 7007 by default)

usage:
  udp_echo.ts                      demo: a lossy server and a client that recovers
  udp_echo.ts serve [flags]        run the echo server until Ctrl-C
  udp_echo.ts send [flags] [MSG..] send each MSG (or each line of stdin) as a datagram, print the echo

flags:
  --host HOST       serve: address to listen on; send: server to reach (default 127.0.0.1)
  --port PORT       UDP port (default 7007; serve --port 0 picks any free port)
  --drop-every N    serve: drop every Nth datagram received, to show a loss (default 0: never)
  --max-size BYTES  serve: drop datagrams longer than this (default 65527, the most UDP carries)
  --timeout SECS    send: wait this long for an echo before sending again (default 0.5, at most 60)
  --attempts N      send: give up after this many sends of one message (default 5)
  --quiet           serve: do not log datagrams; send: do not log retries
  -h, --help        show this help

permissions (every mode needs --unstable-net: Deno's UDP API is unstable):
  demo, and anything on 127.0.0.1:   --unstable-net --allow-net=127.0.0.1
  serve or send with another --host:  --unstable-net --allow-net=HOST (or plain --allow-net)
`;

const DEFAULT_PORT = 7007;

// A UDP header's length field is 16 bits and counts its own 8 bytes, so no
// datagram carries more than 65527 bytes. Over IPv4 the 20-byte IP header
// comes out of the same 65535, leaving 65507; a longer send() fails at once
// with "Message too long" (EMSGSIZE). Nothing splits it for you as TCP would.
/** The most bytes one UDP datagram can carry (over IPv6; IPv4 allows 65507). */
export const MAX_UDP_PAYLOAD = 65535 - 8;

// ---------------------------------------------------------------------------
// The server
// ---------------------------------------------------------------------------

/** Options for {@linkcode serveUdpEcho}. */
export interface UdpEchoServerOptions {
  /** Drop every Nth datagram received (0: never), to make a loss on demand. @default {0} */
  dropEvery?: number;
  /** Drop datagrams longer than this many bytes. @default {MAX_UDP_PAYLOAD} */
  maxSize?: number;
  /** Where a line per datagram goes. @default {console.log} */
  log?: (line: string) => void;
  /** Stop: close the socket and return. */
  signal?: AbortSignal;
}

/**
 * Send every datagram back to whoever sent it, until `signal` aborts (or the
 * socket is closed). There are no connections: one socket serves everyone.
 */
export async function serveUdpEcho(
  conn: Deno.DatagramConn,
  options: UdpEchoServerOptions = {},
): Promise<void> {
  const { dropEvery = 0, maxSize = MAX_UDP_PAYLOAD, log = console.log, signal } = options;
  if (!Number.isInteger(dropEvery) || dropEvery < 0) {
    throw new RangeError(`dropEvery must be a whole number >= 0, got ${dropEvery}`);
  }
  if (!Number.isInteger(maxSize) || maxSize < 0 || maxSize > MAX_UDP_PAYLOAD) {
    throw new RangeError(
      `maxSize must be a whole number from 0 to ${MAX_UDP_PAYLOAD}, got ${maxSize}`,
    );
  }
  // receive() copies a datagram into our buffer and silently cuts off what
  // does not fit: the OS does not say the datagram was longer. A buffer one
  // byte larger than maxSize turns "was it cut?" into "is it maxSize + 1?".
  const buffer = new Uint8Array(maxSize + 1);
  const stop = () => conn.close();
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", stop, { once: true });
  let count = 0;
  try {
    while (true) {
      let datagram: Uint8Array, peer: Deno.Addr;
      try {
        [datagram, peer] = await conn.receive(buffer);
      } catch (error) {
        // Some systems report an ICMP "port unreachable" for an earlier echo
        // to a client that has gone as an error here. It is about that
        // client, not us: carry on. Closing the socket is how we stop.
        if (error instanceof Deno.errors.ConnectionReset) continue;
        if (error instanceof Deno.errors.ConnectionRefused) continue;
        throw error;
      }
      count++;
      const from = `#${count} from ${formatAddress(peer)}`;
      if (datagram.length > maxSize) {
        log(`${from}: longer than ${maxSize} bytes (--max-size), dropped`);
      } else if (dropEvery > 0 && count % dropEvery === 0) {
        log(`${from}: ${datagram.length} bytes, dropped on purpose (--drop-every ${dropEvery})`);
      } else {
        // A send that fails concerns that one peer: say so, keep serving.
        // Only a closed socket (our own shutdown) ends the loop.
        try {
          await conn.send(datagram, peer);
          log(`${from}: ${datagram.length} bytes, echoed`);
        } catch (error) {
          if (error instanceof Deno.errors.BadResource) throw error;
          log(`${from}: could not echo (${(error as Error).message})`);
        }
      }
    }
  } catch (error) {
    // A closed socket rejects the pending receive(): that is our stop.
    const closed = error instanceof Deno.errors.BadResource ||
      error instanceof Deno.errors.Interrupted;
    if (!closed) throw error;
  } finally {
    signal?.removeEventListener("abort", stop);
  }
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

// UDP (RFC 768, three pages) is IP plus port numbers and a checksum: no
// connection, so no state in which to remember what was sent, and no one to
// acknowledge it. Whether a loss matters is for the application to decide (a
// DNS query is asked again; a late video frame is better skipped), so the
// application keeps the timer, and decides how often to ask again.

/** Options for {@linkcode UdpEchoClient}. */
export interface UdpEchoClientOptions {
  /** How long each attempt waits for the echo, in ms. @default {500} */
  timeout?: number;
  /** Sends of one message before giving up with a `RetryError`. @default {5} */
  maxAttempts?: number;
  /** The pause after the first timeout, in ms; it doubles after each. @default {timeout} */
  minTimeout?: number;
  /** Where retries and ignored datagrams are reported. @default {console.error} */
  log?: (line: string) => void;
}

/** What {@linkcode UdpEchoClient.echo} got back. */
export interface UdpEchoResult {
  /** The echo: byte for byte what was sent. */
  reply: Uint8Array;
  /** How many times the message was sent (1: no loss). */
  attempts: number;
}

/** A client for one echo server, on a socket of its own (which it closes). */
export class UdpEchoClient {
  #conn: Deno.DatagramConn;
  #server: Deno.NetAddr;
  #options: Required<UdpEchoClientOptions>;
  #pending: Promise<[Uint8Array, Deno.Addr]> | undefined;

  /**
   * Talk to the echo server at `server` from `conn`.
   *
   * @param conn The client's socket, bound to any port (`listenUdp(host, 0)`).
   * @param server Where the echo server listens.
   * @param options Timeout, attempts, backoff, log.
   */
  constructor(
    conn: Deno.DatagramConn,
    server: { hostname: string; port: number },
    options: UdpEchoClientOptions = {},
  ) {
    const { timeout = 500, maxAttempts = 5, log = console.error } = options;
    this.#options = { timeout, maxAttempts, minTimeout: options.minTimeout ?? timeout, log };
    this.#conn = conn;
    this.#server = { transport: "udp", ...server };
  }

  /**
   * Send `message` and wait for its echo, sending again after each timeout
   * with a growing pause between (RFC 8085 §3.1.3: back off, so a lossy or
   * overloaded path gets fewer datagrams, not more).
   * @param message The datagram to send: 0 to 65507 bytes over IPv4.
   * @param signal Stops waiting and retrying when it aborts.
   * @returns The echo, and how many sends it took.
   * @throws {RetryError} When every attempt timed out.
   * @throws {Error} At once, when the datagram cannot be sent (too long, say).
   */
  async echo(message: Uint8Array, signal?: AbortSignal): Promise<UdpEchoResult> {
    const { timeout, maxAttempts, minTimeout, log } = this.#options;
    let attempts = 0;
    const reply = await retry(() => {
      attempts++;
      return withTimeout((attemptSignal) => this.#attempt(message, attemptSignal), timeout, {
        signal,
      });
    }, {
      maxAttempts,
      minTimeout,
      jitter: 0.5,
      signal,
      // Only silence is worth another try; "Message too long" will stay so.
      isRetriable: (error) => error instanceof DOMException && error.name === "TimeoutError",
      onRetry: (_, n, wait) =>
        log(`no echo within ${timeout} ms (attempt ${n}/${maxAttempts}); resending in ${wait} ms`),
    });
    return { reply, attempts };
  }

  // One attempt: send the datagram, then read until its echo comes back.
  async #attempt(message: Uint8Array, signal: AbortSignal): Promise<Uint8Array> {
    try {
      await this.#conn.send(message, this.#server);
    } catch (error) {
      const to = `udp://${formatAddress(this.#server)}`;
      throw new Error(`cannot send ${message.length} bytes to ${to}`, { cause: error });
    }
    // Anyone may send us a datagram, and the echo of an earlier message that
    // was sent twice can come back twice, late. Only the server's copy of
    // these exact bytes answers this request. (A sequence number would also
    // tell two identical messages apart, but then the server would not be a
    // plain RFC 862 echo that any UDP tool can talk to.)
    while (true) {
      const [reply, from] = await this.#receive(signal);
      if (!sameAddress(from, this.#server)) {
        this.#options.log(
          `ignored ${reply.length} bytes from ${formatAddress(from)}: not the server`,
        );
      } else if (!sameBytes(reply, message)) {
        this.#options.log(`ignored a stale echo (${reply.length} bytes): not of this message`);
      } else return reply;
    }
  }

  // Deno cannot cancel a receive(), so a timed-out attempt leaves its
  // receive() pending, and the next attempt waits on that same one instead of
  // piling up another. A datagram it delivers after the timeout stays here
  // for the next attempt: a late echo is still found.
  #receive(signal: AbortSignal): Promise<[Uint8Array, Deno.Addr]> {
    const pending = this.#pending ??= this.#conn.receive(new Uint8Array(MAX_UDP_PAYLOAD + 1));
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      if (signal.aborted) return onAbort();
      signal.addEventListener("abort", onAbort, { once: true });
      pending.then((result) => {
        if (signal.aborted) return;
        signal.removeEventListener("abort", onAbort);
        this.#pending = undefined;
        resolve(result);
      }, (error) => {
        signal.removeEventListener("abort", onAbort);
        this.#pending = undefined;
        reject(error);
      });
    });
  }

  /** The client's own address: where echoes come back to. */
  get addr(): Deno.NetAddr {
    return this.#conn.addr as Deno.NetAddr;
  }

  /** Close the socket (a pending receive() then ends quietly). */
  close(): void {
    this.#pending?.catch(() => {});
    this.#conn.close();
  }
}

function sameAddress(from: Deno.Addr, server: Deno.NetAddr): boolean {
  if (from.transport !== "udp" || from.port !== server.port) return false;
  // A name (not an address) cannot be compared without resolving it: port only.
  const isAddress = /^[\d.]+$|:/.test(server.hostname);
  return !isAddress || from.hostname === server.hostname;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

// --timeout is also the first pause before a resend, and retry() pauses at
// most 60 s (its maxTimeout), so a longer one is refused here, as a usage
// error. (That also keeps it far below what setTimeout can wait: 24.8 days.)
const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  "drop-every": { type: "number", default: 0, integer: true, min: 0 },
  "max-size": { type: "number", default: 65527, integer: true, min: 0, max: 65527 },
  timeout: { type: "number", default: 0.5, min: 0.001, max: 60 },
  attempts: { type: "number", default: 5, integer: true, min: 1 },
  quiet: { type: "boolean" },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command = "demo", ...messages] = positionals;
  if (command === "serve") {
    if (messages.length > 0) throw new UsageError(`serve takes no arguments, got "${messages[0]}"`);
    const conn = listenUdp(flags.host, flags.port);
    console.log(listeningBanner("udp", conn.addr as Deno.NetAddr));
    return await serveUdpEcho(conn, {
      dropEvery: flags["drop-every"],
      maxSize: flags["max-size"],
      log: flags.quiet ? () => {} : console.log,
      signal: shutdownSignal(),
    });
  }
  if (command === "send") return await sendCommand(flags, messages);
  if (command === "demo" && positionals.length === 0) return await demo();
  throw new UsageError(`unknown command "${command}"; expected serve or send`);
}

async function sendCommand(
  flags: { host: string; port: number; timeout: number; attempts: number; quiet: boolean },
  messages: string[],
): Promise<void> {
  const { host: hostname, port } = flags;
  const client = new UdpEchoClient(listenUdp(localAddressFor(hostname), 0), { hostname, port }, {
    timeout: flags.timeout * 1000,
    maxAttempts: flags.attempts,
    log: flags.quiet ? () => {} : (line) => console.error(`note: ${line}`),
  });
  try {
    for await (const text of messages.length > 0 ? messages : stdinLines()) {
      const { reply } = await client.echo(new TextEncoder().encode(text));
      console.log(new TextDecoder().decode(reply));
    }
  } finally {
    client.close();
  }
}

async function* stdinLines(): AsyncGenerator<string> {
  yield* Deno.stdin.readable
    .pipeThrough(new DelimiterStream({ trimCarriageReturn: true, unterminated: "emit" }))
    .pipeThrough(new TextDecoderStream());
}

// The default run: a server on any free loopback port that drops every 3rd
// datagram, and a client that sends four messages, one at a time.
async function demo(): Promise<void> {
  const conn = listenUdp("127.0.0.1", 0);
  console.log(`server: ${listeningBanner("udp", conn.addr as Deno.NetAddr)} (drops every 3rd)`);
  const stop = new AbortController();
  const server = serveUdpEcho(conn, {
    dropEvery: 3,
    log: (line) => console.log(`server: ${line}`),
    signal: stop.signal,
  });
  const client = new UdpEchoClient(listenUdp("127.0.0.1", 0), conn.addr as Deno.NetAddr, {
    log: (line) => console.log(`client: ${line}`),
  });
  try {
    for (const text of ["one", "two", "three", "four"]) {
      console.log(`client: sending ${JSON.stringify(text)}`);
      const { reply, attempts } = await client.echo(new TextEncoder().encode(text));
      const tries = attempts === 1 ? "first try" : `${attempts} attempts`;
      console.log(`client: echo ${JSON.stringify(new TextDecoder().decode(reply))} (${tries})`);
    }
  } finally {
    client.close();
    stop.abort();
    await server;
  }
  console.log(
    "The third datagram vanished and nobody told the client: UDP (RFC 768) has no\n" +
      "acknowledgements and never resends. The client's own timer noticed the silence,\n" +
      "and its retry (after a pause, RFC 8085 §3.1.3) recovered the loss.",
  );
  console.log("server: stopped; nothing left open");
}

if (import.meta.main) runMain(USAGE, main);
