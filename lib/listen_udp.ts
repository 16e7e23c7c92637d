/**
 * Open a UDP socket, or say plainly which flag is missing.
 *
 * @module
 */

/**
 * Open a UDP socket bound to `hostname:port` (port 0: any free port).
 *
 * Deno's UDP API, `Deno.listenDatagram`, is unstable: without the
 * `--unstable-net` flag it does not exist at all, and calling it would fail
 * with "Deno.listenDatagram is not a function". This says what to do instead.
 *
 * @param hostname The local address to bind: `127.0.0.1`, `::1`, `0.0.0.0`, ...
 * @param port The local port; 0 picks a free one.
 * @returns The socket.
 * @throws {Error} Naming `--unstable-net` when the API is off.
 * @throws {Deno.errors.NotCapable} Without net permission for `hostname`.
 *
 * @example Run with --unstable-net, as `deno task test` does
 * ```ts
 * import { listenUdp } from "./listen_udp.ts";
 * import assert from "node:assert/strict";
 *
 * const socket = listenUdp("127.0.0.1", 0);
 * assert.notEqual((socket.addr as Deno.NetAddr).port, 0);
 * socket.close();
 * ```
 */
export function listenUdp(hostname: string, port: number): Deno.DatagramConn {
  if (typeof Deno.listenDatagram !== "function") {
    throw new Error("Deno's UDP API is unstable and off; run again with --unstable-net");
  }
  return Deno.listenDatagram({ transport: "udp", hostname, port });
}
