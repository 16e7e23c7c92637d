/**
 * `Deno.serve` answering "Hello, World!" to every request: the peer that
 * bench/http_raw_server_bench.ts compares scripts/http_raw_server.ts with.
 * Deno's own HTTP server (hyper, in Rust) parses and writes the HTTP; only
 * the handler runs in JavaScript.
 *
 *   deno run --allow-net=127.0.0.1 bench/peers/deno_serve_hello.ts [PORT]
 *
 * Binds 127.0.0.1 (port 0, the default, picks any free port) and prints
 * `listening on http://127.0.0.1:PORT` when ready. SIGTERM or SIGINT ends it.
 */

const port = Number(Deno.args[0] ?? 0);
const body = "Hello, World!\n";

const server = Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen: ({ port }) => console.log(`listening on http://127.0.0.1:${port}`),
}, () => new Response(body, { headers: { "content-type": "text/plain; charset=utf-8" } }));

for (const signal of ["SIGINT", "SIGTERM"] as const) {
  Deno.addSignalListener(signal, () => server.shutdown());
}
await server.finished;
