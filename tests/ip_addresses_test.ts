// scripts/ip_addresses.ts: a differential test against Python's ipaddress
// module on 100,000+ generated inputs, properties (parse(format(x)) == x),
// the error messages, and the command line.

import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  bitLength,
  classify,
  contains,
  describeAddress,
  describeNetwork,
  explodeAddress,
  formatAddress,
  formatNetwork,
  hosts,
  type IPAddress,
  ipv4,
  ipv6,
  type IPVersion,
  networkFacts,
  parseAddress,
  parseIPv4,
  parseIPv6,
  parseNetwork,
  prefixMask,
  SPECIAL_BLOCKS_V4,
  SPECIAL_BLOCKS_V6,
  specialBlock,
  subnets,
  supernet,
} from "../scripts/ip_addresses.ts";
import { PEERS, peerTest, PYTHON, runScript } from "./_helpers.ts";

// ---------------------------------------------------------------------------
// The differential test
// ---------------------------------------------------------------------------

// The oracle: one Python process reads every input (one JSON object a line)
// and answers each with what ipaddress says. Two normalisations, both for
// crashes in Python rather than disagreements: `exploded` and
// `reverse_pointer` raise on an address with a zone (they re-parse str(self),
// zone included), so we ask them of the same number without its zone.
const ORACLE = String.raw`
import ipaddress as I, itertools, json, sys

def text(value):
    return None if value is None else str(value)

def address(t, detail):
    try:
        a = I.ip_address(t)
    except ValueError:
        return {"ok": False}
    six = a.version == 6
    zone = a.scope_id if six else None
    pair = a.teredo if six else None
    r = {
        "ok": True, "version": a.version, "compressed": str(a), "zone": zone,
        "integer": str(int(a)), "private": a.is_private, "global": a.is_global, "loopback": a.is_loopback,
        "linkLocal": a.is_link_local, "multicast": a.is_multicast, "reserved": a.is_reserved,
        "unspecified": a.is_unspecified, "siteLocal": six and a.is_site_local,
        "ipv4Mapped": text(a.ipv4_mapped) if six else None,
        "sixToFour": text(a.sixtofour) if six else None,
        "teredo": {"server": str(pair[0]), "client": str(pair[1])} if pair else None,
    }
    if detail:
        plain = type(a)(int(a))
        r["exploded"] = plain.exploded + ("%" + zone if zone else "")
        r["bytes"] = a.packed.hex(" ")
        r["reversePointer"] = plain.reverse_pointer
    return r

def network(t, strict, probe, longer, shorter):
    try:
        n = I.ip_network(t, strict=strict)
    except ValueError:
        return {"ok": False}
    r = {
        "ok": True, "network": str(n), "version": n.version, "prefix": n.prefixlen,
        "netmask": str(n.netmask), "hostmask": str(n.hostmask),
        "broadcast": str(n.broadcast_address), "size": str(n.num_addresses),
        "firstHost": str(next(iter(n.hosts()))),
    }
    if n.num_addresses <= 16:
        every = list(n.hosts())
        r["lastHost"] = str(every[-1])
        r["hostCount"] = str(len(every))
    try:
        r["contains"] = I.ip_address(probe) in n
    except ValueError:
        r["contains"] = None
    # Python gives a single address as its own only subnet at any new prefix;
    # we refuse one out of range, so that case asks for the same prefix.
    bits = n.max_prefixlen
    sub = bits if n.prefixlen == bits else n.prefixlen + longer
    sup = 0 if n.prefixlen == 0 else n.prefixlen - shorter
    try:
        found = n.subnets(new_prefix=sub)
        r["subnets"] = [str(s) for s in (found if longer <= 3 else itertools.islice(found, 2))]
    except ValueError:
        r["subnets"] = None
    try:
        r["supernet"] = str(n.supernet(new_prefix=sup))
    except ValueError:
        r["supernet"] = None
    return r

out = [json.dumps({"python": sys.version})]
for line in sys.stdin.read().splitlines():
    q = json.loads(line)
    if q["kind"] == "address":
        out.append(json.dumps(address(q["text"], q["detail"])))
    else:
        out.append(json.dumps(network(q["text"], q["strict"], q["probe"], q["longer"], q["shorter"])))
sys.stdout.write("\n".join(out) + "\n")
`;

// Python's exploded and reverse_pointer re-parse the address's text, which
// makes them its slowest answers; they (and bytes) are compared on one input
// in eight, and on every hand-picked one.
const SLOW_FIELDS = ["exploded", "bytes", "reversePointer"];

type Query =
  | {
    kind: "address";
    text: string;
    /** Also compare the slow fields: exploded, bytes, reversePointer. */
    detail: boolean;
  }
  | {
    kind: "network";
    text: string;
    strict: boolean;
    /** An address to test for containment. */
    probe: string;
    /** List the subnets this much longer than the network's prefix. */
    longer: number;
    /** Find the supernet this much shorter. */
    shorter: number;
  };

/** A generated input, and (for a valid one made from a number) the number it must parse to. */
interface Case {
  query: Query;
  expect?: bigint;
}

