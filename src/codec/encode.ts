// Parameter values -> standard MessagePack bytes, validated and written in one pass.
//
// Each value is read exactly once (a getter runs once) and what was checked is what is written.
// Output uses only core MessagePack: nil, bool, int, float64, str, bin, array, map with string
// keys, and the timestamp extension (-1) for Date. No msgpackr records or other extensions.
import { Buffer } from "node:buffer";
import { types } from "node:util";
import { DEFAULT_MAX_PARAMETER_BYTES, DEFAULT_ROOT_NAME, MAX_NESTING_DEPTH } from "./limits.ts";
import { formatPath, formatSize, type PathSegment } from "./path.ts";
import { TaskSerializationError } from "./task-serialization-error.ts";

export interface EncodeOptions {
  /** Largest accepted encoded size in bytes; default DEFAULT_MAX_PARAMETER_BYTES (1 MiB). */
  maxBytes?: number;
  /** Name of the root value in error paths; default "parameters". */
  rootName?: string;
}

// Output is written into a shared slab and returned as a view of it, so a small encoding costs no
// allocation of its own and no copy (msgpackr does the same). Messages never overlap.
const SLAB_SIZE = 64 * 1024;
const MIN_ROOM = 2048;
// Strings shorter than this are UTF-8 encoded by hand (faster than a native call for GUIDs,
// names, keys); longer ones go through Buffer.write.
const SHORT_STRING = 64;
// When the limit is exceeded, keep encoding up to this multiple of it to report the real size,
// then stop: a hostile value (a sparse array of length 1e9) must not allocate gigabytes.
const OVERSHOOT = 4;

const INT64_MIN = -(2n ** 63n);
const INT64_END = 2n ** 63n;
const UINT64_END = 2n ** 64n;

const dateGetTime = Date.prototype.getTime;
const isWellFormed = (String.prototype as unknown as { isWellFormed: (this: string) => boolean })
  .isWellFormed;
const propertyIsEnumerable = Object.prototype.propertyIsEnumerable;

class Encoder {
  busy = false;
  private buf: Buffer = Buffer.alloc(0);
  private view: DataView = new DataView(new ArrayBuffer(0));
  private start = 0;
  private pos = 0;
  private maxBytes = DEFAULT_MAX_PARAMETER_BYTES;
  private hardLimit = DEFAULT_MAX_PARAMETER_BYTES * OVERSHOOT;
  private root = DEFAULT_ROOT_NAME;
  private depth = 0;
  private readonly ancestors: (object | undefined)[] = [];
  private readonly segments: PathSegment[] = [];

  encode(value: unknown, maxBytes: number, root: string): Uint8Array {
    this.busy = true;
    this.maxBytes = maxBytes;
    this.hardLimit = maxBytes * OVERSHOOT;
    this.root = root;
    this.depth = 0;
    if (this.buf.length - this.pos < MIN_ROOM) this.newSlab(SLAB_SIZE);
    this.start = this.pos;
    try {
      this.write(value);
    } catch (error) {
      this.release(false);
      this.ancestors.fill(undefined);
      throw error instanceof TaskSerializationError ? error : this.wrapForeign(error);
    } finally {
      this.busy = false;
    }
    const size = this.pos - this.start;
    if (size > maxBytes) {
      this.release(false);
      throw this.sizeError(size);
    }
    const out = this.buf.subarray(this.start, this.pos);
    this.release(true);
    return out;
  }

  /** Ends a call: keeps the written bytes (or rewinds) and drops a slab grown beyond default. */
  private release(keep: boolean): void {
    if (this.buf.length > SLAB_SIZE) {
      // A slab grown for one large message stays with that message only.
      this.buf = Buffer.alloc(0);
      this.start = this.pos = 0;
    } else if (keep) {
      this.start = this.pos;
    } else {
      this.pos = this.start;
    }
  }

