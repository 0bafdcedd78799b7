import { randomUUID } from "node:crypto";
import type { Kysely } from "kysely";
import type { Runtime } from "../../runtime/runtime.ts";
import type { StorageDriver } from "../../store/driver.ts";
import { runAsUser } from "../../tasks/ambient.ts";
import { describeThrown } from "../../tasks/error-info.ts";
import { UnrecoverableTaskError } from "../../tasks/errors/unrecoverable-task-error.ts";
import { Task } from "../../tasks/task.ts";
import type { IBackgroundTask, IUserConnectionRequired, TaskContext } from "../../tasks/types.ts";
import type { PlatformTables, SysProcessElementLogTable, SysProcessLogTable } from "../db/tables.ts";
import { parseIsoInstant, toBoolean, toDate } from "../db/values.ts";
import type { PackageLoader, ResolvedProcess } from "../packages/loader.ts";
import type { UserConnection } from "../user-connection.ts";
import { isParameterType as isProcessParameterType, PARAMETER_TEXT_CHECKS, type ProcessDefinition, type ProcessElementDefinition } from "./bpmn/index.ts";

export type ProcessStatus = "Running" | "Completed" | "Error" | "Canceled";
export type ElementStatus = "Running" | "Completed" | "Error" | "Canceled";

export interface ProcessElementLog {
  readonly seq: number;
  readonly elementId: string;
  readonly name: string;
  readonly kind: string;
  readonly status: ElementStatus;
  /**
   * The element stays Running: a script task that returned false, or one waiting for the tasks it
   * named with context.waitForTask (the instance's taskId is then the continuation that resumes it).
   */
  readonly waiting: boolean;
  readonly errorMessage: string | null;
  readonly startedOn: Date | null;
  readonly completedOn: Date | null;
}

export interface ProcessLog {
  readonly id: string;
  readonly processCode: string;
  readonly title: string;
  readonly packageName: string;
  readonly buildVersion: number;
  readonly ownerId: string;
  readonly status: ProcessStatus;
  /** The instance's parameters; none (an empty object) when the stored ones cannot be read, see parametersError. */
  readonly parameters: Record<string, unknown>;
  /**
   * Set only when the instance's stored parameters cannot be read (its row was changed by hand,
   * or restored from a bad copy): what is wrong with them. The instance shows without them.
   */
  readonly parametersError?: string;
  readonly errorMessage: string | null;
  readonly taskId: string | null;
  readonly startedOn: Date | null;
  readonly completedOn: Date | null;
  readonly elements: readonly ProcessElementLog[];
}

/** Parameters given to run a process that it does not declare, or of the wrong type. */
export class ProcessParameterError extends Error {
  override readonly name = "ProcessParameterError";
}

/** A process code no published package defines. */
export class ProcessNotFoundError extends Error {
  override readonly name = "ProcessNotFoundError";
  constructor(readonly code: string) {
    super(`no published process has the code ${JSON.stringify(code)}`);
  }
}

interface ProcessTaskParameters {
  readonly instanceId: string;
  /** Set on the continuation that resumes an element waiting for tasks (context.waitForTask). */
  readonly resume?: AwaitedTasks;
}

/** The tasks one element waits for: the element's place in the log and the task ids. */
interface AwaitedTasks {
  readonly seq: number;
  readonly taskIds: readonly string[];
}

type AwaitedOutcome = { readonly kind: "succeeded" } | { readonly kind: "pending"; readonly taskIds: string[] } | { readonly kind: "failed"; readonly error: Error };

/**
 * context.set: the value is stored as JSON with the instance, so what JSON cannot hold (a BigInt,
 * a function, a cycle) is refused here, inside the script, which fails its element; a copy is
 * kept, so changing the object afterwards changes nothing stored. undefined removes the parameter.
 */
function setParameter(parameters: Record<string, unknown>, name: unknown, value: unknown): void {
  if (typeof name !== "string" || name === "") throw new TypeError(`context.set needs a parameter name, got ${typeof name === "string" ? "an empty string" : typeof name}`);
  if (value === undefined) {
    delete parameters[name];
    return;
  }
  let json: string | undefined;
  try {
    json = JSON.stringify(value);
  } catch (error) {
    throw new TypeError(`context.set(${JSON.stringify(name)}): the value cannot be stored as JSON: ${(error as Error).message}`, { cause: error });
  }
  if (json === undefined) throw new TypeError(`context.set(${JSON.stringify(name)}): a ${typeof value} cannot be stored as a parameter`);
  Object.defineProperty(parameters, name, { value: JSON.parse(json) as unknown, enumerable: true, writable: true, configurable: true });
}

/**
 * The parameters as they are stored, JSON. A script may also write into context.parameters
 * directly: each value is checked as context.set checks one, so that what JSON cannot hold (a
 * BigInt, a function, a cycle) is refused here, while the element's try still holds, and fails
 * that element once, naming the parameter; the script is not run again. undefined is no
 * parameter, as with context.set.
 */
