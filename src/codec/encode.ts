// Parameter values -> standard MessagePack bytes.
//
// One pass checks every value (type, cycles, depth, size) and builds a plain copy of what was
// checked, reading each property exactly once (a getter runs once); msgpackr then writes that
// copy. The copy holds only primitives, arrays, Maps with string keys (an object becomes a Map,
// so no key such as "constructor", "toJSON" or "__proto__" can change how msgpackr writes it),
// fresh Dates and plain Uint8Array copies, so no user code runs while msgpackr writes. Output uses
// only core MessagePack: nil, bool, int, float64, str, bin, array, map with string keys, and the
// timestamp extension (-1) for Date. No records or other extensions.
import { Packr } from "msgpackr";
import { types } from "node:util";
import { plainView } from "./bytes.ts";
import { DEFAULT_MAX_PARAMETER_BYTES, DEFAULT_ROOT_NAME, MAX_NESTING_DEPTH } from "./limits.ts";
import { byteCount, formatPath, formatSize, type PathSegment } from "./path.ts";
import { TaskSerializationError } from "./task-serialization-error.ts";

export interface EncodeOptions {
  /** Largest accepted encoded size in bytes; default DEFAULT_MAX_PARAMETER_BYTES (1 MiB). */
  maxBytes?: number;
  /** Name of the root value in error paths; default "parameters". */
  rootName?: string;
}

// Standard maps (no msgpackr records), undefined in arrays as nil, bigint as int64/uint64.
const packr = new Packr({ useRecords: false, variableMapSize: true, encodeUndefinedAsNil: true });
/** Where every encoding starts (see encodeParameters); one that outgrows it writes to a buffer of msgpackr's, dropped after. */
const scratch = Buffer.allocUnsafeSlow(64 * 1024);

// When a value is far over the limit, stop checking it at this multiple of the limit (estimated
// from what was seen) instead of copying and encoding gigabytes of a hostile value.
const OVERSHOOT = 4;

const INT64_MIN = -(2n ** 63n);
const UINT64_END = 2n ** 64n;

const dateGetTime = Date.prototype.getTime;
const propertyIsEnumerable = Object.prototype.propertyIsEnumerable;

class Checker {
  private readonly ancestors: object[] = [];
  private readonly segments: PathSegment[] = [];
  private depth = 0;
  /** A lower bound of the encoded size so far. */
  private estimate = 0;

  constructor(
    readonly rootName: string,
    private readonly maxBytes: number,
  ) {}

  /** Checks a value and returns the plain copy that will be written. */
  copy(value: unknown): unknown {
    switch (typeof value) {
      case "string":
        if (!value.isWellFormed()) throw this.loneSurrogate(findLoneSurrogate(value));
        this.grow(value.length + 1);
        return value;
      case "number":
      case "boolean":
        this.grow(1);
        return value;
      case "undefined": // at the top level or in an array (nil); object properties skip it
        this.grow(1);
        return undefined;
      case "bigint":
        if (value < INT64_MIN || value >= UINT64_END) {
          throw this.fail(
            `the bigint ${value} is outside the 64-bit range and cannot be serialized; ` +
              `MessagePack integers go from -9223372036854775808 to 18446744073709551615 ` +
              `(pass larger numbers as a string)`,
          );
        }
        this.grow(9);
        return value;
      case "symbol":
        throw this.fail("a symbol cannot be serialized");
      case "function":
        throw this.fail("a function cannot be serialized");
      case "object":
        if (value === null) {
          this.grow(1);
          return null;
        }
        return this.copyObject(value);
    }
    throw this.fail(`a value of type ${typeof value} cannot be serialized`);
  }