  private write(value: unknown): void {
    switch (typeof value) {
      case "string":
        this.writeString(value);
        return;
      case "number":
        this.writeNumber(value);
        return;
      case "boolean":
        this.ensure(1);
        this.buf[this.pos++] = value ? 0xc3 : 0xc2;
        return;
      case "object":
        if (value === null) {
          this.ensure(1);
          this.buf[this.pos++] = 0xc0;
        } else {
          this.writeObject(value);
        }
        return;
      case "undefined": // at the top level or in an array; object properties skip it
        this.ensure(1);
        this.buf[this.pos++] = 0xc0;
        return;
      case "bigint":
        this.writeBigInt(value);
        return;
      case "symbol":
        throw this.fail("a symbol cannot be serialized");
      case "function":
        throw this.fail("a function cannot be serialized");
    }
  }

  private writeNumber(value: number): void {
    this.ensure(9);
    const buf = this.buf;
    // -0 passes both integer tests below; it is written as float64 so it comes back as -0.
    if (value >>> 0 === value && (value !== 0 || 1 / value > 0)) {
      if (value < 0x80) {
        buf[this.pos++] = value;
      } else if (value < 0x100) {
        buf[this.pos++] = 0xcc;
        buf[this.pos++] = value;
      } else if (value < 0x10000) {
        buf[this.pos++] = 0xcd;
        buf[this.pos++] = value >>> 8;
        buf[this.pos++] = value & 0xff;
      } else {
        buf[this.pos++] = 0xce;
        this.view.setUint32(this.pos, value);
        this.pos += 4;
      }
    } else if (value >> 0 === value && value !== 0) {
      if (value >= -0x20) {
        buf[this.pos++] = value & 0xff;
      } else if (value >= -0x80) {
        buf[this.pos++] = 0xd0;
        buf[this.pos++] = value & 0xff;
      } else if (value >= -0x8000) {
        buf[this.pos++] = 0xd1;
        buf[this.pos++] = (value >> 8) & 0xff;
        buf[this.pos++] = value & 0xff;
      } else {
        buf[this.pos++] = 0xd2;
        this.view.setInt32(this.pos, value);
        this.pos += 4;
      }
    } else {
      // Fractions, NaN, ±Infinity, -0 and integers beyond 32 bits: float64 holds every JS number
      // exactly. (int64 is reserved for bigint, so the type survives the round trip.)
      buf[this.pos++] = 0xcb;
      this.view.setFloat64(this.pos, value);
      this.pos += 8;
    }
  }

  private writeBigInt(value: bigint): void {
    this.ensure(9);
    if (value >= INT64_MIN && value < INT64_END) {
      this.buf[this.pos++] = 0xd3;
      this.view.setBigInt64(this.pos, value);
    } else if (value >= INT64_END && value < UINT64_END) {
      this.buf[this.pos++] = 0xcf;
      this.view.setBigUint64(this.pos, value);
    } else {
      throw this.fail(
        `the bigint ${value} is outside the 64-bit range and cannot be serialized; ` +
          `MessagePack integers go from -9223372036854775808 to 18446744073709551615 ` +
          `(pass larger numbers as a string)`,
      );
    }
    this.pos += 8;
  }

