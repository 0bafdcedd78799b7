/**
 * Requests to the packages that overlap: a publish overtaken by another publish of the same
 * package compiles again from what is saved now, and one schema name saved into two packages at
 * once ends up in one of them.
 */
import assert from "node:assert/strict";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { PackageInputError } from "../../src/platform/packages/errors.ts";
import { Packages } from "../../src/platform/packages/packages.ts";
import { Platform } from "../../src/platform/platform.ts";
import { tempDb, tempDir, tempSchema, TEST_POSTGRES_URL } from "../helpers.ts";
import { startPlatform, STORES } from "./helpers.ts";

const word = (w: string) => `export function word(): string { return "${w}"; }`;

/** Two platforms on one store, as two processes (nodes) sharing it: each with its own connections. */
async function twoPlatforms(store: (typeof STORES)[number]): Promise<[Platform, Platform]> {
  const db = store === "sqlite" ? tempDb(tempDir()) : `${TEST_POSTGRES_URL}?schema=${tempSchema()}`;
  const config = { db, logger: false as const, secret: "package races test secret", adminPassword: "supervisor-pass", isolation: "none" as const, worker: false as const, packageRefreshMs: 0 };
  const first = await Platform.start(config);
  after(() => first.stop({ graceMs: 0 }));
  const second = await Platform.start(config);
  after(() => second.stop({ graceMs: 0 }));
  return [first, second];
}

/** A package folder declaring only its name and dependencies. */
function folderOf(name: string, dependencies: string[]): string {
  const dir = join(tempDir(), name);
  mkdirSync(dir);
  writeFileSync(join(dir, "underway-package.json"), JSON.stringify({ name, dependencies, schemas: [] }));
  return dir;
}

/** Fails when the stored dependencies (SysPackage.Dependencies) lead from a package back to it. */
async function assertNoStoredCycle(platform: Platform): Promise<void> {
  const declared = new Map((await platform.packages.listPackages()).map((p) => [p.name, p.dependencies]));
  const visit = (at: string, path: readonly string[]): void => {
    for (const next of declared.get(at) ?? []) {
      assert.ok(!path.includes(next), `a cycle is stored: ${[...path, next].join(" -> ")}`);
      visit(next, [...path, next]);
    }
  };
  for (const name of declared.keys()) visit(name, [name]);
}

/**
 * Two changes of dependencies made at once that would together close a cycle: exactly one is
 * stored, the other refused naming the cycle, and no cycle is stored.
 */
async function assertOneRefused(outcomes: PromiseSettledResult<unknown>[], names: readonly [string, string]): Promise<void> {
  const refused = outcomes.flatMap((o, i) => (o.status === "rejected" ? [{ i, reason: o.reason as Error }] : []));
  assert.equal(refused.length, 1, `${names.join(" and ")}: exactly one of the two changes is refused, got ${outcomes.map((o) => o.status).join(", ")}`);
  const { i, reason } = refused[0]!;
  const [self, other] = i === 0 ? names : [names[1], names[0]];
  assert.ok(reason instanceof PackageInputError, String(reason));
  assert.equal(reason.message, `package ${self} cannot depend on ${other}: ${self} -> ${other} -> ${self} is a cycle; a package's dependencies may not lead back to it`);
}

