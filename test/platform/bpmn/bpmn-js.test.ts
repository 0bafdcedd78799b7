// The fixtures in the real modeler: bpmn-js 18 in headless Chromium. Proves the diagrams (the
// hand-written ones included) open without warnings and draw every element, that what bpmn-js
// saves reads as the same process, and that the bpmn-js fixtures are what tools/generate.ts makes.
// Skipped when there is no Chromium (apt-get install chromium, or set CHROMIUM_PATH).
import assert from "node:assert/strict";
import { after, before, describe, it } from "node:test";
import { parseProcess } from "../../../src/platform/processes/bpmn/index.ts";
import { buildFixtures, checkInBpmnJs, loadBpmnJs } from "../../fixtures/bpmn/tools/bpmn-js.ts";
import { CHROMIUM_PATH, chromiumAvailable, launchChromium, type Browser } from "../../fixtures/bpmn/tools/chromium.ts";
import { RUNNABLE_FIXTURES, fixture, fixtureNames, problemsOf } from "./helpers.ts";

const skip = chromiumAvailable() ? false : `no Chromium at ${CHROMIUM_PATH}`;

/** bpmnElement of every BPMNShape and BPMNEdge: what bpmn-js must draw. */
function diagramElements(xml: string): string[] {
  return [...xml.matchAll(/<bpmndi:BPMN(?:Shape|Edge) id="[^"]*" bpmnElement="([^"]*)"/g)].map((m) => m[1] ?? "");
}

/** Label bounds come from the browser's font metrics; everything else must match exactly. */
function withoutLabelBounds(xml: string): string {
  return xml.replace(/<bpmndi:BPMNLabel>\s*<dc:Bounds [^>]*\/>\s*<\/bpmndi:BPMNLabel>/g, "<bpmndi:BPMNLabel/>");
}

describe("the fixtures in bpmn-js (headless Chromium)", { skip }, () => {
  let browser: Browser | undefined;
  const open = () => {
    assert.ok(browser, "chromium did not start");
    return browser;
  };

  before(async () => {
    browser = await launchChromium();
    await loadBpmnJs(browser);
  });
  after(async () => {
    await browser?.close();
  });

  for (const name of fixtureNames()) {
    it(`${name}: opens without warnings, every element drawn, and bpmn-js's save reads the same`, async () => {
      const xml = fixture(name);
      const result = await checkInBpmnJs(open(), xml);
      assert.deepEqual(result.warnings, []);
      const drawn = new Set(result.drawn);
      const expected = diagramElements(xml);
      assert.ok(expected.length > 0);
      assert.deepEqual(expected.filter((id) => !drawn.has(id)), [], "not drawn");

      if (RUNNABLE_FIXTURES.includes(name)) {
        const definition = await parseProcess(xml);
        for (const element of definition.elements.values()) {
          assert.ok(drawn.has(element.id), element.id);
          for (const flow of element.outgoing) assert.ok(drawn.has(flow.id), flow.id);
        }
        assert.deepEqual(await parseProcess(result.saved), definition);
      } else {
        assert.deepEqual(await problemsOf(result.saved), await problemsOf(xml));
      }
    });
  }

  it("a fresh build by tools/generate.ts gives the committed bpmn-js fixtures (label bounds aside)", async () => {
    const built = await buildFixtures(open());
    assert.deepEqual(Object.keys(built).sort(), fixtureNames().filter((n) => n.startsWith("bpmnjs-")));
    for (const [name, xml] of Object.entries(built)) {
      assert.equal(withoutLabelBounds(xml), withoutLabelBounds(fixture(name)), name);
    }
  });
});