  private writeString(value: string): void {
    const length = value.length;
    if (length < SHORT_STRING) {
      // At most 3 bytes per UTF-16 unit; a fixstr header is assumed and widened if needed.
      this.ensure(length * 3 + 2);
      const buf = this.buf;
      const head = this.pos;
      let p = head + 1;
      for (let i = 0; i < length; i++) {
        const c = value.charCodeAt(i);
        if (c < 0x80) {
          buf[p++] = c;
        } else if (c < 0x800) {
          buf[p++] = 0xc0 | (c >> 6);
          buf[p++] = 0x80 | (c & 0x3f);
        } else if (c < 0xd800 || c > 0xdfff) {
          buf[p++] = 0xe0 | (c >> 12);
          buf[p++] = 0x80 | ((c >> 6) & 0x3f);
          buf[p++] = 0x80 | (c & 0x3f);
        } else {
          const low = value.charCodeAt(i + 1);
          if (c > 0xdbff || !(low >= 0xdc00 && low <= 0xdfff)) throw this.loneSurrogate(i);
          const code = 0x10000 + ((c - 0xd800) << 10) + (low - 0xdc00);
          buf[p++] = 0xf0 | (code >> 18);
          buf[p++] = 0x80 | ((code >> 12) & 0x3f);
          buf[p++] = 0x80 | ((code >> 6) & 0x3f);
          buf[p++] = 0x80 | (code & 0x3f);
          i++;
        }
      }
      const size = p - head - 1;
      if (size < 0x20) {
        buf[head] = 0xa0 | size;
      } else {
        buf.copyWithin(head + 2, head + 1, p);
        buf[head] = 0xd9;
        buf[head + 1] = size;
        p++;
      }
      this.pos = p;
      return;
    }
    if (!isWellFormed.call(value)) throw this.loneSurrogate(findLoneSurrogate(value));
    const size = Buffer.byteLength(value, "utf8");
    this.ensure(size + 5);
    const buf = this.buf;
    if (size < 0x100) {
      buf[this.pos++] = 0xd9;
      buf[this.pos++] = size;
    } else if (size < 0x10000) {
      buf[this.pos++] = 0xda;
      buf[this.pos++] = size >>> 8;
      buf[this.pos++] = size & 0xff;
    } else {
      buf[this.pos++] = 0xdb;
      this.view.setUint32(this.pos, size);
      this.pos += 4;
    }
    this.pos += buf.write(value, this.pos, size, "utf8");
  }

  private writeObject(value: object): void {
    if (Array.isArray(value)) {
      this.writeArray(value);
      return;
    }
    const proto: unknown = Object.getPrototypeOf(value);
    if (proto === Object.prototype || proto === null) {
      this.writeMap(value as Record<string, unknown>);
    } else if (types.isDate(value)) {
      this.writeDate(value);
    } else if (types.isUint8Array(value)) {
      this.writeBinary(value);
    } else {
      throw this.fail(describeUnsupported(value, proto));
    }
  }

  private writeArray(array: readonly unknown[]): void {
    const level = this.enter(array);
    const length = array.length;
    this.ensure(5);
    const buf = this.buf;
    if (length < 0x10) {
      buf[this.pos++] = 0x90 | length;
    } else if (length < 0x10000) {
      buf[this.pos++] = 0xdc;
      buf[this.pos++] = length >>> 8;
      buf[this.pos++] = length & 0xff;
    } else {
      buf[this.pos++] = 0xdd;
      this.view.setUint32(this.pos, length);
      this.pos += 4;
    }
    const segments = this.segments;
    for (let i = 0; i < length; i++) {
      segments[level] = i;
      this.write(array[i]); // a hole reads as undefined and is written as nil
    }
    this.leave(level);
  }

  private writeMap(object: Record<string, unknown>): void {
    // Keys are listed before entering, so an error from a proxy trap names this object.
    const keys = Object.keys(object);
    const symbols = Object.getOwnPropertySymbols(object);
    for (const symbol of symbols) {
      if (propertyIsEnumerable.call(object, symbol)) {
        this.segments[this.depth] = symbol;
        this.depth++;
        throw this.fail("a symbol-keyed property cannot be serialized; use a string key");
      }
    }
    const level = this.enter(object);
    const count = keys.length;
    // The header is reserved for every key; properties whose value is undefined are left out
    // (as JSON does), and the header is shrunk afterwards if that changed its size.
    const reserved = mapHeaderSize(count);
    this.ensure(reserved);
    const headerOffset = this.pos - this.start;
    this.pos += reserved;
    const segments = this.segments;
    let written = 0;
    for (let i = 0; i < count; i++) {
      const key = keys[i] as string;
      segments[level] = key;
      const entry = object[key];
      if (entry === undefined) continue;
      this.writeString(key);
      this.write(entry);
      written++;
    }
    const head = this.start + headerOffset;
    const size = mapHeaderSize(written);
    if (size < reserved) {
      this.buf.copyWithin(head + size, head + reserved, this.pos);
      this.pos -= reserved - size;
    }
    const buf = this.buf;
    if (size === 1) {
      buf[head] = 0x80 | written;
    } else if (size === 3) {
      buf[head] = 0xde;
      buf[head + 1] = written >>> 8;
      buf[head + 2] = written & 0xff;
    } else {
      buf[head] = 0xdf;
      this.view.setUint32(head + 1, written);
    }
    this.leave(level);
  }

