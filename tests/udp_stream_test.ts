// scripts/udp_stream.ts: the frame format, the bad network, the receiver's
// statistics (properties against an independent count), a stream over
// loopback, and the command line as a user runs it.
//
// Run with --unstable-net (deno task test passes it). Every socket is on
// loopback, port 0; no test asserts how long anything took.

import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  BadNetwork,
  decodeStreamFrame,
  encodeStreamFrame,
  HEADER_SIZE,
  HISTORY,
  intervalLine,
  MAGIC,
  MAX_FRAME_SIZE,
  mulberry32,
  sendStream,
  type StreamFrame,
  StreamReceiver,
  StreamStats,
} from "../scripts/udp_stream.ts";
import { DENO, readHeader, runScript, scriptPath, startServer, within } from "./_helpers.ts";

// A frame of a 50 fps stream: frame n is captured n × 20 ms after the first.
const frameAt = (sequence: number, size = HEADER_SIZE): StreamFrame => ({
  sequence,
  timestamp: sequence * 20_000,
  size,
});

// Record frames in the order given, each arriving exactly when captured (ms).
function recordOnTime(sequences: number[], playoutDelay = 100): StreamStats {
  const stats = new StreamStats({ playoutDelay });
  for (const sequence of sequences) stats.record(frameAt(sequence), sequence * 20);
  return stats;
}

function udp(): Deno.DatagramConn {
  return Deno.listenDatagram({ transport: "udp", hostname: "127.0.0.1", port: 0 });
}

// Poll (every 10 ms, 10 s at most) until `done()` holds: datagrams on
// loopback arrive, but the receive loop runs when the event loop gets to it.
async function until(done: () => boolean, what: string): Promise<void> {
  for (let i = 0; i < 1000 && !done(); i++) await new Promise((r) => setTimeout(r, 10));
  assert.ok(done(), `gave up waiting for ${what}`);
}

// ---------------------------------------------------------------------------
// The frame format
// ---------------------------------------------------------------------------

const frameArbitrary = fc.record({
  sequence: fc.integer({ min: 0, max: 0xffff_ffff }),
  timestamp: fc.maxSafeNat(),
  size: fc.integer({ min: HEADER_SIZE, max: MAX_FRAME_SIZE }),
});

Deno.test("encodeStreamFrame/decodeStreamFrame: decode(encode(frame)) is the frame, size bytes long", () => {
  fc.assert(fc.property(frameArbitrary, (frame) => {
    const datagram = encodeStreamFrame(frame);
    assert.equal(datagram.length, frame.size);
    assert.deepEqual(decodeStreamFrame(datagram), { ...frame }); // fc.record: no prototype
  }));
});

Deno.test("encodeStreamFrame lays out magic, size, sequence and timestamp big-endian", () => {
  const datagram = encodeStreamFrame({ sequence: 0x01020304, timestamp: 0x0a0b0c0d0e, size: 20 });
  assert.deepEqual(
    [...datagram],
    [0x57, 0x42, 0, 20, 1, 2, 3, 4, 0, 0, 0, 0x0a, 0x0b, 0x0c, 0x0d, 0x0e, 0, 0, 0, 0],
  );
  assert.equal(MAGIC, 0x5742);
});

Deno.test("decodeStreamFrame reads a frame inside a larger buffer (a receive() view)", () => {
  const buffer = new Uint8Array(100);
  buffer.set(encodeStreamFrame(frameAt(9, 40)), 30);
  assert.deepEqual(decodeStreamFrame(buffer.subarray(30, 70)), frameAt(9, 40));
});

Deno.test("decodeStreamFrame refuses a frame cut short or padded out, by any number of bytes", () => {
  fc.assert(fc.property(
    frameArbitrary.filter((frame) => frame.size < 4096),
    fc.integer({ min: -4096, max: 4096 }).filter((change) => change !== 0),
    (frame, change) => {
      const datagram = encodeStreamFrame(frame);
      const altered = change < 0
        ? datagram.subarray(0, Math.max(0, datagram.length + change))
        : Uint8Array.from([...datagram, ...new Uint8Array(change)]);
      assert.throws(() => decodeStreamFrame(altered), RangeError);
    },
  ));
});

