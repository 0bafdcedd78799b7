import { Command, InvalidArgumentError, Option } from "commander";
import { fileURLToPath } from "node:url";
import cliProgress from "cli-progress";
import { createHttpServer, parseTrustProxy } from "../http/server.ts";
import { ensureWebAssets } from "../http/web-assets.ts";
import { Platform } from "../platform/platform.ts";
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { DEFAULT_DATABASE, isPostgresUrl, openDriver, sqlitePathOf } from "../runtime/database-url.ts";
import { createRuntime, type Runtime, type RuntimeConfig } from "../runtime/runtime.ts";
import type { StoreState } from "../store/driver.ts";
import { describeThrown } from "../tasks/error-info.ts";
import { queueName, TASK_LIMITS } from "../tasks/registry.ts";
import { TASK_STATES, type TaskInfo, type TaskState } from "../tasks/types.ts";
import { dbWord, intOption, nextPageHint, nonEmpty, printable, taskDetails, tasksTable, urlHost } from "./format.ts";
import { addOperationCommands } from "./operations.ts";
import { taskModuleUrl } from "../runtime/task-modules.ts";

function trustProxyOption(value: string): boolean | number | string[] {
  try {
    return parseTrustProxy(value);
  } catch (error) {
    throw new InvalidArgumentError((error as Error).message);
  }
}

/** The longest a timer waits (Node fires a longer one at once): about 24.8 days. */
const MAX_TIMER_MS = TASK_LIMITS.maxTimeoutMs;

function stateList(value: string): TaskState[] {
  const states = value.split(",").map((s) => s.trim()).filter(Boolean);
  // An unset variable is no filter: listing everything would pass for a filtered list.
  if (states.length === 0) throw new InvalidArgumentError(`expected one or more of ${TASK_STATES.join(", ")}, got an empty value`);
  for (const s of states) {
    if (!TASK_STATES.includes(s as TaskState)) throw new InvalidArgumentError(`unknown state "${s}"; states are ${TASK_STATES.join(", ")}`);
  }
  return states as TaskState[];
}

/**
 * The --queues names. An empty list (an unset variable, or ",") is refused rather than taken for
 * every queue, and so is a name no task can have (tasks' queues follow the same rule), which would
 * leave the worker idle for good.
 */
function queueList(value: string): string[] {
  const queues = value.split(",").map((q) => q.trim()).filter(Boolean);
  if (queues.length === 0) throw new InvalidArgumentError("expected one or more comma-separated queue names, got an empty list (leave --queues out to take every queue)");
  for (const q of queues) {
    try {
      queueName(q, "a queue name");
    } catch (error) {
      throw new InvalidArgumentError((error as Error).message);
    }
  }
  return [...new Set(queues)];
}

const dbOption = () =>
  new Option("--db <url>", "database: a SQLite file path, sqlite: URL or postgres:// URL").env("UNDERWAY_DB").default(DEFAULT_DATABASE);
const graceOption = () =>
  new Option("--grace <ms>", "on SIGTERM/SIGINT, how long running tasks may finish before they are stopped and queued again")
    .default(10_000)
    .argParser(intOption(0, MAX_TIMER_MS));
/** The worked example shipped with underway, published on a fresh database by `underway start`. */
const EXAMPLE_PACKAGE = fileURLToPath(new URL("../../examples/background-activity", import.meta.url));
const packagesOption = () =>
  new Option("--packages <folders...>", "package folders to save and publish when not yet published")
    .env("UNDERWAY_PACKAGES")
    .default([EXAMPLE_PACKAGE], "the worked example");
const list = (value: string | string[] | undefined): string[] =>
  (Array.isArray(value) ? value : (value ?? "").split(",")).map((s) => s.trim()).filter(Boolean);
const tasksOption = () =>
  new Option("--tasks <modules...>", "modules whose exported task classes this process runs").env("UNDERWAY_TASKS");

interface CommonOptions {
  db: string;
}

