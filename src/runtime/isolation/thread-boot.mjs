// The entry of an isolated task's worker thread when it boots from the sources (where the
// bundle of thread-bundle.ts cannot be had). The sources are TypeScript, run through tsx's
// loader, which a worker thread does not inherit from its process (see
// worker/isolation/exec-argv.ts): register it here first, as `node --import tsx` does (its
// require hooks, then its import hooks).
import "tsx/cjs";
import { register } from "tsx/esm/api";

register();
globalThis[Symbol.for("underway.typescriptLoader")] = Promise.resolve();
await import("./thread-main.ts");
