// scripts/dns_lookup.ts: the wire format (units, and fast-check properties
// that encoding and decoding undo each other), the authority's answers, the
// client's retries and TCP fallback, a server fed malformed packets, the
// command line, and interop with peers no one here wrote: dig against our
// server, and our client next to dig against dnsmasq. Deno.resolveDns is a
// third peer, built into Deno.
//
// Run with --unstable-net (deno task test passes it). Every server is on
// loopback; no test ever asks a real resolver (Deno.resolveDns always gets a
// loopback nameServer). No test asserts how long anything took.

import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  answerQuery,
  buildQuery,
  canonicalHost,
  canonicalName,
  decodeMessage,
  DEMO_ZONE,
  DnsFormatError,
  type DnsMessage,
  type DnsRecord,
  type DnsServerOptions,
  dumpMessage,
  encodeMessage,
  formatData,
  formatIPv6,
  formatRecord,
  fullRcode,
  handleDnsMessage,
  isInZone,
  labelsToName,
  listenDns,
  listenUdp,
  lookupWithDeno,
  mismatch,
  nameToLabels,
  parseIPv6,
  parseType,
  queryDns,
  type Question,
  RCODES,
  readTcpMessage,
  serveDns,
  tcpFrame,
  txtData,
  TYPES,
  type Zone,
} from "../scripts/dns_lookup.ts";
import { RetryError } from "../lib/retry_error.ts";
import { PEERS, peerTest, run, runScript, startServer, within } from "./_helpers.ts";

const bytes = (...values: number[]) => new Uint8Array(values);

// A header: ID, flags, then the four counts.
function header(id: number, flags: number, counts: [number, number, number, number]): number[] {
  return [
    id >> 8,
    id & 0xff,
    flags >> 8,
    flags & 0xff,
    ...counts.flatMap((c) => [c >> 8, c & 0xff]),
  ];
}

// A server in this process on a free loopback port, its log, and a stop.
function startDns(options: DnsServerOptions = {}, hostname = "127.0.0.1") {
  const sockets = listenDns(hostname, 0);
  const lines: string[] = [];
  const controller = new AbortController();
  const done = serveDns(sockets, {
    ...options,
    log: (line) => lines.push(line),
    signal: controller.signal,
  });
  return {
    port: sockets.addr.port,
    addr: sockets.udp.addr as Deno.NetAddr,
    lines,
    stop: () => {
      controller.abort();
      return done;
    },
  };
}

function aQuery(name: string, type: Question["type"] = "A", udpPayloadSize?: number) {
  return buildQuery(name, type, { id: 0x1234, udpPayloadSize });
}

// ---------------------------------------------------------------------------
// Names
// ---------------------------------------------------------------------------

Deno.test("nameToLabels() reads escapes, and labelsToName() writes them back", () => {
  assert.deepEqual(nameToLabels("www.wirebook.test"), nameToLabels("www.wirebook.test."));
  assert.deepEqual(nameToLabels("."), []);
  assert.deepEqual(nameToLabels("a\\.b.c."), [bytes(0x61, 0x2e, 0x62), bytes(0x63)]);
  assert.deepEqual(nameToLabels("\\065b\\\\."), [bytes(0x41, 0x62, 0x5c)]);
  assert.equal(labelsToName([bytes(0x61, 0x20, 0x2e, 0x00)]), "a\\032\\.\\000.");
  assert.equal(labelsToName([]), ".");
  assert.equal(canonicalName("WWW.WireBook.Test"), "www.wirebook.test.");
});

Deno.test("labelsToName() escapes what means something in a zone file, as dig does", () => {
  // RFC 1035 §5.1: ; starts a comment, ( ) group lines, " quotes, @ is the
  // origin, $ starts a directive. dig prints these inside a label escaped.
  const label = new TextEncoder().encode('a;b(c)@$"d e');
  const text = 'a\\;b\\(c\\)\\@\\$\\"d\\032e.test.';
  assert.equal(labelsToName([label, bytes(0x74, 0x65, 0x73, 0x74)]), text);
  assert.deepEqual(nameToLabels(text), [label, bytes(0x74, 0x65, 0x73, 0x74)]);
});

Deno.test("nameToLabels() refuses an empty label, a 64-byte label and a 256-byte name", () => {
  assert.throws(() => nameToLabels("a..b"), RangeError);
  assert.throws(() => nameToLabels("a".repeat(64) + ".test"), /63/);
  const long = Array.from({ length: 4 }, () => "a".repeat(63)).join("."); // 4 * 64 + 1 = 257
  assert.throws(() => nameToLabels(long), /255/);
  assert.doesNotThrow(() =>
    nameToLabels(Array(3).fill("a".repeat(63)).join(".") + ".b".repeat(31))
  );
  assert.throws(() => nameToLabels("bad\\9"), RangeError);
});

Deno.test("isInZone() compares labels, without regard to ASCII case", () => {
  assert.ok(isInZone("WWW.wirebook.TEST.", "wirebook.test"));
  assert.ok(isInZone("wirebook.test", "wirebook.test."));
  assert.ok(!isInZone("notwirebook.test", "wirebook.test"));
  assert.ok(!isInZone("test.", "wirebook.test."));
  assert.ok(!isInZone("a\\.wirebook.test", "wirebook.test")); // one label "a.wirebook", then "test"
});

Deno.test("property: labels -> name text -> labels is the identity", () => {
  const label = fc.uint8Array({ minLength: 1, maxLength: 63 });
  fc.assert(
    fc.property(
      fc.array(label, { maxLength: 6 }).filter((labels) =>
        labels.reduce((sum, l) => sum + l.length + 1, 1) <= 255
      ),
      (labels) => {
        assert.deepEqual(nameToLabels(labelsToName(labels)), labels);
      },
    ),
    { numRuns: 500 },
  );
});

Deno.test("property: a name's wire form decodes and encodes back to the same bytes", () => {
  const label = fc.uint8Array({ minLength: 1, maxLength: 63 });
  fc.assert(
    fc.property(
      fc.array(label, { maxLength: 6 }).filter((labels) =>
        labels.reduce((sum, l) => sum + l.length + 1, 1) <= 255
      ),
      (labels) => {
        const wire = bytes(
          ...header(7, 0x0100, [1, 0, 0, 0]),
          ...labels.flatMap((l) => [l.length, ...l]),
          0,
          0,
          1,
          0,
          1,
        );
        assert.deepEqual(encodeMessage(decodeMessage(wire)), wire);
      },
    ),
    { numRuns: 500 },
  );
});

// ---------------------------------------------------------------------------
// Decoding hostile bytes
// ---------------------------------------------------------------------------

// A query for `name`'s A records whose question starts with `nameBytes`.
function questionWith(
  nameBytes: number[],
  counts: [number, number, number, number] = [1, 0, 0, 0],
) {
  return bytes(...header(0xabcd, 0x0100, counts), ...nameBytes, 0, 1, 0, 1);
}

Deno.test("decodeMessage() rejects a pointer to itself, a forward pointer and a two-pointer loop", () => {
  assert.throws(() => decodeMessage(questionWith([0xc0, 12])), /points to 12, not back before 12/);
  assert.throws(() => decodeMessage(questionWith([0xc0, 20])), /points to 20/);
  // 12: a 1-byte label; 14: a pointer to 13; 13: a 4-byte label; 18: a
  // pointer to 12; and round again. Each pointer points back from where it
  // sits, yet together they loop: only "back before the name began" stops it.
  const loop = questionWith([0x01, 0x04, 0xc0, 0x0d, 0x61, 0x61, 0xc0, 0x0c]);
  assert.throws(() => decodeMessage(loop), /at offset 14 points to 13, not back before 12/);
});