Deno.test("decodeStreamFrame refuses a wrong magic, and any bytes with no more than a RangeError", () => {
  const datagram = encodeStreamFrame(frameAt(1, 32));
  datagram[0] = 0x58;
  assert.throws(() => decodeStreamFrame(datagram), /not a stream frame: starts 0x5842/);
  fc.assert(fc.property(fc.uint8Array({ maxLength: 64 }), (bytes) => {
    try {
      const frame = decodeStreamFrame(bytes);
      assert.equal(frame.size, bytes.length); // it can only pass if it says its own length
    } catch (error) {
      assert.ok(error instanceof RangeError, String(error));
    }
  }));
});

Deno.test("encodeStreamFrame refuses fields out of range with a RangeError", () => {
  const bad: StreamFrame[] = [
    { sequence: -1, timestamp: 0, size: 16 },
    { sequence: 2 ** 32, timestamp: 0, size: 16 },
    { sequence: 1.5, timestamp: 0, size: 16 },
    { sequence: 0, timestamp: -1, size: 16 },
    { sequence: 0, timestamp: 0, size: HEADER_SIZE - 1 },
    { sequence: 0, timestamp: 0, size: MAX_FRAME_SIZE + 1 },
  ];
  for (const frame of bad) assert.throws(() => encodeStreamFrame(frame), RangeError);
});

// ---------------------------------------------------------------------------
// The bad network
// ---------------------------------------------------------------------------

Deno.test("mulberry32: one seed, one sequence, in [0, 1); another seed, another", () => {
  const [a, b, c] = [mulberry32(7), mulberry32(7), mulberry32(8)];
  const first = Array.from({ length: 1000 }, () => a());
  assert.deepEqual(Array.from({ length: 1000 }, () => b()), first);
  assert.notDeepEqual(Array.from({ length: 1000 }, () => c()), first);
  assert.ok(first.every((x) => x >= 0 && x < 1));
  const mean = first.reduce((sum, x) => sum + x, 0) / first.length;
  assert.ok(Math.abs(mean - 0.5) < 0.05, `mean ${mean}`); // σ of the mean: 0.29/√1000 ≈ 0.009
});

/** Every datagram a BadNetwork puts on the wire for frames 0..n-1, in order. */
function wire(n: number, network: BadNetwork): number[] {
  const sent: number[] = [];
  for (let sequence = 0; sequence < n; sequence++) sent.push(...network.pass(sequence));
  return [...sent, ...network.flush()];
}

const chance = fc.double({ min: 0, max: 1, noNaN: true });

Deno.test("BadNetwork sends every frame once, less the dropped, plus the duplicated", () => {
  fc.assert(fc.property(
    fc.integer({ min: 0, max: 300 }),
    chance,
    chance,
    chance,
    fc.integer({ min: 0, max: 0xffff_ffff }),
    (n, loss, reorder, duplicate, seed) => {
      const network = new BadNetwork({ loss, reorder, duplicate, seed });
      const sent = wire(n, network);
      const copies = new Map<number, number>();
      for (const sequence of sent) copies.set(sequence, (copies.get(sequence) ?? 0) + 1);
      assert.equal(n - copies.size, network.dropped);
      assert.equal(sent.length, copies.size + network.duplicated);
      assert.ok([...copies.values()].every((count) => count === 1 || count === 2));
      // A held frame goes out right behind a later one, or at the very end.
      let overtaken = 0;
      sent.forEach((sequence, i) => overtaken += i > 0 && sent[i - 1] > sequence ? 1 : 0);
      assert.ok(overtaken <= network.heldBack && network.heldBack <= overtaken + 1);
    },
  ));
});

