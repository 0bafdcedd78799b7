/**
 * The SQLite store's checkpoint thread (see checkpointer.ts): a connection of its own to the
 * database file that copies the write-ahead log back into the file when asked, so that the
 * store's connection, on the process's main thread, does not stop for it after its commits.
 *
 * Plain JavaScript, loaded without the TypeScript loader: it boots in a few milliseconds.
 * Messages in: "checkpoint" (coalesced: one checkpoint for all that arrived meanwhile), "close".
 * Messages out: { t: "failed", message } once, when the database cannot be checkpointed from here;
 * the thread then ends and the store's connection checkpoints by itself again.
 */
import { createRequire } from "node:module";
import { parentPort, workerData } from "node:worker_threads";

const port = parentPort;
if (!port) throw new Error("checkpoint-thread.mjs runs as a worker thread");

let db = null;
let wanted = false;

function fail(error) {
  port.postMessage({ t: "failed", message: error instanceof Error ? error.message : String(error) });
  close();
}

function close() {
  try {
    db?.close();
  } catch {
    // Closing a connection that failed: nothing more to do.
  }
  db = null;
  port.close();
}

function checkpoint() {
  wanted = false;
  if (!db) return;
  try {
    // PASSIVE: copies what no reader still needs, without waiting for (or blocking) writers.
    db.pragma("wal_checkpoint(PASSIVE)");
  } catch (error) {
    // Busy (another process checkpoints, or holds a lock): the next request tries again.
    if (error?.code === "SQLITE_BUSY" || error?.code === "SQLITE_LOCKED") return;
    fail(error);
  }
}

try {
  const Database = createRequire(import.meta.url)("better-sqlite3");
  db = new Database(workerData.path, { fileMustExist: true });
  db.pragma("busy_timeout = 0");
} catch (error) {
  fail(error);
}

port.on("message", (message) => {
  if (message === "close") return close();
  if (message === "checkpoint" && !wanted) {
    wanted = true;
    setImmediate(checkpoint);
  }
});
