/**
 * scripts/ftp_server.ts against vsftpd, both loaded by the same client, curl,
 * in the same run, on loopback:
 *
 * - **download**: `curl -o /dev/null ftp://…/file.bin`, a 100 MiB file of
 *   random bytes on disk (16 MiB with --quick).
 * - **upload**: `curl -T file.bin ftp://…/up/copy.bin`, the same file,
 *   written to disk by the server (ours: to a temporary file, renamed at the
 *   end, after it has checked that the client is still there).
 *
 * The headline is MiB/s over the transfer: from curl's `time_pretransfer`
 * (logged in, data connection open, RETR or STOR sent) to its `time_total`
 * (the server's `226` read), so it includes everything the server does for
 * the file and nothing of curl's own set-up. (curl 7.88 sometimes waits
 * about 200 ms before it connects to the EPSV port, on its resolver thread,
 * with either server; counted in, it would decide a run.) The whole session's
 * time is shown too, and the server's CPU time per GiB (from /proc: ours is
 * one process; vsftpd's short-lived session processes are counted once
 * reaped, at the kernel's 10 ms tick granularity, so its figure reads near 0).
 *
 * Both servers serve the same kind of folder: a fresh one per run under
 * bench/results/ (where `deno task bench` may write), removed after, and
 * flushed to disk (`sync`) before the transfer is measured. Ours runs
 * as `serve --root DIR --quiet` with `--allow-read=DIR --allow-write=DIR`;
 * vsftpd anonymously, with uploads allowed into `up/` and no logging, twice:
 * with its default `use_sendfile=YES` (for a download the kernel hands file
 * pages to the socket, with no copy through the program), and with
 * `use_sendfile=NO` (it reads into a buffer and writes that, as ours must:
 * Deno has no sendfile). The target, from the issue: at least 0.7× vsftpd's
 * throughput both ways; vsftpd-copy shows how much of a gap is sendfile.
 *
 * vsftpd must run as root (it chroots into the folder and drops to the `ftp`
 * user); its package creates that user and /var/run/vsftpd/empty. Debian's
 * package does not start it where policy-rc.d forbids services (containers);
 * elsewhere `apt-get install -y vsftpd` also starts the system's vsftpd on
 * port 21, which this benchmark does not use.
 */

import {
  type Benchmark,
  cpuSeconds,
  denoPeer,
  freePort,
  isInstalled,
  type Peer,
  ROOT,
  type RunningProcess,
  type RunOptions,
  runToEnd,
  startProcess,
  versionOf,
  waitForBanner,
  waitForPort,
} from "./_harness.ts";

const MIB = 1024 * 1024;
const SIZE = { full: 100 * MIB, quick: 16 * MIB };

const deno: Peer = denoPeer("deno", "scripts/ftp_server.ts serve --root DIR");
const vsftpd: Peer = {
  name: "vsftpd",
  description: "vsftpd, anonymous, its defaults (sendfile on)",
  command: "vsftpd",
  install: "apt-get install -y vsftpd",
  version: () => versionOf("dpkg-query", ["-W", "-f=${Version}", "vsftpd"], /[\d.]+/),
};
const vsftpdCopy: Peer = {
  ...vsftpd,
  name: "vsftpd-copy",
  description: "vsftpd, use_sendfile=NO (read and write through a buffer, as ours)",
};

/** A server on a free port, its folder, and the user curl logs in as. */
interface Started {
  server: RunningProcess;
  port: number;
  dir: string;
  auth: string[];
}

// A folder of its own for each run: root/file.bin to download, root/up/ to
// upload into (writable by vsftpd's `ftp` user), and vsftpd's configuration.
async function makeFolder(size: number): Promise<string> {
  const dir = await Deno.makeTempDir({ dir: `${ROOT}bench/results`, prefix: ".ftp-" });
  await Deno.chmod(dir, 0o755);
  await Deno.mkdir(`${dir}/root/up`, { recursive: true });
  await Deno.chmod(`${dir}/root`, 0o755);
  await Deno.chmod(`${dir}/root/up`, 0o777);
  const file = await Deno.open(`${dir}/root/file.bin`, { write: true, create: true });
  try {
    const chunk = new Uint8Array(MIB);
    for (let written = 0; written < size; written += chunk.length) {
      for (let offset = 0; offset < chunk.length; offset += 65536) {
        crypto.getRandomValues(chunk.subarray(offset, offset + 65536));
      }
      let offset = 0;
      const piece = chunk.subarray(0, Math.min(chunk.length, size - written));
      while (offset < piece.length) offset += await file.write(piece.subarray(offset));
    }
  } finally {
    file.close();
  }
  return dir;
}

