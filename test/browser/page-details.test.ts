/**
 * Details of the pages that only show with time or with an unusual address: relative times move
 * on, an action's notice goes once the task moves on, an address with no task number says so,
 * and the code editors have accessible names.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Task } from "../../src/index.ts";
import { tempDir } from "../helpers.ts";
import { MarkerTask } from "./fixtures/marker-task.ts";
import { openBrowser, signIn, startApp, SUPERVISOR_PASSWORD, watchPageErrors } from "./helpers.ts";

describe("the web application: details", () => {
  it("moves relative times on, drops a stale notice, explains a malformed task address, names the editors", async () => {
    const { url, platform } = await startApp({ tasks: [MarkerTask] });
    const marker = join(tempDir(), "fail-while-here");
    writeFileSync(marker, "");
    const supervisor = await platform.users.getByLogin("Supervisor");
    assert.ok(supervisor);
    const handle = await platform.runAs(supervisor, () => Task.startNewWithUserConnection(MarkerTask, { markerFile: marker, note: "" }));
    await assert.rejects(handle.wait({ timeoutMs: 10_000 }), /marker file is still there/);

    const page = await (await openBrowser()).newPage();
    const errors = watchPageErrors(page);
    // The page's clock runs as ever until moved on by hand.
    await page.clock.install();
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.getByRole("link", { name: "Background tasks" }).click();
    const row = page.getByTestId("tasks").locator(`tr[data-task-id="${handle.id}"]`);
    await row.getByText(/^\d+ s ago$/).waitFor();
    await page.clock.fastForward("03:00");
    await row.getByText("3 min ago").waitFor();

    // Retry: the notice speaks of a queued (or running) task, and goes once it died again
    // (which may come before the page reads the task again).
    await row.getByRole("link", { name: "MarkerTask" }).click();
    await page.getByTestId("task-state").filter({ hasText: "dead" }).waitFor();
    await page.getByRole("button", { name: "Retry" }).click();
    await page.getByTestId("task-errors").getByText("Attempt 2").waitFor({ timeout: 15_000 });
    await page.getByTestId("task-state").filter({ hasText: "dead" }).waitFor();
    await page.getByText("Queued again.").waitFor({ state: "detached" });

    // An address whose task number is not one: said so, without the API's schema words.
    await page.goto(`${url}/#/tasks/abc`);
    await page.getByText(`There is no task "abc": a task's number is written in digits, as in #/tasks/42.`).waitFor();
    assert.doesNotMatch(await page.locator("main").innerText(), /params|pattern|must match/);

    // The code editors carry accessible names.
    await page.goto(`${url}/#/configuration`);
    await page.locator('[data-schema="UsrActivityData"]').click();
    await page.getByRole("textbox", { name: "Source of UsrActivityData" }).waitFor();
    await page.locator('[data-schema="UsrBackgroundTaskExampleProcess"]').click();
    await page.getByTestId("bpmn-modeler").locator('[data-element-id="ScriptTask_CreateBackgroundTask"]').click();
    await page.getByRole("textbox", { name: "Script of Create background task" }).waitFor();
    assert.deepEqual(errors, []);
  });

  it("shows times in the signed-in user's time zone and culture, not the browser's", async () => {
    const { url, platform } = await startApp({ tasks: [MarkerTask] });
    const user = await platform.users.create({ login: "tokyo", password: "tokyo-pass-1", timeZone: "Asia/Tokyo", culture: "de-DE" });
    const handle = await platform.runAs(user, () => Task.startNewWithUserConnection(MarkerTask, { markerFile: join(tempDir(), "absent"), note: "" }));
    await handle.wait({ timeoutMs: 10_000 });
    const createdAt = (await platform.runtime.getTask(handle.id))?.createdAt;
    assert.ok(createdAt);

    const page = await (await openBrowser({ timezoneId: "America/New_York" })).newPage();
    const errors = watchPageErrors(page);
    await signIn(page, url, "tokyo", "tokyo-pass-1");
    await page.goto(`${url}/#/tasks/${handle.id}`);
    const created = page.getByTestId("task-created");
    await created.waitFor();
    const style = { dateStyle: "medium", timeStyle: "medium" } as const;
    const spaces = (s: string) => s.replace(/\s/gu, " ");
    const shown = spaces(await created.innerText());
    assert.equal(shown, spaces(new Intl.DateTimeFormat("de-DE", { ...style, timeZone: "Asia/Tokyo" }).format(createdAt)));
    assert.notEqual(shown, spaces(new Intl.DateTimeFormat("en-US", { ...style, timeZone: "America/New_York" }).format(createdAt)));
    assert.deepEqual(errors, []);
  });

  it("cancels a task once on a double-click of Cancel, and says so without an error", async () => {
    const { url, platform } = await startApp({ tasks: [MarkerTask] });
    const supervisor = await platform.users.getByLogin("Supervisor");
    assert.ok(supervisor);
    const handle = await platform.runAs(supervisor, () =>
      Task.startNewWithUserConnection(MarkerTask, { markerFile: join(tempDir(), "absent"), note: "" }, { delayMs: 3_600_000 }),
    );
    const page = await (await openBrowser()).newPage();
    const errors = watchPageErrors(page);
    const cancels: string[] = [];
    page.on("request", (request) => {
      if (request.method() === "POST" && request.url().endsWith(`/api/tasks/${handle.id}/cancel`)) cancels.push(request.url());
    });
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.goto(`${url}/#/tasks/${handle.id}`);
    await page.getByTestId("task-state").filter({ hasText: "queued" }).waitFor();
    await page.getByRole("button", { name: "Cancel" }).dblclick();
    await page.getByTestId("task-state").filter({ hasText: "canceled" }).waitFor();
    await page.getByText("Canceled.").waitFor();
    assert.equal(cancels.length, 1, "one cancel request for one double-click");
    assert.equal(await page.locator("section .error").count(), 0);
    assert.equal((await platform.runtime.getTask(handle.id)).state, "canceled");
    assert.deepEqual(errors, []);
  });
});
