#!/usr/bin/env -S deno run --allow-sys=hostname,networkInterfaces
/**
 * @title IP addresses: from text to bits, special blocks, and CIDR networks
 * @difficulty beginner
 * @tags cli, ip, ipv4, ipv6, cidr
 * @run --allow-sys=hostname,networkInterfaces <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc791#section-3.2} RFC 791 §3.2: IPv4 addressing
 * @resource {https://www.rfc-editor.org/rfc/rfc4291#section-2.2} RFC 4291 §2.2: text representation of IPv6 addresses
 * @resource {https://www.rfc-editor.org/rfc/rfc5952#section-4} RFC 5952 §4: the canonical text form of an IPv6 address
 * @resource {https://www.rfc-editor.org/rfc/rfc4007#section-11} RFC 4007 §11: zones in text (fe80::1%eth0)
 * @resource {https://www.rfc-editor.org/rfc/rfc4632#section-3.1} RFC 4632 §3.1: CIDR prefix notation
 * @resource {https://www.rfc-editor.org/rfc/rfc6890} RFC 6890: Special-Purpose IP Address Registries
 * @resource {https://www.iana.org/assignments/iana-ipv4-special-registry/} IANA IPv4 Special-Purpose Address Registry
 * @resource {https://www.iana.org/assignments/iana-ipv6-special-registry/} IANA IPv6 Special-Purpose Address Registry
 * @resource {https://www.rfc-editor.org/rfc/rfc1918} RFC 1918: Address Allocation for Private Internets
 *
 * An IP address is a number: 32 bits for IPv4, 128 for IPv6. Everything else
 * is notation. This script parses every text form the RFCs allow (dotted
 * quads; IPv6 groups with "::", an IPv4 tail and a "%zone") into that number,
 * prints it back in the one canonical form, says which special-purpose block
 * it falls in, and does CIDR arithmetic: network, broadcast, masks, size,
 * hosts, subnets, supernets. Malformed text is refused with a message naming
 * the part that is wrong. Its answers agree with Python's `ipaddress` module
 * on every input of a 100,000-input differential test. With no arguments it
 * shows this machine's own addresses (the only part that needs a permission),
 * then the lessons on example addresses.
 * Taught cell by cell in notebooks/07_ip_addresses.ipynb.
 */

import { type Flags, parseFlags } from "../lib/parse_flags.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";

const USAGE = `
ip_addresses.ts: parse, classify and do CIDR arithmetic on IPv4 and IPv6 addresses

usage:
  ip_addresses.ts                         demo: this machine's addresses, then the lessons
  ip_addresses.ts info ADDR...            each address: its forms, its bits, its block, its flags
  ip_addresses.ts net CIDR [flags]        a network: address, broadcast, masks, size, hosts
  ip_addresses.ts contains CIDR ADDR...   whether each address (or network) lies inside CIDR
  ip_addresses.ts local                   this machine's hostname and interface addresses

flags:
  --loose              net, contains: accept host bits (192.168.1.77/24 means 192.168.1.0/24)
  --subnets PREFIX     net: also list its subnets of this (longer) prefix length
  --supernet PREFIX    net: also show the network of this (shorter) prefix length around it
  --limit N            net: list at most N subnets (default 8)
  --json               machine-readable output: one JSON object per line
  -h, --help           show this help

permissions:
  demo and local:             --allow-sys=hostname,networkInterfaces
  info, net and contains:     none (deno run scripts/ip_addresses.ts info ::1)
`;

// ---------------------------------------------------------------------------
// What an address is: a number, and a version saying how many bits it has
// ---------------------------------------------------------------------------

/** 4 or 6. */
export type IPVersion = 4 | 6;

/**
 * An IP address: an unsigned number of 32 bits (IPv4) or 128 bits (IPv6).
 * We keep both as a `bigint`, so the same arithmetic serves both versions.
 */
export interface IPAddress {
  /** 4 or 6. */
  readonly version: IPVersion;
  /** The address as a number, most significant bit first (network byte order). */
  readonly value: bigint;
  /** IPv6 only: the zone (RFC 4007 §11), the text after "%" in `fe80::1%eth0`. */
  readonly zone?: string;
}

/**
 * How many bits an address of this version has.
 *
 * @param version 4 or 6.
 * @returns 32 or 128.
 *
 * @example
 * ```ts
 * import { bitLength } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(2 ** bitLength(4), 4_294_967_296); // every IPv4 address there is
 * ```
 */
export function bitLength(version: IPVersion): 32 | 128 {
  return version === 4 ? 32 : 128;
}

const allOnes = (version: IPVersion) => (1n << BigInt(bitLength(version))) - 1n;

/**
 * An IPv4 address from its 32-bit number.
 *
 * @param value 0 to 2^32 - 1.
 * @returns The address.
 * @throws {RangeError} If `value` does not fit in 32 bits.
 *
 * @example
 * ```ts
 * import { formatAddress, ipv4 } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatAddress(ipv4(0xc0a8010a)), "192.168.1.10");
 * ```
 */
export function ipv4(value: number | bigint): IPAddress {
  return { version: 4, value: checkRange(BigInt(value), 4) };
}

/**
 * An IPv6 address from its 128-bit number, and optionally a zone.
 *
 * @param value 0 to 2^128 - 1.
 * @param zone The zone, if any (not empty, no "%").
 * @returns The address.
 * @throws {RangeError} If `value` does not fit in 128 bits, or the zone is empty or holds "%".
 *
 * @example
 * ```ts
 * import { formatAddress, ipv6 } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatAddress(ipv6(1n)), "::1");
 * assert.equal(formatAddress(ipv6(0xfe80n << 112n | 1n, "eth0")), "fe80::1%eth0");
 * ```
 */
export function ipv6(value: bigint, zone?: string): IPAddress {
  if (zone !== undefined && (zone === "" || zone.includes("%"))) {
    throw new RangeError(`a zone must be non-empty and hold no "%", got ${JSON.stringify(zone)}`);
  }
  const address = { version: 6 as const, value: checkRange(value, 6) };
  return zone === undefined ? address : { ...address, zone };
}

function checkRange(value: bigint, version: IPVersion): bigint {
  if (value < 0n || value > allOnes(version)) {
    throw new RangeError(`${value} does not fit in ${bitLength(version)} bits`);
  }
  return value;
}

/**
 * The address's bytes as they travel in a packet header: big-endian, 4 or 16 of them.
 *
 * @param address An address.
 * @returns 4 bytes (IPv4) or 16 bytes (IPv6).
 *
 * @example
 * ```ts
 * import { addressToBytes, parseAddress } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.deepEqual([...addressToBytes(parseAddress("192.168.1.10"))], [192, 168, 1, 10]);
 * ```
 */
export function addressToBytes(address: IPAddress): Uint8Array<ArrayBuffer> {
  // Two hex digits per byte, most significant first.
  const hex = toHex(address);
  const bytes = new Uint8Array(hex.length / 2);
  for (let i = 0; i < bytes.length; i++) bytes[i] = parseInt(hex.slice(2 * i, 2 * i + 2), 16);
  return bytes;
}

// The number as 8 (IPv4) or 32 (IPv6) hex digits.
function toHex(address: IPAddress): string {
  return address.value.toString(16).padStart(bitLength(address.version) / 4, "0");
}

// ---------------------------------------------------------------------------
// Parsing IPv4: four decimal octets (RFC 791 §3.2)
// ---------------------------------------------------------------------------

// Every parser here refuses bad text with a SyntaxError (as JSON.parse does)
// whose message quotes the input and names the part that is wrong.
function failure(text: string): (why: string) => SyntaxError {
  return (why) => new SyntaxError(`${JSON.stringify(text)}: ${why}`);
}

/**
 * Parse a dotted-quad IPv4 address: four decimal numbers 0-255, separated by
 * dots. No leading zeros: `010` is 10 to some parsers and 8 (octal) to others
 * (inet_aton), so it is refused, as glibc's inet_pton and Python refuse it.
 *
 * @param text The address, such as `192.168.1.10`.
 * @returns The address.
 * @throws {SyntaxError} If `text` is not a dotted quad; the message says which octet is wrong.
 *
 * @example
 * ```ts
 * import { parseIPv4 } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseIPv4("192.168.1.10").value, 0xc0a8010an);
 * assert.throws(() => parseIPv4("192.168.1.300"), /octet 4 \(300\) is over 255/);
 * ```
 */
