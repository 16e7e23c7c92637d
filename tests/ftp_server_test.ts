// scripts/ftp_server.ts: the commands and their codes, a root no request
// leaves, uploads that are whole or absent, limits, FTPS; and interop with
// curl, lftp and Python's ftplib, byte-exact.

import assert from "node:assert/strict";
import fc from "npm:fast-check@4.3.0";
import {
  DirectoryFileSystem,
  formatFacts,
  formatListLine,
  formatReply,
  FromNetworkAscii,
  FtpControl,
  FtpError,
  type FtpFileSystem,
  type FtpServerOptions,
  MemoryFileSystem,
  parseEprtArgument,
  parsePortArgument,
  readAll,
  resolvePath,
  serveFtp,
  toNetworkAscii,
} from "../scripts/ftp_server.ts";
import { withTimeout } from "../lib/with_timeout.ts";
import { writeAll } from "../lib/write_all.ts";
import {
  DENO,
  makeTestCertificates,
  PEERS,
  peerTest,
  PYTHON,
  randomBytes,
  run,
  runScript,
  scriptPath,
  sha256,
  startProcess,
} from "./_helpers.ts";

const NET = "--allow-net=127.0.0.1";
const MIB = 1024 * 1024;
const encode = (text: string) => new TextEncoder().encode(text);
const decode = (bytes: Uint8Array) => new TextDecoder().decode(bytes);

// ---------------------------------------------------------------------------
// Helpers: a server in this process, a logged-in control connection
// ---------------------------------------------------------------------------

interface Running {
  port: number;
  logs: string[];
}

/** Run `fn` against a server on 127.0.0.1:0 with `options`; stop it after. */
async function withServer(
  options: FtpServerOptions,
  fn: (server: Running) => Promise<void>,
  hostname = "127.0.0.1",
): Promise<void> {
  const listener = Deno.listen({ hostname, port: 0 });
  const logs: string[] = [];
  const stop = new AbortController();
  const server = serveFtp(listener, {
    log: (line) => logs.push(line),
    ...options,
    signal: stop.signal,
  });
  try {
    await fn({ port: listener.addr.port, logs });
  } finally {
    stop.abort();
    await server;
  }
}

async function connect(port: number, hostname = "127.0.0.1"): Promise<FtpControl> {
  const { control, greeting } = await FtpControl.connect(hostname, port);
  assert.equal(greeting.code, 220);
  return control;
}

async function login(port: number, user = "anonymous", password = "guest"): Promise<FtpControl> {
  const control = await connect(port);
  assert.equal((await control.send(`USER ${user}`)).code, 331);
  assert.equal((await control.send(`PASS ${password}`)).code, 230);
  return control;
}

/** Send `line`, assert the reply's code, return its first line. */
async function expectCode(control: FtpControl, line: string, code: number): Promise<string> {
  const reply = await control.send(line);
  assert.equal(reply.code, code, `${line} -> ${reply.lines.join(" | ")}`);
  return reply.lines[0];
}

/**
 * EPSV and connect, send `before` (a REST, say) and `command`; then read or
 * write the data, and read the final reply.
 */
async function transfer(
  control: FtpControl,
  command: string,
  upload?: Uint8Array,
  before: string[] = [],
): Promise<{ code: number; data: Uint8Array }> {
  const data = await control.passive();
  for (const line of before) await control.send(line);
  const opening = await control.send(command);
  if (opening.code !== 150) {
    data.close();
    return { code: opening.code, data: new Uint8Array(0) };
  }
  let received: Uint8Array = new Uint8Array(0);
  if (upload) {
    await writeAll(data, upload);
    data.close();
  } else {
    received = await readAll(data);
  }
  return { code: (await control.reply()).code, data: received };
}

