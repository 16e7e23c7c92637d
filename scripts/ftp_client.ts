#!/usr/bin/env -S deno run --allow-net=127.0.0.1
/**
 * @title FTP, the client: two channels, replies by their code, listings parsed by hand
 * @difficulty advanced
 * @tags cli, network, tcp, ftp, tls, files
 * @run --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc959} RFC 959: File Transfer Protocol (FTP), §4.2 replies
 * @resource {https://www.rfc-editor.org/rfc/rfc2428} RFC 2428: FTP Extensions for IPv6 and NATs (EPSV, EPRT)
 * @resource {https://www.rfc-editor.org/rfc/rfc3659} RFC 3659: Extensions to FTP (SIZE, MDTM, REST, MLSD)
 * @resource {https://www.rfc-editor.org/rfc/rfc4217} RFC 4217: Securing FTP with TLS (AUTH TLS, PBSZ, PROT)
 * @resource {https://www.rfc-editor.org/rfc/rfc1123#section-4.1.2.6} RFC 1123 §4.1.2.6: the PASV reply
 * @resource {https://www.rfc-editor.org/rfc/rfc2577} RFC 2577: FTP Security Considerations
 * @resource {https://www.rfc-editor.org/rfc/rfc2640} RFC 2640: Internationalization of FTP (UTF-8)
 *
 * An FTP client from the bytes up. FTP talks on two channels: a control
 * connection of text commands and numbered replies (one line, or many closed
 * by a line that starts with the same code and a space), and a fresh data
 * connection for every listing and file, which this client opens to the port
 * the server names (EPSV first, PASV as the fallback, and never to the address
 * a PASV reply names: only to the host it is already talking to). A transfer
 * is done when the data connection has closed and the 226 has arrived, in
 * either order. Files stream through in chunks, never whole in memory; a
 * download lands as LOCAL.part and is renamed when complete, and `--resume`
 * continues it with REST. `--tls` encrypts both channels (AUTH TLS, PBSZ 0,
 * PROT P). With no arguments, the demo starts scripts/ftp_server.ts in memory
 * and prints the conversation on the wire. Taught in
 * notebooks/20_ftp_client.ipynb.
 */

import { BufferedReader } from "../lib/buffered_reader.ts";
import { FrameTooLargeError } from "../lib/frame_too_large_error.ts";
import type { Reader } from "../lib/read_exactly.ts";
import { writeAll, type Writer } from "../lib/write_all.ts";
import { parseFlags } from "../lib/parse_flags.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { describeError } from "../lib/describe_error.ts";
import { formatAddress } from "../lib/format_address.ts";
import { MemoryFileSystem, sampleFiles, serveFtp } from "./ftp_server.ts";

const USAGE = `
ftp_client.ts: an FTP client (RFC 959) with EPSV/PASV, MLSD and LIST parsing, REST, FTPS

usage:
  ftp_client.ts                        demo: starts scripts/ftp_server.ts in memory on a free
                                       port, then lists, uploads, downloads, renames and
                                       deletes, printing the control-channel conversation
  ftp_client.ts list [PATH]            list a folder (MLSD where the server offers it, else LIST)
  ftp_client.ts get REMOTE [LOCAL]     download (LOCAL: a file, a folder, or - for stdout)
  ftp_client.ts put LOCAL [REMOTE]     upload (REMOTE: a file, or a folder ending in /)
  ftp_client.ts rm PATH                delete a file (DELE)
  ftp_client.ts mkdir PATH             make a folder (MKD)
  ftp_client.ts rmdir PATH             remove an empty folder (RMD)
  ftp_client.ts mv FROM TO             rename (RNFR, then RNTO)
  ftp_client.ts size PATH              a file's size (SIZE) and modification time (MDTM)
  ftp_client.ts shell [PATH]           interactive: one command per line on stdin (below)

  Any remote PATH may be a URL instead, ftp://[USER@]HOST[:PORT]/PATH, which sets
  --host, --port and --user (a path in a URL is relative to the login folder).

flags:
  --host HOST          the server (default 127.0.0.1)
  --port PORT          its control port (default 21)
  --user USER          log in as USER (default anonymous). The password comes from the
                       FTP_PASSWORD environment variable or from a prompt on the terminal,
                       never from the command line (ps and shell history would show it)
  --tls                explicit FTPS: AUTH TLS, then PBSZ 0 and PROT P (both channels encrypted)
  --ca FILE            trust the CA certificate(s) in FILE (PEM), such as a test CA
  --pasv               skip EPSV and ask for PASV at once
  --active             the server connects to us (EPRT/PORT): fails behind NAT, see the notebook
  --resume             get: continue LOCAL.part from its size (REST), then rename it
  --ascii              get/put: TYPE A, line ends converted (default TYPE I: the bytes as they are)
  --raw                list: print the server's lines as they came
  --timeout SECS       connecting, and waiting for each reply (default 30)
  --data-timeout SECS  a data connection with no progress this long has stalled (default 30)
  -v, --verbose        print the control-channel conversation on stderr
  -h, --help           show this help

shell commands (one per line; quote names with spaces):
  ls [PATH], dir [PATH], nlst [PATH], cd PATH, cdup, pwd, get REMOTE [LOCAL], put LOCAL [REMOTE],
  rm PATH, mkdir PATH, rmdir PATH, mv FROM TO, size PATH, ascii, binary, syst, feat, noop,
  quote LINE (send LINE as it is), help, quit (or bye, exit, or end of input)

permissions:
  demo, and any server on 127.0.0.1:  --allow-net=127.0.0.1
  another host:    --allow-net=HOST (data connections go to that host too; plain --allow-net works)
  get:             --allow-read=DIR --allow-write=DIR, DIR being the folder LOCAL goes to: the file
                   is written as LOCAL.part and renamed, and Deno's rename needs read and write
                   (get REMOTE - writes to stdout and needs neither)
  put:             --allow-read=FILE
  --ca FILE:       --allow-read=FILE
  FTP_PASSWORD:    --allow-env=FTP_PASSWORD (without it, the password is asked for on the terminal)
`;

const DEFAULT_PORT = 21;
// Big reads and writes: on loopback a data connection moves a GiB a second,
// and every await costs; 1 MiB chunks keep the per-chunk cost out of sight.
const CHUNK = 1024 * 1024;
// ...but a download reaches its file in writes of at most 256 KiB. Measured
// here (ext4, Linux 6.18): 100 MiB written in 1 MiB writes sometimes took
// 150 ms instead of 20, for runs at a time; in 256 KiB writes, never.
const DISK_WRITE = 256 * 1024;
// A reply line longer than this, or a reply of more lines, is not FTP.
const MAX_REPLY_LINE = 8192;
const MAX_REPLY_LINES = 1000;
// Listings are read into memory to be parsed; past this, something is wrong.
const MAX_LISTING = 64 * 1024 * 1024;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

// ---------------------------------------------------------------------------
// Replies (RFC 959 §4.2)
//
// Every reply starts with three digits. The first says how it went:
//   1yz  preliminary: "started, another reply will follow" (150 before a transfer)
//   2yz  done        (200 OK, 226 transfer complete, 230 logged in)
//   3yz  more needed (331 "now the password", 350 "now RNTO")
//   4yz  failed, transient: the same command may work later (421, 425, 450, 451)
//   5yz  failed, permanent: do not repeat it as it is (500, 530, 550, 553)
// The second digit groups the subject (x0z syntax, x2z connections, x3z login,
// x5z file system). A reply of several lines starts "xyz-" and ends with the
// first line that starts "xyz " (the same code, then a space); the lines in
// between may say anything, even start with other digits.
// ---------------------------------------------------------------------------

/** One reply: a three-digit code and its text, one line or several. */
export interface FtpReply {
  /** 100-599; the first digit is the class (see above). */
  code: number;
  /** The text of each line, without the code and its separator. */
  lines: string[];
}

/** A reply's text on one line, for messages: its lines joined by spaces. */
export function replyText(reply: FtpReply): string {
  return reply.lines.map((line) => line.trim()).filter(Boolean).join(" ");
}

/** The server broke the protocol: a line that is not a reply, or a connection closed mid-reply. */
export class FtpProtocolError extends Error {
  /** @param message What the server did. */
  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "FtpProtocolError";
  }
}

/**
 * Assembles replies from lines, one line at a time: the state machine of
 * RFC 959 §4.2, apart from the reading, so it can be tested on any split.
 *
 * @example A multi-line reply ends at the first line with its code and a space
 * ```ts
 * import { ReplyParser } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * const parser = new ReplyParser();
 * assert.equal(parser.push("230-Welcome."), undefined);
 * assert.equal(parser.push("230-Files here are public."), undefined); // "230-": still inside
 * assert.equal(parser.push(" 230 users online"), undefined); // a space first: still inside
 * assert.deepEqual(parser.push("230 Logged in."), {
 *   code: 230,
 *   lines: ["Welcome.", "Files here are public.", " 230 users online", "Logged in."],
 * });
 * assert.deepEqual(parser.push("200 OK"), { code: 200, lines: ["OK"] });
 * ```
 */
export class ReplyParser {
  #code: string | undefined;
  #lines: string[] = [];