  private writeDate(date: Date): void {
    const ms = dateGetTime.call(date);
    if (Number.isNaN(ms)) throw this.fail("an invalid Date cannot be serialized");
    this.ensure(15);
    const buf = this.buf;
    const seconds = Math.floor(ms / 1000);
    const nanoseconds = (ms - seconds * 1000) * 1_000_000;
    buf[this.pos + 1] = 0xff; // extension type -1 after the one-byte format
    if (nanoseconds === 0 && seconds >= 0 && seconds <= 0xffffffff) {
      buf[this.pos] = 0xd6; // timestamp 32
      this.view.setUint32(this.pos + 2, seconds);
      this.pos += 6;
    } else if (seconds >= 0 && seconds < 2 ** 34) {
      buf[this.pos] = 0xd7; // timestamp 64: 30-bit nanoseconds, 34-bit seconds
      this.view.setUint32(this.pos + 2, nanoseconds * 4 + Math.floor(seconds / 2 ** 32));
      this.view.setUint32(this.pos + 6, seconds >>> 0);
      this.pos += 10;
    } else {
      buf[this.pos] = 0xc7; // timestamp 96: ext 8, length 12
      buf[this.pos + 1] = 12;
      buf[this.pos + 2] = 0xff;
      this.view.setUint32(this.pos + 3, nanoseconds);
      const high = Math.floor(seconds / 2 ** 32);
      this.view.setInt32(this.pos + 7, high);
      this.view.setUint32(this.pos + 11, seconds - high * 2 ** 32);
      this.pos += 15;
    }
  }

  private writeBinary(bytes: Uint8Array): void {
    const length = bytes.byteLength;
    this.ensure(length + 5);
    const buf = this.buf;
    if (length < 0x100) {
      buf[this.pos++] = 0xc4;
      buf[this.pos++] = length;
    } else if (length < 0x10000) {
      buf[this.pos++] = 0xc5;
      buf[this.pos++] = length >>> 8;
      buf[this.pos++] = length & 0xff;
    } else {
      buf[this.pos++] = 0xc6;
      this.view.setUint32(this.pos, length);
      this.pos += 4;
    }
    buf.set(bytes, this.pos);
    this.pos += length;
  }

  /** Checks cycles and depth for a container at the current level; returns that level. */
  private enter(container: object): number {
    const level = this.depth;
    const ancestors = this.ancestors;
    for (let i = 0; i < level; i++) {
      if (ancestors[i] === container) {
        const target = formatPath(this.root, this.segments, i);
        throw this.fail(`cyclic reference (the value refers back to ${target})`);
      }
    }
    if (level >= MAX_NESTING_DEPTH) {
      throw this.fail(
        `nesting is deeper than the limit of ${MAX_NESTING_DEPTH} levels of arrays and objects`,
      );
    }
    ancestors[level] = container;
    this.depth = level + 1;
    return level;
  }

  private leave(level: number): void {
    this.ancestors[level] = undefined;
    this.depth = level;
  }

  private ensure(bytes: number): void {
    if (this.pos + bytes > this.buf.length) this.grow(bytes);
  }

  private grow(bytes: number): void {
    const used = this.pos - this.start;
    const needed = used + bytes;
    if (needed > this.hardLimit) {
      const at = formatPath(this.root, this.segments, this.depth);
      throw new TaskSerializationError(
        this.root,
        `encoded size is more than ${formatSize(this.hardLimit)} (stopped at ${at}), ` +
          `which exceeds the limit of ${formatSize(this.maxBytes)}`,
      );
    }
    let size = SLAB_SIZE;
    while (size < needed * 2) size *= 2;
    const previous = this.buf;
    const start = this.start;
    this.newSlab(size);
    previous.copy(this.buf, 0, start, start + used);
    this.start = 0;
    this.pos = used;
  }

