// Stored MessagePack bytes -> parameter values, treating the bytes as untrusted.
//
// msgpackr reads the bytes (maps as Map, 64-bit integers as bigint, its structured-clone
// references disabled). It refuses lengths that cannot fit in the input before allocating, and
// reports where the value ends, so bytes after it are refused. One pass then checks and converts
// what it returned: maps become ordinary objects whose keys are own data properties (a "__proto__"
// key never changes a prototype), keys must be strings or integers and must not collide once
// turned into property names, nesting is limited to MAX_NESTING_DEPTH, and anything but null,
// boolean, number, bigint (64-bit), string, Date, bin bytes, arrays and maps is refused: that is
// how msgpackr's own extensions (undefined, Set, Error, RegExp, typed arrays, records, ...) are
// recognised, by what they decode to. Nothing here reads the MessagePack bytes themselves.
import { C1, Unpackr } from "msgpackr";
import { types } from "node:util";
import { plainView } from "./bytes.ts";
import { DEFAULT_ROOT_NAME, MAX_NESTING_DEPTH } from "./limits.ts";
import { byteCount, formatPath, type PathSegment } from "./path.ts";
import { TaskDeserializationError } from "./task-deserialization-error.ts";

export interface DecodeOptions {
  /** Name of the root value in error paths; default "parameters". */
  rootName?: string;
}

const unpackr = new Unpackr({
  useRecords: false,
  mapsAsObjects: false, // maps as Map: any key type, and no property is ever set from a key
  int64AsType: "bigint", // int64/uint64 always decode to bigint, whatever their value
  structuredClone: false, // msgpackr's id/pointer extensions (shared and cyclic references) throw
});

const INT64_MIN = -(2n ** 63n);
const UINT64_END = 2n ** 64n;

const ONLY_TIMESTAMP = "the only extension allowed in parameters is the timestamp (type -1)";
const TOO_DEEP = `nesting is deeper than the limit of ${MAX_NESTING_DEPTH} levels of arrays and objects`;

/** The reason for a value of an extension type other than the timestamp. */
function extensionReason(type: number | string, decodedAs?: string): string {
  const how = decodedAs === undefined ? "" : ` (msgpackr reads it as ${decodedAs})`;
  return `MessagePack extension type ${type} is not supported${how}; ${ONLY_TIMESTAMP}`;
}

class Converter {
  private readonly segments: PathSegment[] = [];
  private depth = 0;

  /** `source` is the buffer msgpackr read from: bin values are views of it. */
  constructor(
    private readonly root: string,
    private readonly source: ArrayBufferLike | undefined = undefined,
  ) {}

  convert(value: unknown): unknown {
    switch (typeof value) {
      case "string":
      case "number":
      case "boolean":
        return value;
      case "bigint":
        // int64/uint64 are always in range; only msgpackr's bigint extension (0x42) goes beyond.
        if (value < INT64_MIN || value >= UINT64_END) {
          throw this.fail(extensionReason(66, "a bigint beyond 64 bits"));
        }
        return value;
      case "undefined":
        // msgpackr reads nil as null; undefined only comes from its extension type 0.
        throw this.fail(extensionReason(0, "undefined"));
      case "object":
        if (value === null) return null;
        if (Array.isArray(value)) return this.convertArray(value);
        if (types.isMap(value)) return this.convertMap(value);
        if (types.isDate(value)) {
          if (Number.isNaN(value.getTime())) {
            throw this.fail(
              "invalid timestamp: its data is not 4, 8 or 12 bytes long, or it is outside the range of a JavaScript Date",
            );
          }
          return value;
        }
        // bin is read as a view of the input; a copy, so the result never aliases the input.
        if (types.isUint8Array(value) && value.buffer === this.source) return new Uint8Array(value);
        break;
    }
    throw this.fail(this.unsupported(value));
  }

  private convertArray(array: readonly unknown[]): unknown[] {
    const level = this.enter();
    const out = new Array<unknown>(array.length);
    for (let i = 0; i < array.length; i++) {
      this.segments[level] = i;
      out[i] = this.convert(array[i]);
    }
    this.depth = level;
    return out;
  }

  private convertMap(map: Map<unknown, unknown>): Record<string, unknown> {
    const level = this.enter();
    const object: Record<string, unknown> = {};
    let index = 0;
    for (const [rawKey, rawValue] of map) {
      this.depth = level;
      const key = this.key(rawKey, index++);
      // A Map keeps one entry per key, so only keys of different types can collide here: 1 and "1".
      if (Object.hasOwn(object, key)) throw this.fail(`duplicate map key ${JSON.stringify(key)}`);
      this.segments[level] = key;
      this.depth = level + 1;
      const value = this.convert(rawValue);
      // Own data properties always: assignment to "__proto__" would set the prototype.
      Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
    }
    this.depth = level;
    return object;
  }

  /** A map key: a string, or an integer turned into its decimal string (as JS does). */
  private key(key: unknown, index: number): string {
    if (typeof key === "string") return key;
    if (typeof key === "number" && Number.isSafeInteger(key)) return String(key);
    if (typeof key === "bigint" && key >= INT64_MIN && key < UINT64_END) return String(key);
    throw this.fail(
      `map key #${index} is ${describeKey(key)}, which cannot be used as a property name; only string and integer keys are supported`,
    );
  }

