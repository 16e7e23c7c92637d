#!/usr/bin/env -S deno run --unstable-net --allow-net=127.0.0.1
/**
 * @title UDP streaming: live frames that play on through loss
 * @difficulty intermediate
 * @tags cli, network, udp, rtp, streaming
 * @run --unstable-net --allow-net=127.0.0.1 <url>
 * @resource {https://www.rfc-editor.org/rfc/rfc768} RFC 768: User Datagram Protocol
 * @resource {https://www.rfc-editor.org/rfc/rfc3550#section-5.1} RFC 3550 §5.1: RTP sequence numbers and timestamps
 * @resource {https://www.rfc-editor.org/rfc/rfc3550#section-6.4.1} RFC 3550 §6.4.1: interarrival jitter
 * @resource {https://www.rfc-editor.org/rfc/rfc3550#appendix-A.8} RFC 3550 A.8: estimating the interarrival jitter
 * @resource {https://www.rfc-editor.org/rfc/rfc8085} RFC 8085: UDP Usage Guidelines
 *
 * A "live video" stream over UDP, the way RTP carries one: numbered,
 * timestamped frames at a steady rate. The sender can make the network bad on
 * purpose (drop, reorder or duplicate frames, from a seeded random generator,
 * so every run with one seed is the same run). The receiver never waits for a
 * missing frame: each frame has a playout deadline, and what is not there in
 * time is skipped. It reports loss, late frames, reordering, duplicates and
 * the interarrival jitter of RFC 3550. With no arguments, a sender and a
 * receiver stream 150 frames at 50 fps through loopback. `--unstable-net` is
 * needed for Deno's UDP API. Taught cell by cell, next to the same stream over
 * TCP, in notebooks/05_udp_stream.ipynb.
 */

import { type Flags, parseFlags } from "../lib/parse_flags.ts";
import { listeningBanner } from "../lib/listening_banner.ts";
import { shutdownSignal } from "../lib/shutdown_signal.ts";
import { runMain } from "../lib/run_main.ts";
import { UsageError } from "../lib/usage_error.ts";
import { listenUdp } from "../lib/listen_udp.ts";
import { localAddressFor } from "../lib/local_address_for.ts";
import { formatAddress } from "../lib/format_address.ts";

const USAGE = `
udp_stream.ts: a live stream of frames over UDP that plays on through loss (RTP-style, port 5004)

usage:
  udp_stream.ts [flags]          demo: a sender and a receiver on loopback, then a report
  udp_stream.ts serve [flags]    receive streams, a line per second per sender, until Ctrl-C
  udp_stream.ts send [flags]     send one stream of frames to a receiver

flags:
  --host HOST             serve: address to listen on; send: receiver to reach (default 127.0.0.1)
  --port PORT             UDP port (default 5004; serve --port 0 picks any free port)
  --rate FPS              send, demo: frames per second (default 50)
  --frames N              send, demo: how many frames (default 150)
  --size BYTES            send, demo: bytes per frame, header included, 16 to 65507 (default 1000)
  --loss P                send, demo: drop each frame with probability P, 0 to 1 (default 0.05)
  --reorder P             send, demo: hold a frame back and send it after the next (default 0.03)
  --duplicate P           send, demo: send a frame twice (default 0.01)
  --seed S                send, demo: seed of the bad network's random numbers (default 1)
  --playout-delay MS      serve, demo: a frame plays this long after its timestamp (default 100)
  --max-size BYTES        serve: longer datagrams are malformed (default 65507)
  --max-streams N         serve: senders followed at once; more are refused (default 64)
  --stream-timeout SECS   serve: a sender silent this long has ended: report it (default 5)
  -h, --help              show this help

The bad network is simulated at the sender: --loss 0 --reorder 0 --duplicate 0 sends a clean stream.

permissions (every mode needs --unstable-net: Deno's UDP API is unstable):
  demo, and anything on 127.0.0.1:   --unstable-net --allow-net=127.0.0.1
  serve or send with another --host:  --unstable-net --allow-net=HOST (or plain --allow-net)
`;

// RTP's registered port (RFC 3551 §8).
const DEFAULT_PORT = 5004;

// ---------------------------------------------------------------------------
// The wire format: one frame, one datagram
// ---------------------------------------------------------------------------

// Each frame travels as one UDP datagram (RFC 768): a 16-byte header, then
// padding up to the frame's size. Where a real stream carries compressed
// video, we carry zeros; only the size matters to the network. All numbers
// are big-endian ("network byte order"), as in RTP.
//
//   offset  size  field
//        0     2  magic: 0x57 0x42 ("WB"), to tell our frames from stray datagrams
//        2     2  size: the whole datagram's length in bytes, header included
//        4     4  sequence number: 0, 1, 2, ... one per frame, in capture order
//        8     8  timestamp: when the frame was captured, in microseconds since
//                 the stream's first frame, on the sender's clock
//       16   ...  payload: zeros, up to `size`
//
// The sequence number says which frame this is, so the receiver can tell a
// missing one, a late one and a second copy apart. The timestamp says when it
// was captured, so the receiver can play frames at the pace they were made,
// however unevenly they arrive. RTP (RFC 3550 §5.1) has both; its sequence
// number is 16 bits and wraps, ours is 32 bits and starts at 0 (RTP starts at
// a random one), which keeps the counting below free of wrap-around.

