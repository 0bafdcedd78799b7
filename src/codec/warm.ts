import { decodeParameters } from "./decode.ts";
import { encodeParameters } from "./encode.ts";

/** A value with each kind of MessagePack the codec writes and reads. */
const SAMPLE = { text: "underway", count: 1, ratio: 0.5, big: 2n ** 40n, yes: true, none: null, list: [1, "a", [2]], nested: { at: new Date(0) }, bytes: new Uint8Array([1, 2]) };

/**
 * Encodes and decodes a small value of every kind once. The codec's first use costs milliseconds
 * (msgpackr's writer and reader compiled and their buffers made): a runtime pays it as it starts
 * (a task thread's own runtime too, as the thread boots), rather than the first task's start or
 * attempt.
 */
export function warmCodec(): void {
  decodeParameters(encodeParameters(SAMPLE));
}