async function eventually(check: () => boolean | Promise<boolean>, what: string): Promise<void> {
  for (let i = 0; i < 400; i++) {
    if (await check()) return;
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
  assert.fail(`never happened: ${what}`);
}

async function readText(fs: FtpFileSystem, path: string): Promise<string> {
  const file = await fs.read(path);
  const buffer = new Uint8Array(65536);
  let text = "";
  for (let n = await file.read(buffer); n !== null; n = await file.read(buffer)) {
    text += decode(buffer.subarray(0, n));
  }
  file.close();
  return text;
}

/** A folder `outside/` with a secret, and `outside/root/` to serve, with symlinks pointing out. */
async function makeJail(): Promise<{ base: string; root: string; snapshot(): Promise<string> }> {
  const base = await Deno.makeTempDir();
  const root = `${base}/root`;
  await Deno.mkdir(`${root}/pub`, { recursive: true });
  await Deno.writeTextFile(`${base}/secret.txt`, "outside the root");
  await Deno.writeTextFile(`${root}/pub/hello.txt`, "hello\n");
  await Deno.writeTextFile(`${root}/keep.txt`, "the good version");
  await Deno.symlink(`${base}/secret.txt`, `${root}/link-out`);
  await Deno.symlink(base, `${root}/dir-out`);
  await Deno.symlink("pub/hello.txt", `${root}/link-in`);
  // What lies outside the root, with contents: must never change.
  const snapshot = async () => {
    const names = [];
    for await (const entry of Deno.readDir(base)) {
      if (entry.name !== "root") {
        names.push(`${entry.name}=${await Deno.readTextFile(`${base}/${entry.name}`)}`);
      }
    }
    return names.sort().join(",");
  };
  return { base, root, snapshot };
}

// ---------------------------------------------------------------------------
// Pure parts
// ---------------------------------------------------------------------------

Deno.test("ftp_server: resolvePath() resolves like a chroot and refuses climbs, backslashes, controls", () => {
  const good: [string, string, string][] = [
    ["/", "a.txt", "/a.txt"],
    ["/pub", "a.txt", "/pub/a.txt"],
    ["/pub", "/a.txt", "/a.txt"],
    ["/pub", "..", "/"],
    ["/pub/x", "../../y", "/y"],
    ["/", "./a/./b/", "/a/b"],
    ["/", "a//b", "/a/b"],
    ["/", "%2e%2e/secret", "/%2e%2e/secret"], // nothing is decoded: a name with % in it
    ["/", "...", "/..."],
    ["/", "résumé.txt", "/résumé.txt"],
  ];
  for (const [cwd, argument, expected] of good) assert.equal(resolvePath(cwd, argument), expected);
  const bad: [string, string, number][] = [
    ["/", "..", 550],
    ["/", "../etc/passwd", 550],
    ["/pub", "../..", 550],
    ["/", "/../etc", 550],
    ["/", "a/../../b", 550],
    ["/", "..\\..\\windows", 550],
    ["/", "a\0b", 501],
    ["/", "a\r\nDELE b", 501],
    ["/", "", 501],
    ["/", "x".repeat(256), 550],
  ];
  for (const [cwd, argument, code] of bad) {
    assert.throws(
      () => resolvePath(cwd, argument),
      (error: unknown) => error instanceof FtpError && error.code === code,
      JSON.stringify(argument),
    );
  }
  assert.throws(() => resolvePath("/", "../x", 553), (error: FtpError) => error.code === 553);
});

Deno.test("ftp_server: resolvePath() never returns a path with . or .. in it (property)", () => {
  const segment = fc.constantFrom("a", "b", ".", "..", "", "c d", "é");
  fc.assert(
    fc.property(
      fc.array(segment, { maxLength: 8 }),
      fc.array(segment, { maxLength: 8 }),
      (cwd, arg) => {
        const base = resolvePath("/", "/" + cwd.filter((s) => s !== "..").join("/"));
        let resolved: string;
        try {
          resolved = resolvePath(base, arg.join("/") || ".");
        } catch (error) {
          assert.ok(error instanceof FtpError && [550, 501].includes(error.code));
          return;
        }
        assert.ok(resolved.startsWith("/"));
        assert.ok(!resolved.split("/").some((part) => part === "." || part === ".."), resolved);
      },
    ),
  );
});

Deno.test("ftp_server: PORT and EPRT arguments parse, and malformed ones get 501 or 522", () => {
  assert.deepEqual(parsePortArgument("127,0,0,1,4,1"), { hostname: "127.0.0.1", port: 1025 });
  assert.deepEqual(parseEprtArgument("|1|127.0.0.1|6275|"), { hostname: "127.0.0.1", port: 6275 });
  assert.deepEqual(parseEprtArgument("!2!::1!6275!"), { hostname: "::1", port: 6275 });
  for (const bad of ["", "1,2,3", "256,0,0,1,1,1", "a,b,c,d,e,f", "1,2,3,4,5,6,7"]) {
    assert.throws(() => parsePortArgument(bad), (error: FtpError) => error.code === 501, bad);
  }
  for (
    const bad of ["", "|1|127.0.0.1|", "|1|300.0.0.1|80|", "|1|127.0.0.1|0|", "|2|1.2.3.4|80|"]
  ) {
    assert.throws(() => parseEprtArgument(bad), (error: FtpError) => error.code === 501, bad);
  }
  assert.throws(() => parseEprtArgument("|3|x|80|"), (error: FtpError) => error.code === 522);
});

Deno.test("ftp_server: TYPE A conversion survives any chunking, CRLF split or not (property)", () => {
  const text = fc.array(fc.constantFrom(0x0a, 0x0d, 0x41, 0x42), { maxLength: 200 });
  fc.assert(
    fc.property(text, fc.array(fc.nat(200), { maxLength: 6 }), (bytes, cuts) => {
      const input = Uint8Array.from(bytes);
      const points = [...new Set(cuts.map((cut) => cut % (input.length + 1)))].sort((a, b) =>
        a - b
      );
      const bounds = [0, ...points, input.length];
      const chunks = bounds.slice(1).map((end, i) => input.subarray(bounds[i], end));
      // Out: every LF is preceded by a CR, and nothing else changes.
      const state = { lastWasCr: false };
      const wire = chunks.flatMap((chunk) => [...toNetworkAscii(chunk, state)]);
      const expected = [...input].flatMap((byte, i) =>
        byte === 0x0a && input[i - 1] !== 0x0d ? [0x0d, 0x0a] : [byte]
      );
      assert.deepEqual(wire, expected);
      // In: CRLF becomes LF; bare CRs stay.
      const back = new FromNetworkAscii();
      const stored = [...chunks.flatMap((chunk) => [...back.push(chunk)]), ...back.flush()];
      assert.deepEqual(
        stored,
        [...decode(input).replaceAll("\r\n", "\n")].map((c) => c.charCodeAt(0)),
      );
    }),
  );
});

Deno.test("ftp_server: LIST lines look like ls -l, MLSD facts like RFC 3659", () => {
  const now = new Date("2024-06-01T12:00:00Z");
  const file = {
    name: "a.txt",
    type: "file",
    size: 1234,
    modified: new Date("2024-05-02T03:04:05Z"),
    mode: 0o640,
  } as const;
  const old = { ...file, modified: new Date("2020-01-09T00:00:00Z") };
  const dir = { name: "pub", type: "dir", size: 0, modified: now } as const;
  assert.equal(formatListLine(file, now), "-rw-r----- 1 ftp ftp         1234 May 02 03:04 a.txt");
  assert.equal(formatListLine(old, now), "-rw-r----- 1 ftp ftp         1234 Jan 09  2020 a.txt");
  assert.equal(formatListLine(dir, now), "drwxr-xr-x 1 ftp ftp            0 Jun 01 12:00 pub");
  const all = new Set(["type", "size", "modify", "perm"]);
  assert.equal(
    formatFacts(file, "a.txt", all, false),
    "type=file;size=1234;modify=20240502030405;perm=r; a.txt",
  );
  assert.equal(
    formatFacts(dir, "pub", all, true),
    "type=dir;modify=20240601120000;perm=elcdmpf; pub",
  );
  assert.equal(formatFacts(file, "a.txt", new Set(["size"]), false), "size=1234; a.txt");
});

Deno.test("ftp_server: formatReply() marks a multi-line reply's first and last lines", () => {
  assert.equal(formatReply(200, ["ok"]), "200 ok\r\n");
  assert.equal(
    formatReply(211, ["Features:", " SIZE", "226 looks like an end", "End"]),
    "211-Features:\r\n SIZE\r\n 226 looks like an end\r\n211 End\r\n",
  );
});

Deno.test("ftp_server: MemoryFileSystem keeps an upload out of sight until commit, and drops it on abort", async () => {
  const fs = new MemoryFileSystem({ "a.txt": "old", "dir/b.txt": "b" });
  const upload = await fs.write("/a.txt");
  await upload.write(encode("new"));
  assert.equal(await readText(fs, "/a.txt"), "old");
  await upload.abort();
  assert.equal(await readText(fs, "/a.txt"), "old");
  const append = await fs.write("/a.txt", { keep: Infinity });
  await append.write(encode("er"));
  await append.commit();
  assert.equal(await readText(fs, "/a.txt"), "older");
  await assert.rejects(fs.write("/a.txt", { keep: 99 }), RangeError);
  await assert.rejects(fs.write("/nowhere/x"), Deno.errors.NotFound);
  await assert.rejects(fs.rmdir("/dir"), /not empty/);
  await fs.rename("/dir", "/moved");
  assert.equal(await readText(fs, "/moved/b.txt"), "b");
  await assert.rejects(fs.rename("/moved", "/moved/inside"), Deno.errors.PermissionDenied);
  assert.deepEqual((await fs.list("/")).map((entry) => entry.name), ["a.txt", "moved"]);
});

Deno.test("ftp_server: an upload never replaces a folder made under its name while it ran", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const fs of [new MemoryFileSystem(), new DirectoryFileSystem(dir)]) {
      const upload = await fs.write("/x");
      await upload.write(encode("file bytes"));
      await fs.mkdir("/x");
      await fs.mkdir("/x/y");
      await assert.rejects(upload.commit(), Deno.errors.IsADirectory);
      await upload.abort();
      assert.equal((await fs.stat("/x")).type, "dir");
      assert.deepEqual((await fs.list("/x")).map((entry) => entry.name), ["y"]);
      assert.deepEqual((await fs.list("/")).map((entry) => entry.name), ["x"]);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ftp_server: DirectoryFileSystem treats symlinks out as missing and hides its temporary files", async () => {
  const { base, root, snapshot } = await makeJail();
  const before = await snapshot();
  const fs = new DirectoryFileSystem(root);
  try {
    for (const path of ["/link-out", "/dir-out", "/dir-out/secret.txt"]) {
      await assert.rejects(fs.stat(path), Deno.errors.NotFound, path);
      await assert.rejects(fs.read(path), Deno.errors.NotFound, path);
    }
    await assert.rejects(fs.delete("/link-out"), Deno.errors.NotFound);
    await assert.rejects(fs.write("/dir-out/planted.txt"), Deno.errors.NotFound);
    await assert.rejects(fs.mkdir("/dir-out/planted"), Deno.errors.NotFound);
    await assert.rejects(fs.rename("/keep.txt", "/dir-out/stolen.txt"), Deno.errors.NotFound);
    assert.equal(await readText(fs, "/link-in"), "hello\n"); // a symlink inside is fine
    const upload = await fs.write("/keep.txt");
    await upload.write(encode("half of a new"));
    assert.deepEqual((await fs.list("/")).map((entry) => entry.name), [
      "keep.txt",
      "link-in",
      "pub",
    ]);
    await upload.abort();
    assert.equal(await Deno.readTextFile(`${root}/keep.txt`), "the good version");
    assert.deepEqual([...Deno.readDirSync(root)].map((entry) => entry.name).sort(), [
      "dir-out",
      "keep.txt",
      "link-in",
      "link-out",
      "pub",
    ]);
    assert.equal(await snapshot(), before);
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

// ---------------------------------------------------------------------------
// The conversation
// ---------------------------------------------------------------------------

Deno.test("ftp_server: anonymous may log in and read, and every write is refused with 550", async () => {
  await withServer({}, async ({ port }) => {
    const control = await login(port, "anonymous", "me@example.com");
    assert.match(await expectCode(control, "SYST", 215), /UNIX Type: L8/);
    assert.equal(await expectCode(control, "PWD", 257), '257 "/" is the current folder');
    await expectCode(control, "TYPE I", 200);
    const { code, data } = await transfer(control, "RETR readme.txt");
    assert.equal(code, 226);
    assert.match(decode(data), /Welcome/);
    for (
      const line of [
        "STOR x",
        "APPE readme.txt",
        "DELE readme.txt",
        "MKD new",
        "RMD pub",
        "RNFR readme.txt",
      ]
    ) {
      assert.match(await expectCode(control, line, 550), /anonymous users may only read/);
    }
    await expectCode(control, "QUIT", 221);
    control.close();
  });
});

Deno.test("ftp_server: logins: wrong password 530, PASS without USER 503, three failures 421 and closed", async () => {
  await withServer({ users: { alice: "secret" }, anonymous: false }, async ({ port }) => {
    const control = await connect(port);
    await expectCode(control, "PASS x", 503);
    await expectCode(control, "LIST", 530);
    await expectCode(control, "USER anonymous", 530);
    await expectCode(control, "USER alice", 331);
    await expectCode(control, "PASS wrong", 530);
    await expectCode(control, "USER alice", 331);
    await expectCode(control, "PASS secret", 230);
    await expectCode(control, "USER bob", 503);
    control.close();

    const guesser = await connect(port);
    for (let i = 0; i < 2; i++) {
      await expectCode(guesser, "USER alice", 331);
      await expectCode(guesser, `PASS guess${i}`, 530);
    }
    await expectCode(guesser, "USER alice", 331);
    await expectCode(guesser, "PASS guess2", 421);
    await assert.rejects(guesser.send("NOOP"), /closed/);
    guesser.close();
  });
});

Deno.test("ftp_server: malformed commands get 500/501/502/504 and the session goes on", async () => {
  await withServer({ maxLineLength: 512 }, async ({ port }) => {
    const control = await login(port);
    const cases: [string, number][] = [
      ["", 500],
      ["X", 500],
      ["RETRIEVE x", 500],
      ["FOOB", 500],
      [" USER x", 500],
      ["1234", 500],
      ["CWD", 501],
      ["RETR", 501],
      ["TYPE X", 501],
      ["TYPE E", 504],
      ["MODE B", 504],
      ["STRU R", 504],
      ["REST -1", 501],
      ["REST abc", 501],
      ["PORT 1,2,3", 501],
      ["EPRT |9|x|1|", 522],
      ["EPSV 7", 501],
      ["OPTS FOO BAR", 501],
      ["RNTO x", 503],
      ["SITE CHMOD 777 x", 502],
      ["REIN", 502],
      ["AUTH TLS", 502], // no certificate configured
      ["PBSZ 0", 503],
      ["PROT P", 503],
      ["LIST", 425], // no PASV/PORT first
      ["RETR readme.txt", 425],
      ["x".repeat(513), 500],
    ];
    for (const [line, code] of cases) {
      await expectCode(control, line, code);
      await expectCode(control, "NOOP", 200);
    }
    // Bytes no text line can carry: invalid UTF-8, NUL, a bare CR (line injection).
    for (
      const raw of [[0x52, 0x45, 0x54, 0x52, 0x20, 0xc3, 0x28], [
        0x43,
        0x57,
        0x44,
        0x20,
        0x61,
        0x00,
        0x62,
      ]]
    ) {
      await control.sendRaw(Uint8Array.of(...raw, 0x0d, 0x0a));
      assert.equal((await control.reply()).code, 501);
    }
    await control.sendRaw(encode("MKD a\rDELE readme.txt\r\n"));
    assert.equal((await control.reply()).code, 501);
    await expectCode(control, "SIZE readme.txt", 213); // still there, session alive
    // A flood of 100 KiB without a line end: 500, then the server hangs up.
    await control.sendRaw(new Uint8Array(100 * 1024).fill(0x41));
    assert.equal((await control.reply()).code, 500);
    await assert.rejects(control.reply(), /closed/);
    control.close();
  });
});

Deno.test("ftp_server: FEAT lists what is supported, AUTH TLS only with a certificate", async () => {
  await withServer({}, async ({ port }) => {
    const control = await connect(port);
    const feat = await control.send("FEAT");
    assert.equal(feat.code, 211);
    const features = feat.lines.slice(1, -1).map((line) => line.trim());
    assert.deepEqual(features, [
      "EPRT",
      "EPSV",
      "MDTM",
      "MLST type*;size*;modify*;perm*;",
      "PASV",
      "REST STREAM",
      "SIZE",
      "TVFS",
      "UTF8",
    ]);
    await expectCode(control, "OPTS UTF8 ON", 200);
    await expectCode(control, "QUIT", 221);
    control.close();
  });
});

Deno.test("ftp_server: path escapes are refused with 550/553 and nothing outside the root is touched", async () => {
  const { base, root, snapshot } = await makeJail();
  const before = await snapshot();
  try {
    await withServer(
      { fs: new DirectoryFileSystem(root), users: { alice: "pw" } },
      async ({ port }) => {
        const control = await login(port, "alice", "pw");
        await expectCode(control, "CWD pub", 250);
        const refusals: [string, number][] = [
          ["RETR ../../secret.txt", 550],
          ["RETR /../secret.txt", 550],
          ["SIZE ../../secret.txt", 550],
          ["CWD ../..", 550],
          ["CWD /..", 550],
          ["RETR ..\\..\\secret.txt", 550],
          ["RETR %2e%2e/%2e%2e/secret.txt", 550], // a name with percent signs: not found
          ["RETR /link-out", 550],
          ["SIZE /link-out", 550],
          ["MDTM /dir-out/secret.txt", 550],
          ["CWD /dir-out", 550],
          ["DELE /link-out", 550],
          ["DELE ../../secret.txt", 550],
          ["MKD ../../planted", 550],
          ["MKD /dir-out/planted", 550],
          ["RMD ../..", 550],
          ["STOR ../../planted.txt", 553],
          ["STOR /dir-out/planted.txt", 553],
          ["APPE /link-out", 553],
        ];
        for (const [line, code] of refusals) await expectCode(control, line, code);
        await expectCode(control, "RNFR hello.txt", 350);
        await expectCode(control, "RNTO ../../stolen.txt", 553);
        await expectCode(control, "RNFR hello.txt", 350);
        await expectCode(control, "RNTO /dir-out/stolen.txt", 553);
        await expectCode(control, "RNFR /link-out", 550);
        // Listings leave the links out; STAT and MLST see nothing there either.
        const { data } = await transfer(control, "NLST /");
        assert.deepEqual(decode(data).trim().split("\r\n"), ["keep.txt", "link-in", "pub"]);
        await expectCode(control, "MLST /dir-out", 550);
        await expectCode(control, "QUIT", 221);
        control.close();
      },
    );
    assert.equal(await snapshot(), before);
    assert.equal(await Deno.readTextFile(`${root}/pub/hello.txt`), "hello\n");
  } finally {
    await Deno.remove(base, { recursive: true });
  }
});

Deno.test("ftp_server: a writer's session: MKD, STOR, APPE, REST+STOR, REST+RETR, RNFR/RNTO, MDTM, DELE, RMD", async () => {
  const fs = new MemoryFileSystem();
  await withServer({ fs, users: { alice: "pw" } }, async ({ port }) => {
    const control = await login(port, "alice", "pw");
    assert.equal(
      await expectCode(control, 'MKD "quoted" dir', 257),
      '257 "/""quoted"" dir" created',
    );
    await expectCode(control, "MKD docs", 257);
    await expectCode(control, "MKD docs", 550);
    await expectCode(control, "CWD docs", 250);
    await expectCode(control, "TYPE I", 200);
    assert.equal((await transfer(control, "STOR a.bin", encode("0123456789"))).code, 226);
    assert.equal((await transfer(control, "APPE a.bin", encode("abc"))).code, 226);
    assert.equal(await readText(fs, "/docs/a.bin"), "0123456789abc");
    assert.equal((await transfer(control, "STOR a.bin", encode("XY"), ["REST 4"])).code, 226);
    assert.equal(await readText(fs, "/docs/a.bin"), "0123XY");
    assert.equal(
      decode((await transfer(control, "RETR a.bin", undefined, ["REST 2"])).data),
      "23XY",
    );
    assert.equal((await transfer(control, "RETR a.bin", undefined, ["REST 99"])).code, 554);
    // REST waits for the next transfer, across other commands, and only for it.
    await expectCode(control, "REST 3", 350);
    await expectCode(control, "TYPE I", 200);
    assert.equal(decode((await transfer(control, "RETR a.bin")).data), "3XY");
    assert.equal(decode((await transfer(control, "RETR a.bin")).data), "0123XY");
    assert.match(await expectCode(control, "MDTM a.bin", 213), /^213 \d{14}$/);
    await expectCode(control, "SIZE a.bin", 213);
    await expectCode(control, "SIZE /docs", 550);
    await expectCode(control, "RNFR a.bin", 350);
    await expectCode(control, "RNTO /b.bin", 250);
    await expectCode(control, "CDUP", 250);
    await expectCode(control, "CDUP", 550); // at the root: no climbing
    await expectCode(control, "RMD /", 550);
    await expectCode(control, "DELE docs", 550); // a folder
    await expectCode(control, "RMD docs", 250);
    await expectCode(control, "DELE b.bin", 250);
    await expectCode(control, "DELE b.bin", 550);
    const mlst = await control.send('MLST "quoted" dir');
    assert.equal(mlst.code, 250);
    assert.match(mlst.lines[1], /^ type=dir;modify=\d{14};perm=elcdmpf; \/"quoted" dir$/);
    await expectCode(control, "QUIT", 221);
    control.close();
  });
});

Deno.test("ftp_server: two sessions: a folder made during an upload to its name stays, and the upload gets 451", async () => {
  const fs = new MemoryFileSystem();
  await withServer({ fs, users: { alice: "pw" } }, async ({ port }) => {
    const uploader = await login(port, "alice", "pw");
    const other = await login(port, "alice", "pw");
    await expectCode(uploader, "TYPE I", 200);
    const data = await uploader.passive();
    assert.equal((await uploader.send("STOR x")).code, 150);
    await writeAll(data, encode("file bytes"));
    await expectCode(other, "MKD x", 257);
    await expectCode(other, "MKD x/y", 257);
    data.close();
    assert.match((await uploader.reply()).lines[0], /^451 Local error: Is a folder/);
    await expectCode(other, "CWD x/y", 250);
    assert.deepEqual((await fs.list("/x")).map((entry) => entry.name), ["y"]);
    uploader.close();
    other.close();
  });
});

Deno.test("ftp_server: RNTO of a folder into its own subfolder is refused with 553, in memory and in a real folder", async () => {
  const dir = await Deno.makeTempDir();
  try {
    for (const fs of [new MemoryFileSystem(), new DirectoryFileSystem(dir)]) {
      await withServer({ fs, users: { alice: "pw" } }, async ({ port }) => {
        const control = await login(port, "alice", "pw");
        await expectCode(control, "MKD a", 257);
        await expectCode(control, "MKD a/b", 257);
        await expectCode(control, "RNFR a", 350);
        await expectCode(control, "RNTO a/b/c", 553);
        await expectCode(control, "RNFR a", 350);
        await expectCode(control, "RNTO a/", 250); // the same path: nothing to do
        await expectCode(control, "RNFR a", 350);
        await expectCode(control, "RNTO ab", 250); // a sibling whose name starts the same
        await expectCode(control, "CWD /ab/b", 250);
        control.close();
      });
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("ftp_server: TYPE A sends CRLF line ends and SIZE counts them; TYPE I sends the bytes", async () => {
  await withServer({ fs: new MemoryFileSystem({ "t.txt": "a\nb\r\nc\n" }) }, async ({ port }) => {
    const control = await login(port);
    await expectCode(control, "TYPE A", 200);
    assert.equal(await expectCode(control, "SIZE t.txt", 213), "213 9");
    assert.equal(decode((await transfer(control, "RETR t.txt")).data), "a\r\nb\r\nc\r\n");
    await expectCode(control, "TYPE I", 200);
    assert.equal(await expectCode(control, "SIZE t.txt", 213), "213 7");
    assert.equal(decode((await transfer(control, "RETR t.txt")).data), "a\nb\r\nc\n");
    control.close();
  });
});

Deno.test("ftp_server: PASV, EPSV ALL, PORT and EPRT; PORT to another host or a low port is refused (504)", async () => {
  await withServer({}, async ({ port }) => {
    const control = await login(port);
    const pasv = await expectCode(control, "PASV", 227);
    const numbers = pasv.match(/\((\d+),(\d+),(\d+),(\d+),(\d+),(\d+)\)/)!.slice(1).map(Number);
    assert.deepEqual(numbers.slice(0, 4), [127, 0, 0, 1]);
    const data = await Deno.connect({ hostname: "127.0.0.1", port: numbers[4] * 256 + numbers[5] });
    assert.equal((await control.send("NLST")).code, 150);
    assert.match(decode(await readAll(data)), /readme\.txt\r\n/);
    assert.equal((await control.reply()).code, 226);

    // Active: we listen, the server connects to us.
    for (const form of ["PORT", "EPRT"]) {
      const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
      const p = listener.addr.port;
      const argument = form === "PORT" ? `127,0,0,1,${p >> 8},${p & 255}` : `|1|127.0.0.1|${p}|`;
      await expectCode(control, `${form} ${argument}`, 200);
      assert.equal((await control.send("RETR readme.txt")).code, 150);
      const conn = await listener.accept();
      listener.close();
      assert.match(decode(await readAll(conn)), /Welcome/);
      assert.equal((await control.reply()).code, 226);
    }
    // The bounce attack: connecting anywhere on the client's behalf.
    await expectCode(control, "PORT 10,0,0,1,0,25", 504);
    await expectCode(control, "EPRT |1|192.0.2.1|8080|", 504);
    await expectCode(control, "PORT 127,0,0,1,0,25", 504);
    await expectCode(control, "EPRT |2|::1|8080|", 504);
    await expectCode(control, "EPSV 2", 522);
    await expectCode(control, "EPSV ALL", 200);
    await expectCode(control, "PASV", 503);
    await expectCode(control, "PORT 127,0,0,1,4,1", 503);
    assert.equal((await transfer(control, "RETR readme.txt")).code, 226);
    control.close();
  });
});

// Some machines (containers without IPv6) have no ::1: the test is then
// reported as ignored, not passed.
const HAS_IPV6_LOOPBACK = (() => {
  try {
    Deno.listen({ hostname: "::1", port: 0 }).close();
    return true;
  } catch {
    return false;
  }
})();

Deno.test({
  name: "ftp_server: over IPv6, EPSV and EPRT work and PASV says to use EPSV",
  ignore: !HAS_IPV6_LOOPBACK,
}, async () => {
  await withServer({}, async ({ port }) => {
    const control = await connect(port, "::1");
    await expectCode(control, "USER ftp", 331);
    await expectCode(control, "PASS x", 230);
    await expectCode(control, "PASV", 425);
    await expectCode(control, "EPSV 1", 522);
    assert.equal((await transfer(control, "RETR readme.txt")).code, 226);
    const active = Deno.listen({ hostname: "::1", port: 0 });
    await expectCode(control, `EPRT |2|::1|${active.addr.port}|`, 200);
    assert.equal((await control.send("NLST")).code, 150);
    const conn = await active.accept();
    active.close();
    assert.match(decode(await readAll(conn)), /readme/);
    assert.equal((await control.reply()).code, 226);
    control.close();
  }, "::1");
});

Deno.test("ftp_server: an upload cut off mid-way (data and control gone) leaves the old file intact", async () => {
  const fs = new MemoryFileSystem({ "keep.bin": "the good version" });
  await withServer({ fs, users: { alice: "pw" } }, async ({ port, logs }) => {
    for (let i = 0; i < 3; i++) {
      const control = await login(port, "alice", "pw");
      await expectCode(control, "TYPE I", 200);
      const data = await control.passive();
      assert.equal((await control.send("STOR keep.bin")).code, 150);
      // Small enough that the server reads it all and sees the data end as a
      // finished upload would (a big one is cut off unread): only the control
      // connection's end tells it the client died.
      await writeAll(data, randomBytes(1000));
      // The client dies: both connections end at once.
      data.close();
      control.close();
      await eventually(
        () => logs.filter((line) => /disconnected/.test(line)).length > i,
        "disconnect",
      );
    }
    assert.equal(await readText(fs, "/keep.bin"), "the good version");
    assert.ok(!logs.some((line) => /STOR \/keep.bin: \d+ bytes/.test(line)), logs.join("\n"));
  });
});

Deno.test("ftp_server: ABOR during a download: 426 for the transfer, 226 for the ABOR", async () => {
  const fs = new MemoryFileSystem({ "big.bin": new Uint8Array(64 * MIB) });
  await withServer({ fs }, async ({ port }) => {
    const control = await login(port);
    await expectCode(control, "TYPE I", 200);
    await expectCode(control, "ABOR", 225);
    const data = await control.passive();
    assert.equal((await control.send("RETR big.bin")).code, 150);
    // Read a little, then stop reading: the server's writes stall.
    await data.read(new Uint8Array(65536));
    await control.sendRaw(Uint8Array.of(0xff, 0xf4, 0xff, 0xf2, ...encode("ABOR\r\n")));
    assert.equal((await control.reply()).code, 426);
    assert.equal((await control.reply()).code, 226);
    data.close();
    await expectCode(control, "NOOP", 200);
    control.close();
  });
});

Deno.test("ftp_server: ABOR\\r without its LF (the LF went as urgent data) is answered at once; a late LF is dropped", async () => {
  await withServer({}, async ({ port }) => {
    const control = await login(port);
    await control.sendRaw(encode("ABOR\r"));
    assert.equal((await withTimeout(() => control.reply(), 5000)).code, 225);
    await control.sendRaw(encode("\nNOOP\r\n")); // not an empty line, then NOOP
    assert.equal((await control.reply()).code, 200);
    await control.sendRaw(Uint8Array.of(0xff, 0xf4, 0xff, ...encode("abor\r")));
    assert.equal((await control.reply()).code, 225);
    assert.equal((await control.send("NOOP")).code, 200);
    // ABOR is a command only at the start of a line.
    assert.equal((await control.send("SITE ABOR\r")).code, 501);
    control.close();
  });
});

Deno.test("ftp_server: ABOR\r with more bytes behind it in one go is a bare CR inside a line, refused whole (no injected command)", async () => {
  const fs = new MemoryFileSystem({ "readme.txt": encode("keep me") });
  await withServer({ fs, users: { alice: "s3cret" } }, async ({ port }) => {
    const control = await login(port, "alice", "s3cret");
    await control.sendRaw(encode("ABOR\rDELE readme.txt\r\n"));
    // 500: "ABOR\rDELE" is no command (RFC 959's syntax error, as for any verb).
    assert.equal((await control.reply()).code, 500);
    assert.equal((await control.send("SIZE readme.txt")).code, 213);
    control.close();
  });
  assert.equal((await fs.stat("/readme.txt")).size, "keep me".length);
});

peerTest(
  "ftp_server: Python's ftplib abort() (ABOR\\r\\n sent as urgent data) during a download: 426, 226, and the session goes on",
  [PEERS.python3],
  async () => {
    const fs = new MemoryFileSystem({ "big.bin": new Uint8Array(64 * MIB) });
    await withServer({ fs }, async ({ port }) => {
      const script = `
import ftplib, sys
ftp = ftplib.FTP(timeout=5)
ftp.connect("127.0.0.1", int(sys.argv[1]))
ftp.login()
ftp.voidcmd("TYPE I")
data = ftp.transfercmd("RETR big.bin")
data.recv(1000)
replies = [ftp.abort()]  # ABOR and CRLF, sent with MSG_OOB
if replies[0].startswith("426"):
    replies.append(ftp.getresp())  # then the 226 for ABOR itself
replies.append(ftp.voidcmd("NOOP"))
data.close()
ftp.quit()
print("|".join(reply[:3] for reply in replies))
`;
      const result = await run(PYTHON, ["-c", script, String(port)]);
      assert.equal(result.code, 0, result.stderr);
      assert.equal(result.stdout.trim(), "426|226|200");
    });
  },
);

Deno.test("ftp_server: STAT answers during a transfer; queued commands are answered after it, in order", async () => {
  const fs = new MemoryFileSystem({ "big.bin": new Uint8Array(16 * MIB) });
  await withServer({ fs }, async ({ port }) => {
    const control = await login(port);
    await expectCode(control, "TYPE I", 200);
    const data = await control.passive();
    assert.equal((await control.send("RETR big.bin")).code, 150);
    const stat = await control.send("STAT");
    assert.equal(stat.code, 211);
    assert.ok(stat.lines.some((line) => /transferring/.test(line)), stat.lines.join("\n"));
    await control.sendRaw(encode("NOOP\r\n"));
    const received = await readAll(data);
    assert.equal(received.length, 16 * MIB);
    assert.equal((await control.reply()).code, 226);
    assert.equal((await control.reply()).code, 200);
    control.close();
  });
});

Deno.test("ftp_server: limits: idle control 421, a data connection never made 425, a full server 421", async () => {
  await withServer({ idleTimeout: 300, dataTimeout: 300, maxConnections: 1 }, async ({ port }) => {
    const control = await login(port);
    await expectCode(control, "EPSV", 229);
    assert.equal((await control.send("RETR readme.txt")).code, 150);
    assert.match((await control.reply()).lines[0], /^425 Cannot open data connection/);
    // One session is the limit: the next client is told so and closed.
    const { greeting, control: second } = await FtpControl.connect("127.0.0.1", port);
    assert.equal(greeting.code, 421);
    second.close();
    // Silence: 421, then the server hangs up.
    assert.equal((await control.reply()).code, 421);
    await assert.rejects(control.reply(), /closed/);
    control.close();
  });
});

// Two clients that send commands as fast as they can and read nothing: once
// the unread replies fill the buffers, the server's writes wait for ever.
// Python, as its sockets can be non-blocking and small (SO_RCVBUF); the
// process ends when its stdin closes, and the kernel closes its sockets.
const FLOOD_SCRIPT = `
import socket, sys, time
held = []
for i in range(2):
    s = socket.create_connection(("127.0.0.1", int(sys.argv[1])))
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    s.setblocking(False)
    blocked = time.time()
    while time.time() - blocked < 0.3:  # until the server stops reading
        try:
            s.send(b"HELP\\r\\n" * 1000)
            blocked = time.time()
        except BlockingIOError:
            time.sleep(0.01)
        except OSError:
            break
    held.append(s)
held[1].shutdown(socket.SHUT_WR)  # half-closed: no more commands, still not reading
print("flooded", flush=True)
sys.stdin.read()
`;

peerTest(
  "ftp_server: clients that flood commands and never read their replies do not hold the connection cap",
  [PEERS.python3],
  async () => {
    await withServer({ idleTimeout: 1000, maxConnections: 2 }, async ({ port, logs }) => {
      // No login needed: HELP is answered before it.
      const flood = new Deno.Command(PYTHON, {
        args: ["-c", FLOOD_SCRIPT, String(port)],
        stdin: "piped",
        stdout: "piped",
      }).spawn();
      const output = flood.stdout.pipeThrough(new TextDecoderStream()).getReader();
      try {
        assert.match((await output.read()).value ?? "", /^flooded/);
        // Their sessions end at the idle timeout, replies read or not, and
        // free their places under the cap.
        await eventually(
          () => logs.filter((line) => /disconnected/.test(line)).length >= 2,
          "the floods' sessions to end",
        );
        assert.ok(logs.some((line) => /replies unread for 1 s; closing/.test(line)));
        const control = await connect(port);
        await expectCode(control, "NOOP", 200);
        control.close();
      } finally {
        await flood.stdin.close();
        await output.cancel();
        await flood.status;
      }
    });
  },
);

Deno.test("ftp_server: a stalled data connection (no reads, no bytes) ends with 426; the upload is dropped", async () => {
  const fs = new MemoryFileSystem({ "big.bin": new Uint8Array(64 * MIB), "keep.txt": "old" });
  await withServer({ fs, users: { alice: "pw" }, dataTimeout: 300 }, async ({ port }) => {
    const control = await login(port, "alice", "pw");
    await expectCode(control, "TYPE I", 200);
    // A download nobody reads: the server's writes stall once the buffers are full.
    const reader = await control.passive();
    assert.equal((await control.send("RETR big.bin")).code, 150);
    assert.match((await control.reply()).lines[0], /^426 Data connection idle for 0.3 s/);
    reader.close();
    // An upload that sends nothing.
    const writer = await control.passive();
    assert.equal((await control.send("STOR keep.txt")).code, 150);
    assert.match((await control.reply()).lines[0], /^426 /);
    writer.close();
    assert.equal(await readText(fs, "/keep.txt"), "old");
    await expectCode(control, "NOOP", 200);
    control.close();
  });
});

Deno.test("ftp_server: stopping the server closes idle sessions and passive listeners", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const stop = new AbortController();
  const server = serveFtp(listener, { log: () => {}, signal: stop.signal });
  const control = await login(listener.addr.port);
  await expectCode(control, "EPSV", 229);
  stop.abort();
  await server;
  await assert.rejects(control.reply(), /closed/);
  control.close();
});

// ---------------------------------------------------------------------------
// The command line
// ---------------------------------------------------------------------------

Deno.test("ftp_server: the demo shows both sessions on the wire", async () => {
  const { code, stdout, stderr } = await runScript("ftp_server");
  assert.equal(code, 0, stderr);
  for (
    const expected of [
      /S: 220 wirebook FTP server ready/,
      /S: 229 Entering Extended Passive Mode \(\|\|\|\d+\|\)/,
      /data < Hello over a data connection!/,
      /C: STOR mine\.txt\n {2}S: 550 Permission denied/,
      /C: RETR \.\.\/\.\.\/etc\/passwd\n {2}S: 550 Path climbs above the root/,
      /data < type=file;size=18;modify=\d{14};perm=radwf; notes\.txt/,
      /server: stopped; nothing left listening/,
    ]
  ) {
    assert.match(stdout, expected);
  }
});

Deno.test("ftp_server: bad flags are usage errors (exit 2)", async () => {
  for (const args of [["serve", "--user", "nocolon"], ["serve", "--cert", "x.pem"], ["fetch"]]) {
    const result = await runScript("ftp_server", args);
    assert.equal(result.code, 2, args.join(" "));
    assert.match(result.stderr, /^error: .*\(see --help\)\n$/);
  }
});

Deno.test("ftp_server: --root needs read and write on that folder, and says which is missing", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const result = await runScript("ftp_server", ["serve", "--root", dir, "--port", "0"], {
      flags: [NET],
    });
    assert.equal(result.code, 1);
    assert.match(result.stderr, /^error: .*missing permission: needs read access/);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** `serve --root DIR` with exactly the permissions its help names. */
function startRootServer(root: string, extra: string[] = [], read: string[] = []) {
  return startProcess(DENO, [
    "run",
    "--no-prompt",
    NET,
    `--allow-read=${[root, ...read].join(",")}`,
    `--allow-write=${root}`,
    scriptPath("ftp_server"),
    "serve",
    "--port",
    "0",
    "--root",
    root,
    "--user",
    "alice:s3cret",
    ...extra,
  ], { scheme: "ftp" });
}

// ---------------------------------------------------------------------------
// Real peers: curl, lftp, Python's ftplib
// ---------------------------------------------------------------------------

const SIZES = [["empty.bin", 0], ["one.bin", 1], ["ten.bin", 10 * MIB], [
  "hundred.bin",
  100 * MIB,
]] as const;

peerTest(
  "ftp_server: curl lists, downloads and uploads (-T) 0 B, 1 B, 10 MiB, 100 MiB byte-exact, EPSV, PASV and PORT",
  [PEERS.curl],
  async () => {
    const base = await Deno.makeTempDir();
    const root = `${base}/root`;
    await Deno.mkdir(root);
    const server = await startRootServer(root);
    const url = `ftp://127.0.0.1:${server.port}`;
    const curl = (args: string[]) =>
      run("curl", ["-sS", "--max-time", "120", ...args], { timeout: 150_000 });
    try {
      for (const [name, size] of SIZES) {
        const data = randomBytes(size);
        await Deno.writeFile(`${base}/${name}`, data);
        const digest = await sha256(data);
        const up = await curl(["-u", "alice:s3cret", "-T", `${base}/${name}`, `${url}/${name}`]);
        assert.equal(up.code, 0, up.stderr);
        assert.equal(
          await sha256(await Deno.readFile(`${root}/${name}`)),
          digest,
          `upload ${name}`,
        );
        for (const mode of [[], ["--ftp-pasv", "--disable-epsv"], ["-P", "-"]]) {
          const down = await curl([...mode, "-o", `${base}/down.bin`, `${url}/${name}`]);
          assert.equal(down.code, 0, down.stderr);
          assert.equal(
            await sha256(await Deno.readFile(`${base}/down.bin`)),
            digest,
            `download ${name} ${mode}`,
          );
        }
      }
      const list = await curl([`${url}/`]);
      assert.equal(list.code, 0, list.stderr);
      assert.match(
        list.stdout,
        /^-rw-r--r-- 1 ftp ftp\s+104857600 \w{3} \d\d \d\d:\d\d hundred\.bin\r?$/m,
      );
      const names = await curl(["-l", `${url}/`]);
      assert.deepEqual(names.stdout.trim().split(/\r?\n/), [
        "empty.bin",
        "hundred.bin",
        "one.bin",
        "ten.bin",
      ]);
      // Anonymous uploads are refused: curl's "access denied" (exit 25, upload failed).
      const anonymous = await curl(["-T", `${base}/one.bin`, `${url}/anon.bin`]);
      assert.notEqual(anonymous.code, 0);
      assert.match(anonymous.stderr, /550/);
    } finally {
      const { code } = await server.stop();
      assert.equal(code, 0);
      await Deno.remove(base, { recursive: true });
    }
  },
);

peerTest(
  "ftp_server: curl killed mid-upload (SIGKILL) leaves the old file intact and no temporary file",
  [PEERS.curl],
  async () => {
    const base = await Deno.makeTempDir();
    const root = `${base}/root`;
    await Deno.mkdir(root);
    await Deno.writeTextFile(`${root}/victim.bin`, "the good version");
    await Deno.writeFile(`${base}/new.bin`, randomBytes(50 * MIB));
    const server = await startRootServer(root);
    try {
      for (let i = 0; i < 3; i++) {
        const curl = new Deno.Command("curl", {
          args: [
            "-sS",
            "--limit-rate",
            "10M",
            "-u",
            "alice:s3cret",
            "-T",
            `${base}/new.bin`,
            `ftp://127.0.0.1:${server.port}/victim.bin`,
          ],
          stdout: "null",
          stderr: "null",
        }).spawn();
        // Kill it once the upload is under way (a temporary file exists).
        await eventually(
          () =>
            [...Deno.readDirSync(root)].some((entry) => entry.name.startsWith(".wirebook-upload-")),
          "the upload to start",
        );
        curl.kill("SIGKILL");
        await curl.status;
        await eventually(
          () => [...Deno.readDirSync(root)].length === 1,
          "the temporary file to go",
        );
        assert.equal(await Deno.readTextFile(`${root}/victim.bin`), "the good version");
      }
    } finally {
      const { code, stdout } = await server.stop();
      assert.equal(code, 0);
      assert.doesNotMatch(stdout, /STOR \/victim\.bin: \d+ bytes/);
      await Deno.remove(base, { recursive: true });
    }
  },
);

peerTest("ftp_server: lftp mirrors a folder both ways", [PEERS.lftp], async () => {
  const base = await Deno.makeTempDir();
  const root = `${base}/root`;
  await Deno.mkdir(`${root}/site/deep/er`, { recursive: true });
  await Deno.writeFile(`${root}/site/a.bin`, randomBytes(300_000));
  await Deno.writeTextFile(`${root}/site/deep/er/b.txt`, "deep\n");
  await Deno.writeFile(`${root}/site/empty`, new Uint8Array(0));
  await Deno.mkdir(`${base}/local/x/y`, { recursive: true });
  await Deno.writeFile(`${base}/local/x/y/c.bin`, randomBytes(1_000_000));
  await Deno.writeTextFile(`${base}/local/d.txt`, "up\n");
  const server = await startRootServer(root);
  try {
    const script = [
      "set cmd:fail-exit yes",
      "set net:max-retries 1",
      "set net:timeout 20",
      "set ftp:ssl-allow no",
      `mirror site ${base}/mirrored`,
      `mirror -R ${base}/local uploaded`,
      "quit",
    ].join("; ");
    const result = await run(
      "lftp",
      ["-u", "alice,s3cret", "-p", String(server.port), "-e", script, "127.0.0.1"],
      { timeout: 60_000 },
    );
    assert.equal(result.code, 0, result.stderr);
    const same = async (a: string, b: string) =>
      assert.equal(await sha256(await Deno.readFile(a)), await sha256(await Deno.readFile(b)), b);
    await same(`${root}/site/a.bin`, `${base}/mirrored/a.bin`);
    await same(`${root}/site/deep/er/b.txt`, `${base}/mirrored/deep/er/b.txt`);
    await same(`${root}/site/empty`, `${base}/mirrored/empty`);
    await same(`${base}/local/x/y/c.bin`, `${root}/uploaded/x/y/c.bin`);
    await same(`${base}/local/d.txt`, `${root}/uploaded/d.txt`);
  } finally {
    const { code } = await server.stop();
    assert.equal(code, 0);
    await Deno.remove(base, { recursive: true });
  }
});

const FTPLIB_SCRIPT = `
import ftplib, hashlib, io, json, ssl, sys
port, user, password, cafile = int(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
if cafile:
    ftp = ftplib.FTP_TLS(context=ssl.create_default_context(cafile=cafile), timeout=60)
else:
    ftp = ftplib.FTP(timeout=60)
ftp.connect("127.0.0.1", port)
if cafile:
    ftp.auth()
ftp.login(user, password)
if cafile:
    ftp.prot_p()
out = {}
for name in sys.argv[5:]:
    data = open(name, "rb").read()
    remote = "py-" + name.rsplit("/", 1)[-1]
    ftp.storbinary("STOR " + remote, io.BytesIO(data))
    got = io.BytesIO()
    ftp.retrbinary("RETR " + remote, got.write)
    out[remote] = [hashlib.sha256(got.getvalue()).hexdigest(), ftp.size(remote)]
out["mlsd"] = sorted([name, facts["type"]] for name, facts in ftp.mlsd("/"))
ftp.rename(remote, "renamed.bin")
ftp.delete("renamed.bin")
try:
    ftp.size("renamed.bin")
except ftplib.error_perm as error:
    out["after delete"] = str(error)
ftp.quit()
print(json.dumps(out))
`;

async function ftplibRun(port: number, files: string[], cafile = "") {
  const result = await run(PYTHON, [
    "-c",
    FTPLIB_SCRIPT,
    String(port),
    "alice",
    "s3cret",
    cafile,
    ...files,
  ], {
    timeout: 180_000,
  });
  assert.equal(result.code, 0, result.stderr);
  return JSON.parse(result.stdout);
}

peerTest(
  "ftp_server: Python's ftplib: storbinary, retrbinary, size, mlsd, rename, delete; 0 B to 100 MiB byte-exact",
  [PEERS.python3],
  async () => {
    const base = await Deno.makeTempDir();
    const root = `${base}/root`;
    await Deno.mkdir(root);
    const server = await startRootServer(root);
    try {
      const files: string[] = [];
      const digests: Record<string, string> = {};
      for (const [name, size] of SIZES) {
        const data = randomBytes(size);
        await Deno.writeFile(`${base}/${name}`, data);
        files.push(`${base}/${name}`);
        digests[`py-${name}`] = await sha256(data);
      }
      const out = await ftplibRun(server.port, files);
      for (const [name, size] of SIZES) {
        assert.deepEqual(out[`py-${name}`], [digests[`py-${name}`], size], name);
      }
      assert.deepEqual(out.mlsd, SIZES.map(([name]) => [`py-${name}`, "file"]).sort());
      assert.match(out["after delete"], /^550 /);
      assert.deepEqual([...Deno.readDirSync(root)].map((entry) => entry.name).sort(), [
        "py-empty.bin",
        "py-one.bin",
        "py-ten.bin",
      ]);
    } finally {
      const { code } = await server.stop();
      assert.equal(code, 0);
      await Deno.remove(base, { recursive: true });
    }
  },
);

peerTest(
  "ftp_server: a data connection from another address is refused; the client's own still works",
  [PEERS.python3],
  async () => {
    await withServer({}, async ({ port, logs }) => {
      const control = await login(port);
      const epsv = await expectCode(control, "EPSV", 229);
      const dataPort = Number(epsv.match(/\|\|\|(\d+)\|/)![1]);
      // An intruder on 127.0.0.2 races the client to the passive port.
      const intruder = new Deno.Command(PYTHON, {
        args: [
          "-c",
          `import socket; s = socket.socket(); s.settimeout(20); s.bind(("127.0.0.2", 0)); ` +
          `s.connect(("127.0.0.1", ${dataPort})); print("connected", flush=True); ` +
          `print(repr(s.recv(100)), flush=True)`,
        ],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const output = intruder.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let said = "";
      while (!said.includes("connected\n")) {
        const { value, done } = await output.read();
        if (done) break;
        said += value;
      }
      const data = await Deno.connect({ hostname: "127.0.0.1", port: dataPort });
      assert.equal((await control.send("RETR readme.txt")).code, 150);
      assert.match(decode(await readAll(data)), /Welcome/);
      assert.equal((await control.reply()).code, 226);
      for (let chunk = await output.read(); !chunk.done; chunk = await output.read()) {
        said += chunk.value;
      }
      const { code } = await intruder.status;
      await intruder.stderr.cancel();
      assert.equal(code, 0);
      assert.equal(said, "connected\nb''\n"); // hung up on, nothing sent
      assert.ok(logs.some((line) => /refused a data connection from 127\.0\.0\.2/.test(line)));
      control.close();
    });
  },
);

// ---------------------------------------------------------------------------
// FTPS: a test CA and certificate, made with openssl for this run only
// ---------------------------------------------------------------------------

peerTest(
  "ftp_server: FTPS (AUTH TLS, PROT P) with curl --ftp-ssl and Python's FTP_TLS, byte-exact",
  [PEERS.openssl, PEERS.curl, PEERS.python3],
  async () => {
    const base = await Deno.makeTempDir();
    const root = `${base}/root`;
    await Deno.mkdir(root);
    const tls = await makeTestCertificates(base);
    // --cert and --key need reading, and nothing else widens.
    const server = await startRootServer(root, ["--cert", tls.cert, "--key", tls.key], [
      tls.cert,
      tls.key,
    ]);
    const url = `ftp://127.0.0.1:${server.port}`;
    const curl = (args: string[]) =>
      run("curl", ["-sS", "--max-time", "60", "--cacert", tls.ca, ...args], { timeout: 90_000 });
    try {
      const data = randomBytes(10 * MIB);
      await Deno.writeFile(`${base}/ten.bin`, data);
      const up = await curl([
        "--ftp-ssl",
        "--ssl-reqd",
        "-u",
        "alice:s3cret",
        "-T",
        `${base}/ten.bin`,
        `${url}/ten.bin`,
      ]);
      assert.equal(up.code, 0, up.stderr);
      const down = await curl([
        "--ftp-ssl",
        "--ssl-reqd",
        "-o",
        `${base}/down.bin`,
        `${url}/ten.bin`,
      ]);
      assert.equal(down.code, 0, down.stderr);
      assert.equal(await sha256(await Deno.readFile(`${base}/down.bin`)), await sha256(data));
      const list = await curl(["--ftp-ssl", "--ssl-reqd", `${url}/`]);
      assert.match(list.stdout, /ten\.bin/);
      // A client that does not trust the certificate refuses to go on.
      const untrusted = await run("curl", ["-sS", "--ssl-reqd", `${url}/`]);
      assert.notEqual(untrusted.code, 0);

      await Deno.writeFile(`${base}/small.bin`, randomBytes(100_000));
      const out = await ftplibRun(server.port, [`${base}/small.bin`, `${base}/ten.bin`], tls.ca);
      assert.equal(out["py-ten.bin"][0], await sha256(data));
    } finally {
      const { code, stdout } = await server.stop();
      assert.equal(code, 0);
      assert.match(stdout, /control connection is TLS now/);
      await Deno.remove(base, { recursive: true });
    }
  },
);

peerTest(
  "ftp_server: commands pipelined after AUTH TLS (STARTTLS injection) are refused; a stalled handshake ends on shutdown",
  [PEERS.openssl],
  async () => {
    const base = await Deno.makeTempDir();
    try {
      const tls = await makeTestCertificates(base);
      const options = {
        tls: { cert: await Deno.readTextFile(tls.cert), key: await Deno.readTextFile(tls.key) },
      };
      const logs: string[] = [];
      // A client that stops after AUTH's 234, still connected: the server's
      // shutdown ends the handshake it waits for, without waiting it out.
      let silent: FtpControl | undefined;
      await withServer(
        { ...options, dataTimeout: 30_000, log: (line) => logs.push(line) },
        async ({ port }) => {
          silent = await connect(port);
          await expectCode(silent, "AUTH TLS", 234);
        },
      );
      silent?.close();
      assert.ok(logs.some((line) => /closed during the TLS handshake/.test(line)), logs.join("\n"));

      await withServer(options, async ({ port, logs }) => {
        const control = await connect(port);
        const feat = await control.send("FEAT");
        assert.ok(feat.lines.some((line) => line.trim() === "AUTH TLS"));
        await control.sendRaw(encode("AUTH TLS\r\nUSER anonymous\r\n"));
        assert.equal((await control.reply()).code, 421);
        await assert.rejects(control.reply(), /closed/);
        control.close();
        assert.ok(logs.some((line) => /pipelined after AUTH TLS/.test(line)));
      });
    } finally {
      await Deno.remove(base, { recursive: true });
    }
  },
);
