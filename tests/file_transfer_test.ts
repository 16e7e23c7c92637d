// scripts/file_transfer.ts: whole files or nothing, under the narrowest permissions.

import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  DirectoryStore,
  memorySource,
  problemWithName,
  receiveFile,
  sendFile,
} from "../scripts/file_transfer.ts";
import { encodeFrame } from "../lib/encode_frame.ts";
import { readFrame } from "../lib/read_frame.ts";
import { writeAll } from "../lib/write_all.ts";
import {
  DENO,
  randomBytes,
  runScript,
  scriptPath,
  sha256,
  startProcess,
  within,
} from "./_helpers.ts";

const NET = "--allow-net=127.0.0.1";

/** A receiver (`serve --dir`) with exactly the permissions its help names. */
function startReceiver(dir: string, extra: string[] = []) {
  return startProcess(DENO, [
    "run",
    "--no-prompt",
    NET,
    `--allow-read=${dir}`,
    `--allow-write=${dir}`,
    scriptPath("file_transfer"),
    "serve",
    "--dir",
    dir,
    "--port",
    "0",
    ...extra,
  ]);
}

function sendWithCli(path: string, port: number, extra: string[] = []) {
  return runScript("file_transfer", ["send", path, "--port", String(port), ...extra], {
    flags: [NET, `--allow-read=${path}`],
    timeout: 120_000,
  });
}

async function listDir(dir: string): Promise<string[]> {
  return (await Array.fromAsync(Deno.readDir(dir))).map((entry) => entry.name).sort();
}

/** Poll until `check` holds (the receiver cleans up asynchronously), up to 20 s. */
async function eventually(check: () => Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  assert.fail(`never happened: ${what}`);
}

Deno.test("file_transfer: names with separators, dot names and control characters are refused", () => {
  for (
    const bad of [
      "",
      ".",
      "..",
      "../x",
      "a/b",
      "a\\b",
      "/etc/passwd",
      "x\0y",
      "tab\there",
      "é".repeat(200),
    ]
  ) {
    assert.ok(problemWithName(bad), JSON.stringify(bad));
  }
  for (const good of ["a.txt", "..hidden", "...", "résumé.pdf", "x".repeat(255)]) {
    assert.equal(problemWithName(good), undefined, good);
  }
});

Deno.test("file_transfer: any name holding a separator is refused (property)", () => {
  fc.assert(
    fc.property(fc.string(), fc.constantFrom("/", "\\"), fc.string(), (a, sep, b) => {
      assert.ok(problemWithName(a + sep + b));
    }),
  );
});

Deno.test("file_transfer: a long name in many-byte characters gets a temp name within 255 bytes", async () => {
  const target = await Deno.makeTempDir();
  try {
    // 246 and 252 bytes: valid names, but their first 100 characters are far
    // more than 100 bytes ("文" takes 3, "😀" 4).
    for (const name of ["文".repeat(82), "😀".repeat(63), "a".repeat(99) + "é".repeat(78)]) {
      assert.equal(problemWithName(name), undefined);
      const upload = await new DirectoryStore(target).begin(name);
      const [temp] = await listDir(target);
      assert.ok(new TextEncoder().encode(temp).length <= 255, temp);
      assert.ok(!temp.includes("\uFFFD"), `a character was cut in two: ${temp}`);
      assert.ok(name.startsWith(temp.slice(1, temp.lastIndexOf(".", temp.length - 6))), temp);
      await upload.write(new TextEncoder().encode("x"));
      await upload.commit();
      assert.deepEqual(await listDir(target), [name]);
      await Deno.remove(`${target}/${name}`);
    }
  } finally {
    await Deno.remove(target, { recursive: true });
  }
});

Deno.test("file_transfer: an --idle-timeout longer than a timer can wait is a usage error, exit 2", async () => {
  const busy = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const port = String(busy.addr.port);
    const result = await runScript("file_transfer", [
      "serve",
      "--port",
      port,
      "--idle-timeout",
      "3000000",
    ], { timeout: 10_000 });
    assert.equal(result.code, 2, result.stderr);
    assert.match(result.stderr, /^error: --idle-timeout must be a number from 0\.001 to 86400/);
  } finally {
    busy.close();
  }
});

