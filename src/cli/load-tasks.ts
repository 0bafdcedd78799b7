import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { StartableTaskClass } from "../tasks/task.ts";

/** Imports modules and returns every exported task class (a class with a run method). */
export async function loadTaskModules(paths: readonly string[]): Promise<StartableTaskClass[]> {
  const found: StartableTaskClass[] = [];
  for (const path of paths) {
    let module: Record<string, unknown>;
    try {
      module = (await import(pathToFileURL(resolve(path)).href)) as Record<string, unknown>;
    } catch (error) {
      throw new Error(`cannot load the task module ${path}: ${(error as Error).message}`, { cause: error });
    }
    const classes = Object.values(module).filter(
      (v): v is StartableTaskClass => typeof v === "function" && typeof (v as { prototype?: { run?: unknown } }).prototype?.run === "function",
    );
    if (classes.length === 0) throw new Error(`the task module ${path} exports no task class (a class with a run method)`);
    found.push(...classes);
  }
  return found;
}
