import assert from "node:assert/strict";
import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Task, type IBackgroundTask } from "../../src/index.ts";
import { MarkTask, TouchTask } from "../fixtures/tasks.ts";
import { startRuntime, tempDb, tempDir, until } from "../helpers.ts";

const dir = tempDir();
const root = join(import.meta.dirname, "..", "..");

function cli(args: string[]): ChildProcess {
  return spawn(process.execPath, [join(root, "bin", "underway.mjs"), ...args], {
    cwd: root,
    env: { ...process.env, UNDERWAY_LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "pipe"],
  });
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((resolve) => child.once("exit", (code, signal) => resolve({ code, signal })));
}

function attemptsIn(file: string): string[] {
  return existsSync(file) ? readFileSync(file, "utf8").split("\n").filter(Boolean) : [];
}

class Quick implements IBackgroundTask<null> {
  async run(): Promise<void> {
    await new Promise((r) => setTimeout(r, 30));
  }
}

describe("transactions", () => {
  it("a task started in a rolled-back transaction never exists; committed ones run", async () => {
    const runtime = await startRuntime({ dir, tasks: [Quick] });
    await runtime.transaction(async (tx) => {
      await tx.execute("CREATE TABLE IF NOT EXISTS orders (id INTEGER PRIMARY KEY, title TEXT)");
    });
    await assert.rejects(
      runtime.transaction(async (tx) => {
        await tx.execute("INSERT INTO orders (title) VALUES (?)", ["rolled back"]);
        await Task.startNew(Quick, null);
        throw new Error("the order is invalid");
      }),
      /the order is invalid/,
    );
    assert.deepEqual((await runtime.listTasks()).items, []);
    const id = await runtime.transaction(async (tx) => {
      await tx.execute("INSERT INTO orders (title) VALUES (?)", ["kept"]);
      return (await Task.startNew(Quick, null)).id;
    });
    assert.equal((await runtime.waitForTask(id, { timeoutMs: 5_000 })).state, "succeeded");
    const rows = await runtime.transaction((tx) => tx.execute("SELECT title FROM orders"));
    assert.deepEqual(rows, [{ title: "kept" }]);
  });
});

describe("graceful shutdown", () => {
  it("lets a running task finish within the grace period", async () => {
    const runtime = await startRuntime({ dir, tasks: [Quick] });
    const handle = await runtime.run(() => Task.startNew(Quick, null));
    await until(() => runtime.worker?.activeCount === 1, "the task to start");
    await runtime.stop({ graceMs: 5_000 });
    const reopened = await startRuntime({ dir, db: runtime.driver.description, worker: false });
    assert.equal((await reopened.getTask(handle.id)).state, "succeeded");
  });

  it("queues an interrupted task again without spending an attempt", async () => {
    const file = join(dir, "interrupted.txt");
    const runtime = await startRuntime({ dir, tasks: [MarkTask] });
    const handle = await runtime.run(() => Task.startNew(MarkTask, { file, hangUntilAttempt: 1 }));
    await until(() => attemptsIn(file).length === 1, "the task to start");
    await runtime.stop({ graceMs: 20 });
    const reopened = await startRuntime({ dir, db: runtime.driver.description, worker: false });
    const task = await reopened.getTask(handle.id);
    assert.equal(task.state, "queued");
    assert.equal(task.attempt, 0);
    assert.equal(task.errors.length, 0);
  });

  it("stops a CLI worker on SIGTERM and queues its unfinished task again", async () => {
    const db = tempDb(dir);
    const file = join(dir, "sigterm.txt");
    const producer = await startRuntime({ dir, db, worker: false, tasks: [MarkTask] });
    const handle = await producer.run(() => Task.startNew(MarkTask, { file, hangUntilAttempt: 5 }));
    const child = cli(["worker", "--db", db, "--tasks", "test/fixtures/tasks.ts", "--grace", "50"]);
    const exit = exited(child);
    await until(() => attemptsIn(file).length === 1, "the worker process to start the task", 20_000);
    child.kill("SIGTERM");
    assert.deepEqual(await exit, { code: 0, signal: null });
    const task = await producer.getTask(handle.id);
    assert.equal(task.state, "queued");
    assert.equal(task.attempt, 0);
    assert.equal(task.workerId, null);
  });
});

describe("crash recovery", () => {
  it("a task whose worker process was SIGKILLed completes in another process", async () => {
    const db = tempDb(dir);
    const file = join(dir, "killed.txt");
    const producer = await startRuntime({ dir, db, worker: false, maintenance: false, tasks: [MarkTask] });
    const handle = await producer.run(() => Task.startNew(MarkTask, { file, hangUntilAttempt: 1 }));
    const child = cli(["worker", "--db", db, "--tasks", "test/fixtures/tasks.ts"]);
    const exit = exited(child);
    await until(() => attemptsIn(file).length === 1, "the worker process to start the task", 20_000);
    child.kill("SIGKILL");
    assert.equal((await exit).signal, "SIGKILL");
    const running = await producer.getTask(handle.id);
    assert.equal(running.state, "running");
    assert.match(running.workerId ?? "", new RegExp(`:${child.pid}:`));

    const rescuer = await startRuntime({ dir, db, tasks: [MarkTask], maintenance: { rescueIntervalMs: 3_600_000 } });
    // The lease (15 s by default) has not passed: nothing to rescue yet.
    assert.deepEqual(await rescuer.rescuer?.runOnce(), { retried: 0, dead: 0 });
    rescuer.driver.clockShift(15_001);
    assert.deepEqual(await rescuer.rescuer?.runOnce(), { retried: 1, dead: 0 });
    const done = await rescuer.waitForTask(handle.id, { timeoutMs: 5_000 });
    assert.equal(done.attempt, 2);
    assert.equal(done.errors[0]?.name, "LeaseExpiredError");
    assert.deepEqual(
      attemptsIn(file).map((l) => l.split(":").slice(0, 2).join(":")),
      ["attempt:1", "attempt:2"],
    );
    assert.equal(attemptsIn(file)[1], `attempt:2:${process.pid}`);
  });
});

describe("pickup without polling", () => {
  it("runs a task started in the same process at once", async () => {
    const runtime = await startRuntime({ dir, tasks: [Quick], worker: { pollIntervalMs: 600_000 } });
    const handle = await runtime.run(() => Task.startNew(Quick, null));
    assert.equal((await handle.wait({ timeoutMs: 3_000 })).state, "succeeded");
  });

  it("wakes on a task stored by another process", async () => {
    const db = tempDb(dir);
    const file = join(dir, "woken.txt");
    const runtime = await startRuntime({ dir, db, tasks: [TouchTask], worker: { pollIntervalMs: 600_000 } });
    const child = spawn(process.execPath, ["--import", "tsx", join(root, "test/fixtures/enqueue.ts"), db, file], {
      cwd: root,
      stdio: ["ignore", "pipe", "inherit"],
    });
    let out = "";
    child.stdout?.on("data", (chunk: Buffer) => (out += chunk.toString()));
    assert.equal((await exited(child)).code, 0);
    const id = out.trim();
    assert.equal((await runtime.waitForTask(id, { timeoutMs: 3_000 })).state, "succeeded");
    assert.equal(readFileSync(file, "utf8"), String(process.pid));
  });
});
