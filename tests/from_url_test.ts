// Every script runs from its URL (CONTRACT point 8): the checkout is served
// over loopback HTTP, and each script's demo runs from there with its `@run`
// flags, in an empty folder (no deno.json, no import map) and a fresh
// DENO_DIR (nothing cached from earlier runs), so a bare specifier, a file
// read beside the script, or a module missing from the served tree fails here.
//
// What Deno 2 asks for, found by running it: a module given as a URL on the
// command line may import from its own origin (scheme, host and port) with no
// flag at all, so relative imports need nothing beyond the script's own
// flags. --allow-net plays no part in importing: a module from another origin
// needs --allow-import=<host:port> whatever --allow-net says (by default only
// deno.land, jsr.io, esm.sh, cdn.jsdelivr.net and raw/gist.githubusercontent.com
// on port 443 are allowed).

import assert from "node:assert/strict";
import { extname } from "node:path";
import { listScripts, readHeader, ROOT, runDeno, scriptPath } from "./_helpers.ts";

const CONTENT_TYPES: Record<string, string> = {
  ".ts": "application/typescript",
  ".js": "text/javascript",
  ".json": "application/json",
};

/** The checkout over HTTP on a free loopback port, and what it was asked for. */
function serveCheckout() {
  const served: string[] = [];
  const missing: string[] = [];
  const server = Deno.serve(
    { hostname: "127.0.0.1", port: 0, onListen: () => {} },
    async (request) => {
      // URL parsing has already resolved any "..", so the path stays inside ROOT.
      const path = decodeURIComponent(new URL(request.url).pathname);
      try {
        const body = await Deno.readFile(ROOT + path.slice(1));
        served.push(path);
        const type = CONTENT_TYPES[extname(path)] ?? "application/octet-stream";
        return new Response(body, { headers: { "content-type": type } });
      } catch {
        missing.push(path);
        return new Response("not found\n", { status: 404 });
      }
    },
  );
  return {
    origin: `http://127.0.0.1:${server.addr.port}`,
    served,
    missing,
    close: () => server.shutdown(),
  };
}

/** `deno run --no-prompt <flags> <url> <args>` in an empty folder with an empty DENO_DIR. */
async function runFromUrl(flags: string[], name: string, args: string[] = []) {
  const checkout = serveCheckout();
  const home = await Deno.makeTempDir({ prefix: "wirebook_from_url_" });
  try {
    const url = `${checkout.origin}/scripts/${name}.ts`;
    const result = await runDeno(["run", "--no-prompt", ...flags, url, ...args], {
      cwd: home,
      env: { DENO_DIR: `${home}/deno_dir` },
      timeout: 60_000,
    });
    return { ...result, url, served: checkout.served, missing: checkout.missing };
  } finally {
    await checkout.close();
    await Deno.remove(home, { recursive: true });
  }
}

function explain(result: { url: string; code: number; stderr: string; missing: string[] }) {
  return `deno run ${result.url} exited with ${result.code}` +
    (result.missing.length ? `; not in the checkout: ${result.missing.join(", ")}` : "") +
    `\nstderr:\n${result.stderr}`;
}

for (const name of listScripts()) {
  const flags = readHeader(scriptPath(name)).runFlags;

  Deno.test(`from URL: scripts/${name}.ts demo runs with its @run flags`, async () => {
    const result = await runFromUrl(flags, name);
    assert.equal(result.code, 0, explain(result));
    assert.ok(result.served.includes(`/scripts/${name}.ts`), "the script was not fetched");
    assert.deepEqual(result.missing, [], explain(result));
  });

  // The README's form: `deno run --allow-net https://<host>/scripts/<name>.ts`.
  const permissions = flags.filter((flag) => flag.startsWith("--allow-"));
  if (permissions.every((flag) => /^--allow-net(=|$)/.test(flag))) {
    const plain = [...flags.filter((flag) => !flag.startsWith("--allow-")), "--allow-net"];
    Deno.test(`from URL: scripts/${name}.ts demo runs with ${plain.join(" ")}`, async () => {
      const result = await runFromUrl(plain, name);
      assert.equal(result.code, 0, explain(result));
    });
  }
}

Deno.test("from URL: a script's own origin needs no --allow-import (nor any flag)", async () => {
  const result = await runFromUrl([], "tcp_echo", ["--help"]);
  assert.equal(result.code, 0, explain(result));
  assert.ok(result.served.some((path) => path.startsWith("/lib/")), "lib/ was not fetched");
});
