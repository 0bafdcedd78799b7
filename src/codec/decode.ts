// Stored MessagePack bytes -> parameter values, treating the bytes as untrusted.
//
// Every length is checked against the bytes that remain before anything is allocated, nesting is
// limited to MAX_NESTING_DEPTH (so recursion stays shallow whatever the input), map keys become
// own data properties of ordinary objects (a "__proto__" key never changes a prototype), and the
// value must use up the input exactly.
import { Buffer } from "node:buffer";
import { types } from "node:util";
import { DEFAULT_ROOT_NAME, MAX_NESTING_DEPTH } from "./limits.ts";
import { formatPath, type PathSegment } from "./path.ts";
import { TaskDeserializationError } from "./task-deserialization-error.ts";

export interface DecodeOptions {
  /** Name of the root value in error paths; default "parameters". */
  rootName?: string;
}

// Short ASCII strings (keys, ids, names) are decoded in JS; anything else by TextDecoder, which
// rejects invalid UTF-8 (fatal) and keeps a leading U+FEFF (ignoreBOM) so strings come back as
// they were written.
const SHORT_STRING = 64;
const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const fromCharCode = String.fromCharCode;
const EMPTY = new Uint8Array(0);
const MAX_DATE_MS = 8.64e15;

class Decoder {
  private src: Uint8Array = EMPTY;
  private view: DataView | null = null;
  private nodeBuffer: Buffer | null = null;
  private pos = 0;
  private end = 0;
  private depth = 0;
  private root = DEFAULT_ROOT_NAME;
  private readonly segments: PathSegment[] = [];

  decode(bytes: Uint8Array, root: string): unknown {
    this.root = root;
    this.depth = 0;
    this.pos = 0;
    if (!types.isUint8Array(bytes)) {
      throw this.fail(`expected the encoded parameters as a Uint8Array, got ${describe(bytes)}`);
    }
    this.src = bytes;
    this.end = bytes.byteLength;
    this.view = null;
    this.nodeBuffer = null;
    try {
      if (this.end === 0) throw this.fail("no data: the encoded parameters are empty (0 bytes)");
      const value = this.read();
      if (this.pos !== this.end) {
        throw this.fail(
          `${this.end - this.pos} unexpected bytes after the end of the value ` +
            `(at offset ${this.pos} of ${this.end}); the data is corrupt or is not one MessagePack value`,
        );
      }
      return value;
    } finally {
      this.src = EMPTY; // do not keep the caller's bytes alive
      this.view = null;
      this.nodeBuffer = null;
    }
  }

  private read(): unknown {
    if (this.pos >= this.end) this.truncated(1);
    const src = this.src;
    const byte = src[this.pos++] as number;
    if (byte < 0x80) return byte;
    if (byte < 0x90) return this.readMap(byte & 0x0f);
    if (byte < 0xa0) return this.readArray(byte & 0x0f);
    if (byte < 0xc0) return this.readString(byte & 0x1f);
    if (byte >= 0xe0) return byte - 0x100;
    switch (byte) {
      case 0xc0:
        return null;
      case 0xc2:
        return false;
      case 0xc3:
        return true;
      case 0xc4:
        return this.readBinary(this.readLength(1));
      case 0xc5:
        return this.readBinary(this.readLength(2));
      case 0xc6:
        return this.readBinary(this.readLength(4));
      case 0xc7:
        return this.readExtension(this.readLength(1));
      case 0xc8:
        return this.readExtension(this.readLength(2));
      case 0xc9:
        return this.readExtension(this.readLength(4));
      case 0xca:
        return this.dataView().getFloat32(this.advance(4));
      case 0xcb:
        return this.dataView().getFloat64(this.advance(8));
      case 0xcc:
        return src[this.advance(1)];
      case 0xcd:
        return this.readLength(2);
      case 0xce:
        return this.readLength(4);
      case 0xcf:
        // 64-bit integers are bigints (whatever their value), so a bigint round-trips as a bigint.
        return this.dataView().getBigUint64(this.advance(8));
      case 0xd0:
        return this.dataView().getInt8(this.advance(1));
      case 0xd1:
        return this.dataView().getInt16(this.advance(2));
      case 0xd2:
        return this.dataView().getInt32(this.advance(4));
      case 0xd3:
        return this.dataView().getBigInt64(this.advance(8));
      case 0xd4:
        return this.readExtension(1);
      case 0xd5:
        return this.readExtension(2);
      case 0xd6:
        return this.readExtension(4);
      case 0xd7:
        return this.readExtension(8);
      case 0xd8:
        return this.readExtension(16);
      case 0xd9:
        return this.readString(this.readLength(1));
      case 0xda:
        return this.readString(this.readLength(2));
      case 0xdb:
        return this.readString(this.readLength(4));
      case 0xdc:
        return this.readArray(this.readLength(2));
      case 0xdd:
        return this.readArray(this.readLength(4));
      case 0xde:
        return this.readMap(this.readLength(2));
      case 0xdf:
        return this.readMap(this.readLength(4));
      default: // 0xc1
        throw this.fail(
          `invalid MessagePack data: byte 0x${byte.toString(16)} at offset ${this.pos - 1} is never used`,
        );
    }
  }

