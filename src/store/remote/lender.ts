import { AsyncLocalStorage } from "node:async_hooks";
import type { MessagePort } from "node:worker_threads";
import type { DriverTransaction, StorageDriver } from "../driver.ts";
import {
  MAX_ARGUMENTS,
  MAX_AWAIT_END_MS,
  TASK_METHODS,
  toRemoteError,
  TRANSACTION_ARGUMENT,
  type RemoteReply,
  type RemoteRequest,
  type RemoteStoreInfo,
} from "./protocol.ts";

interface OpenTransaction {
  readonly tx: DriverTransaction;
  /** Runs a call in the transaction's async context, where the driver sees it as open. */
  readonly runIn: <R>(fn: () => R) => R;
  readonly commit: () => void;
  readonly rollback: (reason: Error) => void;
  /** A continuation was stored in it: its predecessors may have ended already (see onContinuation). */
  continued: boolean;
}

/** What the lending process hears of the thread's work, and what it tells the thread. */
export interface LenderHooks {
  /** Called after the thread may have stored new tasks (an insert, a commit): wakes the worker. */
  readonly onWrite?: () => void;
  /**
   * Called with the task names of each insert the thread made (its Task.startNew calls, which
   * the process counts as its own starts), when the insert returned, in a transaction or not.
   */
  readonly onInserted?: (names: readonly string[]) => void;
  /**
   * Called once the thread stored a continuation (Task.continueWith), when it is committed: its
   * predecessors may have ended already, and the thread has no continuer of its own to start it.
   */
  readonly onContinuation?: () => void;
  /** Settles when this process sees the task end, or after `ms` (a thread's wait for a task: see taskEndNotice). */
  readonly awaitEnd?: (taskId: string, ms: number) => Promise<void>;
}

export function storeInfoOf(driver: StorageDriver): RemoteStoreInfo {
  return { dialect: driver.dialect, capabilities: { ...driver.capabilities }, schema: driver.schema, description: driver.description };
}

/**
 * Serves a driver to one isolated thread over a MessagePort. The thread's transactions are held
 * open here until it commits or rolls back; when the thread goes away (it finished, or was stopped
 * at a limit), `close()` rolls back whatever it left open, so a killed task cannot leave a
 * transaction (or SQLite's write lock) behind.
 */
export class StoreLender {
  private readonly open = new Map<number, OpenTransaction>();
  /** Settles when the driver has committed or rolled back the transaction. */
  private readonly endings = new Map<number, Promise<unknown>>();
  private nextTxId = 1;
  private closed = false;

  constructor(
    private readonly driver: StorageDriver,
    private readonly port: MessagePort,
    private readonly hooks: LenderHooks = {},
  ) {
    // What arrives is whatever the task's code posted: checked before anything is read from it.
    port.on("message", (message: unknown) => {
      const id = (message as { id?: unknown } | null)?.id;
      // No id to answer to: a message of no caller, dropped.
      if (typeof id !== "number" || !Number.isSafeInteger(id)) return;
      let handled: Promise<unknown>;
      try {
        handled = this.handle(checkedRequest(message as RemoteRequest));
      } catch (error) {
        handled = Promise.reject(error as Error);
      }
      handled.then(
        (value) => this.reply({ id, ok: true, value }),
        (error: unknown) => this.reply({ id, ok: false, error: toRemoteError(error) }),
      );
    });
  }

  private reply(message: RemoteReply): void {
    if (this.closed) return;
    try {
      this.port.postMessage(message);
    } catch (error) {
      // A value the structured clone cannot carry: say so to the caller instead of hanging it.
      this.port.postMessage({ id: message.id, ok: false, error: toRemoteError(error) } satisfies RemoteReply);
    }
  }

  private async handle(request: RemoteRequest): Promise<unknown> {
    if (this.closed) throw new Error("the store is no longer lent to this thread");
    switch (request.op) {
      case "begin":
        return this.begin();
      case "commit":
        return this.end(request.txId, null);
      case "rollback":
        return this.end(request.txId, new Error("rolled back by the task"));
      case "call":
        return this.call(request.method, request.args, request.txId);
      case "awaitEnd":
        await (this.hooks.awaitEnd?.(request.taskId, request.ms) ?? new Promise((resolve) => setTimeout(resolve, request.ms).unref()));
        return null;
    }
  }

