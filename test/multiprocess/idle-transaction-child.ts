/**
 * Child process of connection-loss.test.ts (not a test file itself):
 * `node --import tsx idle-transaction-child.ts <postgres URL> <schema>`.
 *
 * Opens a runtime.transaction, runs a statement, has the server terminate the transaction's
 * connection while the transaction waits between two statements (as application code does while
 * it awaits something else), then tries the next statement. Prints one JSON line
 * `{ "outcome": "committed" | "rejected: <message>", "ping": "ok" | "<error>" }` and exits 0 —
 * when the process survives the loss.
 */
import pg from "pg";
import { createRuntime } from "../../src/index.ts";

const [baseUrl, schema] = process.argv.slice(2);
if (!baseUrl || !schema) throw new Error("usage: idle-transaction-child.ts <postgres URL> <schema>");
const applicationName = `${schema}_tx`;
const url = new URL(baseUrl);
url.searchParams.set("schema", schema);
url.searchParams.set("application_name", applicationName);

const runtime = createRuntime({ db: url.toString(), worker: false, maintenance: false, logger: false });
await runtime.start();
const admin = new pg.Client({ connectionString: baseUrl, application_name: `${schema}_tx_admin` });
await admin.connect();
const backendsOfRuntime = async (): Promise<number> =>
  (
    await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1", [
      applicationName,
    ])
  ).rows[0]?.n ?? 0;

let outcome: string;
try {
  await runtime.transaction(async (tx) => {
    await tx.execute("SELECT 1");
    await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = $1", [applicationName]);
    const end = Date.now() + 5_000;
    while ((await backendsOfRuntime()) > 0 && Date.now() < end) await new Promise((r) => setTimeout(r, 5));
    await new Promise((r) => setTimeout(r, 50)); // the client reads the server's goodbye meanwhile
    await tx.execute("SELECT 2");
  });
  outcome = "committed";
} catch (error) {
  outcome = `rejected: ${(error as Error).message}`;
}
const ping = await runtime.driver.ping().then(
  () => "ok",
  (error: unknown) => String(error),
);
console.log(JSON.stringify({ outcome, ping }));
await admin.end();
await runtime.stop();
