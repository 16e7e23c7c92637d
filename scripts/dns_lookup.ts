#!/usr/bin/env -S deno run --unstable-net --allow-net=127.0.0.1
/**
 * @title DNS lookup: a query and its answer, byte by byte, over UDP and TCP
 * @difficulty advanced
 * @tags cli, network, udp, tcp, dns
 * @run --unstable-net --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc1034} RFC 1034: Domain Names - Concepts and Facilities
 * @resource {https://www.rfc-editor.org/rfc/rfc1035} RFC 1035: Domain Names - Implementation and Specification (§4: the message format)
 * @resource {https://www.rfc-editor.org/rfc/rfc3596} RFC 3596: DNS Extensions to Support IP Version 6 (AAAA)
 * @resource {https://www.rfc-editor.org/rfc/rfc6891} RFC 6891: Extension Mechanisms for DNS (EDNS(0))
 * @resource {https://www.rfc-editor.org/rfc/rfc7766} RFC 7766: DNS Transport over TCP
 * @resource {https://www.rfc-editor.org/rfc/rfc2308} RFC 2308: Negative Caching of DNS Queries (NXDOMAIN and the SOA)
 * @resource {https://www.rfc-editor.org/rfc/rfc5452} RFC 5452: Measures for Making DNS More Resilient against Forged Answers
 *
 * DNS two ways. First the easy way, `Deno.resolveDns`. Then by hand: a query
 * built byte by byte (a random ID, RD, an EDNS0 OPT record offering 1232-byte
 * replies), sent over UDP with a timeout and retries; a reply checked against
 * the query and decoded with name compression (pointers must point back, and
 * names stay within 255 bytes); and, when the reply comes back truncated (TC),
 * the same query again over TCP with its 2-byte length prefix. `serve` is a
 * tiny authoritative server for a fixed demo zone, `wirebook.test.`, that `dig`
 * can query too. With no arguments, it starts that server on loopback and asks
 * it everything both ways, shows a truncated answer forcing TCP and a malformed
 * query getting FORMERR, and dumps a query and its reply field by field.
 * Deno's UDP API is unstable: it needs `--unstable-net`.
 * Taught cell by cell in notebooks/08_dns_lookup.ipynb.
 */

import { acceptConnections } from "../lib/accept_connections.ts";
import { parseFlags } from "../lib/parse_flags.ts";
import { type Reader, readExactly } from "../lib/read_exactly.ts";
import { writeAll } from "../lib/write_all.ts";
import { retry } from "../lib/retry.ts";
import { withTimeout } from "../lib/with_timeout.ts";
import { UnexpectedEofError } from "../lib/unexpected_eof_error.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { listenUdp } from "../lib/listen_udp.ts";
import { localAddressFor } from "../lib/local_address_for.ts";
import * as ip from "./ip_addresses.ts";

export { listenUdp };

const USAGE = `
dns_lookup.ts: DNS by hand over UDP and TCP, next to Deno.resolveDns, and a tiny authoritative server

usage:
  dns_lookup.ts                         demo: a server for wirebook.test. on loopback, asked both ways
  dns_lookup.ts serve [flags]           serve the demo zone wirebook.test. over UDP and TCP until Ctrl-C
  dns_lookup.ts query NAME [TYPE] [flags]
                                        ask a server for NAME's TYPE records (A, AAAA, CNAME, MX, NS,
                                        SOA, TXT, ANY, or a number; default A), print a dig-like answer

flags:
  --host HOST           serve: address to listen on; query: the server to ask (default 127.0.0.1);
                        a host name, an IPv6 address, or IPv4 as a dotted quad (127.0.0.1, not 127.1)
  --port PORT           UDP and TCP port (default 8053; serve --port 0 picks any free port)
  --tcp                 query: ask over TCP from the start (default: UDP, then TCP if truncated)
  --no-edns             query: send no EDNS0 OPT record (replies are then capped at 512 bytes)
  --dump                query: print the query and the reply byte by byte, field by field
  --system              query: ask with Deno.resolveDns instead (HOST must be an IP address)
  --timeout SECS        query: wait this long for each reply (default 2, at most 3600)
  --attempts N          query: UDP sends before giving up (default 3, at most 100)
  --idle-timeout SECS   serve: close a TCP client idle this long (default 10, at most 86400)
  --max-connections N   serve: TCP clients at once; more are closed at once (default 64)
  --quiet               serve: do not log queries
  -h, --help            show this help

try: dns_lookup.ts serve, then in another terminal:
  dns_lookup.ts query www.wirebook.test         dig @127.0.0.1 -p 8053 www.wirebook.test
  dns_lookup.ts query big.wirebook.test TXT     (too big for UDP: truncated, then TCP)

permissions (UDP needs --unstable-net: Deno's UDP API is unstable):
  demo, serve and query on 127.0.0.1:       --unstable-net --allow-net=127.0.0.1
  serve and query on ::1 (IPv6 loopback):   --unstable-net --allow-net=[::1]
  query --tcp or --system (no UDP socket):  --allow-net=127.0.0.1 is enough
  serve or query another --host:            --unstable-net --allow-net (a UDP client binds 0.0.0.0)
`;

const DEFAULT_PORT = 8053;

// ---------------------------------------------------------------------------
// The vocabulary: record types, response codes, limits
// ---------------------------------------------------------------------------

// Each record type is a 16-bit number on the wire (RFC 1035 §3.2.2; AAAA is
// RFC 3596, OPT is RFC 6891). ANY is only ever asked for, OPT only ever sits
// in the additional section as EDNS0's carrier, never in a zone.
/** The record types this script knows by name, and their numbers on the wire. */
export const TYPES = {
  A: 1,
  NS: 2,
  CNAME: 5,
  SOA: 6,
  MX: 15,
  TXT: 16,
  AAAA: 28,
  OPT: 41,
  ANY: 255,
} as const;

/** A record type by name. */
export type TypeName = keyof typeof TYPES;

/** A question's type: a name, or any 16-bit number. */
export type QueryType = TypeName | number;

const TYPE_BY_CODE = new Map<number, TypeName>(
  Object.entries(TYPES).map(([name, code]) => [code, name as TypeName]),
);

/** The Internet class, the only one in real use (RFC 1035 §3.2.4). */
export const CLASS_IN = 1;

/** Response codes (RFC 1035 §4.1.1; BADVERS is RFC 6891's, carried in the OPT record). */
export const RCODES = {
  NOERROR: 0,
  FORMERR: 1,
  SERVFAIL: 2,
  NXDOMAIN: 3,
  NOTIMP: 4,
  REFUSED: 5,
  BADVERS: 16,
} as const;

const RCODE_BY_CODE = new Map<number, string>(
  Object.entries(RCODES).map(([name, code]) => [code, name]),
);

/** A name is at most 255 bytes on the wire, counting length bytes and the final zero (RFC 1035 §2.3.4). */
export const MAX_NAME_LENGTH = 255;
/** A label is at most 63 bytes: its length byte's top two bits are taken (RFC 1035 §4.1.4). */
export const MAX_LABEL_LENGTH = 63;
/** How many compression pointers one name may follow before we call it a loop. */
export const MAX_POINTER_HOPS = 127;
/** The size every DNS server must accept over UDP, and the cap without EDNS (RFC 1035 §4.2.1). */
export const CLASSIC_UDP_SIZE = 512;
/**
 * The UDP payload size we offer in EDNS0 (RFC 6891 §6.2.5): 1232 bytes fit an
 * IPv6 packet of the minimum MTU, 1280 bytes, so no reply is ever fragmented.
 */
export const EDNS_UDP_SIZE = 1232;

/** The name of a record type's number: `A`, `MX`, or `TYPE99` (RFC 3597 §5) for one we do not know. */
export function typeName(code: number): string {
  return TYPE_BY_CODE.get(code) ?? `TYPE${code}`;
}

/** The number of a record type: `"MX"` is 15; a number is itself. */
export function typeCode(type: QueryType): number {
  const code = typeof type === "number" ? type : TYPES[type];
  if (!Number.isInteger(code) || code < 0 || code > 0xffff) {
    throw new RangeError(`not a record type: ${type}`);
  }
  return code;
}

/** The name of a response code: `NXDOMAIN`, or `RCODE11`. */
export function rcodeName(code: number): string {
  return RCODE_BY_CODE.get(code) ?? `RCODE${code}`;
}

// ---------------------------------------------------------------------------
// The message, as data
// ---------------------------------------------------------------------------

/** The flags in the header's second 16 bits (RFC 1035 §4.1.1; AD and CD are RFC 4035's). */
export interface DnsFlags {
  /** Query (false) or response (true). */
  qr: boolean;
  /** The kind of query: 0 is a standard QUERY. */
  opcode: number;
  /** Authoritative answer: the server owns the zone. */
  aa: boolean;
  /** Truncated: the reply did not fit; ask again over TCP. */
  tc: boolean;
  /** Recursion desired: please ask other servers for me. */
  rd: boolean;
  /** Recursion available: this server would. */
  ra: boolean;
  /** Authentic data (DNSSEC-validated). */
  ad: boolean;
  /** Checking disabled (DNSSEC). */
  cd: boolean;
  /** The response code's low 4 bits: 0 NOERROR, 3 NXDOMAIN, ... */
  rcode: number;
}

/** One question: which records of which name. */
export interface Question {
  /** The name, in presentation form: `www.wirebook.test.` */
  name: string;
  /** What kind of records. */
  type: QueryType;
  /** The class, when not IN (1). */
  class?: number;
}

/** An SOA record's data (RFC 1035 §3.3.13): who runs the zone and its timers. */
export interface Soa {
  /** The primary name server. */
  mname: string;
  /** The administrator's mailbox, with its `@` written as a dot. */
  rname: string;
  serial: number;
  refresh: number;
  retry: number;
  expire: number;
  /** Since RFC 2308: how long a resolver may remember that a name does not exist. */
  minimum: number;
}

/** An MX record's data (RFC 1035 §3.3.9): a mail server and its preference (lower first). */
export interface Mx {
  preference: number;
  exchange: string;
}

interface RecordBase {
  /** The owner name, in presentation form: `mail.wirebook.test.` */
  name: string;
  /** Seconds the record may be cached. */
  ttl: number;
  /** The class, when not IN (1). */
  class?: number;
}

/**
 * A resource record. Known types carry their data decoded: an address as
 * text, a name, an {@linkcode Mx}, an {@linkcode Soa}, TXT's strings (as
 * bytes: see {@linkcode txtData}). Any other type is kept as its type number
 * and raw bytes.
 */
export type DnsRecord =
  | RecordBase & { type: "A" | "AAAA" | "NS" | "CNAME"; data: string }
  | RecordBase & { type: "MX"; data: Mx }
  | RecordBase & { type: "TXT"; data: Uint8Array[] }
  | RecordBase & { type: "SOA"; data: Soa }
  | RecordBase & { type: number; data: Uint8Array };

/** The EDNS0 OPT record's fields (RFC 6891 §6.1.2), which reuse the record's CLASS and TTL. */
export interface Edns {
  /** The largest UDP reply the sender can take (in CLASS). */
  udpPayloadSize: number;
  /** The response code's upper 8 bits (TTL bits 24-31). */
  extendedRcode: number;
  /** EDNS version, 0 today (TTL bits 16-23). */
  version: number;
  /** DNSSEC OK: send DNSSEC records (TTL bit 15). */
  dnssecOk: boolean;
  /** Options (a cookie, a client subnet, ...), kept as code and bytes. */
  options: { code: number; data: Uint8Array }[];
}

