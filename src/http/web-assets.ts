import { createHash } from "node:crypto";
import { existsSync, readdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";

/** The browser application's sources (a Vite project) and where its build goes. */
export const WEB_SOURCE = fileURLToPath(new URL("../../web", import.meta.url));
export const WEB_DIST = fileURLToPath(new URL("../../web-dist", import.meta.url));
const STAMP = ".source-hash";

/** A hash of the sources, so a build made from older sources is noticed and made again. */
function sourceHash(): string {
  const hash = createHash("sha256");
  const walk = (dir: string): void => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      if (statSync(path).isDirectory()) walk(path);
      else hash.update(relative(WEB_SOURCE, path)).update("\0").update(readFileSync(path)).update("\0");
    }
  };
  walk(WEB_SOURCE);
  return hash.digest("hex");
}

/** True when web-dist holds a build of the current sources. */
export function webAssetsCurrent(): boolean {
  const stamp = join(WEB_DIST, STAMP);
  if (!existsSync(join(WEB_DIST, "index.html")) || !existsSync(stamp)) return false;
  // An installed copy without the sources serves the build it has.
  if (!existsSync(WEB_SOURCE)) return true;
  return readFileSync(stamp, "utf8") === sourceHash();
}

/**
 * Builds the browser application with Vite when web-dist is missing or older than the sources.
 * The build goes to a folder of its own and is renamed into place, so processes that build at the
 * same moment (test files run in parallel) never see half a build.
 */
export async function ensureWebAssets(options: { log?: (line: string) => void } = {}): Promise<string> {
  if (webAssetsCurrent()) return WEB_DIST;
  const hash = sourceHash();
  const started = Date.now();
  options.log?.("underway: building the web application (once)...");
  const { build } = await import("vite");
  const outDir = `${WEB_DIST}.${process.pid}.${Date.now()}`;
  await build({
    configFile: join(WEB_SOURCE, "vite.config.ts"),
    logLevel: "warn",
    build: { outDir, emptyOutDir: true },
  });
  writeFileSync(join(outDir, STAMP), hash);
  if (webAssetsCurrent()) {
    rmSync(outDir, { recursive: true, force: true }); // another process finished first
  } else {
    rmSync(WEB_DIST, { recursive: true, force: true });
    try {
      renameSync(outDir, WEB_DIST);
    } catch (error) {
      rmSync(outDir, { recursive: true, force: true });
      if (!webAssetsCurrent()) throw error;
    }
  }
  options.log?.(`underway: web application built in ${((Date.now() - started) / 1000).toFixed(1)} s`);
  return WEB_DIST;
}
