import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { describe, it } from "node:test";
import { fileURLToPath } from "node:url";
import { Packr, isNativeAccelerationEnabled } from "msgpackr";
import {
  MAX_NESTING_DEPTH,
  TaskDeserializationError,
  decodeParameters,
  encodeParameters,
} from "../../src/codec/index.ts";
import { decodeTaskResult } from "../../src/tasks/result.ts";
import { assertDecodeRejects, fromHex } from "./helpers.ts";

/** A fixmap/str encoding of { [key]: value } built by hand, as a hostile writer would. */
function entry(key: string, valueHex: string): string {
  const keyBytes = Buffer.from(key, "utf8");
  assert.ok(keyBytes.length < 32);
  return (0xa0 | keyBytes.length).toString(16) + keyBytes.toString("hex") + valueHex.replace(/\s/g, "");
}

/** Asserts that a decoded value holds only the allowed types, plain and unshared with the input. */
function assertAllowed(value: unknown, input: Uint8Array, where: string, depth = 0): void {
  switch (typeof value) {
    case "string":
    case "number":
    case "boolean":
      return;
    case "bigint":
      assert.ok(value >= -(2n ** 63n) && value < 2n ** 64n, `${where}: bigint ${value}`);
      return;
    case "object": {
      if (value === null) return;
      const proto: unknown = Object.getPrototypeOf(value);
      if (value instanceof Date) {
        assert.equal(proto, Date.prototype, where);
        assert.ok(!Number.isNaN(value.getTime()), `${where}: invalid Date`);
        return;
      }
      if (value instanceof Uint8Array) {
        assert.equal(proto, Uint8Array.prototype, where);
        assert.notEqual(value.buffer, input.buffer, `${where}: a view of the input`);
        return;
      }
      assert.ok(depth < MAX_NESTING_DEPTH, `${where}: too deep`);
      if (Array.isArray(value)) {
        assert.equal(proto, Array.prototype, where);
        for (const item of value) assertAllowed(item, input, where, depth + 1);
        return;
      }
      assert.equal(proto, Object.prototype, `${where}: ${Object.prototype.toString.call(value)}`);
      for (const key of Reflect.ownKeys(value)) {
        assert.equal(typeof key, "string", where);
        const descriptor = Object.getOwnPropertyDescriptor(value, key);
        assert.ok(descriptor && "value" in descriptor && descriptor.enumerable, `${where}: property ${String(key)}`);
        assertAllowed(descriptor.value, input, where, depth + 1);
      }
      return;
    }
  }
  assert.fail(`${where}: a value of type ${typeof value}`);
}

/** Strings that are not valid UTF-8, and what msgpackr reads them as (U+FFFD as TextDecoder puts it). */
function utf8Cases(): [string, string][] {
  return [
    ["a1 ff", "\uFFFD"], // never valid
    ["a2 c0 80", "\uFFFD\uFFFD"], // overlong NUL
    ["a3 ed a0 80", "\uFFFD\uFFFD\uFFFD"], // an encoded surrogate
    ["a4 f4 90 80 80", "\uFFFD\uFFFD\uFFFD\uFFFD"], // above U+10FFFF
    ["a2 61 c3", "a\uFFFD"], // cut multi-byte sequence
    [`d9 50 ${"61".repeat(79)} ff`, `${"a".repeat(79)}\uFFFD`], // str8, on the long-string path
    [`da 0100 ${"c3a9".repeat(127)} c3 61`, `${"é".repeat(127)}\uFFFDa`], // str16
  ];
}

