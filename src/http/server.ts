import cookie from "@fastify/cookie";
import helmet from "@fastify/helmet";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Platform } from "../platform/platform.ts";
import type { Session } from "../platform/users/sessions.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { activityRoutes } from "./routes/activities.ts";
import { authRoutes, SESSION_COOKIE } from "./routes/auth.ts";
import { packageRoutes } from "./routes/packages.ts";
import { processRoutes } from "./routes/processes.ts";

export interface HttpServerOptions {
  readonly runtime: Runtime;
  /** The platform slice; without it only /healthz is served. */
  readonly platform?: Platform;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The signed-in session, set for every /api route but sign-in. */
    session: Session | null;
  }
}

/** Routes that need no session. */
const PUBLIC = new Set(["/api/auth/login"]);

/** The HTTP server of `underway start`. */
export async function createHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const { runtime, platform } = options;
  const app = Fastify({ logger: false, bodyLimit: 2 * 1024 * 1024 });
  await app.register(helmet, { contentSecurityPolicy: { directives: { defaultSrc: ["'self'"] } } });
  await app.register(cookie);
  app.decorateRequest("session", null);
  // Set before any route plugin, which inherits it.
  app.setErrorHandler((error: Error & { statusCode?: number; validation?: unknown }, _request, reply) => {
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) runtime.logger.error({ err: error }, "request failed");
    return reply.code(status).send({ error: status === 500 ? "internal error" : error.message });
  });


  app.get("/healthz", async (_request, reply) => {
    try {
      await runtime.driver.ping();
      return { status: "ok", store: runtime.driver.dialect, worker: runtime.worker ? { id: runtime.worker.id, active: runtime.worker.activeCount } : null };
    } catch (error) {
      return reply.code(503).send({ status: "unavailable", error: (error as Error).message });
    }
  });

  if (platform) {
    app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
      const path = request.url.split("?")[0] ?? "";
      if (!path.startsWith("/api/") || PUBLIC.has(path)) return;
      const header = request.headers.authorization;
      const bearer = header?.startsWith("Bearer ") ? header.slice(7).trim() : undefined;
      const token = bearer ?? request.cookies[SESSION_COOKIE];
      const session = token ? await platform.sessions.authenticate(token) : null;
      if (!session) return reply.code(401).send({ error: "sign in first: POST /api/auth/login" });
      // A browser sends the cookie by itself, so a cookie-authenticated write must also prove it
      // comes from our page: the CSRF token given at sign-in, in a header.
      if (!bearer && !["GET", "HEAD", "OPTIONS"].includes(request.method) && request.headers["x-csrf-token"] !== session.csrfToken) {
        return reply.code(403).send({ error: "missing or wrong X-CSRF-Token header" });
      }
      request.session = session;
    });
    // The signed-in user is ambient for the rest of the request: tasks started with a user
    // connection while handling it run as that user.
    app.addHook("onRequest", (request: FastifyRequest, _reply: FastifyReply, done: () => void) => {
      const user = request.session?.user;
      if (!user) return done();
      platform.runAs(user, done);
    });
    await app.register(authRoutes(platform));
    await app.register(activityRoutes(platform));
    await app.register(processRoutes(platform));
    await app.register(packageRoutes(platform));
  }

  return app;
}
