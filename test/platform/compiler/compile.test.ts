import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { compilePackage, loadPackage, PackageLoadError, type CompiledPackage } from "../../../src/platform/packages/compiler/index.ts";
import { condition, contextOf, input, platformApi, script, workedExample } from "./helpers.ts";

describe("the worked example", () => {
  let compiled: CompiledPackage;

  it("compiles without problems", async () => {
    compiled = await compilePackage(await workedExample());
    assert.equal(compiled.packageName, "BackgroundActivity");
    assert.deepEqual(compiled.exports, { UsrActivityData: ["UsrActivityData"], UsrBackgroundActivityCreator: ["UsrBackgroundActivityCreator"] });
    assert.deepEqual(
      compiled.schemas.map((s) => s.name),
      ["UsrActivityData", "UsrBackgroundActivityCreator"],
    );
    // "underway" stays a require; nothing of node's is bundled in.
    assert.match(compiled.code, /require\("underway"\)/);
    assert.doesNotMatch(compiled.code, /require\("(?!underway")/);
  });

  it("loads: its modules export the task class under its own name, and the script is a function", () => {
    const loaded = loadPackage(compiled, platformApi);
    assert.deepEqual(Object.keys(loaded.modules), ["UsrActivityData", "UsrBackgroundActivityCreator"]);
    assert.deepEqual(Object.keys(loaded.modules.UsrActivityData ?? {}), []); // an interface only
    const Creator = loaded.modules.UsrBackgroundActivityCreator?.UsrBackgroundActivityCreator;
    assert.equal(typeof Creator, "function");
    const TaskClass = Creator as new () => { run: unknown; setUserConnection: unknown };
    // Workers find task classes by name: bundling keeps it.
    assert.equal(TaskClass.name, "UsrBackgroundActivityCreator");
    const instance = new TaskClass();
    assert.equal(typeof instance.run, "function");
    assert.equal(typeof instance.setUserConnection, "function");
    assert.equal(typeof loaded.script("UsrBackgroundTaskExampleProcess", "ScriptTask_CreateBackgroundTask"), "function");
    assert.throws(() => loaded.script("UsrBackgroundTaskExampleProcess", "NoSuchTask"), /has no script UsrBackgroundTaskExampleProcess\/NoSuchTask/);
  });

  it("its run gives up waiting as soon as the task's signal aborts", async () => {
    const loaded = loadPackage(compiled, platformApi);
    const TaskClass = loaded.modules.UsrBackgroundActivityCreator?.UsrBackgroundActivityCreator as new () => {
      run(data: unknown, context: { signal: AbortSignal }): Promise<void>;
    };
    const controller = new AbortController();
    const started = Date.now();
    const running = new TaskClass().run({ title: "t", typeId: "x" }, { signal: controller.signal });
    setTimeout(() => controller.abort(new Error("stop")), 20);
    await assert.rejects(running, /stop/);
    assert.ok(Date.now() - started < 5_000, "did not wait the full delay");
  });
});

