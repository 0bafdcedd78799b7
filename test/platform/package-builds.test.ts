/**
 * Builds and what they run with: a build runs with the dependency builds it was compiled against,
 * a new description keeps a package's dependencies, code that throws as it loads is refused at
 * Publish, and a stored build that cannot load does not hide the other packages' processes.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { sql } from "../../src/platform/db/kysely-module.ts";
import { Platform } from "../../src/platform/platform.ts";
import type { ProcessLog } from "../../src/platform/processes/engine.ts";
import { tempDb, tempDir, until } from "../helpers.ts";
import { processXml } from "./process-helpers.ts";

async function open(db: string): Promise<Platform> {
  const platform = await Platform.start({ db, logger: false, secret: "package builds test secret", adminPassword: "supervisor-pass", isolation: "none", packageRefreshMs: 0 });
  after(() => platform.stop({ graceMs: 0 }));
  return platform;
}

async function publish(platform: Platform, pkg: string, sources: Record<string, string>, processes: Record<string, string> = {}, dependencies?: string[]): Promise<number> {
  await platform.packages.ensurePackage(pkg, dependencies ? { dependencies } : {});
  for (const [name, body] of Object.entries(sources)) await platform.packages.saveSchema(pkg, { name, kind: "source", body });
  for (const [name, body] of Object.entries(processes)) await platform.packages.saveSchema(pkg, { name, kind: "process", body });
  return (await platform.packages.publish(pkg)).version;
}

async function run(platform: Platform, code: string): Promise<ProcessLog> {
  const admin = platform.appConnection.systemUserConnection;
  const { instanceId } = await admin.processEngine.processExecutor.execute(code, {});
  return until(async () => {
    const log = await platform.processEngine.getLog(instanceId, admin);
    return log && log.status !== "Running" ? log : null;
  }, `process ${code} to end`, 20_000);
}

const lib = (word: string) => ({ UsrLibWords: `export function word(): string { return "${word}"; }` });
const wordProcess = processXml("UsrWordProc", "Word", [
  { kind: "script", id: "Say", body: 'context.set("Word", word()); return true;', usings: ["UsrLibWords"] },
  { kind: "end", id: "End" },
]);

describe("package builds", () => {
  it("runs a build with the dependency builds it was compiled against, after a restart too", async () => {
    const db = tempDb(tempDir());
    let platform = await open(db);
    await publish(platform, "UsrLib", lib("lib1"));
    assert.equal(await publish(platform, "UsrApp", {}, { UsrWordProc: wordProcess }, ["UsrLib"]), 1);
    assert.equal((await run(platform, "UsrWordProc")).parameters.Word, "lib1");
    // A newer library: the app's build 1 keeps the library it was built with, in this process and the next.
    assert.equal(await publish(platform, "UsrLib", lib("lib2")), 2);
    assert.equal((await run(platform, "UsrWordProc")).parameters.Word, "lib1");
    await platform.stop({ graceMs: 0 });
    platform = await open(db);
    assert.equal((await run(platform, "UsrWordProc")).parameters.Word, "lib1");
    // Publishing the app again builds it against the newest library.
    assert.equal(await publish(platform, "UsrApp", {}), 2);
    assert.equal((await run(platform, "UsrWordProc")).parameters.Word, "lib2");
  });

  it("keeps a package's dependencies when only its description changes", async () => {
    const platform = await open(tempDb(tempDir()));
    await publish(platform, "UsrLib", lib("lib1"));
    await platform.packages.ensurePackage("UsrApp", { dependencies: ["UsrLib"] });
    await platform.packages.ensurePackage("UsrApp", { description: "the app" });
    const app = (await platform.packages.listPackages()).find((p) => p.name === "UsrApp");
    assert.deepEqual(app?.dependencies, ["UsrLib"]);
    assert.equal(app?.description, "the app");
  });

  it("refuses to publish code that throws as it loads, and a stored build that cannot load hides no other package's process", async () => {
    const db = tempDb(tempDir());
    let platform = await open(db);
    await assert.rejects(publish(platform, "UsrBroken", { UsrBoom: 'throw new Error("boom at load");\nexport const x = 1;' }), (e: unknown) => e instanceof Error && e.name === "PackageLoadError" && /boom at load/.test(e.message));
    assert.equal((await platform.packages.listPackages()).find((p) => p.name === "UsrBroken")?.version ?? null, null);

    await publish(platform, "UsrAaaBroken", { UsrFine: "export const fine = 1;" });
    await publish(platform, "UsrLib", lib("lib1"));
    await publish(platform, "UsrZed", {}, { UsrWordProc: wordProcess }, ["UsrLib"]);
    // The first package's stored build is damaged (as by a build of an older release).
    await sql`UPDATE ${sql.table("SysPackageBuild")} SET ${sql.ref("Code")} = 'throw new Error("damaged build");' WHERE ${sql.ref("PackageId")} = (SELECT ${sql.ref("Id")} FROM ${sql.table("SysPackage")} WHERE ${sql.ref("Name")} = 'UsrAaaBroken')`.execute(platform.db);
    await platform.stop({ graceMs: 0 });
    platform = await open(db);
    assert.equal((await run(platform, "UsrWordProc")).parameters.Word, "lib1");
    // What is not found anywhere says why a package could not be looked in.
    await assert.rejects(platform.appConnection.systemUserConnection.processEngine.processExecutor.execute("UsrNoSuchProc", {}), /damaged build/);
  });

  it("publishes and runs a package whose dependency has dependencies of its own, with the builds they were compiled against", async () => {
    const db = tempDb(tempDir());
    let platform = await open(db);
    await publish(platform, "UsrBase", { UsrBaseThing: 'export const base = "base1";' });
    await publish(platform, "UsrMiddle", { UsrMiddleThing: 'import { base } from "UsrBaseThing";\nexport function word(): string { return `middle+${base}`; }' }, {}, ["UsrBase"]);
    // The top imports only the middle's schema, which imports the base's; and it may use the base's schemas itself.
    const topProcess = processXml("UsrTopProc", "Top", [
      { kind: "script", id: "Say", body: 'context.set("Word", `${word()}|${base}`); return true;', usings: ["UsrMiddleThing", "UsrBaseThing"] },
      { kind: "end", id: "End" },
    ]);
    assert.equal(await publish(platform, "UsrTop", {}, { UsrTopProc: topProcess }, ["UsrMiddle"]), 1);
    assert.equal((await run(platform, "UsrTopProc")).parameters.Word, "middle+base1|base1");
    // A newer base: the top's build keeps the base its middle was compiled against, after a restart too.
    await publish(platform, "UsrBase", { UsrBaseThing: 'export const base = "base2";' });
    await platform.stop({ graceMs: 0 });
    platform = await open(db);
    assert.equal((await run(platform, "UsrTopProc")).parameters.Word, "middle+base1|base1");
  });

  it("refuses dependencies that lead back to the package, and reserved names", async () => {
    const platform = await open(tempDb(tempDir()));
    await assert.rejects(platform.packages.ensurePackage("UsrSelf", { dependencies: ["UsrSelf"] }), /package UsrSelf cannot depend on UsrSelf: UsrSelf -> UsrSelf is a cycle/);
    await publish(platform, "UsrA", { UsrAThing: "export const a = 1;" });
    await publish(platform, "UsrB", {}, {}, ["UsrA"]);
    await assert.rejects(platform.packages.ensurePackage("UsrA", { dependencies: ["UsrB"] }), /package UsrA cannot depend on UsrB: UsrA -> UsrB -> UsrA is a cycle/);
    assert.deepEqual((await platform.packages.listPackages()).find((p) => p.name === "UsrA")?.dependencies, [], "the refused dependencies were stored");
    for (const name of ["constructor", "prototype", "underway"]) {
      await assert.rejects(platform.packages.ensurePackage(name), new RegExp(`package name "${name}" is reserved: choose another`));
      await assert.rejects(platform.packages.saveSchema("UsrA", { name, kind: "source", body: "export {};" }), new RegExp(`schema name "${name}" is reserved`));
    }
  });
});
