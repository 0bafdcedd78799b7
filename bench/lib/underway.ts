/**
 * What the benchmark uses of underway, from the modules that define it rather than the package
 * index (src/index.ts): the index also loads the rest of the product (the Platform, its entities
 * and processes), which costs every child process seconds of start-up on a busy 2-core machine
 * and has nothing to do with what is measured. The runtime and Task are the same code either way.
 */
export { createRuntime, type Runtime, type WorkerConfig } from "../../src/runtime/runtime.ts";
export { Task } from "../../src/tasks/task.ts";
export type { IBackgroundTask, TaskContext } from "../../src/tasks/types.ts";