  private async call(method: string, args: readonly unknown[], txId: number | undefined): Promise<unknown> {
    const fn = TASK_METHODS.has(method) ? (this.driver as unknown as Record<string, unknown>)[method] : undefined;
    if (typeof fn !== "function") throw new Error(`the store method ${JSON.stringify(method.slice(0, 100))} is not available to tasks`);
    const callArgs = [...args];
    const open = txId === undefined ? undefined : this.open.get(txId);
    if (txId !== undefined && !open) throw new Error("the transaction has ended; statements cannot run in it any more");
    const txIndex = TRANSACTION_ARGUMENT[method];
    if (open && txIndex !== undefined) callArgs[txIndex] = open.tx;
    const invoke = (): Promise<unknown> => (fn as (...a: unknown[]) => Promise<unknown>).apply(this.driver, callArgs);
    const value = await (open ? open.runIn(invoke) : invoke());
    const inserted = insertedNames(method, args);
    if (inserted.length > 0) this.hooks.onInserted?.(inserted);
    if (!open && (method === "taskInsert" || method === "taskInsertMany")) this.hooks.onWrite?.();
    if (method === "taskInsertContinuation") {
      if (open) open.continued = true;
      else this.hooks.onContinuation?.();
    }
    return value;
  }

  private begin(): Promise<number> {
    const txId = this.nextTxId++;
    return new Promise<number>((resolveBegin, rejectBegin) => {
      let began = false;
      const ended = this.driver.transaction(
        (tx) =>
          new Promise<void>((commit, rollback) => {
            began = true;
            // The thread went away while this transaction waited for the connection.
            if (this.closed) {
              rollback(new Error("the task's thread ended before its transaction began"));
              return;
            }
            this.open.set(txId, { tx, runIn: AsyncLocalStorage.snapshot(), commit: () => commit(), rollback, continued: false });
            resolveBegin(txId);
          }),
      );
      this.endings.set(txId, ended);
      const forget = (): void => {
        this.open.delete(txId);
        this.endings.delete(txId);
      };
      ended.then(forget, (error: unknown) => {
        forget();
        if (!began) rejectBegin(error);
      });
    });
  }

  private async end(txId: number, rollbackReason: Error | null): Promise<void> {
    const open = this.open.get(txId);
    const ended = this.endings.get(txId);
    if (!open || !ended) throw new Error("the transaction has already ended");
    if (rollbackReason) {
      open.rollback(rollbackReason);
      await ended.catch(() => undefined);
      return;
    }
    open.commit();
    await ended;
    this.hooks.onWrite?.();
    if (open.continued) this.hooks.onContinuation?.();
  }

  /** Whether the thread has a transaction open (begun and not yet committed or rolled back). */
  get holdsTransaction(): boolean {
    return this.open.size > 0;
  }

  /** Rolls back what the thread left open and stops serving it. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const open of this.open.values()) open.rollback(new Error("the task's thread ended inside a transaction"));
    await Promise.all([...this.endings.values()].map((e) => e.catch(() => undefined)));
    this.port.close();
  }
}

/**
 * A request as the borrower sends it, or an error that says what is wrong with it: the lender
 * answers a malformed or unknown request with an error, never with a success or a crash.
 */
function checkedRequest(message: RemoteRequest): RemoteRequest {
  const txId = (message as { txId?: unknown }).txId;
  const validTx = (required: boolean): boolean => (txId === undefined ? !required : typeof txId === "number" && Number.isSafeInteger(txId));
  switch ((message as { op?: unknown }).op) {
    case "begin":
      return message;
    case "commit":
    case "rollback":
      if (!validTx(true)) throw new TypeError(`a ${String(message.op)} request needs the id of its transaction`);
      return message;
    case "awaitEnd": {
      const { taskId, ms } = message as { taskId?: unknown; ms?: unknown };
      if (typeof taskId !== "string" || taskId.length > 100) throw new TypeError("an awaitEnd request needs a task id");
      if (typeof ms !== "number" || !(ms >= 0 && ms <= MAX_AWAIT_END_MS)) throw new TypeError(`an awaitEnd request needs a wait from 0 to ${MAX_AWAIT_END_MS} ms`);
      return message;
    }
    case "call": {
      const { method, args } = message as { method?: unknown; args?: unknown };
      if (typeof method !== "string") throw new TypeError("a call request needs the name of a store method");
      if (!Array.isArray(args) || args.length > MAX_ARGUMENTS) throw new TypeError(`a call request needs its arguments as an array of at most ${MAX_ARGUMENTS}`);
      if (!validTx(false)) throw new TypeError("a call request's transaction id must be a number");
      return message;
    }
    default:
      throw new TypeError(`unknown store request ${JSON.stringify(String((message as { op?: unknown }).op).slice(0, 100))}`);
  }
}

/** The task names an insert stored (args as the driver took them, so already checked by it). */
function insertedNames(method: string, args: readonly unknown[]): string[] {
  const nameOf = (p: unknown): string | null => {
    const name = (p as { name?: unknown } | null)?.name;
    return typeof name === "string" ? name : null;
  };
  if (method === "taskInsert" || method === "taskInsertContinuation") {
    const name = nameOf(args[0]);
    return name === null ? [] : [name];
  }
  if (method === "taskInsertMany" && Array.isArray(args[0])) {
    return args[0].map(nameOf).filter((name): name is string => name !== null);
  }
  return [];
}
