import assert from "node:assert/strict";
import { formatAddress } from "./format_address.ts";

Deno.test("formatAddress() shows a real connection's two ends as host:port", async () => {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const client = await Deno.connect({ hostname: "127.0.0.1", port: listener.addr.port });
  const server = await listener.accept();
  assert.equal(formatAddress(server.localAddr), `127.0.0.1:${listener.addr.port}`);
  assert.equal(
    formatAddress(server.remoteAddr),
    `127.0.0.1:${(client.localAddr as Deno.NetAddr).port}`,
  );
  client.close();
  server.close();
  listener.close();
});

Deno.test("formatAddress() brackets IPv6 so the result parses as a URL's host and port", () => {
  const text = formatAddress({ transport: "tcp", hostname: "fe80::1", port: 8080 });
  assert.equal(text, "[fe80::1]:8080");
  assert.equal(new URL(`http://${text}/`).port, "8080");
});
