import assert from "node:assert/strict";
import { it } from "node:test";
import pg from "pg";
import { createHttpServer } from "../../src/http/server.ts";
import { STORE_CHECK_LIMIT_MS } from "../../src/observability/time-limit.ts";
import { settledWithinMockedMs, startRuntime, TEST_POSTGRES_URL, tempDir, tempSchema } from "../helpers.ts";

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

it("GET /healthz answers 503 within the store check's limit when the store hangs", async (t) => {
  const runtime = await startRuntime({ dir: tempDir(), worker: false });
  const app = await createHttpServer({ runtime });
  const driver = runtime.driver as { ping: () => Promise<void> };
  driver.ping = () => new Promise(() => undefined);
  t.mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const answer = await settledWithinMockedMs(t.mock.timers, app.inject({ method: "GET", url: "/healthz" }), STORE_CHECK_LIMIT_MS + 1_000, "the health check");
    assert.equal(answer.statusCode, 503);
  } finally {
    t.mock.timers.reset();
    await app.close();
    await runtime.stop();
  }
});

it("GET /healthz answers 503 on PostgreSQL once the store's schema is gone", async () => {
  const schema = tempSchema();
  const runtime = await startRuntime({ dir: tempDir(), db: `${TEST_POSTGRES_URL}?schema=${schema}`, worker: false });
  const app = await createHttpServer({ runtime });
  try {
    assert.equal((await app.inject({ method: "GET", url: "/healthz" })).statusCode, 200);
    const admin = new pg.Client({ connectionString: TEST_POSTGRES_URL });
    await admin.connect();
    try {
      await admin.query(`DROP SCHEMA "${schema}" CASCADE`);
    } finally {
      await admin.end();
    }
    assert.equal((await app.inject({ method: "GET", url: "/healthz" })).statusCode, 503);
  } finally {
    await app.close();
    await runtime.stop();
  }
});