function storedParameters(parameters: Record<string, unknown>): string {
  const members: string[] = [];
  for (const name of Object.keys(parameters)) {
    const value = parameters[name];
    if (value === undefined) continue;
    let json: string | undefined;
    try {
      json = JSON.stringify(value);
    } catch (error) {
      throw new TypeError(`context.parameters[${JSON.stringify(name)}]: the value cannot be stored as JSON: ${(error as Error).message}`, { cause: error });
    }
    if (json === undefined) throw new TypeError(`context.parameters[${JSON.stringify(name)}]: a ${typeof value} cannot be stored as a parameter`);
    members.push(`${JSON.stringify(name)}:${json}`);
  }
  return `{${members.join(",")}}`;
}

/** The attempt of the instance's task that runs it (absent when the engine is called directly). */
interface RunAttempt {
  readonly taskId: string;
  readonly attempt: number;
}

/** An abort reason that says the task was canceled (by name: it may have crossed a thread). */
function isCancellation(reason: unknown): boolean {
  return reason instanceof Error && reason.name === "TaskCanceledError";
}

/** The id of what a script passed to context.waitForTask: a task handle or an id. */
function awaitedTaskId(task: unknown): string {
  const id = typeof task === "string" ? task : task !== null && typeof task === "object" ? (task as { id?: unknown }).id : undefined;
  if (typeof id !== "string" || id.length === 0 || id.length > 100) {
    let shown: string;
    try {
      shown = JSON.stringify(task) ?? String(task);
    } catch {
      shown = String(task);
    }
    throw new TypeError(`context.waitForTask needs a task handle (what Task.startNew returns) or a task id, got ${shown}`);
  }
  return id;
}

/**
 * Runs one process instance as a durable task, as the user who ran the process. A worker crash
 * mid-flow leaves the log where it was; the task runs again and goes on from the last element that
 * was not completed (a script task that was running is run again: at-least-once). An element that
 * waits for tasks (context.waitForTask) ends the run; a continuation of those tasks, another task
 * of this class with `resume` set, goes on from it once they have all ended.
 */
export class ProcessInstanceTask implements IBackgroundTask<ProcessTaskParameters>, IUserConnectionRequired<UserConnection> {
  static readonly taskName = "underway.ProcessInstance";
  /** Isolated threads load the class from here: the scripts it runs are package code. */
  static readonly taskModule = import.meta.url;
  static readonly taskOptions = { maxAttempts: 3, timeoutMs: 3_600_000 };
  private userConnection: UserConnection | null = null;

  setUserConnection(userConnection: UserConnection): void {
    this.userConnection = userConnection;
  }

  async run(parameters: ProcessTaskParameters, context: TaskContext): Promise<void> {
    if (!this.userConnection) throw new Error("a process instance needs a user connection");
    const engine = this.userConnection.appConnection.processEngine;
    await engine.runInstance(parameters.instanceId, this.userConnection, context.signal, parameters.resume, { taskId: context.taskId, attempt: context.attempt });
  }
}

function elementLogOf(row: SysProcessElementLogTable): ProcessElementLog {
  return {
    seq: Number(row.Seq),
    elementId: row.ElementId,
    name: row.ElementName,
    kind: row.Kind,
    status: row.Status as ElementStatus,
    waiting: toBoolean(row.Waiting),
    errorMessage: row.ErrorMessage,
    startedOn: toDate(row.StartedOn),
    completedOn: toDate(row.CompletedOn),
  };
}

/**
 * An instance's stored parameters, or what is wrong with them. The engine only ever stores a JSON
 * object, but a row changed by hand (an operator's UPDATE, a bad restore) may hold anything: one
 * such row must not make the whole log unreadable, nor run with parameters it never had.
 */
function readParameters(row: SysProcessLogTable): { parameters: Record<string, unknown> } | { problem: string } {
  let value: unknown;
  try {
    value = JSON.parse(row.Parameters);
  } catch (error) {
    return { problem: `its stored parameters (SysProcessLog.Parameters) are not JSON: ${(error as Error).message}` };
  }
  if (value === null || typeof value !== "object" || Array.isArray(value)) {
    return { problem: `its stored parameters (SysProcessLog.Parameters) are not a JSON object but ${value === null ? "null" : Array.isArray(value) ? "an array" : typeof value}` };
  }
  return { parameters: value as Record<string, unknown> };
}

/**
 * A row of the log as the log shows it. An instance whose stored parameters cannot be read shows
 * without them and says why, so that the rest of the log (and the instance itself: its status,
 * elements and error) can still be read and canceled.
 */