  /**
   * Take the next line (without its line end).
   *
   * @returns The reply this line completes, or `undefined` if more lines are needed.
   * @throws {FtpProtocolError} If a reply should start here and this line is not one.
   */
  push(line: string): FtpReply | undefined {
    if (this.#code === undefined) {
      const start = /^([1-5]\d\d)([ -]|$)/.exec(line);
      if (!start) {
        throw new FtpProtocolError(
          `the server sent a line that is not an FTP reply: ${JSON.stringify(line.slice(0, 80))}`,
        );
      }
      if (start[2] !== "-") return { code: Number(start[1]), lines: [line.slice(4)] };
      this.#code = start[1];
      this.#lines = [line.slice(4)];
      return undefined;
    }
    const code = this.#code;
    if (line.startsWith(code) && (line.length === 3 || line[3] === " ")) {
      const reply = { code: Number(code), lines: [...this.#lines, line.slice(4)] };
      this.#code = undefined;
      this.#lines = [];
      return reply;
    }
    // Some servers repeat "xyz-" on every line of a long reply: not text.
    this.#lines.push(line.startsWith(`${code}-`) ? line.slice(4) : line);
    return undefined;
  }
}

/** Options for {@linkcode readReply}. */
export interface ReadReplyOptions {
  /** The longest reply line accepted, in bytes. @default {8192} */
  maxLineLength?: number;
  /** The most lines one reply may have. @default {1000} */
  maxLines?: number;
}

/**
 * Read one whole reply from the control connection.
 *
 * @param reader The control connection's reader (the only reader of it).
 * @param options Caps on the reply's size.
 * @returns The reply, or `null` if the connection ended cleanly before it began.
 * @throws {FtpProtocolError} For a line that is not a reply, an overlong line
 *   or reply, or a connection that ends in the middle of one.
 */
export async function readReply(
  reader: BufferedReader,
  options: ReadReplyOptions = {},
): Promise<FtpReply | null> {
  const { maxLineLength = MAX_REPLY_LINE, maxLines = MAX_REPLY_LINES } = options;
  const parser = new ReplyParser();
  for (let count = 0; count < maxLines; count++) {
    let bytes;
    try {
      bytes = await reader.readLine({ maxLength: maxLineLength });
    } catch (error) {
      if (!(error instanceof FrameTooLargeError)) throw error;
      throw new FtpProtocolError(`the server sent a reply line over ${maxLineLength} bytes`);
    }
    if (bytes === null) {
      if (count === 0) return null;
      throw new FtpProtocolError("the server closed the connection in the middle of a reply");
    }
    const reply = parser.push(decoder.decode(bytes));
    if (reply) return reply;
  }
  throw new FtpProtocolError(`the server sent a reply of more than ${maxLines} lines`);
}

/**
 * A reply that says the command did not work: the server's own words, and
 * whether trying again later may help (4yz) or not (5yz).
 */
export class FtpError extends Error {
  /** The reply. */
  readonly reply: FtpReply;
  /** The command it answered (a password shown as `****`). */
  readonly command: string;

  /**
   * @param command The command, as sent.
   * @param reply The server's reply.
   * @param expected What a success would have been, for an unexpected 1yz-3yz.
   */
  constructor(command: string, reply: FtpReply, expected?: string) {
    const why = reply.code >= 500
      ? "a permanent failure (5yz): repeating it as it is will not help"
      : reply.code >= 400
      ? "a transient failure (4yz): the same command may work later"
      : `expected ${expected ?? "success"}`;
    super(
      `${hidePassword(command)}: the server answered "${reply.code} ${replyText(reply)}", ` +
        why + hintFor(reply),
    );
    this.name = "FtpError";
    this.reply = reply;
    this.command = hidePassword(command);
  }

  /** The reply's code. */
  get code(): number {
    return this.reply.code;
  }

  /** Whether the failure is transient (4yz): the same command may work later. */
  get transient(): boolean {
    return this.reply.code >= 400 && this.reply.code < 500;
  }
}

// Some replies deserve a word on what to do about them.
function hintFor(reply: FtpReply): string {
  const text = replyText(reply);
  if (/session reuse/i.test(text)) {
    return ". The server wants the data connection's TLS to resume the control " +
      "connection's session (vsftpd: require_ssl_reuse=YES, its default); Deno cannot " +
      "resume TLS sessions, so that server needs require_ssl_reuse=NO";
  }
  if (reply.code === 421) return ". The server closed the connection";
  return "";
}

function hidePassword(command: string): string {
  return /^PASS /i.test(command) ? "PASS ****" : command;
}

// ---------------------------------------------------------------------------
// Command arguments: one line each, so no line ends inside
//
// A command is a line ending in CRLF. A file name holding "\r\n" would end
// the command early and start another: `get "x\r\nDELE important"` would
// delete a file. So any argument with CR, LF or NUL is refused before anything
// is sent (RFC 959 names have no way to carry them; RFC 2640 §3.1 says so).
// ---------------------------------------------------------------------------

/**
 * Refuse a path or name that could smuggle a second command.
 *
 * @param value The argument.
 * @param what What it is, for the message.
 * @returns `value`, unchanged.
 * @throws {TypeError} If it holds CR, LF or NUL.
 *
 * @example
 * ```ts
 * import { checkArgument } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(checkArgument("my file.txt"), "my file.txt");
 * assert.throws(() => checkArgument("x\r\nDELE keep.txt"), /command injection/);
 * ```
 */
export function checkArgument(value: string, what = "a path"): string {
  if (/[\r\n\0]/.test(value)) {
    throw new TypeError(
      `refusing ${what} holding CR, LF or NUL (${JSON.stringify(value)}): it would end ` +
        "the command early and start another one (command injection)",
    );
  }
  return value;
}

// ---------------------------------------------------------------------------
// Where to connect for data
//
// EPSV (RFC 2428) answers "229 Entering Extended Passive Mode (|||6446|)":
// only a port, to be reached on the host the control connection goes to.
// PASV (RFC 959) answers "227 Entering Passive Mode (h1,h2,h3,h4,p1,p2)" with
// an address too, and a server's idea of its own address is often wrong (a
// private address behind NAT), or malicious: a PASV reply naming another host
// would turn the client into a port scanner for the server (RFC 2577's "bounce
// attack", the other way round). So the address is read, and ignored.
// RFC 1123 §4.1.2.6: the 227 text varies, so scan for the six numbers.
// ---------------------------------------------------------------------------

/**
 * The port in an EPSV reply's text: `(|||port|)`, where `|` may be any
 * delimiter the server chose.
 *
 * @throws {FtpProtocolError} If there is no such port.
 *
 * @example
 * ```ts
 * import { parseEpsv } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseEpsv("Entering Extended Passive Mode (|||6446|)"), 6446);
 * assert.equal(parseEpsv("ok (!!!2121!)"), 2121);
 * ```
 */
export function parseEpsv(text: string): number {
  const match = /\(([\x21-\x7e])\1\1(\d{1,5})\1\)/.exec(text);
  const port = Number(match?.[2]);
  if (!match || port < 1 || port > 65535) {
    throw new FtpProtocolError(`no port in the EPSV reply "${text}"`);
  }
  return port;
}

/**
 * The address and port in a PASV reply's text: the first `h1,h2,h3,h4,p1,p2`.
 *
 * @throws {FtpProtocolError} If there are not six numbers up to 255.
 *
 * @example The port is p1 * 256 + p2
 * ```ts
 * import { parsePasv } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parsePasv("Entering Passive Mode (10,0,0,5,195,80)."), {
 *   hostname: "10.0.0.5",
 *   port: 195 * 256 + 80,
 * });
 * ```
 */
export function parsePasv(text: string): { hostname: string; port: number } {
  const match = /(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3}),(\d{1,3})/.exec(text);
  const numbers = match?.slice(1).map(Number) ?? [];
  if (numbers.length !== 6 || numbers.some((n) => n > 255)) {
    throw new FtpProtocolError(`no address in the PASV reply "${text}"`);
  }
  const port = numbers[4] * 256 + numbers[5];
  if (port === 0) throw new FtpProtocolError(`port 0 in the PASV reply "${text}"`);
  return { hostname: numbers.slice(0, 4).join("."), port };
}

/**
 * The quoted path in a 257 reply (PWD, MKD): `"/a ""quoted"" name" is ...`
 * where a doubled quote stands for one (RFC 959, appendix II).
 *
 * @returns The path, or `undefined` if the text has none.
 *
 * @example
 * ```ts
 * import { parseQuotedPath } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseQuotedPath('"/pub/say ""hi""" is current'), '/pub/say "hi"');
 * ```
 */
export function parseQuotedPath(text: string): string | undefined {
  const match = /"((?:[^"]|"")*)"/.exec(text);
  return match?.[1].replaceAll('""', '"');
}

/**
 * A `YYYYMMDDHHMMSS[.sss]` time, always UTC (RFC 3659 §2.3: MDTM, and MLSD's
 * `modify` fact).
 *
 * @returns The time, or `undefined` if the text is not one.
 *
 * @example
 * ```ts
 * import { parseTimeVal } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseTimeVal("20240229235959.5")?.toISOString(), "2024-02-29T23:59:59.500Z");
 * ```
 */
export function parseTimeVal(text: string): Date | undefined {
  const match = /^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(?:\.(\d{1,3}))?$/.exec(text.trim());
  if (!match) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1, 7).map(Number);
  const ms = match[7] ? Number(match[7].padEnd(3, "0")) : 0;
  // Date.UTC would roll minute 61 into the next hour; RFC 3659 §2.3 allows a
  // leap second (60), which a Date cannot hold: it reads as :59.
  if (hour > 23 || minute > 59 || second > 60) return undefined;
  const date = new Date(Date.UTC(year, month - 1, day, hour, minute, Math.min(second, 59), ms));
  // Date.UTC rolls 31 February into March: such a date is not a date.
  return date.getUTCDate() === day && date.getUTCMonth() === month - 1 ? date : undefined;
}

// ---------------------------------------------------------------------------
// Listings
//
// LIST has no format (RFC 959 says "a list of files"): servers send what
// `ls -l` prints on Unix, or what `dir` printed on DOS and IIS. Both are
// parsed below, by the shape of a line. MLSD (RFC 3659 §7) fixed that with
// machine-readable facts, `type=file;size=12;modify=20240101120000; name`,
// UTC times to the second; where FEAT offers MLST, list() uses it.
// ---------------------------------------------------------------------------

/** One entry of a listing. */
export interface ListEntry {
  /** The name, without any folder. */
  name: string;
  /** What it is. */
  type: "file" | "dir" | "link" | "other";
  /** Its size in bytes, where the listing says (folders and devices may not). */
  size?: number;
  /**
   * When it last changed. MLSD gives UTC to the second; LIST gives the
   * server's local time (read as UTC here) to the minute for recent files and
   * to the day for older ones.
   */
  modified?: Date;
  /** A symbolic link's target (LIST's `name -> target`). */
  target?: string;
  /** Unix permissions as `ls` shows them (`rwxr-xr-x`), where given. */
  permissions?: string;
  /** MLSD's facts, names in lower case. */
  facts?: Record<string, string>;
  /** The line it was parsed from. */
  raw: string;
}

const MONTHS = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"];

// `ls -l`: type, permissions (maybe an ACL mark), links, owner and group (one
// or two words, even numbers), size (or "major, minor" for a device), date,
// name. The size is the last number before the month, which is how the
// owner and group are told from it whatever they hold.
const UNIX_LINE = new RegExp(
  "^([-bcdlps])([-rwxsStTlL]{9})[.+@]?\\s+(\\d+)\\s+(\\S.*?)\\s+(\\d+|\\d+,\\s*\\d+)\\s+" +
    "([A-Za-z]{3})\\s+(\\d{1,2})\\s+(\\d{1,2}:\\d{2}|\\d{4}) (.+)$",
  "s", // "." must match any character of a name, even U+2028
);