/** Bytes of header at the start of every frame. */
export const HEADER_SIZE = 16;

/** The first two bytes of every frame: "WB". */
export const MAGIC = 0x5742;

/** The largest frame: what one UDP datagram carries over IPv4 (65535 - 20 - 8). */
export const MAX_FRAME_SIZE = 65507;

/** One frame of the stream, as the header describes it. */
export interface StreamFrame {
  /** Which frame: 0, 1, 2, ... in capture order. */
  sequence: number;
  /** When it was captured, in µs since the stream's first frame (sender's clock). */
  timestamp: number;
  /** The datagram's length in bytes, header included: 16 to 65507. */
  size: number;
}

/**
 * Encode a frame as the datagram that carries it: the header, then zeros up
 * to `frame.size`.
 *
 * @param frame The sequence number, timestamp and size.
 * @returns `frame.size` bytes.
 * @throws {RangeError} If a field is out of range.
 *
 * @example Encode, then decode
 * ```ts
 * import { decodeStreamFrame, encodeStreamFrame } from "./udp_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const datagram = encodeStreamFrame({ sequence: 7, timestamp: 140_000, size: 100 });
 * assert.equal(datagram.length, 100);
 * assert.deepEqual(decodeStreamFrame(datagram), { sequence: 7, timestamp: 140_000, size: 100 });
 * ```
 */
export function encodeStreamFrame(frame: StreamFrame): Uint8Array<ArrayBuffer> {
  const { sequence, timestamp, size } = frame;
  checkWhole("sequence", sequence, 0, 0xffff_ffff);
  checkWhole("timestamp", timestamp, 0, Number.MAX_SAFE_INTEGER);
  checkWhole("size", size, HEADER_SIZE, MAX_FRAME_SIZE);
  const datagram = new Uint8Array(size);
  const view = new DataView(datagram.buffer);
  view.setUint16(0, MAGIC);
  view.setUint16(2, size);
  view.setUint32(4, sequence);
  view.setBigUint64(8, BigInt(timestamp));
  return datagram;
}

/**
 * Read a frame's header from a datagram, checking that it is one of ours and
 * whole. Anyone can send anything to a UDP port, so every check matters.
 *
 * @param datagram One received datagram.
 * @returns The frame it carries.
 * @throws {RangeError} If the datagram is not a whole frame; the message says why.
 *
 * @example A stray datagram is refused
 * ```ts
 * import { decodeStreamFrame } from "./udp_stream.ts";
 * import assert from "node:assert/strict";
 *
 * assert.throws(() => decodeStreamFrame(new TextEncoder().encode("hello")), RangeError);
 * ```
 */
export function decodeStreamFrame(datagram: Uint8Array): StreamFrame {
  if (datagram.length < HEADER_SIZE) {
    throw new RangeError(`${datagram.length} bytes: shorter than the ${HEADER_SIZE}-byte header`);
  }
  const view = new DataView(datagram.buffer, datagram.byteOffset, datagram.byteLength);
  const magic = view.getUint16(0);
  if (magic !== MAGIC) {
    throw new RangeError(`not a stream frame: starts 0x${hex(magic)}, expected 0x${hex(MAGIC)}`);
  }
  // The size field must match what arrived: a datagram cut short (or padded
  // out) on the way is not a frame we can trust.
  const size = view.getUint16(2);
  if (size !== datagram.length) {
    throw new RangeError(`the header says ${size} bytes, the datagram has ${datagram.length}`);
  }
  const timestamp = view.getBigUint64(8);
  if (timestamp > BigInt(Number.MAX_SAFE_INTEGER)) {
    throw new RangeError(`timestamp ${timestamp} µs is out of range`);
  }
  return { sequence: view.getUint32(4), timestamp: Number(timestamp), size };
}

function checkWhole(name: string, value: number, min: number, max: number): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new RangeError(`${name} must be a whole number from ${min} to ${max}, got ${value}`);
  }
}

const hex = (n: number) => n.toString(16).padStart(4, "0");

// ---------------------------------------------------------------------------
// A bad network, on purpose and reproducible
// ---------------------------------------------------------------------------

// Loopback never loses, reorders or duplicates a datagram, so to see what a
// receiver must cope with we make the trouble ourselves, at the sender. The
// dice come from a seeded generator, not Math.random(): the same seed gives
// the same losses, run after run, so a surprising report can be run again.

/**
 * mulberry32: a tiny, fast pseudo-random generator with a 32-bit state. Not
 * for cryptography; good enough to roll dice reproducibly.
 *
 * @param seed Any number; only its low 32 bits are used.
 * @returns A function returning the next number in [0, 1) on each call.
 *
 * @example The same seed, the same numbers
 * ```ts
 * import { mulberry32 } from "./udp_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const a = mulberry32(42), b = mulberry32(42);
 * assert.equal(a(), b());
 * assert.ok(a() >= 0 && a() < 1);
 * ```
 */
