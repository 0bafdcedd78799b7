/**
 * Takes the screenshots of the web application shown in README.md (docs/screenshots/*.png): a
 * fresh database with the worked example, some Activities and tasks, and the machine's Chromium.
 *
 *   node --import tsx tools/screenshots.ts
 */
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Page } from "playwright-core";
import { createHttpServer } from "../src/http/server.ts";
import { ensureWebAssets } from "../src/http/web-assets.ts";
import { Task } from "../src/index.ts";
import { Activity } from "../src/platform/entities/activity.ts";
import { Platform } from "../src/platform/platform.ts";
import { MarkerTask } from "../test/browser/fixtures/marker-task.ts";

const root = join(import.meta.dirname, "..");
const out = join(root, "docs", "screenshots");
const dir = mkdtempSync(join(tmpdir(), "underway-screenshots-"));
process.env.UNDERWAY_EXAMPLE_DELAY_MS = "1500";

await ensureWebAssets({ log: console.log });
const platform = await Platform.start({
  db: join(dir, "demo.db"),
  logger: false,
  isolation: "none",
  secret: "screenshots secret value",
  adminPassword: "supervisor-pass",
  packages: [join(root, "examples", "background-activity")],
  tasks: [MarkerTask],
});
const app = await createHttpServer({ runtime: platform.runtime, platform, changeFeedIntervalMs: 200 });
await app.listen({ port: 0, host: "127.0.0.1" });
const address = app.server.address();
const url = `http://127.0.0.1:${typeof address === "object" && address ? address.port : 0}`;
const context = await chromium.launchPersistentContext(join(dir, "profile"), {
  executablePath: process.env.UNDERWAY_CHROMIUM ?? "/usr/bin/chromium",
  headless: true,
  viewport: { width: 1360, height: 860 },
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic", "--no-first-run", "--disable-component-update", "--disable-sync"],
});

try {
  const supervisor = await platform.users.getByLogin("Supervisor");
  if (!supervisor) throw new Error("no Supervisor");
  const alice = await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice Andersen" });
  for (const [user, title] of [
    [supervisor, "Call back the Müller account about the renewal"],
    [supervisor, "Prepare the quarterly pipeline review"],
    [alice, "Send the signed contract to legal"],
    [supervisor, "Check the invoice run of November"],
  ] as const) {
    const a = new Activity(platform.userConnection(user));
    a.title = title;
    a.setDefColumnValues();
    await a.save();
  }
  const marker = join(dir, "marker");
  writeFileSync(marker, "");
  const failing = await platform.runAs(supervisor, () =>
    Task.startNewWithUserConnection(MarkerTask, { markerFile: marker, note: "an import of 1,200 contacts from the trade fair" }),
  );
  await failing.wait().catch(() => undefined);
  for (let i = 0; i < 3; i++) await platform.runAs(alice, () => Task.startNewWithUserConnection(MarkerTask, { markerFile: join(dir, "none"), note: `batch ${i + 1}` }));

  const page = await context.newPage();
  const shot = (name: string): Promise<Buffer> => page.screenshot({ path: join(out, `${name}.png`) });
  await page.goto(url);
  await page.getByLabel("Login").waitFor();
  await shot("sign-in");
  await page.getByLabel("Login").fill("Supervisor");
  await page.getByLabel("Password").fill("supervisor-pass");
  await page.getByRole("button", { name: "Sign in" }).click();

  await page.getByRole("link", { name: "Processes" }).click();
  const example = page.getByTestId("process-library").locator("li", { hasText: "Background Task Example Process" });
  await example.getByRole("button", { name: "Run" }).click();
  await page.getByTestId("run-message").waitFor();
  await page.getByTestId("bpmn-diagram").locator('[data-element-id="ScriptTask_CreateBackgroundTask"]').waitFor();
  await page.getByTestId("process-log").locator("tbody tr", { hasText: "Completed" }).first().waitFor();
  await settle(page);
  await shot("processes");
  await page.getByTestId("process-log").getByRole("link").first().click();
  await page.getByTestId("instance-status").filter({ hasText: "Completed" }).waitFor();
  await settle(page);
  await shot("process-instance");

  await page.getByRole("link", { name: "Activities" }).click();
  await page.getByText("Activity created by background task").waitFor({ timeout: 30_000 });
  await settle(page);
  await shot("activities");

  await page.getByRole("link", { name: "Background tasks" }).click();
  await page.getByTestId("tasks").locator(`tr[data-task-id="${failing.id}"]`).waitFor();
  await settle(page);
  await shot("task-centre");
  await page.goto(`${url}/#/tasks/${failing.id}`);
  await page.getByTestId("task-errors").getByText("Stack").click();
  await settle(page);
  await shot("task");

  await page.getByRole("link", { name: "Configuration" }).click();
  await page.locator('[data-schema="UsrActivityData"]').click();
  const editor = page.getByTestId("source-editor");
  await editor.locator(".cm-content").click();
  await page.keyboard.press("Control+End");
  await page.keyboard.insertText('\n\nexport const broken: number = "not a number";');
  await page.getByRole("button", { name: "Publish" }).click();
  await editor.locator(".cm-lintRange-error").waitFor();
  await settle(page);
  await shot("configuration-source");
  await page.locator('[data-schema="UsrBackgroundTaskExampleProcess"]').click();
  await page.getByTestId("bpmn-modeler").locator('[data-element-id="ScriptTask_CreateBackgroundTask"]').click();
  await page.getByTestId("script-editor").waitFor();
  await settle(page);
  await shot("configuration-process");
  console.log(`screenshots written to ${out}`);
} finally {
  await context.close();
  await app.close();
  await platform.stop({ graceMs: 0 });
  rmSync(dir, { recursive: true, force: true });
}

/** Lets live updates and drawings finish before a picture is taken. */
async function settle(page: Page): Promise<void> {
  await page.waitForLoadState("networkidle").catch(() => undefined);
  await page.waitForTimeout(400);
}
