// saxen, the XML reader under bpmn-moddle, decodes a character reference with String.fromCharCode,
// which keeps the low 16 bits of the number: `&#x1F600;` (😀) was read as U+F600, a private-use
// character, and stored so; `&#65536;` as NUL and `&#x1D800;` as a lone surrogate. Before the
// document reaches it, each reference to a character past U+FFFF is written as the character
// itself, where saxen would decode it (text and tags); saxen keeps a character as it is. Every
// other reference is left to saxen as before, NUL and lone surrogates included (parse-process
// refuses those in ids and names).
import { BpmnDefinitionError } from "./bpmn-definition-error.ts";

/**
 * A numeric reference that may be past U+FFFF: five digits or more. Where one starts is where
 * saxen's own pattern (`&#(\d+);|&#x([0-9a-f]+);|&(\w+);`, case-insensitive) finds it: no
 * reference holds a `&` another could start at.
 */
const CANDIDATE = /&#(?:(\d{5,})|x([0-9a-f]{5,}));/gi;
const LAST_CODE_POINT = 0x10ffff;

/**
 * The document with its references to characters past U+FFFF written as the characters, in the
 * parts saxen decodes references in; throws BpmnDefinitionError for a reference past U+10FFFF,
 * which names no character (saxen read `&#x11F600;` as U+F600 too). The document only gets
 * shorter: a reference takes at least 8 characters, what replaces it 2.
 */
export function withCharactersPastBmp(xml: string): string {
  const walk = regions(xml);
  let region: Region = { end: 0, decodes: false };
  return xml.replace(CANDIDATE, (reference: string, decimal: string | undefined, hex: string | undefined, at: number) => {
    while (region.end <= at) {
      const next = walk.next();
      if (next.done) break;
      region = next.value;
    }
    if (!region.decodes) return reference;
    const code = decimal !== undefined ? Number(decimal) : Number.parseInt(hex ?? "", 16);
    if (code <= 0xffff) return reference;
    if (code > LAST_CODE_POINT) throw pastLastCodePoint(xml, at, reference);
    return String.fromCodePoint(code);
  });
}

interface Region {
  /** Where it ends (exclusive); it starts where the one before it ended. */
  readonly end: number;
  /** Whether saxen decodes references in it. */
  readonly decodes: boolean;
}

/**
 * The document in the parts saxen's parse loop (saxen 11, Parser#parse) reads, in order: text,
 * where it decodes references; tags, where it decodes them in attribute values (in a name it
 * refuses a reference and a character past U+FFFF alike); and CDATA sections, comments,
 * processing instructions and <!...> declarations, where it does not. Each ends where saxen ends
 * it, so that both agree on what is text.
 */
function* regions(xml: string): Generator<Region, void> {
  let j = 0;
  while (j < xml.length) {
    const i = xml.indexOf("<", j);
    if (i === -1) {
      yield { end: xml.length, decodes: true };
      return;
    }
    if (i > j) yield { end: i, decodes: true };
    const end = markupEnd(xml, i);
    if (end === -1) {
      // Unclosed: saxen refuses the document here; the rest is passed on as it is.
      yield { end: xml.length, decodes: false };
      return;
    }
    yield { end, decodes: xml[i + 1] !== "!" && xml[i + 1] !== "?" };
    j = end;
  }
}

/** The index after the markup that starts at `i` (a `<`), as saxen finds it; -1 when it is not closed. */
function markupEnd(xml: string, i: number): number {
  const closedBy = (terminator: string): number => {
    // saxen looks for the terminator from the `<` itself: `<!-->` is a whole comment to it.
    const at = xml.indexOf(terminator, i);
    return at === -1 ? -1 : at + terminator.length;
  };
  if (xml.startsWith("<![CDATA[", i)) return closedBy("]]>");
  if (xml.startsWith("<!--", i)) return closedBy("-->");
  if (xml.startsWith("<?", i)) return closedBy("?>");
  // A tag or a <!...> declaration ends at the first `>` outside quotes; a quote that is never
  // closed counts as an ordinary character.
  for (let x = i + 1; x < xml.length; x++) {
    const c = xml[x];
    if (c === '"' || c === "'") {
      const close = xml.indexOf(c, x + 1);
      if (close !== -1) x = close;
    } else if (c === ">") {
      return x + 1;
    }
  }
  return -1;
}

function pastLastCodePoint(xml: string, index: number, reference: string): BpmnDefinitionError {
  const before = xml.slice(0, index);
  const line = before.split("\n").length;
  const column = index - before.lastIndexOf("\n");
  const shown = reference.length > 20 ? `${reference.slice(0, 16)}...;` : reference;
  return new BpmnDefinitionError([
    `malformed XML at line ${line}, column ${column}: the character reference ${shown} is past U+10FFFF, the last Unicode character`,
  ]);
}