function processLogOf(row: SysProcessLogTable, elements: readonly ProcessElementLog[]): ProcessLog {
  const read = readParameters(row);
  return {
    id: row.Id,
    processCode: row.ProcessCode,
    title: row.Title,
    packageName: row.PackageName,
    buildVersion: Number(row.BuildVersion),
    ownerId: row.OwnerId,
    status: row.Status as ProcessStatus,
    parameters: "parameters" in read ? read.parameters : {},
    ...("problem" in read ? { parametersError: `process instance ${row.Id} (${row.ProcessCode}): ${read.problem}` } : {}),
    errorMessage: row.ErrorMessage,
    taskId: row.TaskId,
    startedOn: toDate(row.StartedOn),
    completedOn: toDate(row.CompletedOn),
    elements,
  };
}

/** The process engine: runs published processes and keeps their log. */
export class ProcessEngine {
  constructor(
    private readonly store: StorageDriver,
    private readonly db: Kysely<PlatformTables>,
    private readonly loader: PackageLoader,
    private readonly runtime: Runtime,
  ) {}

  /** Starts a process as the connection's user; resolves once the instance is durably stored. */
  async execute(userConnection: UserConnection, code: string, parameters: Record<string, unknown> = {}): Promise<{ instanceId: string; taskId: string }> {
    if (typeof code !== "string" || code.length === 0 || code.length > 200) throw new ProcessNotFoundError(String(code));
    const resolved = await this.loader.findProcess(code);
    if (!resolved) throw new ProcessNotFoundError(code);
    const values = this.checkParameters(resolved.definition, parameters);
    const instanceId = randomUUID();
    const user = userConnection.currentUser;
    const now = new Date(await this.store.clockNow());
    const taskId = await this.runtime.transaction(async () => {
      await this.db
        .insertInto("SysProcessLog")
        .values({
          Id: instanceId,
          ProcessCode: code,
          Title: resolved.definition.name || code,
          PackageName: resolved.packageName,
          BuildVersion: resolved.version,
          OwnerId: user.id,
          Status: "Running",
          Parameters: JSON.stringify(values),
          ErrorMessage: null,
          TaskId: null,
          StartedOn: now,
          CompletedOn: null,
        })
        .execute();
      const handle = await runAsUser({ userId: user.id, culture: user.culture, timeZone: user.timeZone }, () =>
        Task.startNewWithUserConnection(ProcessInstanceTask, { instanceId }),
      );
      await this.db.updateTable("SysProcessLog").set({ TaskId: handle.id }).where("Id", "=", instanceId).execute();
      return handle.id;
    });
    return { instanceId, taskId };
  }

  private checkParameters(definition: ProcessDefinition, given: Record<string, unknown>): Record<string, unknown> {
    if (given === null || typeof given !== "object" || Array.isArray(given)) throw new ProcessParameterError("process parameters must be an object");
    const known = new Map(definition.parameters.map((p) => [p.name, p]));
    const values: Record<string, unknown> = {};
    for (const p of definition.parameters) if (p.defaultValue !== undefined) values[p.name] = convert(p.type, p.defaultValue, p.name);
    for (const [name, value] of Object.entries(given)) {
      const p = known.get(name);
      if (!p) {
        throw new ProcessParameterError(`process ${definition.code} has no parameter ${JSON.stringify(name)}${known.size ? ` (it has ${[...known.keys()].join(", ")})` : " (it has none)"}`);
      }
      values[name] = convert(p.type, value, name);
    }
    return values;
  }

  /** The log of one instance; null when there is none or the user may not see it. */
  async getLog(instanceId: string, userConnection: UserConnection): Promise<ProcessLog | null> {
    const readRow = () => this.db.selectFrom("SysProcessLog").selectAll().where("Id", "=", String(instanceId)).executeTakeFirst();
    let row = await readRow();
    if (!row) return null;
    const user = userConnection.currentUser;
    if (!user.isAdmin && row.OwnerId !== user.id) return null;
    // The engine changes an element and the instance's row in one transaction; a change that
    // commits between the reads shows as a changed row, and the elements are read again.
    for (let attempt = 0; ; attempt++) {
      const elements = await this.db.selectFrom("SysProcessElementLog").selectAll().where("ProcessLogId", "=", row.Id).orderBy("Seq").execute();
      const again = await readRow();
      if (!again) return null;
      const same = again.Status === row.Status && again.Parameters === row.Parameters && again.TaskId === row.TaskId;
      row = again;
      if (same || attempt >= 4) return processLogOf(row, elements.map(elementLogOf));
    }
  }

  /** Instances newest first: all for administrators, the user's own otherwise. */
  async listLog(userConnection: UserConnection, options: { limit?: number; offset?: number } = {}): Promise<ProcessLog[]> {
    let query = this.db.selectFrom("SysProcessLog").selectAll();
    if (!userConnection.currentUser.isAdmin) query = query.where("OwnerId", "=", userConnection.currentUser.id);
    const rows = await query
      .orderBy("StartedOn", "desc")
      .orderBy("Id", "desc")
      .limit(Math.min(Math.max(1, options.limit ?? 50), 500))
      .offset(Math.max(0, options.offset ?? 0))
      .execute();
    return rows.map((r) => processLogOf(r, []));
  }