export function parseIPv4(text: string): IPAddress {
  return readIPv4(text, failure(text));
}

function readIPv4(text: string, fail: (why: string) => SyntaxError): IPAddress {
  if (text === "") throw fail("empty: an IPv4 address is four numbers 0-255 joined by dots");
  if (text.includes("/")) {
    throw fail('a "/" belongs in a network (CIDR, such as 10.0.0.0/8), not in an address');
  }
  if (text.includes("%")) throw fail('a zone ("%...") is only allowed on IPv6 addresses');
  return ipv4(parseDottedQuad(text, fail));
}

// The four octets, most significant first: 192.168.1.10 is
// 192 * 2^24 + 168 * 2^16 + 1 * 2^8 + 10 = 0xc0a8010a.
function parseDottedQuad(text: string, fail: (why: string) => SyntaxError): number {
  const octets = text.split(".");
  if (octets.length !== 4) {
    throw fail(`expected 4 octets separated by ".", found ${octets.length}`);
  }
  let value = 0;
  for (const [i, octet] of octets.entries()) {
    const which = `octet ${i + 1}`;
    if (octet === "") throw fail(`${which} is empty`);
    if (!/^[0-9]+$/.test(octet)) {
      throw fail(`${which} (${JSON.stringify(octet)}) is not a decimal number`);
    }
    if (octet.length > 3) throw fail(`${which} (${JSON.stringify(octet)}) has more than 3 digits`);
    if (octet[0] === "0" && octet.length > 1) {
      throw fail(
        `${which} (${JSON.stringify(octet)}) has a leading zero, which some parsers read ` +
          `as octal; write ${Number(octet)}`,
      );
    }
    const byte = Number(octet);
    if (byte > 255) throw fail(`${which} (${byte}) is over 255`);
    value = value * 256 + byte;
  }
  return value;
}

// ---------------------------------------------------------------------------
// Parsing IPv6: eight 16-bit groups, "::", an IPv4 tail, a zone (RFC 4291 §2.2)
// ---------------------------------------------------------------------------

/**
 * Parse an IPv6 address in any of the text forms of RFC 4291 §2.2:
 * eight groups of 1-4 hex digits (`2001:db8:0:0:0:0:0:1`, any case, leading
 * zeros allowed); `::` once, for one or more groups of zeros (`2001:db8::1`);
 * the last two groups as a dotted quad (`::ffff:192.0.2.1`); and a zone after
 * `%` (RFC 4007 §11: `fe80::1%eth0`, any non-empty text without `%` or `/`).
 *
 * @param text The address.
 * @returns The address (with `zone` if the text had one).
 * @throws {SyntaxError} If `text` is not an IPv6 address; the message says which part is wrong.
 *
 * @example
 * ```ts
 * import { formatAddress, parseIPv6 } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseIPv6("::1").value, 1n);
 * assert.equal(formatAddress(parseIPv6("2001:0DB8:0:0:0:0:0:1")), "2001:db8::1");
 * assert.equal(parseIPv6("::ffff:192.0.2.1").value, 0xffff_c000_0201n);
 * assert.throws(() => parseIPv6("1::2::3"), /"::" may appear only once/);
 * ```
 */
export function parseIPv6(text: string): IPAddress {
  return readIPv6(text, failure(text));
}

function readIPv6(text: string, fail: (why: string) => SyntaxError): IPAddress {
  if (text.includes("/")) {
    throw fail('a "/" belongs in a network (CIDR, such as 2001:db8::/32), not in an address');
  }
  // The zone: everything after the first "%". It names a link (an interface),
  // which only the local machine can interpret; it is not part of the number.
  let written = text;
  let zone: string | undefined;
  const percent = text.indexOf("%");
  if (percent >= 0) {
    written = text.slice(0, percent);
    zone = text.slice(percent + 1);
    if (zone === "") throw fail('the zone after "%" is empty');
    if (zone.includes("%")) throw fail('only one "%" may appear (it starts the zone)');
  }
  if (written === "") throw fail("empty: an IPv6 address is eight groups of hex digits");

  const parts = written.split(":");
  if (parts.length < 3) {
    throw fail(`an IPv6 address has at least two colons, found ${parts.length - 1}`);
  }
  // A dotted quad may stand for the last two groups (RFC 4291 §2.2, form 3):
  // ::ffff:192.0.2.1 is ::ffff:c000:201.
  const last = parts[parts.length - 1];
  if (last.includes(".")) {
    const tail = parseDottedQuad(
      last,
      (why) => fail(`its IPv4 part ${JSON.stringify(last)}: ${why}`),
    );
    parts.splice(parts.length - 1, 1, (tail >>> 16).toString(16), (tail & 0xffff).toString(16));
  }
  if (parts.length > 9) {
    throw fail(
      `too many colons (${parts.length - 1}): eight groups need at most 7, or 8 with "::"`,
    );
  }

  // "::" shows up as an empty part between two others. It stands for as many
  // zero groups as are missing, so there may be only one of it. An empty
  // first or last part is the other half of a "::" at either end.
  let gap = -1;
  for (let i = 1; i < parts.length - 1; i++) {
    if (parts[i] !== "") continue;
    if (gap >= 0) throw fail('"::" may appear only once, or the groups it stands for are unknown');
    gap = i;
  }
  let before: string[]; // the groups written before "::" (all of them, if there is none)
  let after: string[]; // the groups written after it
  if (gap >= 0) {
    before = parts.slice(0, gap);
    after = parts.slice(gap + 1);
    if (before[0] === "") {
      if (before.length > 1) throw fail('it starts with a single ":"; only "::" may begin it');
      before = [];
    }
    if (after[after.length - 1] === "") {
      if (after.length > 1) throw fail('it ends with a single ":"; only "::" may end it');
      after = [];
    }
    if (before.length + after.length > 7) {
      throw fail(
        `"::" must stand for at least one group of zeros, but ${
          before.length + after.length
        } groups are written`,
      );
    }
  } else {
    if (parts.length !== 8) throw fail(`expected 8 groups (or "::"), found ${parts.length}`);
    if (parts[0] === "") throw fail('it starts with a single ":"; only "::" may begin it');
    if (parts[7] === "") throw fail('it ends with a single ":"; only "::" may end it');
    before = parts;
    after = [];
  }

  // Each group is 16 bits: shift the number left by 16 and add the group.
  // The groups "::" skipped are zeros, so skipping them is one bigger shift.
  let value = 0n;
  const group = (digits: string, position: number) => {
    const which = `group ${position} (${JSON.stringify(digits)})`;
    if (!/^[0-9a-fA-F]+$/.test(digits)) throw fail(`${which} is not hexadecimal (0-9, a-f)`);
    if (digits.length > 4) throw fail(`${which} has more than 4 hex digits`);
    value = (value << 16n) | BigInt(parseInt(digits, 16));
  };
  before.forEach((digits, i) => group(digits, i + 1));
  value <<= 16n * BigInt(8 - before.length - after.length);
  after.forEach((digits, i) => group(digits, 8 - after.length + i + 1));
  return ipv6(value, zone);
}

/**
 * Parse an IPv4 or IPv6 address: text with a colon is IPv6, any other IPv4.
 *
 * @param text The address.
 * @returns The address.
 * @throws {SyntaxError} If `text` is neither; the message says which part is wrong.
 *
 * @example
 * ```ts
 * import { parseAddress } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(parseAddress("10.0.0.1").version, 4);
 * assert.equal(parseAddress("fe80::1%eth0").zone, "eth0");
 * ```
 */
export function parseAddress(text: string): IPAddress {
  return text.includes(":") ? parseIPv6(text) : parseIPv4(text);
}

// ---------------------------------------------------------------------------
// Formatting: one canonical text per address (RFC 5952 §4)
// ---------------------------------------------------------------------------

/** Options for {@linkcode formatAddress}. */
export interface FormatOptions {
  /**
   * Write the last 32 bits of an IPv4-mapped (`::ffff:0:0/96`) or NAT64
   * (`64:ff9b::/96`) address as a dotted quad, as RFC 5952 §5 recommends
   * when the reader knows what it is: `::ffff:192.0.2.1`.
   *
   * @default {false}
   */
  mixed?: boolean;
}