export function mulberry32(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Options for {@linkcode BadNetwork}. */
export interface BadNetworkOptions {
  /** The chance that a frame is dropped, 0 to 1. @default {0} */
  loss?: number;
  /** The chance that a frame is held back and sent after the next one, 0 to 1. @default {0} */
  reorder?: number;
  /** The chance that a frame is sent twice, 0 to 1. @default {0} */
  duplicate?: number;
  /** The seed of the random numbers. @default {1} */
  seed?: number;
}

/**
 * The simulated network between sender and receiver: for each frame, in
 * order, it says which frames go on the wire now.
 *
 * @example Drop everything
 * ```ts
 * import { BadNetwork } from "./udp_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const network = new BadNetwork({ loss: 1 });
 * assert.deepEqual(network.pass(0), []);
 * assert.equal(network.dropped, 1);
 * ```
 */
export class BadNetwork {
  /** Frames dropped so far. */
  dropped = 0;
  /** Frames held back so far (each is sent after a later one). */
  heldBack = 0;
  /** Frames sent twice so far. */
  duplicated = 0;
  #loss: number;
  #reorder: number;
  #duplicate: number;
  #random: () => number;
  #held: number | undefined;

  /**
   * @param options The chances of each kind of trouble, and the seed.
   * @throws {RangeError} If a chance is not between 0 and 1.
   */
  constructor(options: BadNetworkOptions = {}) {
    const { loss = 0, reorder = 0, duplicate = 0, seed = 1 } = options;
    for (const [name, value] of Object.entries({ loss, reorder, duplicate })) {
      if (!(value >= 0 && value <= 1)) {
        throw new RangeError(`${name} must be a probability from 0 to 1, got ${value}`);
      }
    }
    this.#loss = loss;
    this.#reorder = reorder;
    this.#duplicate = duplicate;
    this.#random = mulberry32(seed);
  }

  /**
   * Frame `sequence` is due: which sequence numbers to send now, in order.
   * `[]` when it is dropped or held back; a held frame comes out after the
   * next frame that is sent.
   *
   * @param sequence The frame that is due.
   * @returns The frames to send now.
   */
  pass(sequence: number): number[] {
    // Three rolls for every frame, whatever they decide, so that one kind of
    // trouble does not shift the dice of another: with one seed, --loss
    // drops the same frames whatever --reorder says.
    const lose = this.#random() < this.#loss;
    const hold = this.#random() < this.#reorder;
    const twice = this.#random() < this.#duplicate;
    if (lose) {
      this.dropped++;
      return [];
    }
    // One frame at most waits at a time: with one already held, this frame
    // goes now, and the held one right behind it, out of order.
    if (hold && this.#held === undefined) {
      this.#held = sequence;
      this.heldBack++;
      return [];
    }
    const out = [sequence];
    if (twice) {
      out.push(sequence);
      this.duplicated++;
    }
    if (this.#held !== undefined) out.push(this.#held);
    this.#held = undefined;
    return out;
  }

  /**
   * The stream has ended: send any frame still held back.
   *
   * @returns The held frame, if any.
   */
  flush(): number[] {
    const out = this.#held === undefined ? [] : [this.#held];
    this.#held = undefined;
    return out;
  }
}

// ---------------------------------------------------------------------------
// The sender
// ---------------------------------------------------------------------------

/** Options for {@linkcode sendStream}. */
export interface SendStreamOptions extends BadNetworkOptions {
  /** Frames per second. @default {50} */
  rate?: number;
  /** How many frames. @default {150} */
  frames?: number;
  /** Bytes per frame, header included. @default {1000} */
  size?: number;
  /** Stop sending. */
  signal?: AbortSignal;
}

/** What {@linkcode sendStream} did. */
export interface SendSummary {
  /** Frames the stream had. */
  frames: number;
  /** Datagrams that went on the wire (frames, less the dropped, plus the copies). */
  datagrams: number;
  /** Frames the bad network dropped. */
  dropped: number;
  /** Frames it held back and sent after a later one. */
  heldBack: number;
  /** Frames it sent twice. */
  duplicated: number;
}

/**
 * Send a stream of frames to `to` at a steady rate, through a
 * {@linkcode BadNetwork}. Frame n is due n / rate seconds after the start and
 * carries that moment as its timestamp; a held-back frame keeps its own, so
 * the receiver can see that it is late.
 *
 * There is no congestion control here: the rate is fixed, whatever the path
 * can carry. Fine on loopback; on a shared network RFC 8085 §3.1 asks a
 * stream to slow down when it sees loss, which is what RTCP's receiver
 * reports let a real RTP sender do.
 *
 * @param conn The sender's socket (bound to any port).
 * @param to The receiver.
 * @param options Rate, frame count and size, and the bad network.
 * @returns What was sent.
 * @throws {Error} If a datagram cannot be sent (too long, no route, ...).
 */
export async function sendStream(
  conn: Deno.DatagramConn,
  to: { hostname: string; port: number },
  options: SendStreamOptions = {},
): Promise<SendSummary> {
  const { rate = 50, frames = 150, size = 1000, signal } = options;
  if (!(rate > 0)) throw new RangeError(`rate must be above 0 frames per second, got ${rate}`);
  checkWhole("frames", frames, 0, 0xffff_ffff + 1);
  checkWhole("size", size, HEADER_SIZE, MAX_FRAME_SIZE);
  const network = new BadNetwork(options);
  const target: Deno.NetAddr = { transport: "udp", ...to };
  const timestampOf = (sequence: number) => Math.round(sequence * 1_000_000 / rate);
  let datagrams = 0;
  const send = async (sequence: number) => {
    const datagram = encodeStreamFrame({ sequence, timestamp: timestampOf(sequence), size });
    try {
      await conn.send(datagram, target);
    } catch (error) {
      const where = `udp://${formatAddress(target)}`;
      throw new Error(`cannot send frame ${sequence} (${size} bytes) to ${where}`, {
        cause: error,
      });
    }
    datagrams++;
  };

  // Each frame waits for its moment on an absolute schedule (start + n / rate),
  // not "sleep one interval" after the last: the time spent sending would add
  // up, and the stream would drift slow.
  const start = performance.now();
  for (let sequence = 0; sequence < frames; sequence++) {
    await sleepUntil(start + sequence * 1000 / rate, signal);
    for (const due of network.pass(sequence)) await send(due);
  }
  for (const held of network.flush()) await send(held);
  const { dropped, heldBack, duplicated } = network;
  return { frames, datagrams, dropped, heldBack, duplicated };
}

// A timer cannot fire sooner than about a millisecond, so a frame due sooner
// than that (a fast stream, or a sender running behind) goes at once.
function sleepUntil(time: number, signal?: AbortSignal): Promise<void> {
  signal?.throwIfAborted();
  const wait = time - performance.now();
  if (wait < 1) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const onAbort = () => {
      clearTimeout(timer);
      reject(signal?.reason);
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener("abort", onAbort);
      resolve();
    }, wait);
    signal?.addEventListener("abort", onAbort, { once: true });
  });
}