// Our answer, in the oracle's shape.
function ours(query: Query): Record<string, unknown> {
  if (query.kind === "address") {
    let address: IPAddress;
    try {
      address = parseAddress(query.text);
    } catch (error) {
      if (error instanceof SyntaxError) return { ok: false };
      throw error;
    }
    const { block: _block, ...report } = describeAddress(address);
    const answer: Record<string, unknown> = { ok: true, ...report };
    if (!query.detail) { for (const key of SLOW_FIELDS) delete answer[key]; }
    return answer;
  }
  let network;
  try {
    network = parseNetwork(query.text, { strict: query.strict });
  } catch (error) {
    if (error instanceof SyntaxError) return { ok: false };
    throw error;
  }
  const report = describeNetwork(network);
  const answer: Record<string, unknown> = {
    ok: true,
    network: report.network,
    version: report.version,
    prefix: report.prefix,
    netmask: report.netmask,
    hostmask: report.hostmask,
    broadcast: report.broadcast,
    size: report.size,
    firstHost: report.firstHost,
  };
  // For small networks, list the hosts with hosts() (not networkFacts), so
  // both are checked.
  if (BigInt(report.size) <= 16n) {
    const every = [...hosts(network)];
    answer.lastHost = formatAddress(every[every.length - 1]);
    answer.hostCount = String(every.length);
  }
  try {
    answer.contains = contains(network, parseAddress(query.probe));
  } catch {
    answer.contains = null;
  }
  try {
    const bits = bitLength(network.address.version);
    const newPrefix = network.prefix === bits ? bits : network.prefix + query.longer;
    const found = subnets(network, newPrefix);
    const limit = query.longer <= 3 ? Infinity : 2;
    const listed: string[] = [];
    for (const subnet of found) {
      if (listed.length >= limit) break;
      listed.push(formatNetwork(subnet));
    }
    answer.subnets = listed;
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    answer.subnets = null;
  }
  try {
    const newPrefix = network.prefix === 0 ? 0 : network.prefix - query.shorter;
    answer.supernet = formatNetwork(supernet(network, newPrefix));
  } catch (error) {
    if (!(error instanceof RangeError)) throw error;
    answer.supernet = null;
  }
  return answer;
}

/**
 * Start one Python process and hand it every query. It reads them all first,
 * so once `sent` resolves we are free to work while it thinks.
 */
