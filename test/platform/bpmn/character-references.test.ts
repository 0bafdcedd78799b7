// Character references to characters past U+FFFF (`&#x1F600;`): saxen, the XML reader under
// bpmn-moddle, decoded them with String.fromCharCode, keeping the low 16 bits (😀 became U+F600).
import assert from "node:assert/strict";
import { describe, it } from "node:test";
import {
  MAX_BPMN_BYTES,
  MAX_NAMESPACE_DECLARATIONS,
  parseProcess,
  serializeProcess,
  withoutProcessCode,
} from "../../../src/platform/processes/bpmn/index.ts";
import { condition, fixture, flow, minimal, problemsOf, processXml, serializeProblemsOf } from "./helpers.ts";

const SMILE = "\u{1F600}";

/** The minimal process with its script task named `name` (as written in the XML). */
const named = (name: string): string => minimal().replace('name="T task"', `name="${name}"`);

/** The minimal process with its script task's body `script` (as written in the XML). */
const scripted = (script: string): string => minimal().replace("<bpmn:script>return true;</bpmn:script>", `<bpmn:script>${script}</bpmn:script>`);

async function nameOf(xml: string): Promise<string | undefined> {
  return (await parseProcess(xml)).elements.get("T")?.name;
}

/** Both readers refuse the document with these problems. */
async function refused(xml: string, expected: readonly string[]): Promise<void> {
  assert.deepEqual(await problemsOf(xml), expected);
  assert.deepEqual(await serializeProblemsOf(() => serializeProcess(xml)), expected);
}

/** Where `needle` first starts in `xml`, as problems count: line and column from 1. */
function positionOf(xml: string, needle: string): string {
  const before = xml.slice(0, xml.indexOf(needle));
  return `line ${before.split("\n").length}, column ${before.length - before.lastIndexOf("\n")}`;
}

