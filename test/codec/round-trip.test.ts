import assert from "node:assert/strict";
import { describe, it } from "node:test";
import { runInNewContext } from "node:vm";
import { Packr, Unpackr } from "msgpackr";
import {
  DEFAULT_MAX_PARAMETER_BYTES,
  MAX_NESTING_DEPTH,
  decodeParameters,
  encodeParameters,
} from "../../src/codec/index.ts";
import { fromHex, roundTrip, toHex } from "./helpers.ts";

describe("codec round trips", () => {
  it("exports the documented limits", () => {
    assert.equal(DEFAULT_MAX_PARAMETER_BYTES, 1_048_576);
    assert.equal(MAX_NESTING_DEPTH, 64);
  });

  it("round-trips null, booleans and strings", () => {
    for (const value of [null, true, false, "", "a", "Activity created by background task"]) {
      assert.equal(roundTrip(value), value);
    }
    // A GUID is just a string.
    const guid = "3f2504e0-4f89-11d3-9a0c-0305e82c3301";
    assert.equal(roundTrip(guid), guid);
  });

  it("round-trips non-ASCII strings, long strings and a leading byte order mark", () => {
    const samples = [
      "Кириллица",
      "ひらがな",
      "🍺 and ❤",
      "\uFEFFstarts with a BOM",
      "\u0000 nul inside",
      "é".repeat(40), // short-string path, widened to a str8 header
      "x".repeat(31),
      "x".repeat(32),
      "x".repeat(255),
      "x".repeat(256),
      "ü".repeat(70_000), // str32
      "🍺".repeat(100),
    ];
    for (const value of samples) assert.equal(roundTrip(value), value);
  });

  it("round-trips numbers exactly, including NaN and ±Infinity; -0 arrives as 0", () => {
    const numbers = [
      0, 1, 127, 128, 255, 256, 65535, 65536, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32,
      Number.MAX_SAFE_INTEGER, Number.MAX_VALUE, Number.MIN_VALUE, Number.EPSILON,
      -1, -32, -33, -128, -129, -32768, -32769, -(2 ** 31), -(2 ** 31) - 1, Number.MIN_SAFE_INTEGER,
      0.5, -0.5, 0.1, Math.PI, 1e300, -1e-300, NaN, Infinity, -Infinity,
    ];
    for (const value of numbers) {
      const back = roundTrip(value);
      assert.ok(Object.is(back, value), `${value} came back as ${String(back)}`);
    }
    // msgpackr writes -0 as the integer 0 (MessagePack integers have no negative zero).
    assert.ok(Object.is(roundTrip(-0), 0));
  });

  it("writes the smallest integer format for 32-bit integers and float64 for everything else", () => {
    const cases: [unknown, string][] = [
      [0, "00"],
      [127, "7f"],
      [128, "cc-80"],
      [256, "cd-01-00"],
      [65536, "ce-00-01-00-00"],
      [-1, "ff"],
      [-32, "e0"],
      [-33, "d0-df"],
      [-129, "d1-ff-7f"],
      [-32769, "d2-ff-ff-7f-ff"],
      [-0, "00"],
      [0.5, "cb-3f-e0-00-00-00-00-00-00"],
      [2 ** 32, "cb-41-f0-00-00-00-00-00-00"],
      [NaN, "cb-7f-f8-00-00-00-00-00-00"],
      [5n, "d3-00-00-00-00-00-00-00-05"],
      [-(2n ** 63n), "d3-80-00-00-00-00-00-00-00"],
      [2n ** 63n, "cf-80-00-00-00-00-00-00-00"],
      [2n ** 64n - 1n, "cf-ff-ff-ff-ff-ff-ff-ff-ff"],
    ];
    for (const [value, hex] of cases) assert.equal(toHex(encodeParameters(value)), hex, String(value));
  });

  it("round-trips bigints across the whole 64-bit range as bigints", () => {
    for (const value of [0n, 1n, -1n, 5n, 2n ** 53n + 1n, -(2n ** 63n), 2n ** 63n - 1n, 2n ** 63n, 2n ** 64n - 1n]) {
      assert.equal(roundTrip(value), value);
    }
  });

  it("round-trips Dates with millisecond precision through the timestamp extension", () => {
    const dates = [
      new Date(0),
      new Date("2018-01-02T03:04:05.000Z"), // timestamp 32
      new Date("2018-01-02T03:04:05.678Z"), // timestamp 64
      new Date("2106-02-07T06:28:16.000Z"), // seconds beyond 32 bits: timestamp 64
      new Date("2514-05-30T01:53:04.000Z"), // seconds beyond 34 bits: timestamp 96
      new Date("1969-12-31T23:59:59.999Z"), // negative: timestamp 96
      new Date("0000-01-01T00:00:00.000Z"),
      new Date(8.64e15), // the largest Date
      new Date(-8.64e15), // the smallest Date
    ];
    for (const date of dates) {
      const back = roundTrip(date);
      assert.ok(back instanceof Date);
      assert.equal(back.getTime(), date.getTime(), date.toISOString());
    }
    assert.equal(toHex(encodeParameters(new Date("2018-01-02T03:04:05.000Z"))), "d6-ff-5a-4a-f6-a5");
    assert.equal(toHex(encodeParameters(new Date(-1000))), "c7-0c-ff-00-00-00-00-ff-ff-ff-ff-ff-ff-ff-ff");
  });

  it("round-trips Uint8Array and Buffer as bin, coming back as a plain Uint8Array copy", () => {
    for (const value of [new Uint8Array(0), new Uint8Array([0, 255]), Buffer.from("hello"), new Uint8Array(70_000).fill(7)]) {
      const bytes = encodeParameters(value);
      const back = decodeParameters(bytes);
      assert.ok(back instanceof Uint8Array);
      assert.equal(Object.getPrototypeOf(back), Uint8Array.prototype);
      assert.deepEqual(Array.from(back), Array.from(value));
      // Not a view of the stored bytes.
      assert.notEqual(back.buffer, bytes.buffer);
    }
    assert.equal(toHex(encodeParameters(Buffer.from([1, 2]))), "c4-02-01-02");
    // A view into a larger buffer writes only its own bytes.
    const view = new Uint8Array([9, 1, 2, 3, 9]).subarray(1, 4);
    assert.equal(toHex(encodeParameters(view)), "c4-03-01-02-03");
  });

  it("round-trips arrays and plain objects, including null-prototype objects", () => {
    const value = {
      title: "Activity created by background task",
      typeId: "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
      count: 3,
      tags: ["a", "b", ["nested", { deep: [1, 2, 3] }]],
      empty: {},
      emptyList: [],
      "odd key": { "": "empty key", "0": "numeric-looking key" },
    };
    assert.deepEqual(roundTrip(value), value);

    const bare = Object.assign(Object.create(null) as Record<string, unknown>, { a: 1 });
    const back = roundTrip({ bare });
    assert.deepEqual(back, { bare: { a: 1 } });
    // Decoded objects are always ordinary objects.
    assert.equal(Object.getPrototypeOf((back as { bare: object }).bare), Object.prototype);
  });

  it("accepts plain objects, arrays and Dates made in another realm (a vm context)", () => {
    const foreign: unknown = runInNewContext('({ a: [1, { b: "c" }], when: new Date(0) })');
    assert.notEqual(Object.getPrototypeOf(foreign), Object.prototype);
    const back = roundTrip(foreign);
    assert.deepEqual(back, { a: [1, { b: "c" }], when: new Date(0) });
  });

  it("writes objects as maps whatever their keys, even keys msgpackr looks at (constructor, toJSON)", () => {
    const value = JSON.parse(
      '{"constructor": {"name": "x"}, "toJSON": {}, "__proto__": [1], "size": 3, "then": "y", "buffer": 1}',
    ) as Record<string, unknown>;
    const back = roundTrip(value) as Record<string, unknown>;
    assert.deepEqual(Object.keys(back), ["constructor", "toJSON", "__proto__", "size", "then", "buffer"]);
    assert.deepEqual(Object.getOwnPropertyDescriptor(back, "__proto__")?.value, [1]);
    assert.deepEqual(back.constructor, { name: "x" });
    assert.equal(Object.getPrototypeOf(back), Object.prototype);
    assert.equal(toHex(encodeParameters({ constructor: 1, toJSON: {} })), "82-ab-63-6f-6e-73-74-72-75-63-74-6f-72-01-a6-74-6f-4a-53-4f-4e-80");
  });

  it("writes every Uint8Array as bin, whatever its class or own properties", () => {
    class Bytes extends Uint8Array {
      toJSON() {
        return "not bytes";
      }
    }
    const withConstructor = new Uint8Array([1, 2]);
    Object.defineProperty(withConstructor, "constructor", { value: Object });
    const withBuffer = new Uint8Array([1, 2]);
    Object.defineProperty(withBuffer, "buffer", { value: new ArrayBuffer(8) });
    for (const value of [new Bytes([1, 2]), withConstructor, withBuffer, Buffer.from([1, 2])]) {
      const bytes = encodeParameters({ b: value });
      assert.equal(toHex(bytes), "81-a1-62-c4-02-01-02");
      const back = decodeParameters(bytes) as { b: Uint8Array };
      assert.equal(Object.getPrototypeOf(back.b), Uint8Array.prototype);
    }
  });

  it("writes maps with string keys, never msgpackr records", () => {
    assert.equal(toHex(encodeParameters({ a: 1 })), "81-a1-61-01");
    assert.equal(toHex(encodeParameters([{ a: 1 }, { a: 2 }])), "92-81-a1-61-01-81-a1-61-02");
  });

  it("chooses map and array headers by size: fix, 16-bit and 32-bit", () => {
    const sizes = [15, 16, 65535, 65536];
    for (const size of sizes) {
      const list = Array.from({ length: size }, (_, i) => i % 100);
      const object = Object.fromEntries(list.map((_, i) => [`k${i}`, i % 100]));
      const listBytes = encodeParameters(list);
      const objectBytes = encodeParameters(object, { maxBytes: 4 * DEFAULT_MAX_PARAMETER_BYTES });
      const expectedHead = size < 16 ? [0x90 | size, 0x80 | size] : size < 65536 ? [0xdc, 0xde] : [0xdd, 0xdf];
      assert.equal(listBytes[0], expectedHead[0]);
      assert.equal(objectBytes[0], expectedHead[1]);
      assert.deepEqual(decodeParameters(listBytes), list);
      assert.deepEqual(decodeParameters(objectBytes), object);
    }
  });

  it("leaves out object properties whose value is undefined, like JSON", () => {
    assert.deepEqual(roundTrip({ a: 1, b: undefined, c: "x" }), { a: 1, c: "x" });
    assert.equal(toHex(encodeParameters({ a: undefined })), "80");
    // With 16 keys reserved and fewer written, the header shrinks back to a fixmap.
    const object: Record<string, unknown> = {};
    for (let i = 0; i < 20; i++) object[`k${i}`] = i < 3 ? i : undefined;
    const bytes = encodeParameters(object);
    assert.equal(toHex(bytes), "83-a2-6b-30-00-a2-6b-31-01-a2-6b-32-02");
    assert.deepEqual(decodeParameters(bytes), { k0: 0, k1: 1, k2: 2 });
  });

  it("writes undefined at the top level and in arrays as nil, and array holes as nil", () => {
    assert.equal(roundTrip(undefined), null);
    // eslint-disable-next-line no-sparse-arrays
    assert.deepEqual(roundTrip([1, , undefined, 3]), [1, null, null, 3]);
    const sparse: unknown[] = [];
    sparse[3] = "x";
    assert.deepEqual(roundTrip(sparse), [null, null, null, "x"]);
  });

  it("encodes a shared (non-cyclic) object once per reference", () => {
    const shared = { id: 1 };
    assert.deepEqual(roundTrip({ a: shared, b: shared, list: [shared, shared] }), {
      a: { id: 1 },
      b: { id: 1 },
      list: [{ id: 1 }, { id: 1 }],
    });
  });

  it("reads each getter exactly once and writes the value it returned", () => {
    let reads = 0;
    const value = {
      get name() {
        reads++;
        return `read ${reads}`;
      },
    };
    assert.deepEqual(roundTrip(value), { name: "read 1" });
    assert.equal(reads, 1);
  });

  it("writes bytes as they were when read, even if a later getter changes them", () => {
    const bytes = new Uint8Array([1, 2]);
    const value = {
      a: bytes,
      get b() {
        bytes[0] = 9;
        return 1;
      },
    };
    assert.equal(toHex(encodeParameters(value)), "82-a1-61-c4-02-01-02-a1-62-01");
  });

  it("ignores non-enumerable properties, like JSON", () => {
    const value = { shown: 1 };
    Object.defineProperty(value, "hidden", { value: 2, enumerable: false });
    Object.defineProperty(value, Symbol("hidden"), { value: 3, enumerable: false });
    assert.deepEqual(roundTrip(value), { shown: 1 });
  });

  it("accepts nesting up to exactly MAX_NESTING_DEPTH levels", () => {
    let value: unknown = "leaf";
    for (let i = 0; i < MAX_NESTING_DEPTH; i++) value = i % 2 === 0 ? [value] : { next: value };
    assert.deepEqual(roundTrip(value), value);
  });

  it("keeps earlier results intact while later encodings share the output slab", () => {
    const results: [number, Uint8Array][] = [];
    for (let i = 0; i < 5_000; i++) results.push([i, encodeParameters({ i, text: `item ${i}`.repeat(i % 7) })]);
    // A large encoding in between grows a private slab.
    const large = encodeParameters({ blob: "z".repeat(200_000) });
    for (let i = 5_000; i < 6_000; i++) results.push([i, encodeParameters({ i, text: `item ${i}`.repeat(i % 7) })]);
    for (const [i, bytes] of results) assert.deepEqual(decodeParameters(bytes), { i, text: `item ${i}`.repeat(i % 7) });
    assert.deepEqual(decodeParameters(large), { blob: "z".repeat(200_000) });
  });

  it("recovers when a result's ArrayBuffer is transferred away", () => {
    const first = encodeParameters({ a: 1 });
    const slab = first.buffer as ArrayBuffer;
    structuredClone(slab, { transfer: [slab] }); // detaches the shared slab
    assert.equal(first.length, 0);
    assert.deepEqual(decodeParameters(encodeParameters({ b: 2 })), { b: 2 });
  });

  it("supports a getter that itself encodes parameters (re-entrant call)", () => {
    const value = {
      get inner() {
        return encodeParameters({ nested: true });
      },
      after: "x".repeat(100),
    };
    const back = decodeParameters(encodeParameters(value)) as { inner: Uint8Array; after: string };
    assert.deepEqual(decodeParameters(back.inner), { nested: true });
    assert.equal(back.after, "x".repeat(100));
  });

  it("decodes from a Uint8Array at a byte offset inside a larger buffer", () => {
    const bytes = encodeParameters({ f: 1.5, big: 2n ** 60n, when: new Date("2018-01-02T03:04:05.678Z"), s: "x".repeat(40) });
    const padded = new Uint8Array(bytes.length + 7);
    padded.set(bytes, 3);
    assert.deepEqual(decodeParameters(padded.subarray(3, 3 + bytes.length)), {
      f: 1.5,
      big: 2n ** 60n,
      when: new Date("2018-01-02T03:04:05.678Z"),
      s: "x".repeat(40),
    });
  });
});

