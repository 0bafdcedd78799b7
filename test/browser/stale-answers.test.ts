/**
 * What a page shows when the network does not answer in order, and when the session ends in
 * another tab: an answer to an older request is dropped, another task's page starts empty, and
 * signing out in one tab signs out the others.
 */
import assert from "node:assert/strict";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Route } from "playwright-core";
import { Task } from "../../src/index.ts";
import { gate, tempDir } from "../helpers.ts";
import { MarkerTask } from "./fixtures/marker-task.ts";
import { openBrowser, signIn, startApp, SUPERVISOR_PASSWORD, watchPageErrors } from "./helpers.ts";

/** Waits until the page has rendered what it had when this was called. */
async function settled(page: import("playwright-core").Page): Promise<void> {
  await page.evaluate(() => new Promise((resolve) => (globalThis as unknown as { requestAnimationFrame(f: () => void): void }).requestAnimationFrame(() => setTimeout(resolve, 0))));
}

describe("the web application: answers out of order, several tabs", () => {
  it("drops an older filter's answer that arrives last, and shows another task's page empty until it loads", async () => {
    const { url, platform } = await startApp({ tasks: [MarkerTask] });
    const supervisor = await platform.users.getByLogin("Supervisor");
    assert.ok(supervisor);
    const marker = join(tempDir(), "fail-while-here");
    writeFileSync(marker, "");
    const dead = await platform.runAs(supervisor, () => Task.startNewWithUserConnection(MarkerTask, { markerFile: marker, note: "dead one" }));
    await assert.rejects(dead.wait({ timeoutMs: 10_000 }), /marker file is still there/);
    const fine = await platform.runAs(supervisor, () => Task.startNewWithUserConnection(MarkerTask, { markerFile: join(tempDir(), "absent"), note: "fine one" }));
    await fine.wait({ timeoutMs: 10_000 });

    const context = await openBrowser();
    const page = await context.newPage();
    const errors = watchPageErrors(page);
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.getByRole("link", { name: "Background tasks" }).click();
    const list = page.getByTestId("tasks");
    await list.locator(`tr[data-task-id="${fine.id}"]`).waitFor();

    // The list of dead tasks is held back until the succeeded ones have been shown.
    const held = gate();
    let heldRequests = 0;
    await page.route(
      (u) => u.pathname === "/api/tasks" && u.searchParams.get("state") === "dead",
      async (route: Route) => {
        heldRequests++;
        await held.promise;
        await route.continue();
      },
    );
    await page.getByLabel("State").selectOption("dead");
    await page.getByLabel("State").selectOption("succeeded");
    await list.locator(`tr[data-task-id="${fine.id}"]`).waitFor();
    assert.equal(heldRequests, 1);
    const late = page.waitForResponse((r) => new URL(r.url()).searchParams.get("state") === "dead");
    held.open();
    await late;
    await settled(page);
    assert.equal(await list.locator(`tr[data-task-id="${dead.id}"]`).count(), 0, "the dead task of the older filter is shown");
    assert.equal(await list.locator(`tr[data-task-id="${fine.id}"]`).count(), 1);
    await page.unroute(() => true);

    // From one task's page to another's: nothing of the first while the second loads.
    await page.goto(`${url}/#/tasks/${dead.id}`);
    await page.getByTestId("task-state").filter({ hasText: "dead" }).waitFor();
    const second = gate();
    await page.route(
      (u) => u.pathname === `/api/tasks/${fine.id}`,
      async (route: Route) => {
        await second.promise;
        await route.continue();
      },
    );
    await page.evaluate((id) => ((globalThis as unknown as { location: { hash: string } }).location.hash = `#/tasks/${id}`), fine.id);
    await page.getByText("Loading…").waitFor();
    assert.equal(await page.getByTestId("task-page").count(), 0, "the previous task's page is still shown");
    second.open();
    await page.getByTestId("task-state").filter({ hasText: "succeeded" }).waitFor();
    assert.match(await page.getByTestId("task-page").innerText(), new RegExp(`#${fine.id}`));
    assert.deepEqual(errors, []);
  });

  it("lists the schemas of the package selected last, whichever package's answer arrives last", async () => {
    const { url, platform } = await startApp();
    await platform.packages.ensurePackage("UsrReview");
    await platform.packages.saveSchema("UsrReview", { name: "UsrReviewNote", kind: "source", body: "export const note = 1;\n" });
    const page = await (await openBrowser()).newPage();
    // Which answers' bodies the page has read: its handlers run right after.
    await page.addInitScript(() => {
      const read = Response.prototype.text;
      const readBodies: string[] = [];
      (globalThis as unknown as { readBodies: string[] }).readBodies = readBodies;
      (Response.prototype as { text: (this: Response) => Promise<string> }).text = function (this: Response) {
        return read.call(this).then((body) => {
          readBodies.push(this.url);
          return body;
        });
      };
    });
    const errors = watchPageErrors(page);
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.getByRole("link", { name: "Configuration" }).click();
    const packages = page.getByTestId("packages");
    await page.locator('[data-schema="UsrActivityData"]').waitFor();
    const held = gate();
    await page.route(
      (u) => u.pathname === "/api/packages/UsrReview/schemas",
      async (route: Route) => {
        await held.promise;
        await route.continue();
      },
    );
    // UsrReview, then back to UsrBackgroundTask before UsrReview's schemas have come.
    await packages.getByRole("button", { name: "UsrReview", exact: true }).click();
    const current = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/packages/UsrBackgroundTask/schemas");
    await packages.getByRole("button", { name: "UsrBackgroundTask", exact: true }).click();
    await current;
    await page.waitForFunction(() => (globalThis as unknown as { readBodies: string[] }).readBodies.filter((u) => u.endsWith("/api/packages/UsrBackgroundTask/schemas")).length >= 2);
    await settled(page);
    await page.locator('[data-schema="UsrActivityData"]').waitFor();
    const late = page.waitForResponse((r) => new URL(r.url()).pathname === "/api/packages/UsrReview/schemas");
    held.open();
    await late;
    // The page has read the late answer's body (then its handlers run in microtasks, before settled).
    await page.waitForFunction(() => (globalThis as unknown as { readBodies: string[] }).readBodies.some((u) => u.endsWith("/api/packages/UsrReview/schemas")));
    await settled(page);
    assert.equal((await packages.locator(".pkg.selected > button").innerText()).trim(), "UsrBackgroundTask");
    assert.equal(await page.locator('[data-schema="UsrReviewNote"]').count(), 0, "UsrReview's schema is listed under UsrBackgroundTask");
    assert.equal(await page.locator('[data-schema="UsrActivityData"]').count(), 1);
    assert.deepEqual(errors, []);
  });

  it("signs out every tab of the browser when one signs out", async () => {
    const { url } = await startApp();
    const context = await openBrowser();
    const first = await context.newPage();
    const errors = watchPageErrors(first);
    await signIn(first, url, "Supervisor", SUPERVISOR_PASSWORD);
    const second = await context.newPage();
    const secondErrors = watchPageErrors(second);
    await second.goto(url);
    await second.getByTestId("current-user").waitFor();
    await first.getByRole("button", { name: "Sign out" }).click();
    await first.getByLabel("Login").waitFor();
    await second.getByLabel("Login").waitFor({ timeout: 5_000 });
    assert.equal(await second.getByTestId("current-user").count(), 0);
    // Signing in again in one tab signs in the other.
    await signIn(first, url, "Supervisor", SUPERVISOR_PASSWORD);
    await second.getByTestId("current-user").waitFor({ timeout: 5_000 });
    assert.deepEqual(errors, []);
    assert.deepEqual(secondErrors, []);
  });
});