/**
 * Parse one line of a Unix-style (`ls -l`) listing.
 *
 * A date with a time and no year is from the last six months (that is when
 * `ls` shows the time): this year, unless that would be in the future.
 *
 * @param line The line, without its line end.
 * @param now The time the listing was made, for the year a date leaves out.
 * @returns The entry, or `undefined` if the line is not one (`total 12`, say).
 *
 * @example
 * ```ts
 * import { parseUnixListLine } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * const line = "lrwxrwxrwx 1 0 0 7 Mar 02  2021 latest -> v1.2.3";
 * const entry = parseUnixListLine(line)!;
 * assert.equal(entry.type, "link");
 * assert.equal(entry.name, "latest");
 * assert.equal(entry.target, "v1.2.3");
 * assert.equal(entry.modified?.toISOString(), "2021-03-02T00:00:00.000Z");
 * ```
 */
export function parseUnixListLine(line: string, now: Date = new Date()): ListEntry | undefined {
  const match = UNIX_LINE.exec(line);
  if (!match) return undefined;
  const [, kind, permissions, , , size, monthName, dayText, timeOrYear, rest] = match;
  const month = MONTHS.indexOf(monthName.toLowerCase());
  const day = Number(dayText);
  if (month === -1 || day < 1 || day > 31) return undefined;

  let modified: Date;
  if (timeOrYear.includes(":")) {
    const [hour, minute] = timeOrYear.split(":").map(Number);
    if (hour > 23 || minute > 59) return undefined;
    modified = new Date(Date.UTC(now.getUTCFullYear(), month, day, hour, minute));
    // A day of slack for time zones: the server's clock is not ours.
    if (modified.getTime() > now.getTime() + 86_400_000) {
      modified = new Date(Date.UTC(now.getUTCFullYear() - 1, month, day, hour, minute));
    }
  } else {
    modified = new Date(Date.UTC(Number(timeOrYear), month, day));
  }

  const type = kind === "-" ? "file" : kind === "d" ? "dir" : kind === "l" ? "link" : "other";
  const entry: ListEntry = { name: rest, type, permissions, modified, raw: line };
  if (!size.includes(",")) entry.size = Number(size);
  if (type === "link") {
    const arrow = rest.indexOf(" -> ");
    if (arrow > 0) {
      entry.name = rest.slice(0, arrow);
      entry.target = rest.slice(arrow + 4);
    }
  }
  return entry;
}

// `dir` on DOS and IIS: "01-31-24  09:05PM       <DIR>          name" or a size.
const DOS_LINE =
  /^(\d{2})-(\d{2})-(\d{2}|\d{4})\s+(\d{1,2}):(\d{2})\s*([AaPp][Mm])?\s+(<DIR>|\d+)\s+(\S.*)$/s;

/**
 * Parse one line of a DOS-style listing (Windows IIS): month-day-year,
 * a 12-hour (or 24-hour) time, `<DIR>` or a size, the name. A two-digit
 * year below 70 is 20yy.
 *
 * @param line The line, without its line end.
 * @returns The entry, or `undefined` if the line is not one.
 *
 * @example
 * ```ts
 * import { parseDosListLine } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * const entry = parseDosListLine("02-29-24  12:05AM                 1234 report 2024.pdf")!;
 * assert.deepEqual(
 *   [entry.type, entry.size, entry.name, entry.modified?.toISOString()],
 *   ["file", 1234, "report 2024.pdf", "2024-02-29T00:05:00.000Z"],
 * );
 * ```
 */
export function parseDosListLine(line: string): ListEntry | undefined {
  const match = DOS_LINE.exec(line);
  if (!match) return undefined;
  const [, monthText, dayText, yearText, hourText, minuteText, half, size, name] = match;
  let year = Number(yearText);
  if (yearText.length === 2) year += year < 70 ? 2000 : 1900;
  const [month, day, minute] = [Number(monthText) - 1, Number(dayText), Number(minuteText)];
  let hour = Number(hourText);
  if (half) {
    if (hour < 1 || hour > 12) return undefined;
    hour = (hour % 12) + (half.toUpperCase() === "PM" ? 12 : 0);
  }
  if (hour > 23 || minute > 59) return undefined;
  const modified = new Date(Date.UTC(year, month, day, hour, minute));
  if (modified.getUTCDate() !== day || modified.getUTCMonth() !== month) return undefined;
  const isDir = size.toUpperCase() === "<DIR>";
  const entry: ListEntry = { name, type: isDir ? "dir" : "file", modified, raw: line };
  if (!isDir) entry.size = Number(size);
  return entry;
}

/**
 * Parse one line of a LIST reply, in whichever format it is: Unix, then DOS.
 *
 * @param line The line, without its line end.
 * @param now The time of the listing (see {@linkcode parseUnixListLine}).
 * @returns The entry, or `undefined` for a line that is neither.
 */
export function parseListLine(line: string, now: Date = new Date()): ListEntry | undefined {
  return parseUnixListLine(line, now) ?? parseDosListLine(line);
}

/**
 * Parse one line of an MLSD reply (RFC 3659 §7.2): facts, each `name=value;`
 * (names in any case, values without `;` or spaces), one space, the name
 * (which may hold anything but a line end, spaces and `;` included).
 *
 * `type` is `file`, `dir`, `cdir` (this folder), `pdir` (its parent), or
 * `OS.name=...`; `OS.unix=slink:TARGET` is a symbolic link.
 *
 * @param line The line, without its line end.
 * @returns The entry, or `undefined` if the line is not one.
 *
 * @example
 * ```ts
 * import { parseMlsdLine } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * const entry = parseMlsdLine("Type=file;Size=42;Modify=20240101120000; a; b.txt")!;
 * assert.deepEqual(
 *   [entry.type, entry.size, entry.name, entry.modified?.toISOString()],
 *   ["file", 42, "a; b.txt", "2024-01-01T12:00:00.000Z"],
 * );
 * ```
 */
export function parseMlsdLine(line: string): ListEntry | undefined {
  const space = line.indexOf(" ");
  if (space === -1 || space === line.length - 1) return undefined;
  const factText = line.slice(0, space);
  if (factText !== "" && !factText.endsWith(";")) return undefined;
  const facts: Record<string, string> = {};
  for (const fact of factText.split(";").slice(0, -1)) {
    const equals = fact.indexOf("=");
    if (equals <= 0) return undefined;
    facts[fact.slice(0, equals).toLowerCase()] = fact.slice(equals + 1);
  }
  const kind = (facts.type ?? "").toLowerCase();
  const type = kind === "file"
    ? "file"
    : ["dir", "cdir", "pdir"].includes(kind)
    ? "dir"
    : /^os\.unix=(slink|symlink)/.test(kind)
    ? "link"
    : "other";
  const entry: ListEntry = { name: line.slice(space + 1), type, facts, raw: line };
  if (/^\d+$/.test(facts.size ?? "")) entry.size = Number(facts.size);
  const modified = facts.modify === undefined ? undefined : parseTimeVal(facts.modify);
  if (modified) entry.modified = modified;
  const target = /^os\.unix=slink:(.+)$/i.exec(facts.type ?? "")?.[1];
  if (target) entry.target = target;
  return entry;
}

// ---------------------------------------------------------------------------
// TYPE A: text with CRLF line ends on the wire (RFC 959 §3.1.1.1)
// ---------------------------------------------------------------------------

/**
 * Turns network text (CRLF line ends) into local text (LF), chunk by chunk:
 * a CR at the end of one chunk waits to see whether an LF starts the next.
 */
export class FromNetworkText {
  #pendingCr = false;

  /** Convert one chunk. */
  push(chunk: Uint8Array): Uint8Array {
    if (chunk.length === 0) return chunk;
    const out = new Uint8Array(chunk.length + 1);
    let length = 0;
    if (this.#pendingCr && chunk[0] !== 0x0a) out[length++] = 0x0d;
    this.#pendingCr = false;
    for (let i = 0; i < chunk.length; i++) {
      if (chunk[i] !== 0x0d) out[length++] = chunk[i];
      else if (i === chunk.length - 1) this.#pendingCr = true;
      else if (chunk[i + 1] !== 0x0a) out[length++] = 0x0d;
    }
    return out.subarray(0, length);
  }

  /** What is left at the end: a lone CR that no LF followed. */
  flush(): Uint8Array {
    const out = this.#pendingCr ? new Uint8Array([0x0d]) : new Uint8Array(0);
    this.#pendingCr = false;
    return out;
  }
}

/** Turns local text (LF) into network text (CRLF), chunk by chunk; an existing CRLF stays. */
export class ToNetworkText {
  #lastWasCr = false;

  /** Convert one chunk. */
  push(chunk: Uint8Array): Uint8Array {
    const out = new Uint8Array(chunk.length * 2);
    let length = 0;
    for (const byte of chunk) {
      if (byte === 0x0a && !this.#lastWasCr) out[length++] = 0x0d;
      out[length++] = byte;
      this.#lastWasCr = byte === 0x0d;
    }
    return out.subarray(0, length);
  }
}

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

/** Options for {@linkcode FtpClient.connect}. */
export interface FtpClientOptions {
  /** The server. @default {"127.0.0.1"} */
  hostname?: string;
  /** Its control port. @default {21} */
  port?: number;
  /** Explicit FTPS: AUTH TLS on connecting, PBSZ 0 and PROT P after login. @default {false} */
  tls?: boolean;
  /** PEM certificates to trust besides the system's (a test CA). @default {undefined} */
  caCerts?: string[];
  /** Give up connecting, or waiting for a reply, after this many ms. @default {30000} */
  timeout?: number;
  /** A data connection with no progress for this many ms has stalled. @default {30000} */
  dataTimeout?: number;
  /** Skip EPSV and use PASV from the start. @default {false} */
  pasv?: boolean;
  /** Active mode: the server connects to us (EPRT, or PORT if EPRT is refused). @default {false} */
  active?: boolean;
  /** Sees the conversation: `> ` commands, `< ` replies, `# ` what the client does. */
  log?: (line: string) => void;
  /** Aborting closes the connection; whatever was waiting fails. */
  signal?: AbortSignal;
}

/** Options for {@linkcode FtpClient.prototype.download} and `upload`. */
export interface TransferOptions {
  /** Start this many bytes into the remote file (REST; downloads only). @default {0} */
  offset?: number;
  /** TYPE A, converting line ends; TYPE I (bytes as they are) otherwise. @default {false} */
  ascii?: boolean;
  /** Sees the bytes moved so far, after each chunk. */
  onProgress?: (bytes: number) => void;
}

/**
 * One FTP session: a control connection, and a data connection per transfer.
 *
 * Commands go one at a time, as the protocol requires: each waits for its
 * reply before the next is sent. Every method throws {@linkcode FtpError}
 * with the server's own words when a reply says no.
 *
 * @example
 * ```ts ignore
 * const client = await FtpClient.connect({ hostname: "127.0.0.1", port: 2121 });
 * await client.login(); // anonymous
 * for (const entry of await client.list("pub")) console.log(entry.name);
 * await client.quit();
 * ```
 */
export class FtpClient {
  #conn: Deno.Conn;
  #reader: BufferedReader;
  #tcp: Deno.TcpConn;
  #hostname: string;
  #caCerts?: string[];
  #timeout: number;
  #dataTimeout: number;
  #log: (line: string) => void;
  #signal?: AbortSignal;
  #onAbort = () => this.close();
  #epsv: boolean;
  #active: boolean;
  #eprt = true;
  #protected = false;
  #type?: "A" | "I";
  #features?: Map<string, string>;
  #busy = false;
  #closed = false;
  /** The server's greeting (220). */
  greeting: FtpReply = { code: 0, lines: [] };