/** A whole DNS message: the same format for queries and responses. */
export interface DnsMessage {
  /** Chosen by the client, copied by the server: how a reply finds its query. */
  id: number;
  flags: DnsFlags;
  questions: Question[];
  answers: DnsRecord[];
  authorities: DnsRecord[];
  /** Additional records, without the OPT record (that is `edns`). */
  additionals: DnsRecord[];
  /** The EDNS0 OPT record, if the message has one. */
  edns?: Edns;
}

/**
 * A message that breaks the wire format: cut short, a count that promises
 * more than the bytes hold, a compression loop, a name over 255 bytes. A
 * server answers one with FORMERR; a client ignores it.
 */
export class DnsFormatError extends Error {
  /** @param message What is wrong, and where. */
  constructor(message: string) {
    super(message);
    this.name = "DnsFormatError";
  }
}

// ---------------------------------------------------------------------------
// Names: labels, escapes, compression
// ---------------------------------------------------------------------------

// On the wire a name is a sequence of labels, each a length byte and that
// many bytes, ending with the zero-length root label (RFC 1035 §3.1):
//
//   www.wirebook.test.  ->  03 'w' 'w' 'w' 08 'w' 'i' 'r' 'e' 'b' 'o' 'o' 'k' 04 't' 'e' 's' 't' 00
//
// A label may hold any byte, even a dot. Written as text (the "presentation
// form" of RFC 1035 §5.1 that dig prints), a dot or backslash inside a label
// is escaped as \. or \\, and any other byte outside printable ASCII as \DDD.

/**
 * Split a name in presentation form into its labels' bytes. A trailing dot is
 * optional (every name here is absolute); `.` and `""` are the root.
 * @throws {RangeError} For an empty label, a label over 63 bytes, a name over 255.
 */
export function nameToLabels(name: string): Uint8Array[] {
  if (name === "." || name === "") return [];
  const labels: Uint8Array[] = [];
  let label: number[] = [];
  const chars = [...name];
  const encoder = new TextEncoder();
  const endLabel = () => {
    if (label.length === 0) throw new RangeError(`empty label in the name "${name}"`);
    if (label.length > MAX_LABEL_LENGTH) {
      throw new RangeError(`a label of ${label.length} bytes in "${name}"; the most is 63`);
    }
    labels.push(new Uint8Array(label));
    label = [];
  };
  for (let i = 0; i < chars.length; i++) {
    const char = chars[i];
    if (char === ".") {
      endLabel();
    } else if (char === "\\") {
      const digits = chars.slice(i + 1, i + 4).join("");
      if (/^\d{3}$/.test(digits) && Number(digits) <= 255) {
        label.push(Number(digits));
        i += 3;
      } else if (i + 1 < chars.length && !/\d/.test(chars[i + 1])) {
        label.push(...encoder.encode(chars[++i]));
      } else {
        throw new RangeError(`a bad escape in the name "${name}": use \\. \\\\ or \\DDD`);
      }
    } else {
      // Non-ASCII text goes out as its UTF-8 bytes. (Real internationalized
      // names are sent as ASCII "xn--" labels instead: IDNA, RFC 5891.)
      label.push(...encoder.encode(char));
    }
  }
  if (label.length > 0) endLabel();
  const wireLength = labels.reduce((sum, l) => sum + 1 + l.length, 1);
  if (wireLength > MAX_NAME_LENGTH) {
    throw new RangeError(`the name "${name}" takes ${wireLength} bytes; the most is 255`);
  }
  return labels;
}

// In a zone file (RFC 1035 §5.1) more characters than the dot mean
// something: ; starts a comment, ( and ) wrap lines, " quotes, @ is the
// origin, $ starts a directive. dig escapes each of them in a name with a
// backslash, so that its output can be read back as a zone file; so do we.
const SPECIAL_IN_NAMES = new Set([...'.\\;()"@$'].map((char) => char.charCodeAt(0)));

/** Write one label's bytes as presentation text, escaping what must be. */
export function labelToText(label: Uint8Array): string {
  let text = "";
  for (const byte of label) {
    if (SPECIAL_IN_NAMES.has(byte)) text += "\\" + String.fromCharCode(byte);
    else if (byte > 0x20 && byte < 0x7f) text += String.fromCharCode(byte);
    else text += "\\" + String(byte).padStart(3, "0");
  }
  return text;
}

/** Join labels into a name in presentation form, with its trailing dot. */
export function labelsToName(labels: Uint8Array[]): string {
  return labels.length === 0 ? "." : labels.map(labelToText).join(".") + ".";
}

// DNS compares names without regard to ASCII case (RFC 4343), but keeps the
// case it was given. So names are compared in a canonical form, lowercased.
/** A name's canonical form: absolute, ASCII lowercase, escapes normalised. */
export function canonicalName(name: string): string {
  return labelsToName(nameToLabels(name)).replace(/[A-Z]/g, (c) => c.toLowerCase());
}

/** Whether `name` is `zone` or a name under it (compared label by label, not as text). */
export function isInZone(name: string, zone: string): boolean {
  const lower = (label: Uint8Array) => labelToText(label).replace(/[A-Z]/g, (c) => c.toLowerCase());
  const labels = nameToLabels(name).map(lower);
  const zoneLabels = nameToLabels(zone).map(lower);
  const offset = labels.length - zoneLabels.length;
  return offset >= 0 && zoneLabels.every((label, i) => labels[offset + i] === label);
}

// ---------------------------------------------------------------------------
// Writing the wire format
// ---------------------------------------------------------------------------

// A growing buffer with the big-endian ("network order") writes DNS needs,
// and the table that name compression needs: every name suffix written so
// far, and where. A later name that ends the same way writes a 2-byte
// pointer instead of the labels again: 11 then the 14-bit offset.
class WireWriter {
  #buffer = new Uint8Array(512);
  #view = new DataView(this.#buffer.buffer);
  #suffixes = new Map<string, number>();
  length = 0;

  #reserve(n: number) {
    if (this.length + n <= this.#buffer.length) return;
    const bigger = new Uint8Array(Math.max(this.#buffer.length * 2, this.length + n));
    bigger.set(this.#buffer);
    this.#buffer = bigger;
    this.#view = new DataView(bigger.buffer);
  }

  u8(value: number) {
    this.#reserve(1);
    this.#view.setUint8(this.length, value);
    this.length += 1;
  }

  u16(value: number) {
    this.#reserve(2);
    this.#view.setUint16(this.length, value);
    this.length += 2;
  }

  u32(value: number) {
    this.#reserve(4);
    this.#view.setUint32(this.length, value);
    this.length += 4;
  }

  bytes(bytes: Uint8Array) {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.length);
    this.length += bytes.length;
  }

  setU16(offset: number, value: number) {
    this.#view.setUint16(offset, value);
  }

  // Compression (RFC 1035 §4.1.4): for each suffix of the name, longest
  // first, if it was written before, point there and stop. Suffixes are
  // matched with their case, so a decoded name is exactly the one encoded.
  name(name: string) {
    const labels = nameToLabels(name);
    for (let i = 0; i < labels.length; i++) {
      const suffix = labels.slice(i).map((label) => `${label.length}:${latin1(label)}`).join("");
      const earlier = this.#suffixes.get(suffix);
      if (earlier !== undefined) {
        this.u16(0xc000 | earlier);
        return;
      }
      // A pointer has 14 bits: only the first 16 KiB can be pointed at.
      if (this.length < 0x4000) this.#suffixes.set(suffix, this.length);
      this.u8(labels[i].length);
      this.bytes(labels[i]);
    }
    this.u8(0);
  }

  finish(): Uint8Array<ArrayBuffer> {
    return this.#buffer.slice(0, this.length);
  }
}

function latin1(bytes: Uint8Array): string {
  return String.fromCharCode(...bytes);
}

// Every message starts with the same 12-byte header (RFC 1035 §4.1.1):
//
//                                   1  1  1  1  1  1
//     0  1  2  3  4  5  6  7  8  9  0  1  2  3  4  5
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//   |                      ID                       |
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//   |QR|   Opcode  |AA|TC|RD|RA| Z|AD|CD|   RCODE   |
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//   |                    QDCOUNT                    |
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//   |                    ANCOUNT                    |
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//   |                    NSCOUNT                    |
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//   |                    ARCOUNT                    |
//   +--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+--+
//
// then QDCOUNT questions (name, type, class), then the answer, authority and
// additional sections, each a run of resource records: name, type, class,
// TTL, RDLENGTH and RDLENGTH bytes of data (§4.1.3).

/** The header's second 16 bits, from the flags. */
export function encodeFlags(flags: DnsFlags): number {
  const { opcode, rcode } = flags;
  if (!Number.isInteger(opcode) || opcode < 0 || opcode > 15) {
    throw new RangeError(`opcode must be 0 to 15, got ${opcode}`);
  }
  if (!Number.isInteger(rcode) || rcode < 0 || rcode > 15) {
    throw new RangeError(`rcode must be 0 to 15 (larger codes go in EDNS), got ${rcode}`);
  }
  return (flags.qr ? 0x8000 : 0) | (opcode << 11) | (flags.aa ? 0x0400 : 0) |
    (flags.tc ? 0x0200 : 0) | (flags.rd ? 0x0100 : 0) | (flags.ra ? 0x0080 : 0) |
    (flags.ad ? 0x0020 : 0) | (flags.cd ? 0x0010 : 0) | rcode;
}

/** The flags in the header's second 16 bits. */
export function decodeFlags(bits: number): DnsFlags {
  return {
    qr: (bits & 0x8000) !== 0,
    opcode: (bits >> 11) & 0xf,
    aa: (bits & 0x0400) !== 0,
    tc: (bits & 0x0200) !== 0,
    rd: (bits & 0x0100) !== 0,
    ra: (bits & 0x0080) !== 0,
    ad: (bits & 0x0020) !== 0,
    cd: (bits & 0x0010) !== 0,
    rcode: bits & 0xf,
  };
}

/**
 * Encode a message in the wire format, compressing names.
 * @param message The message.
 * @returns Its bytes.
 * @throws {RangeError} For a value that does not fit its field: a bad
 *   address, a label over 63 bytes, a TXT string over 255, a message over 65535.
 */
export function encodeMessage(message: DnsMessage): Uint8Array<ArrayBuffer> {
  const w = new WireWriter();
  checkU16("id", message.id);
  w.u16(message.id);
  w.u16(encodeFlags(message.flags));
  const additionalCount = message.additionals.length + (message.edns ? 1 : 0);
  for (const count of [message.questions.length, message.answers.length]) w.u16(count);
  for (const count of [message.authorities.length, additionalCount]) w.u16(count);
  for (const count of [message.questions.length, message.answers.length, additionalCount]) {
    if (count > 0xffff) throw new RangeError(`a section of ${count} entries; the most is 65535`);
  }

  for (const question of message.questions) {
    w.name(question.name);
    w.u16(typeCode(question.type));
    w.u16(question.class ?? CLASS_IN);
  }
  for (const record of [...message.answers, ...message.authorities, ...message.additionals]) {
    writeRecord(w, record);
  }
  if (message.edns) writeOpt(w, message.edns);
  if (w.length > 0xffff) {
    throw new RangeError(`the message takes ${w.length} bytes; the most is 65535`);
  }
  return w.finish();
}

function writeRecord(w: WireWriter, record: DnsRecord) {
  w.name(record.name);
  const code = typeCode(record.type);
  if (code === TYPES.OPT || code === TYPES.ANY) {
    throw new RangeError(`${typeName(code)} is not a record type for a section (OPT is "edns")`);
  }
  w.u16(code);
  w.u16(record.class ?? CLASS_IN);
  checkU32("ttl", record.ttl);
  w.u32(record.ttl);
  // RDLENGTH comes before the data, but the data's length is known only once
  // it is written (compression may shorten a name): reserve, write, patch.
  const lengthAt = w.length;
  w.u16(0);
  switch (record.type) {
    case "A":
      w.bytes(parseIPv4(record.data));
      break;
    case "AAAA":
      w.bytes(parseIPv6(record.data));
      break;
    case "NS":
    case "CNAME":
      w.name(record.data);
      break;
    case "MX":
      checkU16("MX preference", record.data.preference);
      w.u16(record.data.preference);
      w.name(record.data.exchange);
      break;
    case "TXT":
      // TXT data is one or more <character-string>s: a length byte, then that
      // many bytes. So a string longer than 255 bytes must be split by its owner.
      for (const bytes of record.data) {
        if (bytes.length > 255) {
          throw new RangeError(`a TXT string of ${bytes.length} bytes; the most is 255`);
        }
        w.u8(bytes.length);
        w.bytes(bytes);
      }
      break;
    case "SOA": {
      const soa = record.data;
      w.name(soa.mname);
      w.name(soa.rname);
      for (const field of ["serial", "refresh", "retry", "expire", "minimum"] as const) {
        checkU32(`SOA ${field}`, soa[field]);
        w.u32(soa[field]);
      }
      break;
    }
    default:
      w.bytes(record.data);
  }
  const length = w.length - lengthAt - 2;
  if (length > 0xffff) throw new RangeError(`RDATA of ${length} bytes; the most is 65535`);
  w.setU16(lengthAt, length);
}

// EDNS0 (RFC 6891 §6.1.2) needed room for new fields in a format with no
// spare bits, so it adds a pseudo-record, OPT, to the additional section and
// reuses its fields: the name is the root, CLASS is the UDP payload size the
// sender can receive, TTL holds an extended RCODE, a version and the DO flag,
// and RDATA holds options, each a code, a length and its bytes.
function writeOpt(w: WireWriter, edns: Edns) {
  w.u8(0);
  w.u16(TYPES.OPT);
  checkU16("udpPayloadSize", edns.udpPayloadSize);
  w.u16(edns.udpPayloadSize);
  w.u8(edns.extendedRcode);
  w.u8(edns.version);
  w.u16(edns.dnssecOk ? 0x8000 : 0);
  const lengthAt = w.length;
  w.u16(0);
  for (const option of edns.options) {
    w.u16(option.code);
    w.u16(option.data.length);
    w.bytes(option.data);
  }
  w.setU16(lengthAt, w.length - lengthAt - 2);
}

function checkU16(what: string, value: number) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff) {
    throw new RangeError(`${what} must be a whole number from 0 to 65535, got ${value}`);
  }
}