/**
 * The canonical text of an address. IPv4: four decimal octets. IPv6, by
 * RFC 5952 §4: lowercase hex, no leading zeros in a group, the longest run of
 * two or more zero groups (the first, on a tie) written as `::`, and the zone
 * after `%`. Python's `ipaddress` writes the same text.
 *
 * @param address An address.
 * @param options Whether to write an embedded IPv4 address as a dotted quad.
 * @returns Its canonical text.
 *
 * @example
 * ```ts
 * import { formatAddress, parseAddress } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatAddress(parseAddress("2001:DB8:0:0:1:0:0:1")), "2001:db8::1:0:0:1");
 * const mapped = parseAddress("::ffff:192.0.2.1");
 * assert.equal(formatAddress(mapped), "::ffff:c000:201");
 * assert.equal(formatAddress(mapped, { mixed: true }), "::ffff:192.0.2.1");
 * ```
 */
export function formatAddress(address: IPAddress, options: FormatOptions = {}): string {
  const { mixed = false } = options;
  if (address.version === 4) return [...addressToBytes(address)].join(".");
  const zone = address.zone === undefined ? "" : `%${address.zone}`;
  const groups = toGroups(address).map((group) => group.toString(16));
  const top = address.value >> 32n;
  if (mixed && (top === 0xffffn || top === 0x64_ff9b_0000_0000_0000_0000n)) {
    const tail = formatAddress(ipv4(address.value & 0xffff_ffffn));
    return `${compress(groups.slice(0, 6)).replace(/([^:])$/, "$1:")}${tail}${zone}`;
  }
  return compress(groups) + zone;
}

// The eight 16-bit groups, from the 32 hex digits, four at a time.
function toGroups(address: IPAddress): number[] {
  const hex = toHex(address);
  const groups: number[] = [];
  for (let i = 0; i < 32; i += 4) groups.push(parseInt(hex.slice(i, i + 4), 16));
  return groups;
}

// Replace the longest run of "0" groups (two or more; the first such run on a
// tie) with "::". A single zero group stays "0" (RFC 5952 §4.2.2).
function compress(groups: string[]): string {
  let bestStart = -1, bestLength = 1;
  for (let start = 0; start < groups.length;) {
    let end = start;
    while (end < groups.length && groups[end] === "0") end++;
    if (end - start > bestLength) [bestStart, bestLength] = [start, end - start];
    start = end === start ? start + 1 : end;
  }
  if (bestStart < 0) return groups.join(":");
  const head = groups.slice(0, bestStart).join(":");
  const tail = groups.slice(bestStart + bestLength).join(":");
  return `${head}::${tail}`;
}

/**
 * The full form: IPv6 as eight groups of exactly four hex digits (and the
 * zone); IPv4 as its dotted quad.
 *
 * @param address An address.
 * @returns Its text with nothing left out.
 *
 * @example
 * ```ts
 * import { explodeAddress, parseAddress } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(explodeAddress(parseAddress("2001:db8::1")), "2001:0db8:0000:0000:0000:0000:0000:0001");
 * ```
 */
export function explodeAddress(address: IPAddress): string {
  if (address.version === 4) return formatAddress(address);
  const groups = toGroups(address).map((group) => group.toString(16).padStart(4, "0"));
  return groups.join(":") + (address.zone === undefined ? "" : `%${address.zone}`);
}

/**
 * The name a reverse DNS lookup asks for (RFC 1035 §3.5, RFC 3596 §2.5): the
 * address's digits in reverse order under `in-addr.arpa` or `ip6.arpa`.
 *
 * @param address An address (a zone is ignored).
 * @returns The PTR name.
 *
 * @example
 * ```ts
 * import { parseAddress, reversePointer } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(reversePointer(parseAddress("192.0.2.1")), "1.2.0.192.in-addr.arpa");
 * ```
 */
export function reversePointer(address: IPAddress): string {
  if (address.version === 4) {
    return `${[...addressToBytes(address)].reverse().join(".")}.in-addr.arpa`;
  }
  const nibbles = toHex(address).split("").reverse();
  return `${nibbles.join(".")}.ip6.arpa`;
}

// ---------------------------------------------------------------------------
// Networks in CIDR form: an address and a prefix length (RFC 4632 §3.1)
// ---------------------------------------------------------------------------

/**
 * A network: every address whose first `prefix` bits equal those of
 * `address`. `address` is the network address, its other bits all zero.
 */
export interface IPNetwork {
  /** The network address (the first of the network). */
  readonly address: IPAddress;
  /** The prefix length: how many leading bits all its addresses share. */
  readonly prefix: number;
}

/** Options for {@linkcode parseNetwork}. */
export interface ParseNetworkOptions {
  /**
   * Refuse an address with host bits set (`192.168.1.77/24`). With `false`,
   * they are cleared instead, giving the network that holds the address
   * (`192.168.1.0/24`).
   *
   * @default {true}
   */
  strict?: boolean;
}

/**
 * The netmask of a prefix length: `prefix` one bits, then zeros.
 *
 * @param version 4 or 6.
 * @param prefix 0 to 32 (IPv4) or 128 (IPv6).
 * @returns The mask as an address (`255.255.255.0` for IPv4 /24).
 * @throws {RangeError} If the prefix length is out of range.
 *
 * @example
 * ```ts
 * import { formatAddress, prefixMask } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatAddress(prefixMask(4, 20)), "255.255.240.0");
 * ```
 */
export function prefixMask(version: IPVersion, prefix: number): IPAddress {
  const bits = bitLength(version);
  if (!Number.isInteger(prefix) || prefix < 0 || prefix > bits) {
    throw new RangeError(`a prefix length for IPv${version} is 0 to ${bits}, got ${prefix}`);
  }
  return { version, value: MASKS[version][prefix] };
}

// Every netmask, computed once: all ones, minus the low (bits - prefix) ones.
// MASKS[4][24] is 0xffffff00n.
const MASKS = {
  4: Array.from({ length: 33 }, (_, prefix) => allOnes(4) ^ ((1n << BigInt(32 - prefix)) - 1n)),
  6: Array.from({ length: 129 }, (_, prefix) => allOnes(6) ^ ((1n << BigInt(128 - prefix)) - 1n)),
};

/**
 * Parse a network: `ADDRESS/PREFIX` (`10.0.0.0/8`, `2001:db8::/32`). An IPv4
 * network may give its mask as a netmask (`10.0.0.0/255.0.0.0`) or a hostmask
 * (`10.0.0.0/0.255.255.255`) instead. Without `/`, the network is the single
 * address (/32 or /128). The prefix length may have leading zeros (`/024`).
 *
 * A zone stays on the network only where the address needed no change: with
 * `strict: false`, clearing host bits rebuilds the address from its number,
 * zone and all gone. (Python's `ipaddress` does the same; we follow it.)
 *
 * @param text The network.
 * @param options Whether host bits are an error (the default) or are cleared.
 * @returns The network.
 * @throws {SyntaxError} If `text` is not a network; the message says which part is wrong.
 *
 * @example
 * ```ts
 * import { formatNetwork, parseNetwork } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatNetwork(parseNetwork("10.0.0.0/255.0.0.0")), "10.0.0.0/8");
 * assert.equal(formatNetwork(parseNetwork("192.168.1.77/24", { strict: false })), "192.168.1.0/24");
 * assert.throws(() => parseNetwork("192.168.1.77/24"), /host bits are set/);
 * ```
 */
export function parseNetwork(text: string, options: ParseNetworkOptions = {}): IPNetwork {
  const { strict = true } = options;
  const fail = failure(text);
  const pieces = text.split("/");
  if (pieces.length > 2) throw fail(`only one "/" may appear, found ${pieces.length - 1}`);
  const [written, maskText] = pieces;
  const version: IPVersion = written.includes(":") ? 6 : 4;
  // Errors in the address part name the whole input, then the part.
  const failAddress = pieces.length === 1
    ? fail
    : (why: string) => fail(`its address ${JSON.stringify(written)}: ${why}`);
  const address = version === 6 ? readIPv6(written, failAddress) : readIPv4(written, failAddress);
  const prefix = maskText === undefined ? bitLength(version) : parseMask(maskText, version, fail);
  const mask = prefixMask(version, prefix).value;
  if ((address.value & mask) !== address.value) {
    const network = { address: { version, value: address.value & mask }, prefix };
    if (strict) {
      const hostBits = formatAddress({ version, value: address.value & ~mask & allOnes(version) });
      throw fail(`host bits are set (${hostBits}); the network is ${formatNetwork(network)}`);
    }
    return network;
  }
  return { address, prefix };
}

