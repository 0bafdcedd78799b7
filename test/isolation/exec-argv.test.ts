/**
 * A task thread does not load tsx's loader again when its process was started with it (about 80 ms
 * of every thread's boot): it boots from plain JavaScript, and registers the loader itself when it
 * imports a TypeScript module. Every other option of the process still reaches the thread.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { createRuntime, Task } from "../../src/index.ts";
import { withoutTsxPreloads } from "../../src/worker/isolation/exec-argv.ts";
import { ExecArgvTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";

describe("task threads' Node.js options", () => {
  it("leave out tsx's preloads in every spelling, and keep everything else in order", () => {
    const tsxCommand = ["--require", "/app/node_modules/tsx/dist/preflight.cjs", "--import", "file:///app/node_modules/tsx/dist/loader.mjs"];
    assert.deepEqual(withoutTsxPreloads(tsxCommand), []);
    assert.deepEqual(withoutTsxPreloads(["--import", "tsx", "--enable-source-maps"]), ["--enable-source-maps"]);
    assert.deepEqual(withoutTsxPreloads(["--import=tsx", "--loader=tsx/esm", "-r", "tsx/cjs", "--experimental-loader", "C:\\app\\node_modules\\tsx\\dist\\loader.mjs"]), []);
    const others = ["--import", "./otel.mjs", "--require=dotenv/config", "--max-old-space-size=512", "-r", "./tsx-like.cjs", "--cpu-prof", "--import", "tsxx"];
    assert.deepEqual(withoutTsxPreloads(others), others);
    // A preload option without its value (as the last option) is kept as it is.
    assert.deepEqual(withoutTsxPreloads(["--conditions", "tsx", "--import"]), ["--conditions", "tsx", "--import"]);
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
