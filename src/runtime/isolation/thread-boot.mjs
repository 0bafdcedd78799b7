// The entry of an isolated task's worker thread when it boots from the sources (where the
// bundle of thread-bundle.ts cannot be had). The sources are TypeScript, run through tsx's
// loader, which a worker thread does not inherit from its process: register it here first.
import { register } from "tsx/esm/api";

register();
globalThis[Symbol.for("underway.typescriptLoader")] = true;
await import("./thread-main.ts");
