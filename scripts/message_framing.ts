#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title Message framing: where one message ends and the next begins
 * @difficulty beginner
 * @tags cli, network, tcp, framing
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc9293#section-3.8} RFC 9293 §3.8: TCP data communication
 * @resource {https://www.rfc-editor.org/rfc/rfc5234#appendix-B.1} RFC 5234 B.1: CRLF, the line ending of text protocols
 * @resource {https://www.rfc-editor.org/rfc/rfc1831#section-10} RFC 1831 §10: record marking, a length prefix in practice
 *
 * TCP carries bytes, not messages: three writes may arrive as one read, and
 * one write as several. This script shows both happening on loopback, then
 * fixes it twice: with a delimiter (a newline, as text protocols do) and with a
 * length prefix (as binary protocols do), using lib's DelimiterStream and
 * encodeFrame/readFrame. Last, it shows a write() that sends only part of its
 * buffer, and writeAll() finishing the job. Run as `serve` and `send`, it is a
 * framed-message server and client in either style.
 * Taught cell by cell in notebooks/03_message_framing.ipynb.
 */

import { acceptConnections } from "../lib/accept_connections.ts";
import { DelimiterStream } from "../lib/delimiter_stream.ts";
import { encodeFrame } from "../lib/encode_frame.ts";
import { readFrame } from "../lib/read_frame.ts";
import { writeAll } from "../lib/write_all.ts";
import { parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";

const USAGE = `
message_framing.ts: why TCP needs framing, and the two ways to do it

usage:
  message_framing.ts                       demo: the problem, two fixes, a partial write
  message_framing.ts serve [flags]         print each framed message received, until Ctrl-C
  message_framing.ts send [flags] MSG...   send each MSG as one framed message

flags:
  --framing line|length  newline-delimited or u32 length-prefixed (default line)
  --host HOST            serve: address to listen on; send: server to reach (default 127.0.0.1)
  --port PORT            TCP port (default 7100; serve --port 0 picks any free port)
  --max-size BYTES       serve: the largest message accepted (default 65536)
  -h, --help             show this help

permissions:
  demo, and anything on 127.0.0.1:   --allow-net=127.0.0.1
  another --host:                     --allow-net=HOST (or plain --allow-net)
`;

const DEFAULT_PORT = 7100;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** The two ways of marking where a message ends. */
export type Framing = "line" | "length";

// ---------------------------------------------------------------------------
// Receiving framed messages
// ---------------------------------------------------------------------------

/**
 * Yield each message arriving on `conn`, framed as `framing` says, refusing
 * any longer than `maxSize` (the stream then fails with FrameTooLargeError).
 */
export async function* receiveMessages(
  conn: Deno.Conn,
  framing: Framing,
  maxSize = 65536,
): AsyncGenerator<Uint8Array> {
  if (framing === "line") {
    // Delimiter framing: bytes up to each "\n" (a "\r" before it is dropped,
    // so CRLF senders work too). Lines cannot contain "\n" themselves.
    yield* conn.readable.pipeThrough(
      new DelimiterStream({ maxLength: maxSize, trimCarriageReturn: true }),
    );
    return;
  }
  // Length-prefix framing: 4 bytes of length, then that many bytes of anything.
  for (let message = await readFrame(conn, { maxFrameSize: maxSize }); message !== null;) {
    yield message;
    message = await readFrame(conn, { maxFrameSize: maxSize });
  }
}

/** Frame one message for sending. */
export function frameMessage(message: Uint8Array, framing: Framing): Uint8Array {
  if (framing === "length") return encodeFrame(message);
  if (message.includes(0x0a)) {
    throw new RangeError("a line cannot contain a newline: use --framing length for that message");
  }
  return Uint8Array.from([...message, 0x0a]);
}

// ---------------------------------------------------------------------------
// The demo, in four acts
// ---------------------------------------------------------------------------

/** A connected pair of TCP sockets on loopback: what one side writes, the other reads. */
export async function loopbackPair(): Promise<{ sender: Deno.TcpConn; receiver: Deno.TcpConn }> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const [sender, receiver] = await Promise.all([
    Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port }),
    listener.accept(),
  ]);
  listener.close();
  return { sender, receiver };
}

