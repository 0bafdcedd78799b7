/**
 * The task centre in a real browser: a failed task is found by its state, its attempt's error and
 * stack are shown, and Retry runs it again; the page follows without a reload. An ordinary user
 * sees neither the administrator's task nor its parameters.
 */
import assert from "node:assert/strict";
import { writeFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import { Task } from "../../src/index.ts";
import { tempDir } from "../helpers.ts";
import { MarkerTask } from "./fixtures/marker-task.ts";
import { openBrowser, signIn, startApp, SUPERVISOR_PASSWORD, watchPageErrors } from "./helpers.ts";

describe("the web application: the task centre", () => {
  it("shows a dead task with its error and stack, retries it, and keeps it from other users", async () => {
    const { url, platform } = await startApp({ tasks: [MarkerTask] });
    const marker = join(tempDir(), "fail-while-here");
    writeFileSync(marker, "");
    const supervisor = await platform.users.getByLogin("Supervisor");
    assert.ok(supervisor);
    const secret = "the note only Supervisor may read";
    const handle = await platform.runAs(supervisor, () => Task.startNewWithUserConnection(MarkerTask, { markerFile: marker, note: secret }));
    await assert.rejects(handle.wait({ timeoutMs: 10_000 }), /marker file is still there/);
    await platform.users.create({ login: "alice", password: "alice-pass", contactName: "Alice A" });

    const context = await openBrowser();
    const page = await context.newPage();
    const errors = watchPageErrors(page);
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.getByRole("link", { name: "Background tasks" }).click();

    const counts = page.getByTestId("task-counts");
    await counts.locator(".state-dead .n").filter({ hasText: /^1$/ }).waitFor();
    await page.getByTestId("activity-chart").locator("canvas").waitFor();
    await page.getByLabel("State").selectOption("dead");
    const row = page.getByTestId("tasks").locator(`tr[data-task-id="${handle.id}"]`);
    await row.waitFor();
    assert.match(await row.innerText(), /MarkerTask[\s\S]*dead[\s\S]*Supervisor[\s\S]*marker file is still there/);
    await page.evaluate(() => Object.assign(globalThis, { underwayNoReload: true }));

    await row.getByRole("link", { name: "MarkerTask" }).click();
    await page.getByTestId("task-state").filter({ hasText: "dead" }).waitFor();
    assert.match(await page.getByTestId("task-parameters").innerText(), new RegExp(secret));
    const attempts = page.getByTestId("task-errors");
    assert.match(await attempts.innerText(), /Attempt 1[\s\S]*Error: the marker file is still there/);
    await attempts.getByText("Stack").click();
    assert.match(await attempts.locator("pre.stack").innerText(), /MarkerTask\.run/);

    rmSync(marker);
    await page.getByRole("button", { name: "Retry" }).click();
    await page.getByTestId("task-state").filter({ hasText: "succeeded" }).waitFor({ timeout: 15_000 });
    assert.equal((await platform.runtime.getTask(handle.id)).state, "succeeded");
    assert.equal(await page.getByRole("button", { name: "Retry" }).isDisabled(), true);
    assert.equal(await page.evaluate(() => (globalThis as { underwayNoReload?: boolean }).underwayNoReload), true, "the page was reloaded");

    // Alice sees her own tasks only: not this one, not by its address, and not its parameters.
    const alice = await (await openBrowser()).newPage();
    const aliceErrors = watchPageErrors(alice);
    await signIn(alice, url, "alice", "alice-pass");
    await alice.getByRole("link", { name: "Background tasks" }).click();
    await alice.getByTestId("tasks").getByText("No tasks match.").waitFor();
    assert.equal(await alice.getByRole("link", { name: "Configuration" }).count(), 0);
    await alice.goto(`${url}/#/tasks/${handle.id}`);
    await alice.getByText(`no task ${handle.id} that you may see`).waitFor();
    assert.doesNotMatch(await alice.content(), new RegExp(secret));

    assert.deepEqual(errors, []);
    assert.deepEqual(aliceErrors, []);
  });
});