Deno.test("decodeMessage() stops a long chain of pointers at the hop limit", () => {
  // Answer 1 is owned by the root (offset 12) and its RDATA, of a type no
  // one decodes, holds 200 pointers: the first to offset 12, each other to
  // the one before it. Answer 2's owner points at the last of them. Every
  // pointer points back, so only the hop limit stops the 201 jumps.
  const base = 12 + 1 + 2 + 2 + 4 + 2;
  const chain: number[] = [];
  for (let i = 0; i < 200; i++) {
    const target = i === 0 ? 12 : base + 2 * (i - 1);
    chain.push(0xc0 | (target >> 8), target & 0xff);
  }
  const last = base + 2 * 199;
  const record = (owner: number[], rdata: number[]) => [
    ...owner,
    0,
    99,
    0,
    1,
    0,
    0,
    0,
    0,
    rdata.length >> 8,
    rdata.length & 0xff,
    ...rdata,
  ];
  const message = bytes(
    ...header(1, 0x8000, [0, 2, 0, 0]),
    ...record([0], chain),
    ...record([0xc0 | (last >> 8), last & 0xff], []),
  );
  assert.throws(() => decodeMessage(message), /more than 127 compression pointers/);
  // With only 100 pointers in the chain, the same name decodes: the root.
  const short = chain.slice(0, 200);
  const shortLast = base + 2 * 99;
  const fine = bytes(
    ...header(1, 0x8000, [0, 2, 0, 0]),
    ...record([0], short),
    ...record([0xc0 | (shortLast >> 8), shortLast & 0xff], []),
  );
  assert.equal(decodeMessage(fine).answers[1].name, ".");
});

Deno.test("decodeMessage() refuses a name over 255 bytes, even one built from pointers", () => {
  const label63 = [63, ...new Array(63).fill(0x61)];
  // Question 1: three 63-byte labels (193 bytes). Question 2: one more
  // 63-byte label, then a pointer to question 1: 257 bytes in all.
  const packet = bytes(
    ...header(1, 0, [2, 0, 0, 0]),
    ...label63,
    ...label63,
    ...label63,
    0,
    0,
    1,
    0,
    1,
    ...label63,
    0xc0,
    12,
    0,
    1,
    0,
    1,
  );
  assert.throws(() => decodeMessage(packet), /longer than 255 bytes/);
});

Deno.test("decodeMessage() refuses counts larger than the packet, before reading any of it", () => {
  const query = encodeMessage(aQuery("www.wirebook.test"));
  const inflated = query.slice();
  inflated[6] = 0xff; // ANCOUNT = 65280
  assert.throws(() => decodeMessage(inflated), /promises 1 question\(s\) and 65281 record\(s\)/);
  const twoQuestions = query.slice();
  twoQuestions[5] = 2;
  assert.throws(() => decodeMessage(twoQuestions), DnsFormatError);
});

Deno.test("decodeMessage() refuses a short header, a cut-off message and bytes after the last record", () => {
  const query = encodeMessage(aQuery("www.wirebook.test"));
  assert.throws(() => decodeMessage(query.slice(0, 11)), /12-byte header; got 11/);
  for (let cut = 12; cut < query.length; cut++) {
    assert.throws(() => decodeMessage(query.slice(0, cut)), DnsFormatError, `cut at ${cut}`);
  }
  assert.throws(() => decodeMessage(bytes(...query, 0)), /1 bytes follow the last record/);
});

Deno.test("decodeMessage() refuses bad RDATA: wrong length, a TXT string past it, two OPTs, extended labels", () => {
  const record = (type: number, rdata: number[], rdlength = rdata.length) =>
    bytes(
      ...header(1, 0x8000, [0, 1, 0, 0]),
      0,
      type >> 8,
      type & 0xff,
      0,
      1,
      0,
      0,
      0,
      60,
      rdlength >> 8,
      rdlength & 0xff,
      ...rdata,
    );
  assert.equal(
    (decodeMessage(record(1, [192, 0, 2, 1])).answers[0] as DnsRecord).data,
    "192.0.2.1",
  );
  assert.throws(() => decodeMessage(record(1, [192, 0, 2])), /A data is 4 bytes, RDLENGTH says 3/);
  assert.throws(() => decodeMessage(record(16, [5, 0x61])), /TXT string runs past RDLENGTH/);
  assert.throws(() => decodeMessage(record(5, [0], 5)), DnsFormatError); // RDLENGTH past the end
  assert.throws(() => decodeMessage(record(5, [0, 0], 2)), /RDLENGTH says 2/); // name ends early
  const opt = [0, 0, 41, 4, 0xd0, 0, 0, 0, 0, 0, 0];
  assert.throws(
    () => decodeMessage(bytes(...header(1, 0, [0, 0, 0, 2]), ...opt, ...opt)),
    /more than one OPT/,
  );
  assert.throws(
    () => decodeMessage(bytes(...header(1, 0, [0, 1, 0, 0]), ...opt)),
    /OPT record in the answer/,
  );
  assert.throws(() => decodeMessage(questionWith([0x41, 0x61])), /unknown label type 0x41/);
});

Deno.test("property: decodeMessage() on any bytes returns a message or throws DnsFormatError, nothing else", () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 300 }), (input) => {
      try {
        decodeMessage(input);
      } catch (error) {
        assert.ok(error instanceof DnsFormatError, String(error));
      }
    }),
    { numRuns: 3000 },
  );
});

// ---------------------------------------------------------------------------
// Encoding, and the round trip
// ---------------------------------------------------------------------------

Deno.test("encodeMessage() compresses repeated names into pointers", () => {
  const response = answerQuery(DEMO_ZONE, aQuery("wirebook.test", "MX"));
  const wire = encodeMessage(response);
  // The question's name sits at offset 12; both answers' owners point there.
  assert.deepEqual([...wire.slice(31, 33)], [0xc0, 12]);
  const dump = dumpMessage(wire);
  assert.match(dump, /pointer to offset 12 \(0x000c\): wirebook\.test\./);
  assert.match(dump, /label "mail" \(4 bytes\)/);
  assert.deepEqual(decodeMessage(wire), response);
});

Deno.test("encodeMessage() refuses values that do not fit their fields", () => {
  const base = aQuery("x.test");
  const withAnswer = (record: DnsRecord) => ({ ...base, answers: [record] });
  assert.throws(() => encodeMessage({ ...base, id: 70000 }), RangeError);
  assert.throws(
    () => encodeMessage(withAnswer({ name: "x.", ttl: 1, type: "A", data: "1.2.3" })),
    /IPv4/,
  );
  assert.throws(
    () => encodeMessage(withAnswer({ name: "x.", ttl: 1, type: "A", data: "1.2.3.256" })),
    /IPv4/,
  );
  assert.throws(
    () => encodeMessage(withAnswer({ name: "x.", ttl: 1, type: "AAAA", data: "1::2::3" })),
    /IPv6/,
  );
  assert.throws(
    () =>
      encodeMessage(
        withAnswer({ name: "x.", ttl: 1, type: "TXT", data: txtData("a".repeat(256)) }),
      ),
    /TXT string of 256 bytes/,
  );
  assert.throws(
    () => encodeMessage(withAnswer({ name: "x.", ttl: -1, type: "A", data: "1.2.3.4" })),
    RangeError,
  );
  assert.throws(
    () => encodeMessage({ ...base, flags: { ...base.flags, rcode: 16 } }),
    /larger codes go in EDNS/,
  );
});

Deno.test("formatIPv6() writes RFC 5952's form, and parseIPv6() reads it back", () => {
  const cases: [string, string][] = [
    ["2001:db8::1", "2001:db8::1"],
    ["2001:0db8:0000:0000:0000:0000:0000:0001", "2001:db8::1"],
    ["::", "::"],
    ["::1", "::1"],
    ["1::", "1::"],
    ["2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"], // the first of two equal runs
    ["2001:db8:0:1:1:1:1:1", "2001:db8:0:1:1:1:1:1"], // one zero group stays
    // RFC 5952 §5: an IPv4 address behind one of RFC 4291's prefixes is
    // written as a dotted quad, exactly where dig writes one.
    ["::ffff:c000:201", "::ffff:192.0.2.1"], // IPv4-mapped
    ["::ffff:0:0", "::ffff:0.0.0.0"],
    ["::c000:201", "::192.0.2.1"], // IPv4-compatible (deprecated)
    ["::2", "::2"], // ...but not the loopback or a small number
    ["64:ff9b::c000:201", "64:ff9b::c000:201"], // NAT64: dig writes hex
    ["::ffff:0:c000:201", "::ffff:0:c000:201"],
    ["2001:db8::ffff:c000:201", "2001:db8::ffff:c000:201"],
  ];
  for (const [input, expected] of cases) {
    assert.equal(formatIPv6(parseIPv6(input)), expected, input);
  }
  for (
    const bad of [
      "1:2:3:4:5:6:7",
      "1:2:3:4:5:6:7:8:9",
      "1::2::3",
      "12345::",
      "g::",
      ":1:2:3:4:5:6:7",
      // RFC 4291 §2.2: a dotted quad only as the last 32 bits.
      "1.2.3.4::",
      "1.2.3.4::5",
      "::1.2.3.4:5",
      "::1.2.3.04",
      "fe80::1%eth0", // a zone names a link, and has no place in a record
    ]
  ) {
    assert.throws(() => parseIPv6(bad), RangeError, bad);
  }
  fc.assert(
    fc.property(fc.uint8Array({ minLength: 16, maxLength: 16 }), (address) => {
      assert.deepEqual(parseIPv6(formatIPv6(address)), address);
    }),
  );
});