describe("character references past U+FFFF", () => {
  it("reads a hex or a decimal reference as the character it names, not as its low 16 bits", async () => {
    assert.equal(await nameOf(named("Smile &#x1F600;")), `Smile ${SMILE}`);
    assert.equal(await nameOf(named("Smile &#128512;")), `Smile ${SMILE}`);
    assert.equal(await nameOf(named("Smile &#x1f600; &#X1F600; &#x0001F600; &#000128512;")), `Smile ${SMILE} ${SMILE} ${SMILE} ${SMILE}`);
    // The first and the last of them, and those whose low 16 bits are a NUL or a lone surrogate.
    assert.equal(await nameOf(named("&#x10000;&#65536;")), "\u{10000}\u{10000}");
    assert.equal(await nameOf(named("&#x10FFFF;&#1114111;")), "\u{10FFFF}\u{10FFFF}");
    assert.equal(await nameOf(named("a &#x1D800; b")), "a \u{1D800} b");
    assert.equal(await nameOf(named("&#x20000;")), "\u{20000}");
  });

  it("reads them everywhere saxen decodes references: names, single-quoted values, a condition, a script's text", async () => {
    const body =
      `<bpmn:startEvent id="S" name='Start &#x1F600;'/>` +
      `<bpmn:exclusiveGateway id="G" name="Which &#128512;?" default="F3"/>` +
      `<bpmn:scriptTask id="T" name="T" scriptFormat="typescript"><bpmn:script>return "&#x1F600;" + 'a&amp;b';</bpmn:script></bpmn:scriptTask>` +
      `<bpmn:endEvent id="E"/>` +
      flow("F1", "S", "G") +
      flow("F2", "G", "T", condition(`parameters.mood === "&#x1F600;"`), 'name="happy &#x1F600;"') +
      flow("F3", "G", "E") +
      flow("F4", "T", "E");
    const process = await parseProcess(processXml(body, 'name="Moods &#x1F600;"'));
    assert.equal(process.name, `Moods ${SMILE}`);
    assert.equal(process.elements.get("S")?.name, `Start ${SMILE}`);
    assert.equal(process.elements.get("G")?.name, `Which ${SMILE}?`);
    assert.equal(process.elements.get("T")?.script, `return "${SMILE}" + 'a&b';`);
    const [branch] = process.elements.get("G")?.outgoing ?? [];
    assert.equal(branch?.name, `happy ${SMILE}`);
    assert.equal(branch?.condition, `parameters.mood === "${SMILE}"`);
  });

  it("leaves CDATA, comments and processing instructions as written, as saxen does", async () => {
    const cdata = await parseProcess(scripted('<![CDATA[return "&#x1F600;" + "&#x110000;";]]>'));
    assert.equal(cdata.elements.get("T")?.script, 'return "&#x1F600;" + "&#x110000;";');
    const commented = minimal().replace("<bpmn:endEvent", "<!-- &#x1F600; &#x110000; --><?note &#x110000; ?><bpmn:endEvent");
    assert.equal((await parseProcess(commented)).code, "P");
    // saxen ends markup where its terminator first follows the `<`: `<!-->` is a whole comment,
    // and the CDATA after it ends at its own `]]>`, whatever `-->` it holds.
    const tricky = await parseProcess(scripted('<!--><![CDATA[--> &#x1F600;]]>'));
    assert.equal(tricky.elements.get("T")?.script, "--> &#x1F600;");
    // A `>` or the other quote inside a quoted value does not end the tag.
    assert.equal(await nameOf(named("a > b ' &#x1F600;")), `a > b ' ${SMILE}`);
  });

  it("stores the character itself when the diagram is saved, and reads it back the same", async () => {
    const saved = await serializeProcess(named("Smile &#x1F600;"));
    assert.ok(saved.includes(`name="Smile ${SMILE}"`), saved);
    assert.ok(!saved.includes("\uF600"));
    assert.equal(await nameOf(saved), `Smile ${SMILE}`);
    const redacted = await withoutProcessCode(named("Smile &#x1F600;"));
    assert.ok(redacted.includes(`name="Smile ${SMILE}"`), redacted);
  });

  it("refuses a reference past U+10FFFF, which names no character, saying where (saxen read &#x11F600; as U+F600)", async () => {
    for (const reference of ["&#x110000;", "&#x11F600;", "&#1114112;", "&#xFFFFFFFF;", "&#99999999999999999999999;"]) {
      const xml = named(`Smile ${reference}`);
      const shown = reference.length > 20 ? `${reference.slice(0, 16)}...;` : reference;
      await refused(xml, [
        `malformed XML at ${positionOf(xml, reference)}: the character reference ${shown} is past U+10FFFF, the last Unicode character`,
      ]);
    }
    // In a script's text too: it is no character either.
    const xml = scripted('return "&#x110000;";');
    await refused(xml, [
      `malformed XML at ${positionOf(xml, "&#x110000;")}: the character reference &#x110000; is past U+10FFFF, the last Unicode character`,
    ]);
    assert.equal(positionOf(xml, "&#x110000;"), "line 4, column 112");
  });

  it("still refuses a NUL or a lone surrogate, written as one reference, where it cannot be stored", async () => {
    assert.deepEqual(await problemsOf(named("Step &#0;")), [
      'bpmn:ScriptTask "Step \\u0000" (T): its name holds a NUL character (&#0;), which cannot be stored; remove it',
    ]);
    assert.deepEqual(await problemsOf(named("Step &#xD800;")), [
      'bpmn:ScriptTask "Step \\uD800" (T): its name holds a lone surrogate (U+D800), which cannot be stored; remove it',
    ]);
    assert.deepEqual(await problemsOf(named("Step &#56320;")), [
      'bpmn:ScriptTask "Step \\uDC00" (T): its name holds a lone surrogate (U+DC00), which cannot be stored; remove it',
    ]);
    // Two references that make a pair are read as before: one character.
    assert.equal(await nameOf(named("&#xD83D;&#xDE00;")), SMILE);
  });

  it("keeps the limits: bytes and namespace declarations are counted in the document as given", async () => {
    const example = fixture("UsrBackgroundTaskExampleProcess.bpmn");
    // One byte over 5 MB, made of references that would make it shorter as characters.
    const room = MAX_BPMN_BYTES + 1 - Buffer.byteLength(example) - "<bpmn:documentation></bpmn:documentation>".length;
    const fill = "&#x1F600;".repeat(Math.floor(room / 9));
    const over = example.replace("<bpmn:startEvent", `<bpmn:documentation>${fill}${" ".repeat(room - fill.length)}</bpmn:documentation><bpmn:startEvent`);
    assert.equal(Buffer.byteLength(over), MAX_BPMN_BYTES + 1);
    await refused(over, [`the document is ${MAX_BPMN_BYTES + 1} bytes; the limit is ${MAX_BPMN_BYTES} bytes (5 MB)`]);

    const declared = (example.match(/\sxmlns(:[^\s=]*)?=/g) ?? []).length;
    const n = MAX_NAMESPACE_DECLARATIONS - declared + 1;
    const declarations = example.replace(
      "<bpmn:startEvent",
      `<bpmn:extensionElements>${'<x:a xmlns:x="urn:&#x1F600;">'.repeat(n)}${"</x:a>".repeat(n)}</bpmn:extensionElements><bpmn:startEvent`,
    );
    await refused(declarations, [
      `the document makes ${MAX_NAMESPACE_DECLARATIONS + 1} XML namespace declarations (xmlns); the limit is ${MAX_NAMESPACE_DECLARATIONS}: declare each namespace once, on the root element`,
    ]);
  });
});