/** Read until the peer closes, recording what each read() returned. */
export async function recordReads(conn: Deno.Conn): Promise<string[]> {
  const reads: string[] = [];
  const buffer = new Uint8Array(64 * 1024);
  for (let n = await conn.read(buffer); n !== null; n = await conn.read(buffer)) {
    reads.push(decoder.decode(buffer.subarray(0, n)));
  }
  return reads;
}

// Reading a connection's `readable` to its end closes the connection too, so
// a second close() would throw; this one does not mind.
function closeQuietly(conn: Deno.Conn): void {
  try {
    conn.close();
  } catch { /* already closed */ }
}

const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
const MESSAGES = ["HELLO", "HOW ARE YOU?", "BYE"];

// Act 1: the naive receiver, which believes one read() is one message.
// Three quick writes land in the receiver's buffer before it reads, so one
// read() returns all three run together. Then, with the receiver waiting, one
// message written in two halves, a pause between, arrives as two reads.
async function actOneTheProblem(): Promise<void> {
  console.log("1. No framing: the receiver prints each read() as if it were a message");
  const { sender, receiver } = await loopbackPair();
  for (const message of MESSAGES) await writeAll(sender, encoder.encode(message));
  await pause(50);
  const reads = recordReads(receiver);
  await writeAll(sender, encoder.encode("A MESSAGE WRITTEN "));
  await pause(50);
  await writeAll(sender, encoder.encode("IN TWO HALVES"));
  sender.close();
  for (const [i, read] of (await reads).entries()) {
    console.log(`   read ${i + 1}: ${JSON.stringify(read)}`);
  }
  closeQuietly(receiver);
  console.log(
    `   ${MESSAGES.length + 1} messages sent, ${(await reads).length} reads: the edges are gone\n`,
  );
}

// Act 2: a delimiter. The sender ends each message with "\n"; the receiver
// splits on it, however the bytes arrive. Cheap and readable (HTTP, SMTP and
// FTP do it), but a message must never contain the delimiter, or it must be
// escaped, which costs a pass over every byte on both sides.
async function actTwoDelimiter(): Promise<void> {
  console.log('2. Delimiter framing: each message ends with "\\n"');
  const { sender, receiver } = await loopbackPair();
  const received = Array.fromAsync(receiveMessages(receiver, "line"));
  for (const message of MESSAGES) {
    await writeAll(sender, frameMessage(encoder.encode(message), "line"));
  }
  await writeAll(sender, encoder.encode("TWO\nLINES\n")); // one "message" with a newline inside
  sender.close();
  for (const message of await received) {
    console.log(`   message: ${JSON.stringify(decoder.decode(message))}`);
  }
  closeQuietly(receiver);
  console.log(
    '   "TWO\\nLINES" came out as two messages: a delimiter must be escaped or forbidden\n',
  );
}

// Act 3: a length prefix. Each message goes out as 4 bytes of length (big-
// endian) and then the bytes themselves, so it may contain anything, and the
// receiver knows how much to wait for before it has it. Binary protocols
// (TLS records, HTTP/2 frames, DNS over TCP) do this.
async function actThreeLengthPrefix(): Promise<void> {
  console.log("3. Length-prefix framing: a u32 length, then the bytes");
  const { sender, receiver } = await loopbackPair();
  const received = Array.fromAsync(receiveMessages(receiver, "length"));
  const messages = [...MESSAGES, "TWO\nLINES"].map((text) => encoder.encode(text));
  const hex = [...encodeFrame(messages[0])].map((b) => b.toString(16).padStart(2, "0")).join(" ");
  console.log(`   on the wire, "HELLO" is: ${hex}`);
  for (const message of messages) await writeAll(sender, encodeFrame(message));
  sender.close();
  for (const message of await received) {
    console.log(`   message: ${JSON.stringify(decoder.decode(message))}`);
  }
  closeQuietly(receiver);
  console.log("   every message intact, newline included, with no escaping\n");
}