  private enter(): number {
    const level = this.depth;
    if (level >= MAX_NESTING_DEPTH) throw this.fail(TOO_DEEP);
    this.depth = level + 1;
    return level;
  }

  /** Why a value msgpackr returned is refused: which of its extensions made it. */
  private unsupported(value: unknown): string {
    if (value === C1) return "invalid MessagePack data: the byte 0xc1 is never used";
    if (types.isSet(value)) return extensionReason(0x73, "a Set");
    if (types.isRegExp(value)) return extensionReason(0x78, "a RegExp");
    if (types.isNativeError(value) || value instanceof Error) return extensionReason(0x65, "an Error");
    if (types.isArrayBufferView(value) || types.isAnyArrayBuffer(value)) {
      return extensionReason(0x74, withArticle(Object.prototype.toString.call(value).slice(8, -1)));
    }
    if (typeof value === "object" && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
      return extensionReason(0x72, "a record object");
    }
    const name = typeof value === "object" && value !== null ? Object.prototype.toString.call(value).slice(8, -1) : typeof value;
    return `a value of an unsupported MessagePack extension type was found (msgpackr read it as ${name}); ${ONLY_TIMESTAMP}`;
  }

  fail(reason: string, cause?: unknown): TaskDeserializationError {
    const path = formatPath(this.root, this.segments, this.depth);
    return new TaskDeserializationError(path, reason, cause === undefined ? undefined : { cause });
  }
}

function withArticle(name: string): string {
  return `${/^[AEIO]/.test(name) ? "an" : "a"} ${name}`;
}

function describeKey(key: unknown): string {
  if (key === null) return "nil";
  if (key === C1) return "the unused byte 0xc1";
  if (typeof key === "number") return "a float";
  if (typeof key === "boolean") return "a boolean";
  if (types.isUint8Array(key)) return "binary data";
  if (types.isMap(key)) return "a map";
  if (Array.isArray(key)) return "an array";
  return "an extension value";
}

/** What msgpackr's own errors mean, in our words. msgpackr reports no offsets for these. */
function readError(error: unknown, size: number): string {
  const message = error instanceof Error ? error.message : String(error);
  const flags = (typeof error === "object" && error !== null ? error : {}) as { incomplete?: unknown; missingBytes?: unknown };
  if (error instanceof RangeError && /call stack/i.test(message)) return TOO_DEEP;
  const extension = /^Unknown extension(?: type)? (\d+)$/.exec(message);
  if (extension && flags.incomplete !== true) {
    const type = Number(extension[1]);
    return extensionReason(type > 127 ? type - 256 : type); // the type byte is signed
  }
  if (/Structured clone extension is disabled/.test(message)) {
    return extensionReason("105 or 112", "a structured-clone reference");
  }
  if (
    flags.incomplete === true ||
    /^Unexpected end/.test(message) ||
    (error instanceof RangeError && /bounds of the DataView/.test(message))
  ) {
    const missing = flags.missingBytes;
    const needs =
      typeof missing === "number" && Number.isSafeInteger(missing) && missing > 0
        ? ` (a length in it needs at least ${byteCount(missing)} more)`
        : "";
    return `the data ends unexpectedly after ${byteCount(size)}${needs}; it is truncated or corrupt`;
  }
  return `invalid MessagePack data, or an extension msgpackr cannot read (msgpackr: ${message})`;
}

/**
 * Decodes stored parameter bytes. Throws TaskDeserializationError, naming the path where it
 * stopped (the root when msgpackr itself refused the bytes), for anything that is not one
 * well-formed MessagePack value of the allowed types.
 */
export function decodeParameters(bytes: Uint8Array, options?: DecodeOptions): unknown {
  const root = options?.rootName ?? DEFAULT_ROOT_NAME;
  if (!types.isUint8Array(bytes)) {
    const got =
      bytes === null
        ? "null"
        : typeof bytes === "object"
          ? `an object (${Object.prototype.toString.call(bytes).slice(8, -1)})`
          : typeof bytes;
    throw new Converter(root).fail(`expected the encoded ${root} as a Uint8Array, got ${got}`);
  }
  // A fresh plain view: msgpackr caches a DataView on the object it reads, so it never touches
  // the caller's object, and a Buffer or subclass reads like any Uint8Array.
  const input = plainView(bytes);
  const size = input.length;
  if (size === 0) throw new Converter(root).fail(`no data: 0 bytes of encoded ${root}`);
  let raw: unknown;
  let end = -1;
  try {
    // unpackMultiple reports where the first value ends; returning false stops after it.
    unpackr.unpackMultiple(input, (value: unknown, _start?: number, valueEnd?: number) => {
      raw = value;
      end = valueEnd ?? -1;
      return false;
    });
  } catch (error) {
    throw new Converter(root).fail(readError(error, size), error);
  }
  const converter = new Converter(root, input.buffer);
  if (end !== size) {
    if (end < 0 || end > size) throw converter.fail(`the data ends unexpectedly after ${byteCount(size)}; it is truncated or corrupt`);
    throw converter.fail(
      `${byteCount(size - end)} after the end of the value (at offset ${end} of ${size}); ` +
        `the data is corrupt or is not one MessagePack value`,
    );
  }
  return converter.convert(raw);
}
