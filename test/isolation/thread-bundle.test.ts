import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { after, describe, it } from "node:test";
import { createRuntime, Task, type Runtime } from "../../src/index.ts";
import { bundledModule, threadBundle } from "../../src/runtime/isolation/thread-bundle.ts";
import { HogTask, ParentTask } from "../fixtures/isolation-tasks.ts";
import { tempDb, tempDir } from "../helpers.ts";

const silent = { debug: () => undefined, info: () => undefined, warn: () => undefined, error: () => undefined, child: () => silent };

describe("task threads' build", () => {
  it("builds the sources with the task modules, reuses the build while they are unchanged, builds again when one changes", async () => {
    const dir = tempDir();
    const module = join(dir, "late-tasks.ts");
    writeFileSync(module, "export class BuiltTask { run(): number { return 1; } }\n");
    const url = pathToFileURL(module).href;
    const first = await threadBundle(silent, [url]);
    assert.ok(first, "a build was made");
    after(() => rmSync(join(fileURLToPath(first.built), ".."), { recursive: true, force: true }));
    assert.ok(existsSync(first.entry), "the thread's entry is in it");
    const built = bundledModule(first, url);
    assert.ok(built && existsSync(new URL(built)), "the task module has its counterpart");
    assert.match(readFileSync(new URL(built), "utf8"), /BuiltTask/);
    assert.equal(bundledModule(first, pathToFileURL(join(dir, "other.ts")).href), null, "a module not built has none");

    const again = await threadBundle(silent, [url]);
    assert.equal(again?.built, first.built, "unchanged sources: the same build");

    writeFileSync(module, "export class BuiltTask { run(): number { return 22; } }\n");
    const changed = await threadBundle(silent, [url]);
    assert.ok(changed && changed.built !== first.built, "a changed module: a new build");
    assert.match(readFileSync(new URL(bundledModule(changed, url)!), "utf8"), /22/);
    assert.ok(existsSync(first.entry), "the previous build stays for threads that booted from it");
  });

  it("holds Kysely as one file, which the platform's sources require in the build instead of its four hundred modules", async () => {
    const bundle = await threadBundle(silent, []);
    assert.ok(bundle);
    const folder = fileURLToPath(bundle.built);
    const kysely = join(folder, "kysely.cjs");
    assert.ok(existsSync(kysely), "Kysely was built beside the bundle");
    const chunks = readdirSync(folder, { recursive: true, encoding: "utf8" })
      .filter((f) => f.endsWith(".js"))
      .map((f) => readFileSync(join(folder, f), "utf8"));
    assert.ok(chunks.some((text) => text.includes(JSON.stringify(kysely))), "the platform requires the built Kysely");
    assert.ok(!chunks.some((text) => text.includes('(__underway_source_url)("kysely")')), "a source still requires the package's own build");
    const { Kysely, sql } = createRequire(import.meta.url)(kysely) as typeof import("kysely");
    assert.equal(typeof Kysely, "function");
    assert.equal(typeof sql, "function");
  });

  it("runs a task whose module the threads learn of after they booted in the thread's own runtime (it starts a child task)", async () => {
    const dir = tempDir();
    // No task modules given: ParentTask's module is learned when it is started, after the build.
    const runtime: Runtime = createRuntime({ db: tempDb(dir), logger: false, worker: { concurrency: 2 }, isolation: { mode: "thread" } });
    await runtime.start();
    after(() => runtime.stop({ graceMs: 0 }));
    const file = join(dir, "late.txt");
    const parent = await runtime.run(() => Task.startNew(ParentTask, { file }));
    assert.equal((await runtime.waitForTask(parent.id, { timeoutMs: 20_000 })).state, "succeeded");
    // Task.startNew in the thread found the thread's runtime: the module's import of the API was the build's.
    assert.match(readFileSync(file, "utf8"), /^child:\d+$/m);
  });

  it("boots threads from the sources when its build is gone from under the process", async () => {
    const dir = tempDir();
    const fixtures = new URL("../fixtures/isolation-tasks.ts", import.meta.url);
    // A module of its own makes a build of its own: moving it away touches no other test's threads.
    const own = join(dir, "own-tasks.ts");
    writeFileSync(own, "export class OwnTask { run(): void {} }\n");
    const modules = [fixtures.href, pathToFileURL(own).href];
    const runtime: Runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: modules, worker: { concurrency: 2 }, isolation: { mode: "thread" } });
    await runtime.start();
    after(() => runtime.stop({ graceMs: 0 }));
    // The build the runtime's threads boot from (the same modules give the same build).
    const bundle = await threadBundle(silent, modules);
    assert.ok(bundle);
    const built = fileURLToPath(bundle.built).replace(/\/$/, "");
    after(() => rmSync(join(built, ".."), { recursive: true, force: true }));
    renameSync(built, `${built}-moved`);
    // Another memory limit: a new thread must boot.
    const hog = await runtime.run(() => Task.startNew(HogTask, null, { maxAttempts: 1 }));
    const task = await runtime.waitForTask(hog.id, { timeoutMs: 30_000 }).catch(() => runtime.getTask(hog.id));
    assert.equal(task.state, "dead");
    assert.equal(task.lastError?.name, "TaskMemoryLimitError", `the thread booted (from the sources) and met its limit: ${JSON.stringify(task.lastError)}`);
  });
});
