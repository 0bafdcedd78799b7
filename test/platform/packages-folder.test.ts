/**
 * Installing a package folder: checked whole before anything is saved and saved in one
 * transaction (a failure leaves the package as it was), the package's schemas made exactly the
 * folder's, schema names that differ only in case refused, descriptor fields type-checked naming
 * the file, links out of the folder refused, and a folder that changed since it was installed
 * installed again at start with its schedules.
 */
import assert from "node:assert/strict";
import { mkdirSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createHttpServer } from "../../src/http/server.ts";
import { PackageInputError } from "../../src/platform/packages/errors.ts";
import { Platform } from "../../src/platform/platform.ts";
import { TEST_POSTGRES_URL, tempDb, tempDir, tempSchema } from "../helpers.ts";
import { STORES, startPlatform } from "./helpers.ts";

type Schema = { name: string; kind?: string; file?: string; caption?: unknown };

/** Writes a package folder: these files and underway-package.json. */
function writeFolder(folder: string, descriptor: Record<string, unknown>, files: Record<string, string> = {}): string {
  mkdirSync(folder, { recursive: true });
  for (const [file, text] of Object.entries(files)) writeFileSync(join(folder, file), text);
  writeFileSync(join(folder, "underway-package.json"), JSON.stringify(descriptor));
  return folder;
}

const source = (schemas: Schema[]) => schemas.map((s) => ({ kind: "source", file: `${s.name}.ts`, ...s }));

const refusedWith = (pattern: RegExp) => (error: unknown) => {
  assert.ok(error instanceof PackageInputError, `expected PackageInputError, got ${String(error)}`);
  assert.match(error.message, pattern);
  return true;
};

async function state(platform: Platform, name: string) {
  const item = (await platform.packages.listPackages()).find((p) => p.name === name);
  if (!item) return null;
  const schemas = (await platform.packages.getSchemas(name)).map((s) => [s.name, s.kind, s.body]);
  return { description: item.description, dependencies: item.dependencies, schemas };
}

