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

/** `512 bytes`, `3.5 KiB`, `1.2 MiB`: sizes for messages, one decimal, no trailing `.0`. */
export function formatSize(bytes: number): string {
  if (bytes < 1024) return `${bytes} bytes`;
  const [value, unit] = bytes < 1_048_576 ? [bytes / 1024, "KiB"] : [bytes / 1_048_576, "MiB"];
  return `${Number(value.toFixed(1))} ${unit}`;
}
