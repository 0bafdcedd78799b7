/**
 * Every load of a stored build has the time limit Publish's check has: a build whose top-level
 * code never finishes (stored before that check, or stored by another way) is stopped at the
 * limit when the platform starts, or when a task or process of it is looked up; the error names
 * the package and the build, the start goes on without that package's tasks, and the build is
 * not run again in that process.
 */
import assert from "node:assert/strict";
import { after, describe, it } from "node:test";
import { LOAD_LIMIT_MS, PackageLoadError, PackageLoadTimeoutError } from "../../src/platform/packages/compiler/index.ts";
import { PackageLoader } from "../../src/platform/packages/loader.ts";
import { Packages } from "../../src/platform/packages/packages.ts";
import { Platform, type PlatformConfig } from "../../src/platform/platform.ts";
import { tempDb, tempDir } from "../helpers.ts";
import { endIfBlocked, recordingLogger, startPlatform } from "./helpers.ts";

endIfBlocked("package-load-limit");


const SPIN = "let n = 0;\nwhile (n >= 0) { n = (n + 1) % 10; }\nexport const never = n;\n";
const job = (name: string) => `import type { IBackgroundTask } from "underway";\nexport class ${name} implements IBackgroundTask<null> {\n  run(): void {}\n}\n`;
const stoppedAfter = (name: string, version: number | null, seconds: number) =>
  `package ${name}${version === null ? "" : ` (build ${version})`}: its code did not finish loading within ${seconds} s and was stopped: ` +
  "a schema's top-level code must not loop or block (do long work in a function or a task)";

/**
 * Stores a build as it is, without Publish's load check: as builds stored before that check, or
 * whose code does not finish only on another node or at another time.
 */
async function storeUnchecked(platform: Platform, pkg: string, sources: Record<string, string>, options: { dependencies?: string[]; schedules?: unknown[] } = {}): Promise<number> {
  const unchecked = new Packages(platform.runtime.driver, platform.db);
  await unchecked.ensurePackage(pkg, options.dependencies ? { dependencies: options.dependencies } : {});
  for (const [name, body] of Object.entries(sources)) await unchecked.saveSchema(pkg, { name, kind: "source", body });
  return (await unchecked.publish(pkg, null, options.schedules ? { schedules: options.schedules } : {})).version;
}

