// The entry of the thread that checks a package's code at Publish (load-check.ts). The loader and
// the platform API are TypeScript, run through tsx's loader, which a worker thread does not
// inherit from its process (see worker/isolation/exec-argv.ts): register it here first, as
// runtime/isolation/thread-boot.mjs does for the task threads.
import "tsx/cjs";
import { register } from "tsx/esm/api";

register();
await import("./load-check-thread.ts");
