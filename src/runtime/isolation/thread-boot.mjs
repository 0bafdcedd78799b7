// The entry of an isolated task's worker thread. The sources are TypeScript, run through tsx's
// loader, which a worker thread does not inherit from its process: register it here first.
import { register } from "tsx/esm/api";

register();
await import("./thread-main.ts");
