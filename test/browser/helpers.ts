/**
 * What the browser tests share: a server of their own (an in-process platform on a fresh SQLite
 * file, the HTTP server on port 0, the example package published) and the machine's Chromium,
 * driven by playwright-core. The web application is built once, when missing or out of date.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import { chromium, type BrowserContext, type Page } from "playwright-core";
import { createHttpServer } from "../../src/http/server.ts";
import { ensureWebAssets } from "../../src/http/web-assets.ts";
import type { Platform, PlatformConfig } from "../../src/platform/platform.ts";
import { startPlatform } from "../platform/helpers.ts";

export const CHROMIUM = process.env.UNDERWAY_CHROMIUM ?? "/usr/bin/chromium";
export const SUPERVISOR_PASSWORD = "supervisor-pass";
const EXAMPLE_PACKAGE = join(import.meta.dirname, "..", "..", "examples", "background-activity");

export interface App {
  readonly url: string;
  readonly platform: Platform;
}

/** A platform with the worked example published, served over HTTP on a free port. */
export async function startApp(config: Partial<PlatformConfig> = {}): Promise<App> {
  await ensureWebAssets();
  // The example task waits 30 s by default; the tests do not.
  process.env.UNDERWAY_EXAMPLE_DELAY_MS = "200";
  const platform = await startPlatform("sqlite", { packages: [EXAMPLE_PACKAGE], adminPassword: SUPERVISOR_PASSWORD, ...config });
  const app = await createHttpServer({ runtime: platform.runtime, platform, changeFeedIntervalMs: 200 });
  await app.listen({ port: 0, host: "127.0.0.1" });
  after(() => app.close());
  const address = app.server.address();
  if (!address || typeof address === "string") throw new Error("the server has no port");
  return { url: `http://127.0.0.1:${address.port}`, platform };
}

/** A fresh headless Chromium profile; closed when the file's tests end. */
export async function openBrowser(options: { timezoneId?: string } = {}): Promise<BrowserContext> {
  const profile = mkdtempSync(join(tmpdir(), "underway-chromium-"));
  const context = await chromium.launchPersistentContext(profile, {
    ...options,
    executablePath: CHROMIUM,
    headless: true,
    viewport: { width: 1360, height: 860 },
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-background-networking",
      "--disable-quic",
      "--no-first-run",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  after(async () => {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  });
  return context;
}

/** Signs in through the sign-in page. */
export async function signIn(page: Page, url: string, login: string, password: string): Promise<void> {
  await page.goto(url);
  await page.getByLabel("Login").fill(login);
  await page.getByLabel("Password").fill(password);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByTestId("current-user").waitFor();
}

/** Fails the test with the page's own errors, which would otherwise go unseen. */
export function watchPageErrors(page: Page): string[] {
  const errors: string[] = [];
  page.on("pageerror", (error) => errors.push(error.message));
  page.on("console", (message) => {
    // A refused request (401 before sign-in, 409 of a refused action) is logged by the browser
    // itself; the page shows those. Anything else logged as an error is a bug.
    if (message.type() === "error" && !/Failed to load resource/.test(message.text())) errors.push(message.text());
  });
  return errors;
}
