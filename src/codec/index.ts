// The MessagePack parameter codec: task parameters <-> standard MessagePack bytes.
// A ground-floor room: it imports nothing else of the project. See docs/parameters.md.
export { DEFAULT_MAX_PARAMETER_BYTES, MAX_NESTING_DEPTH } from "./limits.ts";
export { TaskSerializationError } from "./task-serialization-error.ts";
export { TaskDeserializationError } from "./task-deserialization-error.ts";
export { encodeParameters, type EncodeOptions } from "./encode.ts";
export { decodeParameters, type DecodeOptions } from "./decode.ts";
export { warmCodec } from "./warm.ts";
