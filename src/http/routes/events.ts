import type { FastifyInstance } from "fastify";
import { createHash } from "node:crypto";
import type { ServerResponse } from "node:http";
import type { Sessions } from "../../platform/users/sessions.ts";
import type { ChangeFeed } from "../change-feed.ts";
import { requestToken } from "./auth.ts";

const KEEPALIVE_MS = 20_000;
const SESSION_CHECK_MS = 5_000;
/**
 * Live streams one session may hold. A hidden tab closes its stream, and a browser opens at most
 * six connections to a server, so a page never needs more; a script holding a thousand would
 * cost a thousand sockets and 200 session checks a second.
 */
const MAX_STREAMS_PER_SESSION = 8;

/**
 * Server-sent events: `tasks` and `activities` tell a page that its data changed; the page then
 * fetches what its user may see through the ordinary routes, so an event carries no data.
 */
export function eventRoutes(feed: ChangeFeed, sessions: Sessions, sessionCheckMs = SESSION_CHECK_MS) {
  return async (app: FastifyInstance): Promise<void> => {
    const open = new Set<ServerResponse>();
    /** Open streams per session: each costs a socket and a session check every few seconds. */
    const perSession = new Map<string, number>();
    // Open streams would keep the server from closing.
    app.addHook("preClose", async () => {
      for (const raw of open) raw.end();
      open.clear();
    });

    // No HEAD: a stream has no headers to give without its body, which never ends.
    app.get("/api/events", { exposeHeadRoute: false }, async (request, reply) => {
      const session = request.session;
      if (!session) return reply.code(401).send({ error: "sign in first" });
      // Gone while its session was looked up: nothing to stream to, and no "close" would come
      // to undo a subscription made now.
      if (request.raw.destroyed || reply.raw.destroyed) return reply.hijack();
      const { token } = requestToken(request);
      const key = streamKey(token);
      const held = perSession.get(key) ?? 0;
      if (held >= MAX_STREAMS_PER_SESSION) {
        return reply.code(429).send({ error: `this session already has ${held} live streams open, the most it may: close other tabs of the application` });
      }
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
      perSession.set(key, held + 1);
      let closed = false;
      /** Undoes the stream's subscription and timers, once, however it ends. */
      const close = (): void => {
        if (closed) return;
        closed = true;
        unsubscribe();
        clearInterval(keepalive);
        clearInterval(check);
        clearTimeout(expiry);
        open.delete(raw);
        const left = (perSession.get(key) ?? 1) - 1;
        if (left > 0) perSession.set(key, left);
        else perSession.delete(key);
      };
      /** Ends the stream from this side; the page reconnects and is told to sign in again. */
      const end = (): void => {
        raw.end();
        close();
      };
      raw.on("close", close);
      const unsubscribe = feed.subscribe((topic) => raw.write(`event: ${topic}\ndata: {}\n\n`));
      const keepalive = setInterval(() => raw.write(": keepalive\n\n"), KEEPALIVE_MS);
      // The stream ends with the session (expired, signed out, its user deactivated, in this
      // process or another).
      const expiry = setTimeout(end, Math.max(0, Math.min(session.expiresAt.getTime() - Date.now(), 2 ** 31 - 1)));
      const check = setInterval(() => {
        sessions.authenticate(token).then(
          (still) => {
            if (!still || still.user.id !== session.user.id) end();
          },
          () => undefined, // the database is unavailable: the stream stays, the next check decides
        );
      }, sessionCheckMs);
    });
  };
}

/** Streams are counted per session by a hash of its token, never the token itself. */
function streamKey(token: string | undefined): string {
  return createHash("sha256").update(token ?? "").digest("hex");
}
