// Module resolution hooks of a task thread booted from the bundle (thread-bundle.ts): a module
// that is not in the bundle (a task module the thread learned of later) and imports a module that
// is (one of underway's sources, say) gets the bundle's copy, the one the thread runs, instead of
// a second copy.
let built = "";
let modules = new Set();

export function initialize(data) {
  built = data.built;
  modules = new Set(data.modules);
}

export async function resolve(specifier, context, nextResolve) {
  const resolved = await nextResolve(specifier, context);
  if (!modules.has(resolved.url)) return resolved;
  const path = new URL(resolved.url).pathname.slice(1).replace(/\.[cm]?[jt]sx?$/, "");
  return { url: `${built}${path}.js`, format: "module", shortCircuit: true };
}