// After "/": a prefix length in decimal, or (IPv4 only) a netmask or hostmask.
function parseMask(text: string, version: IPVersion, fail: (why: string) => SyntaxError): number {
  const bits = bitLength(version);
  if (/^[0-9]+$/.test(text)) {
    const prefix = Number(text);
    if (prefix > bits) throw fail(`prefix length ${text} is over ${bits}`);
    return prefix;
  }
  if (text === "") throw fail('the prefix length after "/" is empty');
  if (version === 6) throw fail(`prefix length ${JSON.stringify(text)} is not a number 0-128`);
  let value: bigint;
  try {
    value = BigInt(parseDottedQuad(text, (why) => new SyntaxError(why)));
  } catch (error) {
    throw fail(
      `after "/" comes a prefix length (0-32) or a netmask such as 255.255.255.0; ` +
        `${JSON.stringify(text)} is neither: ${(error as Error).message}`,
    );
  }
  // A netmask is ones then zeros; a hostmask, zeros then ones. All zeros and
  // all ones read as netmasks (/0 and /32).
  const asNetmask = prefixOfMask(value);
  if (asNetmask !== undefined) return asNetmask;
  const asHostmask = prefixOfMask(value ^ allOnes(4));
  if (asHostmask !== undefined) return asHostmask;
  throw fail(
    `mask ${text} is neither a netmask (ones, then zeros) nor a hostmask (zeros, then ones)`,
  );
}

function prefixOfMask(value: bigint): number | undefined {
  const prefix = MASKS[4].indexOf(value);
  return prefix < 0 ? undefined : prefix;
}

/**
 * The CIDR text of a network: `network-address/prefix`.
 *
 * @param network A network.
 * @returns Its text, such as `10.0.0.0/8`.
 *
 * @example
 * ```ts
 * import { formatNetwork, parseNetwork } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatNetwork(parseNetwork("2001:DB8:0::/48")), "2001:db8::/48");
 * ```
 */
export function formatNetwork(network: IPNetwork): string {
  return `${formatAddress(network.address)}/${network.prefix}`;
}

/** What {@linkcode networkFacts} computes. */
export interface NetworkFacts {
  /** The netmask: `prefix` one bits, then zeros. */
  netmask: IPAddress;
  /** The hostmask: the netmask inverted, the bits that differ between its addresses. */
  hostmask: IPAddress;
  /** The last address (for IPv4, the broadcast address): every host bit set. */
  broadcast: IPAddress;
  /** How many addresses it holds: 2^(bits - prefix). */
  size: bigint;
  /** The first usable host, as {@linkcode hosts} yields them. */
  firstHost: IPAddress;
  /** The last usable host. */
  lastHost: IPAddress;
  /** How many usable hosts. */
  hostCount: bigint;
}

/**
 * The arithmetic of a network, all from its address and prefix length.
 * Which addresses are usable hosts: in IPv4, all but the first (the network
 * itself) and the last (broadcast), except that a /31 has two hosts (RFC 3021)
 * and a /32 one. In IPv6, which has no broadcast, all but the first (the
 * Subnet-Router anycast address, RFC 4291 §2.6.1), except in a /127 (RFC 6164)
 * and a /128. These are Python's `hosts()` rules too.
 *
 * @param network A network.
 * @returns Its masks, last address, size and host range.
 *
 * @example
 * ```ts
 * import { formatAddress, networkFacts, parseNetwork } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * const facts = networkFacts(parseNetwork("192.168.1.64/26"));
 * assert.equal(formatAddress(facts.netmask), "255.255.255.192");
 * assert.equal(formatAddress(facts.broadcast), "192.168.1.127");
 * assert.equal(facts.size, 64n);
 * assert.equal(formatAddress(facts.firstHost), "192.168.1.65");
 * assert.equal(facts.hostCount, 62n);
 * ```
 */
export function networkFacts(network: IPNetwork): NetworkFacts {
  const { version, value } = network.address;
  const bits = bitLength(version);
  const netmask = prefixMask(version, network.prefix);
  const hostmask = { version, value: netmask.value ^ allOnes(version) };
  const broadcast = { version, value: value | hostmask.value };
  const size = hostmask.value + 1n;
  const at = (offset: bigint): IPAddress => ({ version, value: value + offset });
  if (network.prefix === bits) {
    return {
      netmask,
      hostmask,
      broadcast,
      size,
      firstHost: network.address,
      lastHost: network.address,
      hostCount: 1n,
    };
  }
  if (network.prefix === bits - 1) {
    return {
      netmask,
      hostmask,
      broadcast,
      size,
      firstHost: at(0n),
      lastHost: broadcast,
      hostCount: 2n,
    };
  }
  const lastHost = version === 4 ? at(size - 2n) : broadcast;
  const hostCount = version === 4 ? size - 2n : size - 1n;
  return { netmask, hostmask, broadcast, size, firstHost: at(1n), lastHost, hostCount };
}

/**
 * Each usable host address of a network, in order (see {@linkcode networkFacts}
 * for which are usable). A /8 has 16 million: take what you need.
 *
 * @param network A network.
 * @returns A generator of addresses.
 *
 * @example
 * ```ts
 * import { formatAddress, hosts, parseNetwork } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * const all = [...hosts(parseNetwork("10.0.0.0/30"))].map((a) => formatAddress(a));
 * assert.deepEqual(all, ["10.0.0.1", "10.0.0.2"]);
 * ```
 */
export function* hosts(network: IPNetwork): Generator<IPAddress> {
  const { firstHost, lastHost, hostCount } = networkFacts(network);
  if (hostCount === 1n) {
    yield firstHost;
    return;
  }
  for (let value = firstHost.value; value <= lastHost.value; value++) {
    yield { version: network.address.version, value };
  }
}

/**
 * The subnets of a network at a longer prefix length, in order: a /24 has
 * four /26s. A single address (/32, /128) is its own only subnet.
 *
 * @param network A network.
 * @param newPrefix From `network.prefix` to 32 (IPv4) or 128 (IPv6).
 * @returns A generator of 2^(newPrefix - prefix) networks.
 * @throws {RangeError} If `newPrefix` is shorter than the network's, or too long.
 *
 * @example
 * ```ts
 * import { formatNetwork, parseNetwork, subnets } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * const quarters = [...subnets(parseNetwork("10.0.0.0/24"), 26)].map(formatNetwork);
 * assert.deepEqual(quarters, ["10.0.0.0/26", "10.0.0.64/26", "10.0.0.128/26", "10.0.0.192/26"]);
 * ```
 */
export function* subnets(network: IPNetwork, newPrefix: number): Generator<IPNetwork> {
  const { version, value } = network.address;
  const bits = bitLength(version);
  if (!Number.isInteger(newPrefix) || newPrefix < network.prefix || newPrefix > bits) {
    throw new RangeError(
      `subnets of a /${network.prefix} have a prefix length from ${network.prefix} to ${bits}, ` +
        `got ${newPrefix}`,
    );
  }
  if (network.prefix === bits) {
    yield network;
    return;
  }
  const step = 1n << BigInt(bits - newPrefix);
  const end = value + (1n << BigInt(bits - network.prefix));
  for (let start = value; start < end; start += step) {
    yield { address: { version, value: start }, prefix: newPrefix };
  }
}

/**
 * The network of a shorter prefix length that holds this one: the supernet of
 * 192.168.5.0/24 at /22 is 192.168.4.0/22. CIDR aggregation (RFC 4632 §3.2)
 * is this, done by routers to their tables.
 *
 * @param network A network.
 * @param newPrefix From 0 to `network.prefix`; one shorter if left out.
 * @returns The network (a /0 is its own supernet).
 * @throws {RangeError} If `newPrefix` is out of range.
 *
 * @example
 * ```ts
 * import { formatNetwork, parseNetwork, supernet } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatNetwork(supernet(parseNetwork("192.168.5.0/24"), 22)), "192.168.4.0/22");
 * ```
 */
export function supernet(
  network: IPNetwork,
  newPrefix: number = Math.max(0, network.prefix - 1),
): IPNetwork {
  if (!Number.isInteger(newPrefix) || newPrefix < 0 || newPrefix > network.prefix) {
    throw new RangeError(
      `a supernet of a /${network.prefix} has a prefix length from 0 to ${network.prefix}, ` +
        `got ${newPrefix}`,
    );
  }
  if (network.prefix === 0) return network;
  const { version, value } = network.address;
  return {
    address: { version, value: value & prefixMask(version, newPrefix).value },
    prefix: newPrefix,
  };
}

