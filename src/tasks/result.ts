/** Task results: what run returns, stored with the task as MessagePack (the parameter codec). */
import { decodeParameters, encodeParameters } from "../codec/index.ts";

/** Largest encoded result: results are for small answers (an id, a count, a short summary). */
export const MAX_RESULT_BYTES = 64 * 1024;

/**
 * The outcome fields for what run returned: nothing for undefined, else the encoded value.
 * Throws TaskSerializationError (naming the path, `result.file: a function cannot be serialized`)
 * for a value that cannot be stored: the attempt then fails like a thrown error.
 */
export function taskResultOf(returned: unknown): { result?: Uint8Array } {
  if (returned === undefined) return {};
  return { result: encodeParameters(returned, { maxBytes: MAX_RESULT_BYTES, rootName: "result" }) };
}

/** The stored result decoded; undefined when none was stored. */
export function decodeTaskResult(bytes: Uint8Array | null): unknown {
  return bytes === null ? undefined : decodeParameters(bytes, { rootName: "result" });
}
