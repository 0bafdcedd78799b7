/** A worker holds its process until it is stopped, on SQLite without threads too. */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { join } from "node:path";
import { it } from "node:test";
import { fileURLToPath } from "node:url";
import { tempDb, tempDir } from "../helpers.ts";

const root = fileURLToPath(new URL("../..", import.meta.url));

it("keeps an idle worker's process running until the runtime stops", () => {
  const child = spawnSync(process.execPath, ["--import", "tsx", join(root, "test/fixtures/idle-worker.ts"), tempDb(tempDir())], {
    cwd: root,
    encoding: "utf8",
    timeout: 30_000,
  });
  assert.equal(child.status, 0, child.stderr);
  assert.deepEqual(child.stdout.trim().split("\n"), ["alive", "stopped"]);
});