  private readArray(length: number): unknown[] {
    if (length > this.end - this.pos) {
      throw this.fail(
        `an array claims ${length} elements but only ${this.end - this.pos} bytes remain; the data is truncated or corrupt`,
      );
    }
    const level = this.enter();
    const array: unknown[] = new Array(length);
    const segments = this.segments;
    for (let i = 0; i < length; i++) {
      segments[level] = i;
      array[i] = this.read();
    }
    this.depth = level;
    return array;
  }

  private readMap(length: number): Record<string, unknown> {
    if (length * 2 > this.end - this.pos) {
      throw this.fail(
        `a map claims ${length} entries but only ${this.end - this.pos} bytes remain; the data is truncated or corrupt`,
      );
    }
    const level = this.enter();
    const object: Record<string, unknown> = {};
    const segments = this.segments;
    for (let i = 0; i < length; i++) {
      this.depth = level;
      const key = this.readKey(i);
      if (Object.hasOwn(object, key)) {
        throw this.fail(`duplicate map key ${JSON.stringify(key)}`);
      }
      segments[level] = key;
      this.depth = level + 1;
      const value = this.read();
      if (key === "__proto__") {
        // Assignment would set the prototype; define an own data property instead.
        Object.defineProperty(object, key, { value, writable: true, enumerable: true, configurable: true });
      } else {
        object[key] = value;
      }
    }
    this.depth = level;
    return object;
  }

  /** A map key: a string, or an integer turned into its decimal string (as JS does). */
  private readKey(index: number): string {
    if (this.pos >= this.end) this.truncated(1);
    const byte = this.src[this.pos] as number;
    if ((byte >= 0xa0 && byte < 0xc0) || (byte >= 0xd9 && byte <= 0xdb)) {
      return this.read() as string;
    }
    if (byte < 0x80 || byte >= 0xe0 || (byte >= 0xcc && byte <= 0xd3)) {
      return String(this.read() as number | bigint);
    }
    throw this.fail(
      `map key #${index} is ${typeName(byte)}, which cannot be used as a property name; ` +
        `only string and integer keys are supported`,
    );
  }

  private readString(length: number): string {
    const start = this.advance(length);
    const end = start + length;
    if (length < SHORT_STRING) {
      const src = this.src;
      let i = start;
      while (i < end && (src[i] as number) < 0x80) i++;
      if (i === end) {
        // ASCII: very short strings from char codes, the rest through a native latin1 slice.
        if (length <= 8) {
          let text = "";
          for (let j = start; j < end; j++) text += fromCharCode(src[j] as number);
          return text;
        }
        return this.buffer().toString("latin1", start, end);
      }
    }
    try {
      return utf8.decode(this.src.subarray(start, end));
    } catch (error) {
      this.pos = start;
      throw this.fail(`a string of ${length} bytes at offset ${start} is not valid UTF-8`, error);
    }
  }

  private readBinary(length: number): Uint8Array {
    const start = this.advance(length);
    // A plain Uint8Array copy: the value must not alias (or keep alive) the stored bytes.
    const bytes = new Uint8Array(length);
    bytes.set(this.src.subarray(start, start + length));
    return bytes;
  }