  /** Cancels a running instance: its current element and the process become Canceled. */
  async cancel(instanceId: string, userConnection: UserConnection): Promise<boolean> {
    const log = await this.getLog(instanceId, userConnection);
    if (!log || log.status !== "Running") return false;
    // false: ended since it was read, not canceled by this call.
    return this.endCanceled(instanceId, null);
  }

  /**
   * The instance whose task this is ends as Canceled, as the process-log cancel ends it: its
   * running element becomes Canceled too. Called when the instance's own task (the first one, or
   * the continuation of an element that waits for tasks) was canceled or deleted. Nothing happens
   * when the instance has ended, or has moved on to another task since. True when it was ended.
   */
  async cancelByTask(taskId: string): Promise<boolean> {
    const row = await this.db.selectFrom("SysProcessLog").select("Id").where("TaskId", "=", String(taskId)).where("Status", "=", "Running").executeTakeFirst();
    return row ? this.endCanceled(row.Id, String(taskId)) : false;
  }

  /** Ends a running instance as Canceled, with its running elements; with taskId, only while that is still its task. */
  private async endCanceled(instanceId: string, taskId: string | null): Promise<boolean> {
    const now = new Date(await this.store.clockNow());
    return this.store.transaction(async () => {
      let instance = this.db.updateTable("SysProcessLog").set({ Status: "Canceled", CompletedOn: now }).where("Id", "=", instanceId).where("Status", "=", "Running");
      if (taskId !== null) instance = instance.where("TaskId", "=", taskId);
      const canceled = await instance.executeTakeFirst();
      if (Number(canceled.numUpdatedRows) === 0) return false;
      await this.db
        .updateTable("SysProcessElementLog")
        .set({ Status: "Canceled", CompletedOn: now })
        .where("ProcessLogId", "=", instanceId)
        .where("Status", "=", "Running")
        .execute();
      return true;
    });
  }

  /**
   * Running instances whose own task ended without the engine seeing it: canceled (or dead) while
   * queued, canceled in a thread that was stopped, deleted, or ended in a process that has no
   * platform to tell (the runtime's task events are local to the process whose worker or
   * maintenance saw them; a cancel from `underway cancel` or the task centre of another node, or
   * of a task that never runs again, raises no event anywhere). A canceled or deleted task ends
   * its instance as Canceled, a dead one puts it into Error. A deleted task of an instance whose
   * element waits is left alone: that task may be the one whose script returned false, which
   * retention deletes in time, and the element still waits (see docs/processes.md). The platform
   * runs this on the maintenance leader (ProcessTaskWatch). Returns how many instances it ended.
   */
  async endInstancesOfEndedTasks(options: { readonly batch?: number; readonly between?: () => Promise<boolean> } = {}): Promise<number> {
    const batch = options.batch ?? 500;
    let ended = 0;
    let after = "";
    for (;;) {
      const rows = await this.db
        .selectFrom("SysProcessLog")
        .select(["Id", "TaskId"])
        .where("Status", "=", "Running")
        .where("Id", ">", after)
        .orderBy("Id")
        .limit(batch)
        .execute();
      for (const row of rows) {
        if (row.TaskId === null) continue;
        const task = await this.runtime.findTask(row.TaskId);
        if (task?.state === "canceled") {
          if (await this.endCanceled(row.Id, row.TaskId)) ended++;
        } else if (task?.state === "dead") {
          const error = new Error(task.lastError?.message ?? `the task ${task.name} ${task.id} ended dead`);
          error.name = task.lastError?.name ?? "Error";
          if (await this.fail(row.Id, null, error, row.TaskId)) ended++;
        } else if (!task) {
          const current = await this.db
            .selectFrom("SysProcessElementLog")
            .select(["Waiting", "AwaitsTasks"])
            .where("ProcessLogId", "=", row.Id)
            .orderBy("Seq", "desc")
            .limit(1)
            .executeTakeFirst();
          // An element that waits for tasks waits for its continuation, which is gone: it can
          // never go on. One whose script returned false waits for good, whatever became of the
          // task that ran it.
          const stranded = !current || !toBoolean(current.Waiting) || toBoolean(current.AwaitsTasks);
          if (stranded && (await this.endCanceled(row.Id, row.TaskId))) ended++;
        }
      }
      if (rows.length < batch) return ended;
      after = rows[rows.length - 1]!.Id;
      if (options.between && !(await options.between())) return ended;
    }
  }