/**
 * Whether an address lies in a network: its first `prefix` bits equal the
 * network's. For a network, whether it lies wholly inside. A different IP
 * version is never inside; the zone is not compared.
 *
 * @param network The network.
 * @param inner An address or a network.
 * @returns `true` if `inner` is inside `network`.
 *
 * @example
 * ```ts
 * import { contains, parseAddress, parseNetwork } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * const lan = parseNetwork("192.168.1.0/24");
 * assert.equal(contains(lan, parseAddress("192.168.1.200")), true);
 * assert.equal(contains(lan, parseAddress("192.168.2.1")), false);
 * assert.equal(contains(lan, parseNetwork("192.168.1.128/25")), true);
 * ```
 */
export function contains(network: IPNetwork, inner: IPAddress | IPNetwork): boolean {
  const { version, value } = network.address;
  if ("prefix" in inner) {
    return inner.prefix >= network.prefix && contains(network, inner.address);
  }
  return inner.version === version &&
    (inner.value & prefixMask(version, network.prefix).value) === value;
}

// ---------------------------------------------------------------------------
// Special-purpose addresses: the IANA registries (RFC 6890)
// ---------------------------------------------------------------------------

/** One row of an IANA special-purpose address registry (RFC 6890 §2.2). */
export interface SpecialBlock {
  /** The block, in CIDR form. */
  readonly block: string;
  /** Its registry name. */
  readonly name: string;
  /** The RFC that reserved it. */
  readonly rfc: string;
  /** The registry's "Globally Reachable" column; `null` where it says N/A. */
  readonly globallyReachable: boolean | null;
  /**
   * Where Python's `ipaddress` (3.11, which we match) answers otherwise,
   * whether it counts the block as globally reachable: for N/A blocks, and for
   * blocks registered after its table was written.
   */
  readonly python?: boolean;
}

const row = (
  block: string,
  name: string,
  rfc: string,
  globallyReachable: boolean | null,
  python?: boolean,
): SpecialBlock =>
  python === undefined
    ? { block, name, rfc, globallyReachable }
    : { block, name, rfc, globallyReachable, python };

/**
 * The IANA IPv4 Special-Purpose Address Registry, row by row.
 *
 * @example The three RFC 1918 blocks
 * ```ts
 * import { SPECIAL_BLOCKS_V4 } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * const private1918 = SPECIAL_BLOCKS_V4.filter((b) => b.rfc === "RFC 1918").map((b) => b.block);
 * assert.deepEqual(private1918, ["10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"]);
 * ```
 */
export const SPECIAL_BLOCKS_V4: readonly SpecialBlock[] = [
  row("0.0.0.0/8", '"This network"', "RFC 791", false),
  row("0.0.0.0/32", '"This host on this network"', "RFC 1122", false),
  row("10.0.0.0/8", "Private-Use", "RFC 1918", false),
  row("100.64.0.0/10", "Shared Address Space", "RFC 6598", false),
  row("127.0.0.0/8", "Loopback", "RFC 1122", false),
  row("169.254.0.0/16", "Link Local", "RFC 3927", false),
  row("172.16.0.0/12", "Private-Use", "RFC 1918", false),
  row("192.0.0.0/24", "IETF Protocol Assignments", "RFC 6890", false),
  row("192.0.0.0/29", "IPv4 Service Continuity Prefix", "RFC 7335", false),
  row("192.0.0.8/32", "IPv4 dummy address", "RFC 7600", false),
  row("192.0.0.9/32", "Port Control Protocol Anycast", "RFC 7723", true),
  row("192.0.0.10/32", "Traversal Using Relays around NAT Anycast", "RFC 8155", true),
  row("192.0.0.170/31", "NAT64/DNS64 Discovery", "RFC 7050", false),
  row("192.0.2.0/24", "Documentation (TEST-NET-1)", "RFC 5737", false),
  row("192.31.196.0/24", "AS112-v4", "RFC 7535", true),
  row("192.52.193.0/24", "AMT", "RFC 7450", true),
  row("192.88.99.0/24", "Deprecated (6to4 Relay Anycast)", "RFC 7526", null, true),
  row("192.168.0.0/16", "Private-Use", "RFC 1918", false),
  row("192.175.48.0/24", "Direct Delegation AS112 Service", "RFC 7534", true),
  row("198.18.0.0/15", "Benchmarking", "RFC 2544", false),
  row("198.51.100.0/24", "Documentation (TEST-NET-2)", "RFC 5737", false),
  row("203.0.113.0/24", "Documentation (TEST-NET-3)", "RFC 5737", false),
  row("240.0.0.0/4", "Reserved", "RFC 1112", false),
  row("255.255.255.255/32", "Limited Broadcast", "RFC 919", false),
];

/**
 * The IANA IPv6 Special-Purpose Address Registry, row by row, with the two
 * blocks registered in 2024 that Python 3.11 does not know (`python: true`).
 *
 * @example
 * ```ts
 * import { SPECIAL_BLOCKS_V6 } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * const documentation = SPECIAL_BLOCKS_V6.filter((b) => b.name === "Documentation");
 * assert.deepEqual(documentation.map((b) => b.block), ["2001:db8::/32", "3fff::/20"]);
 * ```
 */
export const SPECIAL_BLOCKS_V6: readonly SpecialBlock[] = [
  row("::1/128", "Loopback Address", "RFC 4291", false),
  row("::/128", "Unspecified Address", "RFC 4291", false),
  row("::ffff:0:0/96", "IPv4-mapped Address", "RFC 4291", false),
  row("64:ff9b::/96", "IPv4-IPv6 Translation", "RFC 6052", true),
  row("64:ff9b:1::/48", "IPv4-IPv6 Translation (local use)", "RFC 8215", false),
  row("100::/64", "Discard-Only Address Block", "RFC 6666", false),
  row("2001::/23", "IETF Protocol Assignments", "RFC 2928", false),
  row("2001::/32", "TEREDO", "RFC 4380", null, false),
  row("2001:1::1/128", "Port Control Protocol Anycast", "RFC 7723", true),
  row("2001:1::2/128", "Traversal Using Relays around NAT Anycast", "RFC 8155", true),
  row("2001:2::/48", "Benchmarking", "RFC 5180", false),
  row("2001:3::/32", "AMT", "RFC 7450", true),
  row("2001:4:112::/48", "AS112-v6", "RFC 7535", true),
  row("2001:10::/28", "Deprecated (previously ORCHID)", "RFC 4843", null, false),
  row("2001:20::/28", "ORCHIDv2", "RFC 7343", true),
  row("2001:30::/28", "Drone Remote ID Protocol Entity Tags (DETs)", "RFC 9374", true),
  row("2001:db8::/32", "Documentation", "RFC 3849", false),
  row("2002::/16", "6to4", "RFC 3056", null, false),
  row("2620:4f:8000::/48", "Direct Delegation AS112 Service", "RFC 7534", true),
  row("3fff::/20", "Documentation", "RFC 9637", false, true),
  row("5f00::/16", "Segment Routing (SRv6) SIDs", "RFC 9602", false, true),
  row("fc00::/7", "Unique-Local", "RFC 4193", false),
  row("fe80::/10", "Link-Local Unicast", "RFC 4291", false),
];

const parsedBlocks = new Map<SpecialBlock, IPNetwork>(
  [...SPECIAL_BLOCKS_V4, ...SPECIAL_BLOCKS_V6].map((entry) => [entry, parseNetwork(entry.block)]),
);

/**
 * The most specific special-purpose block an address falls in (192.0.0.9 is
 * in 192.0.0.0/24 and in 192.0.0.9/32: the /32 decides), if any.
 *
 * @param address An address.
 * @returns The registry row, or `undefined` for an ordinary address.
 *
 * @example
 * ```ts
 * import { parseAddress, specialBlock } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(specialBlock(parseAddress("192.168.7.7"))?.rfc, "RFC 1918");
 * assert.equal(specialBlock(parseAddress("8.8.8.8")), undefined);
 * ```
 */
export function specialBlock(address: IPAddress): SpecialBlock | undefined {
  let best: SpecialBlock | undefined;
  let bestPrefix = -1;
  for (const [entry, network] of parsedBlocks) {
    if (network.prefix > bestPrefix && contains(network, address)) {
      [best, bestPrefix] = [entry, network.prefix];
    }
  }
  return best;
}

