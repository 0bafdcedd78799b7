/**
 * An application's task module lives outside underway's own folder and imports it by its package
 * name, as it imports its other dependencies: the task threads load it as the application does,
 * with underway resolving to the threads' own copy and every other package to the application's.
 */
import assert from "node:assert/strict";
import { mkdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { after, it } from "node:test";
import { createRuntime, Task, type IBackgroundTask } from "../../src/index.ts";
import { tempDb, tempDir } from "../helpers.ts";
import { ended } from "./helpers.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

/** An application folder: node_modules/underway (linked, as `npm install <folder>` links it), a dependency of its own, and a TypeScript task module. */
function application(): string {
  const app = tempDir("underway-app-");
  mkdirSync(join(app, "node_modules", "greeting"), { recursive: true });
  symlinkSync(ROOT, join(app, "node_modules", "underway"), "dir");
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", type: "module" }));
  writeFileSync(join(app, "node_modules", "greeting", "package.json"), JSON.stringify({ name: "greeting", type: "module", exports: "./index.js" }));
  writeFileSync(join(app, "node_modules", "greeting", "index.js"), 'export const greet = (who) => `hello, ${who}`;\n');
  mkdirSync(join(app, "src"));
  writeFileSync(
    join(app, "src", "tasks.ts"),
    [
      'import { isMainThread } from "node:worker_threads";',
      'import { Task, type IBackgroundTask, type TaskContext } from "underway";',
      'import { greet } from "greeting";',
      "export class Greet implements IBackgroundTask<{ who: string }, string> {",
      "  static readonly taskModule = import.meta.url;",
      "  static readonly taskOptions = { maxAttempts: 1 };",
      "  async run({ who }: { who: string }, context: TaskContext): Promise<string> {",
      "    // underway's own Task, the thread's copy: a start from here reaches the worker's store.",
      "    if (who === \"twice\") await Task.startNew(Greet, { who: \"again\" });",
      "    return `${greet(who)} (${isMainThread ? \"main thread\" : \"thread\"}, attempt ${context.attempt})`;",
      "  }",
      "}",
    ].join("\n"),
  );
  return app;
}

it("runs an application's TypeScript task module that imports underway and its own dependencies by package name", async () => {
  const app = application();
  const { Greet } = (await import(pathToFileURL(join(app, "src", "tasks.ts")).href)) as { Greet: new () => IBackgroundTask<{ who: string }, string> };
  const runtime = createRuntime({ db: tempDb(app), logger: false, tasks: [Greet], worker: { concurrency: 2 }, isolation: { mode: "thread" } });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  const handle = await runtime.run(() => Task.startNew(Greet, { who: "twice" }));
  const task = await ended(runtime, handle.id);
  assert.equal(task.state, "succeeded", task.errors.at(-1)?.message);
  assert.equal(await handle.result(), "hello, twice (thread, attempt 1)");
  const counts = await runtime.countTasks();
  assert.equal(counts.succeeded + counts.running + counts.queued, 2, "the task's own start reached the store");
});

it("makes the threads' build again when a package the application module imports moved (an upgrade)", async () => {
  const app = application();
  const url = pathToFileURL(join(app, "src", "tasks.ts")).href;
  const { Greet } = (await import(url)) as { Greet: new () => IBackgroundTask<{ who: string }, string> };
  const greetOnce = async (): Promise<string | undefined> => {
    const runtime = createRuntime({ db: tempDb(app), logger: false, tasks: [Greet], worker: { concurrency: 1 }, isolation: { mode: "thread" } });
    await runtime.start();
    try {
      const handle = await runtime.run(() => Task.startNew(Greet, { who: "you" }));
      const task = await ended(runtime, handle.id);
      assert.equal(task.state, "succeeded", task.errors.at(-1)?.message);
      return (await handle.result()) as string;
    } finally {
      await runtime.stop({ graceMs: 0 });
    }
  };
  assert.equal(await greetOnce(), "hello, you (thread, attempt 1)");
  // Version 2 of the dependency: its entry is another file, the first one gone.
  const dependency = join(app, "node_modules", "greeting");
  writeFileSync(join(dependency, "package.json"), JSON.stringify({ name: "greeting", type: "module", exports: "./v2.js" }));
  writeFileSync(join(dependency, "v2.js"), 'export const greet = (who) => `hi, ${who}`;\n');
  rmSync(join(dependency, "index.js"));
  assert.equal(await greetOnce(), "hi, you (thread, attempt 1)");
});