  /**
   * Runs an instance from where its log stands until it ends, waits, or fails. `resume` is given
   * by the continuation of the tasks an element waits for: that element completes when they all
   * succeeded, and goes to Error when one ended dead or canceled. `attempt` is the task's, when a
   * task runs it.
   *
   * An attempt that is stopped (its signal aborts: timeout, cancel, lost lease, shutdown) commits
   * nothing after its signal aborted, and a run that finds the element it ran already completed or
   * failed by another run of the same instance (an attempt that went on after its lease was lost,
   * beside its retry) leaves that run's progress as it is and stops.
   */
  async runInstance(instanceId: string, userConnection: UserConnection, signal: AbortSignal, resume?: AwaitedTasks, attempt?: RunAttempt): Promise<void> {
    try {
      await this.runFrom(instanceId, userConnection, signal, resume, attempt);
    } catch (error) {
      // The instance's own task was canceled while it ran: its signal aborts here at once, or at
      // the worker's next heartbeat when the cancel came from another process. The instance ends
      // as Canceled now; should this fail, ProcessTaskWatch ends it at its next pass.
      if (attempt && signal.aborted && isCancellation(signal.reason)) {
        await this.cancelByTask(attempt.taskId).catch(() => undefined);
      }
      throw error;
    }
  }

