/**
 * Limits of the parameter codec.
 *
 * DEFAULT_MAX_PARAMETER_BYTES: the largest encoded parameter value accepted by default (1 MiB).
 *   Parameters are stored in a database row and read on every claim, so they should stay small;
 *   pass ids and look the data up in the task. A caller may choose another limit per call.
 *
 * MAX_NESTING_DEPTH: the deepest nesting of arrays and objects, counting the outermost container
 *   as level 1. `{ a: [1] }` is 2 levels deep; a plain number is 0. Encoding and decoding enforce
 *   the same limit, so whatever encodes also decodes, and hostile bytes cannot exhaust the stack.
 */
export const DEFAULT_MAX_PARAMETER_BYTES: number = 1_048_576;
export const MAX_NESTING_DEPTH: number = 64;

/** The root name used in error paths when the caller gives none. */
export const DEFAULT_ROOT_NAME = "parameters";