// Arbitrary messages: names drawn from a small pool, so that compression has
// repeats to find, in several cases, so that case must survive it.
const labelArb = fc.uint8Array({ minLength: 1, maxLength: 63 });
const nameArb = fc.array(labelArb, { maxLength: 5 })
  .filter((labels) => labels.reduce((sum, l) => sum + l.length + 1, 1) <= 255)
  .map(labelsToName);
const u16 = fc.integer({ min: 0, max: 0xffff });
const u32 = fc.integer({ min: 0, max: 0xffff_ffff });
const known = new Set(Object.values(TYPES) as number[]);
const unknownType = u16.filter((code) => !known.has(code));
const classArb = fc.option(u16.filter((c) => c !== 1), { nil: undefined });
// TXT strings are bytes (RFC 1035 §3.3), UTF-8 or not.
const txtString = fc.uint8Array({ maxLength: 40 });

function messageArb(names: string[]) {
  const name = fc.constantFrom(...names);
  const withClass = <T extends object>(record: T, cls: number | undefined) =>
    cls === undefined ? record : { ...record, class: cls };
  const record: fc.Arbitrary<DnsRecord> = fc.tuple(
    name,
    u32,
    classArb,
    fc.oneof(
      fc.tuple(u16, u16, u16, u16).map(([a, b, c, d]) => ({
        type: "A" as const,
        data: [a & 0xff, b & 0xff, c & 0xff, d & 0xff].join("."),
      })),
      fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => ({
        type: "AAAA" as const,
        data: formatIPv6(a),
      })),
      fc.tuple(fc.constantFrom("NS" as const, "CNAME" as const), name).map(([type, data]) => ({
        type,
        data,
      })),
      fc.tuple(u16, name).map(([preference, exchange]) => ({
        type: "MX" as const,
        data: { preference, exchange },
      })),
      fc.array(txtString, { maxLength: 4 }).map((data) => ({ type: "TXT" as const, data })),
      fc.tuple(name, name, u32, u32, u32, u32, u32).map(
        ([mname, rname, serial, refresh, retry, expire, minimum]) => ({
          type: "SOA" as const,
          data: { mname, rname, serial, refresh, retry, expire, minimum },
        }),
      ),
      fc.tuple(unknownType, fc.uint8Array({ maxLength: 40 })).map(([type, data]) => ({
        type,
        data,
      })),
    ),
  ).map(([owner, ttl, cls, rest]) => withClass({ name: owner, ttl, ...rest }, cls) as DnsRecord);

  const question: fc.Arbitrary<Question> = fc.tuple(
    name,
    fc.oneof(
      fc.constantFrom(...Object.keys(TYPES) as (keyof typeof TYPES)[]),
      unknownType,
    ),
    classArb,
  ).map(([qname, type, cls]) => withClass({ name: qname, type }, cls));

  const edns = fc.option(
    fc.record({
      udpPayloadSize: u16,
      extendedRcode: fc.integer({ min: 0, max: 255 }),
      version: fc.integer({ min: 0, max: 255 }),
      dnssecOk: fc.boolean(),
      options: fc.array(fc.record({ code: u16, data: fc.uint8Array({ maxLength: 20 }) }), {
        maxLength: 3,
      }),
    }),
    { nil: undefined },
  );

  return fc.record({
    id: u16,
    flags: fc.record({
      qr: fc.boolean(),
      opcode: fc.integer({ min: 0, max: 15 }),
      aa: fc.boolean(),
      tc: fc.boolean(),
      rd: fc.boolean(),
      ra: fc.boolean(),
      ad: fc.boolean(),
      cd: fc.boolean(),
      rcode: fc.integer({ min: 0, max: 15 }),
    }),
    questions: fc.array(question, { maxLength: 3 }),
    answers: fc.array(record, { maxLength: 5 }),
    authorities: fc.array(record, { maxLength: 3 }),
    additionals: fc.array(record, { maxLength: 3 }),
    edns,
    // (structuredClone: fast-check's records have no prototype; decoded ones do.)
  }).map(({ edns, ...message }) =>
    structuredClone(edns ? { ...message, edns } : message) as DnsMessage
  );
}

// A pool of 1 to 4 names, some sharing suffixes, some differing only in case.
const namePool = fc.array(nameArb, { minLength: 1, maxLength: 4 }).map((names) => [
  ...names,
  ...names.map((name) => name === "." ? "." : `sub.${name}`),
  ...names.map((name) => name.toUpperCase()),
]);
const anyMessage = namePool.chain(messageArb);

Deno.test("property: decodeMessage(encodeMessage(m)) is m, for any message", () => {
  fc.assert(
    fc.property(anyMessage, (message) => {
      assert.deepEqual(decodeMessage(encodeMessage(message)), message);
    }),
    { numRuns: 500 },
  );
});

Deno.test("property: encodeMessage(decodeMessage(bytes)) is the same bytes", () => {
  fc.assert(
    fc.property(anyMessage, (message) => {
      const wire = encodeMessage(message);
      assert.deepEqual(encodeMessage(decodeMessage(wire)), wire);
    }),
    { numRuns: 500 },
  );
});

Deno.test("TXT strings are bytes: not UTF-8 survives the round trip, printed as dig prints it", () => {
  const rdata = [3, 0xff, 0xfe, 0x41, 2, 0x22, 0x5c, 3, 0xef, 0xbb, 0xbf];
  const wire = bytes(
    ...header(1, 0x8400, [0, 1, 0, 0]),
    ...[0, 0, 16, 0, 1, 0, 0, 0, 60, 0, rdata.length],
    ...rdata,
  );
  const [record] = decodeMessage(wire).answers;
  assert.deepEqual(record.data, [
    bytes(0xff, 0xfe, 0x41),
    bytes(0x22, 0x5c),
    bytes(0xef, 0xbb, 0xbf),
  ]);
  assert.equal(formatData(record), '"\\255\\254A" "\\"\\\\" "\\239\\187\\191"');
  assert.deepEqual(encodeMessage(decodeMessage(wire)), wire);
  assert.match(dumpMessage(wire), /string of 3 bytes: "\\255\\254A"/);
});

Deno.test("formatRecord() and formatData() print what dig prints", () => {
  const soa = DEMO_ZONE.records[0];
  assert.equal(
    formatRecord(soa),
    "wirebook.test.\t3600\tIN\tSOA\tns1.wirebook.test. hostmaster.wirebook.test. " +
      "2025010101 7200 3600 1209600 300",
  );
  assert.equal(
    formatData({ name: "t.", ttl: 1, type: "TXT", data: txtData('say "hi"', "a\\b", "é") }),
    '"say \\"hi\\"" "a\\\\b" "\\195\\169"',
  );
  assert.equal(formatData({ name: "t.", ttl: 1, type: 99, data: bytes(1, 0xab) }), "\\# 2 01ab");
  assert.equal(parseType("mx"), "MX");
  assert.equal(parseType("TYPE28"), "AAAA");
  assert.equal(parseType("65"), 65);
  assert.throws(() => parseType("OPT"));
});

// ---------------------------------------------------------------------------
// The authority's answers
// ---------------------------------------------------------------------------

Deno.test("answerQuery() follows a CNAME chain inside the zone and is authoritative", () => {
  const response = answerQuery(DEMO_ZONE, aQuery("WWW.wirebook.test"));
  assert.equal(response.flags.aa, true);
  assert.equal(response.flags.qr, true);
  assert.equal(response.id, 0x1234);
  assert.deepEqual(response.questions, [{ name: "WWW.wirebook.test.", type: "A" }]);
  assert.deepEqual(response.answers.map(formatData), [
    "web.wirebook.test.",
    "host.wirebook.test.",
    "192.0.2.10",
    "192.0.2.11",
  ]);
  // Asked for the CNAME itself: only the CNAME.
  const cname = answerQuery(DEMO_ZONE, aQuery("www.wirebook.test", "CNAME"));
  assert.deepEqual(cname.answers.map(formatData), ["web.wirebook.test."]);
  // A CNAME out of the zone: the alias only; the resolver goes on elsewhere.
  const out = answerQuery(DEMO_ZONE, aQuery("elsewhere.wirebook.test"));
  assert.deepEqual(out.answers.map(formatData), ["www.example.net."]);
  assert.equal(out.flags.rcode, RCODES.NOERROR);
});

