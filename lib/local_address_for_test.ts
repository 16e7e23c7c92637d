import assert from "node:assert/strict";
import { localAddressFor } from "./local_address_for.ts";

Deno.test("localAddressFor() keeps loopback on loopback and opens up for anything else", () => {
  const cases: [string, string][] = [
    ["127.0.0.1", "127.0.0.1"],
    ["127.8.9.10", "127.0.0.1"],
    ["localhost", "127.0.0.1"],
    ["::1", "::1"],
    ["[::1]", "::1"],
    ["fe80::1", "::"],
    ["192.0.2.1", "0.0.0.0"],
    ["example.org", "0.0.0.0"],
  ];
  for (const [remote, local] of cases) assert.equal(localAddressFor(remote), local, remote);
});
