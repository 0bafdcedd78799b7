/**
 * An application's task modules run in task threads as they run in the application's own process:
 * what the threads' build (thread-bundle.ts) cannot stand for faithfully (CommonJS, a module that
 * resolves at run time) is imported as it is, the build resolves packages as Node does, and a
 * package installed after a build that could not find it is found.
 */
import assert from "node:assert/strict";
import { mkdirSync, renameSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { before, describe, it } from "node:test";
import { createRuntime, Task, type Runtime } from "../../src/index.ts";
import { tempDb, tempDir } from "../helpers.ts";
import { ended } from "./helpers.ts";

const ROOT = dirname(dirname(dirname(fileURLToPath(import.meta.url))));

type TaskClass = new () => { run(parameters: Record<string, never>): Promise<string> };

/** Writes the files (relative to `dir`), folders included. */
function files(dir: string, contents: Record<string, string>): void {
  for (const [path, text] of Object.entries(contents)) {
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    writeFileSync(join(dir, path), text);
  }
}

/** A task module of one class, `name`, whose run returns `body`'s value, after `imports`. */
function taskModule(name: string, imports: string, body: string): string {
  return [
    imports,
    `export class ${name} {`,
    "  static readonly taskModule = import.meta.url;",
    "  static readonly taskOptions = { maxAttempts: 1 };",
    `  async run(): Promise<string> { return ${body}; }`,
    "}",
  ].join("\n");
}

/** An application folder, node_modules/underway linked as `npm install <folder>` links it. */
function application(): string {
  const app = tempDir("underway-app-");
  mkdirSync(join(app, "node_modules"));
  symlinkSync(ROOT, join(app, "node_modules", "underway"), "dir");
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "app", type: "module" }));
  return app;
}

/** Runs a task of each class the modules export in a thread (the classes declare their modules); their results, or "failed: <reason>". */
async function runInThreads(app: string, modules: readonly string[]): Promise<Record<string, string>> {
  const classes: [string, TaskClass][] = [];
  for (const module of modules) {
    const exported = (await import(pathToFileURL(join(app, module)).href)) as Record<string, unknown>;
    for (const [name, value] of Object.entries(exported)) {
      if (typeof value === "function" && typeof (value.prototype as { run?: unknown }).run === "function") classes.push([name, value as TaskClass]);
    }
  }
  const runtime: Runtime = createRuntime({
    db: tempDb(app),
    logger: false,
    tasks: classes.map(([, taskClass]) => taskClass),
    worker: { concurrency: 2 },
    isolation: { mode: "thread" },
  });
  await runtime.start();
  try {
    const results: Record<string, string> = {};
    for (const [name, taskClass] of classes) {
      const handle = await runtime.run(() => Task.startNew(taskClass, {}));
      const task = await ended(runtime, handle.id);
      results[name] = task.state === "succeeded" ? String(await handle.result()) : `failed: ${task.errors.at(-1)?.message}`;
    }
    return results;
  } finally {
    await runtime.stop({ graceMs: 0 });
  }
}