Deno.test("answerQuery(): NXDOMAIN and no-data carry the SOA, with RFC 2308's TTL", () => {
  const nx = answerQuery(DEMO_ZONE, aQuery("nope.wirebook.test"));
  assert.equal(nx.flags.rcode, RCODES.NXDOMAIN);
  assert.equal(nx.flags.aa, true);
  assert.deepEqual(nx.answers, []);
  assert.equal(nx.authorities.length, 1);
  assert.equal(nx.authorities[0].type, "SOA");
  assert.equal(nx.authorities[0].ttl, 300); // min(3600, MINIMUM 300)

  const noData = answerQuery(DEMO_ZONE, aQuery("host.wirebook.test", "MX"));
  assert.equal(noData.flags.rcode, RCODES.NOERROR);
  assert.deepEqual(noData.answers, []);
  assert.equal(noData.authorities[0].type, "SOA");

  // An empty non-terminal: a name with no records but names beneath it.
  const zone = {
    origin: "z.test.",
    records: [DEMO_ZONE.records[0], {
      name: "a.b.z.test.",
      type: "A",
      ttl: 1,
      data: "192.0.2.1",
    }] as DnsRecord[],
  };
  assert.equal(answerQuery(zone, aQuery("b.z.test")).flags.rcode, RCODES.NOERROR);
  assert.equal(answerQuery(zone, aQuery("c.z.test")).flags.rcode, RCODES.NXDOMAIN);
});

Deno.test("answerQuery(): REFUSED outside the zone, NOTIMP for other opcodes, BADVERS for EDNS 1", () => {
  const refused = answerQuery(DEMO_ZONE, aQuery("example.com"));
  assert.equal(refused.flags.rcode, RCODES.REFUSED);
  assert.equal(refused.flags.aa, false);
  assert.equal(answerQuery(DEMO_ZONE, aQuery("test.")).flags.rcode, RCODES.REFUSED);
  const axfr = answerQuery(DEMO_ZONE, aQuery("wirebook.test", 252));
  assert.equal(axfr.flags.rcode, RCODES.REFUSED);

  const notify = aQuery("wirebook.test");
  notify.flags.opcode = 4;
  assert.equal(answerQuery(DEMO_ZONE, notify).flags.rcode, RCODES.NOTIMP);

  const future = aQuery("wirebook.test");
  future.edns!.version = 1;
  const badvers = answerQuery(DEMO_ZONE, future);
  assert.equal(fullRcode(badvers), RCODES.BADVERS);
  assert.equal(badvers.edns?.version, 0);
});

Deno.test("handleDnsMessage() truncates over UDP at 512 bytes, or the client's EDNS size up to 1232", () => {
  const big = (udpPayloadSize: number) =>
    handleDnsMessage(encodeMessage(aQuery("big.wirebook.test", "TXT", udpPayloadSize)));
  for (const [offered, limit] of [[0, 512], [100, 512], [1232, 1232], [4096, 1232]]) {
    const { response, summary } = big(offered);
    const message = decodeMessage(response!);
    assert.equal(message.flags.tc, true, `EDNS ${offered}`);
    assert.deepEqual(message.answers, []);
    assert.deepEqual(message.questions, [{ name: "big.wirebook.test.", type: "TXT" }]);
    assert.match(summary, new RegExp(`> ${limit}: sent \\d+ bytes with TC=1`));
  }
  const small = handleDnsMessage(encodeMessage(aQuery("www.wirebook.test", "A", 0)));
  assert.equal(decodeMessage(small.response!).flags.tc, false);

  const tcp = handleDnsMessage(encodeMessage(aQuery("big.wirebook.test", "TXT")), {
    transport: "tcp",
  });
  const full = decodeMessage(tcp.response!);
  assert.equal(full.flags.tc, false);
  assert.equal(full.answers.length, 24);
  assert.ok(tcp.response!.length > 1232);
});

Deno.test("handleDnsMessage(): silence for a short packet or a response, FORMERR for a malformed query", () => {
  assert.equal(handleDnsMessage(bytes(1, 2, 3)).response, null);
  const response = encodeMessage(answerQuery(DEMO_ZONE, aQuery("www.wirebook.test")));
  assert.equal(handleDnsMessage(response).response, null);

  const { response: formerr, summary } = handleDnsMessage(questionWith([0xc0, 12]));
  const message = decodeMessage(formerr!);
  assert.equal(message.id, 0xabcd);
  assert.equal(message.flags.rcode, RCODES.FORMERR);
  assert.equal(message.flags.qr, true);
  assert.equal(message.flags.rd, true);
  assert.equal(formerr!.length, 12);
  assert.match(summary, /^malformed \(.*compression pointer.*\): FORMERR$/);
});

// Malformed packets of every kind the brief names, plus random damage.
const validQueries = fc.tuple(
  fc.constantFrom("www.wirebook.test", "wirebook.test", "big.wirebook.test", "nope.wirebook.test"),
  fc.constantFrom<Question["type"]>("A", "AAAA", "MX", "TXT", "SOA"),
  fc.constantFrom(0, 1232),
  u16,
).map(([name, type, size, id]) =>
  encodeMessage(buildQuery(name, type, { id, udpPayloadSize: size }))
);

const malformed = fc.oneof(
  // Truncated headers.
  fc.uint8Array({ maxLength: 11 }),
  // Valid queries cut short.
  fc.tuple(validQueries, fc.nat()).map(([q, n]) => q.slice(0, 12 + (n % (q.length - 12)))),
  // Counts larger than the packet.
  fc.tuple(validQueries, fc.integer({ min: 2, max: 0xffff }), fc.integer({ min: 4, max: 11 })).map(
    ([q, count, at]) => {
      const copy = q.slice();
      copy[at & ~1] = count >> 8;
      copy[(at & ~1) + 1] = count & 0xff;
      return copy;
    },
  ),
  // Compression loops and forward pointers in the question.
  fc.tuple(u16, fc.array(fc.integer({ min: 0, max: 0x3fff }), { minLength: 1, maxLength: 4 })).map(
    ([id, targets]) => {
      const name = targets.flatMap((t, i) =>
        i % 2 ? [0xc0 | (t >> 8), t & 0xff] : [1, 0x61, 0xc0 | (t >> 8), t & 0xff]
      );
      return bytes(...header(id, 0x0100, [1, 0, 0, 0]), ...name, 0, 1, 0, 1);
    },
  ),
  fc.tuple(u16, fc.integer({ min: 12, max: 40 })).map(([id, target]) =>
    bytes(
      ...header(id, 0x0100, [1, 0, 0, 0]),
      1,
      0x61,
      0xc0 | (target >> 8),
      target & 0xff,
      0,
      1,
      0,
      1,
    )
  ),
  // Random damage to valid queries.
  fc.tuple(
    validQueries,
    fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), { minLength: 1, maxLength: 6 }),
  )
    .map(([q, hits]) => {
      const copy = q.slice();
      for (const [at, value] of hits) copy[at % copy.length] = value;
      return copy;
    }),
  // Random bytes.
  fc.uint8Array({ minLength: 12, maxLength: 600 }),
).filter((packet) => {
  try {
    decodeMessage(packet);
    return false; // well-formed after all: not what this generator is for
  } catch {
    return true;
  }
});

// What a reply to a malformed packet may be: nothing, or a bare FORMERR for its ID.
function checkReplyToMalformed(packet: Uint8Array, reply: Uint8Array | null) {
  if (packet.length < 12 || (packet[2] & 0x80) !== 0) {
    assert.equal(reply, null, "no reply to a packet without a query header");
    return;
  }
  if (reply === null) return;
  const message = decodeMessage(reply);
  assert.equal(message.id, (packet[0] << 8) | packet[1]);
  assert.equal(message.flags.qr, true);
  assert.equal(message.flags.rcode, RCODES.FORMERR);
  assert.equal(message.answers.length + message.authorities.length + message.additionals.length, 0);
}

