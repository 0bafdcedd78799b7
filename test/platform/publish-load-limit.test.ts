/**
 * Publish loads a new build once to refuse code that fails as it loads: in a thread of its own,
 * with a time limit. Top-level code that loops forever is refused (PackageLoadError) while the
 * server's event loop goes on answering; code that throws as it loads is refused as before; a
 * package that loads (with "underway" and its dependencies) publishes.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { checkLoadInThread, LOAD_LIMIT_MS, PackageLoadError, type CompiledPackage } from "../../src/platform/packages/compiler/index.ts";
import type { Platform } from "../../src/platform/platform.ts";
import { endIfBlocked, startPlatform } from "./helpers.ts";

endIfBlocked("publish-load-limit");

async function publish(platform: Platform, pkg: string, sources: Record<string, string>, dependencies?: string[]): Promise<number> {
  await platform.packages.ensurePackage(pkg, dependencies ? { dependencies } : {});
  for (const [name, body] of Object.entries(sources)) await platform.packages.saveSchema(pkg, { name, kind: "source", body });
  return (await platform.packages.publish(pkg)).version;
}

/** A hand-made bundle (CommonJS, as the compiler makes them): only its code matters to the check. */
const bundle = (packageName: string, code: string): CompiledPackage => ({ packageName, code, exports: {}, schemas: [] });
const EMPTY = "module.exports = { modules: [], scripts: [], conditions: [] };";
const noBuilds = { build: async () => null, latestVersions: async () => new Map<string, number>(), listPackages: async () => [] };