Deno.test("BadNetwork drops the same frames for one seed whatever --reorder and --duplicate say", () => {
  fc.assert(fc.property(fc.integer({ min: 0, max: 0xffff_ffff }), chance, chance, (seed, r, d) => {
    // With no reordering, [] can only mean dropped.
    const clean = new BadNetwork({ loss: 0.2, seed });
    const noisy = new BadNetwork({ loss: 0.2, reorder: r, duplicate: d, seed });
    for (let i = 0; i < 200; i++) {
      const before = noisy.dropped;
      noisy.pass(i);
      assert.equal(noisy.dropped > before, clean.pass(i).length === 0, `frame ${i}`);
    }
    assert.equal(noisy.dropped, clean.dropped);
  }));
});

Deno.test("BadNetwork with --loss 0.1 drops 10% ± 3 points of 2000 frames, for each of 50 seeds", () => {
  // Drops are Binomial(2000, 0.1): σ = √(2000 × 0.1 × 0.9) ≈ 13.4 frames = 0.67 points, so
  // ±3 points is 4.5σ: a fair generator misses it about once in 150,000 seeds.
  for (let seed = 1; seed <= 50; seed++) {
    const network = new BadNetwork({ loss: 0.1, seed });
    wire(2000, network);
    assert.ok(Math.abs(network.dropped / 2000 - 0.1) <= 0.03, `seed ${seed}: ${network.dropped}`);
  }
});

Deno.test("BadNetwork refuses a chance outside 0..1", () => {
  for (const loss of [-0.1, 1.1, NaN]) assert.throws(() => new BadNetwork({ loss }), RangeError);
  assert.throws(() => new BadNetwork({ reorder: 2 }), RangeError);
});

// ---------------------------------------------------------------------------
// The receiver's statistics
// ---------------------------------------------------------------------------

// The same counts as StreamStats, by a different route: a Set and a running maximum.
function countByHand(arrivals: number[]) {
  const seen = new Set<number>();
  let highest = -1, reordered = 0, duplicates = 0;
  for (const sequence of arrivals) {
    if (seen.has(sequence)) duplicates++;
    else if (sequence < highest) reordered++;
    seen.add(sequence);
    highest = Math.max(highest, sequence);
  }
  return {
    expected: highest + 1,
    received: seen.size,
    lost: highest + 1 - seen.size,
    reordered,
    duplicates,
  };
}

// Arrivals: frames 0..n-1, some never sent, some sent twice, in a shuffled order.
const arrivalsArbitrary = fc.integer({ min: 0, max: 200 }).chain((n) =>
  fc.tuple(
    fc.array(fc.constantFrom(0, 1, 1, 1, 2), { minLength: n, maxLength: n }),
    fc.array(fc.double({ min: 0, max: 1, noNaN: true }), { minLength: 2 * n, maxLength: 2 * n }),
  ).map(([copies, keys]) => {
    const arrivals = copies.flatMap((count, sequence) => Array(count).fill(sequence) as number[]);
    return arrivals.map((sequence, i) => ({ sequence, key: keys[i] }))
      .sort((a, b) => a.key - b.key).map(({ sequence }) => sequence);
  })
);

Deno.test("StreamStats counts loss, reordering and duplicates exactly, for any arrivals", () => {
  fc.assert(fc.property(arrivalsArbitrary, (arrivals) => {
    const report = recordOnTime(arrivals, Infinity).report();
    const expected = countByHand(arrivals);
    assert.deepEqual({
      expected: report.expected,
      received: report.received,
      lost: report.lost,
      reordered: report.reordered,
      duplicates: report.duplicates,
    }, expected);
    assert.equal(report.onTime, report.received);
    assert.equal(report.late, 0);
    assert.equal(report.lossRate, expected.expected === 0 ? 0 : expected.lost / expected.expected);
  }));
});

Deno.test("StreamStats: a hand-made sequence, counted", () => {
  // 0 1 3 2 5 5 7 6: 4 lost (never came), 2 and 6 overtaken, one extra copy of 5.
  const stats = recordOnTime([0, 1, 3, 2, 5, 5, 7, 6]);
  const report = stats.report();
  assert.equal(report.expected, 8);
  assert.equal(report.lost, 1);
  assert.equal(report.reordered, 2);
  assert.equal(report.duplicates, 1);
  assert.deepEqual(stats.playout(), { first: 0, marks: "####.###" });
});