Deno.test("property: handleDnsMessage() answers malformed packets with FORMERR or silence", () => {
  fc.assert(
    fc.property(malformed, fc.constantFrom<"udp" | "tcp">("udp", "tcp"), (packet, transport) => {
      checkReplyToMalformed(packet, handleDnsMessage(packet, { transport }).response);
    }),
    { numRuns: 3000 },
  );
});

Deno.test("property: handleDnsMessage() never throws, and a reply always answers its query", () => {
  fc.assert(
    fc.property(fc.oneof(validQueries, malformed, anyMessage.map(encodeMessage)), (packet) => {
      const { response } = handleDnsMessage(packet);
      if (response === null) return;
      const reply = decodeMessage(response);
      assert.equal(reply.id, (packet[0] << 8) | packet[1]);
      assert.equal(reply.flags.qr, true);
      assert.ok(response.length <= 1232);
    }),
    { numRuns: 2000 },
  );
});

// ---------------------------------------------------------------------------
// The client
// ---------------------------------------------------------------------------

Deno.test("queryDns() asks over UDP with EDNS0, and checks the reply's ID and question", async () => {
  const server = startDns();
  try {
    const result = await queryDns("www.wirebook.test", "AAAA", {
      port: server.port,
      timeout: 5000,
    });
    assert.equal(result.transport, "udp");
    assert.equal(result.attempts, 1);
    assert.equal(result.query.edns?.udpPayloadSize, 1232);
    assert.equal(result.query.flags.rd, true);
    assert.equal(result.response.id, result.query.id);
    assert.deepEqual(result.response.answers.map(formatData).slice(-2), [
      "2001:db8::10",
      "2001:db8::11",
    ]);
    const noEdns = await queryDns("wirebook.test", "SOA", { port: server.port, udpPayloadSize: 0 });
    assert.equal(noEdns.query.edns, undefined);
    assert.equal(noEdns.response.edns, undefined);
  } finally {
    await server.stop();
  }
});

Deno.test("mismatch() rejects a reply with another ID, another question, or the QR bit clear", () => {
  const query = aQuery("www.wirebook.test");
  const response = answerQuery(DEMO_ZONE, query);
  assert.equal(mismatch(query, response), undefined);
  assert.match(mismatch(query, { ...response, id: 1 })!, /ID 0x0001 is not ours/);
  assert.match(
    mismatch(query, { ...response, questions: [{ name: "x.", type: "A" }] })!,
    /question/,
  );
  assert.match(
    mismatch(query, { ...response, questions: [{ name: "www.wirebook.test.", type: "MX" }] })!,
    /question/,
  );
  assert.match(mismatch(query, query)!, /not a response/);
  // DNS names are case-insensitive: a server may echo another case.
  assert.equal(
    mismatch(query, { ...response, questions: [{ name: "WWW.WIREBOOK.TEST.", type: "A" }] }),
    undefined,
  );
});

Deno.test("queryDns() falls back to TCP when the UDP reply has TC=1", async () => {
  const server = startDns();
  const lines: string[] = [];
  try {
    const result = await queryDns("big.wirebook.test", "TXT", {
      port: server.port,
      timeout: 5000,
      log: (line) => lines.push(line),
    });
    assert.equal(result.transport, "tcp");
    assert.equal(result.attempts, 1);
    assert.equal(result.response.answers.length, 24);
    assert.equal(result.response.flags.tc, false);
    assert.match(lines.join("\n"), /has TC=1, truncated: asking again over TCP/);
    const direct = await queryDns("big.wirebook.test", "TXT", {
      port: server.port,
      transport: "tcp",
    });
    assert.equal(direct.attempts, 0);
    assert.deepEqual(direct.response.answers, result.response.answers);
  } finally {
    await server.stop();
  }
  assert.ok(
    server.lines.some((line) => /^tcp .*big\.wirebook\.test\. TXT: NOERROR, 24 answer/.test(line)),
  );
});

Deno.test("queryDns() sends again after silence, and ignores forged and stray replies", async () => {
  // A hand-driven server: it ignores the first query (a loss), then answers
  // the second three times: from another port, with a wrong ID, and truly.
  const fake = listenUdp("127.0.0.1", 0);
  const stranger = listenUdp("127.0.0.1", 0);
  const lines: string[] = [];
  const asking = queryDns("www.wirebook.test", "A", {
    port: (fake.addr as Deno.NetAddr).port,
    timeout: 300,
    maxAttempts: 4,
    log: (line) => lines.push(line),
  });
  try {
    await fake.receive(); // the first send: dropped
    const [second, from] = await fake.receive();
    const real = handleDnsMessage(second).response!;
    const forged = real.slice();
    forged[0] ^= 0xff;
    await stranger.send(real, from);
    await fake.send(forged, from);
    await fake.send(bytes(1, 2, 3), from);
    await fake.send(real, from);
    const result = await asking;
    assert.ok(result.attempts >= 2);
    assert.equal(result.response.answers.length, 4);
    const log = lines.join("\n");
    assert.match(log, /no reply within 300 ms \(attempt 1\/4\)/);
    assert.match(log, /ignored \d+ bytes from 127\.0\.0\.1:\d+/);
    assert.match(log, /ignored a reply: its ID 0x[0-9a-f]{4} is not ours/);
    assert.match(log, /ignored a malformed reply/);
  } finally {
    fake.close();
    stranger.close();
  }
});

Deno.test("queryDns() gives up after maxAttempts with the timeouts as its cause", async () => {
  const silent = listenUdp("127.0.0.1", 0);
  try {
    await assert.rejects(
      queryDns("www.wirebook.test", "A", {
        port: (silent.addr as Deno.NetAddr).port,
        timeout: 50,
        maxAttempts: 2,
      }),
      (error: Error) => {
        assert.match(error.message, /^no answer from udp:\/\/127\.0\.0\.1:\d+$/);
        assert.ok(error.cause instanceof RetryError);
        assert.equal((error.cause as RetryError).attempts, 2);
        return true;
      },
    );
  } finally {
    silent.close();
  }
});

Deno.test("canonicalHost() reads an address once, in any IPv6 spelling, and refuses IPv4 short forms", () => {
  assert.equal(canonicalHost("0:0:0:0:0:0:0:1"), "::1");
  assert.equal(canonicalHost("::0001"), "::1");
  assert.equal(canonicalHost("[::1]"), "::1");
  assert.equal(canonicalHost("::FFFF:127.0.0.1"), "::ffff:127.0.0.1");
  assert.equal(canonicalHost("127.0.0.1"), "127.0.0.1");
  assert.equal(canonicalHost("localhost"), "localhost");
  assert.equal(canonicalHost("ns1.example.net"), "ns1.example.net");
  // What the C resolver (and so Deno.connect) would also take, each its own way.
  for (const short of ["127.1", "127.0.0.01", "127.0.0.010", "0x7f.0.0.1", "2130706433"]) {
    assert.throws(() => canonicalHost(short), RangeError, short);
  }
  assert.throws(() => canonicalHost("::1::"), RangeError);
});

Deno.test("queryDns() takes the reply from the server's address however --host spells it", async () => {
  const server = startDns({}, "::1");
  try {
    for (const hostname of ["::1", "0:0:0:0:0:0:0:1", "::0001", "[::1]"]) {
      const lines: string[] = [];
      const result = await queryDns("www.wirebook.test", "A", {
        hostname,
        port: server.port,
        maxAttempts: 1,
        timeout: 5000,
        log: (line) => lines.push(line),
      });
      assert.equal(result.transport, "udp", hostname);
      assert.equal(result.response.answers.length, 4, hostname);
      assert.deepEqual(lines, [], hostname);
    }
    await assert.rejects(
      queryDns("www.wirebook.test", "A", { hostname: "127.1", port: server.port }),
      /"127\.1": expected 4 octets/,
    );
  } finally {
    await server.stop();
  }
});

