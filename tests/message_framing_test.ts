// scripts/message_framing.ts: the framed receiver and sender, as a library and
// from the command line, with messages split and merged in every way.

import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  frameMessage,
  type Framing,
  loopbackPair,
  receiveMessages,
} from "../scripts/message_framing.ts";
import { FrameTooLargeError } from "../lib/frame_too_large_error.ts";
import { writeAll } from "../lib/write_all.ts";
import { PEERS, peerTest, runScript, startServer } from "./_helpers.ts";

const encoder = new TextEncoder();

/** Send `messages` framed, in writes cut at `cuts`, and collect what the receiver yields. */
async function roundTrip(framing: Framing, messages: Uint8Array[], cuts: number[]) {
  const { sender, receiver } = await loopbackPair();
  const received = Array.fromAsync(receiveMessages(receiver, framing));
  const wire = new Uint8Array(messages.flatMap((m) => [...frameMessage(m, framing)]));
  let start = 0;
  for (
    const cut of [...new Set(cuts)].filter((c) => c > 0 && c < wire.length).sort((a, b) => a - b)
  ) {
    await writeAll(sender, wire.subarray(start, cut));
    start = cut;
  }
  await writeAll(sender, wire.subarray(start));
  sender.close();
  const result = await received;
  try {
    receiver.close();
  } catch { /* the line reader closes it at the end of its stream */ }
  return result;
}

Deno.test("message_framing: both framings return each message intact, however the writes are cut (property)", async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.constantFrom<Framing>("line", "length"),
      fc.array(fc.uint8Array({ maxLength: 200 }), { maxLength: 12 }),
      fc.array(fc.nat(3000), { maxLength: 10 }),
      async (framing, raw, cuts) => {
        // Lines may hold anything but "\n", and a trailing "\r" is taken as CRLF.
        const messages = framing === "line"
          ? raw.map((m) => m.map((b) => (b === 0x0a || b === 0x0d ? 0x20 : b)))
          : raw;
        assert.deepEqual(await roundTrip(framing, messages, cuts), messages);
      },
    ),
    { numRuns: 40 },
  );
});

Deno.test("message_framing: a line cannot carry a newline; a length-prefixed message can", () => {
  assert.throws(() => frameMessage(encoder.encode("a\nb"), "line"), /--framing length/);
  assert.deepEqual([...frameMessage(encoder.encode("a\nb"), "length")], [0, 0, 0, 3, 97, 10, 98]);
});

Deno.test("message_framing: a message over the cap fails the receiver with FrameTooLargeError", async () => {
  for (const framing of ["line", "length"] as const) {
    const { sender, receiver } = await loopbackPair();
    const received = Array.fromAsync(receiveMessages(receiver, framing, 100));
    await writeAll(sender, frameMessage(new Uint8Array(101).fill(65), framing)).catch(() => {});
    await assert.rejects(received, FrameTooLargeError, framing);
    sender.close();
    try {
      receiver.close();
    } catch { /* already closed */ }
  }
});

Deno.test("message_framing: a CRLF line of exactly the cap is accepted: the CR is not counted", async () => {
  for (const writes of [["abcde\r\n"], ["abcde\r", "\n"]]) {
    const { sender, receiver } = await loopbackPair();
    const received = Array.fromAsync(receiveMessages(receiver, "line", 5));
    for (const text of writes) {
      await writeAll(sender, encoder.encode(text));
      await new Promise((resolve) => setTimeout(resolve, 20)); // a read of its own
    }
    sender.close();
    assert.deepEqual(await received, [encoder.encode("abcde")], JSON.stringify(writes));
    try {
      receiver.close();
    } catch { /* the line reader closes it at the end of its stream */ }
  }
});

Deno.test("message_framing: the demo shows merged reads, both fixes and a partial write", async () => {
  const { code, stdout, stderr } = await runScript("message_framing");
  assert.equal(code, 0, stderr);
  assert.match(stdout, /read 1: "HELLOHOW ARE YOU\?BYE/, "three writes arrive merged in one read");
  assert.match(stdout, /message: "TWO"\n {3}message: "LINES"/, "a newline splits a line message");
  assert.match(stdout, /message: "TWO\\nLINES"/, "a length prefix keeps it whole");
  assert.match(stdout, /on the wire, "HELLO" is: 00 00 00 05 48 45 4c 4c 4f/);
  const partial = stdout.match(/one write\(\) of (\d+) bytes took (\d+)/);
  assert.ok(partial && Number(partial[2]) < Number(partial[1]), stdout);
  assert.match(stdout, /the receiver got 16777216/);
});

Deno.test("message_framing: `serve` prints what `send` sends, in both framings, and drops an oversized message", async () => {
  for (const framing of ["line", "length"]) {
    const server = await startServer("message_framing", ["--framing", framing, "--max-size", "20"]);
    const port = String(server.port);
    const sent = await runScript("message_framing", [
      "send",
      "--framing",
      framing,
      "--port",
      port,
      "first",
      "second message",
    ]);
    assert.equal(sent.code, 0, sent.stderr);
    const big = await runScript("message_framing", [
      "send",
      "--framing",
      framing,
      "--port",
      port,
      "x".repeat(50),
    ]);
    assert.equal(big.code, 0, big.stderr);
    // The next client is served as usual.
    await runScript("message_framing", ["send", "--framing", framing, "--port", port, "after"]);
    const { code, stdout } = await server.stop();
    assert.equal(code, 0);
    assert.match(stdout, /: "first"\n.*: "second message"\n.*: closed/);
    assert.match(stdout, /dropped: message of \d+ bytes exceeds the limit of 20 bytes/);
    assert.match(stdout, /: "after"/);
  }
});

peerTest("message_framing: socat as a line-framed client, with CRLF line endings", [
  PEERS.socat,
], async () => {
  const server = await startServer("message_framing");
  const socat = new Deno.Command("socat", {
    args: ["-", `TCP:127.0.0.1:${server.port}`],
    stdin: "piped",
    stdout: "null",
    stderr: "piped",
  }).spawn();
  const writer = socat.stdin.getWriter();
  await writer.write(encoder.encode("from socat\r\nline two\n"));
  await writer.close();
  const status = await socat.output();
  const { stdout } = await server.stop();
  assert.equal(status.code, 0);
  assert.match(stdout, /: "from socat"\n.*: "line two"\n/);
});