describe("scripts and conditions", () => {
  it("a trivial script and a condition run with their context", async () => {
    const compiled = await compilePackage(
      input({
        scripts: [script("ScriptTask1", 'return context.get("x") === 1;'), script("ScriptTask2", 'context.set("y", 2);\nawait Promise.resolve();\nreturn false;')],
        conditions: [{ processCode: "UsrProcess", flowId: "Flow1", usings: [], expression: 'context.get("x") === 1' }],
      }),
    );
    const loaded = loadPackage(compiled, platformApi);
    assert.equal(await loaded.script("UsrProcess", "ScriptTask1")(contextOf({ x: 1 })), true);
    assert.equal(await loaded.script("UsrProcess", "ScriptTask1")(contextOf({ x: 2 })), false);
    const parameters: Record<string, unknown> = {};
    assert.equal(await loaded.script("UsrProcess", "ScriptTask2")(contextOf(parameters)), false);
    assert.deepEqual(parameters, { y: 2 });
    assert.equal(loaded.condition("UsrProcess", "Flow1")(contextOf({ x: 1 })), true);
    assert.equal(loaded.condition("UsrProcess", "Flow1")(contextOf({ x: 0 })), false);
    assert.throws(() => loaded.condition("UsrProcess", "Flow2"), /has no condition UsrProcess\/Flow2/);
  });

  it("a condition may begin or end with a comment, or begin on a later line", async () => {
    const compiled = await compilePackage(
      input({
        conditions: [
          condition("Flow1", '// the customer said yes\ncontext.get("answer") === "yes"'),
          condition("Flow2", 'context.get("answer") === "no" // the customer said no'),
          condition("Flow3", '\n\n  /* on its own line */\n  context.get("answer") ===\n    "maybe"'),
        ],
      }),
    );
    const loaded = loadPackage(compiled, platformApi);
    for (const [flow, answer] of [["Flow1", "yes"], ["Flow2", "no"], ["Flow3", "maybe"]] as const) {
      assert.equal(loaded.condition("UsrProcess", flow)(contextOf({ answer })), true, flow);
      assert.equal(loaded.condition("UsrProcess", flow)(contextOf({ answer: "other" })), false, flow);
    }
  });

  it("scripts see their usings' exports and the platform API; schemas import each other as ./X or X", async () => {
    const compiled = await compilePackage(
      input({
        schemas: [
          { name: "UsrWords", source: 'export const greeting = "hello";\nexport function shout(text: string): string {\n  return text.toUpperCase();\n}\n' },
          { name: "UsrLoud", source: 'import { greeting } from "./UsrWords";\nimport { shout } from "UsrWords";\nexport const loud = shout(greeting);\nexport type Loudness = "loud" | "quiet";\n' },
        ],
        scripts: [
          script(
            "ScriptTask1",
            'const level: Loudness = "loud";\ncontext.set("said", `${loud} ${level}`);\nreturn typeof Task.startNew === "function" && ActivityConsts.TaskCategoryId === "f51c4643-58e6-df11-971b-001d60e938c6";',
            ["UsrLoud"],
          ),
        ],
        conditions: [{ processCode: "UsrProcess", flowId: "Flow1", usings: ["UsrLoud"], expression: '\n  loud === "HELLO"' }],
      }),
    );
    assert.deepEqual(compiled.exports, { UsrWords: ["greeting", "shout"], UsrLoud: ["loud", "Loudness"] });
    const loaded = loadPackage(compiled, platformApi);
    const parameters: Record<string, unknown> = {};
    assert.equal(await loaded.script("UsrProcess", "ScriptTask1")(contextOf(parameters)), true);
    assert.deepEqual(parameters, { said: "HELLO loud" });
    assert.equal(loaded.condition("UsrProcess", "Flow1")(contextOf()), true);
    assert.equal(loaded.modules.UsrLoud?.loud, "HELLO");
  });

  it("a script that returns no boolean at run time (a cast past the type-check) fails", async () => {
    const compiled = await compilePackage(input({ scripts: [script("ScriptTask1", 'return "yes" as unknown as boolean;')] }));
    const loaded = loadPackage(compiled, platformApi);
    await assert.rejects(loaded.script("UsrProcess", "ScriptTask1")(contextOf()), /returned string, not a boolean/);
  });

  it("an exception in a script rejects its promise", async () => {
    const compiled = await compilePackage(input({ scripts: [script("ScriptTask1", 'throw new Error("broken");')] }));
    await assert.rejects(loadPackage(compiled, platformApi).script("UsrProcess", "ScriptTask1")(contextOf()), /broken/);
  });
});

describe("loading", () => {
  it("package code may require only underway and its dependencies: node:fs is refused at load", () => {
    // The compiler refuses such an import (see problems.test.ts); this bundle was made by hand.
    const forged: CompiledPackage = { packageName: "UsrForged", code: 'require("node:fs");', exports: {}, schemas: [] };
    assert.throws(
      () => loadPackage(forged, platformApi),
      (e: unknown) => e instanceof PackageLoadError && /package code cannot import "node:fs"/.test(e.message),
    );
  });

  it("code that throws as its module runs is refused at load, naming the package and what it threw", async () => {
    const compiled = await compilePackage(
      input({ schemas: [{ name: "UsrConfig", source: 'const ready: boolean = false;\nif (!ready) throw new Error("not configured");\nexport const x = 1;' }] }),
    );
    assert.throws(
      () => loadPackage(compiled, platformApi),
      (e: unknown) => e instanceof PackageLoadError && e.message === "package UsrTest: its code threw while loading: not configured" && e.cause instanceof Error,
    );
  });

  it("an import() of the platform API in package code is served by the loader, not by Node's", async () => {
    const compiled = await compilePackage(
      input({ schemas: [{ name: "UsrLazy", source: 'import { Task } from "underway";\nexport const same = async (): Promise<boolean> => (await import("underway")).Task === Task;\n' }] }),
    );
    assert.doesNotMatch(compiled.code, /\bimport\(/);
    const loaded = loadPackage(compiled, platformApi);
    const same = (loaded.modules.UsrLazy as { same: () => Promise<boolean> }).same;
    assert.equal(await same(), true);
  });

  it("a require hidden from the compiler (computed name) is refused when it runs", async () => {
    const compiled = await compilePackage(
      input({ scripts: [script("ScriptTask1", 'const name = ["node", "fs"].join(":");\nrequire(name);\nreturn true;')] }),
    );
    const loaded = loadPackage(compiled, platformApi);
    await assert.rejects(loaded.script("UsrProcess", "ScriptTask1")(contextOf()), /package code cannot import "node:fs"/);
  });
});