// Act 4: a partial write. write() hands bytes to the kernel's send buffer and
// returns how many it took. When the buffer is full (the peer is slow to
// read), that can be fewer than we asked: the rest is still ours to send.
// writeAll() loops until every byte is taken.
async function actFourPartialWrite(): Promise<void> {
  console.log("4. A partial write, completed");
  const { sender, receiver } = await loopbackPair();
  const big = new Uint8Array(16 * 1024 * 1024);
  const taken = await sender.write(big);
  console.log(`   one write() of ${big.length} bytes took ${taken}: the rest did not fit yet`);
  const draining = (async () => {
    let total = 0;
    for await (const chunk of receiver.readable) total += chunk.length;
    return total;
  })();
  await writeAll(sender, big.subarray(taken));
  sender.close();
  console.log(
    `   writeAll() sent the other ${big.length - taken}; the receiver got ${await draining}`,
  );
}

async function demo(): Promise<void> {
  await actOneTheProblem();
  await actTwoDelimiter();
  await actThreeLengthPrefix();
  await actFourPartialWrite();
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  framing: { type: "string", default: "line" },
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  "max-size": { type: "number", default: 65536, integer: true, min: 1 },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...messages] = positionals;
  if (flags.framing !== "line" && flags.framing !== "length") {
    throw new UsageError(`--framing must be line or length, got "${flags.framing}"`);
  }
  const framing: Framing = flags.framing;
  if (command === undefined) return await demo();
  if (command === "serve" && messages.length === 0) {
    return await serve(flags.host, flags.port, framing, flags["max-size"]);
  }
  if (command === "send" && messages.length > 0) {
    return await send(flags.host, flags.port, framing, messages);
  }
  if (command === "send") throw new UsageError("send needs at least one message");
  throw new UsageError(`unexpected "${positionals.join(" ")}"; expected serve or send MSG...`);
}

// The server prints every message of every client, each connection on its
// own, and answers a message over the cap by closing that connection.
async function serve(hostname: string, port: number, framing: Framing, maxSize: number) {
  const listener = Deno.listen({ hostname, port });
  console.log(listeningBanner("tcp", listener.addr));
  const open = new Set<Deno.Conn>();
  shutdownSignal().addEventListener("abort", () => {
    listener.close();
    for (const conn of open) conn.close();
  });
  const handlers: Promise<void>[] = [];
  // A closed listener is our shutdown; a failed accept() (out of file
  // descriptors, say) is logged and tried again, as in tcp_echo.ts.
  const onError = (error: Error) =>
    console.log(`accept() failed (${error.message}); trying again in 100 ms`);
  for await (const conn of acceptConnections(listener, { onError })) {
    open.add(conn);
    handlers.push(printMessages(conn, framing, maxSize).finally(() => open.delete(conn)));
  }
  await Promise.all(handlers);
}

async function printMessages(conn: Deno.TcpConn, framing: Framing, maxSize: number) {
  const { hostname, port } = conn.remoteAddr;
  const peer = `${hostname}:${port}`;
  try {
    for await (const message of receiveMessages(conn, framing, maxSize)) {
      console.log(`${peer}: ${JSON.stringify(decoder.decode(message))}`);
    }
    console.log(`${peer}: closed`);
  } catch (error) {
    console.log(`${peer}: dropped: ${(error as Error).message}`);
  } finally {
    closeQuietly(conn);
  }
}

async function send(hostname: string, port: number, framing: Framing, messages: string[]) {
  const frames = messages.map((text) => frameMessage(encoder.encode(text), framing));
  let conn: Deno.TcpConn;
  try {
    conn = await Deno.connect({ hostname, port });
  } catch (error) {
    throw new Error(`cannot connect to tcp://${hostname}:${port}`, { cause: error });
  }
  try {
    for (const frame of frames) await writeAll(conn, frame);
    console.log(`sent ${messages.length} message(s), ${framing} framing`);
  } finally {
    conn.close();
  }
}

if (import.meta.main) runMain(USAGE, main);
