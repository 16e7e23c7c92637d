#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title File transfer over TCP: a header, a stream, a hash, an atomic rename
 * @difficulty intermediate
 * @tags cli, network, tcp, files
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc9293#section-3.8} RFC 9293 §3.8: TCP data communication
 * @resource {https://www.rfc-editor.org/rfc/rfc6234} RFC 6234: US Secure Hash Algorithms (SHA-256)
 * @resource {https://pubs.opengroup.org/onlinepubs/9799919799/functions/rename.html} POSIX rename(): atomic replacement
 *
 * Sending a file the way a real tool does. The sender announces the file in a
 * length-prefixed header (name, size, SHA-256), then streams the bytes in
 * chunks, never holding the whole file in memory. The receiver writes them to
 * a temporary file beside the target, checks the size and the hash, and only
 * then renames it into place: an interrupted or corrupted transfer never
 * leaves a partial file under the real name. Names with path separators or
 * `..` are refused. With no arguments the demo runs both ends in memory.
 * Taught cell by cell in notebooks/04_file_transfer.ipynb.
 */

import { createHash } from "node:crypto";
import { acceptConnections } from "../lib/accept_connections.ts";
import { encodeFrame } from "../lib/encode_frame.ts";
import { readFrame } from "../lib/read_frame.ts";
import { FrameTooLargeError } from "../lib/frame_too_large_error.ts";
import { writeAll } from "../lib/write_all.ts";
import { withTimeout } from "../lib/with_timeout.ts";
import { parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";

const USAGE = `
file_transfer.ts: send a file over TCP; the receiver keeps it only if it arrived whole

usage:
  file_transfer.ts                       demo: good, refused, corrupted and interrupted transfers, in memory
  file_transfer.ts serve [--dir DIR]     receive files into DIR until Ctrl-C (without --dir:
                                         check each file, then discard it)
  file_transfer.ts send FILE [flags]     send FILE to a receiver

flags:
  --dir DIR            serve: the folder files are received into
  --host HOST          serve: address to listen on; send: receiver to reach (default 127.0.0.1)
  --port PORT          TCP port (default 7300; serve --port 0 picks any free port)
  --name NAME          send: the name to give the file there (default: FILE's own name)
  --max-size BYTES     serve: the largest file accepted (default 4294967296, 4 GiB)
  --idle-timeout SECS  serve: drop a sender silent this long; send: wait this long for the verdict
                       (default 30, at most 86400)
  -h, --help           show this help

permissions (each scoped to the one file or folder involved):
  demo, and serve without --dir:  --allow-net=127.0.0.1
  serve --dir DIR:  --allow-net=127.0.0.1 --allow-read=DIR --allow-write=DIR
          (Deno's rename needs read as well as write access to the folder)
  send:   --allow-net=127.0.0.1 --allow-read=FILE
  another --host: --allow-net=HOST instead of --allow-net=127.0.0.1
`;

const DEFAULT_PORT = 7300;
const MAX_HEADER = 4096;
const CHUNK = 64 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------
// The protocol
//
//   sender                                           receiver
//     | [u32 length][{"name","size","sha256"} JSON]  ->  |  check name and size
//     |  <-  [u32 length][{"ok":true}]  (or {"ok":false,"error":...} and close)
//     | [size bytes of file, in chunks]              ->  |  write to a temp file, hashing
//     |  <-  [u32 length][{"ok":true} or {"ok":false,"error":...}]
//                                                        |  rename on ok, delete otherwise
//
// The first answer is the receiver's go-ahead, like HTTP's "100 Continue" or
// FTP's "150": a refused sender learns why before it streams gigabytes into
// a connection nobody reads.
// ---------------------------------------------------------------------------

/** What the sender announces before the bytes. */
export interface FileHeader {
  /** The file's name, without any folder. */
  name: string;
  /** Its size in bytes. */
  size: number;
  /** SHA-256 of its bytes, lowercase hex. */
  sha256: string;
}

/** The receiver's answer. */
export type Verdict = { ok: true } | { ok: false; error: string };

/**
 * Check a name the sender proposes. The receiver joins it to its folder, so a
 * name like `../../home/me/.bashrc` or `/etc/passwd` would write outside it:
 * refuse any separator, `.` and `..`, control characters, and overlong names.
 * Returns the problem, or undefined when the name is safe.
 */
export function problemWithName(name: string): string | undefined {
  if (name === "" || name === "." || name === "..") return `"${name}" is not a file name`;
  if (/[\/\\]/.test(name)) return `"${name}" contains a path separator`;
  // deno-lint-ignore no-control-regex
  if (/[\x00-\x1f\x7f]/.test(name)) return `${JSON.stringify(name)} contains a control character`;
  if (encoder.encode(name).length > 255) return "the name is longer than 255 bytes";
  return undefined;
}

// ---------------------------------------------------------------------------
// Where received files go: a folder, or memory (for the demo)
// ---------------------------------------------------------------------------

/** A file being received: kept aside until `commit()`, gone after `abort()`. */
export interface Upload {
  write(chunk: Uint8Array): Promise<void>;
  commit(): Promise<void>;
  abort(): Promise<void>;
}

/** Somewhere to put received files. */
export interface FileStore {
  begin(name: string): Promise<Upload>;
}

/**
 * Files in a folder. Each upload is written to a hidden temporary file in the
 * same folder (same filesystem, so the rename is atomic): readers of the real
 * name see the old file or the whole new one, never half of one.
 */
export class DirectoryStore implements FileStore {
  constructor(readonly dir: string) {}

  async begin(name: string): Promise<Upload> {
    const target = `${this.dir}/${name}`;
    // A random suffix keeps two uploads of one name apart. The name is cut
    // short so the temporary name stays within the 255-byte limit: to 100
    // bytes, not characters ("文" is 3 bytes in UTF-8, an emoji 4).
    // encodeInto() stops before a character that would not fit whole, and
    // says how much of the string it took.
    const { read } = encoder.encodeInto(name, new Uint8Array(100));
    const temp = `${this.dir}/.${name.slice(0, read)}.${crypto.randomUUID().slice(0, 8)}.part`;
    const file = await Deno.open(temp, { createNew: true, write: true });
    let closed = false;
    const close = () => {
      if (!closed) file.close();
      closed = true;
    };
    return {
      write: (chunk) => writeAll(file, chunk),
      async commit() {
        await file.syncData(); // on disk before it gets the real name
        close();
        await Deno.rename(temp, target);
      },
      async abort() {
        close();
        await Deno.remove(temp).catch(() => {});
      },
    };
  }
}

/** Nowhere: each file is received and checked, then forgotten (`serve` without `--dir`). */
export class DiscardStore implements FileStore {
  begin(): Promise<Upload> {
    const nothing = () => Promise.resolve();
    return Promise.resolve({ write: nothing, commit: nothing, abort: nothing });
  }
}

/** Files in memory, with the same all-or-nothing behaviour. */
export class MemoryStore implements FileStore {
  readonly files = new Map<string, Uint8Array>();

  begin(name: string): Promise<Upload> {
    const parts: Uint8Array[] = [];
    return Promise.resolve({
      write: (chunk) => {
        parts.push(chunk.slice());
        return Promise.resolve();
      },
      commit: () => {
        const file = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
        let offset = 0;
        for (const part of parts) {
          file.set(part, offset);
          offset += part.length;
        }
        this.files.set(name, file);
        return Promise.resolve();
      },
      abort: () => {
        parts.length = 0;
        return Promise.resolve();
      },
    });
  }
}

// ---------------------------------------------------------------------------
// Receiving
// ---------------------------------------------------------------------------

/** Options for {@linkcode receiveFile}. */
export interface ReceiveOptions {
  /** The largest file accepted. @default {4294967296} */
  maxSize?: number;
  /** Give up when no byte arrives for this long, in ms. @default {30000} */
  idleTimeout?: number;
}

/**
 * Receive one file from `conn` into `store` and answer the sender. Resolves
 * to what happened, for the log; never throws for the peer's mistakes.
 */
export async function receiveFile(
  conn: Deno.Conn,
  store: FileStore,
  options: ReceiveOptions = {},
): Promise<string> {
  const { maxSize = 2 ** 32, idleTimeout = 30_000 } = options;
  const answer = (verdict: Verdict) =>
    writeAll(conn, encodeFrame(encoder.encode(JSON.stringify(verdict))));
  let idle = false;
  const timer = setTimeout(() => {
    idle = true;
    conn.close();
  }, idleTimeout);

  let upload: Upload | undefined;
  try {
    // 1. The header: refuse a bad name or size before a single byte of the body.
    let frame;
    try {
      frame = await readFrame(conn, { maxFrameSize: MAX_HEADER });
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error;
      await answer({ ok: false, error: `the header is over ${MAX_HEADER} bytes` });
      return `refused: a header of ${error.size} bytes`;
    }
    if (frame === null) return "the sender left before its header";
    const header = parseHeader(frame);
    if (typeof header === "string") {
      await answer({ ok: false, error: header });
      return `refused: ${header}`;
    }
    if (header.size > maxSize) {
      await answer({ ok: false, error: `${header.size} bytes is over the limit of ${maxSize}` });
      return `refused "${header.name}": ${header.size} bytes is over the limit`;
    }
    // The temporary file is made before the go-ahead, so a receiver that
    // cannot store anything (a full disk, no permission) says so now.
    try {
      upload = await store.begin(header.name);
    } catch (error) {
      await answer({
        ok: false,
        error: `the receiver cannot store it: ${(error as Error).message}`,
      });
      return `refused "${header.name}": cannot store it (${(error as Error).message})`;
    }
    await answer({ ok: true });

    // 2. The body, straight to the temporary file, hashed on the way.
    const hash = createHash("sha256");
    const buffer = new Uint8Array(CHUNK);
    let received = 0;
    while (received < header.size) {
      const want = Math.min(buffer.length, header.size - received);
      const n = await conn.read(buffer.subarray(0, want));
      if (n === null) break;
      timer.refresh();
      const chunk = buffer.subarray(0, n);
      hash.update(chunk);
      await upload.write(chunk);
      received += n;
    }

    // 3. The checks, then the rename, or nothing.
    if (received < header.size) {
      await upload.abort();
      return `discarded "${header.name}": the sender left after ${received} of ${header.size} bytes`;
    }
    const digest = hash.digest("hex");
    if (digest !== header.sha256) {
      await upload.abort();
      await answer({
        ok: false,
        error: `SHA-256 mismatch: announced ${header.sha256}, got ${digest}`,
      });
      return `discarded "${header.name}": SHA-256 mismatch`;
    }
    await upload.commit();
    upload = undefined;
    await answer({ ok: true });
    return `received "${header.name}" (${header.size} bytes, SHA-256 ${digest.slice(0, 16)}...)`;
  } catch (error) {
    await upload?.abort();
    return idle
      ? `dropped: silent for ${idleTimeout / 1000} s`
      : `dropped: ${(error as Error).message}`;
  } finally {
    clearTimeout(timer);
    try {
      conn.close();
    } catch { /* closed on idle */ }
  }
}

function parseHeader(frame: Uint8Array): FileHeader | string {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(frame));
  } catch {
    return "the header is not JSON";
  }
  const { name, size, sha256 } = (value ?? {}) as Record<string, unknown>;
  if (typeof name !== "string") return "the header has no name";
  const problem = problemWithName(name);
  if (problem) return problem;
  if (!Number.isSafeInteger(size) || (size as number) < 0) {
    return "the header's size is not a byte count";
  }
  if (typeof sha256 !== "string" || !/^[0-9a-f]{64}$/.test(sha256)) {
    return "the header's sha256 is not 64 hex digits";
  }
  return { name, size: size as number, sha256 };
}

// ---------------------------------------------------------------------------
// Sending
// ---------------------------------------------------------------------------

/** Something to send: its size, and its bytes as a fresh stream each time. */
export interface Source {
  size: number;
  open(): Promise<ReadableStream<Uint8Array>> | ReadableStream<Uint8Array>;
}

/** A source reading a file from disk, chunk by chunk. */
export async function fileSource(path: string): Promise<Source> {
  const { size, isFile } = await Deno.stat(path);
  if (!isFile) throw new Error(`${path} is not a file`);
  return { size, open: async () => (await Deno.open(path)).readable };
}

/** A source of bytes already in memory. */
export function memorySource(bytes: Uint8Array): Source {
  return { size: bytes.length, open: () => ReadableStream.from([bytes]) };
}

/** SHA-256 of a source, reading it once, in chunks. */
export async function hashSource(source: Source): Promise<string> {
  const hash = createHash("sha256");
  for await (const chunk of await source.open()) hash.update(chunk);
  return hash.digest("hex");
}

/**
 * Send `source` as `name` on `conn`: the header; once the receiver agrees,
 * the bytes in chunks; then wait for the receiver's verdict. `onProgress` sees the bytes sent so far.
 * `sha256` defaults to the source's own hash (the demo passes a wrong one).
 */
export async function sendFile(
  conn: Deno.Conn,
  name: string,
  source: Source,
  options: { sha256?: string; onProgress?: (sent: number) => void; timeout?: number } = {},
): Promise<Verdict> {
  const { onProgress, timeout = 30_000 } = options;
  const sha256 = options.sha256 ?? await hashSource(source);
  const header: FileHeader = { name, size: source.size, sha256 };
  await writeAll(conn, encodeFrame(encoder.encode(JSON.stringify(header))));
  const goAhead = await readVerdict(conn, timeout);
  if (!goAhead.ok) return goAhead;
  let sent = 0;
  for await (const chunk of await source.open()) {
    for (let offset = 0; offset < chunk.length; offset += CHUNK) {
      const piece = chunk.subarray(offset, offset + CHUNK);
      await writeAll(conn, piece);
      sent += piece.length;
      onProgress?.(sent);
    }
  }
  return await readVerdict(conn, timeout);
}

async function readVerdict(conn: Deno.Conn, timeout: number): Promise<Verdict> {
  const reply = await withTimeout(() => readFrame(conn, { maxFrameSize: MAX_HEADER }), timeout);
  if (reply === null) throw new Error("the receiver closed the connection without a verdict");
  return JSON.parse(decoder.decode(reply)) as Verdict;
}

/**
 * A progress report: a redrawn bar with rate and time left on a terminal,
 * and a plain line at each quarter otherwise (a log file wants no `\r`).
 */
export function progressReporter(total: number, write: (text: string) => void, tty: boolean) {
  const start = performance.now();
  let lastQuarter = -1;
  return (sent: number) => {
    const fraction = total === 0 ? 1 : sent / total;
    const seconds = (performance.now() - start) / 1000;
    const rate = seconds > 0 ? sent / seconds : 0;
    const eta = rate > 0 ? (total - sent) / rate : 0;
    const mib = (bytes: number) => (bytes / 1048576).toFixed(1);
    const text = `${(fraction * 100).toFixed(0).padStart(3)}% ${mib(sent)}/${mib(total)} MiB` +
      ` ${mib(rate)} MiB/s ETA ${eta.toFixed(0)} s`;
    if (tty) {
      const bar = "#".repeat(Math.round(fraction * 30)).padEnd(30, ".");
      write(`\r[${bar}] ${text}${sent === total ? "\n" : ""}`);
    } else if (Math.floor(fraction * 4) > lastQuarter) {
      lastQuarter = Math.floor(fraction * 4);
      write(`${text}\n`);
    }
  };
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

// setTimeout waits at most 2^31 - 1 ms (24.8 days); a longer delay becomes
// 1 ms, and the timeout would fire at once. So a timeout is at most a day.
const MAX_TIMEOUT_SECONDS = 86_400;

const FLAGS = {
  dir: { type: "string" },
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  name: { type: "string" },
  "max-size": { type: "number", default: 2 ** 32, integer: true, min: 0 },
  "idle-timeout": { type: "number", default: 30, min: 0.001, max: MAX_TIMEOUT_SECONDS },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (command === undefined) return await demo();
  if (command === "serve") {
    if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
    const options = { maxSize: flags["max-size"], idleTimeout: flags["idle-timeout"] * 1000 };
    if (flags.dir === undefined) {
      console.log("no --dir: each file is checked, then discarded; nothing is written");
      return await serve(flags.host, flags.port, new DiscardStore(), options);
    }
    const dir = flags.dir.replace(/\/+$/, "") || "/";
    const info = await Deno.stat(dir).catch((error) => {
      throw new Error(`cannot use --dir ${dir}`, { cause: error });
    });
    if (!info.isDirectory) throw new Error(`--dir ${dir} is not a folder`);
    return await serve(flags.host, flags.port, new DirectoryStore(dir), options);
  }
  if (command === "send") {
    if (rest.length !== 1) throw new UsageError("send takes exactly one FILE");
    const path = rest[0];
    const name = flags.name ?? path.split(/[\/\\]/).pop()!;
    const problem = problemWithName(name);
    if (problem) throw new UsageError(`--name: ${problem}`);
    const source = await fileSource(path);
    const conn = await connect(flags.host, flags.port);
    try {
      const report = progressReporter(source.size, printRaw, Deno.stdout.isTerminal());
      const verdict = await sendFile(conn, name, source, {
        onProgress: report,
        timeout: flags["idle-timeout"] * 1000,
      });
      if (!verdict.ok) throw new Error(`the receiver refused "${name}": ${verdict.error}`);
      if (source.size === 0) report(0);
      console.log(`sent "${name}" (${source.size} bytes); the receiver checked it and kept it`);
    } finally {
      conn.close();
    }
    return;
  }
  throw new UsageError(`unknown command "${command}"; expected serve or send`);
}

function printRaw(text: string): void {
  Deno.stdout.writeSync(encoder.encode(text));
}

async function connect(hostname: string, port: number): Promise<Deno.TcpConn> {
  try {
    return await Deno.connect({ hostname, port });
  } catch (error) {
    throw new Error(`cannot connect to tcp://${hostname}:${port}`, { cause: error });
  }
}

async function serve(hostname: string, port: number, store: FileStore, options: ReceiveOptions) {
  const listener = Deno.listen({ hostname, port });
  console.log(listeningBanner("tcp", listener.addr));
  const open = new Set<Deno.Conn>();
  shutdownSignal().addEventListener("abort", () => {
    listener.close();
    for (const conn of open) conn.close();
  });
  const receiving: Promise<void>[] = [];
  // A closed listener is our shutdown; a failed accept() (out of file
  // descriptors, say) is logged and tried again, as in tcp_echo.ts.
  const onError = (error: Error) =>
    console.log(`accept() failed (${error.message}); trying again in 100 ms`);
  for await (const conn of acceptConnections(listener, { onError })) {
    const peer = `${conn.remoteAddr.hostname}:${conn.remoteAddr.port}`;
    open.add(conn);
    receiving.push(
      receiveFile(conn, store, options)
        .then((outcome) => console.log(`${peer}: ${outcome}`))
        .finally(() => open.delete(conn)),
    );
  }
  await Promise.all(receiving);
}

// The demo: a receiver in memory, and four senders. One sends 8 MiB properly;
// one proposes a name that climbs out of the folder; one announces the wrong
// hash (as a corrupted copy would); one hangs up halfway. Only the first
// file is kept.
async function demo(): Promise<void> {
  const store = new MemoryStore();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  console.log(`receiver: ${listeningBanner("tcp", listener.addr)}`);
  const receiving: Promise<void>[] = [];
  const server = (async () => {
    for await (const conn of listener) {
      receiving.push(
        receiveFile(conn, store).then((outcome) => console.log(`receiver: ${outcome}`)),
      );
    }
  })().catch(() => {});
  const port = listener.addr.port;
  const data = new Uint8Array(8 * 1024 * 1024).map((_, i) => (i * 31) % 256);

  console.log('\nsender 1: "report.bin", 8 MiB');
  let conn = await connect("127.0.0.1", port);
  const report = progressReporter(data.length, (text) => printRaw(`  ${text}`), false);
  console.log(
    `  verdict: ${
      JSON.stringify(await sendFile(conn, "report.bin", memorySource(data), { onProgress: report }))
    }`,
  );
  conn.close();

  console.log('\nsender 2: "../../etc/passwd"');
  conn = await connect("127.0.0.1", port);
  console.log(
    `  verdict: ${
      JSON.stringify(await sendFile(conn, "../../etc/passwd", memorySource(data.subarray(0, 100))))
    }`,
  );
  conn.close();

  console.log('\nsender 3: "copy.bin", 8 MiB, announcing the hash of other bytes');
  conn = await connect("127.0.0.1", port);
  const wrong = await hashSource(memorySource(encoder.encode("something else")));
  console.log(
    `  verdict: ${
      JSON.stringify(await sendFile(conn, "copy.bin", memorySource(data), { sha256: wrong }))
    }`,
  );
  conn.close();

  console.log('\nsender 4: "half.bin", announces 8 MiB, hangs up after 1 MiB');
  conn = await connect("127.0.0.1", port);
  const header = {
    name: "half.bin",
    size: data.length,
    sha256: await hashSource(memorySource(data)),
  };
  await writeAll(conn, encodeFrame(encoder.encode(JSON.stringify(header))));
  await readFrame(conn); // the go-ahead
  await writeAll(conn, data.subarray(0, 1024 * 1024));
  conn.close();
  console.log("  (hung up)");

  listener.close();
  await server;
  await Promise.all(receiving);
  console.log(`\nfiles the receiver kept: ${JSON.stringify([...store.files.keys()])}`);
}

if (import.meta.main) runMain(USAGE, main);
