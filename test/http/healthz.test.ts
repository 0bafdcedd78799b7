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
  // A store that stops answering: its reason (here an address) goes to the log, not to the caller.
  const driver = runtime.driver as { ping: () => Promise<void> };
  const ping = driver.ping;
  driver.ping = () => Promise.reject(new Error("connect ECONNREFUSED 10.0.0.5:5432"));
  const refused = await app.inject({ method: "GET", url: "/healthz" });
  driver.ping = ping;
  assert.equal(refused.statusCode, 503);
  assert.doesNotMatch(refused.body, /10\.0\.0\.5/);
  assert.deepEqual(refused.json(), { status: "unavailable", error: "the store does not answer; the server's log says why" });
  await runtime.stop();
  const down = await app.inject({ method: "GET", url: "/healthz" });
  assert.equal(down.statusCode, 503);
  await app.close();
});
