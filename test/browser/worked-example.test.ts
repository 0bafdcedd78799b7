/**
 * The newcomer's path in a real browser: sign in, run the example process from the Processes
 * page, and watch its Activity appear in the Activities list without reloading the page.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { openBrowser, signIn, startApp, SUPERVISOR_PASSWORD, watchPageErrors } from "./helpers.ts";

describe("the web application: the worked example", () => {
  it("signs in, runs the example process, and the Activity appears live in the Activities list", async () => {
    const { url, platform } = await startApp();
    const context = await openBrowser();
    const page = await context.newPage();
    const errors = watchPageErrors(page);

    // Signed out, every page is the sign-in form; a wrong password is refused on the page.
    await page.goto(`${url}/#/activities`);
    await page.getByLabel("Login").fill("Supervisor");
    await page.getByLabel("Password").fill("wrong password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("alert").filter({ hasText: "wrong login or password" }).waitFor();
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    const supervisor = await platform.users.getByLogin("Supervisor");
    assert.ok(supervisor);
    assert.match(await page.getByTestId("current-user").innerText(), /Supervisor/);
    // The session is an HttpOnly cookie: the page's script cannot read it.
    assert.doesNotMatch(await page.evaluate<string>("document.cookie"), /underway_session/);

    await page.getByTestId("activities").getByText("No activities yet").waitFor();

    // A marker on the window survives only as long as the page is not reloaded.
    await page.evaluate(() => Object.assign(globalThis, { underwayNoReload: true }));

    await page.getByRole("link", { name: "Processes" }).click();
    const library = page.getByTestId("process-library");
    const example = library.locator("li", { hasText: "Background Task Example Process" });
    await example.waitFor();
    // bpmn-js drew the diagram, script task included.
    await page.getByTestId("bpmn-diagram").locator('[data-element-id="ScriptTask_CreateBackgroundTask"]').waitFor();
    await example.getByRole("button", { name: "Run" }).click();
    await page.getByTestId("run-message").filter({ hasText: "Started UsrBackgroundTaskExampleProcess" }).waitFor();

    await page.getByRole("link", { name: "Activities" }).click();
    const row = page.getByTestId("activities").locator("tbody tr", { hasText: "Activity created by background task" });
    await row.waitFor({ timeout: 30_000 });
    const cells = await row.locator("td").allInnerTexts();
    // Title, Start, Due, Status, Owner, Category, Type
    assert.equal(cells[0], "Activity created by background task");
    assert.equal(cells[3], "Not started");
    assert.equal(cells[4], supervisor.contactName);
    assert.equal(cells[5], "To do");
    assert.equal(cells[6], "Task");
    assert.equal(await page.evaluate(() => (globalThis as { underwayNoReload?: boolean }).underwayNoReload), true, "the page was reloaded");

    // The process log shows the instance and its elements, Completed.
    await page.getByRole("link", { name: "Processes" }).click();
    const logRow = page.getByTestId("process-log").locator("tbody tr", { hasText: "Background Task Example Process" });
    await logRow.getByText("Completed").waitFor();
    await logRow.getByRole("link").click();
    await page.getByTestId("instance-status").filter({ hasText: "Completed" }).waitFor();
    const elements = await page.getByTestId("instance-elements").locator("tbody tr").allInnerTexts();
    assert.equal(elements.length, 3);
    for (const element of elements) assert.match(element, /Completed/);

    assert.deepEqual(errors, []);
  });
});
