/**
 * Where a text nests deepest: what a compile that ran out of stack reports, since the compiler
 * itself cannot say where (it recurses once per level of brackets, parentheses, braces or type
 * arguments).
 */
import { position } from "./lines.ts";

const OPEN = new Set(["(", "[", "{", "<"]);
const CLOSE = new Set([")", "]", "}", ">"]);

/**
 * The deepest nesting of ( [ { < in a text, skipping strings, template texts and comments: its
 * depth and the line and column of the bracket that reached it. A `<` that compares counts too,
 * and `>` never goes below zero: a hint of where to look, not a parse.
 */
export function deepestNesting(text: string): { depth: number; line: number; column: number } {
  let depth = 0;
  let deepest = 0;
  let at = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text[i] as string;
    if (c === "/" && text[i + 1] === "/") {
      const end = text.indexOf("\n", i);
      i = end < 0 ? text.length : end;
    } else if (c === "/" && text[i + 1] === "*") {
      const end = text.indexOf("*/", i + 2);
      i = end < 0 ? text.length : end + 1;
    } else if (c === '"' || c === "'" || c === "`") {
      for (i++; i < text.length && text[i] !== c; i++) if (text[i] === "\\") i++;
    } else if (OPEN.has(c)) {
      depth++;
      if (depth > deepest) {
        deepest = depth;
        at = i;
      }
    } else if (CLOSE.has(c)) {
      depth = Math.max(0, depth - 1);
    }
  }
  return { depth: deepest, ...position(text, at) };
}

/** True for the error a JavaScript engine throws when a recursion runs out of stack. */
export function isStackOverflow(error: unknown): boolean {
  return error instanceof RangeError && /call stack/i.test(error.message);
}
