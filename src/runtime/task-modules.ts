import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import type { AnyTaskClass } from "../tasks/registry.ts";
import type { UserConnectionFactory } from "../worker/worker.ts";

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

/**
 * The UserConnection factory a module exports as `userConnectionFactory` (createRuntime's
 * `userConnectionModule`), imported on its first use: `load` imports the module (a thread imports
 * its bundled copy). A module that cannot be loaded, or exports no such function, fails the
 * attempts that need a connection, each with the reason.
 */
export function moduleUserConnections(url: string, load: (url: string) => Promise<unknown> = (u) => import(u)): UserConnectionFactory {
  let factory: Promise<UserConnectionFactory> | null = null;
  const loaded = async (): Promise<UserConnectionFactory> => {
    let module: unknown;
    try {
      module = await load(url);
    } catch (error) {
      throw new Error(`cannot load the userConnectionModule ${url}: ${(error as Error).message}`, { cause: error });
    }
    const found = (module as { userConnectionFactory?: unknown } | null)?.userConnectionFactory;
    if (typeof found !== "function") {
      throw new TypeError(`the userConnectionModule ${url} exports no function userConnectionFactory (it exports ${typeof found})`);
    }
    return found as UserConnectionFactory;
  };
  return async (initiator, task) => {
    // A failed load is tried again by the next attempt (the file may have been fixed).
    const pending = (factory ??= loaded().catch((error: unknown) => {
      factory = null;
      throw error;
    }));
    return (await pending)(initiator, task);
  };
}