/** The classes of an address, as {@linkcode classify} finds them. */
export interface Classification {
  /** Not globally reachable, by the registry (see {@linkcode classify} for the fine print). */
  private: boolean;
  /** Globally reachable: an ordinary Internet address, or a block the registry marks so. */
  global: boolean;
  /** 127.0.0.0/8 or ::1: never leaves the machine (RFC 1122 §3.2.1.3, RFC 4291 §2.5.3). */
  loopback: boolean;
  /** 169.254.0.0/16 or fe80::/10: valid on one link only (RFC 3927, RFC 4291 §2.5.6). */
  linkLocal: boolean;
  /** 224.0.0.0/4 or ff00::/8: a group, not a host (RFC 5771, RFC 4291 §2.7). */
  multicast: boolean;
  /** 240.0.0.0/4, or IPv6 space the addressing architecture has not assigned. */
  reserved: boolean;
  /** 0.0.0.0 or ::: no address at all (RFC 1122, RFC 4291 §2.5.2). */
  unspecified: boolean;
  /** fec0::/10, IPv6 site-local, deprecated by RFC 3879. Always `false` for IPv4. */
  siteLocal: boolean;
  /** The special-purpose block that decided `private` and `global`, if any. */
  block?: SpecialBlock;
}

const net = (text: string) => parseNetwork(text);
const SHARED_ADDRESS_SPACE = net("100.64.0.0/10");
const V4 = {
  loopback: net("127.0.0.0/8"),
  linkLocal: net("169.254.0.0/16"),
  multicast: net("224.0.0.0/4"),
  reserved: net("240.0.0.0/4"),
};
const V6 = {
  linkLocal: net("fe80::/10"),
  siteLocal: net("fec0::/10"),
  multicast: net("ff00::/8"),
  mapped: net("::ffff:0:0/96"),
  // What the IPv6 addressing architecture assigns (RFC 4291 §2.4): global
  // unicast, unique local, link-local, old site-local, multicast. The rest
  // is reserved by the IETF.
  assigned: ["2000::/3", "fc00::/7", "fe80::/10", "fec0::/10", "ff00::/8"].map(net),
};

/**
 * Classify an address, giving exactly the answers of Python 3.11's
 * `ipaddress` (`is_private`, `is_global`, `is_loopback`, `is_link_local`,
 * `is_multicast`, `is_reserved`, `is_unspecified`, `is_site_local`).
 *
 * `private` and `global` come from the most specific registry block the
 * address is in: a block marked not globally reachable makes it private, any
 * other (or none) global. The fine print, all Python's:
 * - 100.64.0.0/10 (Shared Address Space, carrier-grade NAT) is neither.
 * - N/A blocks count as global in IPv4 (192.88.99.0/24) and as private in
 *   IPv6 (Teredo, the old ORCHID, 6to4).
 * - Blocks registered after Python's table was written (3fff::/20,
 *   5f00::/16) are still global to it, and so here.
 * - An IPv4-mapped address (::ffff:a.b.c.d) is private if its IPv4 address
 *   is, and otherwise global, even where the IPv4 address is not global
 *   (::ffff:100.64.0.1). The other flags look at the IPv6 address itself.
 *
 * @param address An address.
 * @returns Its classes.
 *
 * @example
 * ```ts
 * import { classify, parseAddress } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(classify(parseAddress("10.1.2.3")).private, true);
 * assert.equal(classify(parseAddress("8.8.8.8")).global, true);
 * assert.equal(classify(parseAddress("fe80::1%eth0")).linkLocal, true);
 * ```
 */
export function classify(address: IPAddress): Classification {
  const block = specialBlock(address);
  const reachable = block?.python ?? block?.globallyReachable ?? true;
  const inside = (network: IPNetwork) => contains(network, address);
  if (address.version === 4) {
    const shared = inside(SHARED_ADDRESS_SPACE);
    const isPrivate = reachable === false && !shared;
    return withBlock({
      private: isPrivate,
      global: !isPrivate && !shared,
      loopback: inside(V4.loopback),
      linkLocal: inside(V4.linkLocal),
      multicast: inside(V4.multicast),
      reserved: inside(V4.reserved),
      unspecified: address.value === 0n,
      siteLocal: false,
    }, block);
  }
  const mapped = ipv4Mapped(address);
  const isPrivate = mapped ? classify(mapped).private : reachable === false;
  return withBlock({
    private: isPrivate,
    global: !isPrivate,
    loopback: address.value === 1n,
    linkLocal: inside(V6.linkLocal),
    multicast: inside(V6.multicast),
    reserved: !V6.assigned.some(inside),
    unspecified: address.value === 0n,
    siteLocal: inside(V6.siteLocal),
  }, block);
}

function withBlock(classes: Classification, block?: SpecialBlock): Classification {
  return block === undefined ? classes : { ...classes, block };
}

// ---------------------------------------------------------------------------
// IPv4 inside IPv6
// ---------------------------------------------------------------------------

/**
 * The IPv4 address inside an IPv4-mapped IPv6 address (`::ffff:a.b.c.d`,
 * RFC 4291 §2.5.5.2): how a dual-stack socket shows an IPv4 peer.
 *
 * @param address An address.
 * @returns The IPv4 address, or `undefined` if `address` is not IPv4-mapped.
 *
 * @example
 * ```ts
 * import { formatAddress, ipv4Mapped, parseAddress } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatAddress(ipv4Mapped(parseAddress("::ffff:c000:201"))!), "192.0.2.1");
 * ```
 */
export function ipv4Mapped(address: IPAddress): IPAddress | undefined {
  if (address.version !== 6 || address.value >> 32n !== 0xffffn) return undefined;
  return ipv4(address.value & 0xffff_ffffn);
}

/**
 * The IPv4 address inside a 6to4 address (`2002:AABB:CCDD::/48`, RFC 3056 §2).
 *
 * @param address An address.
 * @returns The IPv4 address, or `undefined` if `address` is not in 2002::/16.
 *
 * @example
 * ```ts
 * import { formatAddress, parseAddress, sixToFour } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatAddress(sixToFour(parseAddress("2002:c000:201::1"))!), "192.0.2.1");
 * ```
 */
export function sixToFour(address: IPAddress): IPAddress | undefined {
  if (address.version !== 6 || address.value >> 112n !== 0x2002n) return undefined;
  return ipv4((address.value >> 80n) & 0xffff_ffffn);
}

/**
 * The two IPv4 addresses inside a Teredo address (`2001::/32`, RFC 4380 §4):
 * the Teredo server's, and the client's public address, stored inverted.
 *
 * @param address An address.
 * @returns The server and client, or `undefined` if `address` is not in 2001::/32.
 *
 * @example
 * ```ts
 * import { formatAddress, parseAddress, teredo } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * const { server, client } = teredo(parseAddress("2001:0:4136:e378:8000:63bf:3fff:fdd2"))!;
 * assert.equal(formatAddress(server), "65.54.227.120");
 * assert.equal(formatAddress(client), "192.0.2.45");
 * ```
 */
export function teredo(address: IPAddress): { server: IPAddress; client: IPAddress } | undefined {
  if (address.version !== 6 || address.value >> 96n !== 0x2001_0000n) return undefined;
  return {
    server: ipv4((address.value >> 64n) & 0xffff_ffffn),
    client: ipv4(~address.value & 0xffff_ffffn),
  };
}

// ---------------------------------------------------------------------------
// Reports: everything about an address or a network, as plain JSON
// ---------------------------------------------------------------------------

/** Everything {@linkcode describeAddress} knows about an address, JSON-ready. */
export interface AddressReport extends Omit<Classification, "block"> {
  version: IPVersion;
  /** The canonical text (RFC 5952 for IPv6). */
  compressed: string;
  /** Nothing left out: eight four-digit groups for IPv6. */
  exploded: string;
  /** IPv6: the zone, or `null`. */
  zone: string | null;
  /** The number, in decimal (it may not fit a JavaScript number). */
  integer: string;
  /** The bytes as sent, in hex. */
  bytes: string;
  /** The special-purpose block that decided `private`/`global`, or `null`. */
  block: SpecialBlock | null;
  ipv4Mapped: string | null;
  sixToFour: string | null;
  teredo: { server: string; client: string } | null;
  reversePointer: string;
}

/**
 * Describe an address: its forms, bytes, classes and embedded IPv4 addresses.
 *
 * @param address An address.
 * @returns A plain object (`JSON.stringify` works on it).
 *
 * @example
 * ```ts
 * import { describeAddress, parseAddress } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * const report = describeAddress(parseAddress("::FFFF:10.0.0.1"));
 * assert.equal(report.compressed, "::ffff:a00:1");
 * assert.equal(report.ipv4Mapped, "10.0.0.1");
 * assert.equal(report.private, true);
 * ```
 */
