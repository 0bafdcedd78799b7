/**
 * Rows of the platform's tables changed by hand (an operator's UPDATE, a bad restore): a process
 * instance whose stored parameters are not JSON, a package build whose stored manifest is not
 * JSON, a package whose stored dependencies are not JSON. Each is shown or refused naming the
 * row's instance or package, and none of them keeps the rest from being listed, run or published.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createHttpServer } from "../../src/http/server.ts";
import { sql } from "../../src/platform/db/kysely-module.ts";
import { Platform, type PlatformConfig } from "../../src/platform/platform.ts";
import { tempDb, tempDir, tempSchema, TEST_POSTGRES_URL, until } from "../helpers.ts";
import { recordingLogger, STORES } from "./helpers.ts";
import { processXml } from "./process-helpers.ts";

const EXAMPLE = join(import.meta.dirname, "..", "..", "examples", "background-activity");
/** The example package's name and process code (examples/background-activity). */
const EXAMPLE_PACKAGE = "UsrBackgroundTask";
const EXAMPLE_PROCESS = "UsrBackgroundTaskExampleProcess";


/** A fresh store of the kind, to start platforms on (more than one in turn, unlike startPlatform's). */
function freshDb(store: (typeof STORES)[number]): string {
  return store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
}

async function start(db: string, config: Partial<PlatformConfig> = {}): Promise<Platform> {
  const platform = await Platform.start({ db, logger: false, secret: "platform tests secret value", adminPassword: "supervisor-pass", isolation: "none", packageRefreshMs: 0, ...config });
  after(() => platform.stop({ graceMs: 0 }));
  return platform;
}

async function http(platform: Platform) {
  const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: tempDir() });
  after(() => app.close());
  const signIn = async (login: string, password: string) => {
    const response = await app.inject({ method: "POST", url: "/api/auth/login", payload: { login, password } });
    assert.equal(response.statusCode, 200, response.body);
    return { authorization: `Bearer ${(response.json() as { token: string }).token}` };
  };
  return { app, signIn };
}

/** A package with one process of one script task that returns true. */
async function publishProcess(platform: Platform, packageName: string, code: string): Promise<void> {
  await platform.packages.ensurePackage(packageName);
  await platform.packages.saveSchema(packageName, { name: code, kind: "process", body: processXml(code, code, [{ kind: "script", id: "Go", body: "return true;" }, { kind: "end", id: "Done" }], [{ name: "Who", type: "text" }]) });
  await platform.packages.publish(packageName);
}

/** Changes a column of rows by hand, as an operator's UPDATE would. */
async function tamper(platform: Platform, table: "SysProcessLog" | "SysPackageBuild" | "SysPackage", column: string, value: string, where: ReturnType<typeof sql>): Promise<void> {
  await sql`UPDATE ${sql.table(table)} SET ${sql.ref(column)} = ${value} WHERE ${where}`.execute(platform.db);
}

const packageIdOf = (name: string) => sql`(SELECT ${sql.ref("Id")} FROM ${sql.table("SysPackage")} WHERE ${sql.ref("Name")} = ${name})`;

