/**
 * scripts/ftp_client.ts against curl, both talking to the same vsftpd on
 * loopback: one 100 MiB file downloaded (RETR), and uploaded (STOR).
 *
 * - **download** / **upload**: the headline is each client's own transfer
 *   rate, the number it prints itself: curl's `%{speed_download}` /
 *   `%{speed_upload}` (bytes over its whole session: connect, login,
 *   transfer), ours the `MiB/s` of its `got ...`/`put ...` line (from the
 *   data connection's opening to the 226). Deno's own start-up (~60 ms, more
 *   than half of what 100 MiB takes on loopback) is not throughput, so it is
 *   left out of the headline and shown in the second column: MiB/s over the
 *   whole process, start to exit. Our `get` also fsyncs the file before
 *   renaming it into place; curl does not (that, too, only in the column).
 * - Every run starts from `sync`, so one run's dirty pages are not the next
 *   one's writeback, and each copy is checked against the original (`cmp`).
 *
 * vsftpd runs as root here (it must be started as root) with anonymous
 * access: downloads from its root, uploads into a world-writable `incoming/`
 * (`anon_upload_enable=YES`), so no system user is needed. The files live in
 * a private `mktemp -d` under /tmp: not /dev/shm, where Deno asks for
 * --allow-all.
 *
 * Wire into bench/run.ts: nothing to do (it finds bench/*_bench.ts); the
 * peers are `deno` (subject) and `curl` (baseline), and vsftpd must be
 * installed (`apt-get install -y vsftpd`), or every run fails saying so.
 */

import {
  type Benchmark,
  denoPeer,
  freePort,
  type Peer,
  runToEnd,
  startProcess,
  versionOf,
  waitForPort,
} from "./_harness.ts";

const MIB = 1024 * 1024;
const SIZES = { full: 100 * MIB, quick: 16 * MIB };
const SCRIPT = new URL("../scripts/ftp_client.ts", import.meta.url).pathname;

const deno: Peer = denoPeer("deno", "scripts/ftp_client.ts get/put");
const curl: Peer = {
  name: "curl",
  description: "curl ftp:// (-o FILE, -T FILE)",
  command: "curl",
  install: "apt-get install -y curl",
  version: () => versionOf("curl", ["--version"], /\d+\.\d+\.\d+/),
};

/** A shell command, run to its end (the bench may not write files itself: --allow-run only). */
function sh(script: string, options: { signal?: AbortSignal } = {}): Promise<string> {
  return runToEnd("sh", ["-c", script], { timeout: 120_000, signal: options.signal });
}

