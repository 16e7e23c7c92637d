// `deno task tour`: every concept's demo, in the README's course order, each
// under a heading, its output shown as it happens. Stops at the first demo
// that fails, and says which and how.
//
//   deno run --allow-run=deno --allow-read=README.md,scripts tests/tour.ts [README]
//
// The README argument (default: the checkout's) is for tests; the scripts it
// links are run from its folder, with their own `@run` flags and --no-prompt.

import { dirname } from "node:path";
import { type CourseEntry, entryPath, readCourseMap, README } from "./_course.ts";
import { readHeader } from "./_helpers.ts";

const readme = Deno.args[0] ?? README;

function stop(entry: CourseEntry, why: string): never {
  console.error(`\ntour: stopped at ${entry.number}. ${entry.concept}: ${entry.script} ${why}`);
  Deno.exit(1);
}

let entries: CourseEntry[];
try {
  entries = readCourseMap(readme);
} catch (error) {
  console.error(`tour: cannot read the course map in ${readme}: ${(error as Error).message}`);
  Deno.exit(1);
}

for (const [i, entry] of entries.entries()) {
  if (i > 0) console.log();
  console.log(`== ${entry.number}. ${entry.concept}: ${entry.script} ==`);
  const path = entryPath(entry, readme);
  let flags: string[];
  try {
    flags = readHeader(path).runFlags;
  } catch (error) {
    if (error instanceof Deno.errors.NotFound) stop(entry, "does not exist");
    stop(entry, `has no readable header (${(error as Error).message})`);
  }
  console.log(`$ deno run ${[...flags, entry.script].join(" ")}`);

  let status: Deno.CommandStatus;
  try {
    status = await new Deno.Command("deno", {
      args: ["run", "--no-prompt", ...flags, entry.script],
      cwd: dirname(readme),
      stdin: "null",
      stdout: "inherit",
      stderr: "inherit",
    }).spawn().status;
  } catch (error) {
    stop(entry, `could not be started: ${(error as Error).message} (is deno on your PATH?)`);
  }
  if (status.signal) stop(entry, `was killed by ${status.signal}`);
  if (status.code !== 0) stop(entry, `exited with code ${status.code}`);
}

console.log(`\ntour: all ${entries.length} demos ran and exited 0`);
