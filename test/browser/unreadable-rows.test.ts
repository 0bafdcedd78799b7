/**
 * Rows changed by hand, as the pages show them: a process instance whose stored parameters cannot
 * be read says so, with why, in the process log and on its own page (not an empty set of
 * parameters), and a package whose stored dependencies cannot be read says so in Configuration;
 * the rest of those rows, and the other rows, show as ever.
 */
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import type { Locator, Page } from "playwright-core";
import { sql } from "../../src/platform/db/kysely-module.ts";
import type { Platform } from "../../src/platform/platform.ts";
import { until } from "../helpers.ts";
import { processXml } from "../platform/process-helpers.ts";
import { openBrowser, signIn, startApp, SUPERVISOR_PASSWORD, watchPageErrors } from "./helpers.ts";

const PROCESS = "UsrUnreadableProcess";
const TITLE = "Unreadable Parameters Process";

/** A package with one process of one script task that returns true, published. */
async function publishProcess(platform: Platform, packageName: string, code: string, title: string): Promise<void> {
  await platform.packages.ensurePackage(packageName);
  await platform.packages.saveSchema(packageName, {
    name: code,
    kind: "process",
    body: processXml(code, title, [{ kind: "script", id: "Go", body: "return true;" }, { kind: "end", id: "Done" }], [{ name: "Who", type: "text" }]),
  });
  await platform.packages.publish(packageName);
}

/** Changes a column of rows by hand, as an operator's UPDATE would. */
async function tamper(platform: Platform, table: "SysProcessLog" | "SysPackage", column: string, value: string, where: ReturnType<typeof sql>): Promise<void> {
  await sql`UPDATE ${sql.table(table)} SET ${sql.ref(column)} = ${value} WHERE ${where}`.execute(platform.db);
}

/** The process log's row of an instance. */
const logRow = (page: Page, instanceId: string): Locator =>
  page.getByTestId("process-log").locator("tbody tr", { has: page.locator(`a[href="#/processes/${instanceId}"]`) });

describe("the web application: rows changed by hand", () => {
  it("shows that an instance's parameters cannot be read, and why, in the process log and on its page", async () => {
    const { url, platform } = await startApp();
    await publishProcess(platform, "UsrUnreadable", PROCESS, TITLE);
    const supervisor = await platform.users.getByLogin("Supervisor");
    assert.ok(supervisor);
    const admin = platform.appConnection.systemUserConnection;
    const executor = platform.userConnection(supervisor).processEngine.processExecutor;
    const good = await executor.execute(PROCESS, { Who: "good" });
    const bad = await executor.execute(PROCESS, { Who: "bad" });
    for (const { instanceId } of [good, bad]) {
      await until(async () => ((await platform.processEngine.getLog(instanceId, admin))?.status === "Completed" ? true : null), `instance ${instanceId} to complete`, 20_000);
    }
    await tamper(platform, "SysProcessLog", "Parameters", "{not json", sql`${sql.ref("Id")} = ${bad.instanceId}`);

    const page = await (await openBrowser()).newPage();
    const errors = watchPageErrors(page);
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.getByRole("link", { name: "Processes" }).click();

    // The log: the row says so, naming the instance and why; its title, status and link stay.
    const badRow = logRow(page, bad.instanceId);
    const said = badRow.getByTestId("parameters-error");
    await said.waitFor();
    assert.match(
      await said.innerText(),
      new RegExp(`^Parameters cannot be read: process instance ${bad.instanceId} \\(${PROCESS}\\): its stored parameters \\(SysProcessLog\\.Parameters\\) are not JSON: \\S`),
    );
    assert.equal(await badRow.getByRole("link", { name: TITLE }).count(), 1);
    assert.equal(await badRow.locator(".pill").innerText(), "Completed");
    // The other instance's row shows no such thing.
    const goodRow = logRow(page, good.instanceId);
    await goodRow.getByText("Completed").waitFor();
    assert.equal(await goodRow.getByTestId("parameters-error").count(), 0);

    // Its page: the parameters' place says they cannot be read and why, not an empty object;
    // the status and the elements show as ever.
    await badRow.getByRole("link", { name: TITLE }).click();
    await page.getByTestId("instance-status").filter({ hasText: "Completed" }).waitFor();
    const onPage = page.getByTestId("instance-parameters-error");
    await onPage.waitFor();
    assert.match(await onPage.innerText(), new RegExp(`^Parameters cannot be read: process instance ${bad.instanceId} \\(${PROCESS}\\): .*are not JSON`));
    assert.equal(await page.getByTestId("instance-parameters").count(), 0);
    const elements = await page.getByTestId("instance-elements").locator("tbody tr").allInnerTexts();
    assert.ok(elements.length >= 2, elements.join("\n"));
    for (const element of elements) assert.match(element, /Completed/);

    // JSON, but not an object: said too.
    await tamper(platform, "SysProcessLog", "Parameters", "[1,2]", sql`${sql.ref("Id")} = ${bad.instanceId}`);
    await page.reload();
    await page.getByTestId("instance-parameters-error").filter({ hasText: "are not a JSON object but an array" }).waitFor();

    // A readable instance's page shows its parameters.
    await page.goto(`${url}/#/processes/${good.instanceId}`);
    const parameters = page.getByTestId("instance-parameters");
    await parameters.waitFor();
    assert.deepEqual(JSON.parse(await parameters.innerText()), { Who: "good" });
    assert.equal(await page.getByTestId("instance-parameters-error").count(), 0);
    assert.deepEqual(errors, []);
  });

  it("shows that a package's dependencies cannot be read, and why, in Configuration, and the package can still be opened", async () => {
    const { url, platform } = await startApp();
    await publishProcess(platform, "UsrBrokenDeps", "UsrBrokenDepsProcess", "Broken Dependencies Process");
    await tamper(platform, "SysPackage", "Dependencies", "oops", sql`${sql.ref("Name")} = 'UsrBrokenDeps'`);

    const page = await (await openBrowser()).newPage();
    const errors = watchPageErrors(page);
    await signIn(page, url, "Supervisor", SUPERVISOR_PASSWORD);
    await page.getByRole("link", { name: "Configuration" }).click();
    const packages = page.getByTestId("packages");
    const broken = packages.locator(".pkg", { has: page.getByRole("button", { name: "UsrBrokenDeps", exact: true }) });
    const said = broken.getByTestId("dependencies-error");
    await said.waitFor();
    assert.match(
      await said.innerText(),
      /^Dependencies cannot be read: package UsrBrokenDeps: its stored dependencies \(SysPackage\.Dependencies\) cannot be read .*set them again/,
    );
    assert.match(await broken.innerText(), /v1/);
    // The other package shows no such thing.
    const example = packages.locator(".pkg", { has: page.getByRole("button", { name: "UsrBackgroundTask", exact: true }) });
    await example.waitFor();
    assert.equal(await example.getByTestId("dependencies-error").count(), 0);

    // The package can still be opened, its schemas listed.
    await broken.getByRole("button", { name: "UsrBrokenDeps", exact: true }).click();
    await page.locator('[data-schema="UsrBrokenDepsProcess"]').waitFor();
    await said.waitFor();
    assert.deepEqual(errors, []);
  });
});
