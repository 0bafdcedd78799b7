/** Lines and columns in text, counted the way TypeScript and esbuild count them. */

function isLineBreak(c: number): boolean {
  return c === 10 || c === 13 || c === 0x2028 || c === 0x2029;
}

/** The 1-based line and column of an offset, with TypeScript's line breaks (\n, \r\n, \r, U+2028, U+2029). */
export function position(text: string, offset: number): { line: number; column: number } {
  const end = Math.max(0, Math.min(offset, text.length));
  let line = 1;
  let lineStart = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 13 && text.charCodeAt(i + 1) === 10 && i + 1 < end) i++;
    if (isLineBreak(c)) {
      line++;
      lineStart = i + 1;
    }
  }
  return { line, column: end - lineStart + 1 };
}

/** The offset of a 1-based line and 0-based column (clamped to the text). */
export function offsetOf(text: string, line: number, column: number): number {
  let offset = 0;
  for (let current = 1; current < line && offset < text.length; offset++) {
    const c = text.charCodeAt(offset);
    if (c === 13 && text.charCodeAt(offset + 1) === 10) offset++;
    if (isLineBreak(c)) current++;
  }
  return Math.min(offset + column, text.length);
}