  private async runFrom(instanceId: string, userConnection: UserConnection, signal: AbortSignal, resume: AwaitedTasks | undefined, attempt: RunAttempt | undefined): Promise<void> {
    const row = await this.db.selectFrom("SysProcessLog").selectAll().where("Id", "=", instanceId).executeTakeFirst();
    if (!row) throw new Error(`process instance ${instanceId} does not exist`);
    if (row.Status !== "Running") return;
    const resolved = await this.loader.processOfBuild(row.PackageName, Number(row.BuildVersion), row.ProcessCode);
    const read = readParameters(row);
    if ("problem" in read) {
      // Running it again would not make them readable: the instance goes to Error now, saying
      // which one and why, and its task ends dead without its retries. Other instances run on.
      const message = `process instance ${instanceId} (${row.ProcessCode}) cannot run: ${read.problem}`;
      await this.fail(instanceId, null, new Error(message));
      throw new UnrecoverableTaskError(message);
    }
    const parameters = read.parameters;
    const rows = await this.db.selectFrom("SysProcessElementLog").selectAll().where("ProcessLogId", "=", instanceId).orderBy("Seq", "desc").limit(1).execute();
    let current: { seq: number; element: ProcessElementDefinition; waiting: boolean };
    const last = rows[0];
    if (!last) {
      const start = this.element(resolved, resolved.definition.startEventId);
      const begun = await this.store.transaction(async () => {
        if (!(await this.lockRunning(instanceId))) return false;
        // Another run of this instance began it meanwhile (read again with the instance's row
        // held): its progress stands, rather than this run's insert failing on the duplicate.
        const any = await this.db.selectFrom("SysProcessElementLog").select("Seq").where("ProcessLogId", "=", instanceId).limit(1).executeTakeFirst();
        if (any) return false;
        signal.throwIfAborted();
        await this.begin(instanceId, 1, start);
        return true;
      });
      if (!begun) return; // canceled before its first element, or begun by another run
      current = { seq: 1, element: start, waiting: false };
    } else {
      if (last.Status !== "Running") return; // ended (or failed) earlier
      current = { seq: Number(last.Seq), element: this.element(resolved, last.ElementId), waiting: toBoolean(last.Waiting) };
      // A script that did not end before the attempt's timeout would very likely not end the next
      // time either: the element fails with the timeout instead of running it again. (A worker
      // that crashed or lost its lease runs it again: at-least-once.)
      if (attempt && attempt.attempt > 1 && !current.waiting && current.element.kind === "scriptTask") {
        const previous = (await this.runtime.findTask(attempt.taskId))?.lastError;
        if (previous?.name === "TaskTimeoutError") {
          const error = new Error(
            `the script of "${current.element.name || current.element.id}" did not end before the timeout of the instance's task (${previous.message}); a script that timed out is not run again`,
          );
          error.name = "TaskTimeoutError";
          await this.fail(instanceId, current.seq, error);
          return;
        }
      }
    }
    /** The waiting script task's tasks all succeeded: it completes without running again. */
    let resumed = false;
    if (current.waiting) {
      // Only the continuation armed for this very element resumes it; a script that returned false waits for good.
      if (!resume || resume.seq !== current.seq || current.element.kind !== "scriptTask") return;
      const outcome = await this.awaitedOutcome(resume.taskIds);
      if (outcome.kind === "failed") {
        await this.fail(instanceId, current.seq, outcome.error);
        return;
      }
      if (outcome.kind === "pending") {
        // A task ended and was queued again (a retry) before this ran: wait for it once more.
        await this.awaitTasks(instanceId, current.seq, outcome.taskIds, storedParameters(parameters), userConnection, signal);
        return;
      }
      resumed = true;
    }
    let steps = 0;
    for (;;) {
      signal.throwIfAborted();
      const status = await this.db.selectFrom("SysProcessLog").select("Status").where("Id", "=", instanceId).executeTakeFirst();
      if (status?.Status !== "Running") return; // canceled meanwhile
      const { element, seq } = current;
      const context = {
        userConnection,
        signal,
        parameters,
        get: (name: string) => parameters[name],
        set: (name: string, value: unknown) => {
          setParameter(parameters, name, value);
        },
        waitForTask: (): void => {
          throw new Error("context.waitForTask can be called only in a script task");
        },
      };
      let nextFlowTarget: string | null = null;
      const awaited: string[] = [];
      /** The script returned something else than true: the element stays Running, waiting. */
      let waits = false;
      /** The parameters as stored, serialized while the element's try still holds. */
      let stored: string;
      try {
        if (++steps > MAX_STEPS_PER_RUN) {
          throw new Error(`the instance ran ${MAX_STEPS_PER_RUN.toLocaleString("en-US")} elements without waiting or ending: a loop that never takes its way out?`);
        }
        switch (element.kind) {
          case "startEvent":
            nextFlowTarget = this.single(element);
            break;
          case "scriptTask": {
            if (resumed) {
              resumed = false;
              nextFlowTarget = this.single(element);
              break;
            }
            const result = await resolved.build.loaded.script(resolved.definition.code, element.id)({
              ...context,
              waitForTask: (task: { readonly id: string } | string) => {
                const id = awaitedTaskId(task);
                if (!awaited.includes(id)) awaited.push(id);
              },
            });
            // Stopped while the script ran (timeout, cancel, lost lease, shutdown): its outcome is
            // not recorded; the catch below lets the abort end the attempt.
            signal.throwIfAborted();
            if (awaited.length > 0) {
              for (const id of awaited) {
                if (!(await this.runtime.findTask(id))) throw new Error(`context.waitForTask: there is no task ${id}`);
              }
              break; // the element waits for them, whatever the script returned
            }
            if (result !== true) {
              waits = true;
              break;
            }
            nextFlowTarget = this.single(element);
            break;
          }
          case "exclusiveGateway": {
            // A gateway with a single way out (a merge) takes it: the parser lets it go without a condition.
            const only = element.outgoing.length === 1 && element.outgoing[0]!.condition === undefined ? element.outgoing[0] : undefined;
            const chosen =
              only ??
              element.outgoing.find((f) => !f.isDefault && f.condition !== undefined && resolved.build.loaded.condition(resolved.definition.code, f.id)(context)) ??
              element.outgoing.find((f) => f.isDefault);
            if (!chosen) throw new Error(`no condition of gateway "${element.name || element.id}" holds and it has no default flow`);
            nextFlowTarget = chosen.targetId;
            break;
          }
          case "endEvent":
          case "terminateEndEvent":
            nextFlowTarget = null;
            break;
        }
        stored = storedParameters(parameters);
      } catch (error) {
        if (signal.aborted) throw error; // timeout, cancel or shutdown: the task decides what comes next
        await this.fail(instanceId, seq, error);
        return;
      }
      if (awaited.length > 0) {
        // Outside the try: a store error here fails the attempt, and the task runs the script again.
        await this.awaitTasks(instanceId, seq, awaited, stored, userConnection, signal);
        return;
      }
      if (waits) {
        await this.store.transaction(() => this.markWaiting(instanceId, seq, stored, signal, false));
        return;
      }
      const now = new Date(await this.store.clockNow());
      const next = nextFlowTarget === null ? null : this.element(resolved, nextFlowTarget);
      const goOn = await this.store.transaction(async () => {
        // Canceled (or failed elsewhere) while the element ran: leave the log as it is.
        if (!(await this.lockRunning(instanceId))) return false;
        // Looked at again with the instance's row held: an attempt stopped meanwhile commits
        // nothing (the transaction rolls back, the abort ends the attempt).
        signal.throwIfAborted();
        const completed = await this.db
          .updateTable("SysProcessElementLog")
          .set({ Status: "Completed", CompletedOn: now, Waiting: false })
          .where("ProcessLogId", "=", instanceId)
          .where("Seq", "=", seq)
          .where("Status", "=", "Running")
          .executeTakeFirst();
        // Another run of the instance (an attempt that went on after its lease was lost, beside
        // its retry) completed or failed this element first: its progress stands, this run stops.
        if (Number(completed.numUpdatedRows) !== 1) return false;
        await this.saveParameters(instanceId, stored);
        if (next) await this.begin(instanceId, seq + 1, next);
        else await this.db.updateTable("SysProcessLog").set({ Status: "Completed", CompletedOn: now }).where("Id", "=", instanceId).execute();
        return true;
      });
      if (!next || !goOn) return;
      current = { seq: seq + 1, element: next, waiting: false };
    }
  }