for (const store of STORES) {
  describe(`a package folder import on ${store}`, () => {
    it("saves nothing when any schema is refused, and leaves an installed package exactly as it was", async () => {
      const platform = await startPlatform(store, { worker: false });
      const root = tempDir();
      // Another package holds UsrTaken: only the write itself finds that, inside the transaction.
      await platform.packages.ensurePackage("UsrOther");
      await platform.packages.saveSchema("UsrOther", { name: "UsrTaken", kind: "source", body: "export const taken = 1;\n" });
      await platform.packages.ensurePackage("UsrBase");

      const seconds: [string, Schema, Record<string, string>][] = [
        ["a bad schema name", { name: "Bad-Name", kind: "source", file: "B.ts" }, { "B.ts": "export const b = 1;\n" }],
        ["a bad kind", { name: "UsrB", kind: "sourcecode", file: "B.ts" }, { "B.ts": "export const b = 1;\n" }],
        ["a broken diagram", { name: "UsrB", kind: "process", file: "B.bpmn" }, { "B.bpmn": "<not bpmn" }],
        ["a file over 1 MiB", { name: "UsrB", kind: "source", file: "Big.ts" }, { "Big.ts": "//" + "x".repeat(1024 * 1024 + 10) }],
        ["a name another package holds", { name: "UsrTaken", kind: "source", file: "B.ts" }, { "B.ts": "export const b = 1;\n" }],
      ];
      for (const [i, [label, second, files]] of seconds.entries()) {
        const folder = writeFolder(join(root, `new-${i}`), { name: "UsrNew", schemas: [{ name: "UsrNewA", kind: "source", file: "A.ts" }, second] }, {
          "A.ts": "export const a = 1;\n",
          ...files,
        });
        await assert.rejects(platform.packages.importFolder(folder), (e: unknown) => e instanceof PackageInputError, label);
        assert.equal(await state(platform, "UsrNew"), null, `${label}: the package is not created`);
      }

      // Installed once; a re-import that fails keeps its texts, description and dependencies.
      const installed = join(root, "installed");
      writeFolder(installed, { name: "UsrInst", description: "v1", schemas: source([{ name: "UsrInstA" }, { name: "UsrInstB" }]) }, {
        "UsrInstA.ts": "export const a = 'v1';\n",
        "UsrInstB.ts": "export const b = 'v1';\n",
      });
      await platform.packages.importFolder(installed);
      const before = await state(platform, "UsrInst");
      assert.deepEqual(before, {
        description: "v1",
        dependencies: [],
        schemas: [
          ["UsrInstA", "source", "export const a = 'v1';\n"],
          ["UsrInstB", "source", "export const b = 'v1';\n"],
        ],
      });
      for (const [label, third, files] of seconds) {
        writeFolder(installed, { name: "UsrInst", description: "v2", dependencies: ["UsrBase"], schemas: [...source([{ name: "UsrInstA" }, { name: "UsrInstB" }]), third] }, {
          "UsrInstA.ts": "export const a = 'v2';\n",
          "UsrInstB.ts": "export const b = 'v2';\n",
          ...files,
        });
        await assert.rejects(platform.packages.importFolder(installed), (e: unknown) => e instanceof PackageInputError, label);
        assert.deepEqual(await state(platform, "UsrInst"), before, `${label}: the package is as it was`);
      }
    });

    it("makes the package's schemas exactly the folder's: one the descriptor no longer lists is deleted", async () => {
      const platform = await startPlatform(store, { worker: false });
      const folder = join(tempDir(), "UsrStale");
      const files = { "UsrGood.ts": "export const good = 1;\n", "UsrBroken.ts": "export const broken: number = 'not a number';\n" };
      writeFolder(folder, { name: "UsrStale", schemas: source([{ name: "UsrGood" }, { name: "UsrBroken" }]) }, files);
      await platform.packages.importFolder(folder);
      await assert.rejects(platform.packages.publish("UsrStale"), /does not compile/);
      writeFolder(folder, { name: "UsrStale", schemas: source([{ name: "UsrGood" }]) }, files);
      await platform.packages.importFolder(folder);
      assert.deepEqual((await platform.packages.getSchemas("UsrStale")).map((s) => s.name), ["UsrGood"]);
      assert.deepEqual(await platform.packages.publish("UsrStale"), { version: 1 });
      // A folder that lists no schemas leaves none.
      writeFolder(folder, { name: "UsrStale", schemas: [] });
      await platform.packages.importFolder(folder);
      assert.deepEqual(await platform.packages.getSchemas("UsrStale"), []);
    });

    it("refuses schema names of one package that differ only in case, on Save and in a folder", async () => {
      const platform = await startPlatform(store, { worker: false });
      await platform.packages.ensurePackage("UsrCase");
      await platform.packages.saveSchema("UsrCase", { name: "UsrData", kind: "source", body: "export const upper = 1;\n" });
      await assert.rejects(
        platform.packages.saveSchema("UsrCase", { name: "usrdata", kind: "source", body: "export const lower = 1;\n" }),
        refusedWith(/^package UsrCase has a schema named UsrData, which differs from usrdata only in case/),
      );
      // The same name saves again; another package may have its own.
      await platform.packages.saveSchema("UsrCase", { name: "UsrData", kind: "source", body: "export const upper = 2;\n" });
      assert.deepEqual((await platform.packages.getSchemas("UsrCase")).map((s) => [s.name, s.body]), [["UsrData", "export const upper = 2;\n"]]);
      assert.deepEqual(await platform.packages.publish("UsrCase"), { version: 1 });

      const folder = writeFolder(join(tempDir(), "UsrCaseDir"), { name: "UsrCaseDir", schemas: [...source([{ name: "UsrItem" }]), { name: "usritem", kind: "source", file: "UsrItem.ts" }] }, {
        "UsrItem.ts": "export const item = 1;\n",
      });
      await assert.rejects(platform.packages.importFolder(folder), refusedWith(/underway-package\.json: lists the schemas UsrItem and usritem, whose names differ only in case/));
      assert.equal(await state(platform, "UsrCaseDir"), null);
    });
  });
}

