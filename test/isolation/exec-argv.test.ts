/**
 * A task thread does not load tsx's loader again when its process was started with it (about 80 ms
 * of every thread's boot): it boots from plain JavaScript, and registers the loader itself when it
 * imports a TypeScript module. Every other option of the process still reaches the thread.
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { ThreadOptions, withoutTsxPreloads } from "../../src/worker/isolation/exec-argv.ts";
import { ExecArgvTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";

describe("task threads' Node.js options", () => {
  it("leave out tsx's preloads in every spelling, and keep everything else in order", () => {
    const tsxCommand = ["--require", "/app/node_modules/tsx/dist/preflight.cjs", "--import", "file:///app/node_modules/tsx/dist/loader.mjs"];
    assert.deepEqual(withoutTsxPreloads(tsxCommand), []);
    assert.deepEqual(withoutTsxPreloads(["--import", "tsx", "--enable-source-maps"]), ["--enable-source-maps"]);
    assert.deepEqual(withoutTsxPreloads(["--import=tsx", "--loader=tsx/esm", "-r", "tsx/cjs", "--experimental-loader", "C:\\app\\node_modules\\tsx\\dist\\loader.mjs"]), []);
    const others = ["--import", "./otel.mjs", "--require=dotenv/config", "--enable-source-maps", "-r", "./tsx-like.cjs", "--cpu-prof", "--import", "tsxx"];
    assert.deepEqual(withoutTsxPreloads(others), others);
    // A preload option without its value (as the last option) is kept as it is.
    assert.deepEqual(withoutTsxPreloads(["--conditions", "tsx", "--import"]), ["--conditions", "tsx", "--import"]);
  });

  it("are inherited when there is no tsx preload to leave out, and leave out what Node refuses in a thread", () => {
    assert.deepEqual(new ThreadOptions(["--enable-source-maps", "--max-old-space-size=4096"]).option(), {}, "nothing to leave out: inherited");
    const options = new ThreadOptions(["--import", "tsx", "--max-old-space-size=4096", "--stack-size", "900", "--enable-source-maps"]);
    assert.deepEqual(options.option(), { execArgv: ["--max-old-space-size=4096", "--stack-size", "900", "--enable-source-maps"] });
    const refused = Object.assign(new Error("Initiated Worker with invalid execArgv flags: --max-old-space-size=4096, --stack-size"), { code: "ERR_WORKER_INVALID_EXEC_ARGV" });
    assert.equal(options.refused(refused), true);
    assert.deepEqual(options.option(), { execArgv: ["--enable-source-maps"] });
    assert.equal(options.refused(new Error("something else")), false, "another error is not about the options");
    // Refused again, naming nothing left here: inherit the process's options after all.
    assert.equal(options.refused(refused), true);
    assert.deepEqual(options.option(), {});
    assert.equal(options.refused(refused), false);
  });

  it("start threads in a process run with tsx and options Node refuses in a thread", () => {
    const dir = tempDir();
    const script = join(dir, "child.mjs");
    writeFileSync(
      script,
      `const { createRuntime, Task } = await import(${JSON.stringify(new URL("../../src/index.ts", import.meta.url).href)});
const { ExecArgvTask } = await import(${JSON.stringify(new URL("../fixtures/isolation-tasks.ts", import.meta.url).href)});
const runtime = createRuntime({ db: ${JSON.stringify(tempDb(dir))}, logger: false, worker: { concurrency: 1 }, isolation: { mode: "thread" } });
await runtime.start();
const handle = await runtime.run(() => Task.startNew(ExecArgvTask, null));
console.log(JSON.stringify(await handle.result({ timeoutMs: 20000 })));
await runtime.stop();
`,
    );
    const child = spawnSync(process.execPath, ["--import", "tsx", "--max-old-space-size=300", "--stack-size=900", "--enable-source-maps", script], { encoding: "utf8", timeout: 60_000 });
    assert.equal(child.status, 0, child.stderr);
    const { execArgv, isMainThread } = JSON.parse(child.stdout.trim().split("\n").pop()!) as { execArgv: string[]; isMainThread: boolean };
    assert.equal(isMainThread, false);
    assert.deepEqual(execArgv, ["--enable-source-maps"], "tsx and the options only a process can have left out, the rest kept");
  });

  it("run a TypeScript task module in a thread without the process's tsx preload, with its other options", async () => {
    assert.ok(process.execArgv.join(" ").includes("tsx"), "the tests run with tsx's loader preloaded");
    const runtime = createRuntime({ db: tempDb(tempDir()), logger: false, worker: { concurrency: 1 }, isolation: { mode: "thread" } });
    await runtime.start();
    after(() => runtime.stop({ graceMs: 0 }));
    const handle = await runtime.run(() => Task.startNew(ExecArgvTask, null));
    const { execArgv, isMainThread } = (await handle.result({ timeoutMs: 20_000 })) as { execArgv: string[]; isMainThread: boolean };
    assert.equal(isMainThread, false, "it ran in a thread");
    assert.deepEqual(execArgv, withoutTsxPreloads(process.execArgv));
    assert.ok(!execArgv.join(" ").includes("tsx"), `no tsx preload in ${JSON.stringify(execArgv)}`);
  });
});