  private constructor(conn: Deno.TcpConn, options: FtpClientOptions) {
    this.#tcp = conn;
    this.#conn = conn;
    this.#reader = new BufferedReader(conn);
    this.#hostname = options.hostname ?? "127.0.0.1";
    this.#caCerts = options.caCerts;
    this.#timeout = options.timeout ?? 30_000;
    this.#dataTimeout = options.dataTimeout ?? 30_000;
    this.#log = options.log ?? (() => {});
    this.#epsv = !options.pasv;
    this.#active = options.active ?? false;
    this.#signal = options.signal;
    this.#signal?.addEventListener("abort", this.#onAbort, { once: true });
  }

  /**
   * Connect, read the greeting, and with `tls` switch the control connection
   * to TLS (AUTH TLS) before anything else is said.
   *
   * @param options Where, how long to wait, TLS, the transcript.
   * @returns The client, ready for {@linkcode FtpClient.prototype.login}.
   * @throws {Error} If the connection fails (the cause says why), or {@linkcode FtpError}
   *   if the server turns us away (421) or refuses TLS.
   */
  static async connect(options: FtpClientOptions = {}): Promise<FtpClient> {
    const { hostname = "127.0.0.1", port = DEFAULT_PORT, timeout = 30_000, signal } = options;
    signal?.throwIfAborted();
    let conn: Deno.TcpConn;
    try {
      conn = await connectWithin(hostname, port, timeout, signal);
    } catch (error) {
      throw new Error(`cannot connect to ftp://${formatHost(hostname)}:${port}`, { cause: error });
    }
    const client = new FtpClient(conn, { ...options, hostname });
    client.#log(`# control connection to ${formatAddress(conn.remoteAddr)}`);
    try {
      // 120 means "ready in a while": a 220 follows. 421: not now.
      let greeting = await client.#nextReply(timeout);
      if (greeting.code === 120) greeting = await client.#nextReply(timeout);
      if (greeting.code !== 220) throw new FtpError("(connecting)", greeting, "220");
      client.greeting = greeting;
      if (options.tls) await client.#startTls();
    } catch (error) {
      client.close();
      throw error;
    }
    return client;
  }

  // AUTH TLS (RFC 4217 §4): "234", then a TLS handshake on the same TCP
  // connection, the server's certificate checked against the host name.
  // Anything the server sent after its 234 and before the handshake would be
  // plaintext posing as part of the secure session (an injection, as in
  // CVE-2011-0411 for STARTTLS), so it is refused.
  async #startTls(): Promise<void> {
    await this.#expect("AUTH TLS", [234]);
    if (this.#reader.buffered > 0) {
      throw new FtpProtocolError("the server sent bytes after 234 and before the TLS handshake");
    }
    this.#log("# TLS handshake on the control connection");
    const tlsConn = await Deno.startTls(this.#tcp, {
      hostname: this.#hostname,
      caCerts: this.#caCerts,
    });
    this.#conn = tlsConn;
    this.#reader = new BufferedReader(tlsConn);
    try {
      await this.#within(tlsConn.handshake(), this.#timeout, "TLS handshake");
    } catch (error) {
      // A certificate from a private CA fails here unless caCerts (--ca) has that CA.
      throw new Error(`TLS with ${this.#hostname} failed (a private CA needs --ca)`, {
        cause: error,
      });
    }
  }

  /** Whether the control connection is encrypted. */
  get secure(): boolean {
    return this.#conn !== this.#tcp;
  }

  /** What FEAT said, once {@linkcode FtpClient.prototype.features} has asked. */
  get featureList(): ReadonlyMap<string, string> | undefined {
    return this.#features;
  }