export function describeAddress(address: IPAddress): AddressReport {
  const { block, ...classes } = classify(address);
  const mapped = ipv4Mapped(address), tunnel = sixToFour(address), teredoPair = teredo(address);
  return {
    version: address.version,
    compressed: formatAddress(address),
    exploded: explodeAddress(address),
    zone: address.zone ?? null,
    integer: address.value.toString(),
    bytes: [...addressToBytes(address)].map((b) => b.toString(16).padStart(2, "0")).join(" "),
    ...classes,
    block: block ?? null,
    ipv4Mapped: mapped ? formatAddress(mapped) : null,
    sixToFour: tunnel ? formatAddress(tunnel) : null,
    teredo: teredoPair
      ? { server: formatAddress(teredoPair.server), client: formatAddress(teredoPair.client) }
      : null,
    reversePointer: reversePointer(address),
  };
}

/** Everything {@linkcode describeNetwork} knows about a network, JSON-ready. */
export interface NetworkReport {
  network: string;
  version: IPVersion;
  prefix: number;
  netmask: string;
  hostmask: string;
  broadcast: string;
  /** How many addresses, in decimal. */
  size: string;
  firstHost: string;
  lastHost: string;
  /** How many usable hosts, in decimal. */
  hostCount: string;
}

/**
 * Describe a network: its masks, broadcast (last) address, size and hosts.
 *
 * @param network A network.
 * @returns A plain object (`JSON.stringify` works on it).
 *
 * @example
 * ```ts
 * import { describeNetwork, parseNetwork } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * const report = describeNetwork(parseNetwork("2001:db8::/64"));
 * assert.equal(report.size, "18446744073709551616");
 * assert.equal(report.lastHost, "2001:db8::ffff:ffff:ffff:ffff");
 * ```
 */
export function describeNetwork(network: IPNetwork): NetworkReport {
  const facts = networkFacts(network);
  return {
    network: formatNetwork(network),
    version: network.address.version,
    prefix: network.prefix,
    netmask: formatAddress(facts.netmask),
    hostmask: formatAddress(facts.hostmask),
    broadcast: formatAddress(facts.broadcast),
    size: facts.size.toString(),
    firstHost: formatAddress(facts.firstHost),
    lastHost: formatAddress(facts.lastHost),
    hostCount: facts.hostCount.toString(),
  };
}

// ---------------------------------------------------------------------------
// This machine: its name and its interfaces' addresses
// ---------------------------------------------------------------------------

/** One address of one of this machine's interfaces. */
export interface LocalAddress {
  /** The interface's name (`lo`, `eth0`, `en0`, ...). */
  interface: string;
  /** The address; a link-local IPv6 address carries the interface as its zone. */
  address: IPAddress;
  /** The network the interface is on. */
  network: IPNetwork;
}

/**
 * This machine's hostname and interface addresses, from the operating system
 * (`Deno.hostname()`, `Deno.networkInterfaces()`). A link-local IPv6 address
 * is only meaningful with its link, so it gets the interface's name as its
 * zone (`fe80::1%eth0`), the form `ping` and `ssh` accept on Linux and macOS.
 *
 * Needs `--allow-sys=hostname,networkInterfaces`.
 *
 * @returns The hostname and the addresses.
 * @throws {Deno.errors.NotCapable} Without the permission.
 *
 * @example Every machine has a loopback address
 * ```ts
 * import { classify, localAddresses } from "./ip_addresses.ts";
 * import assert from "node:assert/strict";
 *
 * const { hostname, addresses } = localAddresses();
 * assert.ok(hostname.length > 0);
 * assert.ok(addresses.some(({ address }) => classify(address).loopback));
 * ```
 */
export function localAddresses(): { hostname: string; addresses: LocalAddress[] } {
  const hostname = Deno.hostname();
  const addresses = Deno.networkInterfaces().map((entry) => {
    let address = parseAddress(entry.address);
    if (address.version === 6 && contains(V6.linkLocal, address)) {
      address = ipv6(address.value, entry.name);
    }
    const prefix = Number(entry.cidr.split("/")[1]);
    const network = parseNetwork(`${formatAddress(address)}/${prefix}`, { strict: false });
    return { interface: entry.name, address, network };
  });
  return { hostname, addresses };
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  loose: { type: "boolean" },
  subnets: { type: "number", integer: true, min: 0, max: 128 },
  supernet: { type: "number", integer: true, min: 0, max: 128 },
  limit: { type: "number", default: 8, integer: true, min: 1 },
  json: { type: "boolean" },
} as const;

type CliFlags = Flags<typeof FLAGS>;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  const [command, ...rest] = positionals;
  if (command === undefined) return await demo();
  if (command === "info") {
    if (rest.length === 0) throw new UsageError("info needs at least one address");
    return infoCommand(rest, flags.json);
  }
  if (command === "net") {
    if (rest.length !== 1) {
      throw new UsageError("net needs exactly one network, such as 10.0.0.0/8");
    }
    return netCommand(rest[0], flags);
  }
  if (command === "contains") {
    if (rest.length < 2) throw new UsageError("contains needs a network, then addresses");
    return containsCommand(rest[0], rest.slice(1), flags);
  }
  if (command === "local") {
    if (rest.length > 0) throw new UsageError(`local takes no arguments, got "${rest[0]}"`);
    return localCommand(flags.json);
  }
  throw new UsageError(`unknown command "${command}"; expected info, net, contains or local`);
}

// Every input is checked before anything is printed, so a bad one is the
// only output: one error line.
function infoCommand(texts: string[], json: boolean): void {
  const reports = texts.map((text) => describeAddress(parseAddress(text)));
  for (const [i, report] of reports.entries()) {
    if (json) {
      console.log(JSON.stringify({ input: texts[i], ...report }));
      continue;
    }
    if (i > 0) console.log();
    console.log(texts[i]);
    for (const [label, value] of addressLines(report)) {
      console.log(`  ${label.padEnd(15)} ${value}`);
    }
  }
}

function addressLines(report: AddressReport): [string, string][] {
  const lines: [string, string][] = [
    ["version", `IPv${report.version}`],
    ["canonical", report.compressed],
    ["exploded", report.exploded],
  ];
  if (report.zone !== null) lines.push(["zone", report.zone]);
  lines.push(["integer", report.integer], ["bytes", report.bytes]);
  lines.push(["classes", describeClasses(report)]);
  if (report.block) lines.push(["block", describeBlock(report.block)]);
  if (report.ipv4Mapped) lines.push(["IPv4-mapped", report.ipv4Mapped]);
  if (report.sixToFour) lines.push(["6to4 for", report.sixToFour]);
  if (report.teredo) {
    lines.push(["Teredo", `server ${report.teredo.server}, client ${report.teredo.client}`]);
  }
  lines.push(["reverse DNS", report.reversePointer]);
  return lines;
}

function describeClasses(classes: Omit<Classification, "block">): string {
  const names: string[] = [];
  if (classes.private) names.push("private");
  if (classes.global) names.push("global");
  if (!classes.private && !classes.global) names.push("neither private nor global");
  const flags = [
    ["loopback", classes.loopback],
    ["link-local", classes.linkLocal],
    ["multicast", classes.multicast],
    ["reserved", classes.reserved],
    ["unspecified", classes.unspecified],
    ["site-local", classes.siteLocal],
  ] as const;
  for (const [name, set] of flags) if (set) names.push(name);
  return names.join(", ");
}

function describeBlock(block: SpecialBlock): string {
  const reach = block.globallyReachable === null ? "N/A" : block.globallyReachable ? "yes" : "no";
  const python = block.python === undefined
    ? ""
    : ` (Python 3.11 counts it as ${block.python ? "global" : "private"})`;
  return `${block.block} ${block.name}, ${block.rfc}; globally reachable: ${reach}${python}`;
}

function parseCidr(text: string, loose: boolean): IPNetwork {
  try {
    return parseNetwork(text, { strict: !loose });
  } catch (error) {
    if (error instanceof SyntaxError && /host bits are set/.test(error.message)) {
      throw new SyntaxError(`${error.message}; pass --loose to accept host bits`);
    }
    throw error;
  }
}

