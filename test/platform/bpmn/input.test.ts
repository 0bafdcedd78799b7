// What reaches moddle, and what moddle cannot read: the checks parseProcess and serializeProcess share.
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  MAX_BPMN_BYTES,
  MAX_NAMESPACE_DECLARATIONS,
  parseProcess,
  serializeProcess,
} from "../../../src/platform/processes/bpmn/index.ts";
import { fixture, problemsOf, serializeProblemsOf } from "./helpers.ts";

const BPMN = 'xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"';

describe("malformed XML", () => {
  const cases: [string, string, string[]][] = [
    ["an empty document", "", ["the document is empty"]],
    ["only whitespace", " \n\t", ["the document is empty"]],
    ["text that is not XML", "not xml", ["malformed XML at line 1, column 1: missing start tag (not xml)"]],
    ["an unclosed root", `<bpmn:definitions ${BPMN}`, ["malformed XML at line 1, column 1: unclosed tag (<bpmn:definitions>)"]],
    ["a long text, quoted shortened", "word ".repeat(40), [`malformed XML at line 1, column 1: missing start tag (${"word ".repeat(11)}wo...)`]],
    [
      "a closing tag that does not match",
      `<?xml version="1.0"?>\n<bpmn:definitions ${BPMN}>\n  <bpmn:process id="P">\n    <x></bpmn:process></bpmn:definitions>`,
      [
        "unreadable content <x> at line 4, column 5: unrecognized element <x>",
        "malformed XML at line 4, column 8: closing tag mismatch (</bpmn:process>)",
      ],
    ],
    [
      "a root element that is not bpmn:definitions",
      '<foo xmlns="urn:x"/>',
      ["unreadable content <foo> at line 1, column 1: unexpected element <foo>", "the document is not BPMN 2.0: its root element must be bpmn:definitions"],
    ],
    [
      "a bare bpmn:process",
      `<bpmn:process ${BPMN} id="P"/>`,
      ["unreadable content <bpmn:process> at line 1, column 1: unexpected element <bpmn:process>", "the document is not BPMN 2.0: its root element must be bpmn:definitions"],
    ],
    [
      "a DOCTYPE (no entity is ever expanded)",
      `<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]>\n<bpmn:definitions ${BPMN}><bpmn:process id="P" name="&e;"/></bpmn:definitions>`,
      ["the document has a <!DOCTYPE>; BPMN files must not declare one"],
    ],
  ];
  for (const [what, xml, expected] of cases) {
    it(`refuses ${what}, saying where`, async () => {
      assert.deepEqual(await problemsOf(xml), expected);
      assert.deepEqual(await serializeProblemsOf(() => serializeProcess(xml)), expected);
    });
  }

  it("refuses what is not a string (from an untyped caller)", async () => {
    for (const [value, shown] of [[undefined, "undefined"], [null, "null"], [42, "number"], [Buffer.from("<a/>"), "object"]] as const) {
      assert.deepEqual(await problemsOf(value as unknown as string), [`the document must be a string of XML, not ${shown}`]);
    }
  });
});

describe("huge input", () => {
  const example = fixture("UsrBackgroundTaskExampleProcess.bpmn");
  /** The example with a comment that brings it to exactly `bytes` UTF-8 bytes, using `filler`. */
  const padded = (bytes: number, filler: string) => {
    const room = bytes - Buffer.byteLength(example) - "<!---->".length;
    const fill = filler.repeat(Math.floor(room / Buffer.byteLength(filler)));
    return example.replace("</bpmn:definitions>", `<!--${fill}-->${" ".repeat(room - Buffer.byteLength(fill))}</bpmn:definitions>`);
  };

  it("refuses more than 100 namespace declarations (each nested one made writing the diagram back slower), and reads 100", async () => {
    const nested = (n: number) =>
      example.replace("<bpmn:startEvent", `<bpmn:extensionElements>${'<x:a xmlns:x="urn:x">'.repeat(n)}${"</x:a>".repeat(n)}</bpmn:extensionElements><bpmn:startEvent`);
    const declared = (example.match(/\sxmlns(:[^\s=]*)?=/g) ?? []).length;
    const atLimit = nested(MAX_NAMESPACE_DECLARATIONS - declared);
    assert.equal((await parseProcess(atLimit)).code, "UsrBackgroundTaskExampleProcess");
    const over = nested(20_000);
    const expected = [
      `the document makes ${20_000 + declared} XML namespace declarations (xmlns); the limit is ${MAX_NAMESPACE_DECLARATIONS}: declare each namespace once, on the root element`,
    ];
    assert.deepEqual(await problemsOf(over), expected);
    assert.deepEqual(await serializeProblemsOf(() => serializeProcess(over)), expected);
  });

  it("reads a document of exactly 5 MB", async () => {
    const xml = padded(MAX_BPMN_BYTES, "x");
    assert.equal(Buffer.byteLength(xml), MAX_BPMN_BYTES);
    assert.equal((await parseProcess(xml)).code, "UsrBackgroundTaskExampleProcess");
  });

  it("refuses one byte more, before parsing, counting UTF-8 bytes rather than characters", async () => {
    const ascii = padded(MAX_BPMN_BYTES + 1, "x");
    const expected = [`the document is ${MAX_BPMN_BYTES + 1} bytes; the limit is ${MAX_BPMN_BYTES} bytes (5 MB)`];
    assert.deepEqual(await problemsOf(ascii), expected);
    assert.deepEqual(await serializeProblemsOf(() => serializeProcess(ascii)), expected);

    const accented = padded(MAX_BPMN_BYTES + 1, "é"); // 2 bytes, 1 character each
    assert.ok(accented.length < MAX_BPMN_BYTES);
    assert.deepEqual(await problemsOf(accented), expected);
  });

  it("refuses a 50 MB document without handing it to moddle", async () => {
    // Malformed too: had moddle read it, the problems would say so.
    const problems = await problemsOf(`<bpmn:definitions ${BPMN}>${"<".repeat(50 * 1024 * 1024)}`);
    assert.deepEqual(problems, [`the document is ${50 * 1024 * 1024 + 75} bytes; the limit is 5242880 bytes (5 MB)`]);
  });
});