function askPython(queries: Query[]): {
  sent: Promise<void>;
  answers: Promise<{ version: string; answers: Record<string, unknown>[] }>;
} {
  const child = new Deno.Command(PYTHON, {
    args: ["-c", ORACLE],
    stdin: "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const input = new TextEncoder().encode(queries.map((q) => JSON.stringify(q)).join("\n") + "\n");
  const output = child.output();
  const sent = (async () => {
    const writer = child.stdin.getWriter();
    await writer.write(input);
    await writer.close();
  })();
  const answers = (async () => {
    const { code, stdout, stderr } = await output;
    assert.equal(code, 0, new TextDecoder().decode(stderr));
    const lines = new TextDecoder().decode(stdout).trimEnd().split("\n");
    const [first, ...rest] = lines.map((line) => JSON.parse(line));
    return { version: first.python as string, answers: rest };
  })();
  return { sent, answers };
}

// Field by field, in JSON: the answers are plain data, and this says which
// fields differ.
function differences(mine: Record<string, unknown>, theirs: Record<string, unknown>): string[] {
  return [...new Set([...Object.keys(mine), ...Object.keys(theirs)])]
    .filter((key) => JSON.stringify(mine[key]) !== JSON.stringify(theirs[key]))
    .map((key) =>
      `${key}: ours ${JSON.stringify(mine[key])}, Python ${JSON.stringify(theirs[key])}`
    );
}

peerTest(
  "ip_addresses: every answer agrees with Python's ipaddress on 100,000+ generated inputs",
  [PEERS.python3],
  async () => {
    const seed = Number(Deno.env.get("WIREBOOK_SEED") ?? 20_240_607);
    const cases = generateCases(new Random(seed));
    assert.ok(cases.length >= 100_000, `only ${cases.length} inputs`);
    const python = askPython(cases.map(({ query }) => query));
    await python.sent;
    const mine = cases.map(({ query }) => ours(query));
    const { version, answers } = await python.answers;
    assert.equal(answers.length, cases.length);

    const disagreements: string[] = [];
    let valid = 0;
    for (const [i, { query, expect }] of cases.entries()) {
      const theirs = answers[i];
      if (theirs.ok) valid++;
      let problem = differences(mine[i], theirs).join("; ");
      // An input made from a number must parse to that number, which checks
      // the generator's text forms (and our formatter) independently of us.
      if (!problem && expect !== undefined && theirs.integer !== String(expect)) {
        problem = `made from ${expect}, Python read ${JSON.stringify(theirs)}`;
      }
      if (problem) disagreements.push(`${JSON.stringify(query)}: ${problem}`);
    }
    assert.ok(valid > cases.length / 3 && valid < cases.length * 0.8, `${valid} valid inputs`);
    assert.equal(
      disagreements.length,
      0,
      `${disagreements.length} of ${cases.length} inputs disagree with Python ${version} ` +
        `(seed ${seed}; the script matches Python 3.11.2 as Debian 12 ships it); the first few:\n` +
        disagreements.slice(0, 10).join("\n"),
    );
  },
);

// ---------------------------------------------------------------------------
// The generator: seeded, so a failure can be replayed (WIREBOOK_SEED=...)
// ---------------------------------------------------------------------------

/** A small seeded generator (mulberry32). */
class Random {
  #state: number;
  constructor(seed: number) {
    this.#state = seed >>> 0;
  }
  /** A float in [0, 1). */
  next(): number {
    let t = (this.#state = (this.#state + 0x6d2b79f5) >>> 0);
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }
  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(items: readonly T[]): T {
    return items[this.int(0, items.length - 1)];
  }
  /** A uniformly random number of `bits` bits. */
  bits(bits: number): bigint {
    let value = 0n;
    for (let done = 0; done < bits; done += 16) {
      value = (value << 16n) | BigInt(this.int(0, 0xffff));
    }
    return value >> BigInt(Math.ceil(bits / 16) * 16 - bits);
  }
}

// Blocks worth aiming at: every special-purpose block, and the ranges the
// other flags test, with their edges.
const TARGETS: Record<IPVersion, { value: bigint; prefix: number }[]> = {
  4: [...SPECIAL_BLOCKS_V4.map((b) => b.block), "224.0.0.0/4", "100.64.0.0/10", "0.0.0.0/0"]
    .map((text) => parseNetwork(text)).map((n) => ({ value: n.address.value, prefix: n.prefix })),
  6: [
    ...SPECIAL_BLOCKS_V6.map((b) => b.block),
    "2000::/3",
    "fc00::/7",
    "fec0::/10",
    "ff00::/8",
    "fe00::/9",
    "4000::/2",
    "::/8",
    "::/96",
    "::/0",
  ].map((text) => parseNetwork(text)).map((n) => ({ value: n.address.value, prefix: n.prefix })),
};

function randomValue(rng: Random, version: IPVersion): bigint {
  const bits = bitLength(version);
  const roll = rng.next();
  if (roll < 0.3) return rng.bits(bits);
  if (version === 6 && roll < 0.4) {
    // Sparse: many zero groups, so "::" has runs to choose between.
    let value = 0n;
    for (let i = 0; i < 8; i++) {
      value = (value << 16n) | BigInt(rng.chance(0.6) ? 0 : rng.int(0, 0xffff));
    }
    return value;
  }
  if (version === 6 && roll < 0.5) return 0xffff_0000_0000n | randomValue(rng, 4); // IPv4-mapped
  const target = rng.pick(TARGETS[version]);
  const size = 1n << BigInt(bits - target.prefix);
  const all = (1n << BigInt(bits)) - 1n;
  // Inside the block, or at its edges, or one step outside them.
  const offset = rng.pick([
    0n,
    size - 1n,
    -1n,
    size,
    rng.bits(bits - target.prefix),
    rng.bits(Math.min(8, bits - target.prefix)),
  ]);
  return (target.value + offset) & all;
}

const ZONE_CHARS = ["eth0", "1", "lo", "en0", "a b", "x.y", "a:b", "é", "☃", "😀", "_", "\t", "-"];

/** A valid text of `value`, in one of the many forms RFC 4291 §2.2 allows. */
function writeIPv6(rng: Random, value: bigint, zone?: string): string {
  const groups = Array.from(
    { length: 8 },
    (_, i) => Number((value >> BigInt(112 - 16 * i)) & 0xffffn),
  );
  // Some leading zeros, some upper case, per group.
  let words = groups.map((group) => {
    let digits = group.toString(16);
    if (rng.chance(0.2)) digits = digits.padStart(rng.int(digits.length, 4), "0");
    if (rng.chance(0.2)) digits = digits.toUpperCase();
    return digits;
  });
  // The last two groups as a dotted quad, sometimes.
  let tail = "";
  if (rng.chance(0.2)) {
    tail = formatAddress(ipv4(value & 0xffff_ffffn));
    words = words.slice(0, 6);
  }
  // "::" over some run of zero groups (not always the longest), sometimes.
  const runs: [number, number][] = [];
  for (let start = 0; start < words.length; start++) {
    for (let end = start + 1; end <= words.length && /^0+$/.test(words[end - 1]); end++) {
      runs.push([start, end]);
    }
  }
  let body: string;
  if (runs.length > 0 && rng.chance(0.7)) {
    const [start, end] = rng.pick(runs);
    const head = words.slice(0, start).join(":");
    const rest = [...words.slice(end), ...(tail ? [tail] : [])].join(":");
    body = `${head}::${rest}`;
  } else {
    body = [...words, ...(tail ? [tail] : [])].join(":");
  }
  return zone === undefined ? body : `${body}%${zone}`;
}

function randomZone(rng: Random): string {
  return Array.from({ length: rng.int(1, 3) }, () => rng.pick(ZONE_CHARS)).join("");
}

// Ways to spoil a valid text, aimed at each rule of the grammar.
const BAD_OCTETS = [
  "256",
  "300",
  "999",
  "1000",
  "01",
  "00",
  "000",
  "007",
  "",
  "-1",
  "+1",
  " 1",
  "1 ",
  "0x1f",
  "1e2",
  "a",
  "١",
  "１",
  "1.5",
];
const BAD_GROUPS = ["12345", "00000", "g", "-1", "+1", " 1", "ａ", "1g", "0x1", "fffff", ""];
const NOISE = [...":.%/0123456789abcdefABCDEFgx -[]", "::", ":::", "١", "é", "\n"];

function spoil(rng: Random, text: string): string {
  const at = rng.int(0, text.length);
  switch (rng.int(0, 5)) {
    case 0: // delete a character
      return text.slice(0, at) + text.slice(at + 1);
    case 1: // insert one
      return text.slice(0, at) + rng.pick(NOISE) + text.slice(at);
    case 2: // replace one
      return text.slice(0, at) + rng.pick(NOISE) + text.slice(at + 1);
    case 3: // duplicate one
      return text.slice(0, at + 1) + text.slice(at);
    case 4: // replace a part between separators
    {
      const parts = text.split(/([:.])/);
      const i = rng.int(0, parts.length - 1);
      if (parts[i] === ":" || parts[i] === ".") return text + rng.pick(NOISE);
      parts[i] = rng.pick(text.includes(":") ? BAD_GROUPS : BAD_OCTETS);
      return parts.join("");
    }
    default: // something at either end
      return rng.chance(0.5) ? rng.pick(NOISE) + text : text + rng.pick(NOISE);
  }
}

function addressCase(rng: Random): Case {
  const detail = rng.chance(1 / 8);
  const roll = rng.next();
  if (roll < 0.25) {
    const value = randomValue(rng, 4);
    return { query: { kind: "address", text: formatAddress(ipv4(value)), detail }, expect: value };
  }
  if (roll < 0.55) {
    const value = randomValue(rng, 6);
    const zone = rng.chance(0.15) ? randomZone(rng) : undefined;
    return { query: { kind: "address", text: writeIPv6(rng, value, zone), detail }, expect: value };
  }
  if (roll < 0.92) {
    // A near miss: a valid text, spoiled once or twice (sometimes still valid).
    const valid = rng.chance(0.4)
      ? formatAddress(ipv4(randomValue(rng, 4)))
      : writeIPv6(rng, randomValue(rng, 6), rng.chance(0.1) ? randomZone(rng) : undefined);
    let text = spoil(rng, valid);
    if (rng.chance(0.3)) text = spoil(rng, text);
    return { query: { kind: "address", text, detail } };
  }
  // Garbage built from the characters addresses are made of.
  const text = Array.from({ length: rng.int(0, 24) }, () => rng.pick(NOISE)).join("");
  return { query: { kind: "address", text, detail } };
}

const BAD_PREFIXES = [
  "",
  "-1",
  "+24",
  " 24",
  "24 ",
  "2a",
  "٢٤",
  "0x10",
  "1.5",
  "33",
  "129",
  "999",
  "/",
];

function networkCase(rng: Random): Case {
  const version: IPVersion = rng.chance(0.5) ? 4 : 6;
  const bits = bitLength(version);
  // Prefix lengths near the end as often as anywhere, so hosts can be listed.
  const prefix = rng.chance(0.5) ? rng.int(Math.max(0, bits - 10), bits) : rng.int(0, bits);
  let value = randomValue(rng, version);
  const mask = prefixMask(version, prefix).value;
  if (rng.chance(0.6)) value &= mask; // a proper network address; else host bits, likely
  const zone = version === 6 && rng.chance(0.05) ? randomZone(rng) : undefined;
  const written = version === 4 ? formatAddress(ipv4(value)) : writeIPv6(rng, value, zone);

  let maskText = String(prefix);
  const roll = rng.next();
  if (roll < 0.1) maskText = maskText.padStart(rng.int(2, 4), "0");
  else if (roll < 0.2 && version === 4) maskText = formatAddress(prefixMask(4, prefix));
  else if (roll < 0.3 && version === 4) {
    maskText = formatAddress(ipv4(prefixMask(4, prefix).value ^ 0xffff_ffffn));
  } else if (roll < 0.35) maskText = formatAddress(ipv4(rng.bits(32))); // rarely a real mask
  else if (roll < 0.4) maskText = formatAddress(prefixMask(version, prefix)); // IPv6: no netmasks
  else if (roll < 0.47) maskText = rng.pick(BAD_PREFIXES);

  let text = rng.chance(0.08) ? written : `${written}/${maskText}`;
  if (rng.chance(0.12)) text = spoil(rng, text);

  const inside = (value & mask) + rng.bits(bits - prefix);
  const probe = rng.chance(0.1)
    ? formatAddress(ipv4(rng.bits(32)))
    : rng.chance(0.1)
    ? "not an address"
    : formatAddress(
      version === 4
        ? ipv4(rng.chance(0.5) ? inside : rng.bits(32))
        : ipv6(inside ^ (rng.chance(0.5) ? 0n : rng.bits(128))),
    );
  const longer = rng.chance(0.1) ? rng.int(7, 130) : rng.int(-1, 6);
  const shorter = rng.chance(0.1) ? rng.int(9, 130) : rng.int(-1, 8);
  return { query: { kind: "network", text, strict: rng.chance(0.5), probe, longer, shorter } };
}

function generateCases(rng: Random): Case[] {
  const cases: Case[] = [];
  // Hand-picked inputs first: each special case of the grammar and the registries.
  for (const text of HAND_PICKED) cases.push({ query: { kind: "address", text, detail: true } });
  for (let i = 0; i < 62_000; i++) cases.push(addressCase(rng));
  for (let i = 0; i < 40_000; i++) cases.push(networkCase(rng));
  return cases;
}

const HAND_PICKED = [
  "0.0.0.0",
  "255.255.255.255",
  "1.2.3.4",
  "01.2.3.4",
  "1.2.3.04",
  "1.2.3",
  "1.2.3.4.5",
  "1..3.4",
  "1.2.3.4.",
  ".1.2.3",
  "256.0.0.0",
  "1.2.3.4/32",
  "1.2.3.4%eth0",
  " 1.2.3.4",
  "1.2.3.4\n",
  "",
  "::",
  "::1",
  "1::",
  "::ffff:1.2.3.4",
  "::1.2.3.4",
  "1:2:3:4:5:6:1.2.3.4",
  "1:2:3:4:5:6:7:1.2.3.4",
  "1::2::3",
  ":::",
  ":1::2",
  "1::2:",
  "1:2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7:8:9",
  "1:2:3:4:5:6:7",
  "1::2:3:4:5:6:7:8",
  "1:2:3:4:5:6:7::",
  "::2:3:4:5:6:7:8",
  "1:2:3:4::5:6:7",
  "12345::",
  "g::",
  "fe80::1%eth0",
  "fe80::1%",
  "fe80::1%%",
  "fe80::1%a%b",
  "%eth0",
  "::%1",
  "[::1]",
  "::1/128",
  "::ffff:1.2.3.4%x",
  "1.2.3.4::",
  "::1.2.3.4:1",
  "::ffff:01.2.3.4",
  "::ffff:1.2.3",
  "2001:db8::",
  "192.0.0.9",
  "192.0.0.10",
  "192.0.0.8",
  "192.0.0.170",
  "192.0.0.171",
  "192.0.0.172",
  "100.64.0.0",
  "100.127.255.255",
  "192.88.99.1",
  "224.0.0.1",
  "240.0.0.1",
  "255.255.255.254",
  "::ffff:100.64.0.1",
  "::ffff:192.0.0.9",
  "::ffff:127.0.0.1",
  "64:ff9b::1",
  "64:ff9b:1::1",
  "2001:1::1",
  "2001:1::2",
  "2001:1::3",
  "2001:3::1",
  "2001:4:112::1",
  "2001:20::1",
  "2001:30::1",
  "2001:10::1",
  "2002::1",
  "2620:4f:8000::1",
  "3fff::1",
  "5f00::1",
  "fec0::1",
  "ff02::1",
  "fe00::1",
];

// ---------------------------------------------------------------------------
// Properties: parse(format(x)) == x
// ---------------------------------------------------------------------------

const anyIPv4 = fc.integer({ min: 0, max: 0xffff_ffff }).map((n) => ipv4(n));
const sparseGroups = fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 0xffff })), {
  minLength: 8,
  maxLength: 8,
}).map((groups) => groups.reduce((value, group) => (value << 16n) | BigInt(group), 0n));
const anyZone = fc.option(
  fc.string({ minLength: 1, maxLength: 8 }).filter((zone) => !/[%/]/.test(zone)),
  { nil: undefined },
);
const anyIPv6 = fc.tuple(
  fc.oneof(fc.bigInt({ min: 0n, max: (1n << 128n) - 1n }), sparseGroups),
  anyZone,
).map(([value, zone]) => ipv6(value, zone));

