// Paths in error messages: `parameters.owner.name`, `parameters.items[3]`, `parameters["odd key"]`.
// Built only when an error is reported; the hot path just records one segment per level.

export type PathSegment = string | number | symbol;

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

export function formatSegment(segment: PathSegment): string {
  if (typeof segment === "number") return `[${segment}]`;
  if (typeof segment === "symbol") return `[${segment.toString()}]`;
  return IDENTIFIER.test(segment) ? `.${segment}` : `[${JSON.stringify(segment)}]`;
}

export function formatPath(root: string, segments: readonly PathSegment[], count: number): string {
  let path = root;
  for (let i = 0; i < count; i++) path += formatSegment(segments[i] as PathSegment);
  return path;
}

/** `1 byte`, `2 bytes`. */
export function byteCount(count: number): string {
  return count === 1 ? "1 byte" : `${count} bytes`;
}

/** `512 bytes`, `3.5 KiB`, `1.2 MiB`: sizes for messages, one decimal, no trailing `.0`. */
export function formatSize(size: number): string {
  if (size < 1024) return byteCount(size);
  const [value, unit] = size < 1_048_576 ? [size / 1024, "KiB"] : [size / 1_048_576, "MiB"];
  return `${Number(value.toFixed(1))} ${unit}`;
}
