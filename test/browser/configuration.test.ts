/**
 * The Configuration section in a real browser: a source schema edited in the code editor, saved
 * and published with a compile error (shown at its line, the previous build kept), then fixed and
 * published; and a script task's body edited in the modeler's properties panel, its compile
 * error shown at its line within the script.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openBrowser, signIn, startApp, SUPERVISOR_PASSWORD, watchPageErrors } from "./helpers.ts";

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
});