  /**
   * Makes an element wait for tasks, durably: in one transaction, the element is marked waiting,
   * the parameters are saved, and a continuation of the tasks (when they have all ended, whatever
   * the outcome) is stored that runs the instance again, as its user. The instance's taskId
   * becomes that continuation's. Nothing happens when the instance is no longer running, or when
   * another run of it ended the element first; an attempt stopped meanwhile commits nothing.
   */
  private async awaitTasks(
    instanceId: string,
    seq: number,
    taskIds: readonly string[],
    parameters: string,
    userConnection: UserConnection,
    signal: AbortSignal,
  ): Promise<void> {
    const user = userConnection.currentUser;
    // The store's transaction, not runtime.transaction: the continuation's insert joins it through
    // the async context, on the real drivers and on the store an isolated thread borrows alike.
    await this.runtime.run(() =>
      runAsUser({ userId: user.id, culture: user.culture, timeZone: user.timeZone }, () =>
        this.store.transaction(async () => {
        if (!(await this.markWaiting(instanceId, seq, parameters, signal, true))) return;
        const resume: AwaitedTasks = { seq, taskIds: [...taskIds] };
        const handle = await Task.continueWith([...taskIds], ProcessInstanceTask, { instanceId, resume }, { when: "ended" });
        await this.db.updateTable("SysProcessLog").set({ TaskId: handle.id }).where("Id", "=", instanceId).execute();
        }),
      ),
    );
  }

  /** Where the tasks an element waits for stand: all succeeded, some not ended yet, or one failed. */
  private async awaitedOutcome(taskIds: readonly string[]): Promise<AwaitedOutcome> {
    const pending: string[] = [];
    for (const id of taskIds) {
      const task = await this.runtime.findTask(id);
      if (!task) {
        const error = new Error(`the awaited task ${id} no longer exists`);
        error.name = "TaskNotFoundError";
        return { kind: "failed", error };
      }
      if (task.state === "succeeded") continue;
      if (task.state === "dead" || task.state === "canceled") {
        const last = task.lastError;
        const error = new Error(`${last ? last.message : "it was canceled"} (the awaited task ${task.name} ${task.id} ended ${task.state})`);
        error.name = last?.name ?? (task.state === "canceled" ? "TaskCanceledError" : "Error");
        return { kind: "failed", error };
      }
      pending.push(id);
    }
    return pending.length > 0 ? { kind: "pending", taskIds: pending } : { kind: "succeeded" };
  }

  private element(resolved: ResolvedProcess, id: string): ProcessElementDefinition {
    const element = resolved.definition.elements.get(id);
    if (!element) throw new Error(`process ${resolved.definition.code} has no element ${id}`);
    return element;
  }

  private single(element: ProcessElementDefinition): string {
    const [flow] = element.outgoing;
    if (!flow) throw new Error(`element "${element.name || element.id}" has no outgoing flow`);
    return flow.targetId;
  }

  /**
   * In a transaction: whether the instance is still running, its row locked until the transaction
   * ends. Every change to an instance's log takes the instance's row first (cancel and fail update
   * it first), so a cancel that commits while the engine completes an element either waits for
   * the engine's commit and cancels what it began, or makes the engine leave the log alone; and
   * the two never lock the rows in opposite orders (on PostgreSQL, a deadlock). SQLite's write
   * transaction holds the whole file.
   */
  private async lockRunning(instanceId: string): Promise<boolean> {
    const query = this.db.selectFrom("SysProcessLog").select("Status").where("Id", "=", instanceId);
    const row = await (this.store.dialect === "postgres" ? query.forUpdate() : query).executeTakeFirst();
    return row?.Status === "Running";
  }

  private async begin(instanceId: string, seq: number, element: ProcessElementDefinition): Promise<void> {
    await this.db
      .insertInto("SysProcessElementLog")
      .values({
        Id: randomUUID(),
        ProcessLogId: instanceId,
        Seq: seq,
        ElementId: element.id,
        ElementName: element.name,
        Kind: element.kind,
        Status: "Running",
        Waiting: false,
        AwaitsTasks: false,
        ErrorMessage: null,
        StartedOn: new Date(await this.store.clockNow()),
        CompletedOn: null,
      })
      .execute();
  }

  /**
   * In a transaction: marks the running element waiting (for tasks, or for good) and stores the
   * parameters. False, with nothing written, when the instance no longer runs or another run of
   * it ended the element first (its outcome stands); an attempt stopped meanwhile throws.
   */
  private async markWaiting(instanceId: string, seq: number, parameters: string, signal: AbortSignal, awaitsTasks: boolean): Promise<boolean> {
    if (!(await this.lockRunning(instanceId))) return false;
    signal.throwIfAborted();
    const marked = await this.db
      .updateTable("SysProcessElementLog")
      .set({ Waiting: true, AwaitsTasks: awaitsTasks })
      .where("ProcessLogId", "=", instanceId)
      .where("Seq", "=", seq)
      .where("Status", "=", "Running")
      .executeTakeFirst();
    if (Number(marked.numUpdatedRows) !== 1) return false;
    await this.saveParameters(instanceId, parameters);
    return true;
  }