describe("publish load limit", () => {
  it("refuses a package whose top-level code loops forever, in bounded time, while the server goes on answering", { timeout: 120_000 }, async () => {
    const platform = await startPlatform("sqlite", { isolation: "none", packageRefreshMs: 0 });
    await publish(platform, "UsrFirst", { UsrFine: "export const fine = 1;" }); // the compiler warmed up
    const ticks: number[] = [];
    const ticker = setInterval(() => ticks.push(Date.now()), 50);
    const answered: number[] = [];
    let querying = true;
    const queries = (async () => {
      while (querying) {
        await platform.packages.listPackages();
        answered.push(Date.now());
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
    })();
    const started = Date.now();
    let refusedAt = 0;
    try {
      await assert.rejects(
        publish(platform, "UsrLoop", { UsrSpin: "let n = 0;\nwhile (n >= 0) { n = (n + 1) % 10; }\nexport const never = n;\n" }),
        (error: unknown) => {
          refusedAt = Date.now();
          assert.ok(error instanceof PackageLoadError, String(error));
          assert.equal(
            error.message,
            `package UsrLoop: its code did not finish loading within ${LOAD_LIMIT_MS / 1000} s and was stopped: a schema's top-level code must not loop or block (do long work in a function or a task)`,
          );
          return true;
        },
      );
    } finally {
      clearInterval(ticker);
      querying = false;
      await queries;
    }
    // Compile (warm) and the thread's start take a second or two; then the limit.
    assert.ok(refusedAt - started >= LOAD_LIMIT_MS, `refused after ${refusedAt - started} ms`);
    assert.ok(refusedAt - started < LOAD_LIMIT_MS + 20_000, `refused after ${refusedAt - started} ms`);
    // The limit's last seconds: the looping code ran all along, and this thread went on ticking and querying.
    const window = (times: number[]) => times.filter((t) => t > refusedAt - LOAD_LIMIT_MS + 1_000 && t <= refusedAt);
    assert.ok(window(ticks).length >= 20, `${window(ticks).length} ticks in the limit's last ${LOAD_LIMIT_MS / 1000 - 1} s`);
    assert.ok(window(answered).length >= 5, `${window(answered).length} queries answered in the limit's last ${LOAD_LIMIT_MS / 1000 - 1} s`);
    assert.equal((await platform.packages.listPackages()).find((p) => p.name === "UsrLoop")?.version, null);
    // The server goes on publishing.
    assert.equal(await publish(platform, "UsrFirst", { UsrFine: "export const fine = 2;" }), 2);
  });

  it("refuses code that throws as it loads with the same message as before", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none", packageRefreshMs: 0 });
    await assert.rejects(publish(platform, "UsrBroken", { UsrBoom: 'throw new Error("boom at load");\nexport const x = 1;' }), (error: unknown) => {
      assert.ok(error instanceof PackageLoadError, String(error));
      assert.equal(error.message, "package UsrBroken: its code threw while loading: boom at load");
      return true;
    });
  });

  it("publishes a package whose top-level code uses underway and its dependencies, and loads with them", async () => {
    const platform = await startPlatform("sqlite", { isolation: "none", packageRefreshMs: 0 });
    const lib = `import { ActivityConsts } from "underway";
if (typeof ActivityConsts.TaskTypeUId !== "string") throw new Error("no underway");
export const typeId: string = ActivityConsts.TaskTypeUId;
export function word(): string { return "lib:" + typeId.slice(0, 8); }
`;
    assert.equal(await publish(platform, "UsrLib", { UsrLibWords: lib }), 1);
    const app = `import type { IBackgroundTask } from "underway";
import { word } from "UsrLibWords";
export const loadedWord = word();
if (loadedWord !== "lib:fbe0acdc") throw new Error("the dependency did not load: " + loadedWord);
export class UsrAppTask implements IBackgroundTask<null> {
  run(): void {}
}
`;
    assert.equal(await publish(platform, "UsrApp", { UsrAppThings: app }, ["UsrLib"]), 1);
    const build = await platform.packageLoader.load("UsrApp", 1);
    assert.equal(build.loaded.modules.UsrAppThings?.loadedWord, "lib:fbe0acdc");
  });

  it("names the dependency whose code does not finish, and refuses code that ends its thread", async () => {
    const stored = {
      ...noBuilds,
      build: async (name: string, version: number) => (name === "UsrSpinLib" && version === 3 ? { code: "for (;;) {}", manifest: { dependencies: {} } } : null),
    };
    const started = Date.now();
    await assert.rejects(
      checkLoadInThread(bundle("UsrUser", EMPTY), { UsrSpinLib: 3 }, stored, { limitMs: 300 }),
      (error: unknown) =>
        error instanceof PackageLoadError &&
        error.message.startsWith("package UsrUser: the code of its dependency UsrSpinLib did not finish loading within 0.3 s and was stopped"),
    );
    assert.ok(Date.now() - started < 15_000);
    await assert.rejects(
      checkLoadInThread(bundle("UsrExit", "process.exit(3);"), {}, noBuilds),
      (error: unknown) => error instanceof PackageLoadError && /^package UsrExit: its code ended its thread \(exit code 3\) while loading/.test(error.message),
    );
    await checkLoadInThread(bundle("UsrEmpty", EMPTY), {}, noBuilds);
  });

  it("refuses top-level code that starts an async loop that never lets the event loop turn", async () => {
    // Its synchronous part returns at once; the loop it leaves behind would hold the platform's
    // thread for good, once the platform loaded the build after the check.
    await assert.rejects(
      checkLoadInThread(bundle("UsrAsyncSpin", `(async () => { for (;;) await 0; })();\n${EMPTY}`), {}, noBuilds, { limitMs: 300 }),
      (error: unknown) =>
        error instanceof PackageLoadError &&
        error.message === "package UsrAsyncSpin: its code did not finish loading within 0.3 s and was stopped: a schema's top-level code must not loop or block (do long work in a function or a task)",
    );
    // An async function that settles, or a promise that never settles, lets it turn: loaded.
    await checkLoadInThread(bundle("UsrAsyncDone", `(async () => { for (let i = 0; i < 1000; i++) await 0; })();\nnew Promise(() => {});\n${EMPTY}`), {}, noBuilds, { limitMs: 300 });
  });
});