Deno.test("ip_addresses: parse(format(x)) == x for every IPv4 address (property)", () => {
  fc.assert(
    fc.property(anyIPv4, (address) => {
      assert.deepEqual(parseIPv4(formatAddress(address)), address);
      assert.deepEqual(parseAddress(explodeAddress(address)), address);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("ip_addresses: parse(format(x)) == x for every IPv6 address, in every form (property)", () => {
  fc.assert(
    fc.property(anyIPv6, (address) => {
      assert.deepEqual(parseIPv6(formatAddress(address)), address);
      assert.deepEqual(parseIPv6(explodeAddress(address)), address);
      assert.deepEqual(parseIPv6(formatAddress(address, { mixed: true })), address);
      // The canonical form is a fixed point, and never longer than any other form.
      const canonical = formatAddress(address);
      assert.equal(formatAddress(parseIPv6(canonical)), canonical);
      assert.ok(canonical.length <= explodeAddress(address).length);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("ip_addresses: a network's text parses back to it, and its facts hold together (property)", () => {
  const anyNetwork = fc.oneof(
    fc.tuple(anyIPv4, fc.integer({ min: 0, max: 32 })),
    fc.tuple(anyIPv6.map((a) => ipv6(a.value)), fc.integer({ min: 0, max: 128 })),
  ).map(([address, prefix]) =>
    parseNetwork(`${formatAddress(address)}/${prefix}`, { strict: false })
  );
  fc.assert(
    fc.property(anyNetwork, (network) => {
      assert.deepEqual(parseNetwork(formatNetwork(network)), network);
      const facts = networkFacts(network);
      const bits = bitLength(network.address.version);
      assert.equal(facts.size, 1n << BigInt(bits - network.prefix));
      assert.equal(facts.broadcast.value - network.address.value + 1n, facts.size);
      assert.equal(facts.netmask.value & facts.hostmask.value, 0n);
      assert.ok(contains(network, network.address) && contains(network, facts.broadcast));
      assert.ok(contains(network, facts.firstHost) && contains(network, facts.lastHost));
      const wider = supernet(network, Math.max(0, network.prefix - 3));
      assert.ok(contains(wider, network));
      const halves = [...subnets(network, Math.min(bits, network.prefix + 1))];
      assert.ok(halves.every((half) => contains(network, half)));
    }),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------------------
// Error messages: they name the part that is wrong
// ---------------------------------------------------------------------------

Deno.test("ip_addresses: IPv4 errors name the octet and what is wrong with it", () => {
  const cases: [string, RegExp][] = [
    ["192.168.1.300", /^"192\.168\.1\.300": octet 4 \(300\) is over 255$/],
    ["192.168.01.1", /octet 3 \("01"\) has a leading zero.*write 1$/],
    ["10.1.2", /expected 4 octets separated by "\.", found 3/],
    ["1..2.3", /octet 2 is empty/],
    ["1.2.x.4", /octet 3 \("x"\) is not a decimal number/],
    ["1.2.3.0004", /octet 4 \("0004"\) has more than 3 digits/],
    ["1.2.3.١", /octet 4 \("١"\) is not a decimal number/],
    ["", /^"": empty/],
    ["10.0.0.0/8", /a "\/" belongs in a network/],
    ["10.0.0.1%eth0", /a zone .* only allowed on IPv6/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseAddress(text), (error: Error) => {
      assert.ok(error instanceof SyntaxError);
      assert.match(error.message, message);
      return true;
    }, text);
  }
});

Deno.test("ip_addresses: IPv6 errors name the group, the colons, the IPv4 part or the zone", () => {
  const cases: [string, RegExp][] = [
    ["2001:db8::1::2", /"::" may appear only once/],
    ["2001:db8::12345", /group 8 \("12345"\) has more than 4 hex digits/],
    ["2001:xyz::1", /group 2 \("xyz"\) is not hexadecimal/],
    ["1:2:3:4:5:6:7", /expected 8 groups \(or "::"\), found 7/],
    ["1:2:3:4:5:6:7:8:9:0", /too many colons \(9\)/],
    [
      "1::2:3:4:5:6:7:8",
      /"::" must stand for at least one group of zeros, but 8 groups are written/,
    ],
    [":1:2:3:4:5:6:7", /starts with a single ":"/],
    ["1:2:3:4:5:6:7:", /ends with a single ":"/],
    ["::ffff:1.2.3.256", /its IPv4 part "1\.2\.3\.256": octet 4 \(256\) is over 255/],
    ["fe80::1%", /the zone after "%" is empty/],
    ["fe80::1%a%b", /only one "%"/],
    ["1:2", /at least two colons, found 1/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseIPv6(text), (error: Error) => {
      assert.ok(error instanceof SyntaxError);
      assert.ok(error.message.startsWith(JSON.stringify(text) + ": "), error.message);
      assert.match(error.message, message);
      return true;
    }, text);
  }
});

Deno.test("ip_addresses: network errors name the address, the prefix, the mask or the host bits", () => {
  const cases: [string, RegExp][] = [
    ["10.0.0.0/33", /prefix length 33 is over 32/],
    ["2001:db8::/129", /prefix length 129 is over 128/],
    ["10.0.0.0/", /the prefix length after "\/" is empty/],
    ["10.0.0.0/8/8", /only one "\/" may appear, found 2/],
    ["10.0.0.0/255.0.255.0", /mask 255\.0\.255\.0 is neither a netmask .* nor a hostmask/],
    ["10.0.0.0/x", /prefix length \(0-32\) or a netmask .* "x" is neither/],
    ["2001:db8::/ffff::", /prefix length "ffff::" is not a number 0-128/],
    [
      "10.0.0.300/8",
      /^"10\.0\.0\.300\/8": its address "10\.0\.0\.300": octet 4 \(300\) is over 255$/,
    ],
    ["192.168.1.77/24", /host bits are set \(0\.0\.0\.77\); the network is 192\.168\.1\.0\/24/],
  ];
  for (const [text, message] of cases) {
    assert.throws(() => parseNetwork(text), (error: Error) => {
      assert.ok(error instanceof SyntaxError);
      assert.match(error.message, message);
      return true;
    }, text);
  }
});

// ---------------------------------------------------------------------------
// Units: the parts a reader meets first
// ---------------------------------------------------------------------------

Deno.test("ip_addresses: RFC 5952 picks the longest zero run, the first on a tie, never one group", () => {
  const canonical = (text: string) => formatAddress(parseIPv6(text));
  assert.equal(canonical("2001:db8:0:0:1:0:0:1"), "2001:db8::1:0:0:1");
  assert.equal(canonical("2001:0:0:1:0:0:0:1"), "2001:0:0:1::1");
  assert.equal(canonical("2001:db8:0:1:1:1:1:1"), "2001:db8:0:1:1:1:1:1");
  assert.equal(canonical("0:0:0:0:0:0:0:0"), "::");
  assert.equal(canonical("1:0:0:0:0:0:0:0"), "1::");
  assert.equal(canonical("2001:DB8::A"), "2001:db8::a");
  assert.equal(
    formatAddress(parseIPv6("64:ff9b::c000:201"), { mixed: true }),
    "64:ff9b::192.0.2.1",
  );
});

Deno.test("ip_addresses: the most specific registry block decides", () => {
  assert.equal(specialBlock(parseAddress("192.0.0.9"))?.block, "192.0.0.9/32");
  assert.equal(classify(parseAddress("192.0.0.9")).global, true);
  assert.equal(classify(parseAddress("192.0.0.8")).private, true);
  const shared = classify(parseAddress("100.64.0.1"));
  assert.deepEqual([shared.private, shared.global], [false, false]);
  assert.equal(classify(parseAddress("3fff::1")).global, true, "newer than Python 3.11's table");
  assert.equal(specialBlock(parseAddress("3fff::1"))?.globallyReachable, false);
});

Deno.test("ip_addresses: hosts() follows RFC 3021 (/31) and the IPv6 Subnet-Router anycast rule", () => {
  const list = (text: string) => [...hosts(parseNetwork(text))].map((a) => formatAddress(a));
  assert.deepEqual(list("10.0.0.0/31"), ["10.0.0.0", "10.0.0.1"]);
  assert.deepEqual(list("10.0.0.7/32"), ["10.0.0.7"]);
  assert.deepEqual(list("2001:db8::/126"), ["2001:db8::1", "2001:db8::2", "2001:db8::3"]);
  assert.deepEqual(list("2001:db8::/127"), ["2001:db8::", "2001:db8::1"]);
});

Deno.test("ip_addresses: subnets() and supernet() refuse prefix lengths out of range", () => {
  const lan = parseNetwork("10.0.0.0/24");
  assert.throws(() => [...subnets(lan, 23)], RangeError);
  assert.throws(() => [...subnets(lan, 33)], RangeError);
  assert.throws(() => supernet(lan, 25), RangeError);
  assert.equal(formatNetwork(supernet(lan)), "10.0.0.0/23");
  assert.equal(formatNetwork(supernet(parseNetwork("::/0"))), "::/0");
  assert.throws(() => ipv4(2 ** 32), RangeError);
  assert.throws(() => ipv6(-1n), RangeError);
  assert.throws(() => ipv6(1n, "a%b"), RangeError);
});

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const NO_PERMISSIONS = { flags: [] };

Deno.test("ip_addresses: the demo shows this machine, parsing, refusals, classes and CIDR", async () => {
  const { code, stdout, stderr } = await runScript("ip_addresses");
  assert.equal(code, 0, stderr);
  assert.match(stdout, /hostname: \S+/);
  assert.match(stdout, /lo\s+127\.0\.0\.1\/8\s+private, loopback/);
  assert.match(stdout, /2001:0DB8:0000:0000:0000:0000:0000:0001\s+-> 2001:db8::1 /);
  assert.match(stdout, /"192\.168\.1\.300": octet 4 \(300\) is over 255/);
  assert.match(stdout, /100\.64\.1\.1\s+neither private nor global/);
  assert.match(stdout, /broadcast\s+192\.168\.1\.127/);
});

Deno.test("ip_addresses: info, net and contains need no permission at all", async () => {
  const info = await runScript(
    "ip_addresses",
    ["info", "::FFFF:192.0.2.1", "10.0.0.1"],
    NO_PERMISSIONS,
  );
  assert.equal(info.code, 0, info.stderr);
  assert.match(info.stdout, /canonical\s+::ffff:c000:201/);
  assert.match(info.stdout, /IPv4-mapped\s+192\.0\.2\.1/);
  assert.match(info.stdout, /block\s+10\.0\.0\.0\/8 Private-Use, RFC 1918/);

  const net = await runScript(
    "ip_addresses",
    ["net", "10.1.2.3/22", "--loose", "--subnets", "24", "--supernet", "16"],
    NO_PERMISSIONS,
  );
  assert.equal(net.code, 0, net.stderr);
  assert.match(net.stdout, /^network\s+10\.1\.0\.0\/22$/m);
  assert.match(net.stdout, /^broadcast\s+10\.1\.3\.255$/m);
  assert.match(net.stdout, /^hosts\s+10\.1\.0\.1 - 10\.1\.3\.254 \(1022\)$/m);
  assert.match(
    net.stdout,
    /^subnets\s+10\.1\.0\.0\/24, 10\.1\.1\.0\/24, 10\.1\.2\.0\/24, 10\.1\.3\.0\/24$/m,
  );
  assert.match(net.stdout, /^supernet\s+10\.1\.0\.0\/16$/m);

  const inside = await runScript(
    "ip_addresses",
    ["contains", "2001:db8::/32", "2001:db8:1::1", "2001:db9::1", "10.0.0.1"],
    NO_PERMISSIONS,
  );
  assert.equal(inside.code, 0, inside.stderr);
  assert.equal(
    inside.stdout,
    "2001:db8:1::1 is in 2001:db8::/32\n2001:db9::1 is not in 2001:db8::/32\n" +
      "10.0.0.1 is not in 2001:db8::/32\n",
  );
});

Deno.test("ip_addresses: --json prints one object per line", async () => {
  const info = await runScript("ip_addresses", ["info", "--json", "fe80::1%eth0", "8.8.8.8"]);
  const [first, second] = info.stdout.trim().split("\n").map((line) => JSON.parse(line));
  assert.deepEqual([first.compressed, first.zone, first.linkLocal], ["fe80::1%eth0", "eth0", true]);
  assert.deepEqual([second.global, second.block], [true, null]);
  const net = await runScript("ip_addresses", [
    "net",
    "--json",
    "2001:db8::/126",
    "--subnets",
    "127",
  ]);
  assert.deepEqual(JSON.parse(net.stdout), {
    input: "2001:db8::/126",
    ...describeNetwork(parseNetwork("2001:db8::/126")),
    subnets: ["2001:db8::/127", "2001:db8::2/127"],
    subnetCount: "2",
  });
});

Deno.test("ip_addresses: bad input is one error line that says which part is wrong, exit 1", async () => {
  const cases: [string[], string][] = [
    [["info", "192.168.1.300"], 'error: "192.168.1.300": octet 4 (300) is over 255'],
    [["info", "::1", "1::2::3"], 'error: "1::2::3": "::" may appear only once'],
    [
      ["net", "192.168.1.77/24"],
      'error: "192.168.1.77/24": host bits are set (0.0.0.77); ' +
      "the network is 192.168.1.0/24; pass --loose to accept host bits",
    ],
    [["contains", "10.0.0.0/8", "10.0.0.256"], 'error: "10.0.0.256": octet 4 (256) is over 255'],
  ];
  for (const [args, line] of cases) {
    const { code, stdout, stderr } = await runScript("ip_addresses", args, NO_PERMISSIONS);
    assert.equal(code, 1, args.join(" "));
    assert.equal(stdout, "");
    assert.equal(stderr.trim().split("\n").length, 1, stderr);
    assert.ok(stderr.startsWith(line), `${stderr} should start with ${line}`);
  }
});

Deno.test("ip_addresses: a missing argument or a bad flag value is a usage error, exit 2", async () => {
  for (
    const args of [["info"], ["net"], ["contains", "10.0.0.0/8"], ["frobnicate"], [
      "net",
      "10.0.0.0/8",
      "--subnets",
      "4",
    ]]
  ) {
    const { code, stderr } = await runScript("ip_addresses", args, NO_PERMISSIONS);
    assert.equal(code, 2, args.join(" "));
    assert.match(stderr, /^error: .*\(see --help\)\n$/);
  }
});

Deno.test("ip_addresses: `local` needs --allow-sys=hostname,networkInterfaces and says so", async () => {
  const denied = await runScript("ip_addresses", ["local"], NO_PERMISSIONS);
  assert.equal(denied.code, 1);
  assert.match(
    denied.stderr,
    /^error: missing permission: .*--allow-sys=hostname,networkInterfaces/,
  );
  assert.equal(denied.stderr.trim().split("\n").length, 1);
  const allowed = await runScript("ip_addresses", ["local", "--json"]);
  assert.equal(allowed.code, 0, allowed.stderr);
  const { hostname, addresses } = JSON.parse(allowed.stdout);
  assert.equal(typeof hostname, "string");
  assert.ok(addresses.some((a: { address: string; loopback: boolean }) => a.loopback));
});

Deno.test("ip_addresses.ts net --limit N lists N subnets, then the count", async () => {
  for (
    const [limit, listed] of [[3, "10.0.0.0/28, 10.0.0.16/28, 10.0.0.32/28"], [1, "10.0.0.0/28"]]
  ) {
    const result = await runScript("ip_addresses", [
      ...["net", "10.0.0.0/24", "--subnets", "28", "--limit", String(limit)],
    ]);
    assert.equal(result.code, 0, result.stderr);
    const line = result.stdout.split("\n").find((l) => l.startsWith("subnets"));
    assert.equal(line, `subnets     ${listed}, ... (16 in all)`, `--limit ${limit}`);
  }
});
