/**
 * The live stream and the page's mishaps: a hidden tab gives its stream up (six tabs would take
 * every connection a browser opens to one server) and catches up when shown; a stream a proxy
 * ended for good is opened again; a double-click runs a process once; an address with a stray
 * `%` still shows the application; a sign-out the server did not hear leaves the user signed in.
 */
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, it } from "node:test";
import type { Page, Route } from "playwright-core";
import { Task } from "../../src/index.ts";
import { tempDir } from "../helpers.ts";
import { MarkerTask } from "./fixtures/marker-task.ts";
import { openBrowser, signIn, startApp, SUPERVISOR_PASSWORD, watchPageErrors } from "./helpers.ts";

/** Tells the page it is hidden or shown, as a browser does when its tab is switched. */
async function setVisibility(page: Page, state: "hidden" | "visible"): Promise<void> {
  await page.evaluate((to) => {
    const doc = (globalThis as unknown as { document: { dispatchEvent(e: unknown): void } }).document;
    Object.defineProperty(doc, "visibilityState", { value: to, configurable: true });
    doc.dispatchEvent(new (globalThis as unknown as { Event: new (type: string) => unknown }).Event("visibilitychange"));
  }, state);
}

const liveOn = (page: Page) => page.locator(".live.on");
const liveOff = (page: Page) => page.locator(".live.off");

describe("the web application: the live stream and mishaps", () => {
  it("gives up the stream while hidden, shows what changed meanwhile once shown, and opens a stream a proxy ended again", async () => {
    const { url, platform } = await startApp({ tasks: [MarkerTask] });
    const supervisor = await platform.users.getByLogin("Supervisor");
    assert.ok(supervisor);
    const context = await openBrowser();
    const page = await context.newPage();
    const errors = watchPageErrors(page);
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.getByRole("link", { name: "Background tasks" }).click();
    await liveOn(page).waitFor();

    await setVisibility(page, "hidden");
    await liveOff(page).waitFor();
    // Started while no stream is open: no event will ever tell of it.
    const started = await platform.runAs(supervisor, () => Task.startNewWithUserConnection(MarkerTask, { markerFile: join(tempDir(), "absent"), note: "while hidden" }));
    await started.wait({ timeoutMs: 10_000 });
    await setVisibility(page, "visible");
    await liveOn(page).waitFor();
    await page.getByTestId("tasks").locator(`tr[data-task-id="${started.id}"]`).waitFor({ timeout: 5_000 });

    // A proxy answers 502 while the server restarts: the browser closes such a stream for good.
    let refused = 0;
    await page.route(
      (u) => u.pathname === "/api/events",
      async (route: Route) => {
        refused++;
        await route.fulfill({ status: 502, contentType: "text/html", body: "<html><body>Bad Gateway</body></html>" });
      },
    );
    await setVisibility(page, "hidden");
    await setVisibility(page, "visible");
    await liveOff(page).waitFor();
    while (refused === 0) await new Promise((resolve) => setTimeout(resolve, 20));
    await page.unrouteAll();
    await liveOn(page).waitFor({ timeout: 5_000 });
    assert.deepEqual(errors, []);
  });

  it("runs a process once on a double-click, shows the application at an address with a stray %, and stays signed in when sign-out is not heard", async () => {
    const { url } = await startApp();
    const context = await openBrowser();
    const page = await context.newPage();
    const errors = watchPageErrors(page);
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    const instances = (): Promise<number> =>
      page.evaluate(async () => {
        const answer = await fetch("/api/process-log?limit=500", { credentials: "same-origin" });
        return ((await answer.json()) as { items: unknown[] }).items.length;
      });
    await page.getByRole("link", { name: "Processes" }).click();
    const example = page.getByTestId("process-library").locator('li[data-code="UsrBackgroundTaskExampleProcess"]');
    const before = await instances();
    await example.getByRole("button", { name: "Run" }).dblclick();
    await page.getByTestId("run-message").filter({ hasText: "Started UsrBackgroundTaskExampleProcess" }).waitFor();
    await new Promise((resolve) => setTimeout(resolve, 300));
    assert.equal((await instances()) - before, 1, "one instance for one double-click");

    await page.goto(`${url}/#/activities/100%`);
    await page.getByTestId("current-user").waitFor();

    await page.route((u) => u.pathname === "/api/auth/logout", (route: Route) => route.abort("connectionrefused"));
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByTestId("sign-out-error").filter({ hasText: "You are still signed in: The server cannot be reached" }).waitFor();
    assert.equal(await page.getByTestId("current-user").count(), 1);
    await page.unrouteAll();
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.getByLabel("Login").waitFor();
    await page.reload();
    await page.getByLabel("Login").waitFor();
    assert.deepEqual(
      errors.filter((e) => !/ERR_CONNECTION_REFUSED/.test(e)),
      [],
    );
  });

  it("says when the process log cannot be loaded, drops the rows of a refused filter, and names an instance address that cannot be one", async () => {
    const { url, platform } = await startApp();
    const supervisor = await platform.users.getByLogin("Supervisor");
    assert.ok(supervisor);
    const uc = platform.userConnection(supervisor);
    const { Activity } = await import("../../src/platform/entities/activity.ts");
    const activity = new Activity(uc);
    activity.setDefColumnValues();
    activity.title = "Call back";
    await activity.save();
    const page = await (await openBrowser()).newPage();
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);

    // A proxy's 502 for the process log: the page says so instead of an empty table.
    await page.route((u) => u.pathname === "/api/process-log", (route: Route) => route.fulfill({ status: 502, body: "<html>Bad Gateway</html>" }));
    await page.getByRole("link", { name: "Processes" }).click();
    await page.getByTestId("process-log-error").filter({ hasText: "The process log cannot be shown" }).waitFor();
    await page.unroute((u) => u.pathname === "/api/process-log");

    // A filter the server refuses (a NUL): the previous filter's rows go, the error stays.
    await page.getByRole("link", { name: "Activities" }).click();
    await page.getByText("Call back").waitFor();
    await page.getByLabel("Title filter").fill("a\u0000b");
    await page.getByRole("button", { name: "Filter" }).click();
    await page.locator(".error").first().waitFor();
    assert.equal(await page.getByText("Call back").count(), 0, "the previous filter's row is still listed");
    assert.equal(await page.getByLabel("Title filter").getAttribute("maxlength"), "250");

    // An instance address far too long for an id: named briefly, nothing asked of the server.
    let asked = 0;
    await page.route((u) => u.pathname.startsWith("/api/process-log/"), (route: Route) => {
      asked++;
      return route.continue();
    });
    await page.goto(`${url}/#/processes/${"x".repeat(150)}`);
    await page.getByText(`no process instance "${"x".repeat(60)}…" that you may see`).waitFor();
    assert.equal(asked, 0);
  });
});
