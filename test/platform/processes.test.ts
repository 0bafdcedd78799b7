import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { PackageCompileError } from "../../src/platform/packages/compiler/index.ts";
import type { Platform } from "../../src/platform/platform.ts";
import type { ProcessLog } from "../../src/platform/processes/engine.ts";
import { until } from "../helpers.ts";
import { STORES, startPlatform } from "./helpers.ts";
import { condition, definitions, flow, script } from "./bpmn/helpers.ts";
import { processXml } from "./process-helpers.ts";

async function publishProcess(platform: Platform, pkg: string, code: string, xml: string, sources: Record<string, string> = {}): Promise<number> {
  await platform.packages.ensurePackage(pkg);
  for (const [name, body] of Object.entries(sources)) await platform.packages.saveSchema(pkg, { name, kind: "source", body });
  await platform.packages.saveSchema(pkg, { name: code, kind: "process", body: xml });
  return (await platform.packages.publish(pkg)).version;
}

async function runAndSettle(platform: Platform, code: string, parameters: Record<string, unknown> = {}): Promise<ProcessLog> {
  const admin = platform.appConnection.systemUserConnection;
  const { instanceId } = await admin.processEngine.processExecutor.execute(code, parameters);
  return until(async () => {
    const log = await platform.processEngine.getLog(instanceId, admin);
    return log && (log.status !== "Running" || log.elements.some((e) => e.waiting)) ? log : null;
  }, `process ${code} to settle`, 20_000);
}

const shape = (log: ProcessLog) => log.elements.map((e) => `${e.elementId}:${e.status}${e.waiting ? "(waiting)" : ""}`);