Deno.test("lookupWithDeno(): Deno.resolveDns against our server agrees with queryDns()", async () => {
  const server = startDns();
  const at = { hostname: "127.0.0.1", port: server.port };
  try {
    assert.deepEqual((await lookupWithDeno("www.wirebook.test", "A", at)).sort(), [
      "192.0.2.10",
      "192.0.2.11",
    ]);
    assert.deepEqual(
      (await lookupWithDeno("www.wirebook.test", "AAAA", at)).sort(),
      ["2001:db8::10", "2001:db8::11"],
    );
    assert.deepEqual(await lookupWithDeno("www.wirebook.test", "CNAME", at), [
      "web.wirebook.test.",
    ]);
    // (Deno's records have no prototype; spread them to compare.)
    const mx = (await lookupWithDeno("wirebook.test", "MX", at)).map((r) => ({ ...r as object }));
    assert.deepEqual(mx, [
      { preference: 10, exchange: "mail.wirebook.test." },
      { preference: 20, exchange: "mx2.wirebook.test." },
    ]);
    assert.deepEqual(await lookupWithDeno("wirebook.test", "TXT", at), [
      ["v=spf1 mx -all"],
      ["wirebook demo zone", "two strings, one record"],
    ]);
    assert.deepEqual(await lookupWithDeno("wirebook.test", "NS", at), [
      "ns1.wirebook.test.",
      "ns2.wirebook.test.",
    ]);
    const [soa] = await lookupWithDeno("wirebook.test", "SOA", at);
    assert.deepEqual({ ...soa as object }, (DEMO_ZONE.records[0] as { data: unknown }).data);
    // Deno falls back to TCP by itself for the 24 TXT records.
    assert.equal((await lookupWithDeno("big.wirebook.test", "TXT", at)).length, 24);
    await assert.rejects(lookupWithDeno("nope.wirebook.test", "A", at), Deno.errors.NotFound);
  } finally {
    await server.stop();
  }
  assert.ok(
    server.lines.some((line) => line.startsWith("tcp ") && line.includes("big.wirebook.test.")),
  );
});

// ---------------------------------------------------------------------------
// The server, over real sockets
// ---------------------------------------------------------------------------

async function connect(port: number) {
  return await Deno.connect({ hostname: "127.0.0.1", port });
}

Deno.test("serveDns() over TCP answers several queries sent in one write, in order", async () => {
  const server = startDns();
  const conn = await connect(server.port);
  try {
    const names = ["www.wirebook.test", "wirebook.test", "nope.wirebook.test"];
    const frames = names.map((name, i) =>
      tcpFrame(encodeMessage(buildQuery(name, "A", { id: i + 1 })))
    );
    await conn.write(new Uint8Array(frames.flatMap((frame) => [...frame])));
    for (const [i] of names.entries()) {
      const reply = decodeMessage((await readTcpMessage(conn))!);
      assert.equal(reply.id, i + 1);
    }
  } finally {
    conn.close();
    await server.stop();
  }
});

Deno.test("serveDns() cuts off a TCP client that announces too big a message, and keeps serving", async () => {
  const server = startDns({ maxQuerySize: 512 });
  try {
    const greedy = await connect(server.port);
    await greedy.write(bytes(0xff, 0xff, 1, 2, 3));
    assert.equal(await greedy.read(new Uint8Array(10)), null);
    greedy.close();
    const result = await queryDns("wirebook.test", "NS", { port: server.port, transport: "tcp" });
    assert.equal(result.response.answers.length, 2);
  } finally {
    await server.stop();
  }
  assert.ok(
    server.lines.some((line) =>
      /closed \(a 65535-byte message is over this server's 512-byte cap\)/.test(line)
    ),
  );
});

Deno.test("queryDns() and serveDns() refuse a timeout setTimeout cannot keep (over 2^31 - 1 ms)", async () => {
  await assert.rejects(queryDns("x.test", "A", { timeout: 2 ** 31 }), RangeError);
  const sockets = listenDns("127.0.0.1", 0);
  try {
    await assert.rejects(serveDns(sockets, { idleTimeout: 2 ** 31 }), RangeError);
  } finally {
    sockets.udp.close();
    sockets.tcp.close();
  }
});

Deno.test("serveDns() closes an idle TCP client, and one over the connection cap", async () => {
  const server = startDns({ idleTimeout: 200, maxConnections: 1 });
  try {
    const idle = await connect(server.port);
    await queryDns("wirebook.test", "A", { port: server.port }); // UDP still answers
    const extra = await connect(server.port);
    assert.equal(
      await extra.read(new Uint8Array(10)),
      null,
      "the second connection is closed at once",
    );
    extra.close();
    // Closed after the configured 0.2 s, not the 10 s default.
    const read = await within(
      5000,
      "the idle connection closed",
      () => idle.read(new Uint8Array(10)),
    );
    assert.equal(read, null, "the idle connection is closed");
    idle.close();
  } finally {
    await server.stop();
  }
  assert.ok(server.lines.some((line) => /refused, already 1 connections/.test(line)));
  assert.ok(server.lines.some((line) => /closed \(0\.2 s idle\)/.test(line)));
});

Deno.test("serveDns() survives a stream of malformed packets over UDP and TCP, then answers", async () => {
  const server = startDns();
  const raw = listenUdp("127.0.0.1", 0);
  const replies: Uint8Array[] = [];
  const collecting = (async () => {
    try {
      while (true) replies.push((await raw.receive(new Uint8Array(65536)))[0]);
    } catch { /* closed */ }
  })();
  try {
    const packets = fc.sample(malformed, 400);
    for (const packet of packets) await raw.send(packet, server.addr);
    // Over TCP: each malformed packet on its own connection, framed.
    for (const packet of packets.slice(0, 40)) {
      const conn = await connect(server.port);
      await conn.write(tcpFrame(packet));
      const reply = await readTcpMessage(conn).catch(() => null);
      checkReplyToMalformed(packet, reply);
      conn.close();
    }
    // Still alive: a real query over each transport.
    const udp = await queryDns("www.wirebook.test", "A", { port: server.port, timeout: 5000 });
    assert.equal(udp.response.answers.length, 4);
    const tcp = await queryDns("www.wirebook.test", "A", { port: server.port, transport: "tcp" });
    assert.equal(tcp.response.answers.length, 4);
    const answerable = new Set(
      packets.filter((p) => p.length >= 12 && (p[2] & 0x80) === 0).map((p) => (p[0] << 8) | p[1]),
    );
    for (const reply of replies) {
      const message = decodeMessage(reply);
      assert.equal(message.flags.rcode, RCODES.FORMERR);
      assert.ok(answerable.has(message.id));
    }
  } finally {
    raw.close();
    await collecting;
    await server.stop();
  }
});

Deno.test("listenDns() binds UDP and TCP to the same port", async () => {
  const sockets = listenDns("127.0.0.1", 0);
  try {
    assert.equal((sockets.udp.addr as Deno.NetAddr).port, sockets.tcp.addr.port);
    assert.equal(sockets.addr.port, sockets.tcp.addr.port);
    assert.throws(() => listenDns("127.0.0.1", sockets.addr.port), Deno.errors.AddrInUse);
  } finally {
    sockets.udp.close();
    sockets.tcp.close();
  }
  await Promise.resolve();
});

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

Deno.test("dns_lookup.ts demo: both ways, a truncated answer over TCP, FORMERR, a wire dump", async () => {
  const result = await runScript("dns_lookup");
  assert.equal(result.code, 0, result.stderr);
  const out = result.stdout;
  assert.match(out, /^server: listening on dns:\/\/127\.0\.0\.1:\d+ \(UDP and TCP\)$/m);
  assert.match(out, /A {5}www\.wirebook\.test {2}-> \["192\.0\.2\.10","192\.0\.2\.11"\]/);
  assert.match(out, /www\.wirebook\.test\.\t300\tIN\tCNAME\tweb\.wirebook\.test\./);
  assert.match(out, /nope\.wirebook\.test A: NXDOMAIN/);
  assert.match(out, /www\.example\.com A: REFUSED/);
  assert.match(out, /has TC=1, truncated: asking again over TCP/);
  assert.match(out, /over TCP: \d+ bytes, 24 TXT records/);
  assert.match(out, /reply: ID 0xbeef, FORMERR, 12 bytes/);
  assert.match(out, /0x0000 {2}[0-9a-f]{2} [0-9a-f]{2} +ID = 0x/);
  assert.match(out, /pointer to offset 12 \(0x000c\): wirebook\.test\./);
  assert.match(out, /stopped, nothing left open\n$/);
  assert.equal(result.stderr, "");
});

Deno.test("dns_lookup.ts without --unstable-net says to add it; query --tcp does not need it", async () => {
  const result = await runScript("dns_lookup", [], { flags: ["--allow-net=127.0.0.1"] });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: .*--unstable-net\n$/);

  const server = startDns();
  try {
    const tcp = await runScript(
      "dns_lookup",
      ["query", "wirebook.test", "MX", "--port", String(server.port), "--tcp"],
      { flags: ["--allow-net=127.0.0.1"] },
    );
    assert.equal(tcp.code, 0, tcp.stderr);
    assert.match(tcp.stdout, /MX\t10 mail\.wirebook\.test\./);
    assert.match(tcp.stdout, /\(TCP\)/);
  } finally {
    await server.stop();
  }
});