function netCommand(text: string, flags: CliFlags): void {
  const network = parseCidr(text, flags.loose);
  const report = describeNetwork(network);
  const bits = bitLength(network.address.version);
  // Check the extra requests before printing anything.
  let subnetList: IPNetwork[] | undefined, subnetCount = 0n;
  if (flags.subnets !== undefined) {
    const newPrefix = flags.subnets;
    if (newPrefix < network.prefix || newPrefix > bits) {
      throw new UsageError(
        `--subnets must be from ${network.prefix} to ${bits} for ${report.network}`,
      );
    }
    subnetCount = 1n << BigInt(newPrefix - network.prefix);
    subnetList = take(subnets(network, newPrefix), flags.limit);
  }
  let wider: IPNetwork | undefined;
  if (flags.supernet !== undefined) {
    if (flags.supernet > network.prefix) {
      throw new UsageError(`--supernet must be from 0 to ${network.prefix} for ${report.network}`);
    }
    wider = supernet(network, flags.supernet);
  }
  if (flags.json) {
    console.log(JSON.stringify({
      input: text,
      ...report,
      ...(subnetList && { subnets: subnetList.map(formatNetwork), subnetCount: `${subnetCount}` }),
      ...(wider && { supernet: formatNetwork(wider) }),
    }));
    return;
  }
  for (const [label, value] of networkLines(report)) console.log(`${label.padEnd(11)} ${value}`);
  if (subnetList) {
    const more = subnetCount > BigInt(subnetList.length) ? `, ... (${subnetCount} in all)` : "";
    console.log(`${"subnets".padEnd(11)} ${subnetList.map(formatNetwork).join(", ")}${more}`);
  }
  if (wider) console.log(`${"supernet".padEnd(11)} ${formatNetwork(wider)}`);
}

function networkLines(report: NetworkReport): [string, string][] {
  const bits = report.version === 4 ? 32 : 128;
  return [
    ["network", report.network],
    [
      "netmask",
      `${report.netmask} (${report.prefix} one bits, then ${bits - report.prefix} zeros)`,
    ],
    ["hostmask", report.hostmask],
    [report.version === 4 ? "broadcast" : "last", report.broadcast],
    ["size", `${report.size} addresses`],
    ["hosts", `${report.firstHost} - ${report.lastHost} (${report.hostCount})`],
  ];
}

function take<T>(items: Iterable<T>, limit: number): T[] {
  const taken: T[] = [];
  for (const item of items) {
    if (taken.length === limit) break;
    taken.push(item);
  }
  return taken;
}

function containsCommand(text: string, inners: string[], flags: CliFlags): void {
  const network = parseCidr(text, flags.loose);
  const parsed = inners.map((inner) =>
    inner.includes("/") ? parseCidr(inner, flags.loose) : parseAddress(inner)
  );
  for (const [i, inner] of parsed.entries()) {
    const inside = contains(network, inner);
    if (flags.json) {
      console.log(
        JSON.stringify({ network: formatNetwork(network), inner: inners[i], contains: inside }),
      );
    } else {
      console.log(`${inners[i]} is ${inside ? "in" : "not in"} ${formatNetwork(network)}`);
    }
  }
}

// Reading the hostname and interfaces is the script's one privileged act.
// Check both permissions first, so a missing one is a single clear line
// that names the flag with both scopes.
function requireSysPermission(): void {
  for (const kind of ["hostname", "networkInterfaces"] as const) {
    if (Deno.permissions.querySync({ name: "sys", kind }).state !== "granted") {
      throw new Error(
        "missing permission: reading this machine's hostname and interfaces needs " +
          "--allow-sys=hostname,networkInterfaces (info, net and contains need none)",
      );
    }
  }
}

function localCommand(json: boolean): void {
  requireSysPermission();
  const { hostname, addresses } = localAddresses();
  if (json) {
    console.log(JSON.stringify({
      hostname,
      addresses: addresses.map((local) => ({
        interface: local.interface,
        address: formatAddress(local.address),
        network: formatNetwork(local.network),
        ...describeAddress(local.address),
      })),
    }));
    return;
  }
  console.log(`hostname: ${hostname}`);
  printLocal(addresses, "");
}

function printLocal(addresses: LocalAddress[], indent: string): void {
  const width = Math.max(...addresses.map((a) => formatWithPrefix(a).length));
  for (const local of addresses) {
    const classes = classify(local.address);
    const block = classes.block ? `  (${classes.block.block} ${classes.block.name})` : "";
    console.log(
      `${indent}${local.interface.padEnd(6)} ${formatWithPrefix(local).padEnd(width)}  ` +
        `${describeClasses(classes)}${block}`,
    );
  }
}

function formatWithPrefix(local: LocalAddress): string {
  return `${formatAddress(local.address)}/${local.network.prefix}`;
}

// The default run: this machine's own addresses first (the part that needs
// --allow-sys), then each lesson on example addresses.
function demo(): void {
  requireSysPermission();
  const { hostname, addresses } = localAddresses();
  console.log("1. This machine (Deno.hostname() and Deno.networkInterfaces())");
  console.log(`   hostname: ${hostname}`);
  printLocal(addresses, "   ");

  console.log("\n2. An address is a number: text in, bits out (RFC 791 §3.2, RFC 4291 §2.2)");
  const v4 = parseAddress("192.168.1.10");
  const binary = [...addressToBytes(v4)].map((b) => b.toString(2).padStart(8, "0")).join(".");
  console.log(`   192.168.1.10 = 0x${v4.value.toString(16)} = ${v4.value} = ${binary}`);
  for (
    const [text, note] of [
      ["2001:0DB8:0000:0000:0000:0000:0000:0001", "lowercase, no leading zeros, :: for zeros"],
      ["2001:db8:0:0:1:0:0:1", "two equal zero runs: only the first becomes ::"],
      ["2001:db8:0:1:1:1:1:1", "a single zero group stays 0"],
      ["::ffff:192.0.2.1", "IPv4-mapped: a dotted quad as the last 32 bits"],
      ["fe80::1%eth0", "a zone: which link this link-local address is on"],
    ]
  ) {
    console.log(`   ${text.padEnd(40)} -> ${formatAddress(parseAddress(text)).padEnd(22)} ${note}`);
  }

  console.log("\n3. Malformed text is refused, and the message says where");
  for (
    const text of [
      "192.168.1.300",
      "192.168.01.1",
      "10.1.2",
      "2001:db8::1::2",
      "2001:db8:0:0:0:0:0:0:1",
      "2001:db8::12345",
      "::ffff:1.2.3.256",
    ]
  ) {
    try {
      parseAddress(text);
      console.log(`   ${text} was accepted?!`);
    } catch (error) {
      console.log(`   ${(error as Error).message}`);
    }
  }

  console.log("\n4. Special-purpose blocks (IANA registries, RFC 6890)");
  for (
    const text of [
      "10.1.2.3",
      "100.64.1.1",
      "169.254.10.20",
      "127.0.0.1",
      "224.0.0.251",
      "8.8.8.8",
      "2001:db8::1",
      "fd12:3456::1",
      "::ffff:10.0.0.1",
      "2606:4700::1111",
    ]
  ) {
    const classes = classify(parseAddress(text));
    const block = classes.block
      ? `${classes.block.block} ${classes.block.name}`
      : "(no special block)";
    console.log(`   ${text.padEnd(16)} ${describeClasses(classes).padEnd(29)} ${block}`);
  }

  console.log("\n5. CIDR networks (RFC 4632 §3.1): 192.168.1.77/26, host bits cleared (--loose)");
  const lan = parseNetwork("192.168.1.77/26", { strict: false });
  for (const [label, value] of networkLines(describeNetwork(lan))) {
    console.log(`   ${label.padEnd(11)} ${value}`);
  }
  const quarters = [...subnets(lan, 28)].map(formatNetwork).join(", ");
  console.log(`   ${"subnets/28".padEnd(11)} ${quarters}`);
  console.log(`   ${"supernet/24".padEnd(11)} ${formatNetwork(supernet(lan, 24))}`);
  for (const text of ["192.168.1.100", "192.168.1.200"]) {
    console.log(`   ${text} is ${contains(lan, parseAddress(text)) ? "in" : "not in"} it`);
  }
  const six = describeNetwork(parseNetwork("2001:db8:abcd:12::/64"));
  console.log(`   ${six.network} holds ${six.size} addresses: one LAN, in IPv6`);
}

if (import.meta.main) runMain(USAGE, main);
