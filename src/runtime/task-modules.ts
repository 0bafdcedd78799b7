import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { AnyTaskClass } from "../tasks/registry.ts";

/** A module of task classes: a file path (relative to the working directory), a file: URL string, or a URL. */
export type TaskModuleSpecifier = string | URL;

/** The file: URL a specifier names, so the main thread and worker threads import the same module. */
export function taskModuleUrl(specifier: TaskModuleSpecifier): string {
  if (specifier instanceof URL) return specifier.href;
  if (typeof specifier !== "string" || specifier.trim() === "") {
    throw new TypeError(`a task module must be a path or a file: URL, got ${JSON.stringify(specifier)}`);
  }
  return /^(file|data):/.test(specifier) ? specifier : pathToFileURL(resolve(specifier)).href;
}

/** Imports a task module and returns every exported task class (a class with a run method). */
export async function importTaskModule(url: string): Promise<AnyTaskClass[]> {
  let module: Record<string, unknown>;
  try {
    module = (await import(url)) as Record<string, unknown>;
  } catch (error) {
    throw new Error(`cannot load the task module ${url}: ${(error as Error).message}`, { cause: error });
  }
  const classes = Object.values(module).filter(
    (v): v is AnyTaskClass => typeof v === "function" && typeof (v as { prototype?: { run?: unknown } }).prototype?.run === "function",
  );
  if (classes.length === 0) throw new Error(`the task module ${url} exports no task class (a class with a run method)`);
  return classes;
}
