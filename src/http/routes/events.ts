import type { FastifyInstance } from "fastify";
import type { ServerResponse } from "node:http";
import type { Sessions } from "../../platform/users/sessions.ts";
import type { ChangeFeed } from "../change-feed.ts";
import { requestToken } from "./auth.ts";

const KEEPALIVE_MS = 20_000;
const SESSION_CHECK_MS = 5_000;

/**
 * Server-sent events: `tasks` and `activities` tell a page that its data changed; the page then
 * fetches what its user may see through the ordinary routes, so an event carries no data.
 */
export function eventRoutes(feed: ChangeFeed, sessions: Sessions, sessionCheckMs = SESSION_CHECK_MS) {
  return async (app: FastifyInstance): Promise<void> => {
    const open = new Set<ServerResponse>();
    // Open streams would keep the server from closing.
    app.addHook("preClose", async () => {
      for (const raw of open) raw.end();
      open.clear();
    });

    // No HEAD: a stream has no headers to give without its body, which never ends.
    app.get("/api/events", { exposeHeadRoute: false }, async (request, reply) => {
      const session = request.session;
      if (!session) return reply.code(401).send({ error: "sign in first" });
      const raw = reply.raw;
      reply.hijack();
      // Hijacked: the headers set by hooks (security headers) are written here by hand.
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(reply.getHeaders())) if (value !== undefined) headers[name] = String(value);
      raw.writeHead(200, {
        ...headers,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        connection: "keep-alive",
        "x-accel-buffering": "no",
      });
      raw.write("retry: 2000\n: connected\n\n");
      open.add(raw);
      const unsubscribe = feed.subscribe((topic) => raw.write(`event: ${topic}\ndata: {}\n\n`));
      const keepalive = setInterval(() => raw.write(": keepalive\n\n"), KEEPALIVE_MS);
      // The stream ends with the session (expired, signed out, its user deactivated, in this
      // process or another); the page reconnects and is told to sign in again.
      const expiry = setTimeout(() => raw.end(), Math.max(0, Math.min(session.expiresAt.getTime() - Date.now(), 2 ** 31 - 1)));
      const { token } = requestToken(request);
      const check = setInterval(() => {
        sessions.authenticate(token).then(
          (still) => {
            if (!still || still.user.id !== session.user.id) raw.end();
          },
          () => undefined, // the database is unavailable: the stream stays, the next check decides
        );
      }, sessionCheckMs);
      const close = (): void => {
        unsubscribe();
        clearInterval(keepalive);
        clearInterval(check);
        clearTimeout(expiry);
        open.delete(raw);
      };
      raw.on("close", close);
    });
  };
}
