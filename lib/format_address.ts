/**
 * Show a socket address the way a person types it.
 *
 * @module
 */

/**
 * Format a socket address as `host:port`, with an IPv6 host in brackets
 * (`[::1]:53`) as in a URL, so the colon before the port stays unambiguous.
 * A Unix socket shows its path.
 *
 * @param address A `conn.remoteAddr`, `listener.addr`, or the peer of a datagram.
 * @returns The address as text.
 *
 * @example
 * ```ts
 * import { formatAddress } from "./format_address.ts";
 * import assert from "node:assert/strict";
 *
 * assert.equal(formatAddress({ transport: "tcp", hostname: "127.0.0.1", port: 80 }), "127.0.0.1:80");
 * assert.equal(formatAddress({ transport: "udp", hostname: "::1", port: 53 }), "[::1]:53");
 * assert.equal(formatAddress({ transport: "unix", path: "/run/x.sock" }), "/run/x.sock");
 * ```
 */
export function formatAddress(address: Deno.Addr): string {
  if (address.transport === "tcp" || address.transport === "udp") {
    const host = address.hostname.includes(":") ? `[${address.hostname}]` : address.hostname;
    return `${host}:${address.port}`;
  }
  return "path" in address ? address.path : address.transport;
}