async function openRuntime(options: CommonOptions, extra: Partial<RuntimeConfig>): Promise<Runtime> {
  const runtime = createRuntime({ db: options.db, ...extra });
  await runtime.start();
  return runtime;
}

/**
 * Inspection commands open the store without a worker and without maintenance, and never create
 * or upgrade one: a mistyped SQLite path or PostgreSQL schema (or another application's SQLite
 * file) is an error, not a new empty store reported as "no tasks", and a store older than this
 * underway is left as its workers know it.
 */
async function inspect(options: CommonOptions): Promise<Runtime> {
  await requireStore(options.db, "as it is");
  const runtime = createRuntime({ db: options.db, worker: false, maintenance: false, logger: false });
  await runtime.start();
  return runtime;
}

/**
 * Refuses a store that is not there; with "as it is", one whose schema is behind this underway
 * too. Asked before the runtime opens it, since starting a runtime creates and upgrades.
 */
async function requireStore(db: string, use: "as it is" | "upgraded"): Promise<void> {
  const text = db.trim();
  const createsNone = "this command needs an existing one and creates none (underway migrate creates it)";
  if (!isPostgresUrl(text) && text !== "") {
    const path = sqlitePathOf(text);
    if (path !== ":memory:" && !existsSync(resolve(path))) {
      throw new Error(`no database at ${resolve(path)}: ${createsNone}`);
    }
  }
  // A SQLite file is looked at read-only: one that holds no store (another application's) is left as it was.
  const driver = openDriver(db, { watch: false, warmConnections: 0, lookOnly: true });
  let state: StoreState;
  try {
    state = (await driver.storeState?.()) ?? "current";
  } finally {
    await driver.close().catch(() => undefined);
  }
  if (state === "none") throw new Error(`no underway store in ${driver.description}: ${createsNone}`);
  if (state === "behind" && use === "as it is") {
    throw new Error(
      `the underway store in ${driver.description} has an older schema than this underway: this command reads it and upgrades nothing ` +
        "(underway migrate upgrades it; upgrade its workers first)",
    );
  }
}

function isolationOption(): Option {
  return new Option("--isolation <mode>", "where task code runs: thread (each attempt in a worker thread, stopped at its limits) or none (on the worker's event loop; trusted code only)")
    .choices(["thread", "none"])
    .env("UNDERWAY_ISOLATION")
    .default("thread");
}

/** The --tasks modules, as file URLs: the runtime imports them, and so do isolated threads. */
function taskModules(value: string | string[] | undefined): string[] {
  if (!value) return [];
  const list = Array.isArray(value) ? value : value.split(",");
  return list.map((s) => s.trim()).filter(Boolean).map(taskModuleUrl);
}

/**
 * A signal this soon after the first is the same request, not a second one: coreutils `timeout`,
 * and some process managers, signal the process and its process group, so it arrives twice.
 */
const REPEATED_SIGNAL_WINDOW_MS = 1_000;

/**
 * Stops gracefully on SIGTERM or SIGINT (running tasks finish within the grace period), then
 * exits; a signal again, REPEATED_SIGNAL_WINDOW_MS or more after the first, exits at once.
 */
