import assert from "node:assert/strict";
import { createServer, connect, type Socket } from "node:net";
import { after, it } from "node:test";
import pg from "pg";
import { Listener } from "../../src/store/postgres/listener.ts";
import { TEST_POSTGRES_URL, until } from "../helpers.ts";

/** A TCP proxy to the server whose open connections can be frozen: a half-open socket, simulated. */
async function freezableProxy(): Promise<{ port: number; freeze: () => void; connections: () => number }> {
  const target = new URL(TEST_POSTGRES_URL);
  const pairs: { client: Socket; server: Socket; frozen: boolean }[] = [];
  const server = createServer((client) => {
    const upstream = connect(Number(target.port || 5432), target.hostname);
    const pair = { client, server: upstream, frozen: false };
    pairs.push(pair);
    client.on("data", (d) => {
      if (!pair.frozen) upstream.write(d);
    });
    upstream.on("data", (d) => {
      if (!pair.frozen) client.write(d);
    });
    const close = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.on("error", close);
    upstream.on("error", close);
    client.on("close", close);
    upstream.on("close", close);
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  after(() => {
    for (const p of pairs) {
      p.client.destroy();
      p.server.destroy();
    }
    server.close();
  });
  const address = server.address();
  if (!address || typeof address === "string") throw new Error("no proxy address");
  return {
    port: address.port,
    // Existing connections stop passing data in both directions, and nobody is told.
    freeze: () => {
      for (const p of pairs) p.frozen = true;
    },
    connections: () => pairs.filter((p) => !p.frozen && !p.client.destroyed).length,
  };
}

it("replaces a LISTEN connection that went silent (half-open) and wakes after reconnecting", async () => {
  const proxy = await freezableProxy();
  const url = new URL(TEST_POSTGRES_URL);
  url.host = `127.0.0.1:${proxy.port}`;
  const channel = `halfopen_${process.pid}`;
  let wakes = 0;
  const listener = new Listener({
    client: { connectionString: url.toString() },
    channel,
    quotedChannel: `"${channel}"`,
    wake: () => wakes++,
    healthCheckMs: 3_600_000, // checked by hand below
    healthTimeoutMs: 300,
    minDelayMs: 10,
  });
  after(() => listener.stop());
  await listener.ensure();
  const notifier = new pg.Client({ connectionString: TEST_POSTGRES_URL });
  await notifier.connect();
  after(() => notifier.end());
  const notify = () => notifier.query("SELECT pg_notify($1, '')", [channel]);

  await notify();
  await until(() => wakes === 1, "the first notification");
  assert.equal(await listener.checkHealth(), true);

  proxy.freeze();
  await notify();
  await new Promise((r) => setTimeout(r, 100));
  assert.equal(wakes, 1, "a frozen connection delivers nothing");
  assert.equal(await listener.checkHealth(), false);
  // Replaced: a new connection, and one wake for what may have been missed meanwhile.
  await until(() => wakes === 2 && proxy.connections() === 1, "the listener to reconnect and wake");
  await notify();
  await until(() => wakes === 3, "notifications on the new connection");
});
