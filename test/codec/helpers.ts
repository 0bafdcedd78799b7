// Small helpers shared by the codec tests.
import assert from "node:assert/strict";
import {
  TaskDeserializationError,
  TaskSerializationError,
  decodeParameters,
  encodeParameters,
  type EncodeOptions,
} from "../../src/codec/index.ts";

/** "c7-0c-ff ..." or "c7 0c ff" or "c70cff" -> bytes. */
export function fromHex(text: string): Uint8Array {
  const digits = text.replace(/[^0-9a-f]/gi, "");
  assert.equal(digits.length % 2, 0, `odd hex string ${text}`);
  return Uint8Array.from(Buffer.from(digits, "hex"));
}

/** bytes -> "c7-0c-ff", the notation of msgpack-test-suite. */
export function toHex(bytes: Uint8Array): string {
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("-");
}

export function roundTrip(value: unknown): unknown {
  return decodeParameters(encodeParameters(value));
}

/** Asserts that encoding throws a TaskSerializationError with exactly this message. */
export function assertEncodeRejects(
  value: unknown,
  message: string | RegExp,
  options?: EncodeOptions,
): TaskSerializationError {
  let caught: unknown;
  try {
    encodeParameters(value, options);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof TaskSerializationError, `expected a TaskSerializationError, got ${String(caught)}`);
  if (typeof message === "string") assert.equal(caught.message, message);
  else assert.match(caught.message, message);
  assert.equal(caught.name, "TaskSerializationError");
  assert.equal(caught.message, `${caught.path}: ${caught.reason}`);
  return caught;
}

/** Asserts that decoding throws a TaskDeserializationError with exactly this message. */
export function assertDecodeRejects(bytes: Uint8Array, message: string | RegExp): TaskDeserializationError {
  let caught: unknown;
  try {
    decodeParameters(bytes);
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof TaskDeserializationError, `expected a TaskDeserializationError, got ${String(caught)}`);
  if (typeof message === "string") assert.equal(caught.message, message);
  else assert.match(caught.message, message);
  assert.equal(caught.name, "TaskDeserializationError");
  assert.equal(caught.message, `${caught.path}: ${caught.reason}`);
  return caught;
}
