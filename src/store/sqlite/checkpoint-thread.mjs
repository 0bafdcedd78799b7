/**
 * The SQLite stores' checkpoint thread (see checkpointer.ts): one per process, with a connection
 * of its own to each database file that a store of the process writes to. It copies a file's
 * write-ahead log back into the file when asked, so that the stores' connections, on the
 * process's main thread, do not stop for it after their commits.
 *
 * Plain JavaScript: it needs no TypeScript loader, and the worker starts it without the command
 * line's loader flags.
 *
 * Messages in:  { t: "open", path }         a store of the process uses this file (counted)
 *               { t: "checkpoint", path }   coalesced: one checkpoint for all that arrived meanwhile
 *               { t: "close", path, id }    that store closes; the connection closes with the last
 * Messages out: { t: "failed", path, message }  the file cannot be checkpointed from here (its
 *                                               stores checkpoint by themselves again)
 *               { t: "closed", id }             answer to "close"
 */
import { createRequire } from "node:module";
import { parentPort } from "node:worker_threads";

const port = parentPort;
if (!port) throw new Error("checkpoint-thread.mjs runs as a worker thread");

const Database = createRequire(import.meta.url)("better-sqlite3");

/** path -> { db, stores } */
const files = new Map();
const wanted = new Set();
let scheduled = false;

function fail(path, file, error) {
  try {
    file.db.close();
  } catch {
    // A connection that failed: nothing more to do with it.
  }
  files.delete(path);
  port.postMessage({ t: "failed", path, message: error instanceof Error ? error.message : String(error) });
}

function open(path) {
  const file = files.get(path);
  if (file) {
    file.stores++;
    return;
  }
  try {
    const db = new Database(path, { fileMustExist: true });
    db.pragma("busy_timeout = 0");
    files.set(path, { db, stores: 1 });
  } catch (error) {
    port.postMessage({ t: "failed", path, message: error instanceof Error ? error.message : String(error) });
  }
}

function checkpointWanted() {
  scheduled = false;
  for (const path of wanted) {
    const file = files.get(path);
    if (!file) continue;
    try {
      // PASSIVE: copies what no reader still needs, without waiting for (or blocking) writers.
      file.db.pragma("wal_checkpoint(PASSIVE)");
    } catch (error) {
      // Busy (another process checkpoints, or holds a lock): the next request tries again.
      if (error?.code !== "SQLITE_BUSY" && error?.code !== "SQLITE_LOCKED") fail(path, file, error);
    }
  }
  wanted.clear();
}

function close(path, id) {
  const file = files.get(path);
  if (file && --file.stores === 0) {
    files.delete(path);
    wanted.delete(path);
    try {
      file.db.close();
    } catch {
      // Closed already by a failure: nothing more to do.
    }
  }
  port.postMessage({ t: "closed", id });
}

port.on("message", (message) => {
  switch (message?.t) {
    case "open":
      return open(message.path);
    case "checkpoint":
      wanted.add(message.path);
      if (!scheduled) {
        scheduled = true;
        setImmediate(checkpointWanted);
      }
      return;
    case "close":
      return close(message.path, message.id);
  }
});