for (const store of STORES) {
  describe(`rows changed by hand, on ${store}`, () => {
    it("a process instance whose stored parameters are not JSON shows without them, fails alone when run, and leaves the log readable", async () => {
      const platform = await start(freshDb(store));
      const { app, signIn } = await http(platform);
      await publishProcess(platform, "UsrTamperLog", "UsrTamperLogProcess");
      const alice = await platform.users.create({ login: "alice", password: "alice-pass" });
      const asAlice = platform.userConnection(alice).processEngine.processExecutor;
      const good = await asAlice.execute("UsrTamperLogProcess", { Who: "good" });
      // Changed before its task is seen (the same transaction): its run reads the changed row.
      const bad = await platform.runtime.transaction(async () => {
        const started = await asAlice.execute("UsrTamperLogProcess", { Who: "bad" });
        await tamper(platform, "SysProcessLog", "Parameters", "{not json", sql`${sql.ref("Id")} = ${started.instanceId}`);
        return started;
      });
      const admin = platform.appConnection.systemUserConnection;
      const ended = (id: string) => until(async () => {
        const log = await platform.processEngine.getLog(id, admin);
        return log && log.status !== "Running" ? log : null;
      }, `instance ${id} to end`, 20_000);
      assert.equal((await ended(good.instanceId)).status, "Completed");
      const failed = await ended(bad.instanceId);
      assert.equal(failed.status, "Error");
      assert.match(failed.errorMessage ?? "", new RegExp(`process instance ${bad.instanceId} \\(UsrTamperLogProcess\\) cannot run: its stored parameters \\(SysProcessLog\\.Parameters\\) are not JSON`));
      // Its task ends dead at once: running it again would not make the row readable.
      const taskId = failed.taskId!;
      const task = await until(async () => {
        const found = await platform.runtime.findTask(taskId);
        return found?.state === "dead" ? found : null;
      }, "the instance's task to end dead", 10_000);
      assert.equal(task.attempt, 1);
      assert.match(task.lastError?.message ?? "", new RegExp(`process instance ${bad.instanceId} `));

      type Log = { id: string; parameters: Record<string, unknown>; parametersError?: string; status: string };
      for (const [login, password] of [["alice", "alice-pass"], ["Supervisor", "supervisor-pass"]] as const) {
        const headers = await signIn(login, password);
        const list = await app.inject({ method: "GET", url: "/api/process-log", headers });
        assert.equal(list.statusCode, 200, `${login}: ${list.body}`);
        const items = (list.json() as { items: Log[] }).items;
        const shown = items.find((i) => i.id === bad.instanceId);
        assert.deepEqual(shown?.parameters, {});
        assert.match(shown?.parametersError ?? "", new RegExp(`process instance ${bad.instanceId} \\(UsrTamperLogProcess\\): its stored parameters .* are not JSON`));
        const other = items.find((i) => i.id === good.instanceId);
        assert.deepEqual(other?.parameters, { Who: "good" });
        assert.equal(other !== undefined && "parametersError" in other, false);
        const one = await app.inject({ method: "GET", url: `/api/process-log/${bad.instanceId}`, headers });
        assert.equal(one.statusCode, 200, one.body);
        assert.equal((one.json() as Log).status, "Error");
        assert.match((one.json() as Log).parametersError ?? "", /are not JSON/);
      }
      // JSON, but not an object: shown without them too.
      await tamper(platform, "SysProcessLog", "Parameters", "[1,2]", sql`${sql.ref("Id")} = ${bad.instanceId}`);
      assert.match((await platform.processEngine.getLog(bad.instanceId, admin))?.parametersError ?? "", /are not a JSON object but an array/);
    });

    it("a package build whose stored manifest is not JSON is named, and left out at start and in the library, and the package can be published again", async () => {
      const db = freshDb(store);
      let platform = await start(db, { packages: [EXAMPLE], worker: false });
      await publishProcess(platform, "UsrTamperOk", "UsrTamperOkProcess");
      const ofExample = sql`${sql.ref("PackageId")} = ${packageIdOf(EXAMPLE_PACKAGE)}`;
      const original = (await sql<{ Manifest: string }>`SELECT ${sql.ref("Manifest")} FROM ${sql.table("SysPackageBuild")} WHERE ${ofExample}`.execute(platform.db)).rows[0]!.Manifest;
      await tamper(platform, "SysPackageBuild", "Manifest", "{not json", ofExample);
      await platform.stop({ graceMs: 0 });

      // Started with the package folder, as `npm start` does: the start goes on, and says which build.
      const { logger, errors } = recordingLogger();
      platform = await start(db, { packages: [EXAMPLE], worker: false, logger });
      assert.ok(
        errors.some((e) => e.includes(`package folder ${EXAMPLE} is not installed`) && e.includes(`package build ${EXAMPLE_PACKAGE}@1 cannot be read`)),
        errors.join("\n"),
      );
      assert.equal((await platform.packages.latestVersions()).get(EXAMPLE_PACKAGE), 1, "the folder was not installed over the unreadable build");
      await assert.rejects(platform.packages.build(EXAMPLE_PACKAGE, 1), (e: unknown) => e instanceof Error && e.name === "PackageBuildUnreadableError" && /UsrBackgroundTask@1 cannot be read: its stored manifest \(SysPackageBuild\.Manifest\) is not JSON/.test(e.message));

      const { app, signIn } = await http(platform);
      const asAdmin = await signIn("Supervisor", "supervisor-pass");
      const processes = async () => {
        const response = await app.inject({ method: "GET", url: "/api/processes", headers: asAdmin });
        assert.equal(response.statusCode, 200, response.body);
        return (response.json() as { items: { code: string; version: number }[] }).items.map((p) => `${p.code}@${p.version}`);
      };
      errors.length = 0;
      assert.deepEqual(await processes(), ["UsrTamperOkProcess@1"], "the other package's process is listed");
      assert.ok(errors.some((e) => e.includes(`process library leaves out package build ${EXAMPLE_PACKAGE}@1`)), errors.join("\n"));
      const run = await app.inject({ method: "POST", url: "/api/processes/UsrTamperOkProcess/run", headers: asAdmin, payload: { parameters: { Who: "x" } } });
      assert.equal(run.statusCode, 202, run.body);
      // Its own process cannot run: a failure of the server's data, said and logged naming the build.
      errors.length = 0;
      const unreadable = await app.inject({ method: "POST", url: `/api/processes/${EXAMPLE_PROCESS}/run`, headers: asAdmin, payload: {} });
      assert.equal(unreadable.statusCode, 503, unreadable.body);
      assert.match(unreadable.body, new RegExp(`the process ${EXAMPLE_PROCESS} cannot run now: package build ${EXAMPLE_PACKAGE}@1 cannot be read`));
      assert.ok(errors.some((e) => e.includes(`package build ${EXAMPLE_PACKAGE}@1 cannot be read`)), errors.join("\n"));

      // A package that depends on it cannot be compiled against it: refused, naming the build.
      await platform.packages.ensurePackage("UsrTamperUser", { dependencies: [EXAMPLE_PACKAGE] });
      const dependent = await app.inject({ method: "POST", url: "/api/packages/UsrTamperUser/publish", headers: asAdmin });
      assert.equal(dependent.statusCode, 400, dependent.body);
      assert.match(dependent.body, /package UsrTamperUser depends on UsrBackgroundTask, but package build UsrBackgroundTask@1 cannot be read/);

      // Mended by hand (no build is added): the library lists it again.
      await tamper(platform, "SysPackageBuild", "Manifest", original, ofExample);
      assert.deepEqual((await processes()).sort(), [`${EXAMPLE_PROCESS}@1`, "UsrTamperOkProcess@1"]);
      await tamper(platform, "SysPackageBuild", "Manifest", "{not json", ofExample);

      // Publishing the package again replaces the unreadable build (what it declared is unknown).
      const publish = await app.inject({ method: "POST", url: `/api/packages/${EXAMPLE_PACKAGE}/publish`, headers: asAdmin });
      assert.equal(publish.statusCode, 200, publish.body);
      assert.deepEqual(publish.json(), { version: 2 });
      assert.deepEqual((await processes()).sort(), [`${EXAMPLE_PROCESS}@2`, "UsrTamperOkProcess@1"]);
      assert.equal((await platform.packages.build(EXAMPLE_PACKAGE, 2))?.manifest.folder, undefined, "the folder of an unreadable build is not known");
    });

    it("a package whose stored dependencies are not JSON is listed and flagged, and refused publishing, naming it, until they are set again", async () => {
      const platform = await start(freshDb(store), { worker: false });
      const { app, signIn } = await http(platform);
      const asAdmin = await signIn("Supervisor", "supervisor-pass");
      await publishProcess(platform, "UsrTamperDeps", "UsrTamperDepsProcess");
      await publishProcess(platform, "UsrTamperFine", "UsrTamperFineProcess");
      await tamper(platform, "SysPackage", "Dependencies", "oops", sql`${sql.ref("Name")} = 'UsrTamperDeps'`);

      type Listed = { name: string; dependencies: string[]; dependenciesError?: string; version: number | null };
      const listed = async () => {
        const response = await app.inject({ method: "GET", url: "/api/packages", headers: asAdmin });
        assert.equal(response.statusCode, 200, response.body);
        return (response.json() as { items: Listed[] }).items;
      };
      const items = await listed();
      const damaged = items.find((p) => p.name === "UsrTamperDeps");
      assert.deepEqual(damaged?.dependencies, []);
      assert.equal(damaged?.version, 1);
      assert.match(damaged?.dependenciesError ?? "", /package UsrTamperDeps: its stored dependencies \(SysPackage\.Dependencies\) cannot be read/);
      assert.equal("dependenciesError" in (items.find((p) => p.name === "UsrTamperFine") ?? {}), false);

      const refused = await app.inject({ method: "POST", url: "/api/packages/UsrTamperDeps/publish", headers: asAdmin });
      assert.equal(refused.statusCode, 400, refused.body);
      assert.match(refused.body, /package UsrTamperDeps: its stored dependencies .* cannot be read .*set them again/);
      // Other packages are still published and changed (their cycle check passes over it).
      const fine = await app.inject({ method: "POST", url: "/api/packages/UsrTamperFine/publish", headers: asAdmin });
      assert.equal(fine.statusCode, 200, fine.body);
      const created = await app.inject({ method: "POST", url: "/api/packages", headers: asAdmin, payload: { name: "UsrTamperNew", dependencies: ["UsrTamperFine"] } });
      assert.equal(created.statusCode, 201, created.body);

      // Set again, they mend it.
      const mended = await app.inject({ method: "POST", url: "/api/packages", headers: asAdmin, payload: { name: "UsrTamperDeps", dependencies: ["UsrTamperFine"] } });
      assert.equal(mended.statusCode, 201, mended.body);
      assert.deepEqual((await listed()).find((p) => p.name === "UsrTamperDeps"), { name: "UsrTamperDeps", description: null, dependencies: ["UsrTamperFine"], version: 1 });
      const published = await app.inject({ method: "POST", url: "/api/packages/UsrTamperDeps/publish", headers: asAdmin });
      assert.equal(published.statusCode, 200, published.body);
    });
  });
}