for (const store of STORES) {
  describe(`processes on ${store}`, () => {
    it("runs script tasks: true goes on, false waits, an exception is an Error", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      await publishProcess(platform, "UsrTest", "UsrOutcomes", processXml("UsrOutcomes", "Outcomes", [
        { kind: "script", id: "Set", body: 'context.set("Greeting", "hello " + String(context.get("Name"))); return true;' },
        { kind: "gateway", id: "Which", branches: [
          { condition: 'context.get("Mode") === "wait"', steps: [{ kind: "script", id: "Wait", body: "return false;" }, { kind: "end", id: "EndA" }] },
          { condition: 'context.get("Mode") === "fail"', steps: [{ kind: "script", id: "Fail", body: 'throw new Error("the customer is unknown");' }, { kind: "end", id: "EndB" }] },
          { steps: [{ kind: "end", id: "Done", terminate: true }] },
        ] },
      ], [{ name: "Mode", type: "text", default: "go" }, { name: "Name", type: "text" }]));

      const done = await runAndSettle(platform, "UsrOutcomes", { Name: "Ann" });
      assert.equal(done.status, "Completed");
      assert.deepEqual(shape(done), ["Start:Completed", "Set:Completed", "Which:Completed", "Done:Completed"]);
      assert.equal(done.parameters.Greeting, "hello Ann");
      assert.equal(done.title, "Outcomes");

      const waiting = await runAndSettle(platform, "UsrOutcomes", { Mode: "wait" });
      assert.equal(waiting.status, "Running");
      assert.deepEqual(shape(waiting), ["Start:Completed", "Set:Completed", "Which:Completed", "Wait:Running(waiting)"]);
      const admin = platform.appConnection.systemUserConnection;
      assert.equal(await platform.processEngine.cancel(waiting.id, admin), true);
      const canceled = await platform.processEngine.getLog(waiting.id, admin);
      assert.equal(canceled?.status, "Canceled");
      assert.equal(canceled?.elements.at(-1)?.status, "Canceled");

      const failed = await runAndSettle(platform, "UsrOutcomes", { Mode: "fail" });
      assert.equal(failed.status, "Error");
      assert.deepEqual(shape(failed), ["Start:Completed", "Set:Completed", "Which:Completed", "Fail:Error"]);
      assert.equal(failed.errorMessage, "Error: the customer is unknown");

      await assert.rejects(admin.processEngine.processExecutor.execute("UsrOutcomes", { Nope: 1 }), /has no parameter "Nope" \(it has Mode, Name\)/);
      await assert.rejects(admin.processEngine.processExecutor.execute("UsrMissing"), /no published process has the code "UsrMissing"/);
      // Names every object has are no process codes either.
      for (const code of ["toString", "constructor", "__proto__", "hasOwnProperty"]) {
        await assert.rejects(admin.processEngine.processExecutor.execute(code), new RegExp(`no published process has the code "${code}"`));
      }
    });

    it("fails the element, once, whose script sets a value JSON cannot hold or throws a bare object; a set value is a copy", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      await publishProcess(platform, "UsrSets", "UsrSets", processXml("UsrSets", "Sets", [
        { kind: "script", id: "Copy", body: 'const o = { a: 1 }; context.set("O", o); o.a = 2; context.set("Gone", undefined); context.set("Name", undefined); return true;' },
        { kind: "gateway", id: "Which", branches: [
          { condition: 'context.get("Mode") === "big"', steps: [{ kind: "script", id: "Big", body: 'context.set("Runs", 1); context.set("Big", 10n ** 20n); return true;' }, { kind: "end", id: "EndA" }] },
          { condition: 'context.get("Mode") === "bare"', steps: [{ kind: "script", id: "Bare", body: "throw Object.create(null);" }, { kind: "end", id: "EndB" }] },
          { steps: [{ kind: "end", id: "Done" }] },
        ] },
      ], [{ name: "Mode", type: "text", default: "go" }, { name: "Name", type: "text", default: "n" }]));

      const done = await runAndSettle(platform, "UsrSets");
      assert.equal(done.status, "Completed");
      assert.deepEqual(done.parameters.O, { a: 1 });
      assert.equal("Name" in done.parameters, false);

      const big = await runAndSettle(platform, "UsrSets", { Mode: "big" });
      assert.equal(big.status, "Error");
      assert.deepEqual(shape(big), ["Start:Completed", "Copy:Completed", "Which:Completed", "Big:Error"]);
      assert.match(big.errorMessage ?? "", /^TypeError: context\.set\("Big"\): the value cannot be stored as JSON: .*BigInt/);
      // The element failed in its one attempt: the task that ran it was not retried. (The log
      // shows the Error while the task is still finishing its run: wait for the task to end.)
      const admin = platform.appConnection.systemUserConnection;
      const log = await platform.processEngine.getLog(big.id, admin);
      const task = await until(async () => {
        const t = await platform.runtime.findTask(log?.taskId ?? "");
        return t && t.state !== "running" && t.state !== "queued" ? t : null;
      }, "the instance's task to end");
      assert.equal(task?.state, "succeeded");
      assert.equal(task?.attempt, 1);
      assert.deepEqual(task?.errors, []);

      // A thrown value that has no String() (no prototype) fails the element once too.
      const bare = await runAndSettle(platform, "UsrSets", { Mode: "bare" });
      assert.equal(bare.status, "Error");
      assert.deepEqual(shape(bare), ["Start:Completed", "Copy:Completed", "Which:Completed", "Bare:Error"]);
      assert.equal(bare.errorMessage, "a non-Error value was thrown: [Object: null prototype] {}");
      const bareTask = await until(async () => {
        const t = await platform.runtime.findTask((await platform.processEngine.getLog(bare.id, admin))?.taskId ?? "");
        return t && t.state !== "running" && t.state !== "queued" ? t : null;
      }, "the instance's task to end");
      assert.equal(bareTask.state, "succeeded");
      assert.equal(bareTask.attempt, 1);
    });

    it("checks the values a run is given as its defaults are checked: 32-bit decimal integers, ISO 8601 dates that exist", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      const xml = processXml("UsrTyped", "Typed", [{ kind: "script", id: "Ok", body: "return true;" }, { kind: "end", id: "End" }], [
        { name: "Count", type: "integer" },
        { name: "When", type: "datetime" },
      ]);
      await publishProcess(platform, "UsrTypedPkg", "UsrTyped", xml);
      const admin = platform.appConnection.systemUserConnection;
      for (const [parameters, message] of [
        [{ Count: 2 ** 40 }, /process parameter Count must be integer, got 1099511627776/],
        [{ Count: -(2 ** 31) - 1 }, /process parameter Count must be integer/],
        [{ Count: "1e3" }, /process parameter Count must be integer, got "1e3"/],
        [{ Count: "0x10" }, /process parameter Count must be integer, got "0x10"/],
        [{ When: "1" }, /process parameter When must be datetime, got "1"/],
        [{ When: "March 7, 2024" }, /process parameter When must be datetime/],
        [{ When: 0 }, /process parameter When must be datetime, got 0/],
        [{ When: "2024-02-30" }, /process parameter When must be datetime, got "2024-02-30"/],
        [{ When: new Date(0) }, /: process parameter When must be datetime, got a Date object \(give a date and time as ISO 8601 text\)$/],
        [{ When: "x".repeat(100_000) }, /: process parameter When must be datetime, got "x{80}\.\.\."$/],
        [{ Count: { n: 1 } }, /: process parameter Count must be integer, got an object$/],
        // Nested deeper than a JSON text of it could be written: the message stays short.
        [{ Count: Array.from({ length: 20_000 }).reduce<unknown>((inner) => [inner], 1) }, /: process parameter Count must be integer, got an array of 1$/],
      ] as const) {
        await assert.rejects(admin.processEngine.processExecutor.execute("UsrTyped", parameters), message, String(Object.keys(parameters)));
      }
      const log = await runAndSettle(platform, "UsrTyped", { Count: "-42", When: "2024-02-29T10:00:00Z" });
      assert.equal(log.status, "Completed");
      assert.equal(log.parameters.Count, -42);
      assert.equal(log.parameters.When, "2024-02-29T10:00:00.000Z");
      // A date-time without an offset is UTC, whatever the server's time zone.
      const zone = process.env.TZ;
      process.env.TZ = "America/New_York";
      try {
        const local = await runAndSettle(platform, "UsrTyped", { Count: 1, When: "2024-02-29T10:00" });
        assert.equal(local.parameters.When, "2024-02-29T10:00:00.000Z");
      } finally {
        if (zone === undefined) delete process.env.TZ;
        else process.env.TZ = zone;
      }
      // A parameter named like a property every object has is refused when saved.
      const reserved = processXml("UsrReserved", "Reserved", [{ kind: "end", id: "End" }], [{ name: "__proto__", type: "text" }]);
      await platform.packages.ensurePackage("UsrTypedPkg");
      await assert.rejects(platform.packages.saveSchema("UsrTypedPkg", { name: "UsrReserved", kind: "process", body: reserved }), /process parameter "__proto__": the name is reserved/);
    });

    it("fails an instance whose loop never takes its way out, rather than running it until canceled", { skip: store === "postgres" ? "the same engine code; 1,000 element commits are slow on PostgreSQL" : false }, async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      const xml = processXml("UsrEndless", "Endless", [
        { kind: "script", id: "Count", body: 'context.set("N", Number(context.get("N") ?? 0) + 1); return true;' },
        { kind: "gateway", id: "Again", branches: [{ condition: 'context.get("N") === -1', steps: [{ kind: "end", id: "End" }] }, { steps: [{ kind: "script", id: "Back", body: "return true;" }, { kind: "end", id: "End2" }] }] },
      ]).replace(/<bpmn:sequenceFlow id="(Flow_\d+)" sourceRef="Back" targetRef="End2"><\/bpmn:sequenceFlow>/, '<bpmn:sequenceFlow id="$1" sourceRef="Back" targetRef="Count"></bpmn:sequenceFlow>').replace(/<bpmn:endEvent id="End2"[^>]*>[^<]*<\/bpmn:endEvent>/, "");
      assert.match(xml, /sourceRef="Back" targetRef="Count"/);
      await publishProcess(platform, "UsrEndlessPkg", "UsrEndless", xml);
      const log = await runAndSettle(platform, "UsrEndless");
      assert.equal(log.status, "Error");
      assert.match(log.errorMessage ?? "", /ran 1,000 elements without waiting or ending/);
    });

    it("joins branches at a merge gateway: its one way out needs no condition", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      const path = (to: string) => script(to, `context.set("Path", "${to}"); return true;`);
      const xml = definitions(
        `<bpmn:process id="UsrMerge" name="Merge" isExecutable="true">` +
          `<bpmn:extensionElements><underway:parameter name="X" type="text"/></bpmn:extensionElements>` +
          `<bpmn:startEvent id="Start"/><bpmn:exclusiveGateway id="Split" default="ToB"/>${path("A")}${path("B")}<bpmn:exclusiveGateway id="Merge"/>` +
          script("After", 'context.set("Path", String(context.get("Path")) + "+after"); return true;') +
          `<bpmn:endEvent id="End"/>${flow("F1", "Start", "Split")}${flow("ToA", "Split", "A", condition('context.get("X") === "a"'))}${flow("ToB", "Split", "B")}` +
          `${flow("F2", "A", "Merge")}${flow("F3", "B", "Merge")}${flow("F4", "Merge", "After")}${flow("F5", "After", "End")}</bpmn:process>`,
      );
      await publishProcess(platform, "UsrMergePkg", "UsrMerge", xml);
      for (const [x, path] of [["a", "A+after"], ["b", "B+after"]] as const) {
        const log = await runAndSettle(platform, "UsrMerge", { X: x });
        assert.equal(log.status, "Completed", log.errorMessage ?? "");
        assert.equal(log.parameters.Path, path);
        assert.deepEqual(shape(log).slice(-3), ["Merge:Completed", "After:Completed", "End:Completed"]);
      }
    });

    it("keeps the previous build when a publish fails, and a new build reaches the running worker", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      const xml = (greeting: string) =>
        processXml("UsrVersioned", "Versioned", [
          { kind: "script", id: "Say", usings: ["UsrWords"], body: `context.set("Said", ${greeting}); return true;` },
          { kind: "end", id: "End" },
        ]);
      const v1 = await publishProcess(platform, "UsrVer", "UsrVersioned", xml("hello()"), { UsrWords: 'export function hello(): string { return "v1"; }' });
      assert.equal(v1, 1);
      assert.equal((await runAndSettle(platform, "UsrVersioned")).parameters.Said, "v1");

      await platform.packages.saveSchema("UsrVer", { name: "UsrWords", kind: "source", body: 'export function hello(): number { return "not a number"; }' });
      const error = await platform.packages.publish("UsrVer").catch((e: unknown) => e);
      assert.ok(error instanceof PackageCompileError);
      assert.equal(error.problems[0]?.schema, "UsrWords");
      assert.equal(error.problems[0]?.line, 1);
      assert.match(error.problems[0]?.message ?? "", /not assignable to type 'number'/);
      assert.equal((await platform.packages.latestVersions()).get("UsrVer"), 1);
      assert.equal((await runAndSettle(platform, "UsrVersioned")).parameters.Said, "v1");

      await platform.packages.saveSchema("UsrVer", { name: "UsrWords", kind: "source", body: 'export function hello(): string { return "v2"; }' });
      assert.deepEqual(await platform.packages.publish("UsrVer"), { version: 2 });
      const after = await runAndSettle(platform, "UsrVersioned");
      assert.equal(after.parameters.Said, "v2");
      assert.equal(after.buildVersion, 2);
    });

    it("a cancel during a running script is final; a process whose task dies is in Error", async () => {
      const platform = await startPlatform(store, { packageRefreshMs: 0 });
      await publishProcess(platform, "UsrCancel", "UsrSlowProcess", processXml("UsrSlowProcess", "Slow", [
        { kind: "script", id: "Slow", body: "await new Promise((r) => setTimeout(r, 300)); return true;" },
        { kind: "end", id: "End" },
      ]));
      const admin = platform.appConnection.systemUserConnection;
      const { instanceId } = await admin.processEngine.processExecutor.execute("UsrSlowProcess");
      await until(async () => (await platform.processEngine.getLog(instanceId, admin))?.elements.some((e) => e.elementId === "Slow"), "the script to start");
      assert.equal(await platform.processEngine.cancel(instanceId, admin), true);
      const log = await platform.processEngine.getLog(instanceId, admin);
      await platform.runtime.waitForTask(log?.taskId ?? "", { timeoutMs: 10_000 });
      const after = await platform.processEngine.getLog(instanceId, admin);
      assert.equal(after?.status, "Canceled");
      assert.deepEqual(after && shape(after), ["Start:Completed", "Slow:Canceled"]);

      const bob = await platform.users.create({ login: "bob", password: "bob-pass" });
      await platform.runtime.worker?.stop({ graceMs: 1_000 });
      const started = await platform.userConnection(bob).processEngine.processExecutor.execute("UsrSlowProcess");
      await platform.users.setActive(bob.id, false);
      platform.runtime.worker?.start();
      const dead = await until(async () => {
        const l = await platform.processEngine.getLog(started.instanceId, admin);
        return l?.status === "Error" ? l : null;
      }, "the instance of a deactivated user to be in Error", 10_000);
      assert.match(dead.errorMessage ?? "", /TaskSecurityError: the user bob who started the task has been deactivated/);
    });

    it("refuses to save a diagram with unsupported elements, listing them", async () => {
      const platform = await startPlatform(store);
      await platform.packages.ensurePackage("UsrBad");
      const xml = processXml("UsrBadProcess", "Bad", [{ kind: "end", id: "End" }]).replace(
        '<bpmn:startEvent id="Start" name="Start"/>',
        '<bpmn:startEvent id="Start" name="Start"/><bpmn:userTask id="Approve" name="Approve"/><bpmn:parallelGateway id="Fork" name="Fork"/>',
      );
      await assert.rejects(platform.packages.saveSchema("UsrBad", { name: "UsrBadProcess", kind: "process", body: xml }), (e: unknown) => {
        const problems = (e as { problems?: string[] }).problems ?? [];
        return problems.some((p) => /bpmn:UserTask "Approve" \(Approve\) is not supported/.test(p)) && problems.some((p) => /bpmn:ParallelGateway "Fork" \(Fork\) is not supported/.test(p));
      });
      assert.deepEqual(await platform.packages.getSchemas("UsrBad"), []);
    });
  });
}