Deno.test("StreamStats: a frame after its playout deadline is late, not lost; at it is on time", () => {
  const stats = new StreamStats({ playoutDelay: 100 });
  const events = [
    stats.record(frameAt(0), 1000), // sets the clock offset: delay 0
    stats.record(frameAt(1), 1020 + 100), // exactly at its deadline
    stats.record(frameAt(3), 1060 + 5),
    stats.record(frameAt(2), 1040 + 250), // 250 ms behind: skipped long ago
  ];
  assert.deepEqual(events.map((e) => e.outcome), ["on time", "on time", "on time", "late"]);
  assert.deepEqual(events.map((e) => e.delay), [0, 100, 5, 250]);
  assert.deepEqual(events.map((e) => e.reordered), [false, false, false, true]);
  const report = stats.report();
  assert.deepEqual([report.onTime, report.late, report.lost], [3, 1, 0]);
  assert.equal(stats.playout().marks, "##L#");
});

Deno.test("StreamStats jitter follows RFC 3550 A.8: J += (|D| - J) / 16", () => {
  // Transit times 0, 10, 10, 10 ms: D = 10 once, then 0.
  const stats = new StreamStats();
  const transits = [0, 10, 10, 10];
  const jitters = transits.map((transit, i) => {
    stats.record(frameAt(i), i * 20 + transit);
    return stats.report().jitter;
  });
  assert.deepEqual(jitters, [0, 10 / 16, 10 / 16 - 10 / 256, (10 / 16) * (15 / 16) ** 2]);
  // A steady stream has none; one that alternates by 8 ms settles at 8.
  assert.equal(recordOnTime(Array.from({ length: 50 }, (_, i) => i)).report().jitter, 0);
  const alternating = new StreamStats();
  for (let i = 0; i < 500; i++) alternating.record(frameAt(i), i * 20 + (i % 2) * 8);
  assert.ok(Math.abs(alternating.report().jitter - 8) < 1e-6);
});

Deno.test("StreamStats: a frame more than HISTORY behind the newest is stale, not a duplicate", () => {
  const stats = recordOnTime([0, HISTORY + 5]);
  assert.equal(stats.record(frameAt(0), 0).outcome, "stale");
  assert.equal(stats.record(frameAt(6), 0).outcome, "on time");
  const report = stats.report();
  assert.deepEqual([report.stale, report.duplicates, report.received], [1, 0, 3]);
  assert.equal(stats.playout().first, 6);
});

Deno.test("intervalLine reports the interval's fraction lost, never below 0 (RFC 3550 A.3)", () => {
  const stats = recordOnTime([0, 2]);
  const before = stats.report();
  assert.match(intervalLine(recordOnTime([]).report(), before), /^3 frames: .* 1 lost \(33\.3%\)/);
  stats.record(frameAt(1), 20); // the missing frame turns up: this interval gained one
  assert.match(intervalLine(before, stats.report()), /^0 frames: .* 0 lost \(0\.0%\), 1 reordered/);
});

// ---------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------

Deno.test("StreamReceiver ignores and counts malformed datagrams, keeps one stream per sender", () => {
  const log: string[] = [];
  const receiver = new StreamReceiver({ maxSize: 100, log: (line) => log.push(line) });
  const junk = [
    new TextEncoder().encode("hello?"),
    new Uint8Array(40), // zeros: no magic
    encodeStreamFrame(frameAt(0, 101)), // over maxSize
    encodeStreamFrame(frameAt(0, 50)).subarray(0, 49), // cut short
  ];
  for (const datagram of junk) assert.equal(receiver.handle(datagram, "x:1", 0), undefined);
  assert.equal(receiver.handle(encodeStreamFrame(frameAt(0, 100)), "a:1", 0)?.outcome, "on time");
  assert.equal(receiver.handle(encodeStreamFrame(frameAt(0, 100)), "b:2", 0)?.outcome, "on time");
  assert.equal(receiver.malformed, 4);
  assert.equal(receiver.datagrams, 6);
  assert.deepEqual([...receiver.streams.keys()], ["a:1", "b:2"]);
  assert.equal(log.filter((line) => line.startsWith("malformed")).length, 3);
  assert.match(log[2], /longer than 100 bytes.*further ones are only counted/);
});

