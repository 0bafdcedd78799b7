import assert from "node:assert/strict";
import { it } from "node:test";
import { createHttpServer } from "../../src/http/server.ts";
import { startRuntime, tempDir } from "../helpers.ts";

it("GET /healthz answers with the store and worker, and 503 once the store is gone", async () => {
  const runtime = await startRuntime({ dir: tempDir() });
  const app = await createHttpServer({ runtime });
  const ok = await app.inject({ method: "GET", url: "/healthz" });
  assert.equal(ok.statusCode, 200);
  const body = ok.json() as { status: string; store: string; worker: { id: string; active: number } };
  assert.equal(body.status, "ok");
  assert.equal(body.store, "sqlite");
  assert.equal(body.worker.id, runtime.worker?.id);
  await runtime.stop();
  const down = await app.inject({ method: "GET", url: "/healthz" });
  assert.equal(down.statusCode, 503);
  assert.match((down.json() as { error: string }).error, /is closed/);
  await app.close();
});
