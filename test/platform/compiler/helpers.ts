import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import {
  compilePackage,
  PackageCompileError,
  type CompileInput,
  type CompileProblem,
  type ProcessCondition,
  type ProcessScript,
  type ScriptContext,
  type SourceSchema,
} from "../../../src/platform/packages/compiler/index.ts";
import * as underway from "../../../src/index.ts";
import { parseProcess } from "../../../src/platform/processes/bpmn/index.ts";

/** The "underway" module namespace, as the platform hands it to loadPackage. */
export const platformApi: Record<string, unknown> = underway;

// The worked example as shipped: the compiler tests compile the real package.
const FIXTURE = new URL("../../../examples/background-activity/", import.meta.url);

/** The worked example's package: its two Source code schemas and its process's script. */
export async function workedExample(): Promise<CompileInput> {
  const schemas: SourceSchema[] = ["UsrActivityData", "UsrBackgroundActivityCreator"].map((name) => ({
    name,
    source: readFileSync(new URL(`${name}.ts`, FIXTURE), "utf8"),
  }));
  const process = await parseProcess(readFileSync(new URL("UsrBackgroundTaskExampleProcess.bpmn", FIXTURE), "utf8"));
  const scripts: ProcessScript[] = [...process.elements.values()]
    .filter((e) => e.kind === "scriptTask")
    .map((e) => ({ processCode: process.code, elementId: e.id, usings: e.usings ?? [], body: e.script ?? "" }));
  return { packageName: "BackgroundActivity", schemas, scripts, conditions: [] };
}

/** A package input with defaults for what a test does not care about. */
export function input(partial: Partial<CompileInput>): CompileInput {
  return { packageName: "UsrTest", schemas: [], scripts: [], conditions: [], ...partial };
}

/** A script of process UsrProcess. */
export function script(elementId: string, body: string, usings: string[] = []): ProcessScript {
  return { processCode: "UsrProcess", elementId, usings, body };
}

/** A condition of process UsrProcess on the flow `flowId`. */
export function condition(flowId: string, expression: string): ProcessCondition {
  return { processCode: "UsrProcess", flowId, usings: [], expression };
}

/** Compiles, expecting failure; returns the problems. */
export async function problemsOf(compileInput: CompileInput): Promise<readonly CompileProblem[]> {
  try {
    await compilePackage(compileInput);
  } catch (error) {
    assert.ok(error instanceof PackageCompileError, `expected a PackageCompileError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail("expected the package not to compile");
}

/** A ScriptContext over a map of process parameters. */
export function contextOf(parameters: Record<string, unknown> = {}): ScriptContext {
  return {
    userConnection: null,
    parameters,
    get: (name) => parameters[name],
    set: (name, value) => {
      parameters[name] = value;
    },
    waitForTask: () => {
      throw new Error("context.waitForTask is not available in compiler tests");
    },
    signal: new AbortController().signal,
  };
}