  private copyObject(value: object): unknown {
    if (Array.isArray(value)) return this.copyArray(value);
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null || isForeignObjectPrototype(proto)) {
      return this.copyMap(value as Record<string, unknown>);
    }
    if (types.isDate(value)) {
      const ms = dateGetTime.call(value);
      if (Number.isNaN(ms)) throw this.fail("an invalid Date cannot be serialized");
      this.grow(6);
      return new Date(ms);
    }
    if (types.isUint8Array(value)) {
      // A plain copy of the bytes as they are now (a later getter cannot change what is written),
      // read through the intrinsic accessors: msgpackr looks at a Uint8Array's constructor and
      // toJSON, which a subclass, a Buffer or an own property could otherwise change.
      const bytes = plainView(value);
      this.grow(bytes.length + 2);
      return bytes.slice();
    }
    throw this.fail(describeUnsupported(value, proto));
  }

  private copyArray(array: readonly unknown[]): unknown[] {
    // Read before entering, so an error from a proxy's trap names this array.
    const length = array.length;
    // Only a proxy can report another length than a count of elements.
    if (typeof length !== "number" || !(length >>> 0 === length)) {
      throw this.fail(`an array that reports an invalid length (${typeof length === "string" ? JSON.stringify(length) : String(length)}) cannot be serialized`);
    }
    const level = this.enter(array);
    const out = new Array<unknown>(length);
    const segments = this.segments;
    for (let i = 0; i < length; i++) {
      segments[level] = i;
      out[i] = this.copy(array[i]); // a hole reads as undefined and is written as nil
    }
    this.leave(level);
    return out;
  }

  private copyMap(object: Record<string, unknown>): Map<string, unknown> {
    // Keys are listed before entering, so an error from a proxy trap names this object.
    const keys = Object.keys(object);
    for (const symbol of Object.getOwnPropertySymbols(object)) {
      if (propertyIsEnumerable.call(object, symbol)) {
        this.segments[this.depth] = symbol;
        this.depth++;
        throw this.fail("a symbol-keyed property cannot be serialized; use a string key");
      }
    }
    const level = this.enter(object);
    const out = new Map<string, unknown>();
    const segments = this.segments;
    for (const key of keys) {
      segments[level] = key;
      const entry = object[key];
      if (entry === undefined) continue; // left out, as JSON does
      if (!key.isWellFormed()) throw this.loneSurrogate(findLoneSurrogate(key));
      this.grow(key.length + 1);
      out.set(key, this.copy(entry));
    }
    this.leave(level);
    return out;
  }

  /** Checks cycles and depth for a container at the current level; returns that level. */
  private enter(container: object): number {
    const level = this.depth;
    const ancestors = this.ancestors;
    for (let i = 0; i < level; i++) {
      if (ancestors[i] === container) {
        const target = formatPath(this.rootName, this.segments, i);
        throw this.fail(`cyclic reference (the value refers back to ${target})`);
      }
    }
    if (level >= MAX_NESTING_DEPTH) {
      throw this.fail(`nesting is deeper than the limit of ${MAX_NESTING_DEPTH} levels of arrays and objects`);
    }
    ancestors[level] = container;
    this.depth = level + 1;
    this.grow(1);
    return level;
  }

  private leave(level: number): void {
    this.ancestors.length = level;
    this.depth = level;
  }

  private grow(bytes: number): void {
    this.estimate += bytes;
    if (this.estimate > this.maxBytes * OVERSHOOT) {
      const at = formatPath(this.rootName, this.segments, this.depth);
      throw new TaskSerializationError(
        this.rootName,
        `encoded size is more than ${formatSize(this.maxBytes * OVERSHOOT)} (stopped at ${at}), ` +
          `which exceeds the limit of ${formatSize(this.maxBytes)}`,
      );
    }
  }

  sizeError(size: number): TaskSerializationError {
    let actual = formatSize(size);
    let limit = formatSize(this.maxBytes);
    if (actual === limit) {
      actual = byteCount(size);
      limit = byteCount(this.maxBytes);
    }
    return new TaskSerializationError(this.rootName, `encoded size ${actual} exceeds the limit of ${limit}`);
  }

  private loneSurrogate(index: number): TaskSerializationError {
    return this.fail(
      `a string with an unpaired UTF-16 surrogate (at index ${index}) cannot be serialized; ` +
        `it is not valid Unicode and would not come back unchanged`,
    );
  }

  /** An error for the value at the current path. */
  fail(reason: string): TaskSerializationError {
    return new TaskSerializationError(formatPath(this.rootName, this.segments, this.depth), reason);
  }

  /** A getter, proxy trap or similar user code threw while the value was being read. */
  wrapForeign(error: unknown): TaskSerializationError {
    const detail = thrownText(error);
    return new TaskSerializationError(
      formatPath(this.rootName, this.segments, this.depth),
      `reading the value threw an error: ${detail}`,
      { cause: error },
    );
  }
}

/**
 * What a thrown value says, for a message: reading it is user code too (a message getter, a
 * toString, a proxy's traps) and may throw in turn.
 */
function thrownText(error: unknown): string {
  try {
    const text = error instanceof Error ? error.message : String(error);
    return typeof text === "string" ? text : String(text);
  } catch {
    return "(a thrown value that cannot be shown as text)";
  }
}

/** Whether a thrown value is our own error; a proxy's getPrototypeOf trap may throw. */
function isSerializationError(error: unknown): error is TaskSerializationError {
  try {
    return error instanceof TaskSerializationError;
  } catch {
    return false;
  }
}

function findLoneSurrogate(value: string): number {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0xd800 || c > 0xdfff) continue;
    const low = value.charCodeAt(i + 1);
    if (c > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) return i;
    i++;
  }
  return -1;
}

