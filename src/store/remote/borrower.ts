import { AsyncLocalStorage } from "node:async_hooks";
import type { MessagePort } from "node:worker_threads";
import type { DriverTransaction, SqlResult, StorageDriver } from "../driver.ts";
import {
  fromRemoteError,
  MAX_AWAIT_END_MS,
  TASK_METHODS,
  TRANSACTION_ARGUMENT,
  type RemoteReply,
  type RemoteRequest,
  type RemoteStoreInfo,
} from "./protocol.ts";

interface RemoteTransaction extends DriverTransaction {
  readonly txId: number;
  /** False once committed or rolled back: work of its async context then runs outside it. */
  readonly open: boolean;
}

/**
 * The store as an isolated thread sees it: every method is a call to the driver of the worker's
 * process (StoreLender). Transactions are held there; inside `transaction(fn)` every call carries
 * the transaction, like the real drivers' async-context transactions.
 */
export function borrowStore(port: MessagePort, info: RemoteStoreInfo): StorageDriver {
  const pending = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; site: { stack?: string } }>();
  const ambient = new AsyncLocalStorage<RemoteTransaction>();
  let nextId = 1;
  let closed = false;
  port.on("message", (reply: RemoteReply) => {
    const waiter = pending.get(reply.id);
    if (!waiter) return;
    pending.delete(reply.id);
    if (reply.ok) waiter.resolve(reply.value);
    else waiter.reject(fromRemoteError(reply.error, callSite(waiter.site)));
  });
  // Nothing else keeps the thread alive for a reply: the port must not hold it open when idle.
  port.unref();

  type Unsent = RemoteRequest extends infer R ? (R extends RemoteRequest ? Omit<R, "id"> : never) : never;
  const request = (message: Unsent): Promise<unknown> => {
    if (closed) return Promise.reject(new Error("the store is closed"));
    const id = nextId++;
    // Where the task called from (formatted only if the call fails): the store's stack alone ends in the worker's process.
    const site: { stack?: string } = {};
    Error.captureStackTrace(site, request);
    return new Promise<unknown>((resolve, reject) => {
      pending.set(id, { resolve, reject, site });
      if (pending.size === 1) port.ref();
      try {
        port.postMessage({ ...message, id } as RemoteRequest);
      } catch (error) {
        pending.delete(id);
        reject(error instanceof Error ? error : new Error(String(error)));
      }
    }).finally(() => {
      if (pending.size === 0) port.unref();
    });
  };

  const openAmbient = (): RemoteTransaction | undefined => {
    const tx = ambient.getStore();
    return tx?.open ? tx : undefined;
  };

  const call = (method: string, args: unknown[]): Promise<unknown> => {
    const txIndex = TRANSACTION_ARGUMENT[method];
    // As on the real drivers: a transaction of this async context that has ended holds nothing.
    let tx: RemoteTransaction | undefined = openAmbient();
    if (txIndex !== undefined && args.length > txIndex) {
      const given = args[txIndex] as RemoteTransaction | undefined;
      if (given !== undefined) {
        if (typeof given.txId !== "number") throw new Error("the transaction passed does not belong to this store");
        tx = given;
      }
      args = args.slice(0, txIndex);
    }
    return request({ op: "call", method, args, ...(tx ? { txId: tx.txId } : {}) });
  };

  const driver: Partial<StorageDriver> & Record<string, unknown> = {
    dialect: info.dialect,
    capabilities: info.capabilities,
    schema: info.schema,
    description: info.description,
    migrate: async () => undefined,
    // Nothing to ready: the connections are the worker's process's, readied as it started.
    warm: async () => undefined,
    clockShift: () => {
      throw new Error("the database clock can only be moved from the worker's process");
    },
    onWake: () => () => undefined,
    taskEndNotice: async (taskId: string, ms: number): Promise<void> => {
      await request({ op: "awaitEnd", taskId: String(taskId), ms: Math.max(0, Math.min(ms, MAX_AWAIT_END_MS)) });
    },
    close: async () => {
      closed = true;
      for (const w of pending.values()) w.reject(new Error("the store is closed"));
      pending.clear();
      port.close();
    },
    transaction: async <T>(fn: (tx: DriverTransaction) => Promise<T>): Promise<T> => {
      // A transaction started inside another (still open) joins it, as on the real drivers.
      const outer = openAmbient();
      if (outer) return fn(outer);
      const txId = (await request({ op: "begin" })) as number;
      let open = true;
      const tx: RemoteTransaction = {
        txId,
        get open() {
          return open;
        },
        // The proxy, not its target: a runtime compares tx.driver with the driver it holds.
        driver: borrowed,
        execute: async (sql, params = []) => {
          if (!open) throw new Error("the transaction has ended; statements cannot run in it any more");
          const result = (await request({ op: "call", method: "sqlQuery", args: [sql, params], txId })) as SqlResult;
          return asBuffers(result).rows;
        },
      };
      let result: T;
      try {
        result = await ambient.run(tx, () => fn(tx));
      } catch (error) {
        open = false;
        await request({ op: "rollback", txId }).catch(() => undefined);
        throw error;
      }
      open = false;
      await request({ op: "commit", txId });
      return result;
    },
  };
  const borrowed = new Proxy(driver, {
    get(target, property, receiver) {
      if (typeof property !== "string" || property in target) return Reflect.get(target, property, receiver) as unknown;
      if (property === "then") return undefined;
      if (!TASK_METHODS.has(property)) {
        return () => Promise.reject(new Error(`the store method "${property}" is not available to tasks`));
      }
      // Binary columns as the drivers give them in the worker's process: Buffers, not the plain Uint8Arrays a message carries.
      if (property === "sqlQuery") return (...args: unknown[]) => call(property, args).then((result) => asBuffers(result as SqlResult));
      return (...args: unknown[]) => call(property, args);
    },
  }) as unknown as StorageDriver;
  return borrowed;
}

/** The rows with their Uint8Array values as Buffers (over the same memory), in arrays too (PostgreSQL's bytea[]). */
function asBuffers(result: SqlResult): SqlResult {
  for (const row of result.rows) {
    for (const [key, value] of Object.entries(row)) row[key] = asBuffer(value);
  }
  return result;
}

function asBuffer(value: unknown): unknown {
  if (value instanceof Uint8Array) return Buffer.isBuffer(value) ? value : Buffer.from(value.buffer, value.byteOffset, value.byteLength);
  if (Array.isArray(value)) for (let i = 0; i < value.length; i++) value[i] = asBuffer(value[i]);
  return value;
}

/** The call's stack in the thread, without its first line (the holder's own "Error" line). */
function callSite(site: { stack?: string }): string {
  const stack = site.stack ?? "";
  const firstBreak = stack.indexOf("\n");
  return firstBreak >= 0 ? stack.slice(firstBreak) : "";
}
