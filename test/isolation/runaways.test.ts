import assert from "node:assert/strict";
import { existsSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { Session } from "node:inspector";
import { join } from "node:path";
import { after, describe, it } from "node:test";
import { createRuntime, Task, type Runtime, type RuntimeConfig } from "../../src/index.ts";
import {
  ExitTask,
  HogTask,
  LedgerTask,
  LoggedSpinTask,
  MostlyShortTask,
  NapTask,
  NeverSettlesTask,
  OverlapTask,
  ParentTask,
  SpinTask,
  SumTask,
  ThrowsLaterTask,
  ThreadOriginTask,
  ThrowsStringTask,
  TrustedLedgerTask,
  WaitsForAbortTask,
} from "../fixtures/isolation-tasks.ts";
import { ended } from "./helpers.ts";
import { TEST_POSTGRES_URL, tempDb, tempDir, tempSchema, until } from "../helpers.ts";

const FIXTURES = new URL("../fixtures/isolation-tasks.ts", import.meta.url);

const STORES = ["sqlite", "postgres"] as const;

/** Runtimes the late-join test tries before it fails (see its comment). */
const LATE_JOIN_TRIES = 3;

/**
 * PostgreSQL schemas for the tests, made at suite level so they are dropped after every test's
 * runtime has stopped (hooks of one test run first in, first out).
 */
const schemas: string[] = [];
function schemasForSuite(count: number): void {
  for (let i = 0; i < count; i++) schemas.push(tempSchema());
}

async function isolatedRuntime(store: (typeof STORES)[number], extra: Partial<RuntimeConfig> = {}): Promise<{ runtime: Runtime; dir: string }> {
  const dir = tempDir();
  const schema = store === "postgres" ? schemas.shift() : undefined;
  if (store === "postgres" && !schema) throw new Error("more stores than the suite made schemas for");
  const db = store === "sqlite" ? tempDb(dir) : `${TEST_POSTGRES_URL}?schema=${schema}`;
  const runtime = createRuntime({
    db,
    logger: false,
    tasks: [FIXTURES],
    worker: { concurrency: 8 },
    isolation: { mode: "thread", abortGraceMs: 200 },
    ...extra,
  });
  await runtime.start();
  after(() => runtime.stop({ graceMs: 0 }));
  return { runtime, dir };
}

function ledger(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").trim().split("\n").filter(Boolean) : [];
}

for (const store of STORES) {
  describe(`isolated tasks (${store})`, () => {
    if (store === "postgres") schemasForSuite(17 + LATE_JOIN_TRIES - 1);
    it("stops each kind of runaway at its limit with its reason, while ordinary tasks all complete", async () => {
      const { runtime, dir } = await isolatedRuntime(store);
      const file = join(dir, "ledger.txt");
      const once = { maxAttempts: 1 };
      const runaways = await runtime.run(async () => ({
        spin: await Task.startNew(SpinTask, null, { ...once, timeoutMs: 300 }),
        never: await Task.startNew(NeverSettlesTask, null, { ...once, timeoutMs: 300 }),
        exit: await Task.startNew(ExitTask, { code: 3 }, once),
        hog: await Task.startNew(HogTask, null, once),
        string: await Task.startNew(ThrowsStringTask, null, once),
        later: await Task.startNew(ThrowsLaterTask, null, once),
      }));
      const ordinary = await runtime.run(() => Task.startNewMany(LedgerTask, Array.from({ length: 150 }, (_, n) => ({ file, n }))));

      for (const handle of ordinary) assert.equal((await ended(runtime, handle.id)).state, "succeeded");
      const reasons = Object.fromEntries(
        await Promise.all(
          Object.entries(runaways).map(async ([kind, handle]) => {
            const task = await ended(runtime, handle.id);
            assert.equal(task.state, "dead", `${kind} should be dead`);
            return [kind, task.lastError] as const;
          }),
        ),
      );
      assert.equal(reasons.spin?.name, "TaskTimeoutError");
      assert.equal(reasons.never?.name, "TaskTimeoutError");
      assert.equal(reasons.exit?.name, "TaskExitedError");
      assert.match(reasons.exit?.message ?? "", /process\.exit\(3\)/);
      assert.equal(reasons.hog?.name, "TaskMemoryLimitError");
      assert.match(reasons.hog?.message ?? "", /48 MB/);
      assert.equal(reasons.string?.name, "NonErrorThrown");
      assert.match(reasons.string?.message ?? "", /a plain string, not an Error/);
      assert.equal(reasons.later?.name, "TaskExitedError");
      assert.match(reasons.later?.message ?? "", /RangeError: thrown in a timer/);

      const lines = ledger(file);
      assert.equal(lines.length, 150);
      assert.equal(new Set(lines.map((l) => l.split(":")[0])).size, 150, "each ordinary task ran exactly once");
      assert.ok(lines.every((l) => l.split(":")[2] !== "0"), "ordinary tasks ran in worker threads");

      // The worker lives on: a task started now runs.
      const [again] = await runtime.run(() => Task.startNewMany(LedgerTask, [{ file, n: 1_000 }]));
      assert.equal((await ended(runtime, again!.id)).state, "succeeded");
    });

    it("cancels a queued task before it runs, and running ones: a cooperative one by its signal, a blocked one by force", async () => {
      const { runtime, dir } = await isolatedRuntime(store);
      const queuedFile = join(dir, "queued.txt");
      const queued = await runtime.run(() => Task.startNew(WaitsForAbortTask, { file: queuedFile }, { delayMs: 60_000 }));
      assert.equal(await runtime.cancelTask(queued.id), true);
      assert.equal((await runtime.getTask(queued.id)).state, "canceled");

      const coopFile = join(dir, "coop.txt");
      const coop = await runtime.run(() => Task.startNew(WaitsForAbortTask, { file: coopFile }));
      await until(() => ledger(coopFile).includes("started"), "the cooperative task to start");
      assert.equal(await runtime.cancelTask(coop.id), true);
      await until(() => ledger(coopFile).includes("aborted:TaskCanceledError"), "the task's signal to abort with the cancel");

      const spin = await runtime.run(() => Task.startNew(SpinTask, null, { timeoutMs: 0 }));
      await until(async () => (await runtime.getTask(spin.id)).state === "running", "the spinning task to start");
      assert.equal(await runtime.cancelTask(spin.id), true);
      assert.equal((await runtime.getTask(spin.id)).state, "canceled");

      // The queued one never ran; every slot is free again: concurrency-many tasks run at once.
      await clockShiftPastDelay(runtime);
      const file = join(dir, "after.txt");
      const next = await runtime.run(() => Task.startNewMany(LedgerTask, Array.from({ length: 8 }, (_, n) => ({ file, n }))));
      for (const h of next) assert.equal((await ended(runtime, h.id)).state, "succeeded");
      assert.equal(existsSync(queuedFile), false);
      assert.equal((await runtime.getTask(queued.id)).state, "canceled");
      assert.equal((await runtime.getTask(coop.id)).state, "canceled");
    });

    it("gives a task in a thread the runtime: it starts tasks, reports progress, and logs through the worker", async () => {
      const lines: { bindings: Record<string, unknown>; message: string }[] = [];
      const capture = (bindings: Record<string, unknown>): RuntimeConfig["logger"] => {
        const at = (o: object | string, m?: string): void => {
          if (typeof o === "string") lines.push({ bindings, message: o });
          else lines.push({ bindings: { ...bindings, ...o }, message: m ?? "" });
        };
        return { debug: at, info: at, warn: at, error: at, child: (more) => capture({ ...bindings, ...more }) as never };
      };
      const { runtime, dir } = await isolatedRuntime(store, { logger: capture({}) });
      const file = join(dir, "parent.txt");
      const parent = await runtime.run(() => Task.startNew(ParentTask, { file }));
      assert.equal((await ended(runtime, parent.id)).state, "succeeded");
      const childLine = ledger(file).find((l) => l.startsWith("child:"));
      assert.ok(childLine, "the parent started a child");
      const childId = childLine.slice("child:".length);
      assert.equal((await ended(runtime, childId)).state, "succeeded");
      const logged = lines.find((l) => l.message === "starting a child task");
      assert.ok(logged, "the task's log line reached the worker's logger");
      assert.equal(logged.bindings.taskId, parent.id);
      assert.equal(logged.bindings.task, "ParentTask");
      assert.equal(logged.bindings.step, "child");
      // The child was stored by this process, through the store lent to the parent's thread.
      const { body } = await runtime.metrics.render();
      assert.match(body, /^underway_tasks_enqueued_total\{task="ParentTask"\} 1$/m);
      assert.match(body, /^underway_tasks_enqueued_total\{task="LedgerTask"\} 1$/m);
    });

    it("lowers the OS priority of a thread that runs synchronously, so it does not take the cores", { skip: process.platform !== "linux" }, async () => {
      const { runtime } = await isolatedRuntime(store);
      const niceOfThreads = (): number[] =>
        readdirSync("/proc/self/task").flatMap((tid) => {
          try {
            const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
            // Fields after the command's closing parenthesis; nice is the 19th field of the line.
            return [Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[16])];
          } catch {
            return []; // the thread ended meanwhile
          }
        });
      const before = niceOfThreads().filter((n) => n === 19).length;
      const spin = await runtime.run(() => Task.startNew(SpinTask, null, { timeoutMs: 0 }));
      await until(() => niceOfThreads().filter((n) => n === 19).length > before, "the spinning thread's priority to drop", 15_000);
      assert.equal(await runtime.cancelTask(spin.id), true);
      await until(() => niceOfThreads().filter((n) => n === 19).length === before, "the spinning thread to be stopped", 15_000);
    });

    it("pauses a thread that runs synchronously while other tasks work, and lets it run when none do", { skip: process.platform !== "linux" }, async () => {
      const { runtime } = await isolatedRuntime(store);
      // A thread's scheduler state: R running or runnable (a spinning thread, even one the OS
      // gives no core to), S sleeping (a paused one waits on a futex); its CPU time.
      const threadStats = (): { tid: string; nice: number; state: string; cpuMs: number }[] =>
        readdirSync("/proc/self/task").flatMap((tid) => {
          try {
            const stat = readFileSync(`/proc/self/task/${tid}/stat`, "utf8");
            const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
            // utime and stime in clock ticks (100 per second on Linux).
            return [{ tid, nice: Number(fields[16]), state: fields[0]!, cpuMs: (Number(fields[11]) + Number(fields[12])) * 10 }];
          } catch {
            return [];
          }
        });
      const niced = new Set(threadStats().filter((t) => t.nice === 19).map((t) => t.tid));
      const spin = await runtime.run(() => Task.startNew(SpinTask, null, { timeoutMs: 0 }));
      let spinner = "";
      await until(() => {
        spinner = threadStats().find((t) => t.nice === 19 && !niced.has(t.tid))?.tid ?? "";
        return spinner !== "";
      }, "the spinning thread to be found out");
      /** Over a second, 20 looks: how often the spinning thread was asleep, and the CPU it used. */
      const watch = async (): Promise<{ asleep: number; cpuMs: number }> => {
        const cpu = (): number => threadStats().find((t) => t.tid === spinner)?.cpuMs ?? NaN;
        const from = cpu();
        let asleep = 0;
        for (let i = 0; i < 20; i++) {
          await new Promise((resolve) => setTimeout(resolve, 50));
          if (threadStats().find((t) => t.tid === spinner)?.state === "S") asleep++;
        }
        return { asleep, cpuMs: cpu() - from };
      };

      // Alone, it is never held (how much CPU it gets is the OS's matter: others may load the machine).
      await new Promise((resolve) => setTimeout(resolve, 250));
      assert.equal((await watch()).asleep, 0, "alone, the spinning thread was found asleep");

      // Another task at work (one that awaits, using no CPU, so the core is free): the spinning
      // one is paused but for slices, and uses little of the second.
      const nap = await runtime.run(() => Task.startNew(NapTask, { ms: 2_500 }));
      await new Promise((resolve) => setTimeout(resolve, 250));
      const beside = await watch();
      assert.ok(beside.cpuMs <= 250, `beside a working task, the spinning thread used ${beside.cpuMs} ms of CPU in a second`);
      assert.equal((await ended(runtime, nap.id)).state, "succeeded");

      // A paused thread is still stopped at once.
      assert.equal(await runtime.cancelTask(spin.id), true);
      assert.equal((await ended(runtime, spin.id)).state, "canceled");
      await until(() => !threadStats().some((t) => t.tid === spinner), "the spinning thread to be stopped");
    });

    it("stops counting a run blocked in its thread for a second against the concurrency: another task runs meanwhile", async () => {
      const { runtime, dir } = await isolatedRuntime(store, { worker: { concurrency: 1 } });
      const spin = await runtime.run(() => Task.startNew(SpinTask, null, { timeoutMs: 0 }));
      await until(async () => (await runtime.getTask(spin.id)).state === "running", "the spinning task to start");
      const file = join(dir, "beside.txt");
      const [beside] = await runtime.run(() => Task.startNewMany(LedgerTask, [{ file, n: 1 }]));
      assert.equal((await ended(runtime, beside!.id)).state, "succeeded");
      assert.equal((await runtime.getTask(spin.id)).state, "running", "the spinning task still runs");
      assert.equal(await runtime.cancelTask(spin.id), true);
      assert.equal((await ended(runtime, spin.id)).state, "canceled");
    });

    it("shares threads among attempts of a short class; one that blocks a shared thread is stopped alone, the others run again", async () => {
      const { runtime, dir } = await isolatedRuntime(store, { worker: { concurrency: 8 } });
      const file = join(dir, "shared.txt");
      // Proven short: these make the class share threads.
      const warm = await runtime.run(() => Task.startNewMany(MostlyShortTask, Array.from({ length: 24 }, (_, n) => ({ file, n, waitMs: 0, spin: false }))));
      for (const h of warm) assert.equal((await ended(runtime, h.id)).state, "succeeded");
      const warmThreads = new Set(ledger(file).map((line) => line.split(":")[2]));

      // Five that wait a while beside one that spins, on a shared thread.
      const waiting = await runtime.run(() =>
        Task.startNewMany(MostlyShortTask, Array.from({ length: 5 }, (_, i) => ({ file, n: 100 + i, waitMs: 1_500, spin: false }))),
      );
      const spinner = await runtime.run(() => Task.startNew(MostlyShortTask, { file, n: 999, waitMs: 0, spin: true }, { timeoutMs: 4_000, maxAttempts: 1 }));
      for (const h of waiting) {
        const task = await ended(runtime, h.id);
        assert.equal(task.state, "succeeded");
        assert.equal(task.attempt, 1, "handed back, not counted as a failed attempt");
      }
      const spun = await ended(runtime, spinner.id);
      assert.equal(spun.state, "dead");
      assert.equal(spun.lastError?.name, "TaskTimeoutError");
      const waited = ledger(file).filter((line) => Number(line.split(":")[0]) >= 100);
      assert.equal(new Set(waited.map((line) => line.split(":")[0])).size, 5, "each of the five recorded itself");
      assert.ok(warmThreads.size < 24, `the short attempts shared threads (${warmThreads.size} threads for 24)`);
    });

    it("lets attempts that wait for a thread join the one their class shares, once the class proves short", async () => {
      const { runtime, dir } = await isolatedRuntime(store, { worker: { concurrency: 10 } });
      const file = join(dir, "burst.txt");
      // All queued at once on a fresh pool: eight quick ones teach the pool the class is short,
      // while the ten after them (each waits 300 ms) wait for a thread.
      const params = Array.from({ length: 18 }, (_, n) => ({ file, n, waitMs: n < 8 ? 0 : 300, spin: false }));
      const handles = await runtime.run(() => Task.startNewMany(MostlyShortTask, params));
      for (const h of handles) assert.equal((await ended(runtime, h.id)).state, "succeeded");
      assert.equal(ledger(file).length, 18);
      const threads = new Set(ledger(file).map((line) => line.split(":")[2]));
      // Two threads when the quick runs measure short (under 2 ms) from the start. On a loaded
      // machine they may measure longer at first, and attempts that waited 20 ms then boot one
      // more pair (the pool's boot concurrency) before the class proves short. A waiter that got a
      // thread of its own instead of joining would take up to ten.
      assert.ok(threads.size <= 4, `18 attempts of a short class ran on ${threads.size} threads`);
    });

    it("lets a thread whose attempt was placed alone take attempts of its class beside it once the class proves short", async () => {
      // On a loaded machine the long attempt's thread may answer a ping late and be taken for
      // blocked (its priority lowered, it then takes no company): a fresh runtime tries again.
      const missed: string[] = [];
      for (let round = 0; round < LATE_JOIN_TRIES; round++) {
        const outcome = await lateJoinsLong(store);
        if (outcome === null) return;
        missed.push(outcome);
      }
      assert.fail(`in ${LATE_JOIN_TRIES} runtimes, the late attempt never joined the long one's thread: ${missed.join("; ")}`);
    });

    it("frees the slots of attempts that wait behind an attempt of their class that blocks its thread", async () => {
      const { runtime, dir } = await isolatedRuntime(store, { worker: { concurrency: 4 } });
      const spins = await runtime.run(() => Task.startNewMany(SpinTask, [null, null, null, null], { timeoutMs: 0 }));
      await until(async () => (await runtime.getTask(spins[0]!.id)).state === "running", "the spinning tasks to start");
      const file = join(dir, "overlap.txt");
      const naps = await runtime.run(() => Task.startNewMany(OverlapTask, Array.from({ length: 8 }, (_, n) => ({ file, n, waitMs: 1_000 }))));
      for (const h of naps) assert.equal((await ended(runtime, h.id)).state, "succeeded");
      // The most naps that ran at once: with the waiting spinners holding three slots, one.
      const events = ledger(file).map((line) => line.split(":")).map(([kind, , at]) => ({ kind, at: Number(at) }));
      let running = 0;
      let most = 0;
      for (const e of events.sort((a, b) => a.at - b.at || (a.kind === "end" ? -1 : 1))) {
        running += e.kind === "start" ? 1 : -1;
        most = Math.max(most, running);
      }
      assert.ok(most >= 3, `at most ${most} of the short tasks ran at once beside the spinning ones`);
      for (const s of spins) assert.equal(await runtime.cancelTask(s.id), true);
      for (const s of spins) assert.equal((await ended(runtime, s.id)).state, "canceled");
    });

    it("keeps two threads booted: while a task spins on one, the next runs on the other without waiting for a boot", async () => {
      const { runtime } = await isolatedRuntime(store);
      const startedBy = Date.now();
      const spin = await runtime.run(() => Task.startNew(SpinTask, null, { timeoutMs: 0 }));
      await until(async () => (await runtime.getTask(spin.id)).state === "running", "the spinning task to start");
      const next = await runtime.run(() => Task.startNew(ThreadOriginTask, null));
      const origin = (await next.result({ timeoutMs: 10_000 })) as number;
      assert.ok(origin <= startedBy, `the next task ran on a thread booted ${origin - startedBy} ms after the runtime started`);
      assert.equal(await runtime.cancelTask(spin.id), true);
      assert.equal((await ended(runtime, spin.id)).state, "canceled");
    });

    it("holds back a second attempt of a class that blocks its thread while short tasks come and go", async () => {
      const { runtime, dir } = await isolatedRuntime(store);
      const file = join(dir, "waves.txt");
      const spins = await runtime.run(() => Task.startNewMany(LoggedSpinTask, [1, 2].map((n) => ({ file, n })), { timeoutMs: 0 }));
      await until(() => ledger(file).some((line) => line.startsWith("spin:")), "a spinning task to start");
      // Waves of short tasks for two seconds, with a moment between them in which their thread
      // is empty (the spinner blocks its thread for well over a second meanwhile).
      const until2s = Date.now() + 2_000;
      for (let wave = 0; Date.now() < until2s; wave++) {
        const handles = await runtime.run(() => Task.startNewMany(LedgerTask, Array.from({ length: 5 }, (_, i) => ({ file, n: wave * 5 + i }))));
        for (const h of handles) assert.equal((await ended(runtime, h.id)).state, "succeeded");
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
      const wavesEnded = Date.now();
      const spun = (): number[] => ledger(file).filter((line) => line.startsWith("spin:")).map((line) => Number(line.split(":")[2]));
      assert.equal(spun().length, 1, "the second spinning task started while the short tasks came and went");
      // With nothing else to do, it runs.
      await until(() => spun().length === 2, "the second spinning task to start once the others stopped");
      assert.ok(spun()[1]! >= wavesEnded);
      for (const s of spins) assert.equal(await runtime.cancelTask(s.id), true);
      for (const s of spins) assert.equal((await ended(runtime, s.id)).state, "canceled");
    });

    it("stores the result a task returns in its thread", async () => {
      const { runtime } = await isolatedRuntime(store);
      const handle = await runtime.run(() => Task.startNew(SumTask, { values: [20, 22] }));
      assert.deepEqual(await handle.result({ timeoutMs: 10_000 }), { total: 42 });
    });

    it("runs a class marked isolation none on the worker's event loop", async () => {
      const { runtime, dir } = await isolatedRuntime(store);
      const file = join(dir, "trusted.txt");
      const [handle] = await runtime.run(() => Task.startNewMany(TrustedLedgerTask, [{ file, n: 1 }]));
      assert.equal((await ended(runtime, handle!.id)).state, "succeeded");
      assert.equal(ledger(file)[0]?.split(":")[2], "0");
    });
  });
}

describe("isolation without a known module", () => {
  it("fails the attempt with directions when a class given directly has no module", async () => {
    const { runtime } = await isolatedRuntime("sqlite", { tasks: [] });
    class Inline {
      run(): void {}
    }
    const handle = await runtime.run(() => Task.startNew(Inline, null, { maxAttempts: 1 }));
    const task = await ended(runtime, handle.id);
    assert.equal(task.state, "dead");
    assert.match(task.lastError?.message ?? "", /cannot run isolated: its module is unknown.*taskModule = import\.meta\.url/);
  });
});

describe("the inspector session that pauses threads", () => {
  it("is connected once a thread is paused, and ends when the runtime stops", async () => {
    // The pauser's sessions, counted through the inspector's own Session class.
    const proto = Session.prototype as { connect(): void; disconnect(): void };
    const { connect, disconnect } = proto;
    let live = 0;
    proto.connect = function (this: Session) {
      connect.call(this);
      live++;
    };
    proto.disconnect = function (this: Session) {
      disconnect.call(this);
      live--;
    };
    after(() => Object.assign(proto, { connect, disconnect }));

    const dir = tempDir();
    const runtime = createRuntime({ db: tempDb(dir), logger: false, tasks: [FIXTURES], worker: { concurrency: 4 }, isolation: { mode: "thread" } });
    await runtime.start();
    const spin = await runtime.run(() => Task.startNew(SpinTask, null, { timeoutMs: 0 }));
    // Another task at work: the spinning thread is paused, through a session of the inspector.
    await runtime.run(() => Task.startNew(NapTask, { ms: 5_000 }));
    await until(() => live === 1, "the pauser to connect to the inspector", 10_000);
    assert.equal((await runtime.getTask(spin.id)).state, "running");
    await runtime.stop({ graceMs: 0 });
    assert.equal(live, 0, "the session outlived the runtime");
  });
});

/**
 * A long attempt placed while its class is new, eight quick ones proving the class short, then a
 * late one: null when the late one ran beside the long one, on its thread; else where it ran.
 */
async function lateJoinsLong(store: (typeof STORES)[number]): Promise<string | null> {
  const { runtime, dir } = await isolatedRuntime(store, { worker: { concurrency: 4 } });
  const file = join(dir, "proven.txt");
  const gate = join(dir, "late-ended");
  const task = (n: number, waitMs: number) => ({ file, n, waitMs, spin: false });
  // Placed while the class is new: a thread to itself. It runs until the late one has ended (a
  // fixed time could pass first on a loaded machine, before the quick runs below are done).
  const [long] = await runtime.run(() => Task.startNewMany(MostlyShortTask, [{ ...task(0, 20_000), gate }]));
  await until(async () => (await runtime.getTask(long!.id)).state === "running", "the long attempt to start");
  // Eight quick runs, one after another, prove the class short.
  for (let n = 1; n <= 8; n++) {
    const [h] = await runtime.run(() => Task.startNewMany(MostlyShortTask, [task(n, 0)]));
    assert.equal((await ended(runtime, h!.id)).state, "succeeded");
  }
  const [late] = await runtime.run(() => Task.startNewMany(MostlyShortTask, [task(9, 100)]));
  assert.equal((await ended(runtime, late!.id)).state, "succeeded");
  writeFileSync(gate, "");
  assert.equal((await ended(runtime, long!.id)).state, "succeeded");
  await runtime.stop({ graceMs: 0 });
  const threadOf = (n: number): string | undefined => ledger(file).find((line) => line.startsWith(`${n}:`))?.split(":")[2];
  // The late one ended (its line first) while the long one still ran, on the long one's thread.
  assert.equal(ledger(file).at(-1)?.split(":")[0], "0");
  return threadOf(9) === threadOf(0) ? null : `thread ${threadOf(9)}, the long one on ${threadOf(0)}`;
}

async function clockShiftPastDelay(runtime: Runtime): Promise<void> {
  runtime.driver.clockShift(120_000);
  await Promise.resolve();
}
