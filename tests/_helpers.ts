// Shared by the tests: run scripts the way a user does, and find real peers.
//
// Everything here stays on loopback and uses port 0, so tests never fight over
// a port with each other or with anything else on the machine.

import { fileURLToPath } from "node:url";
import { withTimeout } from "../lib/with_timeout.ts";

/** The checkout's root folder. */
export const ROOT = fileURLToPath(new URL("../", import.meta.url));

/** The deno binary running the tests, so scripts run under the same version. */
export const DENO = Deno.execPath();

/**
 * Debian's Python: pyftpdlib, aiosmtpd and websockets load under it, not
 * under whatever `python3` comes first on PATH.
 */
export const PYTHON = "/usr/bin/python3";

/** Absolute path of scripts/<name>.ts. */
export function scriptPath(name: string): string {
  return `${ROOT}scripts/${name}.ts`;
}

/** The script names in scripts/, sorted. */
export function listScripts(): string[] {
  return [...Deno.readDirSync(`${ROOT}scripts`)]
    .filter((entry) => entry.isFile && entry.name.endsWith(".ts"))
    .map((entry) => entry.name.slice(0, -3))
    .sort();
}

/** What a script's header declares. */
export interface ScriptHeader {
  /** The flags on line 1's shebang, after `deno run`. */
  shebangFlags: string[];
  /** The flags in the `@run` tag, before `<url>`. */
  runFlags: string[];
  /** The `@title`. */
  title: string;
}

/** Read the shebang and JSDoc tags of a script (throws if either is missing). */
export function readHeader(path: string): ScriptHeader {
  const text = Deno.readTextFileSync(path);
  const shebang = text.split("\n")[0].match(/^#!\/usr\/bin\/env -S deno run(.*)$/);
  const run = text.match(/^ \* @run (.*) <url>$/m);
  const title = text.match(/^ \* @title (.+)$/m);
  if (!shebang || !run || !title) throw new Error(`${path}: header incomplete`);
  const split = (flags: string) => flags.trim().split(/\s+/).filter(Boolean);
  return { shebangFlags: split(shebang[1]), runFlags: split(run[1]), title: title[1] };
}

/** What a finished process did. */
export interface RunResult {
  code: number;
  stdout: string;
  stderr: string;
  /** True if the process was killed for running past its time limit. */
  timedOut: boolean;
}

/** Options for {@linkcode runDeno}. */
export interface RunOptions {
  /** Kill the process (SIGKILL) after this many ms. @default {30000} */
  timeout?: number;
  /** Bytes or text for stdin; stdin is closed after. */
  stdin?: string | Uint8Array;
  /** Extra environment variables. */
  env?: Record<string, string>;
  /** Working directory. @default {ROOT} */
  cwd?: string;
}

/** Run a command to completion, capturing its output. */
export async function run(
  command: string,
  args: string[],
  options: RunOptions = {},
): Promise<RunResult> {
  const { timeout = 30_000, stdin, env, cwd = ROOT } = options;
  const child = new Deno.Command(command, {
    args,
    cwd,
    env: { NO_COLOR: "1", ...env },
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    child.kill("SIGKILL");
  }, timeout);
  if (stdin !== undefined) {
    const writer = child.stdin.getWriter();
    await writer.write(typeof stdin === "string" ? new TextEncoder().encode(stdin) : stdin);
    await writer.close();
  }
  const { code, stdout, stderr } = await child.output();
  clearTimeout(timer);
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr), timedOut };
}

/** Run `deno <args>` (from the checkout's root). */
export function runDeno(args: string[], options: RunOptions = {}): Promise<RunResult> {
  return run(DENO, args, options);
}

/** Run scripts/<name>.ts with its own `@run` flags, `--no-prompt`, and `args`. */
export function runScript(
  name: string,
  args: string[] = [],
  options: RunOptions & { flags?: string[] } = {},
): Promise<RunResult> {
  const path = scriptPath(name);
  const flags = options.flags ?? readHeader(path).runFlags;
  return runDeno(["run", "--no-prompt", ...flags, path, ...args], options);
}