  /** Stores the parameters, serialized by storedParameters while the element's try held. */
  private async saveParameters(instanceId: string, parameters: string): Promise<void> {
    await this.db.updateTable("SysProcessLog").set({ Parameters: parameters }).where("Id", "=", instanceId).execute();
  }

  /**
   * Puts a running instance and its running element into Error; a canceled one stays canceled.
   * With seq, only while that element is still running: another run of the instance that got
   * further first keeps its progress. With taskId, only while that is still the instance's task.
   * True when the instance went into Error.
   */
  private async fail(instanceId: string, seq: number | null, error: unknown, taskId: string | null = null): Promise<boolean> {
    // Whatever was thrown, read without throwing (an object without a prototype has no String()).
    const thrown = describeThrown(error);
    const message = (error instanceof Error ? `${thrown.name}: ${thrown.message}` : thrown.message).slice(0, 4000);
    const now = new Date(await this.store.clockNow());
    return this.store.transaction(async () => {
      // The instance's row first, as everywhere (see lockRunning), then the element, then the instance.
      if (!(await this.lockRunning(instanceId))) return false;
      if (taskId !== null) {
        const row = await this.db.selectFrom("SysProcessLog").select("TaskId").where("Id", "=", instanceId).executeTakeFirst();
        if (row?.TaskId !== taskId) return false;
      }
      let elements = this.db
        .updateTable("SysProcessElementLog")
        .set({ Status: "Error", ErrorMessage: message, CompletedOn: now, Waiting: false })
        .where("ProcessLogId", "=", instanceId)
        .where("Status", "=", "Running");
      if (seq !== null) elements = elements.where("Seq", "=", seq);
      const failed = await elements.executeTakeFirst();
      if (seq !== null && Number(failed.numUpdatedRows) !== 1) return false;
      await this.db
        .updateTable("SysProcessLog")
        .set({ Status: "Error", ErrorMessage: message, CompletedOn: now })
        .where("Id", "=", instanceId)
        .where("Status", "=", "Running")
        .execute();
      return true;
    });
  }

  /**
   * The task of an instance ended dead without the engine seeing it (its user was deactivated,
   * its attempts ran out on timeouts, its build could not load): the instance goes to Error too.
   */
  async failByTask(taskId: string, error: { name: string; message: string }): Promise<void> {
    const row = await this.db.selectFrom("SysProcessLog").select("Id").where("TaskId", "=", taskId).where("Status", "=", "Running").executeTakeFirst();
    if (!row) return;
    const reason = new Error(error.message);
    reason.name = error.name;
    await this.fail(row.Id, null, reason);
  }
}

/** Elements one run of an instance goes through before it waits or ends; past it, the instance fails (an endless loop). */
const MAX_STEPS_PER_RUN = 1_000;

/** A given value as an error shows it: short, whatever its size or depth. */
function shownValue(value: unknown): string {
  if (typeof value === "string") return JSON.stringify(value.length > 80 ? `${value.slice(0, 80)}...` : value);
  if (value === null || typeof value === "number" || typeof value === "boolean") return String(value);
  if (value instanceof Date) return "a Date object (give a date and time as ISO 8601 text)";
  if (Array.isArray(value)) return `an array of ${value.length}`;
  return typeof value === "object" ? "an object" : typeof value;
}

function convert(type: string, value: unknown, name: string): unknown {
  const fail = (): never => {
    throw new ProcessParameterError(`process parameter ${name} must be ${type}, got ${shownValue(value)}`);
  };
  // A value given as text is read as a default is: decimal 32-bit integers, ISO 8601 dates.
  if (typeof value === "string" && type !== "text" && isProcessParameterType(type) && PARAMETER_TEXT_CHECKS[type](value) !== undefined) fail();
  switch (type) {
    case "integer": {
      const n = typeof value === "string" ? Number(value) : value;
      return typeof n === "number" && Number.isInteger(n) && n >= -(2 ** 31) && n <= 2 ** 31 - 1 ? n : fail();
    }
    case "boolean":
      if (typeof value === "boolean") return value;
      if (value === "true" || value === "false") return value === "true";
      return fail();
    case "guid":
      return typeof value === "string" && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(value) ? value.toLowerCase() : fail();
    case "datetime":
      // A time without an offset is UTC, as a date alone is: the server's time zone plays no part.
      return (typeof value === "string" ? parseIsoInstant(value)?.toISOString() : undefined) ?? fail();
    default:
      return typeof value === "string" ? value : fail();
  }
}