  /**
   * Log in: USER, and PASS when the server asks for it (331). Under TLS, then
   * PBSZ 0 and PROT P, so data connections are encrypted too.
   *
   * @param user The user name; `anonymous` is the public guest (RFC 1635).
   * @param password The password; by convention, an e-mail address for anonymous.
   * @throws {FtpError} If the server refuses (530).
   */
  async login(user = "anonymous", password = "anonymous@"): Promise<void> {
    checkArgument(user, "a user name");
    checkArgument(password, "a password");
    return await this.#exclusive(async () => {
      let reply = await this.#send(`USER ${user}`);
      if (reply.code === 331) reply = await this.#send(`PASS ${password}`);
      if (reply.code === 332) {
        throw new FtpError("PASS ****", reply, "230 (this client sends no ACCT)");
      }
      if (reply.code !== 230 && reply.code !== 202) {
        throw new FtpError(reply.code === 530 ? "USER/PASS" : "PASS ****", reply, "230");
      }
      if (this.secure) {
        // RFC 4217 §9: no buffering layer (PBSZ 0), then Private data (PROT P).
        await this.#expect("PBSZ 0", [200]);
        await this.#expect("PROT P", [200]);
        this.#protected = true;
      }
    });
  }

  /**
   * Ask what the server supports (FEAT, RFC 2389), once; if it speaks UTF-8,
   * say we do too (OPTS UTF8 ON, RFC 2640).
   *
   * @returns Feature names (upper case) and their parameters (MLST's facts,
   *   REST's STREAM, ...); empty if the server has no FEAT.
   */
  async features(): Promise<ReadonlyMap<string, string>> {
    return await this.#exclusive(async () => {
      if (this.#features) return this.#features;
      const reply = await this.#send("FEAT");
      const features = new Map<string, string>();
      if (reply.code === 211) {
        // The first and last lines are prose; each line between is a feature.
        for (const line of reply.lines.slice(1, -1)) {
          const [name, ...parameters] = line.trim().split(" ");
          if (name) features.set(name.toUpperCase(), parameters.join(" "));
        }
      } else if (reply.code < 500) {
        throw new FtpError("FEAT", reply, "211");
      }
      this.#features = features;
      if (features.has("UTF8")) await this.#send("OPTS UTF8 ON"); // any answer will do
      return features;
    });
  }

  /** The server's system type (SYST, 215), such as `UNIX Type: L8`. */
  async system(): Promise<string> {
    return await this.#exclusive(async () => replyText(await this.#expect("SYST", [215])));
  }

  /** The current folder (PWD, 257). */
  async pwd(): Promise<string> {
    return await this.#exclusive(async () => {
      const reply = await this.#expect("PWD", [257]);
      const path = parseQuotedPath(replyText(reply));
      if (path === undefined) throw new FtpProtocolError(`no path in "${replyText(reply)}"`);
      return path;
    });
  }

  /** Change folder (CWD). */
  async cwd(path: string): Promise<void> {
    return await this.#simple(`CWD ${checkArgument(path)}`, [250, 200]);
  }

  /** Go up one folder (CDUP). */
  async cdup(): Promise<void> {
    return await this.#simple("CDUP", [200, 250]);
  }

  /** Switch the transfer type: `A` (text, CRLF on the wire) or `I` (image: bytes). */
  async type(type: "A" | "I"): Promise<void> {
    return await this.#exclusive(() => this.#setType(type));
  }

  /**
   * A file's size in bytes (SIZE, RFC 3659 §4), in TYPE I: in TYPE A the
   * size would depend on the line ends, and many servers refuse it then.
   */
  async size(path: string): Promise<number> {
    checkArgument(path);
    return await this.#exclusive(async () => {
      await this.#setType("I");
      const reply = await this.#expect(`SIZE ${path}`, [213]);
      const size = Number(replyText(reply));
      if (!Number.isSafeInteger(size) || size < 0) {
        throw new FtpProtocolError(`SIZE answered "${replyText(reply)}", not a size`);
      }
      return size;
    });
  }

  /** A file's modification time (MDTM, RFC 3659 §3), UTC. */
  async modified(path: string): Promise<Date> {
    checkArgument(path);
    return await this.#exclusive(async () => {
      const reply = await this.#expect(`MDTM ${path}`, [213]);
      const date = parseTimeVal(replyText(reply));
      if (!date) throw new FtpProtocolError(`MDTM answered "${replyText(reply)}", not a time`);
      return date;
    });
  }

  /** Delete a file (DELE). */
  async delete(path: string): Promise<void> {
    return await this.#simple(`DELE ${checkArgument(path)}`, [250, 200]);
  }

  /** Make a folder (MKD); returns its path as the server names it. */
  async mkdir(path: string): Promise<string> {
    checkArgument(path);
    return await this.#exclusive(async () => {
      const reply = await this.#expect(`MKD ${path}`, [257, 250]);
      return parseQuotedPath(replyText(reply)) ?? path;
    });
  }

  /** Remove an empty folder (RMD). */
  async rmdir(path: string): Promise<void> {
    return await this.#simple(`RMD ${checkArgument(path)}`, [250, 200]);
  }

  /** Rename: RNFR names the file (350, "go on"), RNTO its new name. */
  async rename(from: string, to: string): Promise<void> {
    checkArgument(from);
    checkArgument(to);
    return await this.#exclusive(async () => {
      await this.#expect(`RNFR ${from}`, [350]);
      await this.#expect(`RNTO ${to}`, [250, 200]);
    });
  }

  /** Do nothing, and hear the server say so (NOOP): a keep-alive, or a check. */
  async noop(): Promise<void> {
    return await this.#simple("NOOP", [200]);
  }

  /**
   * Send any command line and return its final reply, whatever its code:
   * the shell's `quote`, and the notebook's experiments. A 1yz reply is
   * logged and followed by the final one.
   */
  async command(line: string): Promise<FtpReply> {
    checkArgument(line, "a command");
    return await this.#exclusive(async () => {
      let reply = await this.#send(line);
      while (reply.code < 200) reply = await this.#nextReply(this.#timeout);
      return reply;
    });
  }

  /**
   * List a folder: MLSD where FEAT offers MLST (exact, UTC), LIST parsed
   * otherwise. `.` and `..` are left out.
   *
   * @param path The folder; the current one if omitted.
   * @param now The time of the listing, for LIST's dates without a year.
   */
  async list(path?: string, now: Date = new Date()): Promise<ListEntry[]> {
    const features = await this.features();
    if (features.has("MLST")) {
      const lines = await this.listLines("MLSD", path);
      return lines.map(parseMlsdLine).filter((entry): entry is ListEntry =>
        entry !== undefined && !["cdir", "pdir"].includes(entry.facts?.type?.toLowerCase() ?? "")
      );
    }
    const lines = await this.listLines("LIST", path);
    return lines.map((line) => parseListLine(line, now)).filter((entry): entry is ListEntry =>
      entry !== undefined && entry.name !== "." && entry.name !== ".."
    );
  }

  /** The names in a folder (NLST): one per line, nothing else. */
  async nlst(path?: string): Promise<string[]> {
    return await this.listLines("NLST", path);
  }

  /**
   * Run a listing command (LIST, NLST or MLSD) and return its lines as sent.
   *
   * @param command The command.
   * @param path Its argument, if any.
   */
  async listLines(command: "LIST" | "NLST" | "MLSD", path?: string): Promise<string[]> {
    if (path !== undefined) checkArgument(path);
    const line = path === undefined || path === "" ? command : `${command} ${path}`;
    return await this.#exclusive(async () => {
      const parts: Uint8Array[] = [];
      let size = 0;
      await this.#transfer(line, (data, progress) =>
        this.#receive(data, progress, {
          write(chunk) {
            size += chunk.length;
            if (size > MAX_LISTING) {
              throw new FtpProtocolError(`a listing over ${MAX_LISTING} bytes`);
            }
            parts.push(chunk.slice());
            return Promise.resolve(chunk.length);
          },
        }));
      const text = decoder.decode(concat(parts));
      return text.split("\n").map((item) => item.replace(/\r$/, "")).filter((item) => item !== "");
    });
  }

  /**
   * Download `path` into `sink`, chunk by chunk (RETR). With `offset`, the
   * server starts that far in (REST, RFC 3659 §5): a resumed download.
   *
   * @param path The remote file.
   * @param sink Where the bytes go: an open file, or anything with `write()`.
   * @param options Offset, type, progress.
   * @returns How many bytes arrived (after any conversion of line ends).
   * @throws {FtpError} If the server refuses (550: no such file) or fails mid-way.
   */
  async download(path: string, sink: Writer, options: TransferOptions = {}): Promise<number> {
    checkArgument(path);
    const { offset = 0, ascii = false, onProgress } = options;
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`offset must be a whole number >= 0, got ${offset}`);
    }
    if (ascii && offset > 0) throw new RangeError("cannot resume a TYPE A (ascii) download");
    return await this.#exclusive(async () => {
      await this.#setType(ascii ? "A" : "I");
      let bytes = 0;
      await this.#transfer(`RETR ${path}`, (data, progress) =>
        this.#receive(data, progress, {
          async write(chunk) {
            for (let offset = 0; offset < chunk.length; offset += DISK_WRITE) {
              await writeAll(sink, chunk.subarray(offset, offset + DISK_WRITE));
            }
            bytes += chunk.length;
            onProgress?.(bytes);
            return chunk.length;
          },
        }, ascii), offset);
      return bytes;
    });
  }

  /**
   * Upload `source` as `path` (STOR), chunk by chunk. Closing the data
   * connection is how the client says "that was all" (stream mode, RFC 959
   * §3.4.1); the server's 226 says it has it.
   *
   * @param path The remote name.
   * @param source Where the bytes come from: an open file, or anything with `read()`.
   * @param options Type, progress.
   * @returns How many bytes were read from `source`.
   */
  async upload(path: string, source: Reader, options: TransferOptions = {}): Promise<number> {
    checkArgument(path);
    const { ascii = false, onProgress } = options;
    if (options.offset) throw new RangeError("this client resumes downloads only");
    return await this.#exclusive(async () => {
      await this.#setType(ascii ? "A" : "I");
      let bytes = 0;
      await this.#transfer(`STOR ${path}`, async (data, progress) => {
        const buffer = new Uint8Array(CHUNK);
        const toNetwork = ascii ? new ToNetworkText() : undefined;
        while (true) {
          const n = await source.read(buffer);
          if (n === null) break;
          if (n === 0) continue;
          const chunk = buffer.subarray(0, n);
          await writeAll(data, toNetwork ? toNetwork.push(chunk) : chunk);
          progress();
          bytes += n;
          onProgress?.(bytes);
        }
      });
      return bytes;
    });
  }

  /** Say goodbye (QUIT, 221) and close. Never throws: the session is over either way. */
  async quit(): Promise<void> {
    if (this.#closed) return;
    try {
      await this.#exclusive(() => this.#send("QUIT", Math.min(this.#timeout, 5000)));
    } catch { /* closing anyway */ }
    this.close();
  }

  /** Close the control connection at once (no QUIT). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#signal?.removeEventListener("abort", this.#onAbort);
    try {
      this.#conn.close();
    } catch { /* already closed */ }
  }

  // -------------------------------------------------------------------------
  // The control connection: one command, then its reply
  // -------------------------------------------------------------------------

  // FTP is a dialogue: a second command sent before the first one's reply
  // would get its replies mixed up with the first's. One at a time.
  async #exclusive<T>(work: () => Promise<T>): Promise<T> {
    if (this.#closed) throw new Error("the FTP connection is closed");
    if (this.#busy) throw new Error("one FTP command at a time: wait for the last one's reply");
    this.#busy = true;
    try {
      return await work();
    } finally {
      this.#busy = false;
    }
  }

  async #simple(line: string, expected: number[]): Promise<void> {
    await this.#exclusive(() => this.#expect(line, expected));
  }

  async #write(line: string): Promise<void> {
    this.#log(`> ${hidePassword(line)}`);
    try {
      await writeAll(this.#conn, encoder.encode(`${line}\r\n`));
    } catch (error) {
      this.close();
      throw new Error("the control connection failed while sending a command", { cause: error });
    }
  }

  // Send a command and read one reply (which may be a 1yz, followed by more).
  async #send(line: string, timeout = this.#timeout): Promise<FtpReply> {
    await this.#write(line);
    return await this.#nextReply(timeout, line);
  }

  // Send a command, follow 1yz replies to the final one, and insist on one of `expected`.
  async #expect(line: string, expected: number[]): Promise<FtpReply> {
    let reply = await this.#send(line);
    while (reply.code < 200) reply = await this.#nextReply(this.#timeout, line);
    if (!expected.includes(reply.code)) throw new FtpError(line, reply, expected.join(" or "));
    return reply;
  }

  // Read the next reply, within `timeout` ms (0: no limit; a transfer's final
  // reply may take as long as the transfer).
  async #nextReply(timeout: number, command?: string): Promise<FtpReply> {
    const what = command ? `reply to ${hidePassword(command).split(" ")[0]}` : "greeting";
    let reply: FtpReply | null;
    try {
      const reading = readReply(this.#reader);
      reply = timeout > 0 ? await this.#within(reading, timeout, what) : await reading;
    } catch (error) {
      this.close();
      if (error instanceof FtpProtocolError || isTimeout(error)) throw error;
      if (this.#signal?.aborted) throw this.#signal.reason;
      throw new Error(`the control connection failed while waiting for a ${what}`, {
        cause: error,
      });
    }
    if (reply === null) {
      this.close();
      throw new FtpProtocolError(`the server closed the control connection (no ${what})`);
    }
    const last = reply.lines.length - 1;
    reply.lines.forEach((text, i) =>
      this.#log(
        `< ${
          i === 0 ? `${reply.code}${last > 0 ? "-" : " "}` : i === last ? `${reply.code} ` : ""
        }` +
          text,
      )
    );
    // 421: the server is closing the connection (shutting down, or we idled).
    if (reply.code === 421) this.close();
    return reply;
  }

  // Wait for `promise`, but at most `ms`. A reply that never comes leaves the
  // dialogue in an unknown state, so the connection is closed then too.
  async #within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        reject(new DOMException(`no ${what} within ${ms / 1000} s`, "TimeoutError"));
        this.close();
      }, ms);
    });
    try {
      return await Promise.race([promise, expired]);
    } finally {
      clearTimeout(timer);
    }
  }

  async #setType(type: "A" | "I"): Promise<void> {
    if (this.#type === type) return;
    await this.#expect(`TYPE ${type}`, [200]);
    this.#type = type;
  }

  // -------------------------------------------------------------------------
  // The data connection
  // -------------------------------------------------------------------------

  // Passive: ask where to connect (EPSV, or PASV if the server does not know
  // EPSV), and connect there, always to the host of the control connection.
  async #openPassive(): Promise<Deno.TcpConn> {
    const host = this.#tcp.remoteAddr.hostname;
    let port: number | undefined;
    if (this.#epsv) {
      const reply = await this.#send("EPSV");
      if (reply.code === 229) {
        port = parseEpsv(replyText(reply));
      } else if (reply.code >= 500 && reply.code <= 502) {
        this.#epsv = false; // "not understood": PASV from now on
        this.#log("# no EPSV here; trying PASV");
      } else {
        throw new FtpError("EPSV", reply, "229");
      }
    }
    if (port === undefined) {
      const offered = parsePasv(replyText(await this.#expect("PASV", [227])));
      if (offered.hostname !== host) {
        this.#log(`# PASV named ${offered.hostname}; connecting to ${host}, the control host`);
      }
      port = offered.port;
    }
    this.#log(`# data connection to ${formatAddress({ transport: "tcp", hostname: host, port })}`);
    try {
      return await connectWithin(host, port, this.#timeout, this.#signal);
    } catch (error) {
      throw new Error(`cannot open the data connection to port ${port}`, { cause: error });
    }
  }

  // Active: listen on the address the control connection uses, tell the
  // server where (EPRT |1|addr|port| or |2| for IPv6; PORT h1,h2,h3,h4,p1,p2
  // for a server without EPRT), and accept its connection once the transfer
  // command is sent. Behind NAT, the address we name is a private one the
  // server cannot reach: the notebook shows why passive mode took over.
  async #listenActive(): Promise<Deno.TcpListener> {
    const local = this.#tcp.localAddr.hostname;
    const listener = Deno.listen({ hostname: local, port: 0 });
    const { port } = listener.addr;
    try {
      const family = local.includes(":") ? 2 : 1;
      const reply = this.#eprt ? await this.#send(`EPRT |${family}|${local}|${port}|`) : undefined;
      if (reply?.code === 200) return listener;
      if (reply && (reply.code < 500 || reply.code > 502)) throw new FtpError("EPRT", reply, "200");
      if (family === 2) throw new FtpError("EPRT", reply!, "200 (PORT cannot carry IPv6)");
      this.#eprt = false;
      await this.#expect(`PORT ${local.replaceAll(".", ",")},${port >> 8},${port & 255}`, [200]);
      return listener;
    } catch (error) {
      listener.close();
      throw error;
    }
  }

  // Only the server may connect: anyone else who races it to the port (to
  // feed us a forged file, or take an upload: RFC 2577 §8, "port stealing")
  // is hung up on, and we wait on for the server's own address.
  async #accept(listener: Deno.TcpListener): Promise<Deno.TcpConn> {
    const server = this.#tcp.remoteAddr.hostname;
    const fromServer = async () => {
      while (true) {
        const conn = await listener.accept();
        if (conn.remoteAddr.hostname === server) return conn;
        this.#log(
          `# refused a data connection from ${formatAddress(conn.remoteAddr)}: not ${server}`,
        );
        conn.close();
      }
    };
    try {
      return await this.#within(fromServer(), this.#timeout, "data connection from the server");
    } finally {
      listener.close();
    }
  }

  // Under PROT P the data connection speaks TLS too, and we are its TLS
  // client whichever side connected (RFC 4217 §7). A new handshake, not a
  // resumed one: Deno cannot resume TLS sessions (see the notebook).
  async #secure(conn: Deno.TcpConn): Promise<Deno.Conn> {
    if (!this.#protected) return conn;
    return await Deno.startTls(conn, { hostname: this.#hostname, caCerts: this.#caCerts });
  }

  /**
   * One transfer, the FTP way:
   *   1. a data connection (passive: we connect now; active: we listen);
   *   2. REST, if resuming, then the command (RETR, STOR, LIST, ...);
   *   3. a 1yz mark ("150 here it comes"), or a refusal (550, 425, ...);
   *   4. the bytes flow on the data connection, while
   *   5. the final reply (226) is read on the control connection.
   * The transfer is done only when both 4 and 5 are: the 226 may come before
   * the last bytes have been read (the server has handed them to its kernel)
   * or after the data connection closes. If the server fails mid-way (426,
   * 451, 552), the data connection is closed and its words are the error.
   */
  async #transfer(
    command: string,
    move: (data: Deno.Conn, progress: () => void) => Promise<void>,
    offset = 0,
  ): Promise<FtpReply> {
    let tcp: Deno.TcpConn | undefined;
    let listener: Deno.TcpListener | undefined;
    let data: Deno.Conn | undefined;
    const closeData = () => {
      for (const resource of [data, tcp, listener]) {
        try {
          resource?.close();
        } catch { /* already closed */ }
      }
    };
    try {
      if (this.#active) listener = await this.#listenActive();
      else tcp = await this.#openPassive();
      if (offset > 0) await this.#expect(`REST ${offset}`, [350]);

      let reply = await this.#send(command);
      if (reply.code >= 300 || reply.code < 100) throw new FtpError(command, reply, "150");
      if (listener) tcp = await this.#accept(listener);
      data = await this.#secure(tcp!);

      // Both at once: the bytes, and the final reply (no time limit while
      // the bytes still flow: a big file takes as long as it takes).
      const final = reply.code >= 200 ? Promise.resolve(reply) : this.#nextReply(0, command);
      let failed: FtpReply | undefined;
      final.then((r) => {
        if (r.code >= 400) {
          failed = r;
          closeData();
        }
      }, closeData);
      let moveError: unknown;
      try {
        await this.#withStallTimer(data, move);
      } catch (error) {
        moveError = error;
      } finally {
        closeData();
      }
      if (failed) throw new FtpError(command, failed);
      try {
        reply = await this.#within(final, this.#timeout, `reply to ${command.split(" ")[0]}`);
      } catch (error) {
        throw moveError ?? error;
      }
      // Whose words tell what happened? If our side failed (a stall, our
      // disk, our source), that is the cause, and the server's 426 only its
      // echo; if the data connection itself broke, the server says more.
      if (moveError !== undefined && !isConnectionError(moveError)) throw moveError;
      if (reply.code >= 300) throw new FtpError(command, reply, "226");
      if (moveError !== undefined) throw moveError;
      return reply;
    } finally {
      closeData();
    }
  }

  // A data connection that makes no progress for dataTimeout ms has stalled:
  // close it, which ends the read or write that waits on it.
  async #withStallTimer(
    data: Deno.Conn,
    move: (data: Deno.Conn, progress: () => void) => Promise<void>,
  ): Promise<void> {
    let stalled = false;
    const timer = setTimeout(() => {
      stalled = true;
      try {
        data.close();
      } catch { /* already closed */ }
    }, this.#dataTimeout);
    try {
      await move(data, () => timer.refresh());
    } catch (error) {
      if (stalled) throw new DataStallError(this.#dataTimeout);
      if (this.#signal?.aborted) throw this.#signal.reason;
      throw error;
    } finally {
      clearTimeout(timer);
    }
  }

  // Read a data connection to its end into `sink` (a download or a listing).
  // progress() tells the stall timer that bytes moved. Two buffers take
  // turns, so that writing one chunk (to a disk, say) overlaps reading the
  // next from the network, instead of each waiting for the other.
  async #receive(
    data: Deno.Conn,
    progress: () => void,
    sink: Writer,
    ascii = false,
  ): Promise<void> {
    const buffers = [new Uint8Array(CHUNK), new Uint8Array(CHUNK)];
    const fromNetwork = ascii ? new FromNetworkText() : undefined;
    let writing: Promise<unknown> = Promise.resolve();
    try {
      for (let turn = 0;; turn ^= 1) {
        const n = await data.read(buffers[turn]);
        if (n === null) break;
        progress();
        await writing; // the other buffer's chunk is written: it may be read into next
        const chunk = buffers[turn].subarray(0, n);
        writing = sink.write(fromNetwork ? fromNetwork.push(chunk) : chunk);
        // A failed write is thrown by the `await writing` of the next turn;
        // until then, this marks it handled (else it would crash the process).
        writing.catch(() => {});
      }
    } finally {
      await writing.catch(() => {}); // no write still running when this returns
    }
    await writing;
    if (fromNetwork) await sink.write(fromNetwork.flush());
  }
}

/** A data connection that made no progress for too long. */
class DataStallError extends Error {
  constructor(ms: number) {
    super(
      `the data connection stalled: no progress for ${ms / 1000} s; ` +
        "allow longer with --data-timeout",
    );
    this.name = "DataStallError";
  }
}

/** Connect, giving up after `timeout` ms (the signal only covers the connecting). */
async function connectWithin(
  hostname: string,
  port: number,
  timeout: number,
  outer?: AbortSignal,
): Promise<Deno.TcpConn> {
  const controller = new AbortController();
  const timer = setTimeout(
    () =>
      controller.abort(
        new DOMException(`no connection within ${timeout / 1000} s`, "TimeoutError"),
      ),
    timeout,
  );
  const onAbort = () => controller.abort(outer!.reason);
  outer?.addEventListener("abort", onAbort, { once: true });
  try {
    return await Deno.connect({ hostname, port, signal: controller.signal });
  } catch (error) {
    if (controller.signal.aborted) throw controller.signal.reason;
    throw error;
  } finally {
    clearTimeout(timer);
    outer?.removeEventListener("abort", onAbort);
  }
}

// Errors of a connection that broke under us (as opposed to our own side failing).
function isConnectionError(error: unknown): boolean {
  const { errors } = Deno;
  return [
    errors.ConnectionReset,
    errors.ConnectionAborted,
    errors.BrokenPipe,
    errors.BadResource,
    errors.Interrupted,
    errors.UnexpectedEof,
    errors.InvalidData, // TLS
  ].some((kind) => error instanceof kind);
}

function isTimeout(error: unknown): boolean {
  return error instanceof Error && error.name === "TimeoutError" ||
    error instanceof DOMException && error.name === "TimeoutError";
}

function formatHost(hostname: string): string {
  return hostname.includes(":") ? `[${hostname}]` : hostname;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

// ---------------------------------------------------------------------------
// Progress: a redrawn bar with rate and time left on a terminal; on anything
// else (a log, a pipe) a plain line at each quarter, and no `\r`.
// ---------------------------------------------------------------------------

/**
 * A progress report for a transfer of `total` bytes (`undefined` when the
 * server would not say: then no bar, no ETA, just bytes and rate).
 *
 * @param total The size, if known.
 * @param write Where the text goes (stderr, so stdout stays the data's).
 * @param tty Whether `write` reaches a terminal that can redraw a line.
 * @returns Call it with the bytes so far; `done` ends the line.
 */
export function progressMeter(
  total: number | undefined,
  write: (text: string) => void,
  tty: boolean,
): (bytes: number, done?: boolean) => void {
  const start = performance.now();
  let lastDraw = -Infinity;
  let lastQuarter = 0;
  return (bytes, done = false) => {
    const now = performance.now();
    if (tty && !done && now - lastDraw < 100) return; // ten redraws a second is plenty
    lastDraw = now;
    const seconds = (now - start) / 1000;
    const rate = seconds > 0 ? bytes / seconds : 0;
    const mib = (n: number) => (n / 1048576).toFixed(1);
    let text = `${mib(bytes)} MiB, ${mib(rate)} MiB/s`;
    let bar = "";
    if (total !== undefined) {
      const fraction = total === 0 ? 1 : Math.min(1, bytes / total);
      const eta = rate > 0 ? (total - bytes) / rate : 0;
      text = `${(fraction * 100).toFixed(0).padStart(3)}% ${mib(bytes)}/${mib(total)} MiB, ` +
        `${mib(rate)} MiB/s, ETA ${done ? 0 : eta.toFixed(0)} s`;
      bar = `[${"#".repeat(Math.round(fraction * 30)).padEnd(30, ".")}] `;
      const quarter = Math.floor(fraction * 4);
      if (!tty && !done && (quarter <= lastQuarter || quarter === 4)) return;
      lastQuarter = quarter;
    } else if (!tty && !done) {
      return;
    }
    write(tty ? `\r${bar}${text}${done ? "\n" : ""}` : `${text}\n`);
  };
}

// ---------------------------------------------------------------------------
// The password: never on the command line
//
// Anything on a command line is visible to every user of the machine (`ps`)
// and stays in the shell's history. So: the FTP_PASSWORD environment
// variable, if the script may read it, or a prompt that does not echo.
// ---------------------------------------------------------------------------

async function askPassword(user: string): Promise<string> {
  const status = await Deno.permissions.query({ name: "env", variable: "FTP_PASSWORD" });
  const fromEnv = status.state === "granted" ? Deno.env.get("FTP_PASSWORD") : undefined;
  if (fromEnv !== undefined) return fromEnv;
  if (!Deno.stdin.isTerminal()) {
    throw new Error(
      `${user} needs a password: set FTP_PASSWORD and add --allow-env=FTP_PASSWORD ` +
        "(or run in a terminal to be asked)",
    );
  }
  // Raw mode: keys arrive one by one and are not echoed.
  Deno.stderr.writeSync(encoder.encode(`password for ${user}: `));
  Deno.stdin.setRaw(true);
  const typed: number[] = [];
  try {
    const buffer = new Uint8Array(64);
    reading: while (true) {
      const n = await Deno.stdin.read(buffer);
      if (n === null) break;
      for (const byte of buffer.subarray(0, n)) {
        if (byte === 0x0d || byte === 0x0a) break reading;
        if (byte === 0x03) throw new Error("cancelled"); // Ctrl-C
        if (byte === 0x7f || byte === 0x08) typed.pop();
        else typed.push(byte);
      }
    }
  } finally {
    Deno.stdin.setRaw(false);
    Deno.stderr.writeSync(encoder.encode("\n"));
  }
  return decoder.decode(new Uint8Array(typed));
}

// ---------------------------------------------------------------------------
// Where: --host/--port/--user, or a URL
// ---------------------------------------------------------------------------

/** A server and a path, from a URL or the flags. */
export interface FtpLocation {
  hostname: string;
  port: number;
  user: string;
  /** The remote path, percent-decoded (`""` for the login folder). */
  path: string;
}

/**
 * Read `ftp://[USER@]HOST[:PORT]/PATH` (RFC 1738 §3.2). The path is relative
 * to the folder the login lands in, as curl and browsers read it; `%2F`
 * makes it absolute (`ftp://host/%2Fetc`). A password in the URL is refused:
 * it would show in `ps` and the shell's history.
 *
 * @throws {UsageError} If it is not such a URL, or holds a password.
 *
 * @example
 * ```ts
 * import { parseFtpUrl } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(parseFtpUrl("ftp://alice@[::1]:2121/pub/my%20file.txt"), {
 *   hostname: "::1",
 *   port: 2121,
 *   user: "alice",
 *   path: "pub/my file.txt",
 * });
 * ```
 */
export function parseFtpUrl(text: string): FtpLocation {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(`"${text}" is not a URL`);
  }
  if (url.protocol !== "ftp:") {
    throw new UsageError(`"${text}" is not an ftp:// URL (for FTPS, use ftp:// and --tls)`);
  }
  if (url.password) {
    throw new UsageError(
      "a password in the URL would show in ps and your shell's history; " +
        "set FTP_PASSWORD (with --allow-env=FTP_PASSWORD), or let the prompt ask",
    );
  }
  let path: string;
  try {
    path = decodeURIComponent(url.pathname.replace(/^\//, ""));
  } catch {
    throw new UsageError(`the path in "${text}" is not valid percent-encoding`);
  }
  return {
    hostname: url.hostname.replace(/^\[(.*)\]$/, "$1"),
    port: url.port === "" ? DEFAULT_PORT : Number(url.port),
    user: url.username ? decodeURIComponent(url.username) : "anonymous",
    path,
  };
}

/**
 * Split a shell line into words: spaces separate, and "double" or 'single'
 * quotes keep a name with spaces whole.
 *
 * @example
 * ```ts
 * import { splitWords } from "./ftp_client.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual(splitWords(`put "my file.txt" 'their file'`), ["put", "my file.txt", "their file"]);
 * ```
 */
export function splitWords(line: string): string[] {
  const words: string[] = [];
  for (const match of line.matchAll(/"([^"]*)"|'([^']*)'|(\S+)/g)) {
    words.push(match[1] ?? match[2] ?? match[3]);
  }
  return words;
}

// ---------------------------------------------------------------------------
// The commands, shared by the command line and the shell
// ---------------------------------------------------------------------------

/** How a listing is shown: type, size, time (UTC), name. */
export function formatEntry(entry: ListEntry): string {
  const type = { file: "-", dir: "d", link: "l", other: "?" }[entry.type];
  const size = entry.size === undefined ? "-" : entry.size.toLocaleString("en-US");
  const when = entry.modified?.toISOString().slice(0, 16).replace("T", " ") ?? "";
  const name = entry.name + (entry.type === "dir" ? "/" : "") +
    (entry.target ? ` -> ${entry.target}` : "");
  return `${type} ${size.padStart(15)}  ${when.padEnd(16)}  ${name}`;
}

function baseName(path: string): string {
  return path.replace(/\/+$/, "").split("/").pop() || path;
}

function printRaw(text: string): void {
  Deno.stderr.writeSync(encoder.encode(text));
}

interface Settings {
  ascii: boolean;
  resume: boolean;
  raw: boolean;
}

// get: into LOCAL.part beside LOCAL, renamed when whole. An interrupted
// download leaves LOCAL.part; --resume continues it from its size (REST).
async function getFile(
  client: FtpClient,
  remote: string,
  local: string | undefined,
  settings: Settings,
): Promise<void> {
  let target = local ?? baseName(remote);
  if (target === "-") {
    const bytes = await client.download(remote, Deno.stdout, { ascii: settings.ascii });
    console.error(`got ${remote} (${bytes} bytes) to stdout`);
    return;
  }
  const info = await statIfThere(target);
  if (info?.isDirectory) target = `${target.replace(/\/+$/, "")}/${baseName(remote)}`;
  const part = `${target}.part`;

  let offset = 0;
  if (settings.resume) {
    offset = (await statIfThere(part))?.size ?? 0;
  }
  const total = settings.ascii ? undefined : await client.size(remote).catch(() => undefined);
  if (total !== undefined && offset > total) {
    throw new Error(`${part} (${offset} bytes) is longer than ${remote} (${total} bytes)`);
  }
  const file = await Deno.open(part, { write: true, create: true, truncate: offset === 0 });
  let got = 0; // bytes that arrived this time, counted as they are written
  let seconds = 0; // the transfer's own time (not the fsync, nor the connecting)
  try {
    await file.seek(offset, Deno.SeekMode.Start);
    const report = progressMeter(total, printRaw, Deno.stderr.isTerminal());
    if (offset > 0) console.error(`resuming ${remote} at byte ${offset}`);
    if (total === undefined || offset < total) {
      const started = performance.now();
      await client.download(remote, file, {
        offset,
        ascii: settings.ascii,
        onProgress: (bytes) => report(offset + (got = bytes)),
      });
      seconds = (performance.now() - started) / 1000;
    }
    report(offset + got, true);
    await file.syncData();
  } catch (error) {
    file.close();
    if (offset + got === 0) await Deno.remove(part).catch(() => {});
    const kept = offset + got > 0 ? `; ${part} keeps what arrived: add --resume to go on` : "";
    throw new Error(`the download of ${remote} stopped${kept}`, { cause: error });
  }
  file.close();
  if (total !== undefined && offset + got !== total) {
    throw new Error(
      `${remote} is ${total} bytes but ${offset + got} arrived; ${part} is kept (--resume)`,
    );
  }
  await Deno.rename(part, target);
  console.log(`got ${remote} -> ${target} (${offset + got} bytes${rate(got, seconds)})`);
}

// Deno.stat(), or undefined where nothing is there. A missing permission
// still throws: swallowed, it would turn into a wrong guess about the path.
async function statIfThere(path: string): Promise<Deno.FileInfo | undefined> {
  try {
    return await Deno.stat(path);
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) return undefined;
    throw error;
  }
}

async function putFile(
  client: FtpClient,
  local: string,
  remote: string | undefined,
  settings: Settings,
): Promise<void> {
  // A remote name that is empty (ftp://host/) or ends in "/" names a folder:
  // the file goes into it under its own name, as with curl -T.
  let target = remote ?? "";
  if (target === "" || target.endsWith("/")) target += baseName(local);
  const file = await Deno.open(local);
  try {
    const { size } = await file.stat();
    const report = progressMeter(size, printRaw, Deno.stderr.isTerminal());
    const started = performance.now();
    const sent = await client.upload(target, file, { ascii: settings.ascii, onProgress: report });
    const seconds = (performance.now() - started) / 1000;
    report(sent, true);
    console.log(`put ${local} -> ${target} (${sent} bytes${rate(sent, seconds)})`);
  } finally {
    file.close();
  }
}

// The rate of the transfer itself: from the data connection's opening to
// the 226, as curl's own rate counts it (not the program's start-up).
function rate(bytes: number, seconds: number): string {
  if (bytes < 1048576 || seconds <= 0) return "";
  return `, ${(bytes / 1048576 / seconds).toFixed(1)} MiB/s`;
}

async function listFolder(client: FtpClient, path: string | undefined, settings: Settings) {
  if (settings.raw) {
    for (const line of await client.listLines("LIST", path)) console.log(line);
    return;
  }
  for (const entry of await client.list(path)) console.log(formatEntry(entry));
}

async function showSize(client: FtpClient, path: string): Promise<void> {
  const size = await client.size(path);
  const modified = await client.modified(path).catch(() => undefined);
  console.log(
    `${path}: ${size} bytes` + (modified ? `, modified ${modified.toISOString()}` : ""),
  );
}

// ---------------------------------------------------------------------------
// The shell: the same commands, read line by line from stdin
// ---------------------------------------------------------------------------

const SHELL_HELP = `commands: ls [PATH], dir [PATH], nlst [PATH], cd PATH, cdup, pwd,
  get REMOTE [LOCAL], put LOCAL [REMOTE], rm PATH, mkdir PATH, rmdir PATH, mv FROM TO,
  size PATH, ascii, binary, syst, feat, noop, quote LINE, help, quit (or bye, exit)`;

// Each command's usage, and how many words may follow its name: [min, max].
const SHELL_COMMANDS: Record<string, [string, number, number]> = {
  ls: ["ls [PATH]", 0, 1],
  dir: ["dir [PATH]", 0, 1],
  nlst: ["nlst [PATH]", 0, 1],
  cd: ["cd PATH", 1, 1],
  cdup: ["cdup", 0, 0],
  pwd: ["pwd", 0, 0],
  get: ["get REMOTE [LOCAL]", 1, 2],
  put: ["put LOCAL [REMOTE]", 1, 2],
  rm: ["rm PATH", 1, 1],
  mkdir: ["mkdir PATH", 1, 1],
  rmdir: ["rmdir PATH", 1, 1],
  mv: ["mv FROM TO", 2, 2],
  size: ["size PATH", 1, 1],
  ascii: ["ascii", 0, 0],
  binary: ["binary", 0, 0],
  syst: ["syst", 0, 0],
  feat: ["feat", 0, 0],
  noop: ["noop", 0, 0],
  quote: ["quote LINE", 1, Infinity], // the rest of the line, as it is
  help: ["help", 0, 0],
};

async function shell(client: FtpClient, settings: Settings): Promise<void> {
  const tty = Deno.stdin.isTerminal();
  const input = new BufferedReader(Deno.stdin);
  const prompt = () => tty && Deno.stdout.writeSync(encoder.encode("ftp> "));
  if (tty) console.log(`connected; "help" lists the commands`);
  prompt();
  for (let line = await input.readLine(); line !== null; line = await input.readLine()) {
    const text = decoder.decode(line).trim();
    const [verb, ...words] = splitWords(text);
    if (verb === "quit" || verb === "bye" || verb === "exit") break;
    try {
      if (verb !== undefined) await shellCommand(client, settings, verb, words, text);
    } catch (error) {
      if (!sessionGoesOn(error)) throw error;
      console.log(`error: ${describeError(error)}`);
    }
    prompt();
  }
}

// A refusal (550 and the like) is part of a session, and so is a local file
// that cannot be read or written, or a mistyped command: say so, and read
// the next one. A lost connection, a timeout or a 421 (the server is
// closing) ends it. The cause may be wrapped ("the download of x stopped").
function sessionGoesOn(error: unknown): boolean {
  const { errors } = Deno;
  const local = [
    errors.NotFound,
    errors.AlreadyExists,
    errors.IsADirectory,
    errors.NotADirectory,
    errors.PermissionDenied,
    errors.NotCapable,
  ];
  for (let cause = error; cause instanceof Error; cause = cause.cause) {
    if (cause instanceof FtpError) return cause.code !== 421;
    if (cause instanceof TypeError || local.some((kind) => cause instanceof kind)) return true;
  }
  return false;
}

async function shellCommand(
  client: FtpClient,
  settings: Settings,
  verb: string,
  words: string[],
  text: string,
): Promise<void> {
  // Too few words or too many is a usage error, before anything is sent:
  // `rm a b` must not delete a and forget b.
  if (!Object.hasOwn(SHELL_COMMANDS, verb)) {
    throw new TypeError(`unknown command "${verb}"; "help" lists them`);
  }
  const [usage, min, max] = SHELL_COMMANDS[verb];
  if (words.length < min || words.length > max) throw new TypeError(`usage: ${usage}`);
  switch (verb) {
    case "ls":
    case "dir":
      return await listFolder(client, words[0], settings);
    case "nlst":
      for (const name of await client.nlst(words[0])) console.log(name);
      return;
    case "cd":
      return await client.cwd(words[0]);
    case "cdup":
      return await client.cdup();
    case "pwd":
      return console.log(await client.pwd());
    case "get":
      return await getFile(client, words[0], words[1], settings);
    case "put":
      return await putFile(client, words[0], words[1], settings);
    case "rm":
      return await client.delete(words[0]);
    case "mkdir":
      return console.log(await client.mkdir(words[0]));
    case "rmdir":
      return await client.rmdir(words[0]);
    case "mv":
      return await client.rename(words[0], words[1]);
    case "size":
      return await showSize(client, words[0]);
    case "ascii":
    case "binary":
      settings.ascii = verb === "ascii";
      return console.log(`transfers now use TYPE ${settings.ascii ? "A" : "I"}`);
    case "syst":
      return console.log(await client.system());
    case "feat":
      for (const [name, value] of await client.features()) console.log(`${name} ${value}`.trim());
      return;
    case "noop":
      return await client.noop();
    case "quote": {
      const reply = await client.command(text.replace(/^\s*quote\s+/, ""));
      for (const line of reply.lines) console.log(`${reply.code} ${line}`);
      return;
    }
    case "help":
      return console.log(SHELL_HELP);
  }
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  host: { type: "string" },
  port: { type: "number", integer: true, min: 1, max: 65535 },
  user: { type: "string" },
  tls: { type: "boolean" },
  ca: { type: "string" },
  pasv: { type: "boolean" },
  active: { type: "boolean" },
  resume: { type: "boolean" },
  ascii: { type: "boolean" },
  raw: { type: "boolean" },
  timeout: { type: "number", default: 30, min: 0.001 },
  "data-timeout": { type: "number", default: 30, min: 0.001 },
  verbose: { type: "boolean", short: "v" },
} as const;

// How many remote paths, and local ones, each command takes: [min, max].
const ARITY: Record<string, [number, number]> = {
  list: [0, 1],
  get: [1, 2],
  put: [1, 2],
  rm: [1, 1],
  mkdir: [1, 1],
  rmdir: [1, 1],
  mv: [2, 2],
  size: [1, 1],
  shell: [0, 1],
};

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (command === undefined) return await demo();
  const arity = ARITY[command];
  if (!arity) {
    throw new UsageError(
      `unknown command "${command}"; expected ${Object.keys(ARITY).join(", ")}`,
    );
  }
  if (rest.length < arity[0] || rest.length > arity[1]) {
    throw new UsageError(
      `${command} takes ${arity[0]}${arity[1] > arity[0] ? `-${arity[1]}` : ""} argument(s)`,
    );
  }

  // A URL in place of a remote path says where the server is.
  const location: FtpLocation = {
    hostname: flags.host ?? "127.0.0.1",
    port: flags.port ?? DEFAULT_PORT,
    user: flags.user ?? "anonymous",
    path: "",
  };
  const paths = rest.map((arg) => {
    if (!arg.startsWith("ftp://")) return arg;
    const url = parseFtpUrl(arg);
    location.hostname = flags.host ?? url.hostname;
    location.port = flags.port ?? url.port;
    location.user = flags.user ?? url.user;
    return url.path;
  });
  // Refuse CR/LF before connecting: nothing with them will ever be sent.
  for (const path of paths) checkArgument(path);
  checkArgument(location.user, "a user name");

  if (flags.ca !== undefined && !flags.tls) throw new UsageError("--ca goes with --tls");
  const settings: Settings = { ascii: flags.ascii, resume: flags.resume, raw: flags.raw };
  const anonymous = ["anonymous", "ftp"].includes(location.user.toLowerCase());
  const password = anonymous ? "anonymous@" : await askPassword(location.user);
  const caCerts = flags.ca === undefined ? undefined : [await Deno.readTextFile(flags.ca)];

  const client = await FtpClient.connect({
    hostname: location.hostname,
    port: location.port,
    tls: flags.tls,
    caCerts,
    pasv: flags.pasv,
    active: flags.active,
    timeout: flags.timeout * 1000,
    dataTimeout: flags["data-timeout"] * 1000,
    log: flags.verbose ? (line) => console.error(line) : undefined,
  });
  try {
    await client.login(location.user, password);
    await client.features();
    switch (command) {
      case "list":
        await listFolder(client, paths[0], settings);
        break;
      case "get":
        await getFile(client, paths[0], paths[1], settings);
        break;
      case "put":
        await putFile(client, paths[0], paths[1], settings);
        break;
      case "rm":
        await client.delete(paths[0]);
        console.log(`deleted ${paths[0]}`);
        break;
      case "mkdir":
        console.log(`made ${await client.mkdir(paths[0])}`);
        break;
      case "rmdir":
        await client.rmdir(paths[0]);
        console.log(`removed ${paths[0]}`);
        break;
      case "mv":
        await client.rename(paths[0], paths[1]);
        console.log(`renamed ${paths[0]} -> ${paths[1]}`);
        break;
      case "size":
        await showSize(client, paths[0]);
        break;
      case "shell":
        if (paths[0]) await client.cwd(paths[0]);
        await shell(client, settings);
        break;
    }
    await client.quit();
  } finally {
    client.close();
  }
}

// ---------------------------------------------------------------------------
// The demo: this project's own server, in memory, on a free port
// ---------------------------------------------------------------------------

async function demo(): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const users = { demo: "demo-password" }; // the demo's own server: no secret to keep
  const server = serveFtp(listener, {
    fs: new MemoryFileSystem(sampleFiles()),
    users,
    log: () => {},
    signal: stop.signal,
  });
  const port = listener.addr.port;
  console.log(`# scripts/ftp_server.ts in memory on ftp://127.0.0.1:${port}`);
  console.log("# '>' is what the client sends, '<' the server's replies, '#' a note\n");
  const client = await FtpClient.connect({ port, log: (line) => console.log(line) });
  try {
    await client.login("demo", users.demo);
    await client.system();
    await client.features();
    await client.pwd();

    console.log("\n# a listing: MLSD, since FEAT offers MLST");
    for (const entry of await client.list("pub")) console.log(`#   ${formatEntry(entry)}`);

    console.log("\n# an upload: STOR on a data connection of its own");
    const text = encoder.encode("Uploaded by ftp_client.ts\n".repeat(1000));
    await client.upload("notes.txt", memoryReader(text));

    console.log("\n# and back: SIZE, then RETR");
    const size = await client.size("notes.txt");
    const chunks: Uint8Array[] = [];
    const sink: Writer = {
      write(chunk) {
        chunks.push(chunk.slice());
        return Promise.resolve(chunk.length);
      },
    };
    const got = await client.download("notes.txt", sink);
    const same = got === size && concat(chunks).every((byte, i) => byte === text[i]);
    console.log(`# ${got} of ${size} bytes back, ${same ? "identical" : "DIFFERENT"}`);

    console.log("\n# the rest of a file from byte 4000 (REST), as a resumed download would");
    chunks.length = 0;
    await client.download("pub/bytes.bin", sink, { offset: 4000 });
    console.log(`# ${concat(chunks).length} bytes: the last 96 of 4096`);

    console.log("\n# rename, and delete");
    await client.rename("notes.txt", "kept.txt");
    await client.delete("kept.txt");

    console.log("\n# a refusal carries the server's words (5yz: permanent)");
    try {
      await client.size("kept.txt");
    } catch (error) {
      console.log(`# ${(error as Error).message}`);
    }
    await client.quit();
  } finally {
    client.close();
    stop.abort();
    await server;
  }
}

// A Reader over bytes in memory, as an open file would be.
function memoryReader(bytes: Uint8Array): Reader {
  let offset = 0;
  return {
    read(buffer) {
      if (offset >= bytes.length) return Promise.resolve(null);
      const n = Math.min(buffer.length, bytes.length - offset);
      buffer.set(bytes.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
}

if (import.meta.main) runMain(USAGE, main);