describe("a package folder's descriptor and files", () => {
  it("has its fields type-checked, each message naming the file and the field; nothing is saved", async () => {
    const platform = await startPlatform("sqlite", { worker: false });
    const folder = join(tempDir(), "UsrTyped");
    const file = join(folder, "underway-package.json").replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
    const files = { "UsrTyped.ts": "export const t = 1;\n" };
    const schemas = source([{ name: "UsrTyped" }]);
    const cases: [Record<string, unknown>, string][] = [
      [{ name: "UsrTyped", dependencies: "UsrBase", schemas }, `"dependencies" must be a list of package names, got "UsrBase"`],
      [{ name: "UsrTyped", dependencies: ["UsrBase", 7], schemas }, `"dependencies"\\[1\\] must be a package name, got 7`],
      [{ name: "UsrTyped", description: { evil: true }, schemas }, `"description" must be text, got \\{"evil":true\\}`],
      [{ name: 12, schemas }, `"name" must be the package name, got 12`],
      [{ name: "UsrTyped", schemas: "UsrTyped.ts" }, `"schemas" must be a list`],
      [{ name: "UsrTyped", schemas: [null] }, `"schemas"\\[0\\] must be an object`],
      [{ name: "UsrTyped", schemas: [{ name: "UsrTyped", kind: "source", file: 3 }] }, `"schemas"\\[0\\] \\(UsrTyped\\): file must be a path`],
      [{ name: "UsrTyped", schemas: source([{ name: "UsrTyped", caption: ["x"] }]) }, `"schemas"\\[0\\] \\(UsrTyped\\): caption must be text`],
    ];
    for (const [descriptor, message] of cases) {
      writeFolder(folder, descriptor, files);
      await assert.rejects(platform.packages.importFolder(folder), refusedWith(new RegExp(`^${file}: ${message}`)), message);
    }
    // A misspelled field is refused, naming the nearest one, rather than ignored.
    const misspelt: [Record<string, unknown>, string][] = [
      [{ name: "UsrTyped", dependecies: ["UsrBase"], schemas }, `${file} has no field "dependecies" \\(did you mean "dependencies"\\?\\)`],
      [{ name: "UsrTyped", schemas: [{ name: "UsrTyped", kind: "source", file: "UsrTyped.ts", captoin: "x" }] }, `${file}: "schemas"\\[0\\] has no field "captoin" \\(did you mean "caption"\\?\\)`],
    ];
    for (const [descriptor, message] of misspelt) {
      writeFolder(folder, descriptor, files);
      await assert.rejects(platform.packages.importFolder(folder), refusedWith(new RegExp(`^${message}`)), message);
    }
    assert.deepEqual(await platform.packages.listPackages(), []);
  });

  it("refuses a schema listed twice and a link that leads out of the folder; a link inside it is read", async () => {
    const platform = await startPlatform("sqlite", { worker: false });
    const root = tempDir();
    const dup = writeFolder(join(root, "UsrDup"), { name: "UsrDup", schemas: [{ name: "UsrX", kind: "source", file: "one.ts" }, { name: "UsrX", kind: "source", file: "two.ts" }] }, {
      "one.ts": "export const one = 1;\n",
      "two.ts": "export const two = 2;\n",
    });
    await assert.rejects(platform.packages.importFolder(dup), refusedWith(/underway-package\.json: lists the schema UsrX twice$/));

    writeFileSync(join(root, "secret.txt"), "SECRET OUTSIDE THE FOLDER\n");
    const linked = writeFolder(join(root, "UsrLink"), { name: "UsrLink", schemas: source([{ name: "UsrLink" }]) }, { "real.ts": "export const real = 1;\n" });
    symlinkSync(join(root, "secret.txt"), join(linked, "UsrLink.ts"));
    await assert.rejects(platform.packages.importFolder(linked), refusedWith(/^schema file UsrLink\.ts lies outside the package folder \(it leads to .*secret\.txt\)$/));
    assert.deepEqual(await platform.packages.listPackages(), []);

    writeFolder(linked, { name: "UsrLink", schemas: source([{ name: "UsrLink", file: "inside.ts" }]) });
    symlinkSync(join(linked, "real.ts"), join(linked, "inside.ts"));
    await platform.packages.importFolder(linked);
    assert.deepEqual((await platform.packages.getSchemas("UsrLink")).map((s) => s.body), ["export const real = 1;\n"]);
  });

  it("names the file when a folder given at start has a descriptor that is cut short or null", async () => {
    const platform = await startPlatform("sqlite", { worker: false });
    const folder = join(tempDir(), "UsrTrunc");
    mkdirSync(folder);
    const file = join(folder, "underway-package.json");
    writeFileSync(file, '{ "name": "UsrTrunc", "schemas": [ { "name": "UsrA", "ki');
    await assert.rejects(platform.installPackage(folder), (e: unknown) => e instanceof PackageInputError && e.message.startsWith(`cannot read the package descriptor ${file}: `));
    writeFileSync(file, "null");
    await assert.rejects(platform.installPackage(folder), (e: unknown) => e instanceof PackageInputError && e.message === `${file}: must be an object with a name and a list of schemas, got null`);
  });

  it("has its schemas deleted one by one through the API, by administrators", async () => {
    const platform = await startPlatform("sqlite", { worker: false });
    const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
    after(() => app.close());
    await platform.users.create({ login: "alice", password: "alice-pass" });
    const token = async (login: string, password: string) =>
      ((await app.inject({ method: "POST", url: "/api/auth/login", payload: { login, password } })).json() as { token: string }).token;
    const admin = { authorization: `Bearer ${await token("Supervisor", "supervisor-pass")}` };
    const alice = { authorization: `Bearer ${await token("alice", "alice-pass")}` };
    await platform.packages.ensurePackage("UsrDel");
    await platform.packages.saveSchema("UsrDel", { name: "UsrKeep", kind: "source", body: "export const keep = 1;\n" });
    await platform.packages.saveSchema("UsrDel", { name: "UsrDrop", kind: "source", body: "export const drop = 1;\n" });
    const del = (headers: Record<string, string>, url: string) => app.inject({ method: "DELETE", url, headers });
    assert.equal((await del(alice, "/api/packages/UsrDel/schemas/UsrDrop")).statusCode, 403);
    const deleted = await del(admin, "/api/packages/UsrDel/schemas/UsrDrop");
    assert.equal(deleted.statusCode, 200, deleted.body);
    assert.deepEqual(deleted.json(), { deleted: true });
    assert.deepEqual((await platform.packages.getSchemas("UsrDel")).map((s) => s.name), ["UsrKeep"]);
    const again = await del(admin, "/api/packages/UsrDel/schemas/UsrDrop");
    assert.equal(again.statusCode, 404);
    assert.deepEqual(again.json(), { error: 'package UsrDel has no schema named "UsrDrop"' });
    assert.equal((await del(admin, "/api/packages/UsrNone/schemas/UsrDrop")).statusCode, 404);
  });
});