function stopOnSignals(stop: () => Promise<unknown>): void {
  let stopping = false;
  let firstAt = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (stopping) {
      if (performance.now() - firstAt < REPEATED_SIGNAL_WINDOW_MS) {
        console.error(`underway: ${signal} again within ${REPEATED_SIGNAL_WINDOW_MS / 1000} s of the first: taken as the same request (send it again later to exit at once)`);
        return;
      }
      // Asked again while stopping (a task that does not end in its grace, say): out at once.
      // The tasks running here are not lost: their leases run out and another worker runs them again.
      console.error(`underway: ${signal} again: exiting now; tasks still running here will run again once their leases run out`);
      process.exit(signal === "SIGINT" ? 130 : 143);
    }
    stopping = true;
    firstAt = performance.now();
    stop().then(
      () => process.exit(0),
      (error: unknown) => {
        console.error(`underway: stopping failed: ${(error as Error).message}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGTERM", onSignal);
  process.on("SIGINT", onSignal);
}

/** Listens, and returns the port (port 0: the one the system chose); stops the runtime when it cannot. */
async function listenOrStop(app: Awaited<ReturnType<typeof createHttpServer>>, runtime: Runtime, host: string, port: number): Promise<number> {
  try {
    await app.listen({ port, host });
  } catch (error) {
    await runtime.stop();
    throw new Error(`cannot listen on ${urlHost(host)}:${port}: ${(error as Error).message}`, { cause: error });
  }
  const address = app.server.address();
  return typeof address === "object" && address ? address.port : port;
}

export function buildProgram(): Command {
  const program = new Command("underway")
    .description("durable background tasks: the platform's Task.startNew API on an embedded or shared database")
    .showHelpAfterError()
    .configureOutput({ outputError: (text, write) => write(text) });

  program
    .command("start")
    .description("start the HTTP server and a worker")
    .addOption(dbOption())
    .addOption(tasksOption())
    .addOption(new Option("--port <port>", "HTTP port").env("PORT").default(3000).argParser(intOption(0, 65_535)))
    .addOption(new Option("--host <host>", "HTTP address to listen on").env("HOST").default("127.0.0.1"))
    .addOption(
      new Option("--trust-proxy <proxies>", "believe X-Forwarded-For from these proxies: true, a number of hops, or addresses/CIDR ranges (comma-separated)")
        .env("UNDERWAY_TRUST_PROXY")
        .argParser(trustProxyOption),
    )
    .addOption(new Option("--concurrency <n>", "tasks run at once").default(10).argParser(intOption(1)))
    .addOption(graceOption())
    .addOption(isolationOption())
    .addOption(packagesOption())
    .action(async (options: CommonOptions & { port: number; host: string; trustProxy?: boolean | number | string[]; concurrency: number; grace: number; isolation: "thread" | "none"; tasks?: string | string[]; packages: string | string[] }) => {
      const unhandled = keepServingOnUnhandledRejections();
      const starting = Platform.start({
        db: options.db,
        packages: list(options.packages),
        tasks: taskModules(options.tasks),
        worker: { concurrency: options.concurrency },
        isolation: options.isolation,
        shutdownGraceMs: options.grace,
      });
      let closeHttp: (() => Promise<void>) | null = null;
      stopOnSignals(async () => {
        await closeHttp?.();
        await (await starting.catch(() => null))?.stop();
      });
      const platform = await starting;
      const runtime = platform.runtime;
      unhandled.logTo(runtime.logger);
      // The browser application is built on first start (and after its sources change).
      // A failed build leaves the API running; the page at / then says how to build.
      await ensureWebAssets({ log: (line) => console.log(line) }).catch((error: unknown) =>
        console.error(`underway: the web application could not be built: ${(error as Error).message}`),
      );
      const app = await createHttpServer({ runtime, platform, trustProxy: options.trustProxy });
      closeHttp = () => app.close();
      const port = await listenOrStop(app, runtime, options.host, options.port);
      const url = `http://${urlHost(options.host)}:${port}`;
      runtime.logger.info({ url }, "underway is listening");
      console.log(`underway listening on ${url} (database ${runtime.driver.description})`);
    });

  program
    .command("worker")
    .description("run a worker: take tasks from the database and run them")
    .addOption(dbOption())
    .addOption(tasksOption())
    .addOption(new Option("--concurrency <n>", "tasks run at once").default(10).argParser(intOption(1)))
    .addOption(new Option("--queues <names>", "comma-separated queues to take tasks from (default: all)").argParser(queueList))
    .addOption(new Option("--lease <ms>", "how long a running task is held without a heartbeat").default(15_000).argParser(intOption(1_000, MAX_TIMER_MS)))
    .addOption(graceOption())
    .addOption(isolationOption())
    .addOption(
      new Option("--metrics-port <port>", "serve /metrics and /healthz on this port (nothing else; keep it on the internal network)")
        .env("UNDERWAY_METRICS_PORT")
        .argParser(intOption(0, 65_535)),
    )
    .addOption(new Option("--metrics-host <host>", "address the metrics port listens on").env("UNDERWAY_METRICS_HOST").default("127.0.0.1"))
    .action(async (options: CommonOptions & { concurrency: number; queues?: string[]; lease: number; grace: number; isolation: "thread" | "none"; tasks?: string | string[]; metricsPort?: number; metricsHost: string }) => {
      const queues = options.queues;
      const unhandled = keepServingOnUnhandledRejections();
      // A worker runs the platform too: process instances, package tasks, user connections.
      const starting = Platform.start({
        db: options.db,
        tasks: taskModules(options.tasks),
        shutdownGraceMs: options.grace,
        isolation: options.isolation,
        worker: { concurrency: options.concurrency, leaseMs: options.lease, ...(queues ? { queues } : {}) },
        generateAdminPassword: false,
      });
      let closeHttp: (() => Promise<void>) | null = null;
      // Signals are handled from the first moment: the worker may claim tasks while starting.
      stopOnSignals(async () => {
        await closeHttp?.();
        await (await starting.catch(() => null))?.stop();
      });
      const runtime = (await starting).runtime;
      unhandled.logTo(runtime.logger);
      if (options.metricsPort !== undefined) {
        // The platform is left out: this server answers /metrics and /healthz, and 404 otherwise.
        const app = await createHttpServer({ runtime, webRoot: false });
        closeHttp = () => app.close();
        const port = await listenOrStop(app, runtime, options.metricsHost, options.metricsPort);
        console.log(`underway worker metrics on http://${urlHost(options.metricsHost)}:${port}/metrics`);
      }
      console.log(`underway worker ${runtime.worker?.id} running (database ${runtime.driver.description})`);
    });

  program
    .command("run <code>")
    .description("run a published business process as a user")
    .addOption(dbOption())
    .option("--param <name=value...>", "process parameters", [] as string[])
    .option("--user <login>", "the user who runs the process", "Supervisor")
    .option("--wait", "run a worker here and wait until the process ends")
    .addOption(new Option("--timeout <seconds>", "with --wait: give up after this long").default(600).argParser(intOption(1)))
    .action(async (code: string, options: CommonOptions & { param: string[]; user: string; wait?: boolean; timeout: number }) => {
      const parameters: Record<string, string> = {};
      for (const p of options.param) {
        const at = p.indexOf("=");
        if (at < 1) throw new InvalidArgumentError(`--param ${JSON.stringify(p)}: expected name=value`);
        parameters[p.slice(0, at)] = p.slice(at + 1);
      }
      // A mistyped --db would otherwise be a new store with a new Supervisor and no processes.
      await requireStore(options.db, "upgraded");
      const platform = await Platform.start({
        db: options.db,
        logger: false,
        maintenance: options.wait ? {} : false,
        worker: options.wait ? {} : false,
        shutdownGraceMs: 1_000,
        generateAdminPassword: false,
      });
      try {
        const user = await platform.users.getByLogin(options.user);
        if (!user || !user.active) throw new Error(`no active user with the login ${JSON.stringify(options.user)}`);
        const { instanceId } = await platform.userConnection(user).processEngine.processExecutor.execute(code, parameters);
        console.log(`process ${code} started: instance ${instanceId}`);
        if (!options.wait) return;
        const deadline = Date.now() + options.timeout * 1000;
        for (;;) {
          const log = await platform.processEngine.getLog(instanceId, platform.appConnection.systemUserConnection);
          const waiting = log?.elements.some((e) => e.waiting);
          if (log && (log.status !== "Running" || waiting)) {
            for (const e of log.elements) {
              console.log(`  ${e.seq}. ${printable(e.name || e.elementId)} (${e.kind}): ${e.status}${e.waiting ? " (waiting)" : ""}${e.errorMessage ? ` - ${printable(e.errorMessage)}` : ""}`);
            }
            console.log(`status: ${log.status}${log.errorMessage ? ` - ${printable(log.errorMessage)}` : ""}`);
            process.exitCode = log.status === "Completed" || waiting ? 0 : 1;
            return;
          }
          if (Date.now() > deadline) throw new Error(`process instance ${instanceId} still runs after ${options.timeout} s`);
          await new Promise((r) => setTimeout(r, 200));
        }
      } finally {
        await platform.stop();
      }
    });

  program
    .command("migrate")
    .description("apply pending database migrations and exit")
    .addOption(dbOption())
    .action(async (options: CommonOptions) => {
      // The one command that creates a database.
      const runtime = await openRuntime(options, { worker: false, maintenance: false, logger: false });
      await runtime.stop();
      console.log(`database ${runtime.driver.description} is up to date`);
    });

  program
    .command("tasks")
    .description("list tasks, newest first")
    .addOption(dbOption())
    .addOption(new Option("--state <states>", "comma-separated states").argParser(stateList))
    .option("--name <name>", "task name", nonEmpty)
    .option("--queue <queue>", "queue", nonEmpty)
    .option("--user <userId>", "initiating user id", nonEmpty)
    .addOption(new Option("--limit <n>", "page size").default(50).argParser(intOption(1)))
    .option("--before <id>", "list tasks with an id below this (next page)", nonEmpty)
    .option("--json", "print JSON")
    .action(
      async (
        options: CommonOptions & { state?: TaskState[]; name?: string; queue?: string; user?: string; limit: number; before?: string; json?: boolean },
        command: Command,
      ) => {
        const runtime = await inspect(options);
        try {
          const page = await runtime.listTasks({
            ...(options.state ? { states: options.state } : {}),
            ...(options.name !== undefined ? { name: options.name } : {}),
            ...(options.queue !== undefined ? { queue: options.queue } : {}),
            ...(options.user !== undefined ? { userId: options.user } : {}),
            ...(options.before !== undefined ? { beforeId: options.before } : {}),
            limit: options.limit,
          });
          if (options.json) console.log(JSON.stringify(page, null, 2));
          else {
            console.log(page.items.length ? tasksTable(page.items) : "no tasks");
            if (page.nextBeforeId) {
              const filters = [["--state", options.state], ["--name", options.name], ["--queue", options.queue], ["--user", options.user]] as const;
              console.log(nextPageHint("tasks", [...dbWord(command, options.db), ...filters, ["--limit", options.limit === 50 ? undefined : options.limit]], page.nextBeforeId));
            }
          }
        } finally {
          await runtime.stop();
        }
      },
    );

  program
    .command("task <id>")
    .description("show one task with its errors")
    .addOption(dbOption())
    .option("--json", "print JSON")
    .action(async (id: string, options: CommonOptions & { json?: boolean }) => {
      const runtime = await inspect(options);
      try {
        const task = await runtime.getTask(id);
        console.log(options.json ? JSON.stringify(task, null, 2) : taskDetails(task));
      } finally {
        await runtime.stop();
      }
    });

  for (const [verb, description, past] of [
    ["cancel", "cancel a task that has not ended (a running one is stopped)", "canceled"],
    ["retry", "queue a failed, dead or canceled task again", "queued again"],
  ] as const) {
    program
      .command(`${verb} <id>`)
      .description(description)
      .addOption(dbOption())
      .action(async (id: string, options: CommonOptions) => {
        const runtime = await inspect(options);
        try {
          const task = await runtime.getTask(id);
          const done = verb === "cancel" ? await runtime.cancelTask(id) : await runtime.retryTask(id);
          if (!done) {
            const now = await runtime.findTask(id);
            if (now?.stopping) throw new Error(`task ${id} cannot be ${past} yet: it was canceled while it ran, and that run has not ended`);
            throw new Error(`task ${id} cannot be ${past}: it is ${now?.state ?? task.state}`);
          }
          console.log(`task ${id} (${printable(task.name)}) ${past}`);
        } finally {
          await runtime.stop();
        }
      });
  }

  program
    .command("wait <id>")
    .description("wait for a task to end, with a progress bar; exits 0 when it succeeded")
    .addOption(dbOption())
    .addOption(new Option("--timeout <seconds>", "give up after this long").argParser(intOption(1)))
    .action(async (id: string, options: CommonOptions & { timeout?: number }) => {
      const runtime = await inspect(options);
      const bar = new cliProgress.SingleBar(
        { format: "{name} [{bar}] {percentage}% | {state} {message}", hideCursor: true, stream: process.stderr },
        cliProgress.Presets.shades_classic,
      );
      // The bar hides the cursor and turns line wrapping off: Ctrl-C (or a SIGTERM) gives the
      // terminal both back before exiting, as the shell's 130 or 143. The task is only watched:
      // nothing of it is left to stop.
      const onSignal = (signal: NodeJS.Signals): void => {
        bar.stop();
        process.exit(signal === "SIGINT" ? 130 : 143);
      };
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      try {
        let task: TaskInfo = await runtime.getTask(id);
        bar.start(100, 0, { name: printable(task.name), state: task.state, message: "" });
        const deadline = options.timeout ? Date.now() + options.timeout * 1000 : Infinity;
        while (!["succeeded", "dead", "canceled"].includes(task.state)) {
          if (Date.now() > deadline) throw new Error(`task ${id} is still ${task.state} after ${options.timeout} s`);
          await new Promise((r) => setTimeout(r, 200));
          task = await runtime.getTask(id);
          bar.update(Math.round((task.progress ?? 0) * 100), { state: task.state, message: printable(task.progressMessage ?? "") });
        }
        if (task.state === "succeeded") bar.update(100, { state: task.state });
        bar.stop();
        console.log(taskDetails(task));
        process.exitCode = task.state === "succeeded" ? 0 : 1;
      } finally {
        bar.stop();
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
        await runtime.stop();
      }
    });

  addOperationCommands(program, { dbOption, inspect });
  return program;
}

/** The commands that serve until stopped: their output closing (a pipe's reader gone) must not stop them. */
const SERVING_COMMANDS = new Set(["start", "worker"]);

/**
 * A server runs task modules and published package code in its own process. A promise that such
 * code lets fail with no handler (as its module loads, or later) is logged as an error rather
 * than ending the process, Node's default: that would stop every task and request, and again at
 * each restart, when the same code loads again. Until the runtime's logger exists, to stderr.
 */
function keepServingOnUnhandledRejections(): { logTo(logger: Runtime["logger"]): void } {
  let logger: Runtime["logger"] | null = null;
  process.on("unhandledRejection", (reason: unknown) => {
    const message = "a promise was rejected and nothing handled it (task or package code, most likely); the process goes on";
    if (logger) logger.error({ err: reason }, message);
    else {
      const thrown = describeThrown(reason);
      console.error(`underway: ${message}: ${printable(thrown.stack ?? `${thrown.name}: ${thrown.message}`)}`);
    }
  });
  return {
    logTo(runtimeLogger) {
      logger = runtimeLogger;
    },
  };
}

export async function main(argv: readonly string[]): Promise<void> {
  // `underway tasks | head`: the reader has what it wanted and has gone. A command that prints
  // ends quietly there (success, as other command-line tools do), not with a stack trace; one
  // that serves keeps serving, its output lost.
  const serving = SERVING_COMMANDS.has(argv[2] ?? "");
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (error: NodeJS.ErrnoException) => {
      if (error.code !== "EPIPE") throw error;
      if (!serving) process.exit(process.exitCode ?? 0);
    });
  }
  try {
    await buildProgram().parseAsync(argv as string[]);
  } catch (error) {
    console.error(`underway: ${printable((error as Error).message)}`);
    process.exitCode = 1;
  }
}