  private readExtension(length: number): Date {
    const typeOffset = this.advance(1);
    const type = this.dataView().getInt8(typeOffset);
    const start = this.advance(length);
    if (type !== -1) {
      throw this.fail(
        `MessagePack extension type ${type} is not supported; ` +
          `the only extension allowed in parameters is the timestamp (type -1)`,
      );
    }
    const view = this.dataView();
    let seconds: number;
    let nanoseconds: number;
    if (length === 4) {
      seconds = view.getUint32(start);
      nanoseconds = 0;
    } else if (length === 8) {
      const high = view.getUint32(start);
      nanoseconds = high >>> 2;
      seconds = (high & 0x3) * 2 ** 32 + view.getUint32(start + 4);
    } else if (length === 12) {
      nanoseconds = view.getUint32(start);
      seconds = view.getInt32(start + 4) * 2 ** 32 + view.getUint32(start + 8);
    } else {
      throw this.fail(`invalid timestamp: ${length} bytes of data, expected 4, 8 or 12`);
    }
    if (nanoseconds > 999_999_999) {
      throw this.fail(`invalid timestamp: ${nanoseconds} nanoseconds, expected at most 999999999`);
    }
    // A Date holds milliseconds: finer nanoseconds are dropped (rounding toward the past).
    const ms = seconds * 1000 + Math.floor(nanoseconds / 1_000_000);
    if (!(Math.abs(ms) <= MAX_DATE_MS)) {
      throw this.fail(`timestamp ${seconds} seconds is outside the range of a JavaScript Date`);
    }
    return new Date(ms);
  }

  private enter(): number {
    const level = this.depth;
    if (level >= MAX_NESTING_DEPTH) {
      throw this.fail(
        `nesting is deeper than the limit of ${MAX_NESTING_DEPTH} levels of arrays and objects`,
      );
    }
    this.depth = level + 1;
    return level;
  }

  /** Reads a big-endian unsigned length or integer of 1, 2 or 4 bytes. */
  private readLength(size: 1 | 2 | 4): number {
    const at = this.advance(size);
    const src = this.src;
    if (size === 1) return src[at] as number;
    if (size === 2) return ((src[at] as number) << 8) | (src[at + 1] as number);
    return (
      (src[at] as number) * 0x1000000 +
      (((src[at + 1] as number) << 16) | ((src[at + 2] as number) << 8) | (src[at + 3] as number))
    );
  }

  /** Claims `size` bytes and returns their offset; fails if the input is shorter. */
  private advance(size: number): number {
    const at = this.pos;
    if (size > this.end - at) this.truncated(size);
    this.pos = at + size;
    return at;
  }

  private truncated(size: number): never {
    throw this.fail(
      `the data ends unexpectedly (needed ${size} bytes at offset ${this.pos}, ` +
        `${this.end - this.pos} remain); it is truncated or corrupt`,
    );
  }

  private dataView(): DataView {
    return (this.view ??= new DataView(this.src.buffer, this.src.byteOffset, this.src.byteLength));
  }

  private buffer(): Buffer {
    return (this.nodeBuffer ??= Buffer.isBuffer(this.src)
      ? this.src
      : Buffer.from(this.src.buffer, this.src.byteOffset, this.src.byteLength));
  }

  private fail(reason: string, cause?: unknown): TaskDeserializationError {
    const path = formatPath(this.root, this.segments, this.depth);
    return new TaskDeserializationError(path, reason, cause === undefined ? undefined : { cause });
  }
}

function typeName(byte: number): string {
  if (byte === 0xc0) return "nil";
  if (byte === 0xc2 || byte === 0xc3) return "a boolean";
  if (byte === 0xca || byte === 0xcb) return "a float";
  if (byte >= 0xc4 && byte <= 0xc6) return "binary data";
  if ((byte >= 0x80 && byte < 0x90) || byte === 0xde || byte === 0xdf) return "a map";
  if ((byte >= 0x90 && byte < 0xa0) || byte === 0xdc || byte === 0xdd) return "an array";
  if ((byte >= 0xc7 && byte <= 0xc9) || (byte >= 0xd4 && byte <= 0xd8)) return "an extension value";
  return `the unused byte 0x${byte.toString(16)}`;
}

function describe(value: unknown): string {
  if (value === null) return "null";
  if (typeof value !== "object") return typeof value;
  const name = Object.prototype.toString.call(value).slice(8, -1);
  return `an object (${name})`;
}

const shared = new Decoder();

/**
 * Decodes task parameters written by encodeParameters (or by any MessagePack implementation that
 * sticks to the types listed in docs/parameters.md). Throws TaskDeserializationError on anything
 * else: corrupt or truncated bytes, trailing bytes, extension types other than timestamp, map keys
 * other than strings and integers, duplicate keys, nesting deeper than MAX_NESTING_DEPTH.
 */
export function decodeParameters(bytes: Uint8Array, options?: DecodeOptions): unknown {
  return shared.decode(bytes, options?.rootName ?? DEFAULT_ROOT_NAME);
}
