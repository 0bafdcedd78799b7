/**
 * A platform on a PostgreSQL store given no secret cannot start tasks with a user connection (a
 * process's script tasks are such): it says so as it starts, and a process run answers 503 with
 * what to set, rather than a bare 500.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { after, it } from "node:test";
import { createHttpServer } from "../../src/http/server.ts";
import type { Logger } from "../../src/tasks/logger.ts";
import { tempSchema, TEST_POSTGRES_URL } from "../helpers.ts";
import { startPlatform } from "../platform/helpers.ts";

const EXAMPLE = join(import.meta.dirname, "..", "..", "examples", "background-activity");

it("warns at start without a secret on PostgreSQL, and a process run answers 503 saying what to set", async () => {
  const before = process.env.UNDERWAY_SECRET;
  delete process.env.UNDERWAY_SECRET;
  after(() => {
    if (before !== undefined) process.env.UNDERWAY_SECRET = before;
  });
  const warnings: string[] = [];
  const none = (): void => undefined;
  const logger: Logger = { debug: none, info: none, error: none, warn: (o: object | string, m?: string) => warnings.push(typeof o === "string" ? o : (m ?? "")), child: () => logger };
  const platform = await startPlatform("postgres", { db: `${TEST_POSTGRES_URL}?schema=${tempSchema()}`, secret: undefined, logger, packages: [EXAMPLE], isolation: "none" });
  assert.ok(
    warnings.some((w) => /this store has no server secret: every process run and every task started with a user connection will be refused/.test(w)),
    `warnings: ${JSON.stringify(warnings)}`,
  );
  const app = await createHttpServer({ runtime: platform.runtime, platform, webRoot: false });
  after(() => app.close());
  const login = await app.inject({ method: "POST", url: "/api/auth/login", payload: { login: "Supervisor", password: "supervisor-pass" } });
  const { token } = login.json() as { token: string };
  const run = await app.inject({ method: "POST", url: "/api/processes/UsrBackgroundTaskExampleProcess/run", headers: { authorization: `Bearer ${token}` }, payload: {} });
  assert.equal(run.statusCode, 503, run.body);
  assert.match((run.json() as { error: string }).error, /need a server secret on this store: set UNDERWAY_SECRET/);
});