for (const store of STORES) {
  describe(`a package folder given at start on ${store}`, () => {
    it("is installed again once it changed, its schedules replacing the package's; unchanged, the package's own edits are kept", async () => {
      const db = store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
      const config = { db, logger: false as const, secret: "packages folder test secret", adminPassword: "folder-pass", worker: false as const, packageRefreshMs: 0 };
      const folder = join(tempDir(), "UsrSched");
      const cleanup = "export class UsrCleanup { run(_p: object): void {} }\n";
      const purge = "export class UsrPurge { run(_p: object): void {} }\n";
      const descriptor = (schedules: unknown[]) => ({ name: "UsrSched", schemas: source([{ name: "UsrTasks" }]), schedules });
      const nightly = { name: "nightly", cron: "0 2 * * *", task: "UsrCleanup" };
      const start = async () => {
        const platform = await Platform.start({ ...config, packages: [folder] });
        after(() => platform.stop({ graceMs: 0 }));
        return platform;
      };
      const schedules = async (platform: Platform) => (await platform.runtime.listSchedules()).filter((s) => s.name.startsWith("UsrSched.")).map((s) => [s.name, s.taskName]);

      writeFolder(folder, descriptor([nightly]), { "UsrTasks.ts": cleanup });
      const first = await start();
      assert.deepEqual(await schedules(first), [["UsrSched.nightly", "UsrCleanup"]]);
      // An administrator renames the class: Publish keeps the schedule, which names the old class.
      await first.packages.saveSchema("UsrSched", { name: "UsrTasks", kind: "source", body: purge });
      await assert.rejects(first.packages.publish("UsrSched"), (e: unknown) => {
        assert.ok(e instanceof Error && e.name === "PackageScheduleError");
        assert.equal(
          e.message,
          'package UsrSched: schedule "nightly": no task class named "UsrCleanup" in the package (its task classes: UsrPurge); the schedule is kept from build 1: change or remove it in the package folder\'s underway-package.json, then start with the folder again',
        );
        return true;
      });
      await first.stop({ graceMs: 0 });

      // The folder as it was: not installed again, the saved edit is kept.
      const second = await start();
      assert.equal((await second.packages.latestVersions()).get("UsrSched"), 1);
      assert.deepEqual((await second.packages.getSchemas("UsrSched")).map((s) => s.body), [purge]);
      await second.stop({ graceMs: 0 });

      // The folder changed (the class renamed, the schedule with it): installed and published again.
      writeFolder(folder, descriptor([{ ...nightly, name: "purge", task: "UsrPurge" }]), { "UsrTasks.ts": purge.replace("{}", "{ /* v2 */ }") });
      const third = await start();
      assert.equal((await third.packages.latestVersions()).get("UsrSched"), 2);
      assert.deepEqual(await schedules(third), [["UsrSched.purge", "UsrPurge"]]);
      // A Publish without schedules keeps them, and the folder's fingerprint: the next start does not install it again.
      assert.deepEqual(await third.packages.publish("UsrSched"), { version: 3 });
      await third.stop({ graceMs: 0 });
      const fourth = await start();
      assert.equal((await fourth.packages.latestVersions()).get("UsrSched"), 3);
      assert.deepEqual(await schedules(fourth), [["UsrSched.purge", "UsrPurge"]]);
      await fourth.stop({ graceMs: 0 });

      // Schedules removed from the folder: the next start deletes them.
      writeFolder(folder, descriptor([]), { "UsrTasks.ts": purge });
      const fifth = await start();
      assert.equal((await fifth.packages.latestVersions()).get("UsrSched"), 4);
      assert.deepEqual(await schedules(fifth), []);
    });
  });
}