describe("an application's task modules in task threads", () => {
  let results: Record<string, string>;
  let app: string;
  before(async () => {
    app = application();
    files(app, {
      "legacy.cjs": 'const path = require("path");\nexports.legacy = (x) => `${path.basename("/a/" + x)} from ${path.basename(__filename)}`;\n',
      "tasks-cjs.ts": taskModule("UsesCommonJs", 'import { legacy } from "./legacy.cjs";', 'legacy("x")'),
      "tasks-cts.cts": [
        'const { isMainThread } = require("node:worker_threads");',
        "class CommonJsModule {",
        '  static readonly taskModule: string = require("node:url").pathToFileURL(__filename).href;',
        "  static readonly taskOptions = { maxAttempts: 1 };",
        '  async run(): Promise<string> { return `cts in ${isMainThread ? "the main thread" : "a thread"}`; }',
        "}",
        "module.exports = { CommonJsModule };",
      ].join("\n"),
      "template.txt": "beside the module",
      "tasks-meta.ts": taskModule(
        "ReadsBeside",
        'import { readFileSync } from "node:fs";\nimport { join } from "node:path";',
        'readFileSync(join(import.meta.dirname, "template.txt"), "utf8") + " " + import.meta.filename',
      ),
      "plugin.ts": 'export const plugin: string = "plugin";\n',
      "node_modules/by-name/package.json": JSON.stringify({ name: "by-name", type: "module", exports: "./index.js" }),
      "node_modules/by-name/index.js": 'export const found = "by-name";\n',
      "tasks-dynamic.ts": taskModule(
        "ImportsByName",
        'const named = (name: string): Promise<Record<string, string>> => import(name);',
        '(await named("./plugin.ts")).plugin + " " + (await named("by-name")).found',
      ),
      "node_modules/dual/package.json": JSON.stringify({
        name: "dual",
        exports: { ".": { module: "./bundler.mjs", import: "./node.mjs", require: "./node.cjs" } },
      }),
      "node_modules/dual/bundler.mjs": 'export const which = "bundler";\n',
      "node_modules/dual/node.mjs": 'export const which = "node";\n',
      "node_modules/dual/node.cjs": 'exports.which = "node (require)";\n',
      "tasks-dual.ts": taskModule("UsesDual", 'import { which } from "dual";', "which"),
    });
    results = await runInThreads(app, ["tasks-cjs.ts", "tasks-cts.cts", "tasks-meta.ts", "tasks-dynamic.ts", "tasks-dual.ts"]);
  });

  it("runs a module that imports a CommonJS file of the application (require, __filename)", () => {
    assert.equal(results.UsesCommonJs, "x from legacy.cjs");
  });

  it("runs a CommonJS task module (.cts)", () => {
    assert.equal(results.CommonJsModule, "cts in a thread");
  });

  it("gives a module its own import.meta.dirname and import.meta.filename", () => {
    assert.equal(results.ReadsBeside, `beside the module ${join(app, "tasks-meta.ts")}`);
  });

  it("resolves a dynamic import of a specifier that is not a literal from the module's own folder", () => {
    assert.equal(results.ImportsByName, "plugin by-name");
  });

  it("imports the file of a package that Node imports (its \"import\" condition, not a bundler's \"module\")", () => {
    assert.equal(results.UsesDual, "node");
  });
});

it("makes the threads' build again when a package that was missing has been installed", async () => {
  const app = application();
  files(app, {
    "tasks.ts": taskModule("ImportsLater", "", '((await import("later")) as { later: string }).later'),
    "later/package.json": JSON.stringify({ name: "later", type: "module", exports: "./index.js" }),
    "later/index.js": 'export const later = "installed";\n',
  });
  const before = await runInThreads(app, ["tasks.ts"]);
  assert.match(before.ImportsLater!, /^failed: .*Cannot find package 'later'/);
  renameSync(join(app, "later"), join(app, "node_modules", "later"));
  const installed = await runInThreads(app, ["tasks.ts"]);
  assert.equal(installed.ImportsLater, "installed");
});

it("names the application's module, not the threads' build of it, when it cannot be loaded in a thread", async () => {
  const app = application();
  files(app, {
    "tasks.ts": [
      "export class Fails {",
      "  static readonly taskModule = import.meta.url;",
      "  static readonly taskOptions = { maxAttempts: 1 };",
      "  async run(): Promise<void> {}",
      "}",
      'import { isMainThread } from "node:worker_threads";',
      'if (!isMainThread) throw new Error(`refused in ${import.meta.url}`);',
    ].join("\n"),
  });
  const url = pathToFileURL(join(app, "tasks.ts")).href;
  const { Fails: failed } = await runInThreads(app, ["tasks.ts"]);
  assert.equal(failed, `failed: cannot load the task module ${url}: refused in ${url}`);
});