/** Single-quote for sh. */
const q = (text: string) => `'${text.replaceAll("'", `'\\''`)}'`;

interface Setup {
  dir: string;
  port: number;
  size: number;
  stop(): Promise<void>;
}

/** A temp folder with a random file, and vsftpd serving it on a free port. */
async function setUp(quick: boolean, signal: AbortSignal): Promise<Setup> {
  const size = quick ? SIZES.quick : SIZES.full;
  const dir = (await sh("mktemp -d", { signal })).trim();
  const cleanUp = () => sh(`rm -rf ${q(dir)}`).then(() => {});
  try {
    const port = freePort();
    const config = [
      "listen=YES",
      "listen_ipv6=NO",
      "listen_address=127.0.0.1",
      `listen_port=${port}`,
      "background=NO",
      "anonymous_enable=YES",
      `anon_root=${dir}/anon`,
      "no_anon_password=YES",
      "write_enable=YES",
      "anon_upload_enable=YES",
      "anon_umask=022",
      "local_enable=NO",
      `secure_chroot_dir=${dir}/empty`,
      "seccomp_sandbox=NO",
      "pasv_address=127.0.0.1",
      "xferlog_enable=NO",
    ].join("\n");
    await sh(
      [
        `cd ${q(dir)}`,
        "chmod 755 .",
        "mkdir -p anon/incoming empty down",
        "chmod 777 anon/incoming",
        "chmod 555 empty",
        `head -c ${size} /dev/urandom > anon/file.bin`,
        "cp anon/file.bin up.bin",
        `printf '%s\\n' ${q(config)} > vsftpd.conf`,
      ].join(" && "),
      { signal },
    );
    const vsftpd = startProcess("vsftpd", [`${dir}/vsftpd.conf`]);
    await waitForPort(vsftpd, port, { signal });
    return {
      dir,
      port,
      size,
      async stop() {
        await vsftpd.stop();
        await cleanUp();
      },
    };
  } catch (error) {
    await cleanUp();
    throw error;
  }
}

/** Run one transfer with `peer`; returns its own rate and the whole process's, in MiB/s. */
async function transfer(
  peer: Peer,
  direction: "download" | "upload",
  setup: Setup,
  signal: AbortSignal,
): Promise<Record<string, number>> {
  const { dir, port, size } = setup;
  const target = direction === "download"
    ? `${dir}/down/${peer.name}.bin`
    : `${dir}/anon/incoming/${peer.name}.bin`;
  await sh(`rm -f ${q(target)} && sync`, { signal });

  let args: string[];
  if (peer.name === "deno") {
    const common = ["run", "--no-prompt", "--allow-net=127.0.0.1", `--allow-read=${dir}`];
    args = direction === "download"
      ? [...common, `--allow-write=${dir}`, SCRIPT, "get", "file.bin", target, "--port", `${port}`]
      : [
        ...common,
        SCRIPT,
        "put",
        `${dir}/up.bin`,
        `incoming/${peer.name}.bin`,
        "--port",
        `${port}`,
      ];
  } else {
    const url = `ftp://127.0.0.1:${port}/`;
    args = direction === "download"
      ? ["-sS", "-o", target, `${url}file.bin`, "-w", "%{speed_download}"]
      : ["-sS", "-T", `${dir}/up.bin`, `${url}incoming/${peer.name}.bin`, "-w", "%{speed_upload}"];
  }
  const started = performance.now();
  const stdout = await runToEnd(peer.command, args, { timeout: 300_000, signal });
  const wall = (performance.now() - started) / 1000;

  let own: number;
  if (peer.name === "deno") {
    const match = stdout.match(/\((\d+) bytes, ([\d.]+) MiB\/s\)/);
    if (!match) throw new Error(`no rate in: ${stdout.trim()}`);
    own = Number(match[2]);
  } else {
    own = Number(stdout.trim()) / MIB;
  }
  const source = direction === "download" ? `${dir}/anon/file.bin` : `${dir}/up.bin`;
  await sh(`cmp -s ${q(source)} ${q(target)}`, { signal }).catch(() => {
    throw new Error(`the ${direction}ed copy differs from the original`);
  });
  return { mibps: own, wall: size / MIB / wall };
}

function benchmark(direction: "download" | "upload"): Benchmark {
  const verb = direction === "download" ? "downloads (RETR)" : "uploads (STOR)";
  return {
    name: direction,
    title: `One 100 MiB file of random bytes: each client ${verb} it from/to vsftpd on ` +
      "127.0.0.1 (passive mode, TYPE I), once per run.",
    quickTitle: `As above, with 16 MiB.`,
    peers: [deno, curl],
    subject: "deno",
    baseline: "curl",
    metrics: [
      {
        key: "mibps",
        label: "MiB/s (transfer, as the client reports it)",
        better: "higher",
        digits: 0,
      },
      { key: "wall", label: "MiB/s (whole process)", better: "info", digits: 0 },
    ],
    targets: [{ metric: "mibps", peer: "curl", atLeast: 0.7 }],
    async run(peer, options) {
      const setup = await setUp(options.quick, options.signal);
      try {
        return await transfer(peer, direction, setup, options.signal);
      } finally {
        await setup.stop();
      }
    },
  };
}

export const benchmarks: Benchmark[] = [benchmark("download"), benchmark("upload")];
