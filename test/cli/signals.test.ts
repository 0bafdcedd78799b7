/** How the CLI answers SIGINT and SIGTERM: `underway wait` on a terminal, and a worker signalled twice at once. */
import assert from "node:assert/strict";
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Task } from "../../src/index.ts";
import { MarkTask } from "../fixtures/tasks.ts";
import { startRuntime, tempDb, tempDir, until } from "../helpers.ts";

const dir = tempDir();
const root = join(import.meta.dirname, "..", "..");
const cli = join(root, "bin", "underway.mjs");
const env = { ...process.env, UNDERWAY_LOG_LEVEL: "warn", UNDERWAY_DB: "" };

/** util-linux `script`: a command on a pseudo-terminal, as a user at a terminal runs it. */
const hasScript = spawnSync("script", ["--version"], { encoding: "utf8" }).status === 0;

function started(child: ChildProcess): { exited: Promise<number | null>; output: () => string } {
  let output = "";
  child.stdout?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  child.stderr?.on("data", (chunk: Buffer) => (output += chunk.toString()));
  const exited = new Promise<number | null>((resolve) => child.on("exit", (code) => resolve(code)));
  return { exited, output: () => output };
}

/** The pid of a process's one child (the command `script` runs, after exec). */
function childOf(pid: number): number | null {
  try {
    const children = readFileSync(`/proc/${pid}/task/${pid}/children`, "utf8").trim().split(/\s+/).filter(Boolean);
    return children.length === 1 ? Number(children[0]) : null;
  } catch {
    return null;
  }
}

describe("underway CLI: signals", () => {
  it("gives the terminal its cursor and line wrapping back when `underway wait` is interrupted (SIGINT 130, SIGTERM 143)", { skip: !hasScript && "needs util-linux script" }, async () => {
    const db = tempDb(dir);
    const runtime = await startRuntime({ dir, db, worker: false, tasks: [MarkTask] });
    // Queued for an hour: `wait` shows its bar until it is stopped.
    const task = await runtime.run(() => Task.startNew(MarkTask, { file: join(dir, "never.txt") }, { delayMs: 3_600_000 }));
    for (const [signal, code] of [["SIGINT", 130], ["SIGTERM", 143]] as const) {
      // -e: script exits with the command's code; exec: the command is script's own child.
      const child = spawn("script", ["-qfec", `exec "${process.execPath}" "${cli}" wait ${task.id} --db "${db}"`, "/dev/null"], { cwd: root, env });
      const { exited, output } = started(child);
      try {
        await until(() => output().includes("\u001b[?25l") || child.exitCode !== null, "the progress bar to hide the cursor", 30_000);
        assert.ok(output().includes("\u001b[?25l"), `no progress bar:\n${output()}`);
        const pid = await until(() => childOf(child.pid ?? 0), "the wait process");
        process.kill(pid, signal);
        assert.equal(await exited, code, output());
        const after = output().slice(output().lastIndexOf("\u001b[?25l"));
        assert.ok(after.includes("\u001b[?25h"), `${signal}: the cursor stays hidden: ${JSON.stringify(after)}`);
        const wrapOff = output().lastIndexOf("\u001b[?7l");
        assert.ok(wrapOff === -1 || output().lastIndexOf("\u001b[?7h") > wrapOff, `${signal}: line wrapping stays off`);
      } finally {
        if (child.exitCode === null) child.kill("SIGKILL");
      }
    }
  });

  it("takes a signal that comes twice at once (timeout(1) signals the process and its group) as one: running tasks get their grace", async () => {
    const db = tempDb(dir);
    const mark = join(dir, `mark-${Date.now()}.txt`);
    const child = spawn(process.execPath, [cli, "worker", "--db", db, "--tasks", "test/fixtures/tasks.ts", "--isolation", "none", "--grace", "2000"], { cwd: root, env });
    const { exited, output } = started(child);
    try {
      await until(() => /underway worker \S+ running/.test(output()) || child.exitCode !== null, "the worker to run or end", 30_000);
      const runtime = await startRuntime({ dir, db, worker: false, tasks: [MarkTask] });
      const hangs = await runtime.run(() => Task.startNew(MarkTask, { file: mark, hangUntilAttempt: 1 }));
      await until(() => existsSync(mark), "the task to start", 30_000);
      const signalled = Date.now();
      child.kill("SIGTERM");
      await new Promise((resolve) => setTimeout(resolve, 20));
      child.kill("SIGTERM");
      // The graceful stop: the task has its 2 s, is stopped, and is queued again; the exit is 0, not 143.
      assert.equal(await exited, 0, output());
      assert.ok(Date.now() - signalled >= 1_900, `exited after ${Date.now() - signalled} ms, before the grace ended`);
      assert.match(output(), /SIGTERM again within 1 s of the first: taken as the same request/);
      assert.doesNotMatch(output(), /exiting now/);
      assert.equal((await runtime.getTask(hangs.id)).state, "queued", "stopped at the end of its grace and queued again");
    } finally {
      if (child.exitCode === null) child.kill("SIGKILL");
    }
  });
});
