import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { parseProcess, serializeProcess } from "../../../src/platform/processes/bpmn/index.ts";
import { RUNNABLE_FIXTURES, fixture, fixtureNames, minimal, problemsOf, serializeProblemsOf } from "./helpers.ts";

/** bpmnElement ids of the diagram's shapes and edges, in order. */
function diagramElements(xml: string): string[] {
  return [...xml.matchAll(/<bpmndi:BPMN(?:Shape|Edge) id="[^"]*" bpmnElement="([^"]*)"/g)].map((m) => m[1] ?? "");
}

describe("serializeProcess: round trip", () => {
  it("covers every fixture in test/fixtures/bpmn", () => {
    assert.ok(fixtureNames().length >= 10);
    for (const name of RUNNABLE_FIXTURES) assert.ok(fixtureNames().includes(name), name);
  });

  for (const name of fixtureNames()) {
    it(`${name}: parse(serialize(x)) reads as parse(x), the diagram is kept, and serialize is stable`, async () => {
      const xml = fixture(name);
      const saved = await serializeProcess(xml);
      if (RUNNABLE_FIXTURES.includes(name)) {
        assert.deepEqual(await parseProcess(saved), await parseProcess(xml));
      } else {
        assert.deepEqual(await problemsOf(saved), await problemsOf(xml));
      }
      const shapes = diagramElements(xml);
      assert.ok(shapes.length > 0);
      assert.deepEqual(diagramElements(saved), shapes);
      assert.equal((saved.match(/<di:waypoint /g) ?? []).length, (xml.match(/<di:waypoint /g) ?? []).length);
      assert.equal(await serializeProcess(saved), saved);
    });
  }

  it("writes bpmn-js's own output back byte for byte (same library, same format)", async () => {
    for (const name of fixtureNames().filter((n) => n.startsWith("bpmnjs-"))) {
      assert.equal(`${await serializeProcess(fixture(name))}\n`, fixture(name), name);
    }
  });

  it("keeps the underway extension and foreign extensions (camunda:, modeler:)", async () => {
    const saved = await serializeProcess(fixture("handwritten-camunda-modeler-style.bpmn"));
    for (const kept of [
      'underway:usings="UsrOrder"',
      '<underway:parameter name="Amount" type="integer" default="0" />',
      'camunda:historyTimeToLive="180"',
      'camunda:resultVariable="checked"',
      '<camunda:inputParameter name="limit">1000</camunda:inputParameter>',
      'modeler:executionPlatform="Camunda Platform"',
      '<bpmn:lane id="Lane_1mgmt2" name="Management">',
      '<bpmn:text>Large orders need a manager\'s look</bpmn:text>',
    ]) {
      assert.ok(saved.includes(kept), kept);
    }
    // Comments and CDATA are not part of the model: the script comes back escaped, same text.
    assert.ok(!saved.includes("<!--"));
    assert.ok(saved.includes("return order.amount &gt;= 0 &amp;&amp; order.amount &lt; 1_000_000;"));
  });

  it("saves a draft that cannot run yet (Publish, not Save, requires a runnable process)", async () => {
    const draft = fixture("bpmnjs-initial-diagram.bpmn");
    assert.ok((await serializeProcess(draft)).includes('<bpmn:startEvent id="StartEvent_1" />'));
    assert.deepEqual(await problemsOf(draft), ["bpmn:StartEvent (StartEvent_1) has no outgoing sequence flow"]);
  });
});

describe("serializeProcess: refuses what it would lose", () => {
  it("refuses content moddle skipped or could not resolve, instead of dropping it", async () => {
    const xml = minimal('<bpmn:bogusElement id="B"/>').replace(
      '<bpmn:startEvent id="S"/>',
      '<bpmn:startEvent id="S"><bpmn:outgoing>Gone</bpmn:outgoing></bpmn:startEvent>',
    );
    const problems = await serializeProblemsOf(() => serializeProcess(xml));
    assert.deepEqual(problems, [
      `unreadable content <bpmn:bogusElement> at line 4, column ${(xml.split("\n")[3] ?? "").indexOf("<bpmn:bogusElement") + 1}: unknown type <bpmn:BogusElement>`,
      'bpmn:StartEvent (S): outgoing refers to missing element "Gone"',
    ]);
    assert.deepEqual(await problemsOf(xml), problems);
  });
});
