/**
 * Builds the platform in an isolated task's worker thread, so a task there has the same
 * UserConnection, entities, processes and package classes as on the worker's event loop.
 */
import type { CreateThreadHost } from "../../runtime/isolation/thread-main.ts";
import { Platform } from "../platform.ts";

export const createThreadHost: CreateThreadHost = async (config, internals) => {
  const platform = await Platform.attach(config, internals);
  return { runtime: platform.runtime, userConnectionFactory: (initiator) => platform.userConnectionFor(initiator) };
};
