import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseProcess, withoutProcessCode } from "../../../src/platform/processes/bpmn/index.ts";
import { condition, flow, minimal, processXml, script } from "./helpers.ts";

describe("withoutProcessCode", () => {
  it("empties scripts and conditions and keeps the rest of the diagram", async () => {
    const xml = processXml(
      `<bpmn:startEvent id="S"/>${script("T", "const secret = 42; return true;")}<bpmn:exclusiveGateway id="G" default="F3"/>` +
        `<bpmn:endEvent id="E"/><bpmn:endEvent id="E2"/>${flow("F1", "S", "T")}${flow("F2", "T", "G")}` +
        `${flow("F3", "G", "E")}${flow("F4", "G", "E2", condition('context.get("Mode") === "hidden rule"'))}`,
    );
    assert.deepEqual([...(await parseProcess(xml)).elements.keys()].sort(), ["E", "E2", "G", "S", "T"]);
    const redacted = await withoutProcessCode(xml);
    assert.doesNotMatch(redacted, /secret = 42|hidden rule/);
    for (const id of ["S", "T", "G", "E", "E2", "F1", "F2", "F3", "F4"]) assert.match(redacted, new RegExp(`id="${id}"`));
    assert.match(redacted, /<bpmn:script><\/bpmn:script>/);
  });

  it("keeps a deeply nested diagram about its own size", async () => {
    // Extension content nests as deep as its author likes; indenting each level made the text
    // grow with the square of the depth (about 120 KB became 128 MB).
    const depth = 4_000;
    const nested = `<ext:a xmlns:ext="http://example.com/ext">${"<ext:a>".repeat(depth)}${"</ext:a>".repeat(depth)}</ext:a>`;
    const xml = minimal(`<bpmn:extensionElements>${nested}</bpmn:extensionElements>`);
    const redacted = await withoutProcessCode(xml);
    assert.ok(redacted.length < 2 * xml.length, `${xml.length} characters became ${redacted.length}`);
    assert.match(redacted, /<bpmn:script><\/bpmn:script>/);
  });
});
