import assert from "node:assert/strict";
import { listeningBanner } from "./listening_banner.ts";

Deno.test("listeningBanner() prints the address a real listener bound, port 0 resolved", () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  try {
    const line = listeningBanner("tcp", listener.addr);
    assert.equal(line, `listening on tcp://127.0.0.1:${listener.addr.port}`);
    assert.notEqual(listener.addr.port, 0);
  } finally {
    listener.close();
  }
});

Deno.test("listeningBanner() brackets an IPv6 host, as in a URL", () => {
  const line = listeningBanner("http", { transport: "tcp", hostname: "::1", port: 8080 });
  assert.equal(line, "listening on http://[::1]:8080");
  assert.equal(new URL(line.slice("listening on ".length)).port, "8080");
});
