// scripts/ftp_client.ts: replies, listings and transfers, against scripted
// servers that misbehave on purpose, against scripts/ftp_server.ts, and
// against two servers no one here wrote: vsftpd (with TLS) and pyftpdlib.
//
// vsftpd, as the tests run it (root in a container, found by trying):
// - `listen=YES` + `background=NO`: one foreground process that forks a
//   child per session; it cannot report a port, so the test picks a free one
//   (port 0, closed again) and retries if vsftpd loses the race for it.
// - `secure_chroot_dir`: an empty, root-owned, non-writable folder of the
//   test's own (the package's /var/run/vsftpd/empty may not exist on a fresh
//   machine whose /run is a tmpfs).
// - `seccomp_sandbox=NO`: not needed on this machine, but vsftpd's seccomp
//   filter is known to kill sessions ("500 OOPS: child died") under some
//   kernels and container runtimes, and a test server lives for seconds.
// - local users need a real system user (vsftpd checks the password with
//   PAM, and runs the session as that user): each test adds one with a random
//   name (`useradd`, `chpasswd`, as root) and removes it (`userdel`) at the
//   end. Its home (`local_root`) is a temp folder it owns, under a temp
//   folder made traversable (mode 755; mktemp makes 700).
// - TLS: `ssl_enable=YES` with a test CA's certificate, `allow_anon_ssl=YES`,
//   `ssl_ciphers=HIGH` (vsftpd 3.0.3's default is DES-CBC3-SHA, which rustls
//   does not offer), and `require_ssl_reuse=NO`: Deno cannot resume a TLS
//   session, and vsftpd by default insists that each data connection resume
//   the control connection's (see the test that shows the refusal).
// - rustls refuses a self-signed certificate that is its own CA
//   (CaUsedAsEndEntity), so the tests make a CA and a server certificate
//   signed by it, for IP:127.0.0.1.

import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  checkArgument,
  formatEntry,
  FromNetworkText,
  FtpClient,
  FtpError,
  FtpProtocolError,
  type ListEntry,
  parseDosListLine,
  parseEpsv,
  parseFtpUrl,
  parseListLine,
  parseMlsdLine,
  parsePasv,
  parseQuotedPath,
  parseTimeVal,
  parseUnixListLine,
  progressMeter,
  readReply,
  ReplyParser,
  splitWords,
  ToNetworkText,
} from "../scripts/ftp_client.ts";
import { MemoryFileSystem, serveFtp } from "../scripts/ftp_server.ts";
import { BufferedReader } from "../lib/buffered_reader.ts";
import { writeAll } from "../lib/write_all.ts";
import {
  hasPeer,
  makeTestCertificates,
  type Peer,
  PEERS,
  peerTest,
  PYTHON,
  randomBytes,
  run,
  runScript,
  sha256,
  type TestCertificates,
} from "./_helpers.ts";

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const MIB = 1024 * 1024;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// ---------------------------------------------------------------------------
// Replies
// ---------------------------------------------------------------------------

/** A reader that hands out `bytes` in the given chunk sizes, as a socket might. */
function chunkedReader(bytes: Uint8Array, sizes: number[]) {
  let offset = 0;
  let turn = 0;
  return {
    read(buffer: Uint8Array): Promise<number | null> {
      if (offset >= bytes.length) return Promise.resolve(null);
      const size = Math.max(1, sizes.length ? sizes[turn++ % sizes.length] : bytes.length);
      const n = Math.min(size, buffer.length, bytes.length - offset);
      buffer.set(bytes.subarray(offset, offset + n));
      offset += n;
      return Promise.resolve(n);
    },
  };
}

/** Write a reply as a server would; `inner` lines may repeat "xyz-". */
function formatReply(code: number, lines: string[]): string {
  if (lines.length === 1) return `${code} ${lines[0]}\r\n`;
  const inner = lines.slice(1, -1).map((line) => `${line}\r\n`).join("");
  return `${code}-${lines[0]}\r\n${inner}${code} ${lines.at(-1)}\r\n`;
}

const textLine = fc.string({ maxLength: 40 }).filter((s) => !/[\r\n]/.test(s));

Deno.test("readReply() reassembles any sequence of replies, however the bytes are split (property)", async () => {
  const replyArb = fc.integer({ min: 100, max: 599 }).chain((code) =>
    fc.record({
      code: fc.constant(code),
      lines: fc.oneof(
        fc.tuple(textLine).map((t) => [...t]),
        fc.tuple(
          textLine,
          // Inner lines may say anything but end the reply: no "xyz " or bare "xyz".
          fc.array(
            fc.oneof(textLine, textLine.map((t) => `${code}-${t}`), fc.constant(" 226 x")),
            { maxLength: 4 },
          ).map((lines) => lines.filter((l) => !(l.startsWith(`${code} `) || l === `${code}`))),
          textLine,
        ).map(([first, inner, last]) => [first, ...inner, last]),
      ),
    })
  );
  await fc.assert(
    fc.asyncProperty(
      fc.array(replyArb, { minLength: 1, maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 17 }), { maxLength: 8 }),
      async (replies, sizes) => {
        const wire = encoder.encode(replies.map((r) => formatReply(r.code, r.lines)).join(""));
        const reader = new BufferedReader(chunkedReader(wire, sizes), { bufferSize: 7 });
        for (const expected of replies) {
          const reply = await readReply(reader);
          // The parser strips a repeated "xyz-" from inner lines.
          const lines = expected.lines.map((line, i) =>
            i > 0 && i < expected.lines.length - 1 && line.startsWith(`${expected.code}-`)
              ? line.slice(4)
              : line
          );
          assert.deepEqual(reply, { code: expected.code, lines });
        }
        assert.equal(await readReply(reader), null);
      },
    ),
    { numRuns: 300 },
  );
});

Deno.test("readReply() refuses what is not a reply, overlong lines, and a reply cut short", async () => {
  const read = (text: string, options = {}) =>
    readReply(new BufferedReader(chunkedReader(encoder.encode(text), [3])), options);
  await assert.rejects(read("HTTP/1.1 200 OK\r\n"), FtpProtocolError);
  await assert.rejects(read("099 too low\r\n"), FtpProtocolError);
  await assert.rejects(read("600 too high\r\n"), FtpProtocolError);
  await assert.rejects(read(`220 ${"x".repeat(9000)}\r\n`), /over 8192 bytes/);
  await assert.rejects(read("220-first\r\nsecond\r\n"), /in the middle of a reply/);
  await assert.rejects(read("211-a\r\n".repeat(20), { maxLines: 10 }), /more than 10 lines/);
  assert.deepEqual(await read("220\r\n"), { code: 220, lines: [""] });
  // The end line needs the same code: "230 " does not end a 220 reply.
  assert.deepEqual(await read("220-a\r\n230 b\r\n220 c\r\n"), {
    code: 220,
    lines: ["a", "230 b", "c"],
  });
});

Deno.test("ReplyParser is a state machine that can be fed line by line", () => {
  const parser = new ReplyParser();
  assert.equal(parser.push("150-Opening"), undefined);
  assert.deepEqual(parser.push("150 data"), { code: 150, lines: ["Opening", "data"] });
  assert.deepEqual(parser.push("226 done"), { code: 226, lines: ["done"] });
  assert.throws(() => parser.push("  226 done"), FtpProtocolError);
});

Deno.test("FtpError says what the server said, and whether it is transient (4yz) or permanent (5yz)", () => {
  const transient = new FtpError("RETR a", { code: 450, lines: ["File busy"] });
  assert.equal(transient.transient, true);
  assert.match(transient.message, /^RETR a: the server answered "450 File busy", a transient/);
  const permanent = new FtpError("RETR a", { code: 550, lines: ["No such file"] });
  assert.equal(permanent.transient, false);
  assert.match(permanent.message, /"550 No such file", a permanent failure/);
  const password = new FtpError("PASS hunter2", { code: 530, lines: ["Login incorrect"] });
  assert.doesNotMatch(password.message, /hunter2/);
  const reuse = new FtpError("RETR a", {
    code: 522,
    lines: ["SSL connection failed: session reuse required"],
  });
  assert.match(reuse.message, /require_ssl_reuse=NO/);
});

// ---------------------------------------------------------------------------
// Small parsers
// ---------------------------------------------------------------------------

Deno.test("parseEpsv() and parsePasv() read ports and addresses; bad ones are refused", () => {
  assert.equal(parseEpsv("Entering Extended Passive Mode (|||6446|)"), 6446);
  assert.equal(parseEpsv("(###1#)"), 1);
  assert.throws(() => parseEpsv("Entering Extended Passive Mode (|||0|)"), FtpProtocolError);
  assert.throws(() => parseEpsv("(|||70000|)"), FtpProtocolError);
  assert.throws(() => parseEpsv("(||6446|)"), FtpProtocolError);
  // RFC 1123 §4.1.2.6: the text around the numbers varies.
  assert.deepEqual(parsePasv("=127,0,0,1,4,1"), { hostname: "127.0.0.1", port: 1025 });
  assert.deepEqual(parsePasv("Entering Passive Mode 192,168,1,2,255,255"), {
    hostname: "192.168.1.2",
    port: 65535,
  });
  assert.throws(() => parsePasv("(1,2,3,4,5)"), FtpProtocolError);
  assert.throws(() => parsePasv("(256,0,0,1,4,1)"), FtpProtocolError);
  assert.throws(() => parsePasv("(127,0,0,1,0,0)"), /port 0/);
});

