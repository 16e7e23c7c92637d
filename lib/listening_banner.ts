/**
 * The line a server prints when it is ready.
 *
 * @module
 */

import { formatAddress } from "./format_address.ts";

/**
 * Format the line a server prints to stdout once it accepts connections:
 * `listening on <scheme>://<host>:<port>`, with an IPv6 host in brackets as in
 * a URL. Tests and tools wait for this line, and read the port from it when
 * the server was asked for any free port (`--port 0`).
 *
 * @param scheme The protocol: `tcp`, `udp`, `http`, `ws`, `ftp`, `smtp`, `dns`.
 * @param address The address the listener is bound to (`listener.addr`).
 * @returns The line, without a newline.
 *
 * @example
 * ```ts
 * import { listeningBanner } from "./listening_banner.ts";
 * import assert from "node:assert/strict";
 *
 * const v4 = { transport: "tcp", hostname: "127.0.0.1", port: 7007 } as const;
 * const v6 = { transport: "udp", hostname: "::1", port: 53 } as const;
 * assert.equal(listeningBanner("tcp", v4), "listening on tcp://127.0.0.1:7007");
 * assert.equal(listeningBanner("dns", v6), "listening on dns://[::1]:53");
 * ```
 */
export function listeningBanner(scheme: string, address: Deno.NetAddr): string {
  return `listening on ${scheme}://${formatAddress(address)}`;
}
