import type { FastifyInstance } from "fastify";
import { existsSync, statSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { extname, join, normalize, sep } from "node:path";

const TYPES: Record<string, string> = {
  ".html": "text/html; charset=utf-8",
  ".js": "text/javascript; charset=utf-8",
  ".css": "text/css; charset=utf-8",
  ".svg": "image/svg+xml",
  ".png": "image/png",
  ".woff": "font/woff",
  ".woff2": "font/woff2",
  ".ttf": "font/ttf",
  ".eot": "application/vnd.ms-fontobject",
  ".json": "application/json",
  ".ico": "image/x-icon",
};

function isFile(path: string): boolean {
  try {
    return statSync(path).isFile();
  } catch {
    return false;
  }
}

/**
 * Serves the built browser application from `root`: files under /assets/ (their names carry a
 * content hash, so they are cached for good) and index.html for every other page path.
 */
export function staticAssets(root: string) {
  return async (app: FastifyInstance): Promise<void> => {
    const index = join(root, "index.html");
    app.get("/*", async (request, reply) => {
      let path: string;
      try {
        path = decodeURIComponent((request.url.split("?")[0] ?? "/").replace(/^\/+/, ""));
      } catch {
        return reply.code(400).send({ error: "the path is not valid percent-encoding" });
      }
      if (path.startsWith("api/")) {
        // A path too long for any route's parameters ends here too: it is not echoed whole.
        const shown = request.url.length > 120 ? `${request.url.slice(0, 120)}…` : request.url;
        return reply.code(404).send({ error: `no route ${request.method} ${shown}` });
      }
      if (!existsSync(index)) {
        return reply.code(503).type("text/plain; charset=utf-8").send("The web application is not built: run `npm run build:web` (npm start builds it).");
      }
      // Only regular files under assets/ once the path is normalized: `assets/../.env` is not
      // an asset, and neither is the folder itself.
      const file = normalize(join(root, path));
      const asset = file.startsWith(join(root, "assets") + sep) && isFile(file);
      if (asset) {
        reply.header("cache-control", "public, max-age=31536000, immutable");
        return reply.type(TYPES[extname(file)] ?? "application/octet-stream").send(await readFile(file));
      }
      if (path.startsWith("assets/")) return reply.code(404).send({ error: "no such asset" });
      reply.header("cache-control", "no-cache");
      return reply.type(TYPES[".html"] as string).send(await readFile(index));
    });
  };
}
