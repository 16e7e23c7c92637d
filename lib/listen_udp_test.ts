import assert from "node:assert/strict";
import { listenUdp } from "./listen_udp.ts";

Deno.test("listenUdp() opens a socket that sends and receives a datagram", async () => {
  const a = listenUdp("127.0.0.1", 0);
  const b = listenUdp("127.0.0.1", 0);
  await a.send(new Uint8Array([1, 2, 3]), b.addr);
  const [data, from] = await b.receive();
  assert.deepEqual([...data], [1, 2, 3]);
  assert.equal((from as Deno.NetAddr).port, (a.addr as Deno.NetAddr).port);
  a.close();
  b.close();
});

Deno.test("listenUdp() without --unstable-net says to add it, in a real process", async () => {
  const module = new URL("./listen_udp.ts", import.meta.url).href;
  const file = await Deno.makeTempFile({ suffix: ".ts" });
  await Deno.writeTextFile(
    file,
    `import { listenUdp } from "${module}";
     try { listenUdp("127.0.0.1", 0); } catch (error) { console.log((error as Error).message); }`,
  );
  const { stdout } = await new Deno.Command(Deno.execPath(), {
    args: ["run", "--no-prompt", "--allow-net=127.0.0.1", file],
    env: { NO_COLOR: "1" },
  }).output().finally(() => Deno.remove(file));
  assert.equal(
    new TextDecoder().decode(stdout).trim(),
    "Deno's UDP API is unstable and off; run again with --unstable-net",
  );
});
