/**
 * A task runs the class its name resolves to, so Publish refuses a build whose task class takes a
 * name another class already has: in the same build, in the application, or in another package.
 * Re-exports of one class, and publishing a package again, are no conflict.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PackageCompileError } from "../../src/platform/packages/compiler/index.ts";
import { Packages, type PublishHooks } from "../../src/platform/packages/packages.ts";
import type { Platform } from "../../src/platform/platform.ts";
import type { IBackgroundTask } from "../../src/index.ts";
import { STORES, startPlatform } from "./helpers.ts";

const taskSource = (className: string, origin: string, taskName?: string) => `import type { IBackgroundTask } from "underway";

// the task class of ${origin}
export class ${className} implements IBackgroundTask<null> {
${taskName ? `  static taskName = ${JSON.stringify(taskName)};\n` : ""}  static origin = ${JSON.stringify(origin)};
  run(): void {}
}
`;

async function publish(platform: Platform, pkg: string, sources: Record<string, string>, dependencies?: string[]): Promise<number> {
  await platform.packages.ensurePackage(pkg, dependencies ? { dependencies } : {});
  for (const [name, body] of Object.entries(sources)) await platform.packages.saveSchema(pkg, { name, kind: "source", body });
  return (await platform.packages.publish(pkg)).version;
}

async function originOf(platform: Platform, name: string): Promise<unknown> {
  const entry = await platform.runtime.registry.resolveForRun(name);
  return (entry?.taskClass as unknown as { origin?: unknown } | undefined)?.origin;
}

function refusedWith(pattern: RegExp, schema: string, line: number) {
  return (error: unknown): boolean => {
    assert.ok(error instanceof PackageCompileError, String(error));
    assert.equal(error.problems.length, 1, error.message);
    const [problem] = error.problems;
    assert.equal(problem?.schema, schema);
    assert.equal(problem?.line, line);
    assert.match(problem?.message ?? "", pattern);
    return true;
  };
}

class UsrAppRegistered implements IBackgroundTask<null> {
  run(): void {}
}

for (const store of STORES) {
  describe(`package task names on ${store}`, () => {
    it("refuses a class whose task name another package's class has, and keeps running the first package's", async () => {
      const platform = await startPlatform(store, { isolation: "none", packageRefreshMs: 0 });
      // Names that sort the other way round from the order they are published in.
      assert.equal(await publish(platform, "UsrZeta", { UsrZetaTasks: taskSource("UsrSendMail", "zeta") }), 1);
      await assert.rejects(
        publish(platform, "UsrAlpha", { UsrAlphaTasks: taskSource("UsrSendMail", "alpha") }),
        refusedWith(/task class UsrSendMail has the task name "UsrSendMail", which a task class of package UsrZeta already has; give one of them a distinct static taskName/, "UsrAlphaTasks", 4),
      );
      assert.equal((await platform.packages.listPackages()).find((p) => p.name === "UsrAlpha")?.version, null);
      assert.equal(await originOf(platform, "UsrSendMail"), "zeta");
      // A static taskName is the name that counts, both ways.
      await assert.rejects(publish(platform, "UsrAlpha", { UsrAlphaTasks: taskSource("UsrMailer", "alpha", "UsrSendMail") }), PackageCompileError);
      assert.equal(await publish(platform, "UsrAlpha", { UsrAlphaTasks: taskSource("UsrSendMail", "alpha", "UsrAlphaSendMail") }), 1);
      assert.equal(await originOf(platform, "UsrAlphaSendMail"), "alpha");
      assert.equal(await originOf(platform, "UsrSendMail"), "zeta");
      // The first package publishes again, its class unchanged in name: no conflict with itself.
      assert.equal(await publish(platform, "UsrZeta", { UsrZetaTasks: taskSource("UsrSendMail", "zeta 2") }), 2);
      assert.equal(await originOf(platform, "UsrSendMail"), "zeta 2");
    });

    it("refuses a task name that another package's publish took while this publish was being checked", async () => {
      const platform = await startPlatform(store, { isolation: "none", packageRefreshMs: 0 });
      const hooks = (platform.packages as unknown as { hooks: PublishHooks }).hooks;
      await platform.packages.ensurePackage("UsrAlpha");
      await platform.packages.saveSchema("UsrAlpha", { name: "UsrAlphaTasks", kind: "source", body: taskSource("UsrSendMail", "alpha") });
      // Alpha's build is checked (no other package has the name yet), then Zeta, with the same
      // name, is published whole before Alpha's is stored.
      let checks = 0;
      const alpha = new Packages(platform.runtime.driver, platform.db, {
        ...hooks,
        check: async (build) => {
          await hooks.check!(build);
          if (++checks === 1) assert.equal(await publish(platform, "UsrZeta", { UsrZetaTasks: taskSource("UsrSendMail", "zeta") }), 1);
        },
      });
      await assert.rejects(
        alpha.publish("UsrAlpha"),
        refusedWith(/task class UsrSendMail has the task name "UsrSendMail", which a task class of package UsrZeta already has/, "UsrAlphaTasks", 4),
      );
      assert.equal(checks, 1, "the second check refused it");
      assert.equal((await platform.packages.listPackages()).find((p) => p.name === "UsrAlpha")?.version, null);
      assert.equal(await originOf(platform, "UsrSendMail"), "zeta");
    });

    it("refuses two classes of one build with one task name, and a name a class of the application has", async () => {
      const platform = await startPlatform(store, { isolation: "none", packageRefreshMs: 0, tasks: [UsrAppRegistered] });
      await assert.rejects(
        publish(platform, "UsrTwice", { UsrFirst: taskSource("UsrJob", "first"), UsrSecond: taskSource("UsrOtherJob", "second", "UsrJob") }),
        refusedWith(/task class UsrOtherJob has the task name "UsrJob", as UsrJob of schema UsrFirst has/, "UsrSecond", 4),
      );
      await assert.rejects(
        publish(platform, "UsrShadow", { UsrShadowTasks: taskSource("UsrAppRegistered", "package") }),
        refusedWith(/task class UsrAppRegistered has the task name "UsrAppRegistered", which a task class of the application already has/, "UsrShadowTasks", 4),
      );
      assert.equal(await originOf(platform, "UsrAppRegistered"), undefined); // the application's class, which has no origin
    });

    it("takes a class re-exported from a dependency as the dependency's, whichever of them is published again", async () => {
      const platform = await startPlatform(store, { isolation: "none", packageRefreshMs: 0 });
      await publish(platform, "UsrLib", { UsrLibTasks: taskSource("UsrShared", "lib 1") });
      const reexport = 'export { UsrShared } from "UsrLibTasks";\nexport const app = 1;\n';
      assert.equal(await publish(platform, "UsrApp", { UsrAppTasks: reexport }, ["UsrLib"]), 1);
      assert.equal(await originOf(platform, "UsrShared"), "lib 1");
      // The app's build 1 keeps re-exporting the library's build 1; the name is still the library's.
      assert.equal(await publish(platform, "UsrLib", { UsrLibTasks: taskSource("UsrShared", "lib 2") }), 2);
      assert.equal(await originOf(platform, "UsrShared"), "lib 2");
      assert.equal(await publish(platform, "UsrApp", { UsrAppTasks: reexport }, ["UsrLib"]), 2);
      assert.equal(await originOf(platform, "UsrShared"), "lib 2");
    });
  });
}
