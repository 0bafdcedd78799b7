import assert from "node:assert/strict";
import { readFileSync, readdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { BpmnDefinitionError, parseProcess } from "../../../src/platform/processes/bpmn/index.ts";

export const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), "../../fixtures/bpmn");

export function fixture(name: string): string {
  return readFileSync(join(FIXTURES, name), "utf8");
}

export function fixtureNames(): string[] {
  return readdirSync(FIXTURES).filter((name) => name.endsWith(".bpmn")).sort();
}

/** The fixtures that describe a process we can run. */
export const RUNNABLE_FIXTURES = [
  "UsrBackgroundTaskExampleProcess.bpmn",
  "bpmnjs-gateway.bpmn",
  "bpmnjs-pool.bpmn",
  "bpmnjs-script-task.bpmn",
  "handwritten-camunda-modeler-style.bpmn",
];

const NAMESPACES = [
  'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"',
  'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"',
  'xmlns:underway="http://underway.dev/schema/bpmn"',
].join(" ");

/** A bpmn:definitions document around `roots` (process, collaboration, ...). */
export function definitions(roots: string): string {
  return `<?xml version="1.0" encoding="UTF-8"?>\n<bpmn:definitions ${NAMESPACES} id="Definitions_1" targetNamespace="http://underway.dev/test">\n${roots}\n</bpmn:definitions>\n`;
}

/** A document with one process `P` holding `body`. */
export function processXml(body: string, attributes = 'name="Test process"'): string {
  return definitions(`<bpmn:process id="P" ${attributes}>\n${body}\n</bpmn:process>`);
}

export function flow(id: string, source: string, target: string, inner = "", attributes = ""): string {
  return `<bpmn:sequenceFlow id="${id}" sourceRef="${source}" targetRef="${target}" ${attributes}>${inner}</bpmn:sequenceFlow>`;
}

export function condition(body: string, attributes = ""): string {
  return `<bpmn:conditionExpression xsi:type="bpmn:tFormalExpression" ${attributes}>${body}</bpmn:conditionExpression>`;
}

export function script(id: string, body = "return true;", attributes = ""): string {
  return `<bpmn:scriptTask id="${id}" name="${id} task" scriptFormat="typescript" ${attributes}><bpmn:script>${body}</bpmn:script></bpmn:scriptTask>`;
}

/** start S -> script T -> end E: the smallest process we run; `extra` goes inside the process. */
export function minimal(extra = ""): string {
  return processXml(`<bpmn:startEvent id="S"/>${script("T")}<bpmn:endEvent id="E"/>${flow("F1", "S", "T")}${flow("F2", "T", "E")}${extra}`);
}

/** Runs parseProcess, expects a BpmnDefinitionError, returns its problems. */
export async function problemsOf(xml: string): Promise<readonly string[]> {
  try {
    await parseProcess(xml);
  } catch (error) {
    assert.ok(error instanceof BpmnDefinitionError, `expected BpmnDefinitionError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail("parseProcess accepted the document");
}

export async function serializeProblemsOf(run: () => Promise<unknown>): Promise<readonly string[]> {
  try {
    await run();
  } catch (error) {
    assert.ok(error instanceof BpmnDefinitionError, `expected BpmnDefinitionError, got ${String(error)}`);
    return error.problems;
  }
  assert.fail("accepted the document");
}