Deno.test("parseQuotedPath(), parseTimeVal(), parseFtpUrl() and splitWords()", () => {
  assert.equal(parseQuotedPath('"/" is current'), "/");
  assert.equal(parseQuotedPath('"a ""b"" c" created'), 'a "b" c');
  assert.equal(parseQuotedPath("no quotes"), undefined);
  assert.equal(parseTimeVal("20240101120000")?.toISOString(), "2024-01-01T12:00:00.000Z");
  assert.equal(parseTimeVal("20240101120000.123")?.getUTCMilliseconds(), 123);
  assert.equal(parseTimeVal("20230229000000"), undefined); // not a leap year
  assert.equal(parseTimeVal("2024010112"), undefined);
  assert.equal(parseTimeVal("20240101106100"), undefined); // minute 61 is no minute
  assert.equal(parseTimeVal("20240101240000"), undefined);
  assert.equal(parseTimeVal("20161231235960")?.toISOString(), "2016-12-31T23:59:59.000Z"); // a leap second
  assert.deepEqual(parseFtpUrl("ftp://example.test/"), {
    hostname: "example.test",
    port: 21,
    user: "anonymous",
    path: "",
  });
  assert.equal(parseFtpUrl("ftp://h/%2Fetc/x").path, "/etc/x");
  assert.throws(() => parseFtpUrl("ftp://bob:secret@h/"), /password in the URL/);
  assert.throws(() => parseFtpUrl("http://h/"), /not an ftp:\/\/ URL/);
  assert.throws(() => parseFtpUrl("ftp://h/%E0%A4%A"), /percent-encoding/);
  assert.deepEqual(splitWords(` get  "a b"  'c "d"' e `), ["get", "a b", 'c "d"', "e"]);
});

Deno.test("checkArgument() refuses every string holding CR, LF or NUL, and nothing else (property)", () => {
  fc.assert(
    fc.property(
      fc.string(),
      fc.constantFrom("\r", "\n", "\0", "\r\n"),
      fc.string(),
      (a, eol, b) => {
        assert.throws(() => checkArgument(a + eol + b), /command injection/);
      },
    ),
  );
  fc.assert(
    fc.property(fc.string().filter((s) => !/[\r\n\0]/.test(s)), (s) => {
      assert.equal(checkArgument(s), s);
    }),
  );
});

Deno.test("TYPE A line ends: CRLF <-> LF, the same however the bytes are split (property)", () => {
  const convert = (bytes: Uint8Array, cuts: number[], make: () => FromNetworkText) => {
    const converter = make();
    const parts: number[] = [];
    let at = 0;
    for (const cut of [...cuts.map((c) => c % (bytes.length + 1)).sort((a, b) => a - b)]) {
      parts.push(...converter.push(bytes.subarray(at, Math.max(at, cut))));
      at = Math.max(at, cut);
    }
    parts.push(...converter.push(bytes.subarray(at)), ...converter.flush());
    return parts;
  };
  fc.assert(
    fc.property(
      fc.uint8Array({ maxLength: 200 }).map((b) => b.map((x) => [10, 13, 65][x % 3])),
      fc.array(fc.nat(), { maxLength: 6 }),
      (bytes, cuts) => {
        const whole = convert(bytes, [], () => new FromNetworkText());
        assert.deepEqual(convert(bytes, cuts, () => new FromNetworkText()), whole);
        // Local text (no CR) survives the trip to the network and back.
        const local = bytes.filter((b) => b !== 13);
        const network = new ToNetworkText().push(local);
        assert.ok(network.every((b, i) => b !== 10 || network[i - 1] === 13));
        assert.deepEqual(convert(network, cuts, () => new FromNetworkText()), [...local]);
      },
    ),
  );
});