  private newSlab(size: number): void {
    this.buf = Buffer.allocUnsafeSlow(size);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    this.start = 0;
    this.pos = 0;
  }

  private sizeError(size: number): TaskSerializationError {
    let actual = formatSize(size);
    let limit = formatSize(this.maxBytes);
    if (actual === limit) {
      actual = `${size} bytes`;
      limit = `${this.maxBytes} bytes`;
    }
    return new TaskSerializationError(
      this.root,
      `encoded size ${actual} exceeds the limit of ${limit}`,
    );
  }

  private loneSurrogate(index: number): TaskSerializationError {
    return this.fail(
      `a string with an unpaired UTF-16 surrogate (at index ${index}) cannot be serialized; ` +
        `it is not valid Unicode and would not come back unchanged`,
    );
  }

  /** An error for the value at the current path. */
  private fail(reason: string): TaskSerializationError {
    return new TaskSerializationError(formatPath(this.root, this.segments, this.depth), reason);
  }

  /** A getter, proxy trap or similar user code threw while the value was being read. */
  private wrapForeign(error: unknown): TaskSerializationError {
    const detail = error instanceof Error ? error.message : String(error);
    return new TaskSerializationError(
      formatPath(this.root, this.segments, this.depth),
      `reading the value threw an error: ${detail}`,
      { cause: error },
    );
  }
}

function mapHeaderSize(count: number): number {
  return count < 0x10 ? 1 : count < 0x10000 ? 3 : 5;
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
    return "a Map cannot be serialized (it would come back as a plain object); pass a plain object instead, e.g. Object.fromEntries(map)";
  }
  if (types.isSet(value)) {
    return "a Set cannot be serialized (it would come back as an array); pass an array instead, e.g. [...set]";
  }
  if (types.isWeakMap(value)) return "a WeakMap cannot be serialized";
  if (types.isWeakSet(value)) return "a WeakSet cannot be serialized";
  if (types.isPromise(value)) return "a Promise cannot be serialized; await it and pass the result";
  if (types.isTypedArray(value)) {
    const name = Object.prototype.toString.call(value).slice(8, -1);
    return `a ${name} cannot be serialized; only Uint8Array (bytes) is supported, pass a Uint8Array or an array of numbers`;
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

/** The class name of a prototype, read without running user code (no getters). */
function className(proto: unknown): string | undefined {
  if (typeof proto !== "object" || proto === null) return undefined;
  const descriptor = Object.getOwnPropertyDescriptor(proto, "constructor");
  const constructor: unknown = descriptor?.value;
  if (typeof constructor !== "function" || constructor.prototype !== proto) return undefined;
  const name = Object.getOwnPropertyDescriptor(constructor, "name")?.value;
  return typeof name === "string" && name !== "" ? name : "(anonymous)";
}

const shared = new Encoder();

/**
 * Encodes task parameters as standard MessagePack. Throws TaskSerializationError, synchronously,
 * naming the path of the first value that cannot be serialized or when the encoded size exceeds
 * `maxBytes`.
 *
 * The result may share its underlying ArrayBuffer with other encodings (like pooled Buffers):
 * store or send it as is, but do not transfer or write to `result.buffer`; copy with `.slice()`
 * first if you need to.
 */
export function encodeParameters(value: unknown, options?: EncodeOptions): Uint8Array {
  const maxBytes = options?.maxBytes ?? DEFAULT_MAX_PARAMETER_BYTES;
  if (!Number.isSafeInteger(maxBytes) || maxBytes < 1) {
    throw new RangeError(`maxBytes must be a positive integer, got ${String(maxBytes)}`);
  }
  const root = options?.rootName ?? DEFAULT_ROOT_NAME;
  // A getter that itself encodes parameters gets its own encoder rather than the busy one.
  const encoder = shared.busy ? new Encoder() : shared;
  return encoder.encode(value, maxBytes, root);
}
