import assert from "node:assert/strict";

// Signals are sent to a real child process, which prints what it saw.
const SHUTDOWN_SIGNAL = new URL("./shutdown_signal.ts", import.meta.url).href;

Deno.test({
  name: "shutdownSignal() aborts on SIGTERM and on SIGINT, naming the signal",
  ignore: Deno.build.os === "windows",
  async fn() {
    for (const name of ["SIGTERM", "SIGINT"] as const) {
      const program = `
        import { shutdownSignal } from "${SHUTDOWN_SIGNAL}";
        const signal = shutdownSignal();
        const timer = setInterval(() => {}, 1000); // stay alive until told
        signal.addEventListener("abort", () => {
          clearInterval(timer);
          console.log("stopping:", signal.reason.message);
        });
        console.log("ready");
      `;
      const child = new Deno.Command(Deno.execPath(), {
        args: ["eval", "--ext=ts", program],
        stdout: "piped",
        stderr: "piped",
      }).spawn();
      const reader = child.stdout.pipeThrough(new TextDecoderStream()).getReader();
      let out = "";
      while (!out.includes("ready\n")) out += (await reader.read()).value ?? "";
      child.kill(name);
      for (let chunk = await reader.read(); !chunk.done; chunk = await reader.read()) {
        out += chunk.value;
      }
      const status = await child.status;
      await child.stderr.cancel();
      assert.equal(status.code, 0, `exit after ${name}`);
      assert.match(out, new RegExp(`stopping: received ${name}`));
    }
  },
});