for (const store of STORES) {
  describe(`overlapping package requests on ${store}`, () => {
    it("makes the newest build from the newest snapshot when another publish stores first", async () => {
      const platform = await startPlatform(store, { isolation: "none", packageRefreshMs: 0 });
      await platform.packages.ensurePackage("UsrRace");
      await platform.packages.saveSchema("UsrRace", { name: "UsrRaceWords", kind: "source", body: word("old") });
      assert.equal((await platform.packages.publish("UsrRace")).version, 1);
      await platform.packages.saveSchema("UsrRace", { name: "UsrRaceWords", kind: "source", body: word("middle") });

      // This publish reads "middle", then, while it compiles, someone saves "new" and publishes it.
      let checks = 0;
      const slow = new Packages(platform.runtime.driver, platform.db, {
        check: async () => {
          if (++checks > 1) return;
          await platform.packages.saveSchema("UsrRace", { name: "UsrRaceWords", kind: "source", body: word("new") });
          assert.equal((await platform.packages.publish("UsrRace")).version, 2);
        },
      });
      assert.equal((await slow.publish("UsrRace")).version, 3);
      assert.equal(checks, 2, "the overtaken publish compiled again");
      const newest = await platform.packages.latestBuild("UsrRace");
      assert.equal(newest?.manifest.version, 3);
      assert.match(newest?.code ?? "", /"new"/);
      assert.doesNotMatch(newest?.code ?? "", /"middle"/);
    });

    it("creates a package once when it is created several times at once (nodes installing their packages together)", async () => {
      const platform = await startPlatform(store, { isolation: "none", packageRefreshMs: 0 });
      // Each call reads before any inserts: all but one insert meets the unique name.
      const ids = await Promise.all(Array.from({ length: 6 }, (_, i) => platform.packages.ensurePackage("UsrTwin", { description: `call ${i}` })));
      assert.equal(new Set(ids).size, 1, `ids: ${ids.join(", ")}`);
      const listed = (await platform.packages.listPackages()).filter((p) => p.name === "UsrTwin");
      assert.equal(listed.length, 1);
      assert.match(listed[0]?.description ?? "", /^call \d$/);
    });

    it("gives up with a clear error when other publishes keep overtaking one", async () => {
      const platform = await startPlatform(store, { isolation: "none", packageRefreshMs: 0 });
      await platform.packages.ensurePackage("UsrBusy");
      await platform.packages.saveSchema("UsrBusy", { name: "UsrBusyWords", kind: "source", body: word("one") });
      const slow = new Packages(platform.runtime.driver, platform.db, {
        check: async () => {
          await platform.packages.publish("UsrBusy");
        },
      });
      await assert.rejects(slow.publish("UsrBusy"), (e: unknown) => e instanceof PackageInputError && /published by someone else 5 times/.test(e.message));
      // Only the others' builds were stored.
      assert.equal((await platform.packages.latestBuild("UsrBusy"))?.manifest.version, 5);
    });

    it("checks a build again when another package was published while it was checked, and gives up after five", async () => {
      const platform = await startPlatform(store, { isolation: "none", packageRefreshMs: 0 });
      await platform.packages.ensurePackage("UsrCalm");
      await platform.packages.saveSchema("UsrCalm", { name: "UsrCalmWords", kind: "source", body: word("calm") });
      await platform.packages.ensurePackage("UsrLoud");
      await platform.packages.saveSchema("UsrLoud", { name: "UsrLoudWords", kind: "source", body: word("loud") });
      let checks = 0;
      const calm = (times: number) =>
        new Packages(platform.runtime.driver, platform.db, {
          check: async () => {
            if (++checks <= times) await platform.packages.publish("UsrLoud");
          },
        });
      // Once: checked again, then stored.
      assert.equal((await calm(1).publish("UsrCalm")).version, 1);
      assert.equal(checks, 2);
      checks = 0;
      await assert.rejects(calm(Infinity).publish("UsrCalm"), (e: unknown) => e instanceof PackageInputError && /other packages were published 5 times while this publish of UsrCalm checked/.test(e.message));
      assert.equal((await platform.packages.latestBuild("UsrCalm"))?.manifest.version, 1);
      assert.equal((await platform.packages.latestBuild("UsrLoud"))?.manifest.version, 6);
    });

    it("saves a schema name into one package when two packages save it at once", async () => {
      const platform = await startPlatform(store, { isolation: "none", packageRefreshMs: 0 });
      await platform.packages.ensurePackage("UsrLeft");
      await platform.packages.ensurePackage("UsrRight");
      const names = Array.from({ length: 12 }, (_, i) => `UsrShared${i}`);
      const outcomes = await Promise.all(
        names.map((name) =>
          Promise.allSettled([
            platform.packages.saveSchema("UsrLeft", { name, kind: "source", body: word("left") }),
            platform.packages.saveSchema("UsrRight", { name, kind: "source", body: word("right") }),
          ]),
        ),
      );
      for (const [i, pair] of outcomes.entries()) {
        const refused = pair.filter((o) => o.status === "rejected");
        assert.equal(refused.length, 1, `${names[i]}: one of the two saves is refused`);
        const reason = (refused[0] as PromiseRejectedResult).reason as Error;
        assert.ok(reason instanceof PackageInputError, `${names[i]}: ${reason.message}`);
        assert.match(reason.message, new RegExp(`a schema named ${names[i]} already exists in another package`));
      }
      const left = (await platform.packages.getSchemas("UsrLeft")).map((s) => s.name);
      const right = (await platform.packages.getSchemas("UsrRight")).map((s) => s.name);
      assert.deepEqual([...left, ...right].sort(), [...names].sort());

      // Two saves of one name into the same package at once: both land, as two updates.
      const same = await Promise.allSettled([
        platform.packages.saveSchema("UsrLeft", { name: "UsrTwice", kind: "source", body: word("a") }),
        platform.packages.saveSchema("UsrLeft", { name: "UsrTwice", kind: "source", body: word("b") }),
      ]);
      assert.deepEqual(same.map((o) => o.status), ["fulfilled", "fulfilled"]);
      assert.equal((await platform.packages.getSchemas("UsrLeft")).filter((s) => s.name === "UsrTwice").length, 1);
    });

    it("stores one of two dependency changes made at once that together would form a cycle, and refuses the other", async () => {
      const platform = await startPlatform(store, { isolation: "none", packageRefreshMs: 0 });
      for (let round = 0; round < 4; round++) {
        const a = `UsrCycA${round}`;
        const b = `UsrCycB${round}`;
        // Round 0 creates both with their dependencies; later rounds change packages that exist.
        if (round > 0) await Promise.all([platform.packages.ensurePackage(a), platform.packages.ensurePackage(b)]);
        const outcomes = await Promise.allSettled([platform.packages.ensurePackage(a, { dependencies: [b] }), platform.packages.ensurePackage(b, { dependencies: [a] })]);
        await assertOneRefused(outcomes, [a, b]);
      }
      // A package folder installed at the same time as a change of another package.
      await platform.packages.ensurePackage("UsrCycFolder");
      const outcomes = await Promise.allSettled([
        platform.packages.ensurePackage("UsrCycPlain", { dependencies: ["UsrCycFolder"] }),
        platform.packages.importFolder(folderOf("UsrCycFolder", ["UsrCycPlain"])),
      ]);
      await assertOneRefused(outcomes, ["UsrCycPlain", "UsrCycFolder"]);
      await assertNoStoredCycle(platform);
    });

    it("stores one of two dependency changes that together would form a cycle when two platforms sharing the store make them at once", async () => {
      const [first, second] = await twoPlatforms(store);
      for (let round = 0; round < 4; round++) {
        const a = `UsrNodeA${round}`;
        const b = `UsrNodeB${round}`;
        await first.packages.ensurePackage(a);
        await first.packages.ensurePackage(b);
        const outcomes = await Promise.allSettled(
          round % 2 === 0
            ? [first.packages.ensurePackage(a, { dependencies: [b] }), second.packages.ensurePackage(b, { dependencies: [a] })]
            : [first.packages.importFolder(folderOf(a, [b])), second.packages.importFolder(folderOf(b, [a]))],
        );
        await assertOneRefused(outcomes, [a, b]);
      }
      await assertNoStoredCycle(first);
      // What is not a cycle is stored as before, from either platform.
      await second.packages.ensurePackage("UsrNodeB0", { dependencies: ["UsrNodeA1"] });
      await first.packages.ensurePackage("UsrNodeA1", { description: "kept", dependencies: [] });
      assert.deepEqual((await second.packages.listPackages()).find((p) => p.name === "UsrNodeB0")?.dependencies, ["UsrNodeA1"]);
      assert.equal((await second.packages.listPackages()).find((p) => p.name === "UsrNodeA1")?.description, "kept");
    });
  });
}
