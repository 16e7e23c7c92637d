/**
 * Choose the local address a UDP client socket should bind to.
 *
 * @module
 */

/**
 * The local address a client socket should bind to in order to reach
 * `remoteHost`: loopback for a loopback server, so that the scoped permission
 * `--allow-net=127.0.0.1` (or `::1`) covers the bind too; every address
 * (`0.0.0.0` or `::`) for anything else, so the OS picks the interface.
 *
 * @param remoteHost The server's address or name.
 * @returns The address to pass to {@linkcode listenUdp} with port 0.
 *
 * @example
 * ```ts
 * import { localAddressFor } from "./local_address_for.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(localAddressFor("127.0.0.1"), "127.0.0.1");
 * assert.equal(localAddressFor("localhost"), "127.0.0.1");
 * assert.equal(localAddressFor("::1"), "::1");
 * assert.equal(localAddressFor("2001:db8::1"), "::");
 * assert.equal(localAddressFor("dns.example"), "0.0.0.0");
 * ```
 */
export function localAddressFor(remoteHost: string): string {
  if (remoteHost === "::1" || remoteHost === "[::1]") return "::1";
  if (remoteHost.includes(":")) return "::";
  return /^127\.|^localhost$/.test(remoteHost) ? "127.0.0.1" : "0.0.0.0";
}