Deno.test("StreamReceiver refuses senders beyond maxStreams, and ends idle streams", () => {
  let now = 0;
  const receiver = new StreamReceiver({ maxStreams: 2, clock: () => now, log: () => {} });
  const frame = encodeStreamFrame(frameAt(0));
  for (const source of ["a:1", "b:2", "c:3"]) receiver.handle(frame, source);
  assert.equal(receiver.refused, 1);
  now = 1000;
  receiver.handle(encodeStreamFrame(frameAt(1)), "a:1");
  assert.deepEqual(receiver.endIdle(500).map(([source]) => source), ["b:2"]);
  assert.ok(receiver.handle(frame, "c:3")); // there is room again
});

Deno.test("sendStream through a BadNetwork to a StreamReceiver on loopback: the counts are exact", async () => {
  const options = { frames: 400, rate: 1000, size: 200, loss: 0.1, reorder: 0.05, duplicate: 0.02 };
  // What the receiver should count: the same seed's datagrams, in the order sent.
  const byHand = countByHand(wire(400, new BadNetwork({ ...options, seed: 11 })));
  const conn = udp();
  const events: string[] = [];
  const receiver = new StreamReceiver({
    log: () => {},
    playoutDelay: 60_000, // so a slow machine cannot make a frame late
    onFrame: (_, event) => events.push(event.outcome),
  });
  const stop = new AbortController();
  const listening = receiver.listen(conn, stop.signal);
  const sender = udp();
  try {
    const summary = await sendStream(sender, conn.addr as Deno.NetAddr, { ...options, seed: 11 });
    assert.equal(summary.frames, 400);
    await until(() => receiver.datagrams === summary.datagrams, `${summary.datagrams} datagrams`);
    const [stats] = receiver.streams.values();
    const report = stats.report();
    assert.deepEqual({
      expected: report.expected,
      received: report.received,
      lost: report.lost,
      reordered: report.reordered,
      duplicates: report.duplicates,
    }, byHand);
    assert.equal(summary.dropped, 400 - byHand.received);
    assert.equal(events.length, summary.datagrams);
    assert.equal(receiver.malformed, 0);
  } finally {
    sender.close();
    stop.abort();
    await listening;
  }
});

Deno.test("StreamReceiver.listen() ignores junk datagrams between frames and stops on abort", async () => {
  const conn = udp();
  const receiver = new StreamReceiver({ log: () => {}, maxSize: 500 });
  const stop = new AbortController();
  const listening = receiver.listen(conn, stop.signal);
  const sender = udp();
  const to = conn.addr as Deno.NetAddr;
  try {
    await sender.send(encodeStreamFrame(frameAt(0, 100)), to);
    await sender.send(new TextEncoder().encode("GET / HTTP/1.1\r\n\r\n"), to);
    await sender.send(new Uint8Array(600), to); // over --max-size
    await sender.send(encodeStreamFrame(frameAt(1, 100)), to);
    await until(() => receiver.datagrams === 4, "4 datagrams");
    assert.equal(receiver.malformed, 2);
    assert.equal([...receiver.streams.values()][0].report().received, 2);
  } finally {
    sender.close();
    stop.abort();
    await listening;
  }
  assert.throws(() => conn.close(), Deno.errors.BadResource); // listen() closed it
});

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

