#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title FTP, the server: two channels, passive and active data, a root kept shut
 * @difficulty advanced
 * @tags cli, network, tcp, ftp, tls, files
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc959} RFC 959: File Transfer Protocol (FTP)
 * @resource {https://www.rfc-editor.org/rfc/rfc2428} RFC 2428: FTP Extensions for IPv6 and NATs (EPSV, EPRT)
 * @resource {https://www.rfc-editor.org/rfc/rfc3659} RFC 3659: Extensions to FTP (SIZE, MDTM, REST, MLST, MLSD)
 * @resource {https://www.rfc-editor.org/rfc/rfc2389} RFC 2389: Feature negotiation mechanism for FTP (FEAT, OPTS)
 * @resource {https://www.rfc-editor.org/rfc/rfc2640} RFC 2640: Internationalization of FTP (UTF-8 paths)
 * @resource {https://www.rfc-editor.org/rfc/rfc2228} RFC 2228: FTP Security Extensions (AUTH, PBSZ, PROT)
 * @resource {https://www.rfc-editor.org/rfc/rfc4217} RFC 4217: Securing FTP with TLS
 * @resource {https://www.rfc-editor.org/rfc/rfc2577} RFC 2577: FTP Security Considerations
 *
 * An FTP server from the bytes up. FTP talks on two channels: a control
 * connection that carries text commands and numbered replies, and a new data
 * connection for every listing and file, opened either by the client to a
 * port the server names (passive: PASV, EPSV) or by the server back to the
 * client (active: PORT, EPRT). Files live in memory by default, or in one real
 * folder with `--root`; no request reaches outside it (no `..` above the root,
 * no symlink out, no control characters). Anonymous users may only read;
 * `--user name:password` may write, and every upload goes to a temporary file
 * renamed into place only when it is whole. `--cert`/`--key` add explicit FTPS
 * (AUTH TLS). The demo replays two sessions on loopback and prints the
 * conversation on the wire. Taught in notebooks/21_ftp_server.ipynb.
 */

import tls from "node:tls";
import { Duplex } from "node:stream";
import { acceptConnections } from "../lib/accept_connections.ts";
import { BufferedReader } from "../lib/buffered_reader.ts";
import type { Reader } from "../lib/read_exactly.ts";
import { FrameTooLargeError } from "../lib/frame_too_large_error.ts";
import { UnexpectedEofError } from "../lib/unexpected_eof_error.ts";
import { writeAll } from "../lib/write_all.ts";
import { withTimeout } from "../lib/with_timeout.ts";
import { parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { formatAddress } from "../lib/format_address.ts";

const USAGE = `
ftp_server.ts: an FTP server (RFC 959), passive and active, with FTPS (RFC 4217)

usage:
  ftp_server.ts                  demo: two sessions on loopback, the conversation on the wire
  ftp_server.ts serve [flags]    serve files until Ctrl-C

flags:
  --host HOST              address to listen on (default 127.0.0.1)
  --port PORT              control port (default 2121; 0 picks any free port)
  --root DIR               serve this folder (default: a few sample files in memory)
  --user NAME:PASSWORD     a user who may write (anonymous users may only read)
  --no-anonymous           refuse anonymous logins
  --cert FILE --key FILE   PEM certificate and key: offer explicit FTPS (AUTH TLS)
  --idle-timeout SECS      close a control connection silent this long, or one whose
                           replies go unread this long (default 300)
  --data-timeout SECS      give up on a data connection idle this long (default 60)
  --max-connections N      refuse clients beyond this many (default 100)
  --max-line BYTES         the longest command line accepted (default 4096)
  --quiet                  do not log sessions and commands
  -h, --help               show this help

permissions:
  demo, and serve in memory on 127.0.0.1:  --allow-net=127.0.0.1
  --root DIR:               add --allow-read=DIR --allow-write=DIR (and nothing wider;
                            Deno's rename needs read as well as write access)
  --cert FILE --key FILE:   add FILE,KEY to --allow-read (--allow-read=DIR,FILE,KEY)
  another --host:           --allow-net (the passive data ports and active-mode
                            connections use the addresses of each client)
`;

const DEFAULT_PORT = 2121;
const CHUNK = 1024 * 1024;
// A command line longer than --max-line gets 500 and the session goes on; one
// past this many bytes is a flood, not a command, and the connection is closed.
const HARD_LINE_CAP = 64 * 1024;
// How long an upload whose data connection ended waits to see whether the
// control connection ended too (the client died) before it keeps the file.
// A process that dies has all its sockets closed by the kernel in one go, so
// the two ends arrive close together, though not always in order. Every
// upload pays this wait (10 ms cost a 100 MiB upload 15% of its speed). With
// both cores busy, killing curl mid-upload: 2 ms missed the control
// connection's end 3 times in 36 kills, 5 ms never in 60.
const COMMIT_GRACE_MS = 5;
// Uploads reach the disk in writes of at most this many bytes. Measured here
// (ext4, Linux 6.18): 100 MiB written in 1 MiB writes sometimes took 150 ms
// instead of 20, for runs at a time; in 256 KiB writes, never.
const DISK_WRITE = 256 * 1024;
const MAX_LOGIN_FAILURES = 3;
const ANONYMOUS_NAMES = ["anonymous", "ftp"];
const TEMP_PREFIX = ".wirebook-upload-";
const encoder = new TextEncoder();
const decoder = new TextDecoder();
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// Whether `promise` settles within `ms` (its timer is cleared either way).
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<false>((resolve) => timer = setTimeout(() => resolve(false), ms));
  try {
    return await Promise.race([promise.then(() => true, () => true), late]);
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------
// Replies that are errors
// ---------------------------------------------------------------------------

/**
 * An FTP reply that refuses a command: its three-digit code and its text.
 * Command handlers throw it; the session sends it and carries on. The first
 * digit says what kind of answer it is (RFC 959 §4.2): 4 a transient failure
 * (try again), 5 a permanent one; the second says about what (0 syntax,
 * 2 connections, 3 login, 5 the file system).
 */
export class FtpError extends Error {
  /** The reply code, 400-599. */
  readonly code: number;
  /** @param code The reply code. @param message The reply's text. */
  constructor(code: number, message: string) {
    super(message);
    this.name = "FtpError";
    this.code = code;
  }
}

// ---------------------------------------------------------------------------
// Paths: every argument resolved against the session's folder, inside the root
// ---------------------------------------------------------------------------

/**
 * Resolve a path argument the way a chrooted server sees it: relative to `cwd`
 * (or to the root, if it starts with `/`), `.` dropped, `..` going up one
 * level. The result is an absolute path of the server's own tree (`/pub/a.txt`),
 * never a path of the machine. Refused with an {@linkcode FtpError} of `code`:
 * a `..` that would climb above the root, a backslash (a separator elsewhere),
 * any control character (NUL, CR, LF: they end strings and lines), and
 * overlong names. Nothing is decoded: `%2e%2e` is a file name with a percent
 * sign in it, as FTP has no URL encoding.
 *
 * @param cwd The session's current folder (already resolved).
 * @param argument The path the client sent.
 * @param code The reply code for a refused path: 550, or 553 for a name to create.
 * @returns The resolved path.
 * @throws {FtpError} If the path is refused.
 */
export function resolvePath(cwd: string, argument: string, code = 550): string {
  if (argument === "") throw new FtpError(501, "A path is required");
  if (hasControlCharacter(argument)) {
    throw new FtpError(501, "Control characters (NUL, CR, LF, ...) are refused in paths");
  }
  if (argument.includes("\\")) throw new FtpError(code, "Backslashes are refused in paths");
  if (encoder.encode(argument).length > 4096) throw new FtpError(code, "Path too long");
  const parts = argument.startsWith("/") ? [] : cwd.split("/").filter(Boolean);
  for (const part of argument.split("/")) {
    if (part === "" || part === ".") continue;
    if (part === "..") {
      if (parts.length === 0) throw new FtpError(code, "Path climbs above the root; refused");
      parts.pop();
    } else {
      if (encoder.encode(part).length > 255) throw new FtpError(code, "File name too long");
      parts.push(part);
    }
  }
  return "/" + parts.join("/");
}

function parentOf(path: string): string {
  return path.slice(0, path.lastIndexOf("/")) || "/";
}

function nameOf(path: string): string {
  return path === "/" ? "/" : path.slice(path.lastIndexOf("/") + 1);
}

// ---------------------------------------------------------------------------
// The file systems: where the files live
// ---------------------------------------------------------------------------

/** One file or folder, as listings show it. */
export interface FtpEntry {
  /** Its name (the last part of its path; `/` for the root). */
  name: string;
  type: "file" | "dir";
  /** Bytes (0 for a folder). */
  size: number;
  /** When it last changed. */
  modified: Date;
  /** Unix permission bits for `LIST` (`0o644`); a default is shown without. */
  mode?: number;
}

/** An open file being read, from some offset on. */
export interface FtpReadable {
  /** Read up to `buffer.length` bytes; `null` at the end. */
  read(buffer: Uint8Array): Promise<number | null>;
  close(): void;
}

/**
 * An upload in progress. Nothing is visible under the file's name until
 * `commit()`; `abort()` throws everything away, leaving any old file intact.
 */
export interface FtpUpload {
  /** Add bytes (the caller may reuse `chunk` once this resolves). */
  write(chunk: Uint8Array): Promise<void>;
  /** The upload is whole: put it in place (atomically, for a real folder). */
  commit(): Promise<void>;
  /** Discard it. */
  abort(): Promise<void>;
}

/** Options for {@linkcode FtpFileSystem.write}. */
export interface FtpWriteOptions {
  /**
   * How many bytes of the current file to keep before the uploaded ones: 0
   * replaces it (STOR), `Infinity` appends (APPE), `n` resumes an upload at
   * byte `n` (REST n, then STOR). More than the file holds is a `RangeError`.
   *
   * @default {0}
   */
  keep?: number;
}

/**
 * What the server needs from a file store. Paths are already resolved and
 * confined by {@linkcode resolvePath} (`/`, `/pub/a.txt`); an implementation
 * must still make sure they cannot reach outside its own root (a symlink can).
 * Failures are Deno's error classes (`Deno.errors.NotFound`, `AlreadyExists`,
 * `NotADirectory`, `IsADirectory`, `PermissionDenied`), which the server turns
 * into replies without echoing their messages (they may name real paths).
 */
export interface FtpFileSystem {
  /** The entry at `path`. */
  stat(path: string): Promise<FtpEntry>;
  /** The entries of the folder at `path`, sorted by name. */
  list(path: string): Promise<FtpEntry[]>;
  /** Open the file at `path` for reading from byte `offset`. */
  read(path: string, offset?: number): Promise<FtpReadable>;
  /** Start an upload to `path` (its folder must exist). */
  write(path: string, options?: FtpWriteOptions): Promise<FtpUpload>;
  /** Delete the file at `path`. */
  delete(path: string): Promise<void>;
  /** Create the folder `path` (its parent must exist). */
  mkdir(path: string): Promise<void>;
  /** Remove the empty folder `path`. */
  rmdir(path: string): Promise<void>;
  /** Rename or move `from` to `to`, replacing a file there. */
  rename(from: string, to: string): Promise<void>;
}

interface MemoryNode {
  type: "file" | "dir";
  data: Uint8Array;
  modified: Date;
}

/**
 * Files in memory: what the demo and the default `serve` use, so they need no
 * file permission at all. Keys are paths (`"readme.txt"`, `"pub/a.bin"`);
 * their folders are made as needed. A file's bytes are never changed in
 * place, only replaced, so a download in progress keeps reading the version
 * it started with.
 */
export class MemoryFileSystem implements FtpFileSystem {
  #nodes = new Map<string, MemoryNode>([["/", dirNode()]]);

  /** @param files Initial files: path -> bytes or text (UTF-8). */
  constructor(files: Record<string, Uint8Array | string> = {}) {
    for (const [key, content] of Object.entries(files)) {
      const path = resolvePath("/", key);
      const parts = path.split("/").filter(Boolean);
      for (let i = 1; i < parts.length; i++) {
        const dir = "/" + parts.slice(0, i).join("/");
        if (!this.#nodes.has(dir)) this.#nodes.set(dir, dirNode());
      }
      const data = typeof content === "string" ? encoder.encode(content) : content.slice();
      this.#nodes.set(path, { type: "file", data, modified: new Date() });
    }
  }

  #get(path: string): MemoryNode {
    const node = this.#nodes.get(path);
    if (!node) throw new Deno.errors.NotFound(`${path}: no such file or folder`);
    return node;
  }

  #folder(path: string): MemoryNode {
    const node = this.#get(path);
    if (node.type !== "dir") throw new Deno.errors.NotADirectory(`${path}: not a folder`);
    return node;
  }

  #entry(path: string, node: MemoryNode): FtpEntry {
    return {
      name: nameOf(path),
      type: node.type,
      size: node.type === "file" ? node.data.length : 0,
      modified: node.modified,
      mode: node.type === "file" ? 0o644 : 0o755,
    };
  }

  stat(path: string): Promise<FtpEntry> {
    return Promise.resolve().then(() => this.#entry(path, this.#get(path)));
  }

  list(path: string): Promise<FtpEntry[]> {
    return Promise.resolve().then(() => {
      this.#folder(path);
      const entries: FtpEntry[] = [];
      for (const [child, node] of this.#nodes) {
        if (child !== "/" && parentOf(child) === path) entries.push(this.#entry(child, node));
      }
      return entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
    });
  }

  read(path: string, offset = 0): Promise<FtpReadable> {
    return Promise.resolve().then(() => {
      const node = this.#get(path);
      if (node.type !== "file") throw new Deno.errors.IsADirectory(`${path}: a folder`);
      const data = node.data; // this version, whatever replaces it meanwhile
      let position = Math.min(offset, data.length);
      return {
        read(buffer: Uint8Array) {
          if (position >= data.length) return Promise.resolve(null);
          const n = Math.min(buffer.length, data.length - position);
          buffer.set(data.subarray(position, position + n));
          position += n;
          return Promise.resolve(n);
        },
        close() {},
      };
    });
  }

  write(path: string, options: FtpWriteOptions = {}): Promise<FtpUpload> {
    const { keep = 0 } = options;
    return Promise.resolve().then(() => {
      this.#folder(parentOf(path));
      const old = this.#nodes.get(path);
      if (old?.type === "dir") throw new Deno.errors.IsADirectory(`${path}: a folder`);
      const oldData = old?.data ?? new Uint8Array(0);
      if (keep !== Infinity && keep > oldData.length) {
        throw new RangeError(`cannot keep ${keep} bytes of a ${oldData.length}-byte file`);
      }
      const parts: Uint8Array[] = [oldData.subarray(0, Math.min(keep, oldData.length))];
      return {
        write: (chunk: Uint8Array) => {
          parts.push(chunk.slice());
          return Promise.resolve();
        },
        commit: () =>
          Promise.resolve().then(() => {
            this.#folder(parentOf(path)); // still there?
            // A folder made under that name meanwhile stays (with all in it).
            if (this.#nodes.get(path)?.type === "dir") {
              throw new Deno.errors.IsADirectory(`${path}: a folder`);
            }
            const data = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
            let offset = 0;
            for (const part of parts) {
              data.set(part, offset);
              offset += part.length;
            }
            this.#nodes.set(path, { type: "file", data, modified: new Date() });
          }),
        abort: () => {
          parts.length = 0;
          return Promise.resolve();
        },
      };
    });
  }

  delete(path: string): Promise<void> {
    return Promise.resolve().then(() => {
      if (this.#get(path).type !== "file") throw new Deno.errors.IsADirectory(`${path}: a folder`);
      this.#nodes.delete(path);
    });
  }

  mkdir(path: string): Promise<void> {
    return Promise.resolve().then(() => {
      this.#folder(parentOf(path));
      if (this.#nodes.has(path)) throw new Deno.errors.AlreadyExists(`${path} exists`);
      this.#nodes.set(path, dirNode());
    });
  }

  rmdir(path: string): Promise<void> {
    return Promise.resolve().then(() => {
      this.#folder(path);
      if (path === "/") throw new Deno.errors.PermissionDenied("the root stays");
      for (const child of this.#nodes.keys()) {
        if (child !== "/" && parentOf(child) === path) throw new DirectoryNotEmpty(path);
      }
      this.#nodes.delete(path);
    });
  }

  rename(from: string, to: string): Promise<void> {
    return Promise.resolve().then(() => {
      const node = this.#get(from);
      this.#folder(parentOf(to));
      if (from === to) return;
      if (from === "/" || to.startsWith(from + "/")) {
        throw new Deno.errors.PermissionDenied(`cannot move ${from} into itself`);
      }
      const target = this.#nodes.get(to);
      if (target && (target.type === "dir" || node.type === "dir")) {
        throw new Deno.errors.AlreadyExists(`${to} exists`);
      }
      // A folder moves with everything under it.
      for (const [path, child] of [...this.#nodes]) {
        if (path === from || path.startsWith(from + "/")) {
          this.#nodes.delete(path);
          this.#nodes.set(to + path.slice(from.length), child);
        }
      }
    });
  }
}

function dirNode(): MemoryNode {
  return { type: "dir", data: new Uint8Array(0), modified: new Date() };
}

/** Deno has no class for ENOTEMPTY; the memory store throws this one. */
class DirectoryNotEmpty extends Error {
  code = "ENOTEMPTY";
  constructor(path: string) {
    super(`${path}: folder not empty`);
  }
}

/**
 * Files in one real folder. Each request's path is joined to the root, and
 * before anything is opened, the real path (symlinks followed, by
 * `Deno.realPath`) must still lie inside the root's own real path: a symlink
 * in the folder that points out is treated as missing. This check is the
 * server's, not Deno's: `--allow-read=DIR` lets a read follow a symlink in DIR
 * to a file outside it. Uploads go to a hidden temporary file in the target's
 * folder, renamed over the target by `commit()`; rename within one folder is
 * atomic, so a reader sees the old file or the new one, never half of one.
 *
 * A local user who can swap a folder for a symlink between the check and the
 * open could still race it (Deno has no `O_NOFOLLOW`/`openat`); the root is
 * meant to be a folder only this server and its owner write to.
 */
export class DirectoryFileSystem implements FtpFileSystem {
  #root: string;
  #realRoot?: Promise<string>;

  /** @param root The folder to serve (it must exist). */
  constructor(root: string) {
    this.#root = root.replace(/\/+$/, "") || "/";
  }

  #full(path: string): string {
    return path === "/" ? this.#root : `${this.#root === "/" ? "" : this.#root}${path}`;
  }

  // The machine path for `path`, once its real location is known to be inside
  // the root. With `mayBeMissing`, a path that does not exist yet (an upload,
  // a new folder) is checked through its parent instead.
  async #confined(path: string, mayBeMissing = false): Promise<string> {
    if (nameOf(path).startsWith(TEMP_PREFIX)) throw new Deno.errors.NotFound(path);
    const full = this.#full(path);
    this.#realRoot ??= Deno.realPath(this.#root);
    const root = await this.#realRoot;
    const inside = (real: string) =>
      real === root || real.startsWith(root.endsWith("/") ? root : root + "/");
    let real: string;
    try {
      real = await Deno.realPath(full);
    } catch (error) {
      if (!(mayBeMissing && error instanceof Deno.errors.NotFound)) throw error;
      // Not there yet: its folder must be inside.
      real = await Deno.realPath(this.#full(parentOf(path)));
    }
    if (!inside(real)) throw outsideRoot(path);
    return full;
  }

  async #entry(name: string, full: string): Promise<FtpEntry> {
    const info = await Deno.stat(full);
    return {
      name,
      type: info.isDirectory ? "dir" : "file",
      size: info.isDirectory ? 0 : info.size,
      modified: info.mtime ?? new Date(0),
      mode: info.mode === null ? undefined : info.mode & 0o777,
    };
  }

  async stat(path: string): Promise<FtpEntry> {
    return await this.#entry(nameOf(path), await this.#confined(path));
  }

  async list(path: string): Promise<FtpEntry[]> {
    const full = await this.#confined(path);
    const entries: FtpEntry[] = [];
    for await (const item of Deno.readDir(full)) {
      const child = `${path === "/" ? "" : path}/${item.name}`;
      // Hide what must not be reached: symlinks out, broken ones, uploads in progress.
      try {
        entries.push(await this.#entry(item.name, await this.#confined(child)));
      } catch { /* skipped */ }
    }
    return entries.sort((a, b) => a.name < b.name ? -1 : a.name > b.name ? 1 : 0);
  }

  async read(path: string, offset = 0): Promise<FtpReadable> {
    const full = await this.#confined(path);
    const file = await Deno.open(full, { read: true });
    try {
      if ((await file.stat()).isDirectory) throw new Deno.errors.IsADirectory(path);
      if (offset > 0) await file.seek(offset, Deno.SeekMode.Start);
    } catch (error) {
      file.close();
      throw error;
    }
    return { read: (buffer) => file.read(buffer), close: () => file.close() };
  }

  async write(path: string, options: FtpWriteOptions = {}): Promise<FtpUpload> {
    const { keep = 0 } = options;
    const full = await this.#confined(path, true);
    const old = await Deno.stat(full).catch(() => undefined);
    if (old?.isDirectory) throw new Deno.errors.IsADirectory(path);
    const oldSize = old?.size ?? 0;
    if (keep !== Infinity && keep > oldSize) {
      throw new RangeError(`cannot keep ${keep} bytes of a ${oldSize}-byte file`);
    }
    // The temporary file sits beside the target, so the rename stays in one
    // folder (and one file system), where it is atomic.
    const random = crypto.getRandomValues(new Uint8Array(6));
    const temp = `${parentOf(full)}/${TEMP_PREFIX}${[...random].map(hex2).join("")}`;
    const file = await Deno.open(temp, { write: true, createNew: true, mode: 0o644 });
    let closed = false;
    const close = () => {
      if (!closed) file.close();
      closed = true;
    };
    try {
      const kept = Math.min(keep, oldSize);
      if (kept > 0) await copyPrefix(full, file, kept);
    } catch (error) {
      close();
      await Deno.remove(temp).catch(() => {});
      throw error;
    }
    return {
      write: async (chunk) => {
        for (let offset = 0; offset < chunk.length; offset += DISK_WRITE) {
          await writeAll(file, chunk.subarray(offset, offset + DISK_WRITE));
        }
      },
      commit: async () => {
        close();
        try {
          await Deno.rename(temp, full);
        } catch (error) {
          await Deno.remove(temp).catch(() => {});
          throw error;
        }
      },
      abort: async () => {
        close();
        await Deno.remove(temp).catch(() => {});
      },
    };
  }

  async delete(path: string): Promise<void> {
    const full = await this.#confined(path);
    if ((await Deno.lstat(full)).isDirectory) throw new Deno.errors.IsADirectory(path);
    await Deno.remove(full);
  }

  async mkdir(path: string): Promise<void> {
    await Deno.mkdir(await this.#confined(path, true));
  }

  async rmdir(path: string): Promise<void> {
    if (path === "/") throw new Deno.errors.PermissionDenied("the root stays");
    const full = await this.#confined(path);
    if (!(await Deno.lstat(full)).isDirectory) throw new Deno.errors.NotADirectory(path);
    await Deno.remove(full);
  }

  async rename(from: string, to: string): Promise<void> {
    if (from === "/") throw new Deno.errors.PermissionDenied("the root stays");
    if (to.startsWith(from + "/")) {
      throw new Deno.errors.PermissionDenied(`cannot move ${from} into itself`);
    }
    const source = await this.#confined(from);
    await Deno.rename(source, await this.#confined(to, true));
  }
}

function outsideRoot(path: string): Error {
  return new Deno.errors.NotFound(`${path} leads outside the root`);
}

function hex2(byte: number): string {
  return byte.toString(16).padStart(2, "0");
}

async function copyPrefix(path: string, into: Deno.FsFile, count: number): Promise<void> {
  const source = await Deno.open(path, { read: true });
  try {
    const buffer = new Uint8Array(Math.min(CHUNK, count));
    let copied = 0;
    while (copied < count) {
      const n = await source.read(buffer.subarray(0, Math.min(buffer.length, count - copied)));
      if (n === null) break;
      await writeAll(into, buffer.subarray(0, n));
      copied += n;
    }
  } finally {
    source.close();
  }
}

/** The files the demo and a plain `serve` start with. */
export function sampleFiles(): Record<string, Uint8Array | string> {
  return {
    "readme.txt": "Welcome to wirebook's FTP server.\nFiles here live in memory.\n",
    "pub/hello.txt": "Hello over a data connection!\n",
    "pub/lines.txt": "one\ntwo\nthree\n",
    "pub/bytes.bin": new Uint8Array(4096).map((_, i) => (i * 7) % 256),
  };
}

// ---------------------------------------------------------------------------
// Listings: LIST's ls -l lines, MLSD's facts, MDTM's timestamps
// ---------------------------------------------------------------------------

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/**
 * One line of `LIST` output, in the `ls -l` form every client parses (it has
 * no standard; RFC 959 says only "a list"): type and permissions, links,
 * owner, group, size, date, name. Dates are UTC, with the time for files from
 * the last six months and the year for older ones, as `ls` does.
 */
export function formatListLine(entry: FtpEntry, now = new Date()): string {
  const mode = entry.mode ?? (entry.type === "dir" ? 0o755 : 0o644);
  const bits = [...mode.toString(2).padStart(9, "0")].map((bit, i) =>
    bit === "1" ? "rwx"[i % 3] : "-"
  )
    .join("");
  const date = entry.modified;
  const recent = Math.abs(now.getTime() - date.getTime()) < 182 * 24 * 3600 * 1000;
  const pad = (n: number) => String(n).padStart(2, "0");
  const when = `${MONTHS[date.getUTCMonth()]} ${pad(date.getUTCDate())} ` +
    (recent
      ? `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`
      : ` ${date.getUTCFullYear()}`);
  const kind = entry.type === "dir" ? "d" : "-";
  return `${kind}${bits} 1 ftp ftp ${String(entry.size).padStart(12)} ${when} ${entry.name}`;
}

/** `YYYYMMDDHHMMSS` in UTC: MDTM's and MLSD's `modify` form (RFC 3659 §2.3). */
export function formatTimeVal(date: Date): string {
  return date.toISOString().replace(/[-:T]/g, "").slice(0, 14);
}

/** The MLST facts this server knows, in FEAT's order. */
export const MLST_FACTS = ["type", "size", "modify", "perm"] as const;

/**
 * One entry as MLSD/MLST facts (RFC 3659 §7): `fact=value;` for each fact
 * asked for, a space, the name. `perm` says what this user may do: r
 * retrieve, a append, w store, d delete, f rename; for a folder e enter,
 * l list, c create, m make folders, p purge.
 */
export function formatFacts(
  entry: FtpEntry,
  name: string,
  facts: ReadonlySet<string>,
  writable: boolean,
): string {
  const values: Record<string, string> = {
    type: entry.type,
    size: String(entry.size),
    modify: formatTimeVal(entry.modified),
    perm: entry.type === "dir" ? (writable ? "elcdmpf" : "el") : (writable ? "radwf" : "r"),
  };
  const shown = MLST_FACTS.filter((fact) =>
    facts.has(fact) && !(fact === "size" && entry.type === "dir")
  );
  return `${shown.map((fact) => `${fact}=${values[fact]};`).join("")} ${name}`;
}

// ---------------------------------------------------------------------------
// TYPE A: text with CRLF line ends on the wire
// ---------------------------------------------------------------------------

/**
 * TYPE A (ASCII) sends text with CRLF line ends whatever the server stores
 * (RFC 959 §3.1.1.1): a bare LF goes out as CRLF. Chunks may split a CRLF, so
 * the state carries whether the last byte was a CR.
 */
export function toNetworkAscii(chunk: Uint8Array, state: { lastWasCr: boolean }): Uint8Array {
  let previous = state.lastWasCr ? 0x0d : 0;
  let bareLfs = 0;
  for (const byte of chunk) {
    if (byte === 0x0a && previous !== 0x0d) bareLfs++;
    previous = byte;
  }
  const wasCr = state.lastWasCr;
  if (chunk.length > 0) state.lastWasCr = chunk[chunk.length - 1] === 0x0d;
  if (bareLfs === 0) return chunk;
  const out = new Uint8Array(chunk.length + bareLfs);
  let j = 0;
  previous = wasCr ? 0x0d : 0;
  for (const byte of chunk) {
    if (byte === 0x0a && previous !== 0x0d) out[j++] = 0x0d;
    out[j++] = byte;
    previous = byte;
  }
  return out;
}

/**
 * Uploads in TYPE A: CRLF becomes LF. A CR at the end of a chunk waits to see
 * whether an LF follows; `flush()` releases it at the end.
 */
export class FromNetworkAscii {
  #pendingCr = false;
  /** Convert one chunk. */
  push(chunk: Uint8Array): Uint8Array {
    const out = new Uint8Array(chunk.length + 1);
    let j = 0;
    for (const byte of chunk) {
      if (this.#pendingCr && byte !== 0x0a) out[j++] = 0x0d;
      this.#pendingCr = byte === 0x0d;
      if (!this.#pendingCr) out[j++] = byte;
    }
    return out.subarray(0, j);
  }
  /** What is left at the end of the upload. */
  flush(): Uint8Array {
    const rest = this.#pendingCr ? Uint8Array.of(0x0d) : new Uint8Array(0);
    this.#pendingCr = false;
    return rest;
  }
}

// ---------------------------------------------------------------------------
// TLS on a connection that is already open (AUTH TLS, RFC 4217)
// ---------------------------------------------------------------------------

/** What the server reads and writes: a TCP connection, or TLS over one. */
export interface Channel {
  read(buffer: Uint8Array): Promise<number | null>;
  write(data: Uint8Array): Promise<number>;
  /** End politely: TLS's close_notify, then the TCP close. */
  finish(): Promise<void>;
  /** End at once. */
  close(): void;
}

function plainChannel(conn: Deno.Conn): Channel {
  return {
    read: (buffer) => conn.read(buffer),
    write: (data) => conn.write(data),
    finish: () => Promise.resolve(closeQuietly(conn)),
    close: () => closeQuietly(conn),
  };
}

function closeQuietly(handle: { close(): void } | undefined): void {
  try {
    handle?.close();
  } catch { /* already closed */ }
}

/**
 * Become the TLS *server* on a connection that is already open. FTPS needs
 * this twice: on the control connection after `AUTH TLS` (explicit FTPS:
 * plain text first, then a handshake on the same socket), and on every data
 * connection under `PROT P`, even one the server opened itself (active mode),
 * because the FTP client is always the TLS client (RFC 4217).
 *
 * Deno's own API has no server-side upgrade: `Deno.startTls` makes the
 * *client* end, and `Deno.listenTls` only accepts connections that are TLS
 * from their first byte (implicit FTPS, port 990). Node's `tls.TLSSocket`
 * with `isServer: true` wraps any duplex stream, and Deno implements it; so
 * the Deno connection is wrapped in a small `Duplex`, and `TLSSocket` runs
 * the handshake and the records over it.
 */
export function acceptTls(
  conn: Deno.Conn,
  context: tls.SecureContext,
  timeout: number,
): Promise<Channel> {
  // Decrypted bytes arrive as 'data' events and wait in `queue` for read().
  // Backpressure is applied below TLS, on the raw connection: while more than
  // HIGH_WATER bytes wait, the next raw read is held back (TCP's window then
  // slows the peer). Pausing the TLSSocket itself can stall Deno's version of
  // it for good once the peer has closed.
  const HIGH_WATER = 1024 * 1024;
  const queue: Uint8Array[] = [];
  let queued = 0;
  let heldRead: (() => void) | undefined;
  let ended = false;
  let failure: unknown;
  let wake = () => {};

  const buffer = new Uint8Array(64 * 1024);
  const duplex = new Duplex({
    read() {
      const pull = () =>
        conn.read(buffer).then(
          (n) => this.push(n === null ? null : buffer.slice(0, n)),
          (error) => this.destroy(error),
        );
      if (queued > HIGH_WATER) heldRead = pull;
      else pull();
    },
    write(chunk: Uint8Array, _encoding, callback) {
      writeAll(conn, chunk).then(() => callback(), callback);
    },
    final(callback) {
      conn.closeWrite().then(() => callback(), () => callback());
    },
  });
  const socket = new tls.TLSSocket(duplex, { isServer: true, secureContext: context });
  socket.on("data", (chunk: Uint8Array) => {
    queue.push(chunk);
    queued += chunk.length;
    wake();
  });
  socket.on("end", () => {
    ended = true;
    wake();
  });
  socket.on("error", (error: unknown) => {
    failure ??= error;
    ended = true;
    wake();
  });
  const closed = new Promise<void>((resolve) => socket.once("close", () => resolve()));
  const destroy = () => {
    socket.destroy();
    closeQuietly(conn);
  };
  const channel: Channel = {
    async read(into) {
      while (queue.length === 0 && !ended) await new Promise<void>((resolve) => wake = resolve);
      if (queue.length === 0) {
        if (failure) throw failure;
        return null;
      }
      const head = queue[0];
      const n = Math.min(head.length, into.length);
      into.set(head.subarray(0, n));
      if (n === head.length) queue.shift();
      else queue[0] = head.subarray(n);
      queued -= n;
      if (queued <= HIGH_WATER / 4 && heldRead) {
        const pull = heldRead;
        heldRead = undefined;
        pull();
      }
      return n;
    },
    write(data) {
      return new Promise((resolve, reject) => {
        if (socket.destroyed) return reject(new Deno.errors.BadResource("TLS connection closed"));
        socket.write(data, (error) => error ? reject(error) : resolve(data.length));
      });
    },
    async finish() {
      socket.end(); // close_notify, then FIN
      await settlesWithin(closed, 2000);
      destroy();
    },
    close: destroy,
  };
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      destroy();
      reject(new DOMException(`no TLS handshake within ${timeout} ms`, "TimeoutError"));
    }, timeout);
    socket.once("secure", () => {
      clearTimeout(timer);
      resolve(channel);
    });
    socket.once("error", (error: unknown) => {
      clearTimeout(timer);
      destroy();
      reject(error);
    });
    // A peer that hangs up mid-handshake, or our own shutdown, may end the
    // socket without an error event.
    socket.once("close", () => {
      clearTimeout(timer);
      reject(new Deno.errors.ConnectionAborted("the connection closed during the TLS handshake"));
    });
  });
}

// ---------------------------------------------------------------------------
// Data connections: PASV/EPSV (the client connects) and PORT/EPRT (we do)
// ---------------------------------------------------------------------------

/** A data connection announced but not yet open. */
interface PendingData {
  /** For STAT and the log: `passive 127.0.0.1:40123`. */
  describe: string;
  /** Open it: accept the client's connection, or connect to the client. */
  open(timeout: number): Promise<Deno.TcpConn>;
  /** Give it up. */
  close(): void;
}

/**
 * PORT's argument, `h1,h2,h3,h4,p1,p2`: an IPv4 address and a port as six
 * decimal bytes, the port being `p1 * 256 + p2` (RFC 959 §4.1.2).
 *
 * @throws {FtpError} 501 if it is not six numbers from 0 to 255.
 */
export function parsePortArgument(argument: string): { hostname: string; port: number } {
  const bytes = argument.trim().split(",").map((part) =>
    /^\d{1,3}$/.test(part.trim()) ? Number(part) : NaN
  );
  if (bytes.length !== 6 || bytes.some((byte) => !(byte >= 0 && byte <= 255))) {
    throw new FtpError(501, "PORT wants h1,h2,h3,h4,p1,p2 (six numbers from 0 to 255)");
  }
  return { hostname: bytes.slice(0, 4).join("."), port: bytes[4] * 256 + bytes[5] };
}

/**
 * EPRT's argument, `|1|132.235.1.2|6275|` or `|2|::1|6275|` (RFC 2428 §2):
 * a delimiter, the protocol (1 IPv4, 2 IPv6), the address, the port.
 *
 * @throws {FtpError} 522 for another protocol, 501 for anything malformed.
 */
export function parseEprtArgument(argument: string): { hostname: string; port: number } {
  const delimiter = argument[0];
  const parts = argument.split(delimiter ?? "|");
  if (!delimiter || !/^[\x21-\x7e]$/.test(delimiter) || parts.length !== 5 || parts[4] !== "") {
    throw new FtpError(501, "EPRT wants |protocol|address|port|");
  }
  const [, protocol, hostname, portText] = parts;
  if (protocol !== "1" && protocol !== "2") {
    throw new FtpError(522, "Network protocol not supported, use (1,2)");
  }
  const port = /^\d{1,5}$/.test(portText) ? Number(portText) : NaN;
  const valid = protocol === "1"
    ? /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.test(hostname) &&
      hostname.split(".").every((byte) => Number(byte) <= 255)
    : /^[0-9a-fA-F:.]+$/.test(hostname) && hostname.includes(":");
  if (!valid || !(port >= 1 && port <= 65535)) {
    throw new FtpError(501, "EPRT: not a valid address and port");
  }
  return { hostname, port };
}

// Passive: a listener on the control connection's own address, any free
// port. Only a connection from the control connection's peer is taken:
// anyone else who races to the port (to steal the file, RFC 2577 §8) is
// hung up on, and we keep waiting for the real client.
function passiveData(
  hostname: string,
  peer: string,
  log: (line: string) => void,
): { pending: PendingData; port: number } {
  const listener = Deno.listen({ hostname, port: 0 });
  const port = listener.addr.port;
  return {
    port,
    pending: {
      describe: `passive ${formatAddress(listener.addr)}`,
      async open(timeout) {
        const deadline = Date.now() + timeout;
        try {
          while (true) {
            const conn = await withTimeout(
              () => listener.accept(),
              Math.max(0, deadline - Date.now()),
            );
            if (conn.remoteAddr.hostname === peer) return conn;
            log(`refused a data connection from ${formatAddress(conn.remoteAddr)}: not ${peer}`);
            closeQuietly(conn);
          }
        } finally {
          closeQuietly(listener);
        }
      },
      close: () => closeQuietly(listener),
    },
  };
}

// Active: we connect to the address the client named, at transfer time.
function activeData(hostname: string, port: number): PendingData {
  return {
    describe: `active ${formatAddress({ transport: "tcp", hostname, port })}`,
    async open(timeout) {
      let timedOut = false;
      const connecting = Deno.connect({ hostname, port });
      try {
        return await withTimeout(() => connecting, timeout);
      } catch (error) {
        timedOut = true;
        throw error;
      } finally {
        if (timedOut) connecting.then(closeQuietly, () => {});
      }
    },
    close() {},
  };
}

// ---------------------------------------------------------------------------
// The server: options, the accept loop
// ---------------------------------------------------------------------------

/** Options for {@linkcode serveFtp}. */
export interface FtpServerOptions {
  /** Where the files are. @default {new MemoryFileSystem(sampleFiles())} */
  fs?: FtpFileSystem;
  /** Users who may write: name -> password. @default {{}} */
  users?: Record<string, string>;
  /** Let `anonymous` (or `ftp`) in, with any password, to read only. @default {true} */
  anonymous?: boolean;
  /**
   * Close a control connection with no command, or with a reply unread, for
   * this long, in ms.
   *
   * @default {300000}
   */
  idleTimeout?: number;
  /** Give up on a data connection that does not open or stalls this long, in ms. @default {60000} */
  dataTimeout?: number;
  /** Answer 421 to clients beyond this many at once. @default {100} */
  maxConnections?: number;
  /** The longest command line, in bytes; longer ones get 500. @default {4096} */
  maxLineLength?: number;
  /** A PEM certificate (chain) and key: offer AUTH TLS. @default {undefined} */
  tls?: { cert: string; key: string };
  /** Where session and command lines go. @default {console.log} */
  log?: (line: string) => void;
  /** Stop: close the listener and every session, then return. */
  signal?: AbortSignal;
}

interface ServerConfig {
  fs: FtpFileSystem;
  users: Record<string, string>;
  anonymous: boolean;
  idleTimeout: number;
  dataTimeout: number;
  maxLineLength: number;
  tls?: tls.SecureContext;
  log: (line: string) => void;
}

/**
 * Serve FTP on `listener` until it is closed or `signal` aborts (which also
 * closes every session). Each client gets its own session; clients beyond
 * `maxConnections` get `421` and are closed. Resolves once every session has
 * ended.
 *
 * @param listener A TCP listener (its address is where passive data ports open too).
 * @param options Files, users, limits, TLS, log.
 * @returns When the server has stopped.
 * @throws {Error} If the TLS certificate or key cannot be used.
 */
export async function serveFtp(
  listener: Deno.TcpListener,
  options: FtpServerOptions = {},
): Promise<void> {
  const {
    fs = new MemoryFileSystem(sampleFiles()),
    users = {},
    anonymous = true,
    idleTimeout = 300_000,
    dataTimeout = 60_000,
    maxConnections = 100,
    maxLineLength = 4096,
    log = console.log,
    signal,
  } = options;
  let context: tls.SecureContext | undefined;
  if (options.tls) {
    try {
      context = tls.createSecureContext({ cert: options.tls.cert, key: options.tls.key });
    } catch (error) {
      closeQuietly(listener);
      throw new Error("cannot use the TLS certificate and key", { cause: error });
    }
  }
  const config: ServerConfig = {
    fs,
    users,
    anonymous,
    idleTimeout,
    dataTimeout,
    maxLineLength,
    tls: context,
    log,
  };

  const sessions = new Map<FtpSession, Promise<void>>();
  const stop = () => {
    closeQuietly(listener);
    for (const session of sessions.keys()) session.close();
  };
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", stop, { once: true });
  // acceptConnections (lib) ends when stop() closes the listener, and
  // outlives a failed accept() (out of file descriptors, say), as every
  // server here does.
  const onError = (error: Error) => log(`accept() failed (${error.message}); trying again`);
  try {
    for await (const conn of acceptConnections(listener, { onError, signal })) {
      const peer = formatAddress(conn.remoteAddr);
      if (sessions.size >= maxConnections) {
        log(`${peer} refused: already ${sessions.size} sessions`);
        // A reply, not just a hang-up, so the client can say why.
        conn.write(encoder.encode(`421 Too many connections (${sessions.size}); try later\r\n`))
          .catch(() => {}).finally(() => closeQuietly(conn));
        continue;
      }
      const session = new FtpSession(conn, config);
      sessions.set(session, session.run().finally(() => sessions.delete(session)));
    }
  } finally {
    signal?.removeEventListener("abort", stop);
  }
  await Promise.all(sessions.values());
}

// ---------------------------------------------------------------------------
// One session: the control connection's conversation
// ---------------------------------------------------------------------------

interface Transfer {
  task: Promise<void>;
  abort(reason: unknown): void;
  bytes(): number;
}

const ABORTED_BY_CLIENT = "ABOR";
const CONTROL_CLOSED = "control connection closed";

// ABOR sent as urgent data. RFC 959 §4.1.3 has a client send ABOR after the
// Telnet "Synch" (IAC IP, then IAC DM as TCP urgent data), so that a server
// busy with a transfer notices it. Python's ftplib sends all of `ABOR\r\n`
// with MSG_OOB instead, and TCP's urgent pointer marks its last byte: Linux
// takes that byte, the LF, out of the normal stream. So `ABOR\r` arrives
// with no line end, and the client waits for the reply before it sends
// anything more. vsftpd and pyftpdlib answer it; so do we. This reader sits
// between the connection and the line reader, and ends a line that is
// `ABOR\r` (after any Telnet bytes, in any case) and the last byte read so
// far at once; an LF that does come right after it (late) is dropped.
function urgentAborEndsLine(source: Reader): Reader {
  const ABOR_CR = encoder.encode("abor\r");
  let matched = 0; // bytes of this line that match ABOR_CR; -1 once one does not
  let dropLf = false;
  let held: Uint8Array = new Uint8Array(0); // what did not fit in the last read
  return {
    async read(buffer) {
      while (held.length === 0) {
        const input = new Uint8Array(buffer.length);
        const n = await source.read(input);
        if (n === null) return null;
        const out = new Uint8Array(2 * n); // room for an LF after every byte
        let j = 0;
        for (const [i, byte] of input.subarray(0, n).entries()) {
          if (dropLf) {
            dropLf = false;
            if (byte === 0x0a) continue;
          }
          out[j++] = byte;
          if (byte === 0x0a) {
            matched = 0; // a new line starts
          } else if (matched >= 0 && !(matched === 0 && byte >= 0xf0)) { // Telnet bytes first
            const lower = byte >= 0x41 && byte <= 0x5a ? byte | 0x20 : byte;
            matched = lower === ABOR_CR[matched] ? matched + 1 : -1;
            // Only when nothing follows in this read: ftplib waits for the
            // reply before it sends more. `ABOR\rDELE x` in one go is the
            // bare-CR injection the line check refuses, and stays one line.
            if (matched === ABOR_CR.length && i === n - 1) {
              out[j++] = 0x0a; // the line end that went as urgent data
              matched = 0;
              dropLf = true;
            }
          }
        }
        held = out.subarray(0, j);
      }
      const count = Math.min(buffer.length, held.length);
      buffer.set(held.subarray(0, count));
      held = held.subarray(count);
      return count;
    },
  };
}

/**
 * One client's session. Commands are read and answered one at a time; a
 * transfer runs beside the loop, so that ABOR and STAT are answered while
 * it runs, and so that the end of the control connection is noticed at once
 * (an upload is then thrown away). Any other command waits for the transfer
 * to end, keeping replies in order.
 */
class FtpSession {
  #conn: Deno.TcpConn;
  #config: ServerConfig;
  #peer: string;
  #channel: Channel;
  #reader: BufferedReader;
  #writing: Promise<unknown> = Promise.resolve();
  #closed = false;
  #ending = false;
  #idle?: ReturnType<typeof setTimeout>;
  #controlEnded!: () => void;
  #controlEndedPromise = new Promise<void>((resolve) => this.#controlEnded = resolve);

  // What the session has been told so far.
  #cwd = "/";
  #user?: string; // logged in as
  #pendingUser?: string; // USER given, PASS awaited
  #writable = false;
  #failures = 0;
  #binary = false; // TYPE I; RFC 959's default is TYPE A
  #restart = 0;
  #renameFrom?: string;
  #epsvAll = false;
  #secure = false; // AUTH TLS done
  #pbsz = false;
  #protectData = false; // PROT P
  #facts = new Set<string>(MLST_FACTS);
  #pending?: PendingData;
  #transfer?: Transfer;
  #stats = { commands: 0, up: 0, down: 0 };

  constructor(conn: Deno.TcpConn, config: ServerConfig) {
    this.#conn = conn;
    this.#config = config;
    this.#peer = formatAddress(conn.remoteAddr);
    this.#channel = plainChannel(conn);
    this.#reader = new BufferedReader(urgentAborEndsLine(this.#channel));
  }

  #log(line: string): void {
    this.#config.log(`${this.#peer} ${line}`);
  }

  /** Hang up now (shutdown). */
  close(): void {
    this.#closed = true;
    this.#transfer?.abort(CONTROL_CLOSED);
    this.#pending?.close();
    this.#channel.close();
    closeQuietly(this.#conn);
  }

  // Send a reply. Writes are queued, so a reply from a transfer never
  // interleaves with one from a command. A client that does not read its
  // replies is idle too: once its receive buffer and our send buffer are
  // full, the write waits for it, and every reply queued behind that write
  // (the idle timeout's 421 among them) waits as well. So a write still
  // waiting after the idle timeout ends the session.
  #reply(code: number, text: string | string[]): Promise<void> {
    const wire = formatReply(code, typeof text === "string" ? [text] : text);
    const { idleTimeout } = this.#config;
    const write = this.#writing.then(() => {
      if (this.#closed) return;
      return withTimeout(() => writeAll(this.#channel, encoder.encode(wire)), idleTimeout);
    }).catch((error) => {
      this.#closed = true;
      if ((error as Error).name !== "TimeoutError") return;
      this.#log(`replies unread for ${idleTimeout / 1000} s; closing`);
      this.close();
    });
    this.#writing = write;
    return write;
  }

  // The idle timer runs while the session waits for a command; a transfer
  // keeps it from firing (the data timeout watches transfers).
  #armIdle(): void {
    clearTimeout(this.#idle);
    if (this.#closed || this.#ending) return;
    this.#idle = setTimeout(async () => {
      if (this.#transfer) return this.#armIdle();
      this.#log(`idle for ${this.#config.idleTimeout / 1000} s; closing`);
      // Say why, but close within a second whether or not the 421 went out:
      // it may be queued behind replies the client is not reading.
      const said = this.#reply(
        421,
        `Timeout: no command for ${this.#config.idleTimeout / 1000} s; closing`,
      );
      await settlesWithin(said, 1000);
      this.close();
    }, this.#config.idleTimeout);
  }

  async run(): Promise<void> {
    this.#log("connected");
    try {
      await this.#reply(220, "wirebook FTP server ready");
      this.#armIdle();
      while (!this.#closed) {
        const line = await this.#readLine();
        if (line === null) break;
        this.#armIdle();
        await this.#handle(line);
      }
    } catch (error) {
      if (!this.#closed) this.#log(`dropped: ${(error as Error).message}`);
    } finally {
      this.#ending = true;
      this.#controlEnded();
      clearTimeout(this.#idle);
      this.#transfer?.abort(CONTROL_CLOSED);
      await this.#transfer?.task;
      this.#pending?.close();
      await this.#writing;
      if (!this.#closed) await this.#channel.finish().catch(() => {});
      this.close();
      const { commands, up, down } = this.#stats;
      this.#log(`disconnected (${commands} commands, ${up} bytes up, ${down} bytes down)`);
    }
  }

  // The next command line, or null when the client has gone. A line over
  // --max-line is answered here and skipped; one over HARD_LINE_CAP closes.
  async #readLine(): Promise<Uint8Array | null> {
    while (true) {
      let line: Uint8Array | null;
      try {
        line = await this.#reader.readLine({
          maxLength: Math.max(HARD_LINE_CAP, this.#config.maxLineLength),
        });
      } catch (error) {
        if (error instanceof FrameTooLargeError) {
          this.#log(`a flood of over ${HARD_LINE_CAP} bytes without a line end; closing`);
          await this.#reply(500, `Command line over ${HARD_LINE_CAP} bytes; closing`);
          await this.#discardInput();
          return null;
        }
        if (error instanceof UnexpectedEofError || this.#closed) return null;
        throw error;
      }
      if (line === null || line.length <= this.#config.maxLineLength) return line;
      this.#log(`a command line of ${line.length} bytes refused`);
      await this.#reply(
        500,
        `Command line too long (${line.length} bytes; the limit is ${this.#config.maxLineLength})`,
      );
    }
  }

  // Before hanging up on a flood, say we are done (FIN) and read what is
  // still coming, for a moment: closing with unread bytes makes TCP send a
  // reset, which can destroy our last reply before the client reads it.
  async #discardInput(): Promise<void> {
    if (!this.#secure) await this.#conn.closeWrite().catch(() => {});
    const buffer = new Uint8Array(64 * 1024);
    const timer = setTimeout(() => this.close(), 1000);
    try {
      for (let total = 0; total < 4 * CHUNK;) {
        const n = await this.#reader.read(buffer);
        if (n === null) break;
        total += n;
      }
    } catch {
      /* closed by the timer */
    } finally {
      clearTimeout(timer);
    }
  }

  async #handle(raw: Uint8Array): Promise<void> {
    this.#stats.commands++;
    // Telnet's IAC sequences (0xFF and a byte from 0xF0 up) may precede a
    // command: a client sends IAC IP, IAC DM before ABOR (RFC 959 §4.1.3).
    // (The DM byte may have been sent as urgent data and be missing.)
    let start = 0;
    while (start < raw.length && raw[start] >= 0xf0) start++;
    const bytes = raw.subarray(start);
    let text: string;
    try {
      text = strictDecoder.decode(bytes);
    } catch {
      return await this.#reply(501, "Commands must be UTF-8 (RFC 2640)");
    }
    const match = text.match(/^([A-Za-z]{3,4})(?: (.*))?$/s);
    if (!match) {
      this.#log(`> ${JSON.stringify(text.slice(0, 60))}`);
      return await this.#reply(500, "Syntax error: expected a command of 3 or 4 letters");
    }
    const verb = match[1].toUpperCase();
    const argument = match[2] ?? "";
    this.#log(`> ${verb}${argument ? " " + (verb === "PASS" ? "****" : argument) : ""}`);
    if (hasControlCharacter(argument)) {
      return await this.#reply(501, "Control characters (NUL, CR, ...) are refused in arguments");
    }

    // While a transfer runs, ABOR and STAT are answered at once; anything
    // else waits its turn, so replies keep the order of the commands.
    if (this.#transfer && verb !== "ABOR" && !(verb === "STAT" && argument === "")) {
      await this.#transfer.task;
    }
    // REST applies to the next transfer (clients send EPSV or TYPE between).
    const restart = this.#restart;
    if (TRANSFERS.has(verb)) this.#restart = 0;
    if (verb !== "RNTO" && this.#renameFrom !== undefined && verb !== "RNFR") {
      this.#renameFrom = undefined;
    }

    try {
      if (!this.#user && !BEFORE_LOGIN.has(verb)) {
        throw new FtpError(
          KNOWN.has(verb) ? 530 : 500,
          KNOWN.has(verb) ? "Log in with USER and PASS first" : `${verb} not understood`,
        );
      }
      await this.#dispatch(verb, argument, restart);
    } catch (error) {
      if (error instanceof FtpError) return await this.#reply(error.code, error.message);
      this.#log(`${verb} failed: ${(error as Error).message}`);
      const { code, text } = fileSystemReply(error, verb);
      await this.#reply(code, text);
    }
  }

  // One handler per command. Each throws FtpError to refuse.
  async #dispatch(verb: string, argument: string, restart: number): Promise<void> {
    const fs = this.#config.fs;
    switch (verb) {
      // -- login (RFC 959 §4.1.1) ------------------------------------------
      case "USER":
        return await this.#userCommand(argument);
      case "PASS":
        return await this.#passCommand(argument);
      case "QUIT":
        await this.#transfer?.task;
        await this.#reply(221, "Goodbye");
        await this.#writing;
        await this.#channel.finish().catch(() => {});
        this.#closed = true;
        return;

      // -- the session's settings ------------------------------------------
      case "SYST":
        return await this.#reply(215, "UNIX Type: L8");
      case "FEAT":
        return await this.#reply(211, ["Extensions supported:", ...this.#features(), "End"]);
      case "OPTS":
        return await this.#optsCommand(argument);
      case "NOOP":
        return await this.#reply(200, "NOOP ok");
      case "HELP":
        return await this.#reply(214, [
          "Commands recognized:",
          ...chunked([...KNOWN].sort(), 12).map((row) => ` ${row.join(" ")}`),
          "Help ok",
        ]);
      case "TYPE":
        return await this.#typeCommand(argument);
      case "STRU":
        if (!/^[FRP]$/i.test(argument)) throw new FtpError(501, "STRU wants F, R or P");
        if (argument.toUpperCase() !== "F") {
          throw new FtpError(504, "Only STRU F (file) is supported");
        }
        return await this.#reply(200, "Structure set to F");
      case "MODE":
        if (!/^[SBC]$/i.test(argument)) throw new FtpError(501, "MODE wants S, B or C");
        if (argument.toUpperCase() !== "S") {
          throw new FtpError(504, "Only MODE S (stream) is supported");
        }
        return await this.#reply(200, "Mode set to S");
      case "ALLO":
        return await this.#reply(202, "No storage allocation needed");
      case "ACCT":
        return await this.#reply(202, "No account needed");
      case "STAT":
        return await this.#statCommand(argument);
      case "REST": {
        if (!/^\d{1,15}$/.test(argument)) throw new FtpError(501, "REST wants a byte offset");
        this.#restart = Number(argument);
        return await this.#reply(350, `Restarting at ${this.#restart}; send RETR or STOR`);
      }

      // -- folders ------------------------------------------------------------
      case "PWD":
      case "XPWD":
        return await this.#reply(257, `${quotePath(this.#cwd)} is the current folder`);
      case "CWD":
      case "XCWD":
        return await this.#changeFolder(resolvePath(this.#cwd, argument));
      case "CDUP":
      case "XCUP":
        return await this.#changeFolder(resolvePath(this.#cwd, ".."));
      case "MKD":
      case "XMKD": {
        this.#mayWrite();
        const path = resolvePath(this.#cwd, argument);
        await fs.mkdir(path);
        return await this.#reply(257, `${quotePath(path)} created`);
      }
      case "RMD":
      case "XRMD": {
        this.#mayWrite();
        const path = resolvePath(this.#cwd, argument);
        if (path === "/") throw new FtpError(550, "The root cannot be removed");
        await fs.rmdir(path);
        return await this.#reply(250, `${quotePath(path)} removed`);
      }

      // -- files, on the control connection -------------------------------
      case "SIZE": {
        const path = resolvePath(this.#cwd, argument);
        const entry = await fs.stat(path);
        if (entry.type !== "file") throw new FtpError(550, `${nameOf(path)}: not a plain file`);
        return await this.#reply(
          213,
          String(this.#binary ? entry.size : await this.#asciiSize(path)),
        );
      }
      case "MDTM": {
        const path = resolvePath(this.#cwd, argument);
        const entry = await fs.stat(path);
        if (entry.type !== "file") throw new FtpError(550, `${nameOf(path)}: not a plain file`);
        return await this.#reply(213, formatTimeVal(entry.modified));
      }
      case "MLST": {
        const path = argument === "" ? this.#cwd : resolvePath(this.#cwd, argument);
        const entry = await fs.stat(path);
        return await this.#reply(250, [
          `Listing ${path}`,
          ` ${formatFacts(entry, path, this.#facts, this.#writable)}`,
          "End",
        ]);
      }
      case "DELE": {
        this.#mayWrite();
        const path = resolvePath(this.#cwd, argument);
        await fs.delete(path);
        return await this.#reply(250, `${nameOf(path)} deleted`);
      }
      case "RNFR": {
        this.#mayWrite();
        const path = resolvePath(this.#cwd, argument);
        await fs.stat(path);
        this.#renameFrom = path;
        return await this.#reply(350, "Ready for RNTO");
      }
      case "RNTO": {
        const from = this.#renameFrom;
        this.#renameFrom = undefined;
        if (from === undefined) throw new FtpError(503, "RNFR first");
        this.#mayWrite();
        const to = resolvePath(this.#cwd, argument, 553);
        // A folder cannot go inside itself: refused here, the same for every
        // store (the kernel's rename would fail with EINVAL, a 451 that
        // promises a retry could work).
        if (to.startsWith(from + "/")) {
          throw new FtpError(553, `Cannot move ${nameOf(from)} into itself`);
        }
        await fs.rename(from, to);
        return await this.#reply(250, `Renamed to ${nameOf(to)}`);
      }

      // -- data connections (RFC 959 §3.2, RFC 2428) ----------------------
      case "PASV":
      case "EPSV":
        return await this.#passiveCommand(verb, argument);
      case "PORT":
      case "EPRT":
        return await this.#activeCommand(verb, argument);

      // -- transfers ----------------------------------------------------------
      case "LIST":
      case "NLST":
      case "MLSD":
        return await this.#listCommand(verb, argument);
      case "RETR":
        return await this.#retrieve(resolvePath(this.#cwd, argument), restart);
      case "STOR":
      case "APPE":
        this.#mayWrite();
        return await this.#store(
          resolvePath(this.#cwd, argument, 553),
          verb === "APPE" ? Infinity : restart,
        );
      case "ABOR":
        return await this.#abortCommand();

      // -- TLS (RFC 2228, RFC 4217) ------------------------------------------
      case "AUTH":
        return await this.#authCommand(argument);
      case "PBSZ":
        if (!this.#secure) throw new FtpError(503, "AUTH TLS first");
        if (!/^\d+$/.test(argument)) throw new FtpError(501, "PBSZ wants a number (0 for TLS)");
        this.#pbsz = true;
        return await this.#reply(200, "PBSZ=0");
      case "PROT":
        if (!this.#pbsz) throw new FtpError(503, "PBSZ first");
        if (!/^[CSEP]$/i.test(argument)) throw new FtpError(504, "PROT wants C or P");
        if (/^[SE]$/i.test(argument)) {
          throw new FtpError(536, "Only PROT C and PROT P are supported");
        }
        this.#protectData = argument.toUpperCase() === "P";
        return await this.#reply(200, `Data connections: ${this.#protectData ? "TLS" : "clear"}`);

      default:
        if (KNOWN.has(verb)) throw new FtpError(502, `${verb} is not implemented`);
        throw new FtpError(500, `${verb} not understood`);
    }
  }

  #features(): string[] {
    return [
      ...(this.#config.tls ? [" AUTH TLS", " PBSZ", " PROT"] : []),
      " EPRT",
      " EPSV",
      " MDTM",
      ` MLST ${MLST_FACTS.map((fact) => `${fact}${this.#facts.has(fact) ? "*" : ""};`).join("")}`,
      " PASV",
      " REST STREAM",
      " SIZE",
      " TVFS",
      " UTF8",
    ];
  }

  async #userCommand(name: string): Promise<void> {
    if (name === "") throw new FtpError(501, "USER wants a name");
    if (this.#user) throw new FtpError(503, `Already logged in as ${this.#user}`);
    if (ANONYMOUS_NAMES.includes(name.toLowerCase()) && !this.#config.anonymous) {
      throw new FtpError(530, "Anonymous logins are disabled");
    }
    this.#pendingUser = name;
    const anonymous = ANONYMOUS_NAMES.includes(name.toLowerCase());
    await this.#reply(
      331,
      anonymous ? "Anonymous login: any password (your e-mail, by custom)" : `Password for ${name}`,
    );
  }

  async #passCommand(password: string): Promise<void> {
    const name = this.#pendingUser;
    this.#pendingUser = undefined;
    if (this.#user) throw new FtpError(503, `Already logged in as ${this.#user}`);
    if (name === undefined) throw new FtpError(503, "USER first");
    if (ANONYMOUS_NAMES.includes(name.toLowerCase()) && this.#config.anonymous) {
      this.#user = "anonymous";
      this.#writable = false;
      this.#log("logged in as anonymous (read-only)");
      return await this.#reply(230, "Logged in as anonymous: read-only");
    }
    if (
      Object.hasOwn(this.#config.users, name) &&
      constantTimeEqual(this.#config.users[name], password)
    ) {
      this.#user = name;
      this.#writable = true;
      this.#log(`logged in as ${name}`);
      return await this.#reply(230, `Logged in as ${name}`);
    }
    this.#log(`login failed for ${JSON.stringify(name)}`);
    if (++this.#failures >= MAX_LOGIN_FAILURES) {
      await sleep(500);
      await this.#reply(421, "Too many failed logins; closing");
      this.#closed = true;
      return;
    }
    await sleep(200); // slows down password guessing a little
    throw new FtpError(530, "Login incorrect");
  }

  async #optsCommand(argument: string): Promise<void> {
    const [option, ...rest] = argument.split(" ");
    const value = rest.join(" ");
    switch (option.toUpperCase()) {
      case "UTF8":
      case "UTF-8":
        if (value.toUpperCase() === "ON" || value === "") {
          return await this.#reply(200, "UTF-8 is always on");
        }
        throw new FtpError(504, "UTF-8 cannot be turned off");
      case "MLST": {
        const wanted = value.toLowerCase().split(";").filter(Boolean);
        this.#facts = new Set(MLST_FACTS.filter((fact) => wanted.includes(fact)));
        return await this.#reply(
          200,
          `MLST OPTS ${[...this.#facts].map((fact) => fact + ";").join("")}`,
        );
      }
      default:
        throw new FtpError(501, `Option ${option} not understood`);
    }
  }

  async #typeCommand(argument: string): Promise<void> {
    const type = argument.toUpperCase().replace(/\s+/g, " ");
    if (type === "I" || type === "L 8") {
      this.#binary = true;
      return await this.#reply(200, "Type set to I (binary)");
    }
    if (type === "A" || type === "A N") {
      this.#binary = false;
      return await this.#reply(200, "Type set to A (text, CRLF line ends)");
    }
    if (/^(A [TC]|E( [NTC])?|L \d+)$/.test(type)) {
      throw new FtpError(504, `TYPE ${argument} is not supported`);
    }
    throw new FtpError(501, "TYPE wants A or I");
  }

  async #statCommand(argument: string): Promise<void> {
    if (argument !== "") {
      // STAT path: a listing on the control connection, no data connection.
      const path = resolvePath(this.#cwd, stripListOptions(argument));
      const entry = await this.#config.fs.stat(path);
      const entries = entry.type === "dir" ? await this.#config.fs.list(path) : [entry];
      const lines = entries.filter(printable).map((item) => formatListLine(item));
      return await this.#reply(213, [`Status of ${path}:`, ...lines, "End of status"]);
    }
    const transfer = this.#transfer
      ? `transferring, ${this.#transfer.bytes()} bytes so far`
      : "no transfer";
    await this.#reply(211, [
      "wirebook FTP server status:",
      `Connected from ${this.#peer}`,
      this.#user
        ? `Logged in as ${this.#user}${this.#writable ? "" : " (read-only)"}`
        : "Not logged in",
      `TYPE ${this.#binary ? "I" : "A"}, STRU F, MODE S; control ${
        this.#secure ? "TLS" : "clear"
      }, data ${this.#protectData ? "TLS" : "clear"}`,
      `Data connection: ${this.#pending?.describe ?? "none"}; ${transfer}`,
      "End of status",
    ]);
  }

  #mayWrite(): void {
    if (!this.#writable) {
      throw new FtpError(550, "Permission denied: anonymous users may only read");
    }
  }

  async #changeFolder(path: string): Promise<void> {
    const entry = await this.#config.fs.stat(path);
    if (entry.type !== "dir") throw new FtpError(550, `${nameOf(path)}: not a folder`);
    this.#cwd = path;
    await this.#reply(250, `Folder is now ${quotePath(path)}`);
  }

  // TYPE A's SIZE is the size on the wire, with every bare LF sent as CRLF
  // (RFC 3659 §4): the file must be read to know it.
  async #asciiSize(path: string): Promise<number> {
    const file = await this.#config.fs.read(path);
    const buffer = new Uint8Array(CHUNK);
    const state = { lastWasCr: false };
    let size = 0;
    try {
      for (let n = await file.read(buffer); n !== null; n = await file.read(buffer)) {
        size += toNetworkAscii(buffer.subarray(0, n), state).length;
      }
    } finally {
      file.close();
    }
    return size;
  }

  // -- data connections ------------------------------------------------------

  // PASV answers with an IPv4 address and port as six numbers; EPSV (RFC
  // 2428 §3) with the port alone, `(|||port|)`: the client reuses the address
  // it already reached, which is what makes EPSV work through NAT and IPv6.
  async #passiveCommand(verb: string, argument: string): Promise<void> {
    const local = this.#conn.localAddr;
    const ipv6 = local.hostname.includes(":");
    if (verb === "PASV") {
      if (argument !== "") throw new FtpError(501, "PASV takes no argument");
      if (this.#epsvAll) throw new FtpError(503, "EPSV ALL was sent: only EPSV now");
      if (ipv6) throw new FtpError(425, "PASV can only name IPv4 addresses; use EPSV");
    } else if (argument.toUpperCase() === "ALL") {
      this.#epsvAll = true;
      return await this.#reply(200, "EPSV ALL ok: only EPSV from now on");
    } else if (argument !== "" && argument !== (ipv6 ? "2" : "1")) {
      if (argument === "1" || argument === "2") {
        throw new FtpError(522, `Network protocol not supported, use (${ipv6 ? 2 : 1})`);
      }
      throw new FtpError(501, "EPSV takes 1, 2 or ALL");
    }
    this.#pending?.close();
    this.#pending = undefined;
    const { pending, port } = passiveData(
      local.hostname,
      this.#conn.remoteAddr.hostname,
      (line) => this.#log(line),
    );
    this.#pending = pending;
    if (verb === "EPSV") {
      return await this.#reply(229, `Entering Extended Passive Mode (|||${port}|)`);
    }
    const numbers = [...local.hostname.split("."), port >> 8, port & 255].join(",");
    await this.#reply(227, `Entering Passive Mode (${numbers})`);
  }

  // Active mode: the client names an address and the server connects to it.
  // Only to the client's own address, and not to a privileged port: anything
  // else would let a client use us to connect anywhere (the bounce attack,
  // RFC 2577 §3).
  async #activeCommand(verb: string, argument: string): Promise<void> {
    if (this.#epsvAll) throw new FtpError(503, "EPSV ALL was sent: only EPSV now");
    const { hostname, port } = verb === "PORT"
      ? parsePortArgument(argument)
      : parseEprtArgument(argument);
    if (hostname !== this.#conn.remoteAddr.hostname) {
      throw new FtpError(
        504,
        `${verb} must name your own address (${this.#conn.remoteAddr.hostname})`,
      );
    }
    if (port < 1024) throw new FtpError(504, `${verb} to a port below 1024 is refused`);
    this.#pending?.close();
    this.#pending = activeData(hostname, port);
    await this.#reply(
      200,
      `${verb} ok: will connect to ${formatAddress({ transport: "tcp", hostname, port })}`,
    );
  }

  // -- transfers -------------------------------------------------------------

  async #listCommand(verb: string, argument: string): Promise<void> {
    const fs = this.#config.fs;
    const target = stripListOptions(argument);
    const path = target === "" ? this.#cwd : resolvePath(this.#cwd, target);
    const entry = await fs.stat(path);
    if (verb === "MLSD" && entry.type !== "dir") {
      throw new FtpError(501, `${nameOf(path)}: not a folder`);
    }
    const entries = (entry.type === "dir" ? await fs.list(path) : [entry]).filter(printable);
    const lines = entries.map((item) =>
      verb === "LIST"
        ? formatListLine(item)
        : verb === "NLST"
        ? item.name
        : formatFacts(item, item.name, this.#facts, this.#writable)
    );
    // Listings are text: CRLF after every line, whatever TYPE says.
    const body = encoder.encode(lines.map((line) => line + "\r\n").join(""));
    await this.#startTransfer(`${verb} ${path}`, `Here comes the listing of ${path}`, {
      async run(data, progress) {
        await writeAll(data, body);
        progress(body.length, "down");
      },
    });
  }

  async #retrieve(path: string, restart: number): Promise<void> {
    const fs = this.#config.fs;
    const entry = await fs.stat(path);
    if (entry.type !== "file") throw new FtpError(550, `${nameOf(path)}: not a plain file`);
    if (restart > entry.size) {
      throw new FtpError(554, `REST ${restart} is past the end (${entry.size} bytes)`);
    }
    const file = await fs.read(path, restart);
    const binary = this.#binary;
    const mode = binary ? "BINARY" : "ASCII";
    await this.#startTransfer(
      `RETR ${path}`,
      `Opening ${mode} data connection for ${nameOf(path)} (${entry.size - restart} bytes)`,
      {
        async run(data, progress) {
          const state = { lastWasCr: false };
          await pump(file, async (chunk) => {
            const wire = binary ? chunk : toNetworkAscii(chunk, state);
            // writeAll's loop, counting each write: a slow client that
            // takes a while over a megabyte is still making progress.
            for (let offset = 0; offset < wire.length;) {
              const n = await data.write(wire.subarray(offset));
              offset += n;
              progress(n, "down");
            }
          });
        },
        finish: () => file.close(),
      },
    );
  }

  async #store(path: string, keep: number): Promise<void> {
    let upload: FtpUpload;
    try {
      upload = await this.#config.fs.write(path, { keep });
    } catch (error) {
      if (error instanceof RangeError) {
        throw new FtpError(554, `REST ${keep} is past the end of ${nameOf(path)}`);
      }
      throw error;
    }
    const ascii = this.#binary ? undefined : new FromNetworkAscii();
    const controlEnded = this.#controlEndedPromise;
    await this.#startTransfer(
      `STOR ${path}`,
      `Ready to receive ${nameOf(path)}`,
      {
        async run(data, progress) {
          await pump(
            data,
            (chunk) => upload.write(ascii ? ascii.push(chunk) : chunk),
            (n) => progress(n, "up"),
          );
          if (ascii) await upload.write(ascii.flush());
          // In stream mode the end of the data connection is the end of the
          // file, and a client that was killed ends it the same way. So keep
          // the file only if the control connection is still there a moment
          // later: a dead client's control connection ends with its data one.
          if (await settlesWithin(controlEnded, COMMIT_GRACE_MS)) throw new Error(CONTROL_CLOSED);
          await upload.commit();
        },
        finish: async (ok) => {
          if (!ok) await upload.abort();
        },
      },
    );
  }

  /**
   * Reply 150, open the data connection, run the work, reply 226 (or 425,
   * 426, 451), all beside the command loop. Returns once it has started.
   */
  async #startTransfer(
    what: string,
    opening: string,
    work: {
      run(data: Channel, progress: (bytes: number, way: "up" | "down") => void): Promise<void>;
      finish?(ok: boolean): Promise<void> | void;
    },
  ): Promise<void> {
    const pending = this.#pending;
    this.#pending = undefined;
    if (!pending) {
      await work.finish?.(false);
      throw new FtpError(425, "Use PASV, EPSV, PORT or EPRT first");
    }
    const { dataTimeout } = this.#config;
    let bytes = 0;
    let data: Channel | undefined;
    let reason: unknown;
    const stop = (why: unknown) => {
      reason ??= why;
      pending.close();
      data?.close();
    };
    const timer = setTimeout(() => stop(`idle for ${dataTimeout / 1000} s`), dataTimeout);
    const progress = (n: number, way: "up" | "down") => {
      bytes += n;
      this.#stats[way] += n;
      timer.refresh();
    };

    const task = (async () => {
      let ok = false;
      try {
        await this.#reply(150, opening);
        try {
          const conn = await pending.open(dataTimeout);
          data = plainChannel(conn);
          if (reason) throw reason;
          if (this.#protectData && this.#config.tls) {
            data = await acceptTls(conn, this.#config.tls, dataTimeout);
          }
        } catch (error) {
          if (reason === CONTROL_CLOSED) return;
          if (reason === ABORTED_BY_CLIENT) {
            return await this.#reply(426, "Transfer aborted by ABOR");
          }
          const why = reason ?? (error as Error).message;
          return await this.#reply(425, `Cannot open data connection: ${why}`);
        }
        timer.refresh();
        try {
          await work.run(data, progress);
          ok = true;
        } catch (error) {
          if (reason === CONTROL_CLOSED || (error as Error).message === CONTROL_CLOSED) {
            this.#log(`${what}: the client left after ${bytes} bytes; abandoned`);
            return;
          }
          if (reason === ABORTED_BY_CLIENT) {
            return await this.#reply(426, "Transfer aborted by ABOR");
          }
          if (reason) return await this.#reply(426, `Data connection ${reason}; transfer aborted`);
          if (isNetworkError(error)) {
            return await this.#reply(
              426,
              `Data connection lost (${(error as Error).name}); transfer aborted`,
            );
          }
          this.#log(`${what}: ${(error as Error).message}`);
          const { code, text } = fileSystemReply(error, "STOR");
          return await this.#reply(code === 550 ? 451 : code, `Local error: ${text}`);
        }
        await data.finish();
        this.#log(`${what}: ${bytes} bytes`);
        await this.#reply(226, `Transfer complete (${bytes} bytes)`);
      } finally {
        clearTimeout(timer);
        data?.close();
        pending.close();
        await Promise.resolve(work.finish?.(ok)).catch((error) =>
          this.#log(`cleanup: ${error.message}`)
        );
        this.#transfer = undefined;
        this.#armIdle();
      }
    })();
    this.#transfer = { task: task.catch(() => {}), abort: stop, bytes: () => bytes };
  }

  // ABOR (RFC 959 §4.1.3): during a transfer, 426 for the transfer, then 226
  // for the ABOR; with none, 225.
  async #abortCommand(): Promise<void> {
    const transfer = this.#transfer;
    if (!transfer) {
      this.#pending?.close();
      this.#pending = undefined;
      return await this.#reply(225, "No transfer to abort");
    }
    transfer.abort(ABORTED_BY_CLIENT);
    await transfer.task;
    await this.#reply(226, "ABOR successful");
  }

  // AUTH TLS (RFC 4217 §4): reply 234, then the handshake, on the same
  // connection. A client that sent anything after AUTH before the handshake
  // is injecting plain-text commands to run as if they came over TLS (the
  // STARTTLS injection flaw, CVE-2011-0411): refuse and close.
  async #authCommand(argument: string): Promise<void> {
    if (!this.#config.tls) {
      throw new FtpError(502, "AUTH is not available: no certificate configured");
    }
    if (this.#secure) throw new FtpError(503, "TLS is already on");
    if (!/^(TLS|TLS-C|SSL)$/i.test(argument)) throw new FtpError(504, "AUTH wants TLS");
    if (this.#reader.buffered > 0) {
      this.#log("commands pipelined after AUTH TLS: closing");
      await this.#reply(421, "Commands sent before the TLS handshake; closing");
      this.#closed = true;
      return;
    }
    await this.#reply(234, "AUTH TLS ok: start the handshake");
    await this.#writing;
    try {
      this.#channel = await acceptTls(this.#conn, this.#config.tls, this.#config.dataTimeout);
    } catch (error) {
      // Past the 234 there is no plain-text way back: hang up.
      this.#log(`TLS handshake failed: ${(error as Error).message}`);
      this.close();
      return;
    }
    this.#reader = new BufferedReader(urgentAborEndsLine(this.#channel));
    this.#secure = true;
    // Whoever logged in before TLS must log in again (RFC 4217 §4).
    this.#user = undefined;
    this.#writable = false;
    this.#log("control connection is TLS now");
  }
}

/**
 * Copy from `source` to `sink` until the source ends, with two buffers: while
 * one is written, the other is filled. A download then reads the disk while
 * the socket sends, and an upload reads the socket while the disk writes,
 * instead of taking turns. A buffer is filled by as many reads as it takes
 * (a socket's read returns what has arrived, often a few KiB), so the sink
 * gets large chunks: fewer, larger disk writes. `sink` must be done with a
 * chunk when it resolves.
 */
async function pump(
  source: { read(buffer: Uint8Array): Promise<number | null> },
  sink: (chunk: Uint8Array) => Promise<void>,
  onRead: (bytes: number) => void = () => {},
): Promise<void> {
  const fill = async (buffer: Uint8Array): Promise<number | null> => {
    let filled = 0;
    while (filled < buffer.length) {
      const n = await source.read(buffer.subarray(filled));
      if (n === null) return filled === 0 ? null : filled;
      onRead(n);
      filled += n;
    }
    return filled;
  };
  const buffers = [new Uint8Array(CHUNK), new Uint8Array(CHUNK)];
  let current = 0;
  let n = await fill(buffers[current]);
  while (n !== null) {
    const chunk = buffers[current].subarray(0, n);
    current ^= 1;
    [, n] = await Promise.all([sink(chunk), fill(buffers[current])]);
  }
}

/**
 * A reply as it goes on the wire (RFC 959 §4.2): `code text` for one line;
 * for several, `code-` before the first and `code ` before the last, with a
 * space in front of any line between that starts with a digit (it could be
 * taken for the last). Every line ends in CRLF.
 *
 * @param code The reply code.
 * @param lines The reply's text, one or more lines.
 * @returns The reply's bytes, as text.
 */
export function formatReply(code: number, lines: string[]): string {
  return lines.map((line, i) => {
    if (i === lines.length - 1) return `${code} ${line}\r\n`;
    if (i === 0) return `${code}-${line}\r\n`;
    return `${/^\d/.test(line) ? " " : ""}${line}\r\n`;
  }).join("");
}

// The commands this server knows, and those allowed before logging in.
const KNOWN = new Set([
  "ABOR",
  "ACCT",
  "ALLO",
  "APPE",
  "AUTH",
  "CDUP",
  "CWD",
  "DELE",
  "EPRT",
  "EPSV",
  "FEAT",
  "HELP",
  "LIST",
  "MDTM",
  "MKD",
  "MLSD",
  "MLST",
  "MODE",
  "NLST",
  "NOOP",
  "OPTS",
  "PASS",
  "PASV",
  "PBSZ",
  "PORT",
  "PROT",
  "PWD",
  "QUIT",
  "REIN",
  "REST",
  "RETR",
  "RMD",
  "RNFR",
  "RNTO",
  "SITE",
  "SIZE",
  "SMNT",
  "STAT",
  "STOR",
  "STOU",
  "STRU",
  "SYST",
  "TYPE",
  "USER",
  "XCUP",
  "XCWD",
  "XMKD",
  "XPWD",
  "XRMD",
]);
const TRANSFERS = new Set(["RETR", "STOR", "APPE", "LIST", "NLST", "MLSD"]);
const BEFORE_LOGIN = new Set([
  "USER",
  "PASS",
  "QUIT",
  "SYST",
  "FEAT",
  "OPTS",
  "NOOP",
  "HELP",
  "AUTH",
  "PBSZ",
  "PROT",
]);

// A file system failure as a reply. The error's own message is for the log
// only: it may name the machine's real paths.
function fileSystemReply(error: unknown, verb: string): { code: number; text: string } {
  const creating = verb === "STOR" || verb === "APPE" || verb === "RNTO" || verb === "MKD";
  if (error instanceof Deno.errors.NotFound) {
    return { code: creating && verb !== "MKD" ? 553 : 550, text: "No such file or folder" };
  }
  if (error instanceof Deno.errors.AlreadyExists) return { code: 550, text: "Already exists" };
  if (error instanceof Deno.errors.NotADirectory) return { code: 550, text: "Not a folder" };
  if (error instanceof Deno.errors.IsADirectory) return { code: 550, text: "Is a folder" };
  if (error instanceof Deno.errors.PermissionDenied || error instanceof Deno.errors.NotCapable) {
    return { code: 550, text: "Permission denied" };
  }
  if ((error as { code?: string }).code === "ENOTEMPTY") {
    return { code: 550, text: "Folder not empty" };
  }
  if ((error as { code?: string }).code === "ENOSPC") return { code: 452, text: "No space left" };
  return { code: 451, text: "Local error in processing" };
}

function isNetworkError(error: unknown): boolean {
  const { errors } = Deno;
  return error instanceof errors.ConnectionReset || error instanceof errors.BrokenPipe ||
    error instanceof errors.BadResource || error instanceof errors.Interrupted ||
    error instanceof errors.ConnectionAborted || error instanceof errors.UnexpectedEof ||
    (error instanceof Error && /TLS|SSL|socket|closed/i.test(error.message));
}

// `257 "/a ""quoted"" name"`: a path in a reply is quoted, and a quote inside
// it doubled (RFC 959, appendix II).
function quotePath(path: string): string {
  return `"${path.replaceAll('"', '""')}"`;
}

// Clients send `LIST -la` or `LIST -a dir`, options of ls that servers
// traditionally accept and ignore.
function stripListOptions(argument: string): string {
  return argument.replace(/^(-[A-Za-z]+\s*)+/, "").trim();
}

// A name with a control character in it (a real folder may hold one) would
// break a listing's lines: such entries are left out.
function printable(entry: FtpEntry): boolean {
  return !hasControlCharacter(entry.name);
}

// NUL, CR, LF and the other C0 controls, and DEL.
function hasControlCharacter(text: string): boolean {
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x20 || code === 0x7f) return true;
  }
  return false;
}