// ---------------------------------------------------------------------------
// The receiver's statistics
// ---------------------------------------------------------------------------

// A live stream cannot wait. The receiver gives every frame a playout
// deadline: the moment its timestamp says it was captured, plus a fixed
// playout delay (the "jitter buffer"). A frame that is there by its deadline
// is played; a frame that is not is skipped (the picture holds still for one
// frame) and play goes on; if it shows up later, it is late, and useless.
// Nothing is ever asked for again.
//
// The receiver's and sender's clocks are unrelated, so the first frame to
// arrive sets the offset between them: it is treated as having taken no time
// at all, and every later frame is measured against it.

/** What became of one arriving frame. */
export type FrameOutcome = "on time" | "late" | "duplicate" | "stale";

/** One frame's arrival, as {@linkcode StreamStats.record} judged it. */
export interface FrameEvent {
  /** The frame. */
  frame: StreamFrame;
  /** When it arrived, in ms on the receiver's clock. */
  arrival: number;
  /** How long after its ideal arrival it came, in ms (the first frame's delay is 0). */
  delay: number;
  /** Played ("on time"), too late to play, a second copy, or too old to tell. */
  outcome: FrameOutcome;
  /** Whether a higher sequence number had already arrived (RFC 4737's "reordered"). */
  reordered: boolean;
}

/** A stream's numbers so far, from {@linkcode StreamStats.report}. */
export interface StreamReport {
  /** Frames there should have been: the highest sequence number seen, plus 1. */
  expected: number;
  /** Distinct frames that arrived: `onTime + late`. */
  received: number;
  /** Frames that arrived by their playout deadline. */
  onTime: number;
  /** Frames that arrived after it (too late to play). */
  late: number;
  /** Frames that never arrived: `expected - received`. */
  lost: number;
  /** `lost / expected` (0 before the first frame). */
  lossRate: number;
  /** Frames that arrived after a higher-numbered one. */
  reordered: number;
  /** Second (and later) copies of a frame. */
  duplicates: number;
  /** Frames too far behind the newest to judge (see {@linkcode HISTORY}). */
  stale: number;
  /** The interarrival jitter estimate of RFC 3550 A.8, in ms. */
  jitter: number;
}

/** Options for {@linkcode StreamStats}. */
export interface StreamStatsOptions {
  /** How long after its timestamp a frame is played, in ms. @default {100} */
  playoutDelay?: number;
}

/**
 * How many of the newest sequence numbers a receiver remembers (to tell a
 * duplicate from a reordered frame). An older frame is "stale": 65536 frames
 * is 22 minutes at 50 fps, so it is far past any deadline anyway.
 */
export const HISTORY = 65536;

// What the receiver remembers about each recent sequence number.
const NOT_YET = 0, ON_TIME = 1, LATE = 2;

/**
 * One stream's receiver statistics: loss, lateness, reordering, duplicates
 * and jitter, updated frame by frame, in constant memory.
 *
 * @example Frame 1 goes missing, frame 3 comes twice
 * ```ts
 * import { StreamStats } from "./udp_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const stats = new StreamStats();
 * for (const sequence of [0, 2, 3, 3]) {
 *   const timestamp = sequence * 20_000; // 50 fps: 20 ms apart
 *   stats.record({ sequence, timestamp, size: 100 }, timestamp / 1000);
 * }
 * const report = stats.report();
 * assert.equal(report.expected, 4);
 * assert.equal(report.lost, 1);
 * assert.equal(report.duplicates, 1);
 * ```
 */