describe("codec interoperability with msgpackr (another MessagePack implementation)", () => {
  const sample = {
    title: "Activity created by background task",
    typeId: "3f2504e0-4f89-11d3-9a0c-0305e82c3301",
    n: [0, -1, 300, 70000, -70000, 0.25, 2 ** 40],
    big: 12345678901234567890n,
    small: -5n,
    when: new Date("2024-02-29T12:34:56.789Z"),
    bytes: new Uint8Array([1, 2, 3]),
    flags: [true, false, null],
    nested: { "odd key": { x: "ü🍺" } },
  };

  it("msgpackr reads our bytes as the same value", () => {
    const theirs = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: "bigint" });
    const back = theirs.unpack(encodeParameters(sample)) as Record<string, unknown>;
    const { bytes, ...rest } = back;
    assert.ok(bytes instanceof Uint8Array);
    assert.deepEqual(Array.from(bytes), [1, 2, 3]);
    const { bytes: _bytes, ...expected } = sample;
    assert.deepEqual(rest, expected);
  });

  it("we read msgpackr's standard (record-free) bytes as the same value", () => {
    const theirs = new Packr({ useRecords: false });
    assert.deepEqual(decodeParameters(theirs.pack(sample)), sample);
  });

  it("msgpackr with default options reads our bytes too (maps as Map objects, its own default)", () => {
    const back = new Unpackr().unpack(encodeParameters({ a: [1, "b"] }));
    assert.deepEqual(back, new Map([["a", [1, "b"]]]));
  });

  it("re-encoding msgpackr's decoding of our bytes gives the same bytes", () => {
    const ours = encodeParameters(sample);
    const viaThem = new Unpackr({ mapsAsObjects: true, useRecords: false, int64AsType: "bigint" }).unpack(ours);
    assert.equal(toHex(encodeParameters(viaThem)), toHex(ours));
  });

  it("gives each encoding a buffer of its own size, also after a large value and a refused one", () => {
    const small = { customerId: 7, name: "Acme" };
    const sizes: number[] = [];
    const own = (bytes: Uint8Array): void => {
      assert.equal(bytes.byteOffset, 0);
      assert.equal(bytes.buffer.byteLength, bytes.byteLength, "not a view of a larger buffer");
      sizes.push(bytes.byteLength);
    };
    own(encodeParameters(small));
    own(encodeParameters({ big: "x".repeat(900_000) }));
    assert.throws(() => encodeParameters({ big: "x".repeat(4_000_000) }), /exceeds the limit/);
    const after = encodeParameters(small);
    own(after);
    assert.deepEqual(decodeParameters(after), small);
    // Bytes handed out earlier are not written over by later encodings.
    const first = encodeParameters({ n: 1 });
    encodeParameters({ n: 2 });
    assert.deepEqual(decodeParameters(first), { n: 1 });
    assert.equal(sizes[0], sizes[2]);
  });

  it("reads a hand-written literal vector", () => {
    assert.deepEqual(decodeParameters(fromHex("93 c3 c2 a1 78")), [true, false, "x"]);
  });
});