async function startServer(peer: Peer, size: number, signal: AbortSignal): Promise<Started> {
  const dir = await makeFolder(size);
  try {
    const root = `${dir}/root`;
    if (peer === deno) {
      const server = startProcess(Deno.execPath(), [
        "run",
        "--no-prompt",
        "--allow-net=127.0.0.1",
        `--allow-read=${root}`,
        `--allow-write=${root}`,
        "scripts/ftp_server.ts",
        "serve",
        "--port",
        "0",
        "--root",
        root,
        "--user",
        "bench:bench",
        "--quiet",
      ]);
      return {
        server,
        port: await waitForBanner(server, { signal }),
        dir,
        auth: ["-u", "bench:bench"],
      };
    }
    const port = freePort();
    // Anonymous, chrooted to root/, uploads into up/. The isolation and
    // seccomp features vsftpd uses by default need privileges a container may
    // lack; they cost nothing on the data path.
    await Deno.writeTextFile(
      `${dir}/vsftpd.conf`,
      [
        "listen=YES",
        "listen_ipv6=NO",
        "listen_address=127.0.0.1",
        `listen_port=${port}`,
        "background=NO",
        "anonymous_enable=YES",
        "local_enable=NO",
        "no_anon_password=YES",
        `anon_root=${root}`,
        "write_enable=YES",
        "anon_upload_enable=YES",
        "anon_other_write_enable=YES",
        "anon_umask=022",
        "allow_writeable_chroot=YES",
        "seccomp_sandbox=NO",
        "isolate=NO",
        "isolate_network=NO",
        "xferlog_enable=NO",
        `vsftpd_log_file=${dir}/vsftpd.log`,
        `use_sendfile=${peer === vsftpdCopy ? "NO" : "YES"}`,
        "",
      ].join("\n"),
    );
    const server = startProcess("vsftpd", [`${dir}/vsftpd.conf`]);
    return { server, port: await waitForPort(server, port, { signal }), dir, auth: [] };
  } catch (error) {
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    throw error;
  }
}

// One curl transfer: its bytes and seconds, as curl counts them.
async function curl(
  args: string[],
  signal: AbortSignal,
): Promise<{ bytes: number; transfer: number; total: number }> {
  const output = await runToEnd("curl", [
    "-sS",
    "--max-time",
    "120",
    "-w",
    "%{size_download} %{size_upload} %{time_pretransfer} %{time_total}",
    ...args,
  ], { timeout: 150_000, signal });
  const [down, up, pretransfer, total] = output.trim().split(" ").map(Number);
  return { bytes: Math.max(down, up), transfer: total - pretransfer, total };
}

function measure(way: "download" | "upload") {
  return async (peer: Peer, options: RunOptions): Promise<Record<string, number>> => {
    if (!await isInstalled("curl")) {
      throw new Error("curl is not installed: apt-get install -y curl");
    }
    const size = options.quick ? SIZE.quick : SIZE.full;
    const { server, port, dir, auth } = await startServer(peer, size, options.signal);
    try {
      // The folder's 100 MiB file was just written: flush it to disk now, so
      // that its write-back does not land in the middle of a measured transfer.
      await runToEnd("sync", [], { timeout: 60_000, signal: options.signal });
      const url = `ftp://127.0.0.1:${port}`;
      const args = way === "download"
        ? [...auth, "-o", "/dev/null", `${url}/file.bin`]
        : [...auth, "-T", `${dir}/root/file.bin`, `${url}/up/copy.bin`];
      const cpuBefore = await cpuSeconds(server.pid);
      const { bytes, transfer, total } = await curl(args, options.signal);
      // vsftpd serves each session in processes of its own; their CPU time
      // is counted once they have exited and been reaped, a moment after
      // curl is done. The same wait for both servers.
      await new Promise((resolve) => setTimeout(resolve, 300));
      const cpu = await cpuSeconds(server.pid) - cpuBefore;
      if (bytes !== size) throw new Error(`curl moved ${bytes} bytes, not ${size}`);
      if (way === "upload") {
        await waitForFile(`${dir}/root/up/copy.bin`, size);
      }
      return {
        mibPerSecond: bytes / MIB / transfer,
        sessionMs: total * 1000,
        cpuPerGib: cpu / (bytes / (1024 * MIB)),
      };
    } finally {
      await server.stop();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
    }
  };
}

// The upload counts only once the whole file is on disk under its name.
async function waitForFile(path: string, size: number): Promise<void> {
  for (let i = 0; i < 100; i++) {
    const info = await Deno.stat(path).catch(() => undefined);
    if (info?.size === size) return;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  throw new Error(`${path} never reached ${size} bytes`);
}

const METRICS = [
  { key: "mibPerSecond", label: "MiB/s", better: "higher" },
  { key: "sessionMs", label: "whole session ms", better: "info" },
  { key: "cpuPerGib", label: "server CPU s/GiB", better: "info", digits: 2 },
] as const;

/** The benchmarks bench/run.ts discovers. */
export const benchmarks: Benchmark[] = [
  {
    name: "download",
    title: "curl downloads a 100 MiB file of random bytes (EPSV, TYPE I, RETR) to /dev/null; " +
      "MiB/s from RETR to 226 (curl's time_total - time_pretransfer).",
    quickTitle: "curl downloads 16 MiB (--quick).",
    peers: [deno, vsftpd, vsftpdCopy],
    subject: "deno",
    baseline: "vsftpd",
    metrics: [...METRICS],
    targets: [{ metric: "mibPerSecond", peer: "vsftpd", atLeast: 0.7 }],
    run: measure("download"),
  },
  {
    name: "upload",
    title: "curl -T uploads the same 100 MiB file (EPSV, TYPE I, STOR); the server writes it " +
      "to disk (ours to a temporary file, renamed when whole); MiB/s from STOR to 226.",
    quickTitle: "curl -T uploads 16 MiB (--quick).",
    peers: [deno, vsftpd, vsftpdCopy],
    subject: "deno",
    baseline: "vsftpd",
    metrics: [...METRICS],
    targets: [{ metric: "mibPerSecond", peer: "vsftpd", atLeast: 0.7 }],
    run: measure("upload"),
  },
];