Deno.test("dns_lookup.ts serve prints one dns:// banner, answers query on UDP and TCP, exits 0 on SIGTERM", async () => {
  const server = await startServer("dns_lookup", [], { scheme: "dns" });
  const port = String(server.port);
  try {
    assert.equal(server.hostname, "127.0.0.1");
    // First a burst of malformed datagrams; the process must shrug them off.
    const raw = listenUdp("127.0.0.1", 0);
    try {
      for (const packet of fc.sample(malformed, 200)) {
        await raw.send(packet, { transport: "udp", hostname: "127.0.0.1", port: server.port });
      }
    } finally {
      raw.close();
    }
    const udp = await runScript("dns_lookup", ["query", "www.wirebook.test", "--port", port]);
    assert.equal(udp.code, 0, udp.stderr);
    assert.match(udp.stdout, /status: NOERROR/);
    assert.match(udp.stdout, /flags: qr aa rd;/);
    assert.match(udp.stdout, /host\.wirebook\.test\.\t300\tIN\tA\t192\.0\.2\.11/);
    assert.match(udp.stdout, /\(UDP\)/);

    const dump = await runScript("dns_lookup", [
      "query",
      "wirebook.test",
      "SOA",
      "--port",
      port,
      "--dump",
      "--tcp",
    ]);
    assert.equal(dump.code, 0, dump.stderr);
    assert.match(dump.stdout, /;; the reply, \d+ bytes, over tcp:/);
    assert.match(dump.stdout, /serial = 2025010101/);

    const big = await runScript("dns_lookup", [
      "query",
      "big.wirebook.test",
      "txt",
      "--port",
      port,
    ]);
    assert.equal(big.code, 0, big.stderr);
    assert.match(big.stderr, /^note: the UDP reply .* TC=1, truncated: asking again over TCP$/m);
    assert.match(big.stdout, /ANSWER: 24/);

    const nx = await runScript("dns_lookup", ["query", "nope.wirebook.test", "--port", port]);
    assert.equal(nx.code, 1);
    assert.match(nx.stdout, /status: NXDOMAIN/);
    assert.equal(
      nx.stderr,
      "error: nope.wirebook.test A: the server answered NXDOMAIN (no such name)\n",
    );

    const system = await runScript("dns_lookup", [
      "query",
      "wirebook.test",
      "MX",
      "--port",
      port,
      "--system",
    ]);
    assert.equal(system.code, 0, system.stderr);
    assert.equal(
      system.stdout,
      '{"preference":10,"exchange":"mail.wirebook.test."}\n' +
        '{"preference":20,"exchange":"mx2.wirebook.test."}\n',
    );
  } finally {
    const { code, stdout } = await server.stop();
    assert.equal(code, 0);
    assert.equal(stdout.split("\n").filter((line) => line.startsWith("listening on")).length, 1);
    assert.match(stdout, /^udp 127\.0\.0\.1:\d+: www\.wirebook\.test\. A: NOERROR, 4 answer\(s\)/m);
    assert.match(stdout, /^udp 127\.0\.0\.1:\d+: malformed \(.*\): FORMERR$/m);
  }
});

Deno.test("dns_lookup.ts query --host 0:0:0:0:0:0:0:1 is ::1: the reply is taken, and the flag is enough", async () => {
  const server = startDns({}, "::1");
  try {
    const result = await runScript(
      "dns_lookup",
      ["query", "mail.wirebook.test", "--host", "0:0:0:0:0:0:0:1", "--port", String(server.port)],
      { flags: ["--unstable-net", "--allow-net=[::1]"] },
    );
    assert.equal(result.code, 0, result.stderr);
    assert.equal(result.stderr, "");
    assert.match(result.stdout, /mail\.wirebook\.test\.\t300\tIN\tA\t192\.0\.2\.25/);
    assert.match(result.stdout, /;; SERVER: \[::1\]:\d+ \(UDP\)/);
  } finally {
    await server.stop();
  }
});

Deno.test("dns_lookup.ts: bad usage is one line and exit 2", async () => {
  for (
    const args of [
      ["query"],
      ["query", "x.test", "NOTATYPE"],
      ["query", "x..test"],
      ["query", "x.test", "--port", "0"],
      ["serve", "extra"],
      ["resolve"],
      ["query", "x.test", "--host", "127.1"],
      ["serve", "--host", "127.0.0.01"],
      // setTimeout takes at most 2^31 - 1 ms; past that it fires at once.
      ["query", "x.test", "--timeout", "2147484"],
      ["query", "x.test", "--attempts", "1000"],
      ["serve", "--idle-timeout", "2147484"],
    ]
  ) {
    const result = await runScript("dns_lookup", args);
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.stderr, /^error: .*\(see --help\)\n$/, args.join(" "));
  }
});

// ---------------------------------------------------------------------------
// Interop: dig against our server
// ---------------------------------------------------------------------------

async function dig(args: string[]): Promise<string> {
  const result = await run("dig", ["+time=5", "+tries=2", ...args], { timeout: 30_000 });
  assert.equal(result.code, 0, `dig ${args.join(" ")}: ${result.stdout}${result.stderr}`);
  return result.stdout;
}

// The lines of one section of dig's full output, whitespace normalised.
function digSection(output: string, title: string): string[] {
  const lines = output.split("\n");
  const start = lines.indexOf(`;; ${title} SECTION:`);
  if (start < 0) return [];
  const end = lines.findIndex((line, i) => i > start && line.trim() === "");
  return lines.slice(start + 1, end < 0 ? undefined : end).map(normalise);
}

function digHeader(output: string) {
  const status = output.match(/status: (\w+)/)?.[1];
  const flags = output.match(/;; flags: ([a-z ]*);/)?.[1].split(" ").filter(Boolean) ?? [];
  const server = output.match(/;; SERVER: .*\((UDP|TCP)\)/)?.[1];
  return { status, flags, server };
}

const normalise = (line: string) => line.trim().split(/\s+/).join(" ");

peerTest(
  "dig against our server: answers, flags, NXDOMAIN, REFUSED, +tcp and +short",
  [PEERS.dig],
  async () => {
    const server = startDns();
    const at = ["@127.0.0.1", "-p", String(server.port)];
    try {
      const www = await dig([...at, "www.wirebook.test", "A"]);
      assert.deepEqual(digHeader(www), {
        status: "NOERROR",
        flags: ["qr", "aa", "rd"],
        server: "UDP",
      });
      const expected = answerQuery(DEMO_ZONE, aQuery("www.wirebook.test")).answers.map(
        formatRecord,
      );
      assert.deepEqual(digSection(www, "ANSWER"), expected.map(normalise));

      const short = await dig([...at, "+short", "www.wirebook.test", "AAAA"]);
      assert.equal(short, "web.wirebook.test.\nhost.wirebook.test.\n2001:db8::10\n2001:db8::11\n");
      assert.equal(
        await dig([...at, "+short", "wirebook.test", "TXT"]),
        '"v=spf1 mx -all"\n"wirebook demo zone" "two strings, one record"\n',
      );

      const mx = await dig([...at, "+tcp", "wirebook.test", "MX"]);
      assert.equal(digHeader(mx).server, "TCP");
      assert.deepEqual(digSection(mx, "ANSWER"), [
        "wirebook.test. 300 IN MX 10 mail.wirebook.test.",
        "wirebook.test. 300 IN MX 20 mx2.wirebook.test.",
      ]);

      const nx = await dig([...at, "nope.wirebook.test", "A"]);
      assert.equal(digHeader(nx).status, "NXDOMAIN");
      assert.ok(digHeader(nx).flags.includes("aa"));
      assert.deepEqual(digSection(nx, "AUTHORITY"), [
        "wirebook.test. 300 IN SOA ns1.wirebook.test. hostmaster.wirebook.test. 2025010101 7200 3600 1209600 300",
      ]);

      const refused = await dig([...at, "example.com", "A"]);
      assert.equal(digHeader(refused).status, "REFUSED");
      assert.ok(!digHeader(refused).flags.includes("aa"));

      // Too big for UDP: dig sees TC=1 and asks again over TCP by itself...
      const big = await dig([...at, "big.wirebook.test", "TXT"]);
      assert.match(big, /;; Truncated, retrying in TCP mode\./);
      assert.equal(digSection(big, "ANSWER").length, 24);
      assert.equal(digHeader(big).server, "TCP");
      // ...and with +ignore it shows the truncated reply itself: TC, no records.
      const truncated = await dig([...at, "+ignore", "+noedns", "big.wirebook.test", "TXT"]);
      assert.ok(digHeader(truncated).flags.includes("tc"));
      assert.deepEqual(digSection(truncated, "ANSWER"), []);

      // EDNS version 1: BADVERS, and dig retries with version 0.
      const edns1 = await dig([...at, "+edns=1", "+short", "mail.wirebook.test", "A"]);
      assert.equal(edns1, "192.0.2.25\n");
    } finally {
      await server.stop();
    }
    assert.ok(server.lines.some((line) => /BADVERS/.test(line)));
  },
);

