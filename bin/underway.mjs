#!/usr/bin/env node
// The `underway` command. TypeScript sources run through tsx's loader, registered as
// `node --import tsx` registers it: its import hooks and its require hooks (a TypeScript task
// module outside any package of type "module" is loaded through the latter).
import "tsx";

const { main } = await import("../src/cli/main.ts");
await main(process.argv);
