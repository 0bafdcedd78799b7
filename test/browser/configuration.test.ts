/**
 * The Configuration section in a real browser: a source schema edited in the code editor, saved
 * and published with a compile error (shown at its line, the previous build kept), then fixed and
 * published; and a script task's body edited in the modeler's properties panel, its compile
 * error shown at its line within the script.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Page } from "playwright-core";
import { sql } from "../../src/platform/db/kysely-module.ts";
import { openBrowser, signIn, startApp, SUPERVISOR_PASSWORD, watchPageErrors } from "./helpers.ts";

/** A new app and browser page, signed in as the Supervisor, with the example process open in the modeler. */
async function openExampleDiagram(): Promise<{ page: Page; errors: string[] }> {
  const { url } = await startApp();
  const page = await (await openBrowser()).newPage();
  const errors = watchPageErrors(page);
  await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
  await page.getByRole("link", { name: "Configuration" }).click();
  await page.locator('[data-schema="UsrBackgroundTaskExampleProcess"]').click();
  await page.getByTestId("bpmn-modeler").locator('[data-element-id="ScriptTask_CreateBackgroundTask"]').waitFor();
  return { page, errors };
}

describe("the web application: configuration", () => {
  it("publishes a schema with a compile error, shows the error at its line, then publishes the fix", async () => {
    const { url, platform } = await startApp();
    const page = await (await openBrowser()).newPage();
    const errors = watchPageErrors(page);
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.getByRole("link", { name: "Configuration" }).click();
    await page.getByTestId("packages").getByRole("button", { name: "UsrBackgroundTask", exact: true }).waitFor();
    await page.locator('[data-schema="UsrActivityData"]').click();
    const editor = page.getByTestId("source-editor");
    await editor.locator(".cm-content").getByText("interface UsrActivityData").waitFor();

    // A line that does not compile, appended at the end.
    await editor.locator(".cm-content").click();
    await page.keyboard.press("Control+End");
    await page.keyboard.insertText('\n\nexport const broken: number = "not a number";');
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("config-status").filter({ hasText: "Saved UsrActivityData." }).waitFor();
    await page.getByRole("button", { name: "Publish" }).click();
    await page.getByTestId("config-status").filter({ hasText: "Publish failed" }).waitFor();
    const brokenLine = (await editor.locator(".cm-line").allInnerTexts()).findIndex((l) => l.includes("export const broken")) + 1;
    assert.ok(brokenLine > 1);
    const problem = page.getByTestId("problems").locator("li").first();
    assert.match(await problem.innerText(), new RegExp(`^UsrActivityData:${brokenLine}:\\d+: .*not assignable to type 'number'`));
    // The editor marks the error on that line.
    const marked = editor.locator(".cm-line", { has: page.locator(".cm-lintRange-error") });
    await marked.waitFor();
    assert.match(await marked.innerText(), /export const broken/);
    assert.equal(await editor.locator(".cm-lint-marker-error").count(), 1);
    assert.equal((await platform.packages.latestVersions()).get("UsrBackgroundTask"), 1, "the failed publish kept the build");

    // Fixed: the line removed, saved, published.
    await marked.click();
    await page.keyboard.press("End");
    await page.keyboard.press("Shift+Home");
    await page.keyboard.press("Shift+Home");
    await page.keyboard.press("Backspace");
    await page.keyboard.press("Backspace");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("config-status").filter({ hasText: "Saved UsrActivityData." }).waitFor();
    await page.getByRole("button", { name: "Publish" }).click();
    await page.getByTestId("config-status").filter({ hasText: "Published UsrBackgroundTask version 2." }).waitFor();
    assert.equal(await page.getByTestId("problems").count(), 0);
    assert.equal((await platform.packages.latestVersions()).get("UsrBackgroundTask"), 2);
    assert.doesNotMatch((await platform.packages.getSchemas("UsrBackgroundTask")).find((s) => s.name === "UsrActivityData")?.body ?? "", /broken/);

    // The process schema opens in the modeler; selecting the script task shows its body.
    await page.locator('[data-schema="UsrBackgroundTaskExampleProcess"]').click();
    const modeler = page.getByTestId("bpmn-modeler");
    await modeler.locator('[data-element-id="ScriptTask_CreateBackgroundTask"]').click();
    const panel = page.getByTestId("properties-panel");
    await panel.getByTestId("script-editor").getByText("Task.startNewWithUserConnection").waitFor();
    assert.equal(await panel.getByLabel("Name").inputValue(), "Create background task");

    // A script error made in the properties panel: saved with the diagram, shown at its line.
    const script = panel.getByTestId("script-editor");
    await script.locator(".cm-line", { hasText: "return true;" }).click();
    await page.keyboard.press("End");
    await page.keyboard.insertText("\nconst wrong: string = 42;");
    await page.getByRole("button", { name: "Publish" }).click();
    await page.getByTestId("config-status").filter({ hasText: "Publish failed" }).waitFor();
    const scriptProblem = page.getByTestId("problems").locator("li", { hasText: "UsrBackgroundTaskExampleProcess/ScriptTask_CreateBackgroundTask" });
    assert.match(await scriptProblem.innerText(), /ScriptTask_CreateBackgroundTask:4:\d+: Type 'number' is not assignable to type 'string'/);
    const markedScript = script.locator(".cm-line", { has: page.locator(".cm-lintRange-error") });
    await markedScript.waitFor();
    assert.match(await markedScript.innerText(), /const wrong/);
    const saved = (await platform.packages.getSchemas("UsrBackgroundTask")).find((s) => s.name === "UsrBackgroundTaskExampleProcess");
    assert.match(saved?.body ?? "", /const wrong: string = 42;/);
    assert.equal((await platform.packages.latestVersions()).get("UsrBackgroundTask"), 2);

    assert.deepEqual(errors, []);
  });

  it("asks before unsaved edits are left: another schema, another section, sign-out, closing the tab", async () => {
    const { url, platform } = await startApp();
    const page = await (await openBrowser()).newPage();
    const errors = watchPageErrors(page);
    const questions: string[] = [];
    /** Answers the next question the page asks, and keeps it. */
    const answer = (accept: boolean): void => {
      page.once("dialog", (dialog) => {
        questions.push(`${dialog.type()}: ${dialog.message()}`);
        void (accept ? dialog.accept() : dialog.dismiss());
      });
    };
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.getByRole("link", { name: "Configuration" }).click();
    // The process schema, opened and left unedited, asks nothing (the modeler's import is no edit).
    await page.locator('[data-schema="UsrBackgroundTaskExampleProcess"]').click();
    await page.getByTestId("bpmn-modeler").locator('[data-element-id="ScriptTask_CreateBackgroundTask"]').waitFor();
    await page.locator('[data-schema="UsrActivityData"]').click();
    const editor = page.getByTestId("source-editor");
    await editor.locator(".cm-content").getByText("interface UsrActivityData").waitFor();
    assert.deepEqual(questions, []);

    await editor.locator(".cm-content").click();
    await page.keyboard.press("Control+End");
    await page.keyboard.insertText("\n// kept until saved");
    await page.getByText("unsaved changes").waitFor();
    const stays = async (): Promise<void> => {
      await page.getByText("unsaved changes").waitFor();
      await editor.locator(".cm-content").getByText("// kept until saved").waitFor();
    };

    // Another schema, dismissed: the edit stays.
    answer(false);
    await page.locator('[data-schema="UsrBackgroundTaskExampleProcess"]').click();
    await stays();
    // Another section, dismissed: the address goes back, the edit stays.
    answer(false);
    await page.getByRole("link", { name: "Background tasks" }).click();
    await stays();
    assert.match(page.url(), /#\/configuration$/);
    // Sign-out, dismissed: still signed in, the edit stays.
    answer(false);
    await page.getByRole("button", { name: "Sign out" }).click();
    await stays();
    assert.equal(questions.length, 3, questions.join("\n"));
    for (const q of questions) assert.equal(q, "confirm: UsrActivityData has unsaved changes. Leave it and lose them?");

    // Closing the tab asks too (the browser's own question).
    const closing = page.waitForEvent("dialog");
    void page.close({ runBeforeUnload: true });
    const unload = await closing;
    assert.equal(unload.type(), "beforeunload");
    await unload.dismiss();
    assert.equal(page.isClosed(), false);

    // Accepted: the other schema opens, and the edit never reached the store.
    answer(true);
    await page.locator('[data-schema="UsrBackgroundTaskExampleProcess"]').click();
    await page.getByTestId("bpmn-modeler").locator('[data-element-id="ScriptTask_CreateBackgroundTask"]').waitFor();
    assert.equal(questions.length, 4);
    const stored = (await platform.packages.getSchemas("UsrBackgroundTask")).find((s) => s.name === "UsrActivityData");
    assert.doesNotMatch(stored?.body ?? "", /kept until saved/);
    // Nothing unsaved now: leaving asks nothing.
    await page.getByRole("link", { name: "Background tasks" }).click();
    await page.waitForURL(/#\/tasks$/);
    assert.equal(questions.length, 4);
    assert.deepEqual(errors, []);
  });

  it("reaches a script task's properties without a pointer: the panel's element list", async () => {
    const { page, errors } = await openExampleDiagram();
    const panel = page.getByTestId("properties-panel");
    const choice = panel.getByLabel("Element");
    const options = await choice.locator("option").allInnerTexts();
    assert.ok(options.some((o) => /\(ScriptTask\)$/.test(o)), options.join(" | "));
    assert.ok(!options.some((o) => /SequenceFlow|Process\)/.test(o)), options.join(" | "));
    await choice.selectOption("ScriptTask_CreateBackgroundTask");
    await panel.getByTestId("script-editor").getByText("Task.startNewWithUserConnection").waitFor();
    assert.equal(await choice.inputValue(), "ScriptTask_CreateBackgroundTask");
    assert.deepEqual(errors, []);
  });

  it("keeps unsaved edits through a session that ends, and saves them after signing in again", async () => {
    const { url, platform } = await startApp();
    const page = await (await openBrowser()).newPage();
    const errors = watchPageErrors(page);
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.getByRole("link", { name: "Configuration" }).click();
    await page.locator('[data-schema="UsrActivityData"]').click();
    const editor = page.getByTestId("source-editor");
    await editor.locator(".cm-content").getByText("interface UsrActivityData").waitFor();
    await editor.locator(".cm-content").click();
    await page.keyboard.press("Control+End");
    await page.keyboard.insertText("\n// written while the session ran out");
    await page.getByText("unsaved changes").waitFor();

    // The session ends on the server (it expired, or was signed out elsewhere); then Save.
    await sql`DELETE FROM ${sql.table("SysSession")}`.execute(platform.db);
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("session-ended").waitFor();
    // The page, and the edit, are still there under the sign-in form.
    await editor.locator(".cm-content").getByText("// written while the session ran out").waitFor({ state: "attached" });
    const form = page.getByRole("dialog");
    await form.getByLabel("Login").fill("Supervisor");
    await form.getByLabel("Password").fill(SUPERVISOR_PASSWORD);
    await form.getByRole("button", { name: "Sign in" }).click();
    await page.getByTestId("session-ended").waitFor({ state: "detached" });
    await editor.locator(".cm-content").getByText("// written while the session ran out").waitFor();
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("config-status").filter({ hasText: "Saved UsrActivityData." }).waitFor();
    const stored = (await platform.packages.getSchemas("UsrBackgroundTask")).find((s) => s.name === "UsrActivityData");
    assert.match(stored?.body ?? "", /written while the session ran out/);

    // Without unsaved work, an ended session shows the plain sign-in form.
    await sql`DELETE FROM ${sql.table("SysSession")}`.execute(platform.db);
    await page.getByRole("link", { name: "Background tasks" }).click();
    await page.getByLabel("Login").waitFor();
    assert.equal(await page.getByTestId("session-ended").count(), 0);
    assert.equal(await page.getByTestId("current-user").count(), 0);
    assert.deepEqual(errors, []);
  });

  it("says when the packages or their schemas cannot be loaded", async () => {
    const { url } = await startApp();
    for (const path of ["**/api/packages", "**/api/packages/*/schemas"]) {
      const page = await (await openBrowser()).newPage();
      await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
      await page.route(path, (route) => route.fulfill({ status: 500, contentType: "application/json", body: JSON.stringify({ error: "internal error" }) }));
      await page.getByRole("link", { name: "Configuration" }).click();
      await page.getByTestId("config-status").filter({ hasText: "internal error" }).waitFor();
      await page.close();
    }
  });

  it("clears a refused save's problems once a save succeeds", async () => {
    const { page, errors } = await openExampleDiagram();
    const modeler = page.getByTestId("bpmn-modeler");
    // A flow deleted: the diagram no longer reaches its end, and the save is refused with problems.
    await modeler.locator('[data-element-id="SequenceFlow1"]').click({ force: true });
    await page.keyboard.press("Delete");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("problems").waitFor();
    assert.equal(await page.getByTestId("config-status").getAttribute("class"), "error");
    // Undone, the save succeeds, and the problems it had go.
    await modeler.click({ position: { x: 5, y: 5 } });
    await page.keyboard.press("Control+z");
    await page.getByRole("button", { name: "Save" }).click();
    await page.getByTestId("config-status").filter({ hasText: "Saved UsrBackgroundTaskExampleProcess." }).waitFor();
    assert.equal(await page.getByTestId("problems").count(), 0);
    assert.deepEqual(
      errors.filter((e) => !/status of 422/.test(e)),
      [],
    );
  });
});