export class StreamStats {
  #playoutDelay: number;
  #state = new Uint8Array(HISTORY);
  #highest = -1;
  #offset: number | undefined;
  #transit: number | undefined;
  #jitter = 0;
  #onTime = 0;
  #late = 0;
  #reordered = 0;
  #duplicates = 0;
  #stale = 0;
  /** When the latest frame arrived (ms, receiver's clock), or -Infinity. */
  lastArrival = -Infinity;

  /**
   * @param options The playout delay.
   * @throws {RangeError} If the playout delay is negative.
   */
  constructor(options: StreamStatsOptions = {}) {
    const { playoutDelay = 100 } = options;
    if (!(playoutDelay >= 0)) {
      throw new RangeError(`playoutDelay must be 0 ms or more, got ${playoutDelay}`);
    }
    this.#playoutDelay = playoutDelay;
  }

  /**
   * Count one arriving frame.
   *
   * @param frame The frame, decoded.
   * @param arrival When it arrived, in ms on the receiver's clock.
   * @returns What became of it.
   */
  record(frame: StreamFrame, arrival: number): FrameEvent {
    const { sequence } = frame;
    const captured = frame.timestamp / 1000;
    this.lastArrival = arrival;

    // The interarrival jitter, RFC 3550 §6.4.1 and A.8. A frame's "transit"
    // is its arrival time minus its timestamp: meaningless on its own (the
    // clocks differ), but the *change* in transit from one frame to the next,
    // D, is how much the network's delay varied. J moves 1/16 of the way
    // towards each new |D|: a running average that forgets slowly and
    // shrugs off one odd frame. The RFC counts every frame, in arrival order.
    const transit = arrival - captured;
    if (this.#transit !== undefined) {
      const d = Math.abs(transit - this.#transit);
      this.#jitter += (d - this.#jitter) / 16;
    }
    this.#transit = transit;

    // The playout clock: the first frame to arrive fixes the offset between
    // the clocks, so its delay is 0 and every frame's deadline is
    // offset + its timestamp + the playout delay.
    this.#offset ??= transit;
    const delay = transit - this.#offset;
    const event = (outcome: FrameOutcome, reordered = false): FrameEvent => ({
      frame,
      arrival,
      delay,
      outcome,
      reordered,
    });

    // Too old to remember: its slot now belongs to a newer frame.
    if (sequence <= this.#highest - HISTORY) {
      this.#stale++;
      return event("stale");
    }
    const slot = sequence % HISTORY;
    if (sequence > this.#highest) {
      // New ground: forget whatever the slots between held (older frames,
      // HISTORY ago), so the frames skipped over read as not yet arrived.
      for (let s = this.#highest + 1; s < sequence && s <= this.#highest + HISTORY; s++) {
        this.#state[s % HISTORY] = NOT_YET;
      }
      this.#highest = sequence;
    } else if (this.#state[slot] !== NOT_YET) {
      this.#duplicates++;
      return event("duplicate");
    }
    // Below the highest and not seen before: it was overtaken on the way.
    const reordered = sequence < this.#highest;
    if (reordered) this.#reordered++;
    const onTime = delay <= this.#playoutDelay;
    this.#state[slot] = onTime ? ON_TIME : LATE;
    if (onTime) this.#onTime++;
    else this.#late++;
    return event(onTime ? "on time" : "late", reordered);
  }

  /**
   * The numbers so far. Loss is counted the RFC 3550 A.3 way: frames expected
   * (from the highest sequence number) less frames received. Unlike A.3, a
   * duplicate is not counted as received, so loss never goes negative.
   *
   * @returns A snapshot of the counts.
   */
  report(): StreamReport {
    const expected = this.#highest + 1;
    const received = this.#onTime + this.#late;
    const lost = expected - received;
    return {
      expected,
      received,
      onTime: this.#onTime,
      late: this.#late,
      lost,
      lossRate: expected === 0 ? 0 : lost / expected,
      reordered: this.#reordered,
      duplicates: this.#duplicates,
      stale: this.#stale,
      jitter: this.#jitter,
    };
  }