peerTest(
  "dig and our client print zone-file characters, TXT bytes and IPv4-mapped addresses alike",
  [PEERS.dig],
  async () => {
    const zone: Zone = {
      origin: "odd.test.",
      records: [
        { name: "odd.test.", type: "NS", ttl: 60, data: 'a;b(c)@$"d e.odd.test.' },
        {
          name: "odd.test.",
          type: "TXT",
          ttl: 60,
          data: [bytes(0xff, 0xfe, 0x41), bytes(0x22, 0x5c, 0x3b, 0x7f), ...txtData("é")],
        },
        ...["::ffff:c000:201", "::c000:201", "::2", "64:ff9b::c000:201", "2001:db8::1"]
          .map((data) => ({ name: "odd.test.", type: "AAAA" as const, ttl: 60, data })),
      ],
    };
    // What dig 9.18 prints, byte for byte (whitespace aside).
    const expected = {
      NS: ['odd.test. 60 IN NS a\\;b\\(c\\)\\@\\$\\"d\\032e.odd.test.'],
      TXT: ['odd.test. 60 IN TXT "\\255\\254A" "\\"\\\\;\\127" "\\195\\169"'],
      AAAA: [
        "::ffff:192.0.2.1",
        "::192.0.2.1",
        "::2",
        "64:ff9b::c000:201",
        "2001:db8::1",
      ].map((address) => `odd.test. 60 IN AAAA ${address}`),
    };
    const server = startDns({ zone });
    try {
      for (const type of ["NS", "TXT", "AAAA"] as const) {
        const at = ["@127.0.0.1", "-p", String(server.port)];
        const theirs = await dig([...at, "+noall", "+answer", "odd.test", type]);
        assert.deepEqual(theirs.trimEnd().split("\n").map(normalise), expected[type], type);
        const ours = await queryDns("odd.test", type, { port: server.port });
        assert.deepEqual(ours.response.answers.map(formatRecord).map(normalise), expected[type]);
      }
    } finally {
      await server.stop();
    }
  },
);

// ---------------------------------------------------------------------------
// Interop: our client next to dig, against dnsmasq
// ---------------------------------------------------------------------------

// dnsmasq serving a test zone from its command line: no config file, no
// upstream servers (--no-resolv), no /etc/hosts, loopback only, a high port.
// CNAMEs are listed target first: dnsmasq only chains to names it already knows.
function dnsmasqArgs(port: number): string[] {
  const big = Array.from(
    { length: 100 },
    (_, i) => `--host-record=big.zone.test,198.51.100.${i + 1}`,
  );
  return [
    "--no-daemon",
    `--port=${port}`,
    "--listen-address=127.0.0.1",
    "--bind-interfaces",
    "--no-resolv",
    "--no-hosts",
    "--conf-file=/dev/null",
    "--pid-file",
    "--local=/zone.test/",
    "--local-ttl=300",
    "--host-record=host.zone.test,192.0.2.10,2001:db8::10",
    "--host-record=mail.zone.test,192.0.2.25",
    "--cname=web.zone.test,host.zone.test",
    "--cname=www.zone.test,web.zone.test",
    "--mx-host=zone.test,mail.zone.test,10",
    "--mx-host=zone.test,mx2.zone.test,20",
    "--txt-record=zone.test,v=spf1 -all,second string",
    ...big,
  ];
}

async function startDnsmasq() {
  for (let attempt = 1;; attempt++) {
    // A port free for UDP and TCP a moment ago (dnsmasq needs a number).
    const probe = listenDns("127.0.0.1", 0);
    const port = probe.addr.port;
    probe.udp.close();
    probe.tcp.close();
    const child = new Deno.Command("dnsmasq", {
      args: dnsmasqArgs(port),
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    let exited = false;
    child.status.then(() => exited = true);
    const stop = async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await stderr;
    };
    // Ready when it answers.
    for (let i = 0; i < 100 && !exited; i++) {
      try {
        await queryDns("host.zone.test", "A", { port, timeout: 200, maxAttempts: 1 });
        return { port, stop };
      } catch { /* not yet */ }
    }
    await stop();
    if (attempt >= 3) throw new Error(`dnsmasq did not start: ${await stderr}`);
  }
}

peerTest("our client and dig agree against dnsmasq: A, AAAA, CNAME chains, MX, TXT, NXDOMAIN", [
  PEERS.dnsmasq,
  PEERS.dig,
], async () => {
  const dnsmasq = await startDnsmasq();
  const at = ["@127.0.0.1", "-p", String(dnsmasq.port)];
  try {
    const cases: [string, Question["type"]][] = [
      ["host.zone.test", "A"],
      ["host.zone.test", "AAAA"],
      ["www.zone.test", "A"],
      ["www.zone.test", "AAAA"],
      ["web.zone.test", "CNAME"],
      ["zone.test", "MX"],
      ["zone.test", "TXT"],
      ["mail.zone.test", "A"],
      ["nope.zone.test", "A"],
      ["host.zone.test", "MX"],
    ];
    for (const [name, type] of cases) {
      const ours = await queryDns(name, type, { port: dnsmasq.port, timeout: 5000 });
      const theirs = await dig([...at, name, String(type)]);
      const label = `${name} ${type}`;
      assert.equal(ours.transport, "udp", label);
      assert.equal(ours.response.id, ours.query.id);
      assert.equal(
        fullRcode(ours.response),
        RCODES[digHeader(theirs).status as keyof typeof RCODES],
        label,
      );
      assert.deepEqual(
        ours.response.answers.map(formatRecord).map(normalise).sort(),
        digSection(theirs, "ANSWER").sort(),
        label,
      );
    }
    // The chain really is a chain: two CNAMEs, then the address.
    const chain = await queryDns("www.zone.test", "A", { port: dnsmasq.port });
    assert.deepEqual(chain.response.answers.map((r) => r.type), ["CNAME", "CNAME", "A"]);
    const txt = await queryDns("zone.test", "TXT", { port: dnsmasq.port });
    assert.deepEqual(txt.response.answers[0].data, txtData("v=spf1 -all", "second string"));
  } finally {
    await dnsmasq.stop();
  }
});

peerTest(
  "our client and dig both fall back to TCP for dnsmasq's truncated answer",
  [PEERS.dnsmasq, PEERS.dig],
  async () => {
    const dnsmasq = await startDnsmasq();
    try {
      const lines: string[] = [];
      const ours = await queryDns("big.zone.test", "A", {
        port: dnsmasq.port,
        timeout: 5000,
        log: (line) => lines.push(line),
      });
      const theirs = await dig(["@127.0.0.1", "-p", String(dnsmasq.port), "big.zone.test", "A"]);
      assert.equal(ours.transport, "tcp");
      assert.match(lines.join("\n"), /TC=1, truncated: asking again over TCP/);
      assert.match(theirs, /;; Truncated, retrying in TCP mode\./);
      assert.equal(ours.response.answers.length, 100);
      assert.deepEqual(
        ours.response.answers.map(formatRecord).map(normalise).sort(),
        digSection(theirs, "ANSWER").sort(),
      );
      // Without EDNS the limit is 512 bytes, and the same holds.
      const classic = await queryDns("big.zone.test", "A", {
        port: dnsmasq.port,
        udpPayloadSize: 0,
      });
      assert.equal(classic.transport, "tcp");
      assert.equal(classic.response.answers.length, 100);
    } finally {
      await dnsmasq.stop();
    }
  },
);
