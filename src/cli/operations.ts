/** Commands of issue #9: `underway stats`, `underway schedules list|pause|resume`, `underway dead list|requeue`. */
import { InvalidArgumentError, Option, type Command } from "commander";
import Table from "cli-table3";
import type { Runtime } from "../runtime/runtime.ts";
import { TASK_STATES, type TaskState } from "../tasks/types.ts";
import { dbWord, intOption, nextPageHint, nonEmpty, printable, tasksTable, time } from "./format.ts";

interface CommonOptions {
  db: string;
}

interface Wiring {
  /** The --db option, as the other commands have it. */
  readonly dbOption: () => Option;
  /** Opens the store without a worker and without maintenance. */
  readonly inspect: (options: CommonOptions) => Promise<Runtime>;
}

const table = (head: string[]): Table.Table => new Table({ head, style: { head: [], border: [] } });

async function withRuntime(wiring: Wiring, options: CommonOptions, fn: (runtime: Runtime) => Promise<void>): Promise<void> {
  const runtime = await wiring.inspect(options);
  try {
    await fn(runtime);
  } finally {
    await runtime.stop();
  }
}

export function addOperationCommands(program: Command, wiring: Wiring): void {
  program
    .command("stats")
    .description("tasks per state and type, and tasks ended per minute recently")
    .addOption(wiring.dbOption())
    .addOption(new Option("--minutes <n>", "how many recent minutes of throughput").default(15).argParser(intOption(1, 1440, "whole minutes")))
    .option("--json", "print JSON")
    .action((options: CommonOptions & { minutes: number; json?: boolean }) =>
      withRuntime(wiring, options, async (runtime) => {
        const stats = await runtime.taskStats({ windowMs: options.minutes * 60_000 });
        if (options.json) {
          console.log(JSON.stringify(stats, null, 2));
          return;
        }
        const totals = Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>;
        const byName = new Map<string, Record<TaskState, number>>();
        for (const c of stats.counts) {
          totals[c.state] += c.count;
          const row = byName.get(c.name) ?? (Object.fromEntries(TASK_STATES.map((s) => [s, 0])) as Record<TaskState, number>);
          row[c.state] += c.count;
          byName.set(c.name, row);
        }
        const states = table(["type", ...TASK_STATES]);
        for (const [name, row] of byName) states.push([printable(name), ...TASK_STATES.map((s) => String(row[s]))]);
        states.push(["(all)", ...TASK_STATES.map((s) => String(totals[s]))]);
        console.log(states.toString());
        // Every minute of the window, the empty ones too, so a stall shows.
        const ended = ["succeeded", "dead", "canceled"] as const;
        const first = Math.floor(stats.now / 60_000) * 60_000 - (options.minutes - 1) * 60_000;
        const perMinute = table(["minute", ...ended, "total"]);
        let all = 0;
        for (let m = first; m <= stats.now; m += 60_000) {
          const counts = ended.map((s) => stats.ended.filter((e) => e.minute === m && e.state === s).reduce((n, e) => n + e.count, 0));
          const total = counts.reduce((a, b) => a + b, 0);
          all += total;
          perMinute.push([time(new Date(m)).slice(0, 16) + "Z", ...counts.map(String), String(total)]);
        }
        console.log(`tasks ended per minute, last ${options.minutes} min (${(all / options.minutes).toFixed(1)}/min on average):`);
        console.log(perMinute.toString());
      }),
    );

  const schedules = program.command("schedules").description("recurring tasks: list, pause, resume");
  schedules
    .command("list")
    .description("list the schedules")
    .addOption(wiring.dbOption())
    .option("--json", "print JSON")
    .action((options: CommonOptions & { json?: boolean }) =>
      withRuntime(wiring, options, async (runtime) => {
        const list = await runtime.listSchedules();
        if (options.json) {
          console.log(JSON.stringify(list, null, 2));
          return;
        }
        if (list.length === 0) {
          console.log("no schedules");
          return;
        }
        const t = table(["name", "cron", "time zone", "task", "missed", "state", "next run", "last tick", "last task"]);
        for (const s of list) {
          t.push([printable(s.name), printable(s.cron), printable(s.timeZone), printable(s.taskName), s.missed, s.paused ? "paused" : "active", time(s.nextRunAt), time(s.lastTick), s.lastTaskId ?? ""]);
        }
        console.log(t.toString());
      }),
    );
  for (const [verb, description] of [
    ["pause", "stop firing a schedule (its ticks meanwhile are not made up for)"],
    ["resume", "fire a paused schedule again, from its next tick"],
  ] as const) {
    schedules
      .command(`${verb} <name>`)
      .description(description)
      .addOption(wiring.dbOption())
      .action((name: string, options: CommonOptions) =>
        withRuntime(wiring, options, async (runtime) => {
          let changed: boolean;
          if (verb === "pause") {
            // pauseSchedule does not say whether it was paused already: its state, as it was, does.
            const before = (await runtime.listSchedules()).find((x) => x.name === name);
            await runtime.pauseSchedule(name);
            changed = before?.paused !== true;
          } else {
            changed = await runtime.resumeSchedule(name);
          }
          const s = (await runtime.listSchedules()).find((x) => x.name === name);
          const next = `next run ${time(s?.nextRunAt ?? null)}`;
          const said = verb === "pause" ? (changed ? "paused" : "is already paused: nothing changed") : changed ? `resumed; ${next}` : `is not paused: nothing changed; ${next}`;
          console.log(`schedule ${printable(name)} ${said}`);
        }),
      );
  }

  const dead = program.command("dead").description("dead letters: tasks that failed for good");
  dead
    .command("list")
    .description("list dead tasks, newest first")
    .addOption(wiring.dbOption())
    .option("--name <name>", "task name", nonEmpty)
    .option("--queue <queue>", "queue", nonEmpty)
    .addOption(new Option("--limit <n>", "page size").default(50).argParser(intOption(1)))
    .option("--before <id>", "list dead tasks with an id below this (next page)", nonEmpty)
    .option("--json", "print JSON")
    .action((options: CommonOptions & { name?: string; queue?: string; limit: number; before?: string; json?: boolean }, command: Command) =>
      withRuntime(wiring, options, async (runtime) => {
        const page = await runtime.listTasks({
          states: ["dead"],
          limit: options.limit,
          ...(options.name !== undefined ? { name: options.name } : {}),
          ...(options.queue !== undefined ? { queue: options.queue } : {}),
          ...(options.before !== undefined ? { beforeId: options.before } : {}),
        });
        if (options.json) console.log(JSON.stringify(page, null, 2));
        else {
          console.log(page.items.length ? tasksTable(page.items) : "no dead tasks");
          if (page.nextBeforeId) {
            const filters = [["--name", options.name], ["--queue", options.queue], ["--limit", options.limit === 50 ? undefined : options.limit]] as const;
            console.log(nextPageHint("dead list", [...dbWord(command, options.db), ...filters], page.nextBeforeId));
          }
        }
      }),
    );
  dead
    .command("requeue [id]")
    .description("queue a dead task again, or with --all every dead task matching --name/--queue")
    .addOption(wiring.dbOption())
    .option("--all", "every dead task matching the filters")
    .option("--name <name>", "with --all: only tasks of this name", nonEmpty)
    .option("--queue <queue>", "with --all: only tasks of this queue", nonEmpty)
    .action((id: string | undefined, options: CommonOptions & { all?: boolean; name?: string; queue?: string }) =>
      withRuntime(wiring, options, async (runtime) => {
        if (id !== undefined && (options.all || options.name !== undefined || options.queue !== undefined)) {
          throw new InvalidArgumentError("give a task id, or --all with --name/--queue, not both");
        }
        if (id !== undefined) {
          const task = await runtime.getTask(id);
          if (task.state !== "dead" || !(await runtime.retryTask(id))) throw new Error(`task ${id} is ${task.state}, not dead`);
          console.log(`task ${id} (${printable(task.name)}) queued again`);
          return;
        }
        if (!options.all) throw new InvalidArgumentError("name a task id, or --all (optionally with --name/--queue) to requeue every dead task matching");
        const n = await runtime.requeueTasks({
          ...(options.name !== undefined ? { name: options.name } : {}),
          ...(options.queue !== undefined ? { queue: options.queue } : {}),
        });
        console.log(`${n} dead task${n === 1 ? "" : "s"} queued again`);
      }),
    );
}