Deno.test("progressMeter(): a redrawn bar with rate and ETA on a terminal, plain quarter lines otherwise", () => {
  const drawn: string[] = [];
  const bar = progressMeter(4 * MIB, (text) => drawn.push(text), true);
  bar(MIB);
  bar(2 * MIB); // within 100 ms of the last redraw: skipped
  bar(4 * MIB, true);
  assert.equal(drawn.length, 2);
  assert.match(drawn[0], /^\r\[#{8}\.{22}\]  25% 1\.0\/4\.0 MiB, [\d.]+ MiB\/s, ETA \d+ s$/);
  assert.match(drawn[1], /^\r\[#{30}\] 100% 4\.0\/4\.0 MiB, .*ETA 0 s\n$/);

  const lines: string[] = [];
  const plain = progressMeter(4 * MIB, (text) => lines.push(text), false);
  for (let sent = 0; sent <= 4 * MIB; sent += MIB / 4) plain(sent);
  plain(4 * MIB, true);
  assert.deepEqual(lines.map((line) => line.slice(0, 4)), [" 25%", " 50%", " 75%", "100%"]);
  assert.ok(lines.every((line) => !line.includes("\r") && line.endsWith("\n")));

  const unknown: string[] = [];
  const noTotal = progressMeter(undefined, (text) => unknown.push(text), false);
  noTotal(MIB);
  noTotal(3 * MIB, true);
  assert.equal(unknown.length, 1);
  assert.match(unknown[0], /^3\.0 MiB, [\d.]+ MiB\/s\n$/);
});

// ---------------------------------------------------------------------------
// Listings
// ---------------------------------------------------------------------------

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const NOW = new Date(Date.UTC(2024, 4, 15, 12, 0)); // 15 May 2024, noon UTC
const pad2 = (n: number) => String(n).padStart(2, "0");
const nameArb = fc.string({ minLength: 1, maxLength: 30, unit: "grapheme" })
  .filter((s) => !/[\r\n]/.test(s));

Deno.test("parseUnixListLine() reads back every line ls -l would print (property)", () => {
  const entryArb = fc.record({
    kind: fc.constantFrom("-", "d", "l"),
    permissions: fc.stringMatching(/^[-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT]$/),
    links: fc.integer({ min: 1, max: 99999 }),
    owner: fc.stringMatching(/^[a-z0-9_][a-z0-9_-]{0,11}$/),
    group: fc.option(fc.stringMatching(/^[a-z0-9_][a-z0-9_-]{0,11}$/), { nil: undefined }),
    size: fc.maxSafeNat(),
    // Recent files show the time (within six months before NOW), older ones the year.
    recent: fc.boolean(),
    minutesAgo: fc.integer({ min: 0, max: 180 * 24 * 60 }),
    old: fc.date({ min: new Date("1970-01-01"), max: new Date("2023-10-01"), noInvalidDate: true }),
    name: nameArb,
    target: nameArb,
  }).filter((e) => e.kind !== "l" || !e.name.includes(" -> "));
  fc.assert(
    fc.property(entryArb, (e) => {
      const date = e.recent
        ? new Date(Math.floor((NOW.getTime() - e.minutesAgo * 60_000) / 60_000) * 60_000)
        : new Date(Date.UTC(e.old.getUTCFullYear(), e.old.getUTCMonth(), e.old.getUTCDate()));
      const when = `${MONTHS[date.getUTCMonth()]} ${String(date.getUTCDate()).padStart(2)} ` +
        (e.recent
          ? `${pad2(date.getUTCHours())}:${pad2(date.getUTCMinutes())}`
          : ` ${date.getUTCFullYear()}`);
      const name = e.kind === "l" ? `${e.name} -> ${e.target}` : e.name;
      const line =
        `${e.kind}${e.permissions} ${String(e.links).padStart(3)} ${e.owner.padEnd(8)} ` +
        `${e.group === undefined ? "" : e.group.padEnd(8) + " "}${String(e.size).padStart(8)} ` +
        `${when} ${name}`;
      const entry = parseUnixListLine(line, NOW);
      assert.ok(entry, line);
      assert.equal(entry.name, e.name, line);
      assert.equal(entry.type, { "-": "file", d: "dir", l: "link" }[e.kind]);
      assert.equal(entry.size, e.size);
      assert.equal(entry.permissions, e.permissions);
      assert.equal(entry.modified?.getTime(), date.getTime(), line);
      assert.equal(entry.target, e.kind === "l" ? e.target : undefined);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("parseDosListLine() reads back every line IIS would print (property)", () => {
  const entryArb = fc.record({
    date: fc.date({
      min: new Date("1970-01-01"),
      max: new Date("2069-12-31T23:59:00Z"),
      noInvalidDate: true,
    }),
    fourDigitYear: fc.boolean(),
    twelveHour: fc.boolean(),
    dir: fc.boolean(),
    size: fc.maxSafeNat(),
    name: nameArb.filter((s) => /^\S/.test(s)),
  });
  fc.assert(
    fc.property(entryArb, (e) => {
      const d = new Date(Math.floor(e.date.getTime() / 60_000) * 60_000);
      const year = e.fourDigitYear ? String(d.getUTCFullYear()) : pad2(d.getUTCFullYear() % 100);
      const h = d.getUTCHours();
      const time = e.twelveHour
        ? `${pad2(h % 12 === 0 ? 12 : h % 12)}:${pad2(d.getUTCMinutes())}${h < 12 ? "AM" : "PM"}`
        : `${pad2(h)}:${pad2(d.getUTCMinutes())}`;
      const what = e.dir ? "<DIR>         " : String(e.size).padStart(20);
      const line = `${pad2(d.getUTCMonth() + 1)}-${pad2(d.getUTCDate())}-${year}  ${time} ` +
        `${what} ${e.name}`;
      const entry = parseDosListLine(line);
      assert.ok(entry, line);
      assert.equal(entry.name, e.name);
      assert.equal(entry.type, e.dir ? "dir" : "file");
      assert.equal(entry.size, e.dir ? undefined : e.size);
      assert.equal(entry.modified?.getTime(), d.getTime(), line);
    }),
    { numRuns: 2000 },
  );
});

Deno.test("parseMlsdLine() reads back any facts and any name (property)", () => {
  const caseOf = (name: string, upper: boolean[]) =>
    [...name].map((c, i) => upper[i % upper.length] ? c.toUpperCase() : c).join("");
  const entryArb = fc.record({
    type: fc.constantFrom("file", "dir", "cdir", "pdir", "OS.unix=slink:/x/y", "OS.unix=chr-1/3"),
    size: fc.option(fc.maxSafeNat(), { nil: undefined }),
    modify: fc.option(
      fc.date({ min: new Date("1970-01-01"), max: new Date("2999-12-31"), noInvalidDate: true }),
      { nil: undefined },
    ),
    withMs: fc.boolean(),
    perm: fc.option(fc.stringMatching(/^[adfrwelcmp]{0,8}$/), { nil: undefined }),
    upper: fc.array(fc.boolean(), { minLength: 1, maxLength: 5 }),
    name: nameArb, // spaces, ';' and '=' included
  });
  fc.assert(
    fc.property(entryArb, (e) => {
      const facts: [string, string][] = [["type", e.type]];
      if (e.size !== undefined) facts.push(["size", String(e.size)]);
      const modified = e.modify &&
        new Date(Math.floor(e.modify.getTime() / (e.withMs ? 1 : 1000)) * (e.withMs ? 1 : 1000));
      if (modified) {
        const iso = modified.toISOString();
        facts.push([
          "modify",
          iso.slice(0, 19).replace(/[-:T]/g, "") + (e.withMs ? `.${iso.slice(20, 23)}` : ""),
        ]);
      }
      if (e.perm !== undefined) facts.push(["perm", e.perm]);
      const line = facts.map(([k, v]) => `${caseOf(k, e.upper)}=${v};`).join("") + ` ${e.name}`;
      const entry = parseMlsdLine(line);
      assert.ok(entry, line);
      assert.equal(entry.name, e.name);
      assert.equal(entry.size, e.size);
      assert.equal(entry.modified?.getTime(), modified?.getTime());
      const expected = e.type === "file"
        ? "file"
        : ["dir", "cdir", "pdir"].includes(e.type)
        ? "dir"
        : e.type.includes("slink")
        ? "link"
        : "other";
      assert.equal(entry.type, expected);
      assert.equal(entry.facts?.type, e.type);
      if (expected === "link") assert.equal(entry.target, "/x/y");
    }),
    { numRuns: 2000 },
  );
});

// Realistic lines with at most one field broken: random text is almost never
// shaped like a listing line, so it never reaches the date and size code.
// These do: an intact line parses to what it says; a time or date out of
// range is refused (LIST) or left out (MLSD); nothing ever throws.
const BROKEN = ["none", "hour", "minute", "day", "month", "size", "missing"] as const;
type Broken = (typeof BROKEN)[number];
const listingParts = {
  broken: fc.constantFrom(...BROKEN),
  name: fc.stringMatching(/^[A-Za-z0-9_.][A-Za-z0-9_. -]{0,19}$/),
  dir: fc.boolean(),
  size: fc.integer({ min: 0, max: 2 ** 40 }),
  month: fc.integer({ min: 0, max: 11 }),
  day: fc.integer({ min: 1, max: 28 }),
  hour: fc.integer({ min: 0, max: 23 }),
  minute: fc.integer({ min: 0, max: 59 }),
  // What a broken field holds instead.
  badHour: fc.integer({ min: 24, max: 99 }),
  badMinute: fc.integer({ min: 60, max: 99 }),
  badDay: fc.oneof(fc.constant(0), fc.integer({ min: 32, max: 99 })),
  badMonth: fc.oneof(fc.constant(0), fc.integer({ min: 13, max: 99 })),
  hugeSize: fc.stringMatching(/^[1-9][0-9]{19,400}$/),
  missing: fc.nat(),
};

/** Drop one space-separated field (from the first `count`) when `broken` says so. */
function dropField(fields: string[], broken: Broken, which: number, count: number): string {
  if (broken === "missing") fields.splice(which % count, 1);
  return fields.join(" ");
}

Deno.test("the listing parsers never throw, whatever the line (property)", () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 120 }), (line) => {
      parseListLine(line, NOW);
      parseMlsdLine(line);
    }),
    { numRuns: 3000 },
  );

  // ls -l: "-rw-r--r-- 1 owner group 1234 Mar  5 14:07 name" (or a year for the time).
  const unix = fc.record({
    ...listingParts,
    perms: fc.stringMatching(/^[-r][-w][-xsS][-r][-w][-xsS][-r][-w][-xtT]$/),
    links: fc.integer({ min: 1, max: 999 }),
    owner: fc.stringMatching(/^[a-z][a-z0-9]{0,7}$/),
    group: fc.stringMatching(/^[a-z][a-z0-9]{0,7}$/),
    year: fc.option(fc.integer({ min: 1970, max: 2037 }), { nil: undefined }),
    badMonthName: fc.constantFrom("Foo", "Jux", "Dek", "Mai", "13"),
  });
  fc.assert(
    fc.property(unix, (u) => {
      const b = u.broken;
      const year = b === "hour" || b === "minute" ? undefined : u.year;
      const hour = b === "hour" ? u.badHour : u.hour;
      const minute = b === "minute" ? u.badMinute : u.minute;
      const line = dropField(
        [
          `${u.dir ? "d" : "-"}${u.perms}`,
          String(u.links),
          u.owner,
          u.group,
          b === "size" ? u.hugeSize : String(u.size),
          b === "month" ? u.badMonthName : MONTHS[u.month],
          String(b === "day" ? u.badDay : u.day).padStart(2),
          year === undefined ? `${pad2(hour)}:${pad2(minute)}` : ` ${year}`,
        ],
        b,
        u.missing,
        8,
      ) + ` ${u.name}`;
      const entry = parseListLine(line, NOW);
      parseUnixListLine(line, NOW);
      if (["hour", "minute", "day", "month"].includes(b)) assert.equal(entry, undefined, line);
      if (b === "size") assert.equal(entry?.name, u.name, line);
      if (b !== "none") return;
      assert.ok(entry, line);
      assert.equal(entry.name, u.name);
      assert.equal(entry.type, u.dir ? "dir" : "file");
      assert.equal(entry.size, u.size);
      // A time and no year: this year, unless that is more than a day ahead of NOW.
      const thisYear = Date.UTC(2024, u.month, u.day, u.hour, u.minute);
      assert.equal(
        entry.modified?.getTime(),
        year !== undefined
          ? Date.UTC(year, u.month, u.day)
          : thisYear > NOW.getTime() + 86_400_000
          ? Date.UTC(2023, u.month, u.day, u.hour, u.minute)
          : thisYear,
        line,
      );
    }),
    { numRuns: 3000 },
  );

  // DOS/IIS: "03-05-24  02:07PM       <DIR>          name", or a size, or a 24-hour time.
  const dos = fc.record({
    ...listingParts,
    year: fc.integer({ min: 1970, max: 2069 }),
    shortYear: fc.boolean(),
    twelveHour: fc.boolean(),
  });
  fc.assert(
    fc.property(dos, (d) => {
      const b = d.broken;
      let clock: string;
      if (b === "hour") clock = `${pad2(d.badHour)}:${pad2(d.minute)}${d.twelveHour ? "PM" : ""}`;
      else if (d.twelveHour) {
        const half = d.hour < 12 ? "AM" : "PM";
        clock = `${pad2(d.hour % 12 || 12)}:${
          pad2(b === "minute" ? d.badMinute : d.minute)
        }${half}`;
      } else clock = `${pad2(d.hour)}:${pad2(b === "minute" ? d.badMinute : d.minute)}`;
      const date = [
        pad2(b === "month" ? d.badMonth : d.month + 1),
        pad2(b === "day" ? d.badDay : d.day),
        d.shortYear ? pad2(d.year % 100) : String(d.year),
      ].join("-");
      const size = d.dir
        ? "<DIR>         "
        : (b === "size" ? d.hugeSize : String(d.size)).padStart(20);
      const line = dropField([date, ` ${clock}`, size], b, d.missing, 3) + ` ${d.name}`;
      const entry = parseListLine(line, NOW);
      parseDosListLine(line);
      if (["hour", "minute", "day", "month"].includes(b)) assert.equal(entry, undefined, line);
      if (b === "size") assert.equal(entry?.name, d.name, line);
      if (b !== "none") return;
      assert.ok(entry, line);
      assert.equal(entry.name, d.name);
      assert.equal(entry.type, d.dir ? "dir" : "file");
      assert.equal(entry.size, d.dir ? undefined : d.size);
      assert.equal(
        entry.modified?.getTime(),
        Date.UTC(d.year, d.month, d.day, d.hour, d.minute),
        line,
      );
    }),
    { numRuns: 3000 },
  );

  // MLSD: "type=file;size=1234;modify=20240305140700; name".
  const mlsd = fc.record({
    ...listingParts,
    year: fc.integer({ min: 1970, max: 2100 }),
    second: fc.integer({ min: 0, max: 59 }),
  });
  fc.assert(
    fc.property(mlsd, (m) => {
      const b = m.broken;
      const modify = String(m.year) +
        pad2(b === "month" ? m.badMonth : m.month + 1) +
        pad2(b === "day" ? m.badDay : m.day) +
        pad2(b === "hour" ? m.badHour : m.hour) +
        pad2(b === "minute" ? m.badMinute : m.minute) +
        pad2(m.second);
      const facts = [
        `type=${m.dir ? "dir" : "file"};`,
        `size=${b === "size" ? m.hugeSize : m.size};`,
        `modify=${modify};`,
      ];
      if (b === "missing") facts.splice(m.missing % facts.length, 1);
      const line = `${facts.join("")} ${m.name}`;
      const entry = parseMlsdLine(line);
      assert.ok(entry, line);
      assert.equal(entry.name, m.name);
      if (["hour", "minute", "day", "month"].includes(b)) {
        assert.equal(entry.modified, undefined, line);
      }
      if (b !== "none") return;
      assert.equal(entry.type, m.dir ? "dir" : "file");
      assert.equal(entry.size, m.size);
      assert.equal(
        entry.modified?.getTime(),
        Date.UTC(m.year, m.month, m.day, m.hour, m.minute, m.second),
        line,
      );
    }),
    { numRuns: 3000 },
  );
});

Deno.test("parseListLine() on real servers' lines: vsftpd, pyftpdlib, ProFTPD, IIS, devices, ACLs", () => {
  const cases: [string, Partial<ListEntry> | undefined][] = [
    ["-rw-r--r--    1 0        0               6 Nov 22 13:46 a.txt", {
      name: "a.txt",
      type: "file",
      size: 6,
    }],
    ["drwxr-xr-x   2 root     root         4096 Jan 05  2021 pub", { name: "pub", type: "dir" }],
    ["-rw-r--r--   1 ftp      ftp            12 May 01 09:00 with  two spaces ", {
      name: "with  two spaces ",
    }],
    ["lrwxrwxrwx   1 user group   11 Feb 29  2020 current -> releases/v2", {
      name: "current",
      type: "link",
      target: "releases/v2",
    }],
    ["crw-rw-rw-   1 root     root       1,   3 Apr 10  2019 null", {
      name: "null",
      type: "other",
      size: undefined,
    }],
    ["-rw-r--r--+  1 alice    staff       100 Mar  3 10:15 acl.txt", { name: "acl.txt" }],
    ["-rw-r--r--   1 alice      100 Mar  3 10:15 no-group.txt", {
      name: "no-group.txt",
      size: 100,
    }],
    ["02-29-24  12:05AM       <DIR>          Program Files", {
      name: "Program Files",
      type: "dir",
    }],
    ["11-22-2023  11:59PM              1048576 big.iso", {
      size: 1048576,
      modified: new Date("2023-11-22T23:59:00Z"),
    }],
    ["total 24", undefined],
    ["", undefined],
    ["-rw-r--r-- 1 a b 5 Foo 1 12:00 bad-month", undefined],
    ["02-30-24  10:00AM 5 not-a-day", undefined],
  ];
  for (const [line, expected] of cases) {
    const entry = parseListLine(line, NOW);
    if (expected === undefined) {
      assert.equal(entry, undefined, line);
      continue;
    }
    assert.ok(entry, line);
    for (const [key, value] of Object.entries(expected)) {
      assert.deepEqual(entry[key as keyof ListEntry], value, `${line}: ${key}`);
    }
  }
  // A time without a year is the last six months': "Dec" in May is last December.
  assert.equal(
    parseUnixListLine("-rw-r--r-- 1 a b 1 Dec 31 23:59 x", NOW)?.modified?.toISOString(),
    "2023-12-31T23:59:00.000Z",
  );
  assert.match(
    formatEntry(parseListLine("drwxr-xr-x 2 a b 4096 Jan 05  2021 pub")!),
    /^d .* pub\/$/,
  );
});

// ---------------------------------------------------------------------------
// A scripted server: the test plays the server, one reply at a time
// ---------------------------------------------------------------------------

/** One client's session, with the test speaking for the server. */
class Script {
  readonly heard: string[] = [];
  #reader: BufferedReader;
  #opened: { close(): void }[] = [];

  constructor(readonly conn: Deno.Conn) {
    this.#reader = new BufferedReader(conn);
  }

  /** Send lines (CRLF added to each). */
  async say(...lines: string[]): Promise<void> {
    await writeAll(this.conn, encoder.encode(lines.map((line) => `${line}\r\n`).join("")));
  }

  /** The next command the client sends. */
  async hear(): Promise<string> {
    const line = await this.#reader.readLine();
    if (line === null) throw new Error("the client hung up");
    const text = decoder.decode(line);
    this.heard.push(text);
    return text;
  }

  /** Expect a command (a prefix of it), then answer. */
  async expect(prefix: string, ...reply: string[]): Promise<string> {
    const line = await this.hear();
    assert.ok(line.startsWith(prefix), `expected ${prefix}, heard ${line}`);
    if (reply.length) await this.say(...reply);
    return line;
  }

  /** A data listener on loopback, closed with the session. */
  listen(): Deno.TcpListener {
    const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    this.#opened.push(listener);
    return listener;
  }

  /** Answer EPSV with a new listener, and accept the client's connection. */
  async epsv(): Promise<Deno.Conn> {
    const listener = this.listen();
    await this.expect("EPSV", `229 Entering Extended Passive Mode (|||${listener.addr.port}|)`);
    const conn = await listener.accept();
    this.#opened.push(conn);
    return conn;
  }

  close(): void {
    for (const resource of [...this.#opened, this.conn]) {
      try {
        resource.close();
      } catch { /* closed */ }
    }
  }
}

/**
 * Run `server` as the server for one connection, and `client` against it;
 * both must finish. Login is anonymous and scripted unless `login` is false.
 */
async function scripted(
  server: (script: Script) => Promise<void>,
  client: (port: number) => Promise<void>,
): Promise<string[]> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  let script: Script | undefined;
  const serving = (async () => {
    script = new Script(await listener.accept());
    await server(script);
  })();
  try {
    await Promise.all([serving, client(listener.addr.port)]);
    return script?.heard ?? [];
  } finally {
    script?.close();
    listener.close();
  }
}

async function anonymousLogin(script: Script): Promise<void> {
  await script.say("220 scripted");
  await script.expect("USER anonymous", "331 password please");
  await script.expect("PASS", "230 in");
}

async function connectAndLogin(port: number, options = {}): Promise<FtpClient> {
  const client = await FtpClient.connect({ port, timeout: 5000, ...options });
  await client.login();
  return client;
}

const PAYLOAD = randomBytes(300_000);

function collector() {
  const parts: Uint8Array[] = [];
  return {
    sink: {
      write(chunk: Uint8Array) {
        parts.push(chunk.slice());
        return Promise.resolve(chunk.length);
      },
    },
    bytes: () => {
      const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
      let at = 0;
      for (const part of parts) {
        out.set(part, at);
        at += part.length;
      }
      return out;
    },
  };
}

for (const order of ["226 first, then the data", "the data first, then 226"]) {
  Deno.test(`a download is done only when both the data has ended and 226 has come: ${order}`, async () => {
    const got = collector();
    let sent226 = false;
    await scripted(async (s) => {
      await anonymousLogin(s);
      await s.expect("TYPE I", "200 binary");
      const data = await s.epsv();
      await s.expect("RETR file.bin", "150 here it comes");
      if (order.startsWith("226")) {
        sent226 = true;
        await s.say("226 all sent"); // the client must still read every byte
        await sleep(50);
      }
      for (let at = 0; at < PAYLOAD.length; at += 50_000) {
        await writeAll(data, PAYLOAD.subarray(at, at + 50_000));
        await sleep(5);
      }
      data.close();
      if (!order.startsWith("226")) {
        await sleep(100); // the client must wait for the 226
        sent226 = true;
        await s.say("226 all sent");
      }
      await s.expect("PWD", '257 "/pub" is the current folder');
      await s.expect("QUIT", "221 bye");
    }, async (port) => {
      const client = await connectAndLogin(port);
      assert.equal(await client.download("file.bin", got.sink), PAYLOAD.length);
      // Not done on the data's end alone: the server's 226 had been sent.
      assert.ok(sent226, "download() resolved before the server sent its 226");
      // And the 226 was read as the download's: the next command gets its own reply.
      assert.equal(await client.pwd(), "/pub");
      await client.quit();
    });
    assert.deepEqual(got.bytes(), PAYLOAD);
  });
}

Deno.test("a download whose data ends but whose final reply is 451 rejects with the server's words", async () => {
  const got = collector();
  await scripted(async (s) => {
    await anonymousLogin(s);
    await s.expect("TYPE I", "200 binary");
    const data = await s.epsv();
    await s.expect("RETR file.bin", "150 here it comes");
    await writeAll(data, PAYLOAD.subarray(0, 10_000));
    data.close(); // the data ends as a complete file's would...
    await sleep(50);
    await s.say("451 local disk error, file incomplete"); // ...but the server says it is not
    await s.expect("QUIT", "221 bye");
  }, async (port) => {
    const client = await connectAndLogin(port);
    await assert.rejects(client.download("file.bin", got.sink), (error: FtpError) => {
      assert.ok(error instanceof FtpError, String(error));
      assert.equal(error.code, 451);
      assert.match(error.message, /451 local disk error, file incomplete/);
      return true;
    });
    await client.quit();
  });
});

Deno.test("EPSV refused (502): PASV, and the address in its reply is not trusted", async () => {
  const log: string[] = [];
  const heard = await scripted(async (s) => {
    await anonymousLogin(s);
    await s.expect("EPSV", "502 EPSV not implemented");
    const listener = s.listen();
    const { port } = listener.addr;
    // The reply names a host on another network: the client must come to us anyway.
    await s.expect("PASV", `227 Entering Passive Mode (10,9,8,7,${port >> 8},${port & 255}).`);
    const data = await listener.accept();
    await s.expect("NLST", "150 names");
    await writeAll(data, encoder.encode("a.txt\r\nb c.txt\r\n"));
    data.close();
    await s.say("226 done");
    // The next listing goes straight to PASV: EPSV is not asked again.
    await s.expect("PASV", "425 no more");
    await s.expect("QUIT", "221 bye");
  }, async (port) => {
    const client = await connectAndLogin(port, { log: (line: string) => log.push(line) });
    assert.deepEqual(await client.nlst(), ["a.txt", "b c.txt"]);
    await assert.rejects(client.nlst(), (error: FtpError) => error.code === 425 && error.transient);
    await client.quit();
  });
  assert.ok(heard.includes("EPSV") && heard.filter((c) => c === "PASV").length === 2);
  assert.ok(log.some((line) => /PASV named 10\.9\.8\.7; connecting to 127\.0\.0\.1/.test(line)));
});

Deno.test("a multi-line greeting, and every reply class: 4yz and 5yz errors carry the server's text", async () => {
  await scripted(async (s) => {
    await s.say("220-Welcome", "220-Rules:", " 220 is not the end", "123 nor is this", "220 ready");
    await s.expect("USER anonymous", "331 password please");
    await s.expect("PASS", "230-Logged in.", "230 Enjoy.");
    await s.expect("CWD busy", "450 Folder busy, try later");
    await s.expect("CWD nope", "550 No such folder");
    await s.expect("MKD x", "150 odd: a mark first", '257 "/x" created');
    await s.expect("RNFR a", "350 ready for RNTO");
    await s.expect("RNTO b", "553 Name not allowed");
    await s.expect("QUIT", "221 bye");
  }, async (port) => {
    const client = await connectAndLogin(port);
    assert.deepEqual(client.greeting.lines, [
      "Welcome",
      "Rules:",
      " 220 is not the end",
      "123 nor is this",
      "ready",
    ]);
    await assert.rejects(client.cwd("busy"), (error: FtpError) => {
      assert.equal(error.transient, true);
      assert.match(error.message, /"450 Folder busy, try later", a transient failure/);
      return true;
    });
    await assert.rejects(client.cwd("nope"), /"550 No such folder", a permanent failure/);
    assert.equal(await client.mkdir("x"), "/x");
    await assert.rejects(client.rename("a", "b"), /RNTO b: .*553 Name not allowed/);
    await client.quit();
  });
});

Deno.test("CR or LF in a name is refused before anything is sent", async () => {
  const heard = await scripted(async (s) => {
    await anonymousLogin(s);
    await s.expect("NOOP", "200 ok"); // the very next thing the server hears
    await s.expect("QUIT", "221 bye");
  }, async (port) => {
    const client = await connectAndLogin(port);
    await assert.rejects(client.delete("a.txt\r\nDELE important.txt"), /command injection/);
    await assert.rejects(client.rename("x", "y\nRMD /"), TypeError);
    await assert.rejects(client.download("z\r", collector().sink), TypeError);
    await assert.rejects(client.command("NOOP\r\nDELE x"), TypeError);
    await client.noop();
    await client.quit();
  });
  assert.ok(heard.every((line) => !line.includes("DELE") && !line.includes("RMD")));
});

Deno.test("a server that goes silent: the reply timeout fires and names what was awaited", async () => {
  await scripted(async (s) => {
    await s.say("220 hello");
    await s.hear(); // USER, never answered
    await s.hear().catch(() => {}); // until the client hangs up
  }, async (port) => {
    const client = await FtpClient.connect({ port, timeout: 300 });
    await assert.rejects(client.login(), (error: Error) => {
      assert.equal(error.name, "TimeoutError");
      assert.match(error.message, /no reply to USER within 0.3 s/);
      return true;
    });
    await assert.rejects(client.noop(), /closed/); // the session is over
  });
});

Deno.test("a stalled data connection is abandoned after --data-timeout", async () => {
  await scripted(async (s) => {
    await anonymousLogin(s);
    await s.expect("TYPE I", "200 binary");
    const data = await s.epsv();
    await s.expect("RETR slow", "150 here it comes");
    await writeAll(data, PAYLOAD.subarray(0, 1000));
    // ... and nothing more. The client closes the data connection:
    assert.equal(await data.read(new Uint8Array(10)), null);
    await s.say("426 Connection closed; transfer aborted");
    await s.expect("QUIT", "221 bye");
  }, async (port) => {
    const client = await connectAndLogin(port, { dataTimeout: 300 });
    const got = collector();
    await assert.rejects(
      client.download("slow", got.sink),
      /the data connection stalled: no progress for 0.3 s; allow longer with --data-timeout/,
    );
    assert.equal(got.bytes().length, 1000);
    await client.quit();
  });
});

Deno.test("a server that gives up mid-transfer (451): its words are the error, the data connection is closed", async () => {
  await scripted(async (s) => {
    await anonymousLogin(s);
    await s.expect("TYPE I", "200 binary");
    const data = await s.epsv();
    await s.expect("STOR up.bin", "150 go ahead");
    const buffer = new Uint8Array(65536);
    await data.read(buffer);
    await s.say("451 Local error: disk full");
    // The client stops sending and closes its end.
    while (await data.read(buffer) !== null) { /* drain */ }
    await s.expect("QUIT", "221 bye");
  }, async (port) => {
    const client = await connectAndLogin(port);
    const endless = { read: (buffer: Uint8Array) => Promise.resolve(buffer.length) };
    await assert.rejects(client.upload("up.bin", endless), /451 Local error: disk full/);
    await client.quit();
  });
});

peerTest(
  "active mode: a data connection from another address is hung up on (port stealing, RFC 2577 §8)",
  [PEERS.python3],
  async () => {
    const log: string[] = [];
    const got = collector();
    let thief: Deno.ChildProcess | undefined;
    await scripted(async (s) => {
      await anonymousLogin(s);
      await s.expect("TYPE I", "200 binary");
      const port = Number((await s.hear()).match(/^EPRT \|1\|127\.0\.0\.1\|(\d+)\|$/)![1]);
      // Someone on another address (all of 127.0.0.0/8 is loopback on Linux;
      // Python, as the tests may not bind 127.0.0.2) connects to the client's
      // port first, with a file of their own.
      thief = new Deno.Command(PYTHON, {
        args: [
          "-c",
          `import socket; s = socket.socket(); s.settimeout(5); s.bind(("127.0.0.2", 0)); ` +
          `s.connect(("127.0.0.1", ${port})); s.sendall(b"FORGED CONTENT\\n"); ` +
          `print("connected", flush=True); s.recv(100)`,
        ],
        stdout: "piped",
        stderr: "null",
      }).spawn();
      const output = thief.stdout.pipeThrough(new TextDecoderStream()).getReader();
      assert.match((await output.read()).value ?? "", /^connected/);
      await output.cancel();
      await s.say("200 EPRT ok");
      await s.expect("RETR hello.txt", "150 here it comes");
      const data = await Deno.connect({ hostname: "127.0.0.1", port });
      await writeAll(data, encoder.encode("the real file\n"));
      data.close();
      await s.say("226 done");
      await s.expect("QUIT", "221 bye");
    }, async (port) => {
      const client = await connectAndLogin(port, {
        active: true,
        log: (line: string) => log.push(line),
      });
      await client.download("hello.txt", got.sink);
      await client.quit();
    });
    await thief?.status;
    assert.equal(decoder.decode(got.bytes()), "the real file\n");
    assert.ok(log.some((line) => /refused a data connection from 127\.0\.0\.2/.test(line)));
  },
);

Deno.test("AUTH TLS: bytes sent after 234 and before the handshake are refused (injection)", async () => {
  await scripted(async (s) => {
    await s.say("220 hello");
    await s.expect("AUTH TLS");
    await s.conn.write(encoder.encode("234 go ahead\r\n230 injected before TLS\r\n"));
    await s.hear().catch(() => {});
  }, async (port) => {
    await assert.rejects(
      FtpClient.connect({ port, tls: true, timeout: 5000 }),
      /sent bytes after 234 and before the TLS handshake/,
    );
  });
});

Deno.test("a refusal at the door (421) and a server that is not FTP are one clear error each", async () => {
  await scripted(async (s) => {
    await s.say("421 Too many connections (100); try later");
  }, async (port) => {
    await assert.rejects(FtpClient.connect({ port }), /421 Too many connections/);
  });
  await scripted(async (s) => {
    await s.say("HTTP/1.1 400 Bad Request");
  }, async (port) => {
    await assert.rejects(FtpClient.connect({ port }), /not an FTP reply/);
  });
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  await assert.rejects(FtpClient.connect({ port }), (error: Error) => {
    assert.match(error.message, new RegExp(`cannot connect to ftp://127.0.0.1:${port}`));
    assert.ok(error.cause instanceof Deno.errors.ConnectionRefused);
    return true;
  });
});

// ---------------------------------------------------------------------------
// Against scripts/ftp_server.ts, in this process
// ---------------------------------------------------------------------------

async function withOwnServer(
  fn: (port: number) => Promise<void>,
  options: { tls?: { cert: string; key: string } } = {},
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const server = serveFtp(listener, {
    fs: new MemoryFileSystem({ "pub/hello.txt": "hello\n", "notes.txt": "one\ntwo\n" }),
    users: { alice: "wonderland" },
    log: () => {},
    signal: stop.signal,
    // Bounds the wait for a session stuck in a TLS handshake whose client has gone
    // (the server notices only at this timeout; see the report).
    dataTimeout: 10_000,
    ...options,
  });
  try {
    await fn(listener.addr.port);
  } finally {
    stop.abort();
    await server;
  }
}

for (const mode of ["EPSV", "PASV", "active (EPRT)"]) {
  Deno.test(`scripts/ftp_server.ts: list, put, get, resume, rename, delete, folders, in ${mode} mode`, async () => {
    await withOwnServer(async (port) => {
      const client = await FtpClient.connect({
        port,
        pasv: mode === "PASV",
        active: mode.startsWith("active"),
      });
      try {
        await client.login("alice", "wonderland");
        assert.match(await client.system(), /UNIX/);
        assert.ok((await client.features()).has("MLST"));
        assert.equal(await client.pwd(), "/");
        const data = randomBytes(2 * MIB + 17);
        let offset = 0;
        const reader = {
          read(buffer: Uint8Array) {
            if (offset >= data.length) return Promise.resolve(null);
            const n = Math.min(buffer.length, data.length - offset);
            buffer.set(data.subarray(offset, offset + n));
            offset += n;
            return Promise.resolve(n);
          },
        };
        assert.equal(await client.upload("up.bin", reader), data.length);
        assert.equal(await client.size("up.bin"), data.length);
        assert.ok((await client.modified("up.bin")).getTime() > Date.now() - 60_000);
        const got = collector();
        await client.download("up.bin", got.sink);
        assert.equal(await sha256(got.bytes()), await sha256(data));
        const tail = collector();
        await client.download("up.bin", tail.sink, { offset: MIB });
        assert.deepEqual(tail.bytes(), data.subarray(MIB));
        assert.equal(await client.mkdir("box"), "/box");
        await client.rename("up.bin", "box/moved.bin");
        await client.cwd("box");
        assert.deepEqual((await client.list()).map((e) => [e.name, e.type, e.size]), [
          ["moved.bin", "file", data.length],
        ]);
        const lines = await client.listLines("LIST");
        assert.deepEqual(lines.map((line) => parseListLine(line)?.name), ["moved.bin"]);
        await client.delete("moved.bin");
        await client.cdup();
        await client.rmdir("box");
        assert.deepEqual((await client.nlst()).sort(), ["notes.txt", "pub"]);
        const text = collector();
        await client.download("notes.txt", text.sink, { ascii: true });
        assert.equal(decoder.decode(text.bytes()), "one\ntwo\n");
        await assert.rejects(client.download("missing", collector().sink), /550/);
      } finally {
        await client.quit();
      }
    });
  });
}

Deno.test("IPv6: EPSV and EPRT carry no IPv4 address, so both modes work on [::1]", async (t) => {
  let listener: Deno.TcpListener;
  try {
    listener = Deno.listen({ hostname: "::1", port: 0 });
  } catch {
    return void t.step({ name: "no IPv6 loopback here", ignore: true, fn: () => {} });
  }
  const stop = new AbortController();
  const server = serveFtp(listener, {
    fs: new MemoryFileSystem({ "v6.txt": "over IPv6\n" }),
    log: () => {},
    signal: stop.signal,
  });
  try {
    for (const active of [false, true]) {
      const log: string[] = [];
      const client = await FtpClient.connect({
        hostname: "::1",
        port: listener.addr.port,
        active,
        log: (line) => log.push(line),
      });
      await client.login();
      const got = collector();
      await client.download("v6.txt", got.sink);
      assert.equal(decoder.decode(got.bytes()), "over IPv6\n");
      await client.quit();
      assert.ok(
        log.some((line) => line.startsWith(active ? "> EPRT |2|::1|" : "> EPSV")),
        active ? "EPRT" : "EPSV",
      );
    }
  } finally {
    stop.abort();
    await server;
  }
});

Deno.test("a download whose sink fails (a full disk) says so, and the session goes on", async () => {
  await withOwnServerHolding({ "big.bin": randomBytes(8 * MIB) }, async (port) => {
    const client = await connectAndLogin(port);
    let writes = 0;
    const failing = {
      async write(chunk: Uint8Array) {
        if (++writes === 3) {
          await sleep(5); // fail while the next read is already waiting
          throw new Error("No space left on device");
        }
        return chunk.length;
      },
    };
    await assert.rejects(client.download("big.bin", failing), /^Error: No space left on device$/);
    await client.noop();
    await client.quit();
  });
});

Deno.test("one command at a time: a second call while the first waits is refused", async () => {
  await withOwnServer(async (port) => {
    const client = await connectAndLogin(port);
    const first = client.noop();
    await assert.rejects(client.noop(), /one FTP command at a time/);
    await first;
    await client.quit();
  });
});

// ---------------------------------------------------------------------------
// TLS certificates, made fresh for each run
// ---------------------------------------------------------------------------

peerTest(
  "scripts/ftp_server.ts over explicit FTPS: both channels encrypted",
  [PEERS.openssl],
  async () => {
    const dir = await Deno.makeTempDir();
    try {
      const certs = await makeTestCertificates(dir);
      const tls = {
        cert: await Deno.readTextFile(certs.cert),
        key: await Deno.readTextFile(certs.key),
      };
      await withOwnServer(async (port) => {
        const log: string[] = [];
        const client = await FtpClient.connect({
          port,
          tls: true,
          caCerts: [await Deno.readTextFile(certs.ca)],
          log: (line) => log.push(line),
        });
        assert.equal(client.secure, true);
        await client.login("alice", "wonderland");
        const data = randomBytes(3 * MIB);
        let offset = 0;
        await client.upload("secret.bin", {
          read(buffer) {
            if (offset >= data.length) return Promise.resolve(null);
            const n = Math.min(buffer.length, data.length - offset);
            buffer.set(data.subarray(offset, offset + n));
            offset += n;
            return Promise.resolve(n);
          },
        });
        const got = collector();
        await client.download("secret.bin", got.sink);
        assert.equal(await sha256(got.bytes()), await sha256(data));
        await client.quit();
        assert.ok(log.includes("> PBSZ 0") && log.includes("> PROT P"));
        // Without the CA the certificate is not trusted: no silent fallback to plaintext.
        await assert.rejects(FtpClient.connect({ port, tls: true }), /TLS with 127.0.0.1 failed/);
      }, { tls });
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// ---------------------------------------------------------------------------
// The command line, with the permissions its --help names
// ---------------------------------------------------------------------------

const NET = "--allow-net=127.0.0.1";

Deno.test("CLI: the demo prints the conversation, with the server's replies", async () => {
  const result = await runScript("ftp_client");
  assert.equal(result.code, 0, result.stderr);
  for (
    const line of [
      "> USER demo",
      "> PASS ****",
      "< 230",
      "> EPSV",
      "> MLSD pub",
      "> STOR notes.txt",
      "> RETR notes.txt",
      "> REST 4000",
      "> RNFR notes.txt",
      "> DELE kept.txt",
      "identical",
      "550",
      "> QUIT",
    ]
  ) {
    assert.ok(result.stdout.includes(line), `missing ${line}\n${result.stdout}`);
  }
  assert.doesNotMatch(result.stdout, /demo-password/);
});

Deno.test("CLI: --help names each mode's permissions; bad input is one line and exit 2", async () => {
  const help = await runScript("ftp_client", ["--help"]);
  assert.equal(help.code, 0);
  for (
    const flag of [
      "--allow-read=DIR --allow-write=DIR",
      "--allow-read=FILE",
      "--allow-env=FTP_PASSWORD",
    ]
  ) {
    assert.ok(help.stdout.includes(flag), flag);
  }
  for (
    const [args, message] of [
      [["get"], /get takes 1-2 argument/],
      [["frobnicate"], /unknown command "frobnicate"/],
      [["list", "ftp://bob:pw@127.0.0.1/"], /password in the URL/],
      [["list", "--port", "0"], /--port must be/],
      [["list", "--ca", "ca.pem"], /--ca goes with --tls/],
    ] as const
  ) {
    const result = await runScript("ftp_client", [...args]);
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, message);
    assert.equal(result.stderr.trim().split("\n").length, 1);
  }
});

Deno.test("CLI: CR/LF in a path, a password nobody gave, a refused connection: one error line, exit 1", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  const cases: [string[], RegExp][] = [
    [["rm", "a\r\nDELE b", "--port", String(port)], /^error: refusing a path holding CR/],
    [["list", "--user", "bob", "--port", String(port)], /bob needs a password: set FTP_PASSWORD/],
    [
      ["list", "--port", String(port)],
      /cannot connect to ftp:\/\/127.0.0.1:\d+: connection refused/,
    ],
  ];
  for (const [args, message] of cases) {
    const result = await runScript("ftp_client", args, { stdin: "" });
    assert.equal(result.code, 1, result.stderr);
    assert.match(result.stderr, message);
    assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
  }
});

Deno.test("CLI: get and put under the narrowest permissions; get - streams to stdout; a missing permission is named", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withOwnServer(async (port) => {
      const data = randomBytes(5 * MIB + 3);
      await Deno.writeFile(`${dir}/up.bin`, data);
      const env = { FTP_PASSWORD: "wonderland" };
      const base = ["--port", String(port), "--user", "alice"];
      const env_ = "--allow-env=FTP_PASSWORD";
      let result = await runScript("ftp_client", ["put", `${dir}/up.bin`, "up.bin", ...base], {
        flags: [NET, env_, `--allow-read=${dir}/up.bin`],
        env,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /put .*up\.bin -> up\.bin \(5242883 bytes/);

      await Deno.mkdir(`${dir}/down`);
      result = await runScript("ftp_client", ["get", "up.bin", `${dir}/down`, ...base], {
        flags: [NET, env_, `--allow-read=${dir}/down`, `--allow-write=${dir}/down`],
        env,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await sha256(await Deno.readFile(`${dir}/down/up.bin`)), await sha256(data));
      assert.deepEqual([...Deno.readDirSync(`${dir}/down`)].map((e) => e.name), ["up.bin"]);
      // Not a TTY: plain progress lines on stderr, no carriage returns.
      assert.match(result.stderr, /100% 5\.0\/5\.0 MiB/);
      assert.doesNotMatch(result.stderr, /\r/);

      result = await runScript("ftp_client", ["get", "pub/hello.txt", "-", "--port", String(port)]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout, "hello\n");

      result = await runScript("ftp_client", ["get", "up.bin", `${dir}/x.bin`, ...base], {
        flags: [NET, env_],
        env,
      });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /^error: missing permission: .*--allow-(read|write)=/);
      assert.equal(result.stderr.trim().split("\n").length, 1, result.stderr);
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: an interrupted download keeps LOCAL.part, and --resume finishes it with REST", async () => {
  const dir = await Deno.makeTempDir();
  const data = randomBytes(2 * MIB);
  const flags = [NET, `--allow-read=${dir}`, `--allow-write=${dir}`];
  try {
    // A server that sends the first 700,000 bytes and then stalls.
    await scripted(async (s) => {
      await anonymousLogin(s);
      await s.expect("FEAT", "211-Features:", " SIZE", " REST STREAM", "211 End");
      await s.expect("TYPE I", "200 binary");
      await s.expect("SIZE big.bin", `213 ${data.length}`);
      const conn = await s.epsv();
      await s.expect("RETR big.bin", "150 here");
      await writeAll(conn, data.subarray(0, 700_000));
      await conn.read(new Uint8Array(1)); // until the client gives up on it
      await s.say("426 aborted");
      await s.hear().catch(() => {});
    }, async (port) => {
      const result = await runScript(
        "ftp_client",
        ["get", "big.bin", `${dir}/big.bin`, "--port", String(port), "--data-timeout", "0.5"],
        { flags },
      );
      assert.equal(result.code, 1);
      assert.match(result.stderr, /big\.bin\.part keeps what arrived: add --resume to go on/);
    });
    assert.equal((await Deno.stat(`${dir}/big.bin.part`)).size, 700_000);
    await assert.rejects(Deno.stat(`${dir}/big.bin`));

    await withOwnServerHolding({ "big.bin": data }, async (port) => {
      const result = await runScript(
        "ftp_client",
        ["get", "big.bin", `${dir}/big.bin`, "--resume", "-v", "--port", String(port)],
        { flags },
      );
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /> REST 700000/);
      assert.match(result.stderr, /resuming big\.bin at byte 700000/);
    });
    assert.equal(await sha256(await Deno.readFile(`${dir}/big.bin`)), await sha256(data));
    await assert.rejects(Deno.stat(`${dir}/big.bin.part`));
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

async function withOwnServerHolding(
  files: Record<string, Uint8Array>,
  fn: (port: number) => Promise<void>,
): Promise<void> {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const server = serveFtp(listener, {
    fs: new MemoryFileSystem(files),
    log: () => {},
    signal: stop.signal,
  });
  try {
    await fn(listener.addr.port);
  } finally {
    stop.abort();
    await server;
  }
}

Deno.test("CLI: the shell reads commands from stdin; a refusal does not end the session", async () => {
  await withOwnServer(async (port) => {
    const result = await runScript("ftp_client", ["shell", "--port", String(port)], {
      stdin: "pwd\ncd pub\nls\nget nothing.txt -\nsize hello.txt\nquote NOOP\nbogus\nquit\n",
    });
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /^\/\n/);
    assert.match(result.stdout, /-\s+6 .* hello\.txt/);
    assert.match(result.stdout, /error: RETR nothing\.txt: the server answered "550/);
    assert.match(result.stdout, /hello\.txt: 6 bytes, modified \d{4}-/);
    assert.match(result.stdout, /^200 /m);
    assert.match(result.stdout, /error: unknown command "bogus"/);
  });
});

Deno.test("CLI: the shell goes on after a refused get into a file, a missing local file, and a wrong word count", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withOwnServer(async (port) => {
      const result = await runScript("ftp_client", ["shell", "--port", String(port)], {
        flags: [NET, `--allow-read=${dir}`, `--allow-write=${dir}`],
        stdin: [
          `get nosuch.txt ${dir}/nosuch.txt`, // the 550 comes wrapped: "the download ... stopped"
          `put ${dir}/missing.txt`,
          "rm a b", // must not delete a and ignore b
          "cdup now",
          "quote",
          "pwd",
        ].join("\n") + "\n",
      });
      assert.equal(result.code, 0, result.stderr);
      const lines = result.stdout.trim().split("\n");
      assert.match(lines[0], /^error: the download of nosuch\.txt stopped: .*"550 /);
      assert.match(lines[1], /^error: No such file or directory .*missing\.txt/);
      assert.deepEqual(lines.slice(2), [
        "error: usage: rm PATH",
        "error: usage: cdup",
        "error: usage: quote LINE",
        "/",
      ]);
      assert.deepEqual([...Deno.readDirSync(dir)], []); // no nosuch.txt.part left
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("CLI: put to ftp://host/ or ftp://host/dir/ stores the file there under its own name", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await withOwnServer(async (port) => {
      await Deno.writeTextFile(`${dir}/up.txt`, "uploaded\n");
      for (const [url, stored] of [["", "up.txt"], ["pub/", "pub/up.txt"]]) {
        const result = await runScript(
          "ftp_client",
          ["put", `${dir}/up.txt`, `ftp://alice@127.0.0.1:${port}/${url}`, "-v"],
          {
            flags: [NET, "--allow-env=FTP_PASSWORD", `--allow-read=${dir}/up.txt`],
            env: { FTP_PASSWORD: "wonderland" },
          },
        );
        assert.equal(result.code, 0, result.stderr);
        assert.match(result.stderr, new RegExp(`^> STOR ${stored}$`, "m"));
        assert.match(result.stdout, new RegExp(`-> ${stored} \\(9 bytes`));
      }
      const client = await connectAndLogin(port);
      assert.equal(await client.size("up.txt"), 9);
      assert.equal(await client.size("pub/up.txt"), 9);
      await client.quit();
    });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// vsftpd
// ---------------------------------------------------------------------------

interface Vsftpd {
  port: number;
  anonRoot: string;
  home: string;
  user: string;
  password: string;
  stop(): Promise<void>;
}

function isRoot(): boolean {
  try {
    return Deno.uid() === 0;
  } catch {
    return false;
  }
}

async function command(cmd: string, args: string[], stdin?: string): Promise<void> {
  const result = await run(cmd, args, { stdin });
  if (result.code !== 0) throw new Error(`${cmd} ${args.join(" ")}: ${result.stderr.trim()}`);
}

/** Start vsftpd with a config of our own in `dir`, with a system user of its own. */
async function startVsftpd(
  dir: string,
  options: { certs?: TestCertificates; requireSslReuse?: boolean } = {},
): Promise<Vsftpd> {
  await Deno.chmod(dir, 0o755);
  const [anonRoot, home, empty] = ["anon", "home", "empty"].map((name) => `${dir}/${name}`);
  for (const folder of [anonRoot, home, empty]) await Deno.mkdir(folder);
  await Deno.chmod(empty, 0o555);
  const user = `wbftp${crypto.randomUUID().slice(0, 8)}`;
  const password = crypto.randomUUID();
  await command("useradd", ["-M", "-d", home, "-s", "/bin/sh", user]);
  try {
    await command("chpasswd", [], `${user}:${password}\n`);
    await command("chown", [user, home]);
  } catch (error) {
    await command("userdel", [user]).catch(() => {});
    throw error;
  }
  const removeUser = () => command("userdel", [user]).catch(() => {});

  for (let attempt = 0; attempt < 5; attempt++) {
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const port = probe.addr.port;
    probe.close();
    const config = [
      "listen=YES",
      "listen_ipv6=NO",
      "listen_address=127.0.0.1",
      `listen_port=${port}`,
      "background=NO",
      "anonymous_enable=YES",
      `anon_root=${anonRoot}`,
      "no_anon_password=YES",
      "local_enable=YES",
      "write_enable=YES",
      `local_root=${home}`,
      "local_umask=022",
      `secure_chroot_dir=${empty}`,
      "seccomp_sandbox=NO",
      "pasv_address=127.0.0.1",
      "xferlog_enable=NO",
    ];
    if (options.certs) {
      config.push(
        "ssl_enable=YES",
        "allow_anon_ssl=YES",
        "force_local_logins_ssl=NO",
        "force_local_data_ssl=NO",
        `require_ssl_reuse=${options.requireSslReuse ? "YES" : "NO"}`,
        `rsa_cert_file=${options.certs.cert}`,
        `rsa_private_key_file=${options.certs.key}`,
        "ssl_ciphers=HIGH",
      );
    }
    await Deno.writeTextFile(`${dir}/vsftpd.conf`, config.join("\n") + "\n");
    const child = new Deno.Command("vsftpd", {
      args: [`${dir}/vsftpd.conf`],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const output = child.output();
    let exited = false;
    output.finally(() => exited = true);
    const stop = async () => {
      // Each session is a child of the listener: end those too, each by its PID.
      const ps = await run("ps", ["-o", "pid=", "--ppid", String(child.pid)]);
      for (const pid of ps.stdout.split("\n").map(Number).filter(Boolean)) {
        try {
          Deno.kill(pid, "SIGTERM");
        } catch { /* gone */ }
      }
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await output;
    };
    for (let i = 0; i < 100 && !exited; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return { port, anonRoot, home, user, password, stop: () => stop().finally(removeUser) };
      } catch {
        await sleep(30);
      }
    }
    await stop();
    const said = decoder.decode((await output).stdout) + decoder.decode((await output).stderr);
    if (!/could not bind/i.test(said)) {
      await removeUser();
      throw new Error(`vsftpd did not start: ${said.trim()}`);
    }
  }
  await removeUser();
  throw new Error("vsftpd could not get a port in 5 attempts");
}

/** The test for vsftpd, or an ignored one saying why (root is needed for its system user). */
function vsftpdTest(name: string, peers: Peer[], fn: () => Promise<void>): void {
  if (!isRoot() && [...peers, PEERS.vsftpd].every(hasPeer)) {
    Deno.test({
      name: `${name} (needs root: vsftpd's local user is a system user)`,
      ignore: true,
      fn,
    });
    return;
  }
  peerTest(name, [PEERS.vsftpd, ...peers], fn);
}

/** Run the CLI as a user would, with exactly the permissions --help names. */
function cli(
  args: string[],
  options: { dir: string; password?: string; read?: string[]; timeout?: number },
) {
  const read = [options.dir, ...(options.read ?? [])].join(",");
  return runScript("ftp_client", args, {
    flags: [
      NET,
      "--allow-env=FTP_PASSWORD",
      `--allow-read=${read}`,
      `--allow-write=${options.dir}`,
    ],
    env: options.password === undefined ? {} : { FTP_PASSWORD: options.password },
    timeout: options.timeout ?? 120_000,
  });
}

const SIZES: [string, number][] = [
  ["0 B", 0],
  ["1 B", 1],
  ["10 MiB", 10 * MIB],
  ["100 MiB", 100 * MIB],
];

/** put, get and compare each size; then resume, rename, list and delete. */
async function exerciseServer(
  dir: string,
  port: number,
  login: { user: string; password: string },
  extra: string[] = [],
  read: string[] = [],
): Promise<void> {
  const base = ["--port", String(port), "--user", login.user, ...extra];
  const opts = { dir, password: login.password, read };
  for (const [label, size] of SIZES) {
    const data = randomBytes(size);
    const name = `file-${size}.bin`;
    await Deno.writeFile(`${dir}/${name}`, data);
    let result = await cli(["put", `${dir}/${name}`, name, ...base], opts);
    assert.equal(result.code, 0, `put ${label}: ${result.stderr}`);
    result = await cli(["get", name, `${dir}/back-${name}`, ...base], opts);
    assert.equal(result.code, 0, `get ${label}: ${result.stderr}`);
    const back = await Deno.readFile(`${dir}/back-${name}`);
    assert.equal(await sha256(back), await sha256(data), `${label} differs`);
    await Deno.remove(`${dir}/back-${name}`);
    if (size === 10 * MIB) {
      // Resume: a partial download of the first 3 MiB, finished with REST.
      await Deno.writeFile(`${dir}/resumed.bin.part`, data.subarray(0, 3 * MIB));
      result = await cli(["get", name, `${dir}/resumed.bin`, "--resume", "-v", ...base], opts);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, new RegExp(`> REST ${3 * MIB}`));
      assert.equal(await sha256(await Deno.readFile(`${dir}/resumed.bin`)), await sha256(data));
      await Deno.remove(`${dir}/resumed.bin`);
    }
    await Deno.remove(`${dir}/${name}`);
  }
  let result = await cli(["mkdir", "folder", ...base], opts);
  assert.equal(result.code, 0, result.stderr);
  result = await cli(["mv", "file-1.bin", "folder/renamed.bin", ...base], opts);
  assert.equal(result.code, 0, result.stderr);
  result = await cli(["list", "folder", ...base], opts);
  assert.equal(result.code, 0, result.stderr);
  assert.match(result.stdout, /^- +1 +\d{4}-\d\d-\d\d \d\d:\d\d {2}renamed\.bin$/m);
  result = await cli(["size", "folder/renamed.bin", ...base], opts);
  assert.match(result.stdout, /folder\/renamed\.bin: 1 bytes, modified \d{4}/);
  for (const args of [["rm", "folder/renamed.bin"], ["rmdir", "folder"]]) {
    result = await cli([...args, ...base], opts);
    assert.equal(result.code, 0, result.stderr);
  }
  for (const [, size] of SIZES.filter(([, s]) => s !== 1)) {
    result = await cli(["rm", `file-${size}.bin`, ...base], opts);
    assert.equal(result.code, 0, result.stderr);
  }
  result = await cli(["rm", "file-1.bin", ...base], opts);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /DELE file-1\.bin: the server answered "550 /);
}

vsftpdTest(
  "vsftpd: anonymous read; a local user's put, get (0 B to 100 MiB, sha256), resume, rename, delete",
  [],
  async () => {
    const dir = await Deno.makeTempDir();
    const vsftpd = await startVsftpd(dir);
    try {
      const shared = randomBytes(MIB + 5);
      await Deno.writeFile(`${vsftpd.anonRoot}/shared.bin`, shared);
      const work = `${dir}/work`;
      await Deno.mkdir(work);
      const port = String(vsftpd.port);
      // Anonymous: LIST parsed (vsftpd has no MLSD), then a download.
      let result = await cli(["list", "--port", port], { dir: work });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, /^- +1,048,581 .* shared\.bin$/m);
      result = await cli(["get", `ftp://127.0.0.1:${port}/shared.bin`, `${work}/s.bin`], {
        dir: work,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await sha256(await Deno.readFile(`${work}/s.bin`)), await sha256(shared));
      result = await cli(["put", `${work}/s.bin`, "--port", port], { dir: work });
      assert.equal(result.code, 1);
      assert.match(result.stderr, /STOR s\.bin: the server answered "550 Permission denied/);
      await exerciseServer(work, vsftpd.port, vsftpd);
    } finally {
      await vsftpd.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

vsftpdTest(
  "vsftpd over FTPS (require_ssl_reuse=NO): list, put, get, byte-exact, both channels encrypted",
  [PEERS.openssl],
  async () => {
    const dir = await Deno.makeTempDir();
    const certs = await makeTestCertificates(await Deno.makeTempDir({ dir }));
    const vsftpd = await startVsftpd(dir, { certs });
    try {
      const work = `${dir}/work`;
      await Deno.mkdir(work);
      const base = [
        "--port",
        String(vsftpd.port),
        "--user",
        vsftpd.user,
        "--tls",
        "--ca",
        certs.ca,
      ];
      const opts = { dir: work, password: vsftpd.password, read: [certs.ca] };
      const data = randomBytes(10 * MIB);
      await Deno.writeFile(`${work}/secret.bin`, data);
      let result = await cli(["put", `${work}/secret.bin`, ...base, "-v"], opts);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /< 234 .*\n# TLS handshake/);
      assert.match(result.stderr, /> PROT P\n< 200/);
      result = await cli(["get", "secret.bin", `${work}/back.bin`, ...base], opts);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await sha256(await Deno.readFile(`${work}/back.bin`)), await sha256(data));
      result = await cli(["list", ...base], opts);
      assert.match(result.stdout, /secret\.bin/);
      // Anonymous over TLS, resumed.
      await Deno.copyFile(`${work}/secret.bin`, `${vsftpd.anonRoot}/public.bin`);
      await Deno.writeFile(`${work}/public.bin.part`, data.subarray(0, 12345));
      result = await cli(
        [
          "get",
          "public.bin",
          work,
          "--resume",
          "--tls",
          "--ca",
          certs.ca,
          "--port",
          String(vsftpd.port),
        ],
        opts,
      );
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await sha256(await Deno.readFile(`${work}/public.bin`)), await sha256(data));
    } finally {
      await vsftpd.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

vsftpdTest(
  "vsftpd's default require_ssl_reuse=YES: refused, and the error says which setting it needs",
  [PEERS.openssl],
  async () => {
    const dir = await Deno.makeTempDir();
    const certs = await makeTestCertificates(await Deno.makeTempDir({ dir }));
    const vsftpd = await startVsftpd(dir, { certs, requireSslReuse: true });
    try {
      const caCerts = [await Deno.readTextFile(certs.ca)];
      const client = await FtpClient.connect({ port: vsftpd.port, tls: true, caCerts });
      try {
        await client.login(); // the control connection is fine...
        await assert.rejects(client.nlst(), (error: FtpError) => {
          // ... the data connection is not: a new TLS session where vsftpd wants the old one.
          assert.equal(error.code, 522);
          assert.match(error.message, /session reuse required.*require_ssl_reuse=NO/);
          return true;
        });
      } finally {
        client.close();
      }
    } finally {
      await vsftpd.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);

// ---------------------------------------------------------------------------
// pyftpdlib
// ---------------------------------------------------------------------------

/** `python3 -m pyftpdlib` on port 0; it logs the port it got on stderr. */
async function startPyftpdlib(root: string, args: string[]) {
  const child = new Deno.Command(PYTHON, {
    args: ["-m", "pyftpdlib", "-i", "127.0.0.1", "-p", "0", "-d", root, ...args],
    stdin: "null",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  let said = "";
  const reading = (async () => {
    for await (const chunk of child.stderr.pipeThrough(new TextDecoderStream())) said += chunk;
  })();
  for (let i = 0; i < 300; i++) {
    const port = said.match(/starting FTP server on 127\.0\.0\.1:(\d+)/)?.[1];
    if (port) {
      return {
        port: Number(port),
        async stop() {
          child.kill("SIGTERM");
          await child.status;
          await reading;
        },
      };
    }
    await sleep(30);
  }
  child.kill("SIGKILL");
  await child.status;
  throw new Error(`pyftpdlib did not start: ${said}`);
}

peerTest(
  "pyftpdlib: anonymous read (MLSD); a user's put, get (0 B to 100 MiB, sha256), resume, rename, delete",
  [PEERS.pyftpdlib],
  async () => {
    const dir = await Deno.makeTempDir();
    const [publicRoot, userRoot, work] = ["public", "user", "work"].map((name) => `${dir}/${name}`);
    for (const folder of [publicRoot, userRoot, work]) await Deno.mkdir(folder);
    const shared = randomBytes(MIB + 5);
    await Deno.writeFile(`${publicRoot}/shared.bin`, shared);
    // Two servers: -u turns anonymous off, so the anonymous one is a second instance, read-only.
    const anonymous = await startPyftpdlib(publicRoot, []);
    const password = crypto.randomUUID();
    const withUser = await startPyftpdlib(userRoot, ["-w", "-u", "alice", "-P", password]);
    try {
      let result = await cli(["list", "--port", String(anonymous.port), "-v"], { dir: work });
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stderr, /> MLSD/);
      assert.match(result.stdout, /^- +1,048,581 .* shared\.bin$/m);
      result = await cli(["get", "shared.bin", work, "--port", String(anonymous.port), "--pasv"], {
        dir: work,
      });
      assert.equal(result.code, 0, result.stderr);
      assert.equal(await sha256(await Deno.readFile(`${work}/shared.bin`)), await sha256(shared));
      await exerciseServer(work, withUser.port, { user: "alice", password });
    } finally {
      await anonymous.stop();
      await withUser.stop();
      await Deno.remove(dir, { recursive: true });
    }
  },
);