/** A server started by {@linkcode startServer}. */
export interface RunningServer {
  /** Host and port from its `listening on` line. */
  hostname: string;
  port: number;
  /** The whole banner line. */
  banner: string;
  process: Deno.ChildProcess;
  /** Send SIGTERM and wait for exit; resolves to the exit code and all output. */
  stop(): Promise<{ code: number; stdout: string; stderr: string }>;
}

/**
 * Start a long-running process that prints `listening on <scheme>://host:port`
 * when ready, and wait for that line (up to `timeout` ms).
 */
export async function startProcess(
  command: string,
  args: string[],
  options: { timeout?: number; env?: Record<string, string>; scheme?: string } = {},
): Promise<RunningServer> {
  const { timeout = 15_000, env, scheme = "[a-z]+" } = options;
  const process = new Deno.Command(command, {
    args,
    cwd: ROOT,
    env: { NO_COLOR: "1", ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const stdoutText = collect(process.stdout);
  const stderrText = collect(process.stderr);
  const pattern = new RegExp(`listening on ${scheme}://\\[?([^\\]\\s]+?)\\]?:(\\d+)`);

  const deadline = Date.now() + timeout;
  while (true) {
    const match = stdoutText.text().match(pattern);
    if (match) {
      const status = process.status;
      return {
        hostname: match[1],
        port: Number(match[2]),
        banner: match[0],
        process,
        async stop() {
          try {
            process.kill("SIGTERM");
          } catch { /* already gone */ }
          const { code } = await status;
          return { code, stdout: await stdoutText.done, stderr: await stderrText.done };
        },
      };
    }
    const exited = await Promise.race([
      process.status.then(() => true),
      new Promise<false>((resolve) => setTimeout(() => resolve(false), 20)),
    ]);
    if (exited || Date.now() > deadline) {
      if (!exited) process.kill("SIGKILL");
      await process.status;
      throw new Error(
        `${args.join(" ")} did not print a listening line` +
          `\nstdout: ${await stdoutText.done}\nstderr: ${await stderrText.done}`,
      );
    }
  }
}

/** Start `scripts/<name>.ts serve --port 0 ...` with its `@run` flags. */
export function startServer(
  name: string,
  args: string[] = [],
  options: { flags?: string[]; scheme?: string } = {},
): Promise<RunningServer> {
  const path = scriptPath(name);
  const flags = options.flags ?? readHeader(path).runFlags;
  return startProcess(
    DENO,
    ["run", "--no-prompt", ...flags, path, "serve", "--port", "0", ...args],
    { scheme: options.scheme },
  );
}

function collect(stream: ReadableStream<Uint8Array>) {
  let text = "";
  const done = (async () => {
    for await (const chunk of stream.pipeThrough(new TextDecoderStream())) text += chunk;
    return text;
  })();
  return { text: () => text, done };
}

/** A real program a test talks to, and how to install it. */
export interface Peer {
  /** The command that must be on PATH (or an absolute path). */
  command: string;
  /** How to install it. */
  install: string;
  /** For a Python module: the module that must import under {@linkcode PYTHON}. */
  pythonModule?: string;
}

/** Every peer the suite uses. */
export const PEERS = {
  socat: { command: "socat", install: "apt-get install -y socat" },
  python3: { command: PYTHON, install: "apt-get install -y python3" },
  iperf3: { command: "iperf3", install: "apt-get install -y iperf3" },
  curl: { command: "curl", install: "apt-get install -y curl" },
  // dnsmasq-base, not dnsmasq: the latter also installs a system service on port 53.
  dnsmasq: { command: "dnsmasq", install: "apt-get install -y dnsmasq-base" },
  dig: { command: "dig", install: "apt-get install -y bind9-dnsutils" },
  nginx: { command: "nginx", install: "apt-get install -y nginx" },
  openssl: { command: "openssl", install: "apt-get install -y openssl" },
  wrk: { command: "wrk", install: "apt-get install -y wrk" },
  lftp: { command: "lftp", install: "apt-get install -y lftp" },
  vsftpd: { command: "vsftpd", install: "apt-get install -y vsftpd" },
  pyftpdlib: {
    command: PYTHON,
    install: "apt-get install -y python3-pyftpdlib",
    pythonModule: "pyftpdlib",
  },
  jupyter: {
    command: "jupyter-nbconvert",
    install: "apt-get install -y jupyter-nbconvert python3-nbclient python3-ipykernel" +
      " && deno jupyter --install",
  },
} satisfies Record<string, Peer>;

const found = new Map<string, boolean>();

/** Whether a peer is installed (cached). */
export function hasPeer(peer: Peer): boolean {
  const key = peer.command + (peer.pythonModule ?? "");
  if (!found.has(key)) {
    let ok = onPath(peer.command);
    if (ok && peer.pythonModule) {
      const check = ["-c", `import ${peer.pythonModule}`];
      ok = new Deno.Command(PYTHON, { args: check, stdout: "null", stderr: "null" }).outputSync()
        .success;
    }
    found.set(key, ok);
  }
  return found.get(key)!;
}

// Found without running it: some peers take any argument as work to do
// (`dig --version` would look up a name, `vsftpd --version` read a config).
function onPath(command: string): boolean {
  const dirs = command.includes("/")
    ? [""]
    : [...(Deno.env.get("PATH") ?? "").split(":"), "/usr/sbin", "/sbin"];
  return dirs.some((dir) => {
    try {
      const info = Deno.statSync(dir ? `${dir}/${command}` : command);
      return info.isFile && ((info.mode ?? 0o111) & 0o111) !== 0;
    } catch {
      return false;
    }
  });
}

/**
 * How long a test with real peers may run before it fails. The slowest takes
 * about 16 s with both cores busy; a peer that deadlocks (socat's PIPE echo
 * did, on a loaded CI machine) would otherwise hang the whole suite, since
 * deno test has no time limit of its own.
 */
export const PEER_TEST_DEADLINE_MS = 180_000;

/**
 * A test that needs real peers. Where one is missing, the test is reported as
 * ignored, its name saying what to install; under `WIREBOOK_REQUIRE_PEERS=1`
 * (as in CI) a missing peer fails the test instead. A test still running
 * after {@linkcode PEER_TEST_DEADLINE_MS} fails, and the suite goes on.
 */
export function peerTest(
  name: string,
  peers: Peer[],
  fn: (t: Deno.TestContext) => Promise<void>,
): void {
  const missing = peers.filter((peer) => !hasPeer(peer));
  const required = Deno.env.get("WIREBOOK_REQUIRE_PEERS") === "1";
  if (missing.length === 0) {
    // On time out, what the test waited for stays pending: deno test reports
    // it as the failed test's leak, and runs the next test.
    Deno.test(name, (t) => withTimeout(() => fn(t), PEER_TEST_DEADLINE_MS));
  } else if (required) {
    Deno.test(name, () => {
      throw new Error(`missing peer(s): ${missing.map((peer) => peer.install).join("; ")}`);
    });
  } else {
    const hint = missing.map((peer) => peer.install).join("; ");
    Deno.test({ name: `${name} (needs: ${hint})`, ignore: true, fn });
  }
}

/**
 * `fn()`, failing the test if it has not settled within `ms`: for a test of a
 * configured timeout, with `ms` well under the script's default, so that a
 * timeout that was ignored (the default used instead) fails the test rather
 * than making it slower. Not a measure of speed.
 */
export async function within<T>(ms: number, what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await withTimeout(fn, ms);
  } catch (error) {
    if (error instanceof DOMException && error.name === "TimeoutError") {
      throw new Error(`${what} not within ${ms / 1000} s: was the configured timeout ignored?`);
    }
    throw error;
  }
}

/** Random bytes of any size (crypto.getRandomValues fills at most 64 KiB a call). */
export function randomBytes(size: number): Uint8Array<ArrayBuffer> {
  const bytes = new Uint8Array(size);
  for (let offset = 0; offset < size; offset += 65536) {
    crypto.getRandomValues(bytes.subarray(offset, Math.min(size, offset + 65536)));
  }
  return bytes;
}

/** SHA-256 of bytes, as hex. */
export async function sha256(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Paths of the files {@linkcode makeTestCertificates} writes. */
export interface TestCertificates {
  /** The folder holding them. */
  dir: string;
  /** The test CA's certificate (PEM): what a client trusts (`--cert`, `caCerts`). */
  ca: string;
  /** The server's certificate (PEM), signed by the CA. */
  cert: string;
  /** The server's private key (PEM). */
  key: string;
}

/**
 * Make a test CA and a server certificate it signs, for localhost, 127.0.0.1
 * and ::1, with openssl, into `dir` (for this run only: no key is committed).
 * A CA-signed certificate, not a self-signed one: rustls (behind
 * Deno.connectTls) will not take a CA certificate as a server's own.
 */
export async function makeTestCertificates(dir: string): Promise<TestCertificates> {
  const openssl = async (...args: string[]) => {
    const result = await run("openssl", args, { cwd: dir });
    if (result.code !== 0) throw new Error(`openssl ${args[0]} failed: ${result.stderr}`);
  };
  await Deno.writeTextFile(
    `${dir}/ca.ext`,
    "basicConstraints=critical,CA:TRUE\nkeyUsage=critical,keyCertSign,cRLSign\n",
  );
  await Deno.writeTextFile(
    `${dir}/server.ext`,
    "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nbasicConstraints=CA:FALSE\n" +
      "extendedKeyUsage=serverAuth\n",
  );
  await openssl(
    ..."req -newkey rsa:2048 -nodes -keyout ca.key -out ca.csr -subj".split(" "),
    "/CN=wirebook test CA",
  );
  await openssl(
    ..."x509 -req -in ca.csr -signkey ca.key -out ca.pem -days 2 -extfile ca.ext".split(" "),
  );
  await openssl(
    ..."req -newkey rsa:2048 -nodes -keyout key.pem -out server.csr -subj /CN=localhost".split(" "),
  );
  await openssl(
    ..."x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out cert.pem -days 2 -extfile server.ext"
      .split(" "),
  );
  return { dir, ca: `${dir}/ca.pem`, cert: `${dir}/cert.pem`, key: `${dir}/key.pem` };
}

/** A free loopback TCP port, for a peer that cannot listen on port 0 and say which it got. */
export function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr;
  listener.close();
  return port;
}

/** An nginx started by {@linkcode startNginx}. */
export interface Nginx {
  /** `http://127.0.0.1:PORT`. */
  url: string;
  port: number;
  stop(): Promise<void>;
}

/**
 * Start nginx serving `dir`/www on a free loopback port, its config, logs and
 * temp paths all in `dir`. It adds `X-Connection` (nginx's connection number,
 * to count keep-alive reuse) to every response, and serves the same files
 * under /chunked/ with their length unknown, so they go out chunked.
 * `extra` is more config for the server block. nginx cannot listen on port 0,
 * so a port taken in between is retried (5 times).
 */
export async function startNginx(dir: string, extra = ""): Promise<Nginx> {
  for (let attempt = 1;; attempt++) {
    const port = freePort();
    const conf = `${dir}/nginx.conf`;
    await Deno.writeTextFile(
      conf,
      `worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events { worker_connections 64; }
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  default_type application/octet-stream;
  gzip off;
  server {
    listen 127.0.0.1:${port};
    root ${dir}/www;
    add_header X-Connection $connection always;
    add_header X-Connection-Requests $connection_requests always;
    # The same files, with their length unknown to nginx: sub_filter may
    # change the bytes (it replaces "#" by "#", which changes nothing), so
    # nginx drops Content-Length and sends the body chunked.
    location /chunked/ {
      alias ${dir}/www/;
      sub_filter '#' '#';
      sub_filter_once off;
      sub_filter_types *;
    }
    ${extra}
  }
}
`,
    );
    const child = new Deno.Command("nginx", {
      args: ["-p", dir, "-c", conf, "-g", "daemon off;"],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const stderr = new Response(child.stderr).text();
    const stop = async () => {
      try {
        child.kill("SIGTERM");
      } catch { /* gone */ }
      await child.status;
      await stderr;
    };
    // Ready when it accepts a connection; bounded wait.
    let exited = false;
    child.status.then(() => exited = true);
    for (let i = 0; i < 200 && !exited; i++) {
      try {
        (await Deno.connect({ hostname: "127.0.0.1", port })).close();
        return { url: `http://127.0.0.1:${port}`, port, stop };
      } catch {
        await new Promise((resolve) => setTimeout(resolve, 25));
      }
    }
    await stop();
    if (attempt === 5) throw new Error(`nginx did not start: ${await stderr}`);
  }
}
