import cookie from "@fastify/cookie";
import helmet from "@fastify/helmet";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import type { Platform } from "../platform/platform.ts";
import type { Session } from "../platform/users/sessions.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { ChangeFeed } from "./change-feed.ts";
import { activityRoutes } from "./routes/activities.ts";
import { authRoutes, SESSION_COOKIE } from "./routes/auth.ts";
import { eventRoutes } from "./routes/events.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { packageRoutes } from "./routes/packages.ts";
import { processRoutes } from "./routes/processes.ts";
import { taskRoutes } from "./routes/tasks.ts";
import { staticAssets } from "./static-assets.ts";
import { WEB_DIST } from "./web-assets.ts";

export interface HttpServerOptions {
  readonly runtime: Runtime;
  /** The platform slice; without it only /healthz is served. */
  readonly platform?: Platform;
  /** The built browser application served at /, or false for none. Default web-dist/. */
  readonly webRoot?: string | false;
  /** How often the change feed of live pages looks at the database, ms. Default 500. */
  readonly changeFeedIntervalMs?: number;
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
  await app.register(helmet, {
    contentSecurityPolicy: {
      directives: {
        defaultSrc: ["'self'"],
        scriptSrc: ["'self'"],
        connectSrc: ["'self'"],
        // The code editor and the diagram modeler set styles from script; no inline script runs.
        styleSrc: ["'self'", "'unsafe-inline'"],
        imgSrc: ["'self'", "data:"],
        fontSrc: ["'self'", "data:"],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        baseUri: ["'self'"],
        formAction: ["'self'"],
        // Not helmet's default: on plain http (a server on the LAN) it would send the page's
        // own assets to https, where nothing answers. Put TLS in front to get https.
        upgradeInsecureRequests: null,
      },
    },
    referrerPolicy: { policy: "same-origin" },
  });
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

  await app.register(metricsRoutes(runtime));

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
    await app.register(taskRoutes(platform));
    const feed = new ChangeFeed(platform, options.changeFeedIntervalMs);
    app.addHook("onClose", () => feed.stop());
    await app.register(eventRoutes(feed));
  }
  const webRoot = options.webRoot ?? WEB_DIST;
  if (webRoot !== false) await app.register(staticAssets(webRoot));

  return app;
}