function constantTimeEqual(a: string, b: string): boolean {
  const x = encoder.encode(a);
  const y = encoder.encode(b);
  let difference = x.length ^ y.length;
  for (let i = 0; i < Math.max(x.length, y.length); i++) difference |= (x[i] ?? 0) ^ (y[i] ?? 0);
  return difference === 0;
}

function chunked<T>(items: T[], size: number): T[][] {
  const rows: T[][] = [];
  for (let i = 0; i < items.length; i += size) rows.push(items.slice(i, i + size));
  return rows;
}

// ---------------------------------------------------------------------------
// A bare control connection, for the demo: a telnet that knows FTP's replies
// (scripts/ftp_client.ts is the real client)
// ---------------------------------------------------------------------------

/** A reply as read from the wire. */
export interface FtpReply {
  code: number;
  /** Every line, as sent. */
  lines: string[];
}

/**
 * A control connection driven by hand: send a command line, read the reply
 * (one line, or `code-` ... `code ` for several). `onLine` sees every line
 * both ways, for a transcript.
 */
export class FtpControl {
  #conn: Deno.TcpConn;
  #reader: BufferedReader;
  #onLine: (line: string) => void;

  private constructor(conn: Deno.TcpConn, onLine: (line: string) => void) {
    this.#conn = conn;
    this.#reader = new BufferedReader(conn);
    this.#onLine = onLine;
  }

