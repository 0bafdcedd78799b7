// Uint8Array views read through the intrinsic TypedArray accessors, so that a subclass, a Buffer
// or an own property ("buffer", "byteLength", "constructor", "toJSON") cannot change what is read.

const typedArrayPrototype = Object.getPrototypeOf(Uint8Array.prototype) as object;

function intrinsicGetter<T>(name: string): (this: Uint8Array) => T {
  return Object.getOwnPropertyDescriptor(typedArrayPrototype, name)?.get as (this: Uint8Array) => T;
}

const getBuffer = intrinsicGetter<ArrayBufferLike>("buffer");
const getByteOffset = intrinsicGetter<number>("byteOffset");
const getByteLength = intrinsicGetter<number>("byteLength");

/**
 * A plain Uint8Array over the same bytes as `bytes` (which must be a real Uint8Array, e.g. checked
 * with util.types.isUint8Array). An empty array when it has no bytes, also when its buffer is
 * detached.
 */
export function plainView(bytes: Uint8Array): Uint8Array {
  const length = getByteLength.call(bytes);
  if (length === 0) return new Uint8Array(0);
  return new Uint8Array(getBuffer.call(bytes), getByteOffset.call(bytes), length);
}