Deno.test("udp_stream.ts demo: a stream with losses that plays on, a report, exit 0", async () => {
  const { code, stdout, stderr } = await runScript("udp_stream");
  assert.equal(code, 0, stderr);
  assert.equal(stderr, "");
  assert.match(
    stdout,
    /^receiver: listening on udp:\/\/127\.0\.0\.1:\d+ \(playout delay 100 ms\)$/m,
  );
  assert.match(stdout, /^sender: sent 150 frames as \d+ datagrams: \d+ dropped/m);
  assert.match(stdout, /^receiver: \[ +1 s\] 127\.0\.0\.1:\d+: \d+ frames: /m);
  // The playout: 150 marks in lines of 50, some of them lost.
  const marks = stdout.match(/^ {2}[#L.]{1,50}$/gm)?.join("").replaceAll(" ", "") ?? "";
  assert.equal(marks.length, 150);
  assert.ok(marks.includes("."), "the demo's default bad network loses some frames");
  const lost = Number(stdout.match(/^ {2}lost +(\d+)/m)?.[1]);
  assert.equal(lost, [...marks].filter((mark) => mark === ".").length);
  assert.match(stdout, /^ {2}jitter +\d+\.\d\d +ms, RFC 3550 A\.8$/m);
  assert.match(stdout, /receiver: stopped; nothing left open\n$/);
});

Deno.test("udp_stream.ts serve + send --loss 0.1: 2000 frames, the reported loss is 10% ± 3 points", async () => {
  // One fixed seed, so the run is the same every time; the tolerance is the one any seed
  // meets (see the BadNetwork test above: 3 points is 4.5σ of Binomial(2000, 0.1)).
  const server = await serveAndRead(["--stream-timeout", "0.5"]);
  try {
    const sent = await runScript("udp_stream", [
      ...["send", "--port", server.port, "--frames", "2000", "--rate", "2000", "--size", "200"],
      ...["--loss", "0.1", "--reorder", "0", "--duplicate", "0", "--seed", "7"],
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(
      sent.stdout,
      /^sending 2000 frames of 200 bytes at 2000 fps to udp:\/\/127\.0\.0\.1:/,
    );
    const dropped = Number(
      sent.stdout.match(/sent 2000 frames as \d+ datagrams: (\d+) dropped/)?.[1],
    );
    assert.ok(Math.abs(dropped / 2000 - 0.1) <= 0.03, `the sender dropped ${dropped}`);

    // Once the stream is silent for 0.5 s, the receiver reports it: read that report.
    await server.waitFor(/^stream from 127\.0\.0\.1:\d+ ended/);
    const report = (await server.lines(7)).join("\n");
    const expected = Number(report.match(/^ {2}expected +(\d+)/m)?.[1]);
    const lost = Number(report.match(/^ {2}lost +(\d+) +never arrived: [\d.]+%$/m)?.[1]);
    // The last frame is lost (and so not expected) only if the network dropped it.
    assert.ok(expected === 2000 || (expected < 2000 && dropped > 0), report);
    assert.ok(Math.abs(lost / expected - 0.1) <= 0.03, `lost ${lost} of ${expected}`);
  } finally {
    const { code, rest } = await server.stop();
    assert.equal(code, 0);
    assert.match(rest.join("\n"), /^stopped: \d+ datagrams, 0 malformed, 0 refused/m);
  }
});

Deno.test("udp_stream.ts send is reproducible: one seed, the same drops, holds and copies", async () => {
  const server = await startServer("udp_stream", ["--stream-timeout", "0.2"], { scheme: "udp" });
  try {
    const args = ["send", "--port", String(server.port), "--frames", "300", "--rate", "3000"];
    const runs = await Promise.all([
      runScript("udp_stream", [...args, "--seed", "99"]),
      runScript("udp_stream", [...args, "--seed", "99"]),
      runScript("udp_stream", [...args, "--seed", "100"]),
    ]);
    const summaries = runs.map((run) => {
      assert.equal(run.code, 0, run.stderr);
      return run.stdout.split("\n")[1];
    });
    assert.match(summaries[0], /^sent 300 frames as \d+ datagrams: \d+ dropped, \d+ held back/);
    assert.equal(summaries[1], summaries[0]);
    assert.notEqual(summaries[2], summaries[0]);
  } finally {
    assert.equal((await server.stop()).code, 0);
  }
});

Deno.test("udp_stream.ts serve ignores malformed datagrams, counts them, and keeps receiving", async () => {
  const server = await startServer("udp_stream", [], { scheme: "udp" });
  const stranger = udp();
  try {
    const to: Deno.NetAddr = { transport: "udp", hostname: "127.0.0.1", port: server.port };
    for (const junk of ["hello", "WB", "x".repeat(40), ""]) {
      await stranger.send(new TextEncoder().encode(junk), to);
    }
    const clean = ["--loss", "0", "--reorder", "0", "--duplicate", "0"];
    const sent = await runScript("udp_stream", [
      ...["send", "--port", String(server.port), "--frames", "20", "--rate", "500", ...clean],
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    assert.match(
      sent.stdout,
      /sent 20 frames as 20 datagrams: 0 dropped, 0 held back, 0 sent twice/,
    );
  } finally {
    stranger.close();
    const { code, stdout } = await server.stop();
    assert.equal(code, 0);
    assert.equal(stdout.match(/^malformed datagram from 127\.0\.0\.1:\d+ ignored: /gm)?.length, 3);
    assert.match(stdout, /further ones are only counted/);
    assert.match(stdout, /^stopped: \d+ datagrams, 4 malformed, 0 refused/m);
    assert.match(stdout, /^ {2}lost +0 /m);
  }
});

Deno.test("udp_stream.ts serve reports a stream that went silent, then exits 0 on SIGTERM", async () => {
  const server = await serveAndRead(["--stream-timeout", "0.3"]);
  try {
    const sent = await runScript("udp_stream", [
      ...["send", "--port", server.port, "--frames", "10", "--rate", "200", "--loss", "0"],
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    // The receiver's once-a-second timer finds the stream silent, and reports it:
    // after the configured 0.3 s (plus a tick), not the 5 s default.
    const [line] = (await within(3500, "the silent stream reported", () =>
      server.waitFor(/^stream from/))).slice(-1);
    assert.match(line, /^stream from 127\.0\.0\.1:\d+ ended \(silent for 0\.3 s\):$/);
    assert.match((await server.lines(1))[0], /^ {2}expected +10 /);
  } finally {
    const { code, rest } = await server.stop();
    assert.equal(code, 0);
    assert.match(rest.join("\n"), /^stopped: \d+ datagrams, 0 malformed/m);
    assert.doesNotMatch(rest.join("\n"), /receiver stopped/); // the ended stream was forgotten
  }
});

Deno.test("udp_stream.ts send stopped by a signal says so and exits 0", async () => {
  const path = scriptPath("udp_stream");
  const send = new Deno.Command(DENO, {
    args: ["run", "--no-prompt", ...readHeader(path).runFlags, path, "send", "--port", "9"]
      .concat(["--frames", "100000"]),
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const lines = readLines(send.stdout);
  const stderr = new Response(send.stderr).text();
  assert.match((await lines.next()).value ?? "", /^sending 100000 frames/);
  send.kill("SIGTERM");
  const { code } = await send.status;
  assert.equal(code, 0, await stderr);
  assert.equal((await lines.next()).value, "stopped early (received SIGTERM)");
  assert.equal(await stderr, "");
});

/** `udp_stream.ts serve --port 0 ARGS`, its stdout read line by line while it runs. */
async function serveAndRead(args: string[]) {
  const path = scriptPath("udp_stream");
  const process = new Deno.Command(DENO, {
    args: ["run", "--no-prompt", ...readHeader(path).runFlags, path, "serve", "--port", "0"]
      .concat(args),
    env: { NO_COLOR: "1" },
    stdout: "piped",
    stderr: "null",
  }).spawn();
  const lines = readLines(process.stdout);
  const next = async () => {
    const { value, done } = await lines.next();
    if (done) throw new Error("serve's output ended");
    return value;
  };
  const banner = await next();
  const port = banner.match(/^listening on udp:\/\/127\.0\.0\.1:(\d+)$/)?.[1];
  if (!port) {
    process.kill("SIGKILL");
    await process.status;
    throw new Error(`no listening line: ${banner}`);
  }
  return {
    port,
    /** The next `count` lines. */
    async lines(count: number): Promise<string[]> {
      const got: string[] = [];
      while (got.length < count) got.push(await next());
      return got;
    },
    /** Lines up to and including the first that matches (100 lines at most). */
    async waitFor(pattern: RegExp): Promise<string[]> {
      const got: string[] = [];
      for (let i = 0; i < 100; i++) {
        got.push(await next());
        if (pattern.test(got.at(-1)!)) return got;
      }
      throw new Error(`no line matched ${pattern}:\n${got.join("\n")}`);
    },
    /** SIGTERM, then the exit code and the lines not yet read. */
    async stop(): Promise<{ code: number; rest: string[] }> {
      try {
        process.kill("SIGTERM");
      } catch { /* already gone */ }
      const rest: string[] = [];
      for (let line = await lines.next(); !line.done; line = await lines.next()) {
        rest.push(line.value);
      }
      return { code: (await process.status).code, rest };
    },
  };
}

function readLines(stream: ReadableStream<Uint8Array>): AsyncIterator<string> {
  let buffered = "";
  return stream.pipeThrough(new TextDecoderStream()).pipeThrough(
    new TransformStream<string, string>({
      transform(chunk, controller) {
        const parts = (buffered + chunk).split("\n");
        buffered = parts.pop()!;
        for (const part of parts) controller.enqueue(part);
      },
      flush(controller) {
        if (buffered) controller.enqueue(buffered);
      },
    }),
  )[Symbol.asyncIterator]();
}

Deno.test("udp_stream.ts bad flags and arguments: one error line, exit 2", async () => {
  const cases = [
    ["--no-such-flag"],
    ["send", "--loss", "1.5"],
    ["send", "--size", "8"],
    ["send", "--size", "65508"],
    ["send", "--rate", "0"],
    ["serve", "--max-size", "70000"],
    ["serve", "extra"],
    ["stream"],
  ];
  for (const args of cases) {
    const { code, stdout, stderr } = await runScript("udp_stream", args);
    assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
    assert.equal(stdout, "");
    assert.match(stderr, /^error: .*\(see --help\)\n$/, args.join(" "));
  }
});

Deno.test("udp_stream.ts --help: usage on stdout, every mode and the flags they need, exit 0", async () => {
  const { code, stdout } = await runScript("udp_stream", ["--help"]);
  assert.equal(code, 0);
  for (const word of ["serve", "send", "--loss", "--reorder", "--seed", "--unstable-net"]) {
    assert.ok(stdout.includes(word), word);
  }
});

Deno.test("udp_stream.ts without --unstable-net: one error line saying to add it, exit 1", async () => {
  for (const args of [[], ["serve", "--port", "0"], ["send"]]) {
    const result = await runScript("udp_stream", args, { flags: ["--allow-net=127.0.0.1"] });
    assert.equal(result.code, 1, args.join(" "));
    assert.match(result.stderr, /^error: .*--unstable-net\n$/);
  }
});

Deno.test("udp_stream.ts without --allow-net: one error line naming the flag, exit 1", async () => {
  const result = await runScript("udp_stream", [], { flags: ["--unstable-net"] });
  assert.equal(result.code, 1);
  assert.match(result.stderr, /^error: missing permission: .*--allow-net=127\.0\.0\.1\n$/);
});

Deno.test("udp_stream.ts serve on a port in use: one error line, exit 1", async () => {
  const taken = udp();
  try {
    const port = String((taken.addr as Deno.NetAddr).port);
    const result = await runScript("udp_stream", ["serve", "--port", port]);
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: address already in use.*\n$/);
  } finally {
    taken.close();
  }
});