  /** Connect and read the greeting. */
  static async connect(
    hostname: string,
    port: number,
    onLine: (line: string) => void = () => {},
  ): Promise<{ control: FtpControl; greeting: FtpReply }> {
    let conn: Deno.TcpConn;
    try {
      conn = await Deno.connect({ hostname, port });
    } catch (error) {
      throw new Error(`cannot connect to ftp://${hostname}:${port}`, { cause: error });
    }
    const control = new FtpControl(conn, onLine);
    return { control, greeting: await control.reply() };
  }

  /** Read one reply. */
  async reply(): Promise<FtpReply> {
    const lines: string[] = [];
    while (true) {
      const bytes = await this.#reader.readLine({ maxLength: 65536 });
      if (bytes === null) throw new Error("the server closed the control connection");
      const line = decoder.decode(bytes);
      this.#onLine(`S: ${line}`);
      lines.push(line);
      const first = lines[0].match(/^(\d{3})([ -])/);
      if (!first) throw new Error(`not an FTP reply: ${JSON.stringify(line)}`);
      if (first[2] === " " || (lines.length > 1 && line.startsWith(`${first[1]} `))) {
        return { code: Number(first[1]), lines };
      }
    }
  }

  /** Send one command line (CRLF added) and read its reply. */
  async send(line: string): Promise<FtpReply> {
    this.#onLine(`C: ${line.startsWith("PASS ") ? "PASS ****" : shorten(line)}`);
    await writeAll(this.#conn, encoder.encode(`${line}\r\n`));
    return await this.reply();
  }

  /** Send bytes exactly as given (no CRLF added), to see what the server makes of them. */
  async sendRaw(bytes: Uint8Array): Promise<void> {
    this.#onLine(`C: ${shorten(JSON.stringify(decoder.decode(bytes)))}`);
    await writeAll(this.#conn, bytes);
  }

  /** EPSV, then connect to the port it names, on the same host. */
  async passive(): Promise<Deno.TcpConn> {
    const reply = await this.send("EPSV");
    const port = reply.lines[0].match(/\(\|\|\|(\d+)\|\)/)?.[1];
    if (reply.code !== 229 || !port) throw new Error(`EPSV failed: ${reply.lines[0]}`);
    return await Deno.connect({ hostname: this.#conn.remoteAddr.hostname, port: Number(port) });
  }

  /** Close the connection (like `Deno.Conn.close()`, a second call throws `BadResource`). */
  close(): void {
    this.#conn.close();
  }
}

// A transcript shows a long line by its start and its length.
function shorten(line: string): string {
  return line.length > 100 ? `${line.slice(0, 40)}... (${line.length} characters)` : line;
}

/** Read a data connection to its end. */
export async function readAll(conn: Deno.Conn): Promise<Uint8Array<ArrayBuffer>> {
  const parts: Uint8Array[] = [];
  for await (const chunk of conn.readable) parts.push(chunk);
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  root: { type: "string" },
  user: { type: "string" },
  "no-anonymous": { type: "boolean" },
  cert: { type: "string" },
  key: { type: "string" },
  "idle-timeout": { type: "number", default: 300, min: 0.001 },
  "data-timeout": { type: "number", default: 60, min: 0.001 },
  "max-connections": { type: "number", default: 100, integer: true, min: 1 },
  "max-line": { type: "number", default: 4096, integer: true, min: 64, max: HARD_LINE_CAP },
  quiet: { type: "boolean" },
} as const;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (command === undefined) return await demo();
  if (command !== "serve") throw new UsageError(`unknown command "${command}"; expected serve`);

  const users: Record<string, string> = {};
  if (flags.user !== undefined) {
    const colon = flags.user.indexOf(":");
    if (colon < 1) throw new UsageError("--user wants NAME:PASSWORD");
    users[flags.user.slice(0, colon)] = flags.user.slice(colon + 1);
  }
  if ((flags.cert === undefined) !== (flags.key === undefined)) {
    throw new UsageError("--cert and --key go together");
  }
  let tlsFiles: { cert: string; key: string } | undefined;
  if (flags.cert !== undefined && flags.key !== undefined) {
    tlsFiles = {
      cert: await Deno.readTextFile(flags.cert).catch((error) => {
        throw new Error(`cannot read --cert ${flags.cert}`, { cause: error });
      }),
      key: await Deno.readTextFile(flags.key).catch((error) => {
        throw new Error(`cannot read --key ${flags.key}`, { cause: error });
      }),
    };
  }
  let fs: FtpFileSystem = new MemoryFileSystem(sampleFiles());
  if (flags.root !== undefined) {
    const info = await Deno.stat(flags.root).catch((error) => {
      throw new Error(`cannot use --root ${flags.root}`, { cause: error });
    });
    if (!info.isDirectory) throw new Error(`--root ${flags.root} is not a folder`);
    fs = new DirectoryFileSystem(flags.root);
  }

  const listener = Deno.listen({ hostname: flags.host, port: flags.port });
  const signal = shutdownSignal();
  console.log(listeningBanner("ftp", listener.addr));
  await serveFtp(listener, {
    fs,
    users,
    anonymous: !flags["no-anonymous"],
    idleTimeout: flags["idle-timeout"] * 1000,
    dataTimeout: flags["data-timeout"] * 1000,
    maxConnections: flags["max-connections"],
    maxLineLength: flags["max-line"],
    tls: tlsFiles,
    log: flags.quiet ? () => {} : console.log,
    signal,
  });
}

// The demo: a server in memory, and two sessions typed by hand. The first,
// anonymous, looks around, lists and downloads over passive data connections,
// and is refused an upload and a climb out of the root. The second, a user
// who may write, uploads, renames and deletes.
async function demo(): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const server = serveFtp(listener, {
    users: { demo: "demo-password" },
    log: () => {},
    signal: stop.signal,
  });
  const { port } = listener.addr;
  console.log(`server: ${listeningBanner("ftp", listener.addr)} (files in memory)`);
  const print = (line: string) => console.log(`  ${line}`);
  const showData = (label: string, bytes: Uint8Array) => {
    const text = decoder.decode(bytes).replace(/\r?\n$/, "");
    for (const line of text.split(/\r?\n/)) console.log(`      ${label} ${line}`);
  };
  const transfer = async (control: FtpControl, command: string, send?: Uint8Array) => {
    const data = await control.passive();
    print(`   (data connection opened to port ${data.remoteAddr.port})`);
    const opening = await control.send(command);
    if (opening.code !== 150) {
      data.close();
      return;
    }
    if (send) {
      await writeAll(data, send);
      data.close();
      showData("data >", send);
    } else {
      showData("data <", await readAll(data));
    }
    await control.reply();
  };

  try {
    console.log("\nanonymous session: read-only");
    const { control: anon } = await FtpControl.connect("127.0.0.1", port, print);
    for (
      const line of [
        "USER anonymous",
        "PASS guest@example.com",
        "SYST",
        "FEAT",
        "PWD",
        "CWD pub",
        "TYPE I",
      ]
    ) {
      await anon.send(line);
    }
    await transfer(anon, "LIST");
    await transfer(anon, "RETR hello.txt");
    await anon.send("SIZE bytes.bin");
    await anon.send("STOR mine.txt");
    await anon.send("RETR ../../etc/passwd");
    await anon.send("QUIT");
    anon.close();

    console.log("\nsession as demo: may write");
    const { control: user } = await FtpControl.connect("127.0.0.1", port, print);
    for (const line of ["USER demo", "PASS demo-password", "TYPE I"]) await user.send(line);
    await transfer(user, "STOR notes.txt", encoder.encode("written over FTP\r\n"));
    await user.send("SIZE notes.txt");
    await user.send("RNFR notes.txt");
    await user.send("RNTO pub/notes.txt");
    await transfer(user, "MLSD pub");
    await user.send("DELE pub/notes.txt");
    await user.send("QUIT");
    user.close();
  } finally {
    stop.abort();
    await server;
  }
  console.log("\nserver: stopped; nothing left listening");
}

if (import.meta.main) runMain(USAGE, main);