describe("decodeParameters treats stored bytes as untrusted", () => {
  it("rejects empty input and input that is not a Uint8Array", () => {
    assertDecodeRejects(new Uint8Array(0), "parameters: no data: 0 bytes of encoded parameters");
    for (const [input, got] of [
      ["c0", "string"],
      [null, "null"],
      [new ArrayBuffer(1), "an object (ArrayBuffer)"],
      [[0xc0], "an object (Array)"],
    ] as const) {
      assertDecodeRejects(
        input as unknown as Uint8Array,
        `parameters: expected the encoded parameters as a Uint8Array, got ${got}`,
      );
    }
  });

  it("names a stored result as the result, not as parameters", () => {
    assert.throws(() => decodeTaskResult(new Uint8Array(0)), { name: "TaskDeserializationError", message: "result: no data: 0 bytes of encoded result" });
    assert.throws(() => decodeTaskResult(fromHex("81 a1 61")), (e: Error) => e.name === "TaskDeserializationError" && e.message.startsWith("result") && !/parameters/.test(e.message));
    assert.deepEqual(decodeTaskResult(fromHex("81 a1 61 01")), { a: 1 });
  });

  // msgpackr reports no position for truncated data, so these errors name the root.
  it("rejects truncated data at every cut point, saying it is truncated", () => {
    const full = encodeParameters({
      title: "abc",
      n: 1.5,
      list: [1, 300, 70000, -5n, "x".repeat(40), new Uint8Array([1, 2])],
      when: new Date("2018-01-02T03:04:05.678Z"),
    });
    // Each cut is a view of the full buffer: the bytes after the cut exist but must not be read.
    for (let cut = 1; cut < full.length; cut++) {
      const error = assertDecodeRejects(
        full.subarray(0, cut),
        new RegExp(`^parameters: the data ends unexpectedly after ${cut} bytes?( \\(a length in it needs at least \\d+ bytes? more\\))?; it is truncated or corrupt$`),
      );
      assert.equal(error.path, "parameters", `cut at ${cut}`);
    }
    const simple = fromHex("82 a5 7469746c65 a3 616263 a1 6e cb 3ff8000000000000");
    for (const cut of [2, 10, 16]) {
      assertDecodeRejects(
        simple.subarray(0, cut),
        `parameters: the data ends unexpectedly after ${cut} bytes; it is truncated or corrupt`,
      );
    }
    assertDecodeRejects(
      fromHex("92 01 dc 00 05 01"),
      "parameters: the data ends unexpectedly after 6 bytes (a length in it needs at least 4 bytes more); it is truncated or corrupt",
    );
  });

  it("rejects extra bytes after the value", () => {
    assertDecodeRejects(
      fromHex("c0 c0"),
      "parameters: 1 byte after the end of the value (at offset 1 of 2); the data is corrupt or is not one MessagePack value",
    );
    assertDecodeRejects(
      fromHex("81 a1 61 01 00 00 00"),
      "parameters: 3 bytes after the end of the value (at offset 4 of 7); the data is corrupt or is not one MessagePack value",
    );
  });

  it("rejects the never-used type byte 0xc1", () => {
    assertDecodeRejects(fromHex("92 01 c1"), "parameters[1]: invalid MessagePack data: the byte 0xc1 is never used");
    assertDecodeRejects(fromHex("c1"), "parameters: invalid MessagePack data: the byte 0xc1 is never used");
  });

  it("rejects lengths that cannot fit in the input quickly, without allocating for them", () => {
    // Headers claiming 4 GiB (or 4 billion elements or entries) in inputs of 10 bytes. msgpackr
    // compares each length with the bytes left before it allocates or loops; for arrays it also
    // spends from a budget of the input size, so nested arrays cannot add up to more.
    const cases: [string, string][] = [
      ["dd ffffffff c0 c0 c0 c0 c0", "(a length in it needs at least 4294967290 bytes more)"], // array32
      ["df ffffffff c0 c0 c0 c0 c0", "(a length in it needs at least 8589934585 bytes more)"], // map32
      ["db ffffffff 61 61 61 61 61", "(a length in it needs at least 4294967290 bytes more)"], // str32
      ["c6 ffffffff 00 00 00 00 00", "(a length in it needs at least 4294967290 bytes more)"], // bin32
      ["c9 ffffffff ff 00 00 00 00", "(a length in it needs at least 4294967291 bytes more)"], // ext32
      ["dc ffff dc ffff dc ffff c0", "(a length in it needs at least 65528 bytes more)"], // array16 in array16
    ];
    for (const [hex, detail] of cases) {
      const before = process.memoryUsage();
      const started = performance.now();
      assertDecodeRejects(fromHex(hex), `parameters: the data ends unexpectedly after 10 bytes ${detail}; it is truncated or corrupt`);
      const elapsed = performance.now() - started;
      const after = process.memoryUsage();
      assert.ok(elapsed < 250, `${hex}: took ${elapsed.toFixed(0)} ms`);
      for (const key of ["rss", "heapUsed", "arrayBuffers"] as const) {
        const grown = after[key] - before[key];
        assert.ok(grown < 64 * 1_048_576, `${hex}: ${key} grew by ${(grown / 1_048_576).toFixed(0)} MiB`);
      }
    }
    // Nested arrays whose lengths each fit in the input but add up to more than it holds.
    const nested = new Uint8Array(70_000).fill(0xc0);
    nested.set([0xdc, 0xff, 0x00, 0xdc, 0xff, 0x00]); // an array of 65280 whose first element is another
    assertDecodeRejects(nested, /^parameters: the data ends unexpectedly after 70000 bytes/);
  });

  it("rejects extension types other than the timestamp", () => {
    // Types msgpackr does not know: it refuses them itself, without a position, so the path is the root.
    for (const [hex, type] of [
      ["d4 01 10", 1],
      ["d5 7f 2021", 127],
      ["d6 80 30313233", -128],
      ["c7 00 06", 6],
      ["c8 0003 07 707172", 7],
      ["d6 72 00000000", 0x72], // the record extension ("r") in a form msgpackr does not read as one
    ] as const) {
      assertDecodeRejects(
        fromHex(`91 ${hex}`),
        `parameters: MessagePack extension type ${type} is not supported; the only extension allowed in parameters is the timestamp (type -1)`,
      );
    }
  });

  it("rejects msgpackr's own extensions by what they decode to, naming the path", () => {
    const reason = (type: number, as: string) =>
      `MessagePack extension type ${type} is not supported (msgpackr reads it as ${as}); the only extension allowed in parameters is the timestamp (type -1)`;
    for (const [hex, type, as] of [
      ["d4 00 00", 0, "undefined"],
      ["d4 73 00 92 01 02", 0x73, "a Set"],
      ["d4 78 00 92 a1 78 a1 67", 0x78, "a RegExp"],
      ["d4 65 00 93 a9 54797065457272 6f72 a4 626f6f6d c0", 0x65, "an Error"],
      ["c7 03 74 01 0102", 0x74, "a Uint8Array"], // a typed array of type Uint8Array, not bin
      ["c7 05 74 07 00000000", 0x74, "a Float32Array"],
      ["c7 09 74 08 000000000000f03f", 0x74, "a Float64Array"],
      ["c7 02 74 10 00", 0x74, "an ArrayBuffer"],
      ["c7 02 74 11 00", 0x74, "a DataView"],
      ["d4 72 40 91 a1 61 01", 0x72, "a record object"], // defines record 0x40 and reads one
      ["c7 09 42 010000000000000000", 0x42, "a bigint beyond 64 bits"],
    ] as const) {
      assertDecodeRejects(fromHex(`82 a1 61 c0 a1 62 ${hex}`), `parameters.b: ${reason(type, as)}`);
    }
    // Structured-clone ids and pointers are switched off in msgpackr, which then refuses them itself.
    for (const hex of ["d6 69 00000001 91 01", "d6 70 00000001"]) {
      assertDecodeRejects(
        fromHex(`91 ${hex}`),
        "parameters: MessagePack extension type 105 or 112 is not supported (msgpackr reads it as a structured-clone reference); the only extension allowed in parameters is the timestamp (type -1)",
      );
    }
  });

  it("reads through the msgpackr extensions that decode to allowed values (documented)", () => {
    // Values are checked after msgpackr has read them, so an extension that decodes to an allowed
    // value cannot be told apart from the standard encoding of that value.
    assert.equal(decodeParameters(fromHex("d5 42 0001")), 1n); // msgpackr's bigint, within 64 bits
    // A string bundle (type 98), as msgpackr writes it with bundleStrings.
    const bundled = fromHex("de0002 a161 d6620000000e c114 a162 92 a2c3a9 a178 a0 b4 68656c6c6f20776f726c642c2062756e646c6564");
    assert.deepEqual(decodeParameters(bundled), { a: "hello world, bundled", b: ["é", "x"] });
    // The Error extension (type 101) names the constructor to call; Object returns its argument.
    assert.deepEqual(decodeParameters(fromHex("d4 65 00 93 ab 636f6e7374727563746f72 81 a1 61 01 c0")), { a: 1 });
  });

  it("rejects timestamps of the wrong size or outside the range of a Date", () => {
    // msgpackr reads both as an invalid Date, so one message covers both.
    const reason =
      "invalid timestamp: its data is not 4, 8 or 12 bytes long, or it is outside the range of a JavaScript Date";
    for (const hex of [
      "d4 ff 00", // 1 byte of data
      "d5 ff 0000", // 2 bytes
      "c7 03 ff 000000", // 3 bytes
      "d8 ff 00000000000000000000000000000000", // 16 bytes
      "c7 0c ff 00000000 7fffffffffffffff", // 2^63-1 seconds
      "c7 0c ff 00000000 0000080000000000", // 2^43 seconds, just beyond the largest Date
    ]) {
      assertDecodeRejects(fromHex(`81 a1 74 ${hex}`), `parameters.t: ${reason}`);
    }
  });

  it("reads timestamps as msgpackr does: nanoseconds are not range-checked (pinned)", () => {
    const read = (hex: string) => (decodeParameters(fromHex(hex)) as Date).toISOString();
    // A nanoseconds field above 999999999 is not refused; the surplus carries into the seconds.
    assert.equal(read("c7 0c ff 3b9aca00 0000000000000000"), "1970-01-01T00:00:01.000Z");
    assert.equal(read("d7 ff ffffffff 00000000"), "2378-04-22T19:24:49.073Z"); // 1073741823 ns
    // The Date is new Date(seconds * 1000 + nanoseconds / 1e6), so sub-millisecond digits are cut
    // toward zero, after the sum is rounded to a double: 999999999 ns can round up a millisecond.
    assert.equal(read("d7 ff ee6b27fc 00000000"), "1970-01-01T00:00:00.999Z"); // [0, 999999999]
    assert.equal(read("d7 ff ee6b27fc 5a4af6a5"), "2018-01-02T03:04:06.000Z"); // [1514862245, 999999999]
    assert.equal(read("d7 ff ee6b27fc 7fffffff"), "2038-01-19T03:14:08.000Z"); // [2^31-1, 999999999]
    assert.equal(read("c7 0c ff 3b9ac9ff ffffffffffffffff"), "1970-01-01T00:00:00.000Z"); // [-1, 999999999]
    // timestamp 96 seconds are read from their low 48 bits and the sign bit: 2^48 seconds reads as 0.
    assert.equal(read("c7 0c ff 00000000 0001000000000000"), "1970-01-01T00:00:00.000Z");
  });

  it("reads strings that are not valid UTF-8 with replacement characters, as TextDecoder does (pinned)", () => {
    const cases = utf8Cases();
    for (const [hex, expected] of cases) {
      const bytes = fromHex(hex);
      const decoded = decodeParameters(bytes);
      assert.equal(decoded, expected, hex);
      const header = { d9: 2, da: 3 }[hex.slice(0, 2)] ?? 1;
      assert.equal(decoded, new TextDecoder().decode(bytes.subarray(header)), hex);
    }
    // What was read is valid Unicode again, so it encodes (and then decodes unchanged).
    for (const [, expected] of cases) assert.equal(decodeParameters(encodeParameters(expected)), expected);
  });

  it("reads strings the same way without msgpackr's native string extractor, except a leading BOM (pinned)", () => {
    // msgpackr-extract is an optional native addon. Without it (or with the variable below set),
    // msgpackr reads strings in JavaScript, and strings over 64 bytes go through a TextDecoder that
    // drops a leading U+FEFF. Checked in a child process, since the choice is made at import time.
    const codec = fileURLToPath(new URL("../../src/codec/index.ts", import.meta.url));
    const bom = "\uFEFF" + "x".repeat(70);
    const script =
      `import { decodeParameters, encodeParameters } from ${JSON.stringify(codec)};` +
      `import { isNativeAccelerationEnabled } from "msgpackr";` +
      `const hexes = JSON.parse(process.argv[1]);` +
      `const bom = ${JSON.stringify(bom)};` +
      `console.log(JSON.stringify({ native: isNativeAccelerationEnabled,` +
      ` strings: hexes.map((h) => decodeParameters(Uint8Array.from(Buffer.from(h.replace(/ /g, ""), "hex")))),` +
      ` bom: [bom.slice(0, 40), bom].map((s) => decodeParameters(encodeParameters(s))) }));`;
    const cases = utf8Cases();
    const output = execFileSync(
      process.execPath,
      ["--import", "tsx", "--input-type=module", "--eval", script, JSON.stringify(cases.map(([hex]) => hex))],
      { env: { ...process.env, MSGPACKR_NATIVE_ACCELERATION_DISABLED: "true" }, encoding: "utf8" },
    );
    const result = JSON.parse(output) as { native: boolean; strings: string[]; bom: string[] };
    assert.equal(result.native, false);
    assert.deepEqual(result.strings, cases.map(([, expected]) => expected));
    assert.deepEqual(result.bom, [bom.slice(0, 40), bom.slice(1)]);
    // With the addon (as in this process, when it is installed), the BOM is kept.
    if (isNativeAccelerationEnabled) assert.equal(decodeParameters(encodeParameters(bom)), bom);
  });

  it("turns integer map keys into string keys", () => {
    assert.deepEqual(decodeParameters(fromHex("84 01 a1 61 ff a1 62 cf ffffffffffffffff a1 63 d3 8000000000000000 a1 64")), {
      "1": "a",
      "-1": "b",
      "18446744073709551615": "c",
      "-9223372036854775808": "d",
    });
    // msgpackr reads a float with a whole value as the same number as an integer (pinned).
    assert.deepEqual(decodeParameters(fromHex("81 cb 4000000000000000 c3")), { "2": true });
  });

  it("rejects map keys that are not strings or integers", () => {
    for (const [hex, kind] of [
      ["c0", "nil"],
      ["c3", "a boolean"],
      ["cb 3ff8000000000000", "a float"],
      ["ca 3fc00000", "a float"],
      ["c4 01 61", "binary data"],
      ["90", "an array"],
      ["80", "a map"],
      ["d6 ff 00000000", "an extension value"],
      ["d4 00 00", "an extension value"], // msgpackr's undefined
      ["c7 09 42 010000000000000000", "an extension value"], // msgpackr's bigint, beyond 64 bits
      ["cb 4341c37937e08000", "a float"], // 1e16: whole, but beyond the safe integers
      ["c1", "the unused byte 0xc1"],
    ] as const) {
      assertDecodeRejects(
        fromHex(`82 a1 61 01 ${hex} 02`),
        `parameters: map key #1 is ${kind}, which cannot be used as a property name; only string and integer keys are supported`,
      );
    }
  });

  it("keeps the last of duplicate map keys (msgpackr's Map), but rejects an integer key equal to a string key", () => {
    // msgpackr reads a map into a Map, which keeps one entry per key: the last value, at the
    // place of the first (pinned). Only keys that differ in type can still collide.
    assert.deepEqual(decodeParameters(fromHex(`81 a1 78 82 ${entry("a", "01")} ${entry("a", "02")}`)), { x: { a: 2 } });
    const kept = decodeParameters(fromHex(`83 ${entry("a", "01")} ${entry("b", "02")} ${entry("a", "03")}`));
    assert.deepEqual(Object.entries(kept as object), [["a", 3], ["b", 2]]);
    assertDecodeRejects(fromHex(`82 01 c0 a1 31 c0`), 'parameters: duplicate map key "1"');
    assertDecodeRejects(fromHex(`81 a1 78 82 a2 2d31 c0 ff c0`), 'parameters.x: duplicate map key "-1"');
    assertDecodeRejects(fromHex(`82 d3 0000000000000005 c0 05 c0`), 'parameters: duplicate map key "5"');
  });

  it("never lets __proto__, constructor or prototype keys change a prototype", () => {
    const hostile = fromHex(
      "84" +
        entry("__proto__", "81" + entry("polluted", "c3")) +
        entry("constructor", "81" + entry("prototype", "81" + entry("polluted", "c3"))) +
        entry("prototype", "81" + entry("polluted", "c3")) +
        entry("nested", "81" + entry("__proto__", "81" + entry("isAdmin", "c3"))),
    );
    const decoded = decodeParameters(hostile) as Record<string, unknown>;

    assert.equal(({} as Record<string, unknown>).polluted, undefined);
    assert.equal((Object.prototype as unknown as Record<string, unknown>).polluted, undefined);
    assert.equal(Object.getPrototypeOf(decoded), Object.prototype);
    assert.equal(decoded.polluted, undefined);
    assert.deepEqual(Object.keys(decoded), ["__proto__", "constructor", "prototype", "nested"]);

    const proto = Object.getOwnPropertyDescriptor(decoded, "__proto__");
    assert.deepEqual(proto, { value: { polluted: true }, writable: true, enumerable: true, configurable: true });
    const ctor = Object.getOwnPropertyDescriptor(decoded, "constructor");
    assert.deepEqual(ctor?.value, { prototype: { polluted: true } });
    assert.equal(Object.getOwnPropertyDescriptor(decoded, "prototype")?.writable, true);

    const nested = decoded.nested as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(nested), Object.prototype);
    assert.equal(nested.isAdmin, undefined);
    assert.ok(Object.hasOwn(nested, "__proto__"));
    assert.equal(({} as Record<string, unknown>).isAdmin, undefined);
  });

  it("round-trips an own __proto__ property as data", () => {
    const value = JSON.parse('{"__proto__": {"x": 1}, "y": 2}') as Record<string, unknown>;
    const back = decodeParameters(encodeParameters(value)) as Record<string, unknown>;
    assert.equal(Object.getPrototypeOf(back), Object.prototype);
    assert.deepEqual(Object.getOwnPropertyDescriptor(back, "__proto__")?.value, { x: 1 });
    assert.equal(back.y, 2);
  });

  it("shadows Object.prototype method names with own data properties", () => {
    const names = ["hasOwnProperty", "toString", "valueOf", "__defineGetter__", "isPrototypeOf"];
    const bytes = fromHex((0x80 | names.length).toString(16) + names.map((n) => entry(n, "01")).join(""));
    const decoded = decodeParameters(bytes) as Record<string, unknown>;
    for (const name of names) assert.deepEqual(Object.getOwnPropertyDescriptor(decoded, name)?.value, 1);
    assert.equal(typeof Object.prototype.toString, "function");
  });

  it("accepts nesting up to MAX_NESTING_DEPTH and rejects deeper nesting", () => {
    const ok = fromHex("91".repeat(MAX_NESTING_DEPTH) + "c0");
    let value = decodeParameters(ok);
    for (let i = 0; i < MAX_NESTING_DEPTH; i++) value = (value as unknown[])[0];
    assert.equal(value, null);
    assertDecodeRejects(
      fromHex("91".repeat(MAX_NESTING_DEPTH + 1) + "c0"),
      `parameters${"[0]".repeat(MAX_NESTING_DEPTH)}: nesting is deeper than the limit of 64 levels of arrays and objects`,
    );
  });

  it("survives a hostile 100,000-deep array or map without a stack overflow", () => {
    // msgpackr reads recursively; its stack overflow is caught and reported at the root, since
    // it gives no position. Nesting that msgpackr can read is refused with the exact path instead.
    const depth = 100_000;
    const deepArray = new Uint8Array(depth + 1).fill(0x91);
    deepArray[depth] = 0xc0;
    const message = "parameters: nesting is deeper than the limit of 64 levels of arrays and objects";
    assertDecodeRejects(deepArray, message);
    assertDecodeRejects(fromHex("81a161".repeat(depth) + "c0"), message);
    assertDecodeRejects(fromHex("dc0001".repeat(depth) + "c0"), message);
    // The next call still works, and still refuses a deep value with its path.
    assert.deepEqual(decodeParameters(fromHex("91 91 c0")), [[null]]);
    assertDecodeRejects(
      fromHex("81a161".repeat(1000) + "c0"),
      `parameters${".a".repeat(MAX_NESTING_DEPTH)}: nesting is deeper than the limit of 64 levels of arrays and objects`,
    );
  });

  it("throws only TaskDeserializationError on random and mutated bytes, and returns only allowed values", () => {
    // A fixed-seed generator keeps the test deterministic.
    let seed = 0x2545f491;
    const random = () => {
      seed ^= seed << 13;
      seed ^= seed >>> 17;
      seed ^= seed << 5;
      return (seed >>> 0) / 2 ** 32;
    };
    const valid = encodeParameters({
      title: "Activity created by background task",
      list: [1, -1, 300, 2n ** 40n, 0.5, null, true, "é", new Date(0), new Uint8Array([1, 2, 3])],
      nested: { a: { b: [{}, []] } },
    });
    // Bytes from msgpackr with all its extensions on, so mutations reach its extension readers.
    const extended = new Packr({ moreTypes: true, structuredClone: true, useRecords: true, bundleStrings: true }).pack({
      set: new Set([1, "a"]),
      re: /x+/gi,
      error: new TypeError("boom"),
      floats: new Float64Array([1.5]),
      big: 2n ** 70n,
      missing: undefined,
      records: [{ a: 1, b: "x" }, { a: 2, b: "y" }, { a: 3, b: "z" }],
      text: "a bundled string that is long enough to be bundled",
    });
    const seeds = [valid, extended];
    let decodedCount = 0;
    for (let round = 0; round < 30_000; round++) {
      let bytes: Uint8Array;
      if (round % 3 === 0) {
        bytes = new Uint8Array(1 + Math.floor(random() * 40));
        for (let i = 0; i < bytes.length; i++) bytes[i] = Math.floor(random() * 256);
      } else {
        bytes = Uint8Array.from(seeds[round % 3 - 1] as Uint8Array);
        const flips = 1 + Math.floor(random() * 3);
        for (let i = 0; i < flips; i++) bytes[Math.floor(random() * bytes.length)] = Math.floor(random() * 256);
      }
      let decoded: unknown;
      try {
        decoded = decodeParameters(bytes);
      } catch (error) {
        assert.ok(error instanceof TaskDeserializationError, `round ${round}: ${String(error)}`);
        continue;
      }
      decodedCount++;
      assertAllowed(decoded, bytes, `round ${round}`);
    }
    assert.ok(decodedCount > 0, "some mutations still decode");
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });

  it("leaves the input untouched, and returns bytes that are not views of it", () => {
    const input = Buffer.from(encodeParameters({ b: new Uint8Array([1, 2, 3]) }));
    const copy = Uint8Array.from(input);
    const decoded = decodeParameters(input) as { b: Uint8Array };
    assert.deepEqual(Reflect.ownKeys(input).filter((key) => typeof key !== "string" || !/^\d+$/.test(key)), []);
    decoded.b[0] = 99;
    assert.deepEqual(Uint8Array.from(input), copy);
    assert.notEqual(decoded.b.buffer, input.buffer);
  });

  it("keeps working after a rejection (no state leaks into the next call)", () => {
    assert.throws(() => decodeParameters(fromHex("91 91 91 c1")), TaskDeserializationError);
    assert.deepEqual(decodeParameters(fromHex("91 01")), [1]);
  });

  it("uses the given root name in paths", () => {
    assert.throws(() => decodeParameters(fromHex("c1 c1"), { rootName: "task 42" }), {
      name: "TaskDeserializationError",
      message: "task 42: 1 byte after the end of the value (at offset 1 of 2); the data is corrupt or is not one MessagePack value",
      path: "task 42",
    });
    assert.throws(() => decodeParameters(fromHex("81 a1 61 c1"), { rootName: "task 42" }), {
      name: "TaskDeserializationError",
      message: "task 42.a: invalid MessagePack data: the byte 0xc1 is never used",
      path: "task 42.a",
    });
  });
});