describe("loading stored package builds with a time limit", () => {
  it("starts in bounded time without the tasks of a stored build whose top-level code never finishes, logging the package and build", { timeout: 120_000 }, async () => {
    const config: PlatformConfig = { db: tempDb(tempDir()), logger: false, secret: "package load limit test secret", adminPassword: "supervisor-pass", isolation: "none", packageRefreshMs: 0 };
    const first = await Platform.start(config);
    await first.packages.ensurePackage("UsrCalm");
    await first.packages.saveSchema("UsrCalm", { name: "UsrCalmJobs", kind: "source", body: job("UsrCalmJob") });
    await first.packages.publish("UsrCalm", null, { schedules: [{ name: "nightly", cron: "0 3 * * *", task: "UsrCalmJob" }] });
    assert.equal(await storeUnchecked(first, "UsrSpin", { UsrSpinJobs: `${job("UsrSpinJob")}${SPIN}` }, { schedules: [{ name: "hourly", cron: "0 * * * *", task: "UsrSpinJob" }] }), 1);
    await first.stop({ graceMs: 0 });

    const { logger, errors } = recordingLogger((record) => `${String(record.package)}@${String(record.version)}`);
    const started = Date.now();
    const second = await Platform.start({ ...config, logger });
    after(() => second.stop({ graceMs: 0 }));
    const took = Date.now() - started;
    assert.ok(took >= LOAD_LIMIT_MS, `started after ${took} ms`);
    assert.ok(took < LOAD_LIMIT_MS + 20_000, `started after ${took} ms`);
    assert.deepEqual(
      errors.filter((e) => e.includes("UsrSpin")),
      [`defining the schedules of a package failed | UsrSpin@1 | ${stoppedAfter("UsrSpin", 1, LOAD_LIMIT_MS / 1000)}`],
    );

    // The other package's tasks are there; the stopped build's are refused at once, saying why.
    assert.ok(await second.packageLoader.resolveTaskClass("UsrCalmJob"));
    const asked = Date.now();
    await assert.rejects(second.packageLoader.resolveTaskClass("UsrSpinJob"), (error: unknown) => {
      assert.ok(error instanceof PackageLoadTimeoutError, String(error));
      assert.equal(error.message, stoppedAfter("UsrSpin", 1, LOAD_LIMIT_MS / 1000));
      assert.equal(error.packageName, "UsrSpin");
      assert.equal(error.version, 1);
      return true;
    });
    assert.ok(Date.now() - asked < 1_000, `refused after ${Date.now() - asked} ms: the build ran again`);
    const schedules = (await second.runtime.listSchedules()).map((s) => s.name);
    assert.ok(schedules.includes("UsrCalm.nightly"), schedules.join(", "));
    assert.ok(!schedules.includes("UsrSpin.hourly"), schedules.join(", "));
  });

  it("stops the code of a stored build (or of its dependency) at the limit wherever it is loaded, naming the build, and runs it once", { timeout: 60_000 }, async () => {
    const platform = await startPlatform("sqlite", { isolation: "none", packageRefreshMs: 0, worker: false });
    await storeUnchecked(platform, "UsrSlowLib", { UsrSlowWords: `export function word(): string { return "slow"; }\n${SPIN}` });
    await storeUnchecked(platform, "UsrSlowLib", { UsrSlowWords: `export function word(): string { return "slow"; }\n${SPIN}` });
    await storeUnchecked(platform, "UsrSlowApp", { UsrSlowUse: 'import { word } from "UsrSlowWords";\nexport const used = () => word();\n' }, { dependencies: ["UsrSlowLib"] });
    const loader = new PackageLoader(platform.packages, () => import("../../src/index.ts") as Promise<Record<string, unknown>>, 0, 300);

    const ticks: number[] = [];
    const ticker = setInterval(() => ticks.push(Date.now()), 20);
    after(() => clearInterval(ticker));
    const started = Date.now();
    await assert.rejects(loader.load("UsrSlowApp", 1), (error: unknown) => {
      assert.ok(error instanceof PackageLoadTimeoutError, String(error));
      assert.equal(error.message, stoppedAfter("UsrSlowLib", 2, 0.3));
      return true;
    });
    assert.ok(Date.now() - started < 10_000, `stopped after ${Date.now() - started} ms`);
    // The thread goes on: its timers fire again once the code is stopped.
    const stoppedAt = Date.now();
    await new Promise((resolve) => setTimeout(resolve, 200));
    assert.ok(ticks.filter((t) => t > stoppedAt).length >= 3, "the event loop turns after the stop");

    // Not run again: the build itself, and every build that needs it, fail at once.
    for (const [name, version] of [["UsrSlowLib", 2], ["UsrSlowApp", 1]] as const) {
      const again = Date.now();
      await assert.rejects(loader.load(name, version), (error: unknown) => error instanceof PackageLoadTimeoutError && error.message === stoppedAfter("UsrSlowLib", 2, 0.3));
      assert.ok(Date.now() - again < 250, `${name}@${version} refused after ${Date.now() - again} ms`);
    }
    // Another build of the package is its own: it runs, and is stopped, in turn.
    await assert.rejects(loader.load("UsrSlowLib", 1), (error: unknown) => error instanceof PackageLoadTimeoutError && error.message === stoppedAfter("UsrSlowLib", 1, 0.3));

    // A package not stored yet (Publish's second load) is named without a build; code that
    // catches what stops it is stopped all the same; code that throws says so as before.
    const hand = (packageName: string, code: string) => ({ packageName, code, exports: {}, schemas: [] });
    await assert.rejects(loader.loadCompiled(hand("UsrHand", "for (;;) {}"), {}), (error: unknown) => error instanceof PackageLoadTimeoutError && error.message === stoppedAfter("UsrHand", null, 0.3));
    await assert.rejects(
      loader.loadCompiled(hand("UsrStubborn", "try { for (;;) {} } catch { module.exports = 1; } finally { for (;;) {} }"), {}),
      (error: unknown) => error instanceof PackageLoadTimeoutError && error.message === stoppedAfter("UsrStubborn", null, 0.3),
    );
    await assert.rejects(
      loader.loadCompiled(hand("UsrThrows", 'throw new Error("boom at load");'), {}),
      (error: unknown) => error instanceof PackageLoadError && !(error instanceof PackageLoadTimeoutError) && error.message === "package UsrThrows: its code threw while loading: boom at load",
    );
    // What loads in time loads as before, through the platform's own loader too.
    const fine = await loader.loadCompiled(hand("UsrFineHand", "module.exports = { modules: [['UsrFineWords', { word: 'fine' }]], scripts: [], conditions: [] };"), {});
    assert.equal(fine.modules.UsrFineWords?.word, "fine");
  });
});