  /**
   * How each of the newest frames (up to {@linkcode HISTORY}) played: one
   * character per frame, from sequence `first`: `#` on time, `L` late, `.` lost.
   *
   * @returns The playout, oldest frame first, and its first sequence number.
   */
  playout(): { first: number; marks: string } {
    const first = Math.max(0, this.#highest - HISTORY + 1);
    let marks = "";
    for (let s = first; s <= this.#highest; s++) marks += ".#L"[this.#state[s % HISTORY]];
    return { first, marks };
  }
}

// ---------------------------------------------------------------------------
// The receiver
// ---------------------------------------------------------------------------

/** Options for {@linkcode StreamReceiver}. */
export interface StreamReceiverOptions extends StreamStatsOptions {
  /** Longer datagrams are malformed (16 to 65507). @default {MAX_FRAME_SIZE} */
  maxSize?: number;
  /** Senders followed at once; datagrams from more are refused. @default {64} */
  maxStreams?: number;
  /** The clock, in ms. @default {() => performance.now()} */
  clock?: () => number;
  /** Called for each frame, with the sender's address. */
  onFrame?: (source: string, event: FrameEvent) => void;
  /** Where notes go: a new stream, a malformed datagram (the first few). @default {console.log} */
  log?: (line: string) => void;
}

/**
 * A receiver for any number of streams on one socket, one
 * {@linkcode StreamStats} per sender address. It never answers: a UDP
 * sender's address is easily forged, so a receiver that replied to every
 * datagram could be made to send its replies at anyone.
 *
 * @example Feed it datagrams by hand
 * ```ts
 * import { encodeStreamFrame, StreamReceiver } from "./udp_stream.ts";
 * import assert from "node:assert/strict";
 *
 * const receiver = new StreamReceiver({ log: () => {} });
 * receiver.handle(encodeStreamFrame({ sequence: 0, timestamp: 0, size: 16 }), "a:1", 0);
 * receiver.handle(new Uint8Array(3), "b:2", 1);
 * assert.equal(receiver.streams.get("a:1")?.report().onTime, 1);
 * assert.equal(receiver.malformed, 1);
 * ```
 */
export class StreamReceiver {
  /** The streams being followed, by sender address (`host:port`). */
  readonly streams: Map<string, StreamStats> = new Map();
  /** Datagrams that were not whole frames. */
  malformed = 0;
  /** Datagrams from senders beyond `maxStreams`. */
  refused = 0;
  /** Datagrams handled, of every kind. */
  datagrams = 0;
  #options: Required<Omit<StreamReceiverOptions, "onFrame">> & StreamReceiverOptions;

  /**
   * @param options Playout delay, limits, clock, callbacks.
   * @throws {RangeError} If a limit is out of range.
   */
  constructor(options: StreamReceiverOptions = {}) {
    const {
      playoutDelay = 100,
      maxSize = MAX_FRAME_SIZE,
      maxStreams = 64,
      clock = () => performance.now(),
      log = console.log,
    } = options;
    checkWhole("maxSize", maxSize, HEADER_SIZE, MAX_FRAME_SIZE);
    checkWhole("maxStreams", maxStreams, 1, Number.MAX_SAFE_INTEGER);
    this.#options = { ...options, playoutDelay, maxSize, maxStreams, clock, log };
  }

  /**
   * Handle one datagram: decode it and count it in its sender's stream, or
   * count it as malformed. Never throws for bad input.
   *
   * @param datagram The bytes received (a datagram longer than `maxSize` is malformed).
   * @param source The sender, as `host:port`.
   * @param arrival When it arrived, in ms. @default {clock()}
   * @returns What became of the frame, or `undefined` if it was malformed or refused.
   */
  handle(
    datagram: Uint8Array,
    source: string,
    arrival: number = this.#options.clock(),
  ): FrameEvent | undefined {
    const { maxSize, maxStreams, playoutDelay, log, onFrame } = this.#options;
    this.datagrams++;
    let frame: StreamFrame;
    try {
      if (datagram.length > maxSize) {
        throw new RangeError(`longer than ${maxSize} bytes (--max-size)`);
      }
      frame = decodeStreamFrame(datagram);
    } catch (error) {
      // Say what was wrong with the first few; after that, only count them,
      // or a flood of junk would flood the log too.
      if (++this.malformed <= 3) {
        const more = this.malformed === 3 ? "; further ones are only counted" : "";
        log(`malformed datagram from ${source} ignored: ${(error as Error).message}${more}`);
      }
      return undefined;
    }
    let stats = this.streams.get(source);
    if (stats === undefined) {
      if (this.streams.size >= maxStreams) {
        this.refused++;
        return undefined;
      }
      stats = new StreamStats({ playoutDelay });
      this.streams.set(source, stats);
      log(`new stream from ${source}`);
    }
    const event = stats.record(frame, arrival);
    onFrame?.(source, event);
    return event;
  }

  /**
   * Forget the streams silent for `idle` ms or more: they have ended.
   *
   * @param idle How long a stream may be silent, in ms.
   * @returns The ended streams and their statistics.
   */
  endIdle(idle: number): [string, StreamStats][] {
    const now = this.#options.clock();
    const ended = [...this.streams].filter(([, stats]) => now - stats.lastArrival >= idle);
    for (const [source] of ended) this.streams.delete(source);
    return ended;
  }

  /**
   * Receive datagrams on `conn` and handle each, until `signal` aborts (which
   * closes the socket) or the socket is closed.
   *
   * @param conn A bound UDP socket.
   * @param signal Stops receiving.
   */
  async listen(conn: Deno.DatagramConn, signal?: AbortSignal): Promise<void> {
    // receive() silently cuts a datagram to the buffer's length. One byte more
    // than maxSize makes "was it too long?" a question of length.
    const buffer = new Uint8Array(this.#options.maxSize + 1);
    const stop = () => conn.close();
    if (signal?.aborted) stop();
    signal?.addEventListener("abort", stop, { once: true });
    try {
      while (true) {
        let datagram: Uint8Array, from: Deno.Addr;
        try {
          [datagram, from] = await conn.receive(buffer);
        } catch (error) {
          // An ICMP error about some earlier datagram can surface here on
          // some systems. It is not about us: carry on.
          if (error instanceof Deno.errors.ConnectionReset) continue;
          if (error instanceof Deno.errors.ConnectionRefused) continue;
          throw error;
        }
        this.handle(datagram, formatAddress(from));
      }
    } catch (error) {
      // Closing the socket rejects the pending receive(): that is how we stop.
      const closed = error instanceof Deno.errors.BadResource ||
        error instanceof Deno.errors.Interrupted;
      if (!closed) throw error;
    } finally {
      signal?.removeEventListener("abort", stop);
    }
  }
}

// ---------------------------------------------------------------------------
// Reports
// ---------------------------------------------------------------------------

/**
 * One line about the frames a stream received since the previous report, as
 * an RTCP receiver report would say it (RFC 3550 §6.4.1): the fraction lost
 * over the interval (A.3: never below 0, a late reordered frame can make the
 * count go down), and the jitter as it stands.
 *
 * @param previous The report at the start of the interval.
 * @param now The report now.
 * @returns One line, e.g. `50 frames: 49 on time, 0 late, 1 lost (2.0%), ...`.
 */
export function intervalLine(previous: StreamReport, now: StreamReport): string {
  const expected = now.expected - previous.expected;
  const lost = Math.max(0, expected - (now.received - previous.received));
  const fraction = expected === 0 ? 0 : lost / expected;
  return `${expected} frames: ${now.onTime - previous.onTime} on time, ` +
    `${now.late - previous.late} late, ${lost} lost (${percent(fraction)}), ` +
    `${now.reordered - previous.reordered} reordered, ` +
    `${now.duplicates - previous.duplicates} duplicates, jitter ${now.jitter.toFixed(2)} ms`;
}

/**
 * A stream's final report, a few lines, each starting with `indent`.
 *
 * @param report The stream's numbers.
 * @param indent Put before each line.
 * @returns The lines, joined by newlines.
 */
export function formatReport(report: StreamReport, indent = "  "): string {
  const rows = [
    ["expected", report.expected, "frames 0 to the highest sequence number seen"],
    ["on time", report.onTime, "played at their deadline"],
    ["late", report.late, "arrived after their deadline: skipped"],
    ["lost", report.lost, `never arrived: ${percent(report.lossRate)}`],
    ["reordered", report.reordered, "overtaken by a later frame on the way"],
    ["duplicates", report.duplicates, "extra copies, ignored"],
  ];
  if (report.stale > 0) rows.push(["stale", report.stale, "too old to judge"]);
  const lines = rows.map(([name, count, note]) =>
    `${indent}${String(name).padEnd(11)}${String(count).padStart(6)}   ${note}`
  );
  lines.push(
    `${indent}${"jitter".padEnd(11)}${report.jitter.toFixed(2).padStart(6)}   ms, RFC 3550 A.8`,
  );
  return lines.join("\n");
}

const percent = (fraction: number) => `${(fraction * 100).toFixed(1)}%`;

const NOTHING_YET = new StreamStats().report();

/**
 * Every second, print one {@linkcode intervalLine} per stream that received
 * anything, and end (report and forget) streams silent for `streamTimeout` ms.
 * Returns a function that stops the timer.
 */
function reportEverySecond(
  receiver: StreamReceiver,
  log: (line: string) => void,
  streamTimeout = Infinity,
): () => void {
  const previous = new Map<string, StreamReport>();
  let seconds = 0;
  const timer = setInterval(() => {
    seconds++;
    for (const [source, stats] of receiver.streams) {
      const now = stats.report();
      const before = previous.get(source) ?? NOTHING_YET;
      if (now.expected !== before.expected || now.duplicates !== before.duplicates) {
        log(`[${String(seconds).padStart(3)} s] ${source}: ${intervalLine(before, now)}`);
      }
      previous.set(source, now);
    }
    for (const [source, stats] of receiver.endIdle(streamTimeout)) {
      previous.delete(source);
      log(`stream from ${source} ended (silent for ${streamTimeout / 1000} s):`);
      log(formatReport(stats.report()));
    }
  }, 1000);
  return () => clearInterval(timer);
}

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

const FLAGS = {
  host: { type: "string", default: "127.0.0.1" },
  port: { type: "number", default: DEFAULT_PORT, integer: true, min: 0, max: 65535 },
  rate: { type: "number", default: 50, min: 0.1, max: 100_000 },
  frames: { type: "number", default: 150, integer: true, min: 1, max: 0xffff_ffff },
  size: { type: "number", default: 1000, integer: true, min: HEADER_SIZE, max: MAX_FRAME_SIZE },
  loss: { type: "number", default: 0.05, min: 0, max: 1 },
  reorder: { type: "number", default: 0.03, min: 0, max: 1 },
  duplicate: { type: "number", default: 0.01, min: 0, max: 1 },
  seed: { type: "number", default: 1, integer: true, min: 0, max: 0xffff_ffff },
  "playout-delay": { type: "number", default: 100, min: 0 },
  "max-size": { type: "number", default: MAX_FRAME_SIZE, integer: true, min: HEADER_SIZE },
  "max-streams": { type: "number", default: 64, integer: true, min: 1 },
  "stream-timeout": { type: "number", default: 5, min: 0.001 },
} as const;

type CommandFlags = Flags<typeof FLAGS>;

async function main(args: string[]): Promise<void> {
  const { flags, positionals } = parseFlags(args, FLAGS);
  if (flags["max-size"] > MAX_FRAME_SIZE) {
    throw new UsageError(`--max-size must be at most ${MAX_FRAME_SIZE}, got ${flags["max-size"]}`);
  }
  const [command, ...rest] = positionals;
  if (rest.length > 0) throw new UsageError(`unexpected argument "${rest[0]}"`);
  if (command === undefined) return await demo(flags);
  if (command === "serve") return await serveCommand(flags);
  if (command === "send") return await sendCommand(flags);
  throw new UsageError(`unknown command "${command}"; expected serve or send`);
}

async function serveCommand(flags: CommandFlags): Promise<void> {
  const conn = listenUdp(flags.host, flags.port);
  console.log(listeningBanner("udp", conn.addr as Deno.NetAddr));
  const receiver = new StreamReceiver({
    playoutDelay: flags["playout-delay"],
    maxSize: flags["max-size"],
    maxStreams: flags["max-streams"],
  });
  const stopReports = reportEverySecond(receiver, console.log, flags["stream-timeout"] * 1000);
  try {
    await receiver.listen(conn, shutdownSignal());
  } finally {
    stopReports();
  }
  for (const [source, stats] of receiver.streams) {
    console.log(`stream from ${source} (receiver stopped):`);
    console.log(formatReport(stats.report()));
  }
  console.log(
    `stopped: ${receiver.datagrams} datagrams, ${receiver.malformed} malformed, ` +
      `${receiver.refused} refused (over --max-streams)`,
  );
}

function describeNetwork(flags: CommandFlags): string {
  const { loss, reorder, duplicate, seed } = flags;
  if (loss === 0 && reorder === 0 && duplicate === 0) return "a clean network";
  return `a bad network: ${percent(loss)} loss, ${percent(reorder)} reorder, ` +
    `${percent(duplicate)} duplicate (seed ${seed})`;
}

function describeSummary(summary: SendSummary): string {
  return `${summary.frames} frames as ${summary.datagrams} datagrams: ` +
    `${summary.dropped} dropped, ${summary.heldBack} held back, ${summary.duplicated} sent twice`;
}

async function sendCommand(flags: CommandFlags): Promise<void> {
  const { host: hostname, port } = flags;
  const conn = listenUdp(localAddressFor(hostname), 0);
  const signal = shutdownSignal();
  const where = `udp://${formatAddress({ transport: "udp", hostname, port })}`;
  console.log(
    `sending ${flags.frames} frames of ${flags.size} bytes at ${flags.rate} fps to ${where}, ` +
      `through ${describeNetwork(flags)}`,
  );
  try {
    const summary = await sendStream(conn, { hostname, port }, { ...flags, signal });
    // Nobody acknowledges a datagram: "sent" is all a UDP sender can know.
    console.log(`sent ${describeSummary(summary)}`);
  } catch (error) {
    if (!signal.aborted) throw error;
    // Ctrl-C ends the stream early. The receiver will not count the frames
    // never sent as lost: it expects frames up to the highest one it saw.
    console.log(`stopped early (${(signal.reason as Error).message})`);
  } finally {
    conn.close();
  }
}

// The default run: a receiver and a sender on loopback, one stream through
// the bad network, a line per second while it plays, and a report at the end.
async function demo(flags: CommandFlags): Promise<void> {
  const playoutDelay = flags["playout-delay"];
  const conn = listenUdp("127.0.0.1", 0);
  const address = conn.addr as Deno.NetAddr;
  console.log(`receiver: ${listeningBanner("udp", address)} (playout delay ${playoutDelay} ms)`);
  const receiver = new StreamReceiver({
    playoutDelay,
    log: (line) => console.log(`receiver: ${line}`),
  });
  const stop = new AbortController();
  const listening = receiver.listen(conn, stop.signal);
  const stopReports = reportEverySecond(receiver, (line) => console.log(`receiver: ${line}`));

  const sender = listenUdp("127.0.0.1", 0);
  try {
    console.log(
      `sender: ${flags.frames} frames of ${flags.size} bytes at ${flags.rate} fps, ` +
        `through ${describeNetwork(flags)}`,
    );
    const summary = await sendStream(sender, address, flags);
    console.log(`sender: sent ${describeSummary(summary)}`);
    // Let the receiver take what is still queued: on loopback every datagram
    // sent arrives, so we wait for that many (for a second at most).
    for (let i = 0; i < 100 && receiver.datagrams < summary.datagrams; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
  } finally {
    sender.close();
    stopReports();
    stop.abort();
    await listening;
  }

  let reorderedInTime = false;
  for (const [source, stats] of receiver.streams) {
    const report = stats.report();
    reorderedInTime ||= report.reordered > 0 && report.late === 0;
    const { first, marks } = stats.playout();
    console.log(
      `receiver: the playout from frame ${first}, a line per 50 (# played, L late, . lost):`,
    );
    for (let i = 0; i < marks.length; i += 50) console.log(`  ${marks.slice(i, i + 50)}`);
    console.log(`receiver: report for the stream from ${source}:`);
    console.log(formatReport(report));
  }
  console.log(
    "Every lost frame was skipped at its deadline and play went on; none was asked for again.\n" +
      (reorderedInTime
        ? "Reordered frames still played: the playout delay gave them time to catch up.\n"
        : "") +
      "Over TCP the losses would come back as retransmissions, and every frame behind each one\n" +
      "would wait for it: late frames instead of lost ones (notebooks/05_udp_stream.ipynb).",
  );
  console.log("receiver: stopped; nothing left open");
}

if (import.meta.main) runMain(USAGE, main);