Deno.test("file_transfer: the CLI sends 0 B, 1 B and 100 MiB byte-exact, with scoped permissions, leaving no temp file", async () => {
  const source = await Deno.makeTempDir();
  const target = await Deno.makeTempDir();
  const receiver = await startReceiver(target);
  try {
    for (
      const [name, size] of [["empty", 0], ["one", 1], ["big.bin", 100 * 1024 * 1024]] as const
    ) {
      const data = randomBytes(size);
      await Deno.writeFile(`${source}/${name}`, data);
      const result = await sendWithCli(`${source}/${name}`, receiver.port);
      assert.equal(result.code, 0, result.stderr);
      assert.match(result.stdout, new RegExp(`sent "${name}" \\(${size} bytes\\)`));
      assert.equal(
        await sha256(await Deno.readFile(`${target}/${name}`)),
        await sha256(data),
        name,
      );
    }
    assert.deepEqual(await listDir(target), ["big.bin", "empty", "one"]);
  } finally {
    const { code, stdout } = await receiver.stop();
    assert.equal(code, 0);
    assert.match(stdout, /received "big.bin" \(104857600 bytes/);
    await Deno.remove(source, { recursive: true });
    await Deno.remove(target, { recursive: true });
  }
});

Deno.test("file_transfer: killing the sender mid-transfer leaves nothing under the target name", async () => {
  const target = await Deno.makeTempDir();
  const receiver = await startReceiver(target);
  // A sender in its own process: header, go-ahead, 10 of 100 MiB, then it waits to be killed.
  const program = `
    import { encodeFrame } from "${new URL("../lib/encode_frame.ts", import.meta.url).href}";
    import { readFrame } from "${new URL("../lib/read_frame.ts", import.meta.url).href}";
    import { writeAll } from "${new URL("../lib/write_all.ts", import.meta.url).href}";
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: ${receiver.port} });
    const header = { name: "victim.bin", size: 104857600, sha256: "${"0".repeat(64)}" };
    await writeAll(conn, encodeFrame(new TextEncoder().encode(JSON.stringify(header))));
    await readFrame(conn);
    await writeAll(conn, new Uint8Array(10 * 1024 * 1024));
    console.log("halfway");
    setInterval(() => {}, 1000);
  `;
  const sender = new Deno.Command(DENO, {
    args: ["eval", "--ext=ts", program],
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  try {
    const reader = sender.stdout.pipeThrough(new TextDecoderStream()).getReader();
    let out = "";
    while (!out.includes("halfway")) out += (await reader.read()).value ?? "";
    // The partial upload exists, under a temporary name only.
    const names = await listDir(target);
    assert.equal(names.length, 1);
    assert.match(names[0], /^\.victim\.bin\.[0-9a-f]{8}\.part$/);
    sender.kill("SIGKILL");
    await sender.status;
    await reader.cancel();
    await eventually(async () => (await listDir(target)).length === 0, "the temp file is removed");
  } finally {
    const { stdout } = await receiver.stop();
    assert.match(stdout, /discarded "victim.bin": the sender left after \d+ of 104857600 bytes/);
    await Deno.remove(target, { recursive: true });
  }
});

Deno.test("file_transfer: a wrong hash is reported, the temp file removed, and the old file kept", async () => {
  const target = await Deno.makeTempDir();
  await Deno.writeTextFile(`${target}/keep.txt`, "the good version");
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const receiving = receiveFile(await accepted, new DirectoryStore(target));
  const verdict = await sendFile(conn, "keep.txt", memorySource(randomBytes(300_000)), {
    sha256: "f".repeat(64),
  });
  conn.close();
  listener.close();
  assert.equal(verdict.ok, false);
  assert.match(
    !verdict.ok ? verdict.error : "",
    /SHA-256 mismatch: announced f{64}, got [0-9a-f]{64}/,
  );
  assert.match(await receiving, /discarded "keep.txt": SHA-256 mismatch/);
  assert.deepEqual(await listDir(target), ["keep.txt"]);
  assert.equal(await Deno.readTextFile(`${target}/keep.txt`), "the good version");
  await Deno.remove(target, { recursive: true });
});

Deno.test("file_transfer: the receiver refuses a bad name or an oversized file before any body byte", async () => {
  const target = await Deno.makeTempDir();
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  for (
    const [name, size, expected] of [
      ["../escape", 10, /path separator/],
      ["huge.bin", 5000, /5000 bytes is over the limit of 1000/],
    ] as const
  ) {
    const accepted = listener.accept();
    const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
    const receiving = receiveFile(await accepted, new DirectoryStore(target), { maxSize: 1000 });
    const header = { name, size, sha256: "0".repeat(64) };
    await writeAll(conn, encodeFrame(new TextEncoder().encode(JSON.stringify(header))));
    const reply = JSON.parse(new TextDecoder().decode((await readFrame(conn))!));
    assert.equal(reply.ok, false);
    assert.match(reply.error, expected);
    await receiving;
    conn.close();
  }
  listener.close();
  assert.deepEqual(await listDir(target), []);
  await Deno.remove(target, { recursive: true });
});

Deno.test("file_transfer: garbage instead of a header is answered and the connection closed", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const receiving = receiveFile(await accepted, new DirectoryStore("/nonexistent"));
  await writeAll(conn, encodeFrame(new TextEncoder().encode("not json {")));
  const reply = JSON.parse(new TextDecoder().decode((await readFrame(conn))!));
  assert.deepEqual(reply, { ok: false, error: "the header is not JSON" });
  assert.equal(await readFrame(conn), null);
  assert.equal(await receiving, "refused: the header is not JSON");
  conn.close();
  listener.close();
});

Deno.test("file_transfer: each side fails with one error line naming the permission it lacks", async () => {
  const dir = await Deno.makeTempDir();
  await Deno.writeTextFile(`${dir}/f.txt`, "x");
  const send = await runScript("file_transfer", ["send", `${dir}/f.txt`], { flags: [NET] });
  assert.equal(send.code, 1);
  assert.match(
    send.stderr,
    new RegExp(
      `^error: missing permission: needs read access to ${dir}/f.txt; run again with --allow-read=${dir}/f.txt\n$`,
    ),
  );
  const serve = await runScript("file_transfer", ["serve", "--dir", dir, "--port", "0"], {
    flags: [NET],
  });
  assert.equal(serve.code, 1);
  assert.match(serve.stderr, /^error: .*missing permission: needs read access/);
  await Deno.remove(dir, { recursive: true });
});

Deno.test("file_transfer: `serve` without --dir checks each file and writes nothing", async () => {
  const source = await Deno.makeTempDir();
  await Deno.writeFile(`${source}/f.bin`, randomBytes(100_000));
  const receiver = await startProcess(DENO, [
    "run",
    "--no-prompt",
    NET,
    scriptPath("file_transfer"),
    "serve",
    "--port",
    "0",
  ]);
  const result = await sendWithCli(`${source}/f.bin`, receiver.port);
  const { code, stdout } = await receiver.stop();
  await Deno.remove(source, { recursive: true });
  assert.equal(result.code, 0, result.stderr);
  assert.equal(code, 0);
  assert.match(stdout, /no --dir: each file is checked, then discarded/);
  assert.match(stdout, /received "f.bin" \(100000 bytes/);
});

Deno.test("file_transfer: the demo keeps the good file and refuses, discards or drops the rest", async () => {
  const { code, stdout, stderr } = await runScript("file_transfer");
  assert.equal(code, 0, stderr);
  assert.match(stdout, /receiver: received "report.bin" \(8388608 bytes/);
  assert.match(stdout, /receiver: refused: "..\/..\/etc\/passwd" contains a path separator/);
  assert.match(stdout, /receiver: discarded "copy.bin": SHA-256 mismatch/);
  assert.match(
    stdout,
    /receiver: discarded "half.bin": the sender left after 1048576 of 8388608 bytes/,
  );
  assert.match(stdout, /files the receiver kept: \["report.bin"\]/);
});

Deno.test("file_transfer: an oversized header gets a verdict saying so", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const accepted = listener.accept();
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const receiving = receiveFile(await accepted, new DirectoryStore("/nonexistent"));
  await writeAll(conn, new Uint8Array([0, 1, 0, 0])); // announces a 64 KiB header
  const reply = JSON.parse(new TextDecoder().decode((await readFrame(conn))!));
  assert.deepEqual(reply, { ok: false, error: "the header is over 4096 bytes" });
  assert.equal(await receiving, "refused: a header of 65536 bytes");
  conn.close();
  listener.close();
});

Deno.test("file_transfer: serve --idle-timeout drops a sender that goes silent after the go-ahead", async () => {
  const target = await Deno.makeTempDir();
  const receiver = await startReceiver(target, ["--idle-timeout", "0.3"]);
  let code = -1, stdout = "";
  const conn = await Deno.connect({ hostname: "127.0.0.1", port: receiver.port });
  try {
    const header = { name: "stalled.bin", size: 100, sha256: "0".repeat(64) };
    await writeAll(conn, encodeFrame(new TextEncoder().encode(JSON.stringify(header))));
    const goAhead = JSON.parse(new TextDecoder().decode((await readFrame(conn))!));
    assert.deepEqual(goAhead, { ok: true });
    await writeAll(conn, new Uint8Array(10)); // 10 of 100 bytes, then silence
    // The receiver hangs up after the configured 0.3 s, well before the 30 s default,
    // without a verdict.
    assert.equal(
      await within(5000, "the silent sender dropped", () => readFrame(conn)),
      null,
    );
    await eventually(async () => (await listDir(target)).length === 0, "the temp file is removed");
  } finally {
    conn.close();
    ({ code, stdout } = await receiver.stop());
    await Deno.remove(target, { recursive: true });
  }
  assert.equal(code, 0);
  assert.match(stdout, /dropped: silent for 0\.3 s/);
});

Deno.test("file_transfer: send --name stores the file under that name", async () => {
  const source = await Deno.makeTempDir();
  const target = await Deno.makeTempDir();
  const receiver = await startReceiver(target);
  try {
    const data = randomBytes(1000);
    await Deno.writeFile(`${source}/original.bin`, data);
    const result = await sendWithCli(`${source}/original.bin`, receiver.port, [
      "--name",
      "other.bin",
    ]);
    assert.equal(result.code, 0, result.stderr);
    assert.match(result.stdout, /sent "other\.bin" \(1000 bytes\)/);
    assert.deepEqual(await listDir(target), ["other.bin"]);
    assert.equal(await sha256(await Deno.readFile(`${target}/other.bin`)), await sha256(data));
  } finally {
    const { code } = await receiver.stop();
    await Deno.remove(source, { recursive: true });
    await Deno.remove(target, { recursive: true });
    assert.equal(code, 0);
  }
});

Deno.test("file_transfer: serve --max-size 10 keeps a 10-byte file and refuses an 11-byte one", async () => {
  const source = await Deno.makeTempDir();
  const target = await Deno.makeTempDir();
  const receiver = await startReceiver(target, ["--max-size", "10"]);
  let code = -1, stdout = "";
  try {
    await Deno.writeFile(`${source}/fits.bin`, randomBytes(10));
    await Deno.writeFile(`${source}/over.bin`, randomBytes(11));
    const fits = await sendWithCli(`${source}/fits.bin`, receiver.port);
    assert.equal(fits.code, 0, fits.stderr);
    const over = await sendWithCli(`${source}/over.bin`, receiver.port);
    assert.equal(over.code, 1, over.stdout);
    assert.match(
      over.stderr,
      /^error: .*the receiver refused "over\.bin": 11 bytes is over the limit of 10/,
    );
    assert.deepEqual(await listDir(target), ["fits.bin"]);
  } finally {
    ({ code, stdout } = await receiver.stop());
    await Deno.remove(source, { recursive: true });
    await Deno.remove(target, { recursive: true });
  }
  assert.equal(code, 0);
  assert.match(stdout, /refused "over\.bin": 11 bytes is over the limit/);
});