/** The reason for an object that is neither plain, an array, a Date nor a Uint8Array. */
function describeUnsupported(value: object, proto: unknown): string {
  if (types.isMap(value)) {
    return (
      "a Map cannot be serialized (it would come back as a plain object); " +
      "pass a plain object instead, e.g. Object.fromEntries(map)"
    );
  }
  if (types.isSet(value)) {
    return (
      "a Set cannot be serialized (it would come back as an array); " +
      "pass an array instead, e.g. [...set]"
    );
  }
  if (types.isWeakMap(value)) return "a WeakMap cannot be serialized";
  if (types.isWeakSet(value)) return "a WeakSet cannot be serialized";
  if (types.isPromise(value)) return "a Promise cannot be serialized; await it and pass the result";
  if (types.isTypedArray(value)) {
    const name = Object.prototype.toString.call(value).slice(8, -1);
    return (
      `a ${name} cannot be serialized; only Uint8Array (bytes) is supported, ` +
      `pass a Uint8Array or an array of numbers`
    );
  }
  if (types.isAnyArrayBuffer(value)) {
    return "an ArrayBuffer cannot be serialized; pass a Uint8Array view of it";
  }
  if (types.isDataView(value)) return "a DataView cannot be serialized; pass a Uint8Array";
  if (types.isRegExp(value)) return "a RegExp cannot be serialized; pass its source as a string";
  if (types.isNativeError(value) || value instanceof Error) {
    return "an Error cannot be serialized; pass its message as a string";
  }
  if (types.isBoxedPrimitive(value)) {
    return "a boxed primitive (such as new String()) cannot be serialized; pass the primitive value";
  }
  const name = className(proto);
  return name === undefined
    ? "an object with a custom prototype cannot be serialized; pass a plain object with simple fields"
    : `an instance of class ${name} cannot be serialized; pass a plain object with simple fields`;
}

/** Object.prototype of another realm (a vm context), so plain objects made there are plain here. */
function isForeignObjectPrototype(proto: unknown): boolean {
  return (
    typeof proto === "object" &&
    proto !== null &&
    Object.getPrototypeOf(proto) === null &&
    className(proto) === "Object"
  );
}

/** The class name of a prototype, read without running user code (no getters). */
function className(proto: unknown): string | undefined {
  if (typeof proto !== "object" || proto === null) return undefined;
  const descriptor = Object.getOwnPropertyDescriptor(proto, "constructor");
  const constructor: unknown = descriptor?.value;
  if (typeof constructor !== "function" || constructor.prototype !== proto) return undefined;
  const name = Object.getOwnPropertyDescriptor(constructor, "name")?.value;
  return typeof name === "string" && name !== "" ? name : "(anonymous)";
}


/**
 * Encodes task parameters as standard MessagePack. Throws TaskSerializationError, synchronously,
 * naming the path of the first value that cannot be serialized or when the encoded size exceeds
 * `maxBytes`. The result is a new buffer of its own.
 */
export function encodeParameters(value: unknown, options?: EncodeOptions): Uint8Array {
  const maxBytes = options?.maxBytes ?? DEFAULT_MAX_PARAMETER_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new RangeError(`maxBytes must be a positive integer, got ${String(maxBytes)}`);
  }
  const checker = new Checker(options?.rootName ?? DEFAULT_ROOT_NAME, maxBytes);
  let copy: unknown;
  try {
    copy = checker.copy(value);
  } catch (error) {
    throw isSerializationError(error) ? error : checker.wrapForeign(error);
  }
  let bytes: Uint8Array;
  try {
    // msgpackr writes into the buffer it is given, growing into a new one of about 10 times a
    // large value (and keeping that one). Each encoding starts in the same scratch buffer instead,
    // and its bytes are copied out below: a result that kept a view of a shared buffer would keep
    // all of it alive, and a view posted to another thread takes all of its buffer along (after
    // one large value, every small start from a thread copied tens of megabytes).
    packr.useBuffer(scratch);
    bytes = packr.pack(copy);
  } catch (error) {
    // Not expected for a checked copy; reported as what it is rather than as a raw error.
    const detail = error instanceof Error ? error.message : String(error);
    throw new TaskSerializationError(checker.rootName, `the MessagePack writer (msgpackr) failed: ${detail}`, { cause: error });
  }
  if (bytes.length > maxBytes) throw checker.sizeError(bytes.length);
  // A buffer of its own, of its exact size (not a slice of Node's shared pool either).
  const own = Buffer.allocUnsafeSlow(bytes.length);
  own.set(bytes);
  return own;
}