function checkU32(what: string, value: number) {
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new RangeError(`${what} must be a whole number from 0 to 4294967295, got ${value}`);
  }
}

// ---------------------------------------------------------------------------
// Reading the wire format, defensively
// ---------------------------------------------------------------------------

/**
 * Called by {@linkcode decodeMessage} for each field it reads: where it
 * starts, how many bytes it takes (0 for a heading), and what it means.
 */
export type Trace = (offset: number, length: number, text: string) => void;

// Every read checks the bounds first: the bytes come from the network, and a
// count, a length or a pointer in them may say anything. A read past the end
// is a DnsFormatError, never an exception of another kind.
class WireReader {
  offset = 0;
  #mark = 0;
  #view: DataView;

  constructor(readonly bytes: Uint8Array, readonly trace?: Trace) {
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  need(n: number, what: string) {
    if (this.offset + n > this.bytes.length) {
      throw new DnsFormatError(
        `${what} at offset ${this.offset} needs ${n} bytes, but the message ends ` +
          `${this.bytes.length - this.offset} bytes later`,
      );
    }
  }

  u8(what: string): number {
    this.need(1, what);
    return this.#view.getUint8(this.offset++);
  }

  u16(what: string): number {
    this.need(2, what);
    const value = this.#view.getUint16(this.offset);
    this.offset += 2;
    return value;
  }

  u32(what: string): number {
    this.need(4, what);
    const value = this.#view.getUint32(this.offset);
    this.offset += 4;
    return value;
  }

  take(n: number, what: string): Uint8Array {
    this.need(n, what);
    this.offset += n;
    return this.bytes.slice(this.offset - n, this.offset);
  }

  // Report the bytes read since the last note as one field.
  note(text: string) {
    this.trace?.(this.#mark, this.offset - this.#mark, text);
    this.#mark = this.offset;
  }

  heading(text: string) {
    this.trace?.(this.offset, 0, text);
  }
}

/**
 * Read a possibly compressed name at the reader's offset, and move past it.
 *
 * Compression makes a name a little program: labels to copy, then maybe a
 * pointer to jump to. A hostile message can make that program loop (a pointer
 * to itself), run forever forward, or grow without end. So: each pointer must
 * point strictly before the place where the name's current run of labels
 * began (every real compressor points back, at a name written earlier, so
 * this forbids every loop), there are at most {@linkcode MAX_POINTER_HOPS}
 * jumps, labels are at most 63 bytes, and the name at most 255.
 */
function readName(r: WireReader, what: string): string {
  const { bytes } = r;
  const labels: Uint8Array[] = [];
  let wireLength = 1; // the root label's zero byte
  let position = r.offset;
  let floor = r.offset; // the next pointer must point below this
  let hops = 0;
  let firstPointer: { at: number; to: number; labelsBefore: number } | undefined;

  while (true) {
    if (position >= bytes.length) {
      throw new DnsFormatError(`${what}: the name runs past the end of the message`);
    }
    const length = bytes[position];
    if ((length & 0xc0) === 0xc0) {
      // 11xxxxxx xxxxxxxx: a pointer to the 14-bit offset xx..x.
      if (position + 1 >= bytes.length) {
        throw new DnsFormatError(`${what}: a compression pointer cut off at the end`);
      }
      const target = ((length & 0x3f) << 8) | bytes[position + 1];
      if (target >= floor) {
        throw new DnsFormatError(
          `${what}: the compression pointer at offset ${position} points to ${target}, ` +
            `not back before ${floor}: a loop or a forward reference`,
        );
      }
      if (++hops > MAX_POINTER_HOPS) {
        throw new DnsFormatError(`${what}: more than ${MAX_POINTER_HOPS} compression pointers`);
      }
      if (!firstPointer) {
        firstPointer = { at: position, to: target, labelsBefore: labels.length };
        r.offset = position + 2; // the name ends, in place, after its first pointer
      }
      floor = target;
      position = target;
      continue;
    }
    if ((length & 0xc0) !== 0) {
      // 01 and 10 were extended label types (RFC 6891 §5 retired them).
      throw new DnsFormatError(`${what}: an unknown label type 0x${hex(length, 2)}`);
    }
    if (length === 0) {
      if (!firstPointer) r.offset = position + 1;
      break;
    }
    if (position + 1 + length > bytes.length) {
      throw new DnsFormatError(`${what}: a ${length}-byte label runs past the end of the message`);
    }
    wireLength += 1 + length;
    if (wireLength > MAX_NAME_LENGTH) {
      throw new DnsFormatError(`${what}: the name is longer than ${MAX_NAME_LENGTH} bytes`);
    }
    const label = bytes.slice(position + 1, position + 1 + length);
    labels.push(label);
    if (!firstPointer) {
      r.offset = position + 1 + length;
      r.note(`label "${labelToText(label)}" (${length} bytes)`);
    }
    position += 1 + length;
  }

  const name = labelsToName(labels);
  if (firstPointer) {
    const suffix = labelsToName(labels.slice(firstPointer.labelsBefore));
    r.note(`pointer to offset ${firstPointer.to} (0x${hex(firstPointer.to, 4)}): ${suffix}`);
  } else {
    r.note(
      labels.length === 0 ? "the root label: an empty name" : "the root label: end of the name",
    );
  }
  if (labels.length > 0 && firstPointer?.labelsBefore !== 0) r.heading(`= ${name}`);
  return name;
}

/**
 * Decode a message from its wire format, checking as it goes.
 * @param bytes A whole message (over TCP, without its 2-byte length prefix).
 * @param options `trace` is told about each field as it is read (see {@linkcode dumpMessage}).
 * @returns The message.
 * @throws {DnsFormatError} If the bytes are not a well-formed message.
 */
export function decodeMessage(
  bytes: Uint8Array,
  options: { trace?: Trace } = {},
): DnsMessage {
  const r = new WireReader(bytes, options.trace);
  if (bytes.length < 12) {
    throw new DnsFormatError(
      `a DNS message starts with a 12-byte header; got ${bytes.length} bytes`,
    );
  }
  r.heading("header");
  const id = r.u16("ID");
  r.note(`ID = 0x${hex(id, 4)} (${id})`);
  const flags = decodeFlags(r.u16("flags"));
  r.note(describeFlags(flags));
  const counts = ["QDCOUNT", "ANCOUNT", "NSCOUNT", "ARCOUNT"].map((field) => {
    const count = r.u16(field);
    r.note(`${field} = ${count}`);
    return count;
  });
  const [questionCount, answerCount, authorityCount, additionalCount] = counts;

  // The counts are claims. A question takes at least 5 bytes (a root name,
  // type, class) and a record at least 11, so a header can promise more than
  // the message could ever hold: refuse that at once, before any loop.
  const least = questionCount * 5 + (answerCount + authorityCount + additionalCount) * 11;
  if (least > bytes.length - 12) {
    throw new DnsFormatError(
      `the header promises ${questionCount} question(s) and ` +
        `${answerCount + authorityCount + additionalCount} record(s), at least ${least} bytes, ` +
        `but only ${bytes.length - 12} bytes follow it`,
    );
  }

  const questions: Question[] = [];
  for (let i = 0; i < questionCount; i++) {
    r.heading(`question ${i + 1}`);
    const name = readName(r, `question ${i + 1}`);
    const code = r.u16("QTYPE");
    r.note(`QTYPE = ${code} (${typeName(code)})`);
    const cls = r.u16("QCLASS");
    r.note(`QCLASS = ${cls}${cls === CLASS_IN ? " (IN)" : ""}`);
    const type = TYPE_BY_CODE.get(code) ?? code;
    questions.push(cls === CLASS_IN ? { name, type } : { name, type, class: cls });
  }

  const sections: DnsRecord[][] = [[], [], []];
  let edns: Edns | undefined;
  const names = ["answer", "authority", "additional"];
  for (const [s, count] of [answerCount, authorityCount, additionalCount].entries()) {
    for (let i = 0; i < count; i++) {
      r.heading(`${names[s]} ${i + 1}`);
      const record = readRecord(r, `${names[s]} ${i + 1}`);
      if ("udpPayloadSize" in record) {
        // RFC 6891 §6.1.1: one OPT at most, in the additional section only.
        if (s !== 2) throw new DnsFormatError(`an OPT record in the ${names[s]} section`);
        if (edns) throw new DnsFormatError("more than one OPT record");
        edns = record;
      } else {
        sections[s].push(record);
      }
    }
  }
  if (r.offset !== bytes.length) {
    throw new DnsFormatError(
      `${bytes.length - r.offset} bytes follow the last record the header counts`,
    );
  }
  const [answers, authorities, additionals] = sections;
  const message: DnsMessage = { id, flags, questions, answers, authorities, additionals };
  if (edns) message.edns = edns;
  return message;
}

function readRecord(r: WireReader, what: string): DnsRecord | Edns {
  const name = readName(r, what);
  const code = r.u16("TYPE");
  r.note(`TYPE = ${code} (${typeName(code)})`);
  const cls = r.u16("CLASS");
  if (code === TYPES.OPT) return readOpt(r, name, cls, what);
  r.note(`CLASS = ${cls}${cls === CLASS_IN ? " (IN)" : ""}`);
  const ttl = r.u32("TTL");
  r.note(`TTL = ${ttl} s`);
  const rdLength = r.u16("RDLENGTH");
  r.note(`RDLENGTH = ${rdLength}`);
  r.need(rdLength, `${what}: RDATA`);
  const end = r.offset + rdLength;
  const base = cls === CLASS_IN ? { name, ttl } : { name, ttl, class: cls };
  const type = TYPE_BY_CODE.get(code);

  // The data must fill RDLENGTH exactly: not less (a field cut short), not
  // more (a name inside it running into the next record).
  let record: DnsRecord;
  const fixed = (size: number) => {
    if (rdLength !== size) {
      throw new DnsFormatError(`${what}: ${type} data is ${size} bytes, RDLENGTH says ${rdLength}`);
    }
  };
  switch (type) {
    case "A": {
      fixed(4);
      const data = [...r.take(4, "an IPv4 address")].join(".");
      r.note(`A ${data}`);
      record = { ...base, type, data };
      break;
    }
    case "AAAA": {
      fixed(16);
      const data = formatIPv6(r.take(16, "an IPv6 address"));
      r.note(`AAAA ${data}`);
      record = { ...base, type, data };
      break;
    }
    case "NS":
    case "CNAME":
      record = { ...base, type, data: readName(r, `${what}: ${type}`) };
      break;
    case "MX": {
      const preference = r.u16("MX preference");
      r.note(`preference = ${preference}`);
      record = { ...base, type, data: { preference, exchange: readName(r, `${what}: MX`) } };
      break;
    }
    case "TXT": {
      // The strings stay bytes: RFC 1035 §3.3 makes a <character-string> any
      // bytes at all, not text, and decoding them as UTF-8 would replace a
      // byte that is not UTF-8 with U+FFFD, and so change the record.
      const data: Uint8Array[] = [];
      while (r.offset < end) {
        const length = r.u8("a TXT string's length");
        if (r.offset + length > end) {
          throw new DnsFormatError(`${what}: a ${length}-byte TXT string runs past RDLENGTH`);
        }
        const string = r.take(length, "a TXT string");
        r.note(`string of ${length} bytes: ${quoteText(string)}`);
        data.push(string);
      }
      record = { ...base, type, data };
      break;
    }
    case "SOA": {
      const mname = readName(r, `${what}: SOA MNAME`);
      const rname = readName(r, `${what}: SOA RNAME`);
      const numbers = ["serial", "refresh", "retry", "expire", "minimum"].map((field) => {
        const value = r.u32(`SOA ${field}`);
        r.note(`${field} = ${value}`);
        return value;
      });
      const [serial, refresh, retry, expire, minimum] = numbers;
      record = { ...base, type, data: { mname, rname, serial, refresh, retry, expire, minimum } };
      break;
    }
    default: {
      const data = r.take(rdLength, "RDATA");
      r.note(`data (${rdLength} bytes, not decoded)`);
      record = { ...base, type: code, data };
    }
  }
  if (r.offset !== end) {
    throw new DnsFormatError(
      `${what}: the ${typeName(code)} data takes ${r.offset - (end - rdLength)} bytes, ` +
        `RDLENGTH says ${rdLength}`,
    );
  }
  return record;
}

function readOpt(r: WireReader, name: string, udpPayloadSize: number, what: string): Edns {
  r.note(`CLASS = ${udpPayloadSize}: the UDP payload size the sender accepts`);
  if (name !== ".") throw new DnsFormatError(`${what}: an OPT record must be owned by the root`);
  const extendedRcode = r.u8("OPT extended RCODE");
  const version = r.u8("OPT version");
  const flags = r.u16("OPT flags");
  r.note(
    `TTL: extended RCODE ${extendedRcode}, version ${version}, ` +
      `flags 0x${hex(flags, 4)} (DO=${flags >> 15})`,
  );
  const rdLength = r.u16("RDLENGTH");
  r.note(`RDLENGTH = ${rdLength}`);
  r.need(rdLength, `${what}: OPT options`);
  const end = r.offset + rdLength;
  const options: Edns["options"] = [];
  while (r.offset < end) {
    const code = r.u16("an option code");
    const length = r.u16("an option length");
    if (r.offset + length > end) {
      throw new DnsFormatError(`${what}: an EDNS option of ${length} bytes runs past RDLENGTH`);
    }
    const data = r.take(length, "option data");
    r.note(`option ${code}${code === 10 ? " (COOKIE)" : ""}, ${length} bytes`);
    options.push({ code, data });
  }
  if (r.offset !== end) throw new DnsFormatError(`${what}: EDNS options overrun RDLENGTH`);
  return { udpPayloadSize, extendedRcode, version, dnssecOk: (flags & 0x8000) !== 0, options };
}

// ---------------------------------------------------------------------------
// Addresses and presentation
// ---------------------------------------------------------------------------

// An A record holds 4 bytes, an AAAA 16. Reading and writing addresses as
// text is the lesson of ./ip_addresses.ts (checked against Python's
// ipaddress on 100,000 inputs), so we use its parser and its formatter, and
// only convert its numbers to bytes and back.

/**
 * The 4 bytes of a dotted-quad IPv4 address.
 * @throws {RangeError} If `text` is not four numbers from 0 to 255 (no leading zeros).
 */
export function parseIPv4(text: string): Uint8Array {
  return addressBytes(text, 4);
}

/**
 * The 16 bytes of an IPv6 address: eight 16-bit groups in hex, one run of
 * zero groups shortened to `::`, and optionally a dotted IPv4 tail, as the
 * last 32 bits only (RFC 4291 §2.2).
 * @throws {RangeError} If `text` is not an IPv6 address, or has a `%zone`.
 */
export function parseIPv6(text: string): Uint8Array {
  return addressBytes(text, 6);
}

function addressBytes(text: string, version: 4 | 6): Uint8Array {
  let address: ip.IPAddress;
  try {
    address = version === 4 ? ip.parseIPv4(text) : ip.parseIPv6(text);
  } catch (error) {
    throw new RangeError(`not an IPv${version} address: ${(error as Error).message}`);
  }
  // A zone (fe80::1%eth0) names a link on one machine: it means nothing in DNS data.
  if (address.zone !== undefined) throw new RangeError(`a zone in an IPv6 address: "${text}"`);
  return ip.addressToBytes(address);
}

/**
 * An IPv6 address as text, as dig prints it: RFC 5952's canonical form
 * (lowercase hex, no leading zeros, the longest run of two or more zero
 * groups as `::`), except that an IPv4 address carried by one of RFC 4291's
 * prefixes is written as a dotted quad, as RFC 5952 §5 recommends:
 * IPv4-mapped `::ffff:192.0.2.1` (§2.5.5.2), and the deprecated
 * IPv4-compatible `::192.0.2.1` (§2.5.5.1), though `::1` and `::2` stay.
 */
export function formatIPv6(bytes: Uint8Array): string {
  const value = bytes.reduce((number, byte) => (number << 8n) | BigInt(byte), 0n);
  const [top96, low32] = [value >> 32n, value & 0xffff_ffffn];
  if (top96 === 0xffffn || (top96 === 0n && low32 > 0xffffn)) {
    return `::${top96 === 0n ? "" : "ffff:"}${ip.formatAddress(ip.ipv4(low32))}`;
  }
  return ip.formatAddress(ip.ipv6(value));
}

// TXT strings are bytes; dig shows them in quotes, escaping a quote or a
// backslash with a backslash, and any byte outside printable ASCII as \DDD.
function quoteText(string: Uint8Array): string {
  let quoted = '"';
  for (const byte of string) {
    if (byte === 0x22 || byte === 0x5c) quoted += "\\" + String.fromCharCode(byte);
    else if (byte >= 0x20 && byte < 0x7f) quoted += String.fromCharCode(byte);
    else quoted += "\\" + String(byte).padStart(3, "0");
  }
  return quoted + '"';
}

/**
 * TXT data from text: each string as its UTF-8 bytes. (A decoded TXT record
 * holds bytes, which need not be UTF-8 at all.)
 */
export function txtData(...texts: string[]): Uint8Array[] {
  return texts.map((text) => new TextEncoder().encode(text));
}

/** A record's data as one line of text: what `dig +short` prints for it. */
export function formatData(record: DnsRecord): string {
  switch (record.type) {
    case "A":
    case "AAAA":
    case "NS":
    case "CNAME":
      return record.data;
    case "MX":
      return `${record.data.preference} ${record.data.exchange}`;
    case "TXT":
      return record.data.map(quoteText).join(" ");
    case "SOA": {
      const { mname, rname, serial, refresh, retry, expire, minimum } = record.data;
      return `${mname} ${rname} ${serial} ${refresh} ${retry} ${expire} ${minimum}`;
    }
    default: // RFC 3597 §5: the generic form for a type we do not know
      return `\\# ${record.data.length} ${[...record.data].map((b) => hex(b, 2)).join("")}`;
  }
}

/** A record as dig prints it in a section: name, TTL, class, type, data. */
export function formatRecord(record: DnsRecord): string {
  const cls = (record.class ?? CLASS_IN) === CLASS_IN ? "IN" : `CLASS${record.class}`;
  const type = typeof record.type === "number" ? typeName(record.type) : record.type;
  return `${record.name}\t${record.ttl}\t${cls}\t${type}\t${formatData(record)}`;
}

function describeFlags(flags: DnsFlags): string {
  const bit = (name: string, on: boolean) => `${name}=${on ? 1 : 0}`;
  return `flags: ${bit("QR", flags.qr)} (${flags.qr ? "response" : "query"}), ` +
    `OPCODE=${flags.opcode}${flags.opcode === 0 ? " (QUERY)" : ""}, ` +
    [
      bit("AA", flags.aa),
      bit("TC", flags.tc),
      bit("RD", flags.rd),
      bit("RA", flags.ra),
      bit("AD", flags.ad),
      bit("CD", flags.cd),
    ].join(" ") + `, RCODE=${flags.rcode} (${rcodeName(flags.rcode)})`;
}

/** The full response code: the header's 4 bits, and EDNS's upper 8 bits if present. */
export function fullRcode(message: DnsMessage): number {
  return ((message.edns?.extendedRcode ?? 0) << 4) | message.flags.rcode;
}

/** A message in the layout of dig's full output: header, flags, EDNS, then each section. */
export function formatMessage(message: DnsMessage): string {
  const { flags } = message;
  const set = (["qr", "aa", "tc", "rd", "ra", "ad", "cd"] as const).filter((flag) => flags[flag]);
  const lines = [
    `;; ->>HEADER<<- opcode: ${flags.opcode === 0 ? "QUERY" : flags.opcode}, ` +
    `status: ${rcodeName(fullRcode(message))}, id: ${message.id}`,
    `;; flags: ${set.join(" ")}; QUERY: ${message.questions.length}, ` +
    `ANSWER: ${message.answers.length}, AUTHORITY: ${message.authorities.length}, ` +
    `ADDITIONAL: ${message.additionals.length + (message.edns ? 1 : 0)}`,
  ];
  if (message.edns) {
    const { version, dnssecOk, udpPayloadSize } = message.edns;
    lines.push(
      `;; EDNS: version: ${version}, flags:${dnssecOk ? " do" : ""}; udp: ${udpPayloadSize}`,
    );
  }
  lines.push("", ";; QUESTION SECTION:");
  for (const q of message.questions) {
    const type = typeof q.type === "number" ? typeName(q.type) : q.type;
    lines.push(`;${q.name}\t\t${q.class ? `CLASS${q.class}` : "IN"}\t${type}`);
  }
  for (
    const [title, records] of [
      ["ANSWER", message.answers],
      ["AUTHORITY", message.authorities],
      ["ADDITIONAL", message.additionals],
    ] as const
  ) {
    if (records.length > 0) lines.push("", `;; ${title} SECTION:`, ...records.map(formatRecord));
  }
  return lines.join("\n");
}

/**
 * Every byte of a message, field by field: offset, bytes in hex, meaning. It
 * is {@linkcode decodeMessage} itself, with a trace, so the dump shows what
 * the decoder read; a malformed message is dumped up to where it breaks.
 */
export function dumpMessage(bytes: Uint8Array): string {
  const lines: string[] = [];
  const trace: Trace = (offset, length, text) => {
    if (length === 0) {
      lines.push(text.startsWith("=") ? `${"".padEnd(35)}${text}` : `  -- ${text}`);
      return;
    }
    for (let start = 0; start < length; start += 8) {
      const chunk = [...bytes.subarray(offset + start, offset + Math.min(length, start + 8))];
      const where = start === 0 ? `0x${hex(offset, 4)}` : "";
      const shown = chunk.map((b) => hex(b, 2)).join(" ");
      lines.push(`  ${where.padEnd(8)}${shown.padEnd(24)} ${start === 0 ? text : ""}`.trimEnd());
    }
  };
  try {
    decodeMessage(bytes, { trace });
  } catch (error) {
    if (!(error instanceof DnsFormatError)) throw error;
    lines.push(`  !! malformed: ${error.message}`);
  }
  return lines.join("\n");
}

function hex(value: number, digits: number): string {
  return value.toString(16).padStart(digits, "0");
}

// ---------------------------------------------------------------------------
// The client: Deno.resolveDns, then the same by hand
// ---------------------------------------------------------------------------

/** What {@linkcode lookupWithDeno} returns for each type: Deno's own record shapes. */
export type DenoLookupType = "A" | "AAAA" | "CNAME" | "MX" | "NS" | "SOA" | "TXT";

/**
 * The easy way: `Deno.resolveDns`, pointed at one server. Deno's resolver
 * builds the query, retries, falls back to TCP, and follows CNAME chains to
 * give only the final records; it does not show any of it.
 */
export function lookupWithDeno(
  name: string,
  type: DenoLookupType,
  server: { hostname: string; port: number },
  signal?: AbortSignal,
): Promise<unknown[]> {
  // deno-lint-ignore no-explicit-any
  return Deno.resolveDns(name, type as any, {
    nameServer: { ipAddr: server.hostname, port: server.port },
    signal,
  });
}

/** Options for {@linkcode buildQuery}. */
export interface BuildQueryOptions {
  /** The ID: random by default, so that a forged reply must guess it (RFC 5452). */
  id?: number;
  /** Ask the server to recurse (a resolver would; an authority ignores it). @default {true} */
  recursionDesired?: boolean;
  /** The UDP payload size to offer in an EDNS0 OPT record; 0 sends none. @default {1232} */
  udpPayloadSize?: number;
}

/** A random 16-bit query ID, from the system's cryptographic generator. */
export function randomId(): number {
  return crypto.getRandomValues(new Uint16Array(1))[0];
}

/**
 * A standard query for one name and type, as a message (encode it with
 * {@linkcode encodeMessage}).
 */
export function buildQuery(
  name: string,
  type: QueryType,
  options: BuildQueryOptions = {},
): DnsMessage {
  const { id = randomId(), recursionDesired = true, udpPayloadSize = EDNS_UDP_SIZE } = options;
  const query: DnsMessage = {
    id,
    flags: {
      qr: false,
      opcode: 0,
      aa: false,
      tc: false,
      rd: recursionDesired,
      ra: false,
      ad: false,
      cd: false,
      rcode: 0,
    },
    questions: [{ name: labelsToName(nameToLabels(name)), type }],
    answers: [],
    authorities: [],
    additionals: [],
  };
  if (udpPayloadSize > 0) {
    query.edns = { udpPayloadSize, extendedRcode: 0, version: 0, dnssecOk: false, options: [] };
  }
  return query;
}

/**
 * Why `response` does not answer `query`, or `undefined` if it does: it must
 * be a response, carry the query's ID, and repeat its question. Anyone can
 * send a datagram to our port; these checks (with the random ID and the
 * random source port) are what make a forged answer hard to slip in (RFC 5452
 * §9.1). A FORMERR, NOTIMP or REFUSED may leave the question out.
 */
export function mismatch(query: DnsMessage, response: DnsMessage): string | undefined {
  if (!response.flags.qr) return "it is a query, not a response";
  if (response.id !== query.id) return `its ID 0x${hex(response.id, 4)} is not ours`;
  if (response.questions.length === 0 && response.flags.rcode !== 0) return undefined;
  const [asked] = query.questions;
  const [echoed] = response.questions;
  if (
    response.questions.length !== 1 ||
    canonicalName(echoed.name) !== canonicalName(asked.name) ||
    typeCode(echoed.type) !== typeCode(asked.type) ||
    (echoed.class ?? CLASS_IN) !== (asked.class ?? CLASS_IN)
  ) {
    return "its question is not the one we asked";
  }
  return undefined;
}

/** Options for {@linkcode queryDns}. */
export interface QueryOptions extends BuildQueryOptions {
  /** The server's address. @default {"127.0.0.1"} */
  hostname?: string;
  /** The server's port. @default {53} */
  port?: number;
  /** `"udp"` (falling back to TCP when truncated) or `"tcp"` from the start. @default {"udp"} */
  transport?: "udp" | "tcp";
  /** How long each attempt waits for a reply, in ms. @default {2000} */
  timeout?: number;
  /** UDP sends before giving up. @default {3} */
  maxAttempts?: number;
  /** Where retries, ignored datagrams and the TCP fallback are reported. @default {() => {}} */
  log?: (line: string) => void;
  /** Stops waiting and retrying. */
  signal?: AbortSignal;
}

/** What {@linkcode queryDns} got. */
export interface QueryResult {
  /** The query sent, and its bytes. */
  query: DnsMessage;
  queryBytes: Uint8Array;
  /** The reply that answered it, and its bytes (over TCP, without the length prefix). */
  response: DnsMessage;
  responseBytes: Uint8Array;
  /** How the reply came: over UDP, or over TCP (asked for, or after a truncated UDP reply). */
  transport: "udp" | "tcp";
  /** UDP sends (0 if asked over TCP from the start). */
  attempts: number;
}

/**
 * Ask a DNS server one question by hand: over UDP with a timeout and retries,
 * then over TCP if the UDP reply is truncated (TC=1), or over TCP at once.
 * Any response code is returned (NXDOMAIN is an answer); check
 * {@linkcode fullRcode}.
 * @throws {Error} When no reply comes (`cause`: a {@linkcode RetryError} of
 *   timeouts), or the server cannot be reached.
 * @throws {RangeError} For a `hostname` that is not a dotted quad, an IPv6
 *   address or a name ({@linkcode canonicalHost}), or a `timeout` over 2^31 - 1 ms.
 */
export async function queryDns(
  name: string,
  type: QueryType = "A",
  options: QueryOptions = {},
): Promise<QueryResult> {
  const { port = 53, transport = "udp", timeout = 2000, log = () => {} } = options;
  checkTimer("timeout", timeout);
  const hostname = canonicalHost(options.hostname ?? "127.0.0.1");
  const query = buildQuery(name, type, options);
  const queryBytes = encodeMessage(query);
  const server = { hostname, port };
  if (transport === "tcp") {
    return {
      query,
      queryBytes,
      ...await exchangeTcp(query, queryBytes, server, options),
      attempts: 0,
    };
  }
  const udp = await exchangeUdp(query, queryBytes, server, options);
  if (!udp.response.flags.tc) return { query, queryBytes, ...udp, transport: "udp" };

  // RFC 7766 §5 and RFC 1035 §4.2.2: a truncated reply is a signal to ask the
  // same question over TCP, where a message can be up to 65535 bytes.
  log(
    `the UDP reply (${udp.responseBytes.length} bytes) has TC=1, truncated: ` +
      `asking again over TCP`,
  );
  const tcp = await exchangeTcp(query, queryBytes, server, options);
  return { query, queryBytes, ...tcp, attempts: udp.attempts };
}

interface Exchange {
  response: DnsMessage;
  responseBytes: Uint8Array;
  transport: "udp" | "tcp";
}

// Over UDP: one socket for the whole exchange, on a random port the system
// picks, so late replies to an earlier attempt still reach us. Each attempt
// sends the query and reads datagrams until one answers it; silence past the
// timeout means send again, after a growing pause.
async function exchangeUdp(
  query: DnsMessage,
  queryBytes: Uint8Array,
  server: { hostname: string; port: number },
  options: QueryOptions,
): Promise<Exchange & { attempts: number }> {
  const { timeout = 2000, maxAttempts = 3, log = () => {}, signal } = options;
  const socket = listenUdp(localAddressFor(server.hostname), 0);
  const serverAddress = hostAddress(server.hostname); // undefined for a name
  const to: Deno.NetAddr = { transport: "udp", ...server };
  const where = `udp://${formatHostPort(server.hostname, server.port)}`;
  let pending: Promise<[Uint8Array, Deno.Addr]> | undefined;

  // Deno cannot cancel a receive(): a timed-out attempt leaves it pending,
  // and the next attempt waits on the same one.
  const receive = (attemptSignal: AbortSignal) =>
    new Promise<[Uint8Array, Deno.Addr]>((resolve, reject) => {
      const current = pending ??= socket.receive(new Uint8Array(65536));
      const onAbort = () => reject(attemptSignal.reason);
      attemptSignal.addEventListener("abort", onAbort, { once: true });
      current.then((result) => {
        attemptSignal.removeEventListener("abort", onAbort);
        if (attemptSignal.aborted) return;
        pending = undefined;
        resolve(result);
      }, (error) => {
        attemptSignal.removeEventListener("abort", onAbort);
        pending = undefined;
        reject(error);
      });
    });

  const attempt = async (attemptSignal: AbortSignal): Promise<Exchange> => {
    await socket.send(queryBytes, to);
    while (true) {
      const [bytes, from] = await receive(attemptSignal);
      const sender = from as Deno.NetAddr;
      if (sender.port !== server.port || !sameAddress(sender.hostname, serverAddress)) {
        log(`ignored ${bytes.length} bytes from ${formatHostPort(sender.hostname, sender.port)}`);
        continue;
      }
      let response: DnsMessage;
      try {
        response = decodeMessage(bytes);
      } catch (error) {
        if (!(error instanceof DnsFormatError)) throw error;
        log(`ignored a malformed reply: ${error.message}`);
        continue;
      }
      const problem = mismatch(query, response);
      if (problem) {
        log(`ignored a reply: ${problem}`);
        continue;
      }
      return { response, responseBytes: bytes, transport: "udp" };
    }
  };

  let attempts = 0;
  try {
    const exchange = await retry(() => {
      attempts++;
      return withTimeout(attempt, timeout, { signal });
    }, {
      maxAttempts,
      minTimeout: Math.min(timeout, 250),
      maxTimeout: timeout,
      jitter: 0.5,
      signal,
      isRetriable: (error) => error instanceof DOMException && error.name === "TimeoutError",
      onRetry: (_, n, wait) =>
        log(
          `no reply within ${timeout} ms (attempt ${n}/${maxAttempts}); sending again in ${wait} ms`,
        ),
    });
    return { ...exchange, attempts };
  } catch (error) {
    throw new Error(`no answer from ${where}`, { cause: error });
  } finally {
    pending?.catch(() => {});
    socket.close();
  }
}

// Over TCP (RFC 1035 §4.2.2, RFC 7766 §8): the same message, after a 2-byte
// length, because a stream has no edges of its own. One write for both, so
// the prefix and the message travel together.
async function exchangeTcp(
  query: DnsMessage,
  queryBytes: Uint8Array,
  server: { hostname: string; port: number },
  options: QueryOptions,
): Promise<Exchange> {
  const { timeout = 2000, signal } = options;
  const where = `tcp://${formatHostPort(server.hostname, server.port)}`;
  try {
    return await withTimeout(
      async (attemptSignal) => {
        const conn = await Deno.connect(server);
        const onAbort = () => conn.close();
        attemptSignal.addEventListener("abort", onAbort, { once: true });
        try {
          await writeAll(conn, tcpFrame(queryBytes));
          const responseBytes = await readTcpMessage(conn);
          if (responseBytes === null) {
            throw new Error("the server closed the connection without a reply");
          }
          const response = decodeMessage(responseBytes);
          const problem = mismatch(query, response);
          if (problem) throw new DnsFormatError(`the reply does not answer our query: ${problem}`);
          return { response, responseBytes, transport: "tcp" as const };
        } finally {
          attemptSignal.removeEventListener("abort", onAbort);
          if (!attemptSignal.aborted) conn.close();
        }
      },
      timeout,
      { signal },
    );
  } catch (error) {
    throw new Error(`no answer from ${where}`, { cause: error });
  }
}

/** A message with its 2-byte big-endian length in front, for TCP. */
export function tcpFrame(message: Uint8Array): Uint8Array<ArrayBuffer> {
  if (message.length > 0xffff) {
    throw new RangeError(`a ${message.length}-byte message is over 65535`);
  }
  const frame = new Uint8Array(2 + message.length);
  frame[0] = message.length >> 8;
  frame[1] = message.length & 0xff;
  frame.set(message, 2);
  return frame;
}

/**
 * Read one length-prefixed message from a TCP stream, however the reads split
 * it. Returns `null` if the stream ends cleanly before a new message.
 * @throws {DnsFormatError} If the length is over `maxSize`.
 * @throws {UnexpectedEofError} If the stream ends inside a message.
 */
export async function readTcpMessage(
  reader: Reader,
  maxSize = 0xffff,
): Promise<Uint8Array<ArrayBuffer> | null> {
  const prefix = new Uint8Array(2);
  let received = 0;
  while (received < 2) {
    const n = await reader.read(prefix.subarray(received));
    if (n === null) {
      if (received === 0) return null;
      throw new UnexpectedEofError(2, prefix.slice(0, received));
    }
    received += n;
  }
  const size = (prefix[0] << 8) | prefix[1];
  if (size > maxSize) {
    throw new DnsFormatError(`a ${size}-byte message is over this server's ${maxSize}-byte cap`);
  }
  return await readExactly(reader, size);
}

// A reply is matched to its query by the address it came from, among other
// things (RFC 5452 §9.1), and an address is a number, not a text: ::1 is
// also 0:0:0:0:0:0:0:1, ::0001 and [::1]. So the server's address is read
// once into its canonical text, and compared as a number with each reply's
// source. IPv4 is accepted only as a dotted quad: the short forms that the C
// resolver, and so Deno.connect, also accepts (127.1, 2130706433, 0x7f.0.0.1,
// 127.0.0.010, which it reads as octal: 127.0.0.8) mean different addresses
// to different parsers, so we refuse them rather than guess.

/**
 * The server address to use for `host`: an IP address in its canonical text
 * (`0:0:0:0:0:0:0:1` and `[::1]` are `::1`), or a host name as written.
 * @throws {RangeError} If `host` looks like an address but is not one (`127.1`, `::1::`).
 */
export function canonicalHost(host: string): string {
  const address = hostAddress(host);
  return address ? ip.formatAddress(address, { mixed: true }) : host;
}

// The address `host` names, or undefined for a host name. Text with a colon
// is IPv6; text whose last label is a number is IPv4 (a top-level domain is
// never all-numeric, RFC 3696 §2).
function hostAddress(host: string): ip.IPAddress | undefined {
  const text = host.match(/^\[(.*:.*)\]$/)?.[1] ?? host;
  if (!text.includes(":") && !/(^|\.)(\d+|0x[\da-f]*)$/i.test(text)) return undefined;
  try {
    return ip.parseAddress(text);
  } catch (error) {
    throw new RangeError(`not an IP address: ${(error as Error).message}`);
  }
}

// Whether a reply's source is the server. A host name cannot be compared
// without resolving it (to maybe several addresses): then the port must do.
function sameAddress(source: string, server: ip.IPAddress | undefined): boolean {
  if (server === undefined) return true;
  try {
    const address = ip.parseAddress(source);
    return address.version === server.version && address.value === server.value;
  } catch {
    return false;
  }
}

// setTimeout keeps its delay in a signed 32-bit number of milliseconds: a
// longer one (over 24.8 days) does not wait longer, it fires at once.
const MAX_TIMER_MS = 2 ** 31 - 1;

function checkTimer(what: string, ms: number) {
  if (!(ms >= 0 && ms <= MAX_TIMER_MS)) {
    throw new RangeError(`${what} must be from 0 to ${MAX_TIMER_MS} ms, got ${ms}`);
  }
}

function formatHostPort(hostname: string, port: number): string {
  return `${hostname.includes(":") ? `[${hostname}]` : hostname}:${port}`;
}

// ---------------------------------------------------------------------------
// The server: an authority for one small zone
// ---------------------------------------------------------------------------

/** A zone: its origin (apex) and every record in it; the apex must hold an SOA. */
export interface Zone {
  origin: string;
  records: DnsRecord[];
}

// Every name here lives under .test, reserved for testing (RFC 6761 §6.2),
// and every address is a documentation one (RFC 5737, RFC 3849): nothing in
// this zone can ever collide with the real DNS.
const BIG_TXT: DnsRecord[] = Array.from({ length: 24 }, (_, i) => ({
  name: "big.wirebook.test.",
  type: "TXT",
  ttl: 300,
  data: txtData(
    `chunk ${String(i + 1).padStart(2, "0")} of 24: far too much for one 1232-byte datagram.`,
  ),
}));

/** The zone `serve` answers for: `wirebook.test.` */
export const DEMO_ZONE: Zone = {
  origin: "wirebook.test.",
  records: [
    {
      name: "wirebook.test.",
      type: "SOA",
      ttl: 3600,
      data: {
        mname: "ns1.wirebook.test.",
        rname: "hostmaster.wirebook.test.",
        serial: 2025010101,
        refresh: 7200,
        retry: 3600,
        expire: 1209600,
        minimum: 300,
      },
    },
    { name: "wirebook.test.", type: "NS", ttl: 3600, data: "ns1.wirebook.test." },
    { name: "wirebook.test.", type: "NS", ttl: 3600, data: "ns2.wirebook.test." },
    { name: "wirebook.test.", type: "A", ttl: 300, data: "192.0.2.1" },
    {
      name: "wirebook.test.",
      type: "MX",
      ttl: 300,
      data: { preference: 10, exchange: "mail.wirebook.test." },
    },
    {
      name: "wirebook.test.",
      type: "MX",
      ttl: 300,
      data: { preference: 20, exchange: "mx2.wirebook.test." },
    },
    { name: "wirebook.test.", type: "TXT", ttl: 300, data: txtData("v=spf1 mx -all") },
    {
      name: "wirebook.test.",
      type: "TXT",
      ttl: 300,
      data: txtData("wirebook demo zone", "two strings, one record"),
    },
    { name: "ns1.wirebook.test.", type: "A", ttl: 3600, data: "192.0.2.53" },
    { name: "ns2.wirebook.test.", type: "A", ttl: 3600, data: "192.0.2.54" },
    { name: "www.wirebook.test.", type: "CNAME", ttl: 300, data: "web.wirebook.test." },
    { name: "web.wirebook.test.", type: "CNAME", ttl: 300, data: "host.wirebook.test." },
    { name: "host.wirebook.test.", type: "A", ttl: 300, data: "192.0.2.10" },
    { name: "host.wirebook.test.", type: "A", ttl: 300, data: "192.0.2.11" },
    { name: "host.wirebook.test.", type: "AAAA", ttl: 300, data: "2001:db8::10" },
    { name: "host.wirebook.test.", type: "AAAA", ttl: 300, data: "2001:db8::11" },
    { name: "mail.wirebook.test.", type: "A", ttl: 300, data: "192.0.2.25" },
    { name: "mail.wirebook.test.", type: "AAAA", ttl: 300, data: "2001:db8::25" },
    { name: "mx2.wirebook.test.", type: "A", ttl: 300, data: "192.0.2.26" },
    { name: "elsewhere.wirebook.test.", type: "CNAME", ttl: 300, data: "www.example.net." },
    ...BIG_TXT,
  ],
};

const zoneIndexes = new WeakMap<Zone, Map<string, DnsRecord[]>>();

// Records by canonical owner name, built once per zone.
function indexZone(zone: Zone): Map<string, DnsRecord[]> {
  let index = zoneIndexes.get(zone);
  if (!index) {
    index = new Map();
    for (const record of zone.records) {
      const key = canonicalName(record.name);
      index.set(key, [...index.get(key) ?? [], record]);
    }
    zoneIndexes.set(zone, index);
  }
  return index;
}

function emptyResponse(query: DnsMessage, rcode: number, aa = false): DnsMessage {
  const response: DnsMessage = {
    id: query.id,
    flags: {
      qr: true,
      opcode: query.flags.opcode,
      aa,
      tc: false,
      rd: query.flags.rd,
      ra: false,
      ad: false,
      cd: query.flags.cd,
      rcode: rcode & 0xf,
    },
    questions: query.questions,
    answers: [],
    authorities: [],
    additionals: [],
  };
  // RFC 6891 §7: answer EDNS with EDNS, offering our own payload size.
  if (query.edns) {
    response.edns = {
      udpPayloadSize: EDNS_UDP_SIZE,
      extendedRcode: rcode >> 4,
      version: 0,
      dnssecOk: false,
      options: [],
    };
  }
  return response;
}

/**
 * An authoritative server's answer to a query, as a message (RFC 1034 §4.3.2,
 * without delegations or wildcards): the records of the name and type asked,
 * following CNAMEs inside the zone; NXDOMAIN for a name that does not exist
 * and NOERROR with no answers for a type it lacks, each with the zone's SOA
 * in the authority section (RFC 2308); REFUSED for a name outside the zone.
 */
export function answerQuery(zone: Zone, query: DnsMessage): DnsMessage {
  if (query.flags.opcode !== 0) return emptyResponse(query, RCODES.NOTIMP);
  if (query.questions.length !== 1) return emptyResponse(query, RCODES.FORMERR);
  if (query.edns && query.edns.version > 0) return emptyResponse(query, RCODES.BADVERS);
  const [question] = query.questions;
  const qtype = typeCode(question.type);
  if ((question.class ?? CLASS_IN) !== CLASS_IN || !isInZone(question.name, zone.origin)) {
    return emptyResponse(query, RCODES.REFUSED);
  }
  if (qtype === TYPES.OPT || qtype === 251 || qtype === 252) {
    // OPT is no question; IXFR (251) and AXFR (252) copy whole zones: not here.
    return emptyResponse(query, qtype === TYPES.OPT ? RCODES.FORMERR : RCODES.REFUSED);
  }

  const index = indexZone(zone);
  const soa = index.get(canonicalName(zone.origin))?.find((record) => record.type === "SOA");
  // RFC 2308 §3: a negative answer carries the SOA, with the TTL the lesser
  // of its own and its MINIMUM field: how long "no such name" may be cached.
  const negative = (rcode: number, answers: DnsRecord[]) => {
    const response = emptyResponse(query, rcode, true);
    response.answers = answers;
    if (soa?.type === "SOA") {
      response.authorities = [{ ...soa, ttl: Math.min(soa.ttl, soa.data.minimum) }];
    }
    return response;
  };

  const answers: DnsRecord[] = [];
  let name = question.name;
  const seen = new Set<string>();
  while (true) {
    const key = canonicalName(name);
    seen.add(key);
    const here = index.get(key) ?? [];
    if (here.length === 0) {
      // No records here. If a longer name ends in this one, the name still
      // exists (an "empty non-terminal"): NOERROR with no data, not NXDOMAIN.
      const exists = [...index.keys()].some((owner) => owner !== key && isInZone(owner, key));
      return negative(exists ? RCODES.NOERROR : RCODES.NXDOMAIN, answers);
    }
    const cname = here.find((record) => record.type === "CNAME");
    if (cname && qtype !== TYPES.CNAME && qtype !== TYPES.ANY) {
      // An alias: answer with it, then look up its target in its place. A
      // target outside the zone is the resolver's to follow, not ours.
      answers.push(cname);
      name = cname.data as string;
      if (!isInZone(name, zone.origin) || seen.has(canonicalName(name))) break;
      continue;
    }
    const matching = here.filter((record) =>
      qtype === TYPES.ANY || typeCode(record.type) === qtype
    );
    if (matching.length === 0) return negative(RCODES.NOERROR, answers);
    answers.push(...matching);
    break;
  }
  const response = emptyResponse(query, RCODES.NOERROR, true);
  response.answers = answers;
  return response;
}

/** What {@linkcode handleDnsMessage} decided. */
export interface Handled {
  /** The reply's bytes, or `null` for silence. */
  response: Uint8Array | null;
  /** One line for the log: what came in, what went out. */
  summary: string;
}

/** Options for {@linkcode handleDnsMessage}. */
export interface HandleOptions {
  /** The zone to answer from. @default {DEMO_ZONE} */
  zone?: Zone;
  /** Over UDP replies are capped (512 bytes, or the client's EDNS size up to ours); over TCP not. @default {"udp"} */
  transport?: "udp" | "tcp";
}

/**
 * The whole server in one step, bytes in and bytes out, with no socket: what
 * the UDP loop and each TCP connection call for every message. It never
 * throws. Too short for a header, or not a query: silence (answering a
 * response could start two servers replying to each other forever). Not a
 * well-formed message: FORMERR, echoing only the ID. Too big for UDP: the
 * header and question with TC=1, which sends the client to TCP.
 */
export function handleDnsMessage(bytes: Uint8Array, options: HandleOptions = {}): Handled {
  const { zone = DEMO_ZONE, transport = "udp" } = options;
  if (bytes.length < 12) {
    return { response: null, summary: `${bytes.length} bytes, too short for a header: no reply` };
  }
  const flags = decodeFlags((bytes[2] << 8) | bytes[3]);
  if (flags.qr) return { response: null, summary: "a response, not a query: no reply" };
  const id = (bytes[0] << 8) | bytes[1];
  const bare = (rcode: number) =>
    encodeMessage(
      emptyResponse(
        { id, flags, questions: [], answers: [], authorities: [], additionals: [] },
        rcode,
      ),
    );

  let query: DnsMessage;
  try {
    query = decodeMessage(bytes);
  } catch (error) {
    const reason = error instanceof DnsFormatError ? error.message : String(error);
    return { response: bare(RCODES.FORMERR), summary: `malformed (${reason}): FORMERR` };
  }
  const asked = query.questions.map((q) => `${q.name} ${typeName(typeCode(q.type))}`).join(", ") ||
    "no question";
  let response: DnsMessage;
  let responseBytes: Uint8Array;
  try {
    response = answerQuery(zone, query);
    responseBytes = encodeMessage(response);
  } catch (error) {
    // A bug of ours, or a bad record in the zone: say so, but keep serving.
    return { response: bare(RCODES.SERVFAIL), summary: `${asked}: SERVFAIL (${error})` };
  }
  const status = `${rcodeName(fullRcode(response))}, ${response.answers.length} answer(s)`;
  if (transport === "udp") {
    // RFC 6891 §6.2.5: a size under 512 counts as 512; we send at most our own.
    const limit = query.edns
      ? Math.min(Math.max(query.edns.udpPayloadSize, CLASSIC_UDP_SIZE), EDNS_UDP_SIZE)
      : CLASSIC_UDP_SIZE;
    if (responseBytes.length > limit) {
      // RFC 2181 §9: a client that sees TC ignores the rest and asks over
      // TCP, so a truncated reply need hold no records at all.
      const truncated = { ...response, answers: [], authorities: [], additionals: [] };
      truncated.flags = { ...response.flags, tc: true };
      const small = encodeMessage(truncated);
      return {
        response: small,
        summary: `${asked}: ${status}, ${responseBytes.length} bytes > ${limit}: ` +
          `sent ${small.length} bytes with TC=1`,
      };
    }
  }
  return {
    response: responseBytes,
    summary: `${asked}: ${status} (${responseBytes.length} bytes)`,
  };
}

/** The two sockets of a DNS server: UDP and TCP, on the same port. */
export interface DnsSockets {
  udp: Deno.DatagramConn;
  tcp: Deno.TcpListener;
  /** The address both are bound to. */
  addr: Deno.NetAddr;
}

/**
 * Bind UDP and TCP on the same port, as DNS expects (RFC 7766 §5: a server
 * must offer both). For port 0, UDP picks a free port first, then TCP binds
 * the same number; if TCP finds that number taken, both start over.
 */
export function listenDns(hostname: string, port: number): DnsSockets {
  for (let attempt = 1;; attempt++) {
    const udp = listenUdp(hostname, port);
    const addr = udp.addr as Deno.NetAddr;
    try {
      const tcp = Deno.listen({ hostname, port: addr.port });
      return { udp, tcp, addr: { transport: "tcp", hostname: addr.hostname, port: addr.port } };
    } catch (error) {
      udp.close();
      if (!(error instanceof Deno.errors.AddrInUse) || port !== 0 || attempt >= 20) throw error;
    }
  }
}

/** Options for {@linkcode serveDns}. */
export interface DnsServerOptions {
  /** The zone to answer from. @default {DEMO_ZONE} */
  zone?: Zone;
  /** TCP clients at once; one more is closed at once. @default {64} */
  maxConnections?: number;
  /** Close a TCP connection that sends nothing for this long, in ms (RFC 7766 §6.2.3). @default {10000} */
  idleTimeout?: number;
  /** The largest query accepted, in bytes; a TCP client announcing more is cut off. @default {4096} */
  maxQuerySize?: number;
  /** Where a line per message goes. @default {console.log} */
  log?: (line: string) => void;
  /** Stop: close both sockets and every TCP connection, then return. */
  signal?: AbortSignal;
}

/**
 * Answer queries over UDP and TCP until `signal` aborts. A bad message never
 * stops the server: it gets FORMERR or silence, and a TCP client that sends
 * one too large, or goes quiet, loses only its own connection.
 */
export async function serveDns(sockets: DnsSockets, options: DnsServerOptions = {}): Promise<void> {
  const {
    zone = DEMO_ZONE,
    maxConnections = 64,
    idleTimeout = 10_000,
    maxQuerySize = 4096,
    log = console.log,
    signal,
  } = options;
  checkTimer("idleTimeout", idleTimeout);
  const connections = new Set<Deno.TcpConn>();
  const stop = () => {
    sockets.udp.close();
    sockets.tcp.close();
    for (const conn of connections) conn.close();
  };
  if (signal?.aborted) stop();
  signal?.addEventListener("abort", stop, { once: true });
  const closed = (error: unknown) =>
    error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted;

  const udpLoop = async () => {
    const buffer = new Uint8Array(65536);
    while (true) {
      let datagram: Uint8Array, peer: Deno.Addr;
      try {
        [datagram, peer] = await sockets.udp.receive(buffer);
      } catch (error) {
        if (closed(error)) return;
        // An ICMP error about an earlier reply, reported here on some systems.
        if (error instanceof Deno.errors.ConnectionReset) continue;
        if (error instanceof Deno.errors.ConnectionRefused) continue;
        throw error;
      }
      const from = `udp ${formatAddr(peer)}`;
      if (datagram.length > maxQuerySize) {
        log(`${from}: ${datagram.length} bytes, over the ${maxQuerySize}-byte cap: no reply`);
        continue;
      }
      const { response, summary } = handleDnsMessage(datagram, { zone, transport: "udp" });
      log(`${from}: ${summary}`);
      if (!response) continue;
      try {
        await sockets.udp.send(response, peer);
      } catch (error) {
        if (closed(error)) return;
        log(`${from}: could not reply (${(error as Error).message})`);
      }
    }
  };

  const tcpLoop = async () => {
    const open: Promise<void>[] = [];
    try {
      // acceptConnections (lib) ends when shutdown closes the listener, and
      // outlives a failed accept() (out of file descriptors, say).
      const onError = (error: Error) =>
        log(`tcp: accept() failed (${error.message}); trying again`);
      for await (const conn of acceptConnections(sockets.tcp, { onError })) {
        const from = `tcp ${formatAddr(conn.remoteAddr)}`;
        if (connections.size >= maxConnections) {
          log(`${from}: refused, already ${connections.size} connections`);
          conn.close();
          continue;
        }
        connections.add(conn);
        open.push(
          serveTcpConnection(conn, from, { zone, idleTimeout, maxQuerySize, log })
            .finally(() => connections.delete(conn)),
        );
      }
    } catch (error) {
      if (!closed(error)) throw error;
    }
    await Promise.all(open);
  };

  try {
    await Promise.all([udpLoop(), tcpLoop()]);
  } finally {
    signal?.removeEventListener("abort", stop);
  }
}

// One TCP client: any number of length-prefixed queries, one after another
// (RFC 7766 §6.2.1 lets a client send several on one connection), each
// answered in full, never truncated. Never throws.
async function serveTcpConnection(
  conn: Deno.TcpConn,
  from: string,
  options: { zone: Zone; idleTimeout: number; maxQuerySize: number; log: (line: string) => void },
): Promise<void> {
  const { zone, idleTimeout, maxQuerySize, log } = options;
  let reason = "the client closed";
  // Closed when nothing moves for idleTimeout: no query arrives, or our
  // reply sits unread (a client that never reads would stall the write).
  const idle = setTimeout(() => {
    reason = `${idleTimeout / 1000} s idle`;
    conn.close();
  }, idleTimeout);
  const progress = () => idle.refresh();
  try {
    while (true) {
      const message = await readTcpMessage(conn, maxQuerySize);
      if (message === null) break;
      progress();
      const { response, summary } = handleDnsMessage(message, { zone, transport: "tcp" });
      log(`${from}: ${summary}`);
      if (!response) {
        reason = "a message with no reply";
        break;
      }
      await writeAll(conn, tcpFrame(response));
      progress();
    }
  } catch (error) {
    if (reason === "the client closed") {
      reason = error instanceof Deno.errors.BadResource || error instanceof Deno.errors.Interrupted
        ? "shutdown"
        : (error as Error).message;
    }
  } finally {
    clearTimeout(idle);
    try {
      conn.close();
    } catch { /* already closed */ }
  }
  log(`${from}: closed (${reason})`);
}

function formatAddr(address: Deno.Addr): string {
  if (address.transport !== "tcp" && address.transport !== "udp") return address.transport;
  return formatHostPort(address.hostname, address.port);
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  tcp: { type: "boolean" },
  "no-edns": { type: "boolean" },
  dump: { type: "boolean" },
  system: { type: "boolean" },
  // Caps well inside what setTimeout can wait (2^31 - 1 ms), even for
  // --system, which waits up to --timeout times --attempts in one go.
  timeout: { type: "number", default: 2, min: 0.001, max: 3600 },
  attempts: { type: "number", default: 3, integer: true, min: 1, max: 100 },
  "idle-timeout": { type: "number", default: 10, min: 0.001, max: 86400 },
  "max-connections": { type: "number", default: 64, integer: true, min: 1 },
  quiet: { type: "boolean" },
} as const;

type CommandFlags = ReturnType<typeof parseFlags<typeof FLAGS>>["flags"];

async function main(args: string[]): Promise<void> {
  const { flags: given, positionals } = parseFlags(args, FLAGS);
  const [command = "demo", ...rest] = positionals;
  let host: string;
  try {
    host = canonicalHost(given.host);
  } catch (error) {
    throw new UsageError(`--host: ${(error as Error).message}`);
  }
  const flags = { ...given, host };
  if (command === "serve") {
    if (rest.length > 0) throw new UsageError(`serve takes no arguments, got "${rest[0]}"`);
    return await serveCommand(flags);
  }
  if (command === "query") return await queryCommand(rest, flags);
  if (command === "demo" && positionals.length === 0) return await demo();
  throw new UsageError(`unknown command "${command}"; expected serve or query`);
}

async function serveCommand(flags: CommandFlags): Promise<void> {
  const sockets = listenDns(flags.host, flags.port);
  // One line for the pair: a DNS server is UDP and TCP on one port.
  console.log(listeningBanner("dns", sockets.addr));
  const { hostname, port } = sockets.addr;
  console.log(
    `authoritative for ${DEMO_ZONE.origin} over UDP and TCP; try: ` +
      `dig @${hostname} -p ${port} www.wirebook.test`,
  );
  await serveDns(sockets, {
    idleTimeout: flags["idle-timeout"] * 1000,
    maxConnections: flags["max-connections"],
    log: flags.quiet ? () => {} : console.log,
    signal: shutdownSignal(),
  });
}

/** The type named on the command line: a name (any case), `TYPE99`, or a number. */
export function parseType(text: string): QueryType {
  const upper = text.toUpperCase();
  if (upper in TYPES && upper !== "OPT") return upper as TypeName;
  const number = upper.match(/^(?:TYPE)?(\d{1,5})$/)?.[1];
  if (number !== undefined && Number(number) <= 0xffff) {
    return TYPE_BY_CODE.get(Number(number)) ?? Number(number);
  }
  throw new UsageError(
    `unknown record type "${text}"; try A, AAAA, CNAME, MX, NS, SOA, TXT or ANY`,
  );
}

async function queryCommand(args: string[], flags: CommandFlags): Promise<void> {
  const [name, typeText = "A", ...extra] = args;
  if (name === undefined) {
    throw new UsageError("query needs a NAME, e.g. query www.wirebook.test A");
  }
  if (extra.length > 0) throw new UsageError(`query takes NAME and TYPE, got also "${extra[0]}"`);
  if (flags.port === 0) throw new UsageError("query needs a server --port other than 0");
  const type = parseType(typeText);
  try {
    nameToLabels(name);
  } catch (error) {
    throw new UsageError((error as Error).message);
  }
  const { host: hostname, port } = flags;

  if (flags.system) {
    if (hostAddress(hostname) === undefined) {
      throw new UsageError("--system needs --host to be an IP address (Deno's nameServer option)");
    }
    if (
      typeof type === "number" || !["A", "AAAA", "CNAME", "MX", "NS", "SOA", "TXT"].includes(type)
    ) {
      throw new UsageError(
        `--system asks only for A, AAAA, CNAME, MX, NS, SOA or TXT, not ${typeText}`,
      );
    }
    const signal = AbortSignal.timeout(flags.timeout * 1000 * flags.attempts);
    try {
      const records = await lookupWithDeno(
        name,
        type as DenoLookupType,
        { hostname, port },
        signal,
      );
      for (const record of records) console.log(JSON.stringify(record));
    } catch (error) {
      throw new Error(
        `Deno.resolveDns(${JSON.stringify(name)}, "${type}") via ${hostname}:${port}`,
        {
          cause: error,
        },
      );
    }
    return;
  }

  const result = await queryDns(name, type, {
    hostname,
    port,
    transport: flags.tcp ? "tcp" : "udp",
    timeout: flags.timeout * 1000,
    maxAttempts: flags.attempts,
    udpPayloadSize: flags["no-edns"] ? 0 : EDNS_UDP_SIZE,
    log: (line) => console.error(`note: ${line}`),
  });
  if (flags.dump) {
    console.log(`;; the query, ${result.queryBytes.length} bytes:`);
    console.log(dumpMessage(result.queryBytes));
    console.log(`;; the reply, ${result.responseBytes.length} bytes, over ${result.transport}:`);
    console.log(dumpMessage(result.responseBytes));
    console.log();
  }
  console.log(formatMessage(result.response));
  console.log(
    `\n;; SERVER: ${formatHostPort(hostname, port)} (${result.transport.toUpperCase()}), ` +
      `${result.queryBytes.length} bytes sent, ${result.responseBytes.length} received`,
  );
  const rcode = fullRcode(result.response);
  if (rcode !== RCODES.NOERROR) {
    const meaning: Record<number, string> = {
      [RCODES.NXDOMAIN]: "no such name",
      [RCODES.REFUSED]: "the server will not answer for that name",
      [RCODES.SERVFAIL]: "the server failed",
      [RCODES.FORMERR]: "the server could not read the query",
      [RCODES.NOTIMP]: "the server does not do that",
    };
    const why = meaning[rcode] ? ` (${meaning[rcode]})` : "";
    throw new Error(
      `${name} ${typeText.toUpperCase()}: the server answered ${rcodeName(rcode)}${why}`,
    );
  }
}

// The default run: a server for the demo zone on a free loopback port, asked
// with Deno.resolveDns, then by hand; a truncated answer; a malformed query;
// and one exchange, byte by byte.
async function demo(): Promise<void> {
  const sockets = listenDns("127.0.0.1", 0);
  const { port } = sockets.addr;
  console.log(`server: ${listeningBanner("dns", sockets.addr)} (UDP and TCP)`);
  console.log(
    `server: authoritative for ${DEMO_ZONE.origin} (${DEMO_ZONE.records.length} records)`,
  );
  const stop = new AbortController();
  const serverLog: string[] = [];
  const server = serveDns(sockets, { log: (line) => serverLog.push(line), signal: stop.signal });
  const at = { hostname: "127.0.0.1", port };
  const deadline = AbortSignal.timeout(8000);

  try {
    console.log(`\n1. Deno.resolveDns, with nameServer ${formatHostPort("127.0.0.1", port)}:`);
    const easy: [string, DenoLookupType][] = [
      ["www.wirebook.test", "A"],
      ["www.wirebook.test", "AAAA"],
      ["www.wirebook.test", "CNAME"],
      ["wirebook.test", "MX"],
      ["wirebook.test", "TXT"],
      ["wirebook.test", "NS"],
      ["wirebook.test", "SOA"],
      ["nope.wirebook.test", "A"],
    ];
    for (const [name, type] of easy) {
      const shown = await lookupWithDeno(name, type, at, deadline).then(
        (records) => JSON.stringify(records),
        (error) => `${error.name} (${error.message.replace(/ for Query \{.*$/, "")})`,
      );
      console.log(`   ${type.padEnd(5)} ${name.padEnd(18)} -> ${shown}`);
    }
    console.log("   (Deno followed www's CNAME chain and shows only where it ends.)");

    console.log("\n2. The same by hand: our own query over UDP, every record of the reply:");
    const hard: [string, QueryType][] = [
      ["www.wirebook.test", "A"],
      ["www.wirebook.test", "AAAA"],
      ["wirebook.test", "MX"],
      ["wirebook.test", "TXT"],
      ["wirebook.test", "NS"],
      ["wirebook.test", "SOA"],
      ["nope.wirebook.test", "A"],
      ["www.example.com", "A"],
    ];
    for (const [name, type] of hard) {
      const { response, transport, queryBytes, responseBytes } = await queryDns(name, type, {
        ...at,
        signal: deadline,
      });
      console.log(
        `   ${name} ${type}: ${rcodeName(fullRcode(response))}, ${queryBytes.length} bytes out, ` +
          `${responseBytes.length} back over ${transport.toUpperCase()}`,
      );
      for (const record of response.answers) console.log(`     ${formatRecord(record)}`);
      for (const record of response.authorities) {
        console.log(`     authority: ${formatRecord(record)}`);
      }
    }

    console.log("\n3. Too big for a datagram: big.wirebook.test TXT (24 records)");
    const big = await queryDns("big.wirebook.test", "TXT", {
      ...at,
      signal: deadline,
      log: (line) => console.log(`   client: ${line}`),
    });
    console.log(
      `   client: over ${big.transport.toUpperCase()}: ${big.responseBytes.length} bytes, ` +
        `${big.response.answers.length} TXT records, the first ${
          formatData(big.response.answers[0])
        }`,
    );
    const viaDeno = await lookupWithDeno("big.wirebook.test", "TXT", at, deadline);
    console.log(`   Deno.resolveDns does the same, unseen: ${viaDeno.length} records`);

    console.log("\n4. Bad input: a question whose name is a pointer to itself (offset 12 -> 12)");
    const loop = new Uint8Array([
      ...[0xbe, 0xef, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0], // header: ID 0xbeef, RD, 1 question
      ...[0xc0, 0x0c, 0x00, 0x01, 0x00, 0x01], // name: pointer to offset 12, here; A, IN
    ]);
    const raw = listenUdp("127.0.0.1", 0);
    try {
      await raw.send(new Uint8Array([1, 2, 3, 4, 5]), sockets.udp.addr);
      await raw.send(loop, sockets.udp.addr);
      const [reply] = await withTimeout(() => raw.receive(), 2000, { signal: deadline });
      const decoded = decodeMessage(reply);
      console.log(
        `   reply: ID 0x${hex(decoded.id, 4)}, ${rcodeName(fullRcode(decoded))}, ` +
          `${reply.length} bytes (a header and nothing else)`,
      );
    } finally {
      raw.close();
    }
    for (const line of serverLog.slice(-2)) console.log(`   server: ${line}`);

    console.log("\n5. The wire, field by field: wirebook.test MX, and its compressed reply");
    const mail = await queryDns("wirebook.test", "MX", { ...at, signal: deadline });
    console.log(`   the query, ${mail.queryBytes.length} bytes:`);
    console.log(indent(dumpMessage(mail.queryBytes)));
    console.log(`   the reply, ${mail.responseBytes.length} bytes:`);
    console.log(indent(dumpMessage(mail.responseBytes)));
  } finally {
    stop.abort();
    await server;
  }
  const udp = serverLog.filter((line) => line.startsWith("udp ")).length;
  const tcp =
    serverLog.filter((line) => line.startsWith("tcp ") && !line.includes("closed")).length;
  console.log(`\nserver: ${udp} messages over UDP and ${tcp} over TCP; stopped, nothing left open`);
}

function indent(text: string): string {
  return text.split("\n").map((line) => ` ${line}`).join("\n");
}

if (import.meta.main) runMain(USAGE, main);
