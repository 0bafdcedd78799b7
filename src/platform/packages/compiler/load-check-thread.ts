/**
 * The thread that checks a package's code at Publish (see load-check.ts): imports the platform
 * API, then loads the package's dependency builds and the package with loadPackage, as the
 * platform's PackageLoader does, and says how it went. The thread is stopped once it has
 * answered; the main thread stops it too when the code does not finish in time.
 */
import { parentPort, workerData } from "node:worker_threads";
import type { FromLoadCheck, LoadCheckData } from "./load-check.ts";
import { loadPackage } from "./load.ts";
import { PackageLoadError, type LoadedPackage } from "./types.ts";

const data = workerData as LoadCheckData;
const send = (message: FromLoadCheck): void => parentPort?.postMessage(message);

const platformApi = (await import(data.platformModule)) as Record<string, unknown>;
send({ t: "ready" });

// What package code leaves behind (a promise it lets fail, a timer that throws) is the platform
// loader's to meet, as it meets it today; here it must not end the thread before it answers.
process.on("unhandledRejection", () => {});
process.on("uncaughtException", () => {});

const loaded = new Map<string, LoadedPackage>();

/** A dependency build with its own dependencies, loaded once (PackageLoader.load). */
function loadBuild(packageName: string, version: number, seen: readonly string[]): LoadedPackage {
  const key = `${packageName}@${version}`;
  const known = loaded.get(key);
  if (known) return known;
  if (seen.includes(key)) throw new Error(`package builds depend on each other in a cycle: ${[...seen, key].join(" -> ")}`);
  const build = data.builds[key];
  if (!build) throw new Error(`package ${packageName} has no build ${version}`);
  const dependencies = Object.entries(build.dependencies).map(([name, v]) => loadBuild(name, v, [...seen, key]));
  send({ t: "loading", packageName });
  // No limit of its own: the main thread's names the package whose code runs, and stops the thread.
  const result = loadPackage({ packageName, code: build.code, exports: {}, schemas: [] }, platformApi, dependencies, { limitMs: null });
  loaded.set(key, result);
  return result;
}

try {
  const dependencies = Object.entries(data.dependencies).map(([name, v]) => loadBuild(name, v, []));
  send({ t: "loading", packageName: data.packageName });
  loadPackage({ packageName: data.packageName, code: data.code, exports: {}, schemas: [] }, platformApi, dependencies, { limitMs: null });
  // Loaded once the event loop turns again: top-level code that starts work which never lets it
  // (an async loop awaiting nothing but itself) would hold the platform's thread as surely as a
  // loop, after the synchronous part returned; it runs into the limit here instead.
  await new Promise((resolve) => setImmediate(resolve));
  send({ t: "loaded" });
} catch (error) {
  const message = error instanceof Error ? error.message : String(error);
  send(error instanceof PackageLoadError ? { t: "refused", message } : { t: "failed", message });
}
