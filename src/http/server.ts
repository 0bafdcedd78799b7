import cookie from "@fastify/cookie";
import helmet from "@fastify/helmet";
import { isIP } from "node:net";
import { Ajv, type AnySchema, type ErrorObject, type ValidateFunction } from "ajv";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest, type FastifySchemaCompiler } from "fastify";
import type { Platform } from "../platform/platform.ts";
import type { Session } from "../platform/users/sessions.ts";
import type { Runtime } from "../runtime/runtime.ts";
import { ChangeFeed } from "./change-feed.ts";
import { activityRoutes } from "./routes/activities.ts";
import { authRoutes, requestToken } from "./routes/auth.ts";
import { eventRoutes } from "./routes/events.ts";
import { metricsRoutes } from "./routes/metrics.ts";
import { packageRoutes } from "./routes/packages.ts";
import { processRoutes } from "./routes/processes.ts";
import { taskRoutes } from "./routes/tasks.ts";
import { staticAssets } from "./static-assets.ts";
import { WEB_DIST } from "./web-assets.ts";
import { isStorableText } from "../tasks/error-info.ts";
import { STORE_CHECK_LIMIT_MS, withinMs } from "../observability/time-limit.ts";

export interface HttpServerOptions {
  readonly runtime: Runtime;
  /** The platform slice; without it only /healthz is served. */
  readonly platform?: Platform;
  /** The built browser application served at /, or false for none. Default web-dist/. */
  readonly webRoot?: string | false;
  /** How often the change feed of live pages looks at the database, ms. Default 500. */
  readonly changeFeedIntervalMs?: number;
  /** How often an open event stream checks that its session still holds (signed out, user deactivated), ms. Default 5,000. */
  readonly sessionCheckMs?: number;
  /**
   * Which proxies in front of the server to believe about the client's address (X-Forwarded-For),
   * as Fastify's `trustProxy`: true (any), a number of hops, or a list of addresses and CIDR
   * ranges. Failed sign-ins are counted per client address, so behind a proxy set this, or every
   * client shares the proxy's count. Default: none (the connection's own address).
   */
  readonly trustProxy?: boolean | number | readonly string[];
}

/**
 * Reads a trust-proxy setting as the CLI and environment give it: "true", "false", a number of
 * hops, or comma-separated addresses and CIDR ranges.
 */
export function parseTrustProxy(text: string): boolean | number | string[] {
  const value = text.trim();
  if (value === "true") return true;
  if (value === "false" || value === "") return false;
  if (/^\d+$/.test(value)) {
    const hops = Number(value);
    if (hops > 100) throw new RangeError(`trust proxy: at most 100 hops, got ${value}`);
    return hops;
  }
  const entries = value.split(",").map((entry) => entry.trim());
  for (const entry of entries) {
    const [address, bits, ...rest] = entry.split("/");
    const family = isIP(address ?? "");
    const maxBits = family === 6 ? 128 : 32;
    if (family === 0 || rest.length > 0 || (bits !== undefined && (!/^\d{1,3}$/.test(bits) || Number(bits) > maxBits))) {
      throw new RangeError(`trust proxy: ${JSON.stringify(entry)} is not an IP address or CIDR range (expected true, a number of hops, or addresses such as 10.0.0.0/8,::1)`);
    }
  }
  return entries;
}

declare module "fastify" {
  interface FastifyRequest {
    /** The signed-in session, set for every /api route but sign-in. */
    session: Session | null;
  }
}

/** Routes that need no session. */
const PUBLIC = new Set(["/api/auth/login"]);

/** A request's path, percent-decoded (as sent when it does not decode). */
function decodedPath(url: string): string {
  const path = url.split("?")[0] ?? "";
  try {
    return decodeURIComponent(path);
  } catch {
    return path;
  }
}

/**
 * Where a request's parsed part holds text no store keeps as sent, a NUL character or a lone
 * surrogate, in a value or a key (`body/items/0/name`), and which; null when nowhere.
 */
function unstorableIn(value: unknown, path: string, depth = 0): { at: string; what: string } | null {
  if (typeof value === "string") return !isStorableText(value) ? { at: path, what: unstorableKind(value) } : null;
  if (typeof value !== "object" || value === null || depth > 64) return null;
  for (const [key, item] of Object.entries(value)) {
    const at = `${path}/${JSON.stringify(key).slice(1, -1)}`;
    if (!isStorableText(key)) return { at, what: unstorableKind(key) };
    const found = unstorableIn(item, at, depth + 1);
    if (found) return found;
  }
  return null;
}

function unstorableKind(text: string): string {
  return text.includes("\u0000") ? "a NUL character (U+0000)" : "a lone surrogate (half of a UTF-16 pair without the other)";
}

/**
 * Request validators that refuse what they do not expect, where Fastify's defaults would bend it:
 * a field or parameter no schema names is a 400 naming it (by default it is dropped, so a
 * misspelt filter lists everything and a misspelt field runs with defaults); a JSON body is taken
 * as sent (by default `null` becomes `""` and `"1"` becomes 1); and a number in the query string
 * or the path must be written in decimal digits (by default "0x10", "1e3" and " 1" are numbers).
 */
function strictValidators(): FastifySchemaCompiler<unknown> {
  const common = { useDefaults: true, removeAdditional: false, allErrors: false } as const;
  const bodies = new Ajv({ ...common, coerceTypes: false });
  // Query strings and paths are text: their numbers and booleans are read from it.
  const texts = new Ajv({ ...common, coerceTypes: "array" });
  return ({ schema, httpPart }) => {
    const validate = (httpPart === "body" ? bodies : texts).compile<unknown>(schema as AnySchema) as ValidateFunction<unknown> &
      ((data: unknown) => boolean);
    const numeric = httpPart === "body" ? new Map<string, boolean>() : numericProperties(schema);
    const checked = (data: unknown): boolean => {
      if (typeof data === "object" && data !== null) {
        for (const [key, integer] of numeric) {
          const value = (data as Record<string, unknown>)[key];
          if (typeof value === "string" && !(integer ? DECIMAL_INTEGER : DECIMAL_NUMBER).test(value)) {
            checked.errors = [
              { instancePath: `/${key}`, schemaPath: `#/properties/${key}/type`, keyword: "type", params: {}, message: `must be ${integer ? "an integer" : "a number"} written in decimal digits` },
            ];
            return false;
          }
        }
      }
      const valid = validate(data);
      checked.errors = validate.errors?.map(namingTheProperty) ?? null;
      return valid;
    };
    checked.errors = null as ErrorObject[] | null;
    return checked;
  };
}

/** Ajv says "must NOT have additional properties"; the answer names the one it found. */
function namingTheProperty(error: ErrorObject): ErrorObject {
  if (error.keyword !== "additionalProperties") return error;
  const name = (error.params as { additionalProperty?: unknown }).additionalProperty;
  return { ...error, message: `must not have the property ${JSON.stringify(name)}: there is no such field` };
}

const DECIMAL_INTEGER = /^-?(0|[1-9][0-9]*)$/;
const DECIMAL_NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?$/;

/** The properties of an object schema typed integer (true) or number (false). */
function numericProperties(schema: unknown): Map<string, boolean> {
  const found = new Map<string, boolean>();
  const properties = (schema as { properties?: Record<string, { type?: unknown }> } | null)?.properties;
  if (!properties) return found;
  for (const [key, property] of Object.entries(properties)) {
    if (property.type === "integer") found.set(key, true);
    else if (property.type === "number") found.set(key, false);
  }
  return found;
}

/** The longest part of a path the router reads (Fastify's default). */
const MAX_PARAM_LENGTH = 100;

/** The HTTP server of `underway start`. */
export async function createHttpServer(options: HttpServerOptions): Promise<FastifyInstance> {
  const { runtime, platform } = options;
  const trustProxy = options.trustProxy;
  const app = Fastify({
    logger: false,
    bodyLimit: 2 * 1024 * 1024,
    // The router's own refusals, as `{ error }` like every other (Fastify's would be
    // `{ error: "Bad Request", message }`, the message echoing the whole path).
    frameworkErrors: (error, _request, routerReply) => {
      const reply = routerReply as unknown as FastifyReply;
      const { code } = error as Error & { code?: string };
      if (code === "FST_ERR_BAD_URL") return reply.code(400).send({ error: "the path is not valid: it has a malformed percent-encoding" });
      if (code === "FST_ERR_MAX_PARAM_LENGTH") return reply.code(414).send({ error: `a part of the path is longer than ${MAX_PARAM_LENGTH} characters` });
      runtime.logger.error({ err: error }, "request failed");
      return reply.code(500).send({ error: "internal error" });
    },
    routerOptions: { maxParamLength: MAX_PARAM_LENGTH },
    trustProxy:
      typeof trustProxy === "number"
        ? (_address: string, hop: number) => hop < trustProxy // the nearest `trustProxy` hops
        : Array.isArray(trustProxy)
          ? [...(trustProxy as readonly string[])]
          : ((trustProxy as boolean | undefined) ?? false),
  });
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
  // Set before any route plugin, which inherits it (see strictValidators).
  app.setValidatorCompiler(strictValidators());
  // Set before any route plugin, which inherits it.
  app.setErrorHandler((error: Error & { statusCode?: number; validation?: unknown; serverSetting?: unknown }, _request, reply) => {
    // A setting the server lacks (its secret): the operator's to mend, and the message says how.
    if (error.serverSetting === true) {
      runtime.logger.warn({ err: error }, "request refused: the server lacks a setting");
      return reply.code(503).send({ error: error.message });
    }
    const status = error.statusCode && error.statusCode >= 400 && error.statusCode < 500 ? error.statusCode : 500;
    if (status === 500) runtime.logger.error({ err: error }, "request failed");
    return reply.code(status).send({ error: status === 500 ? "internal error" : error.message });
  });


  // No text the API stores or looks up may hold a NUL character or a lone surrogate: PostgreSQL's
  // text refuses the one and changes the other, and a login, a filter or a name with one is a
  // mistake or a probe. Refused as a bad request, before any route's own checks run.
  app.addHook("preValidation", async (request, reply) => {
    const found = unstorableIn(request.params, "params") ?? unstorableIn(request.query, "querystring") ?? unstorableIn(request.body, "body");
    if (found) return reply.code(400).send({ error: `${found.at} must not contain ${found.what}` });
  });

  app.get("/healthz", async (_request, reply) => {
    try {
      await withinMs(runtime.driver.ping(), STORE_CHECK_LIMIT_MS, "the store");
      return { status: "ok", store: runtime.driver.dialect, worker: runtime.worker ? { id: runtime.worker.id, active: runtime.worker.activeCount } : null };
    } catch (error) {
      // The reason goes to the log: a driver's message can name the database's address, and
      // this answer goes to whoever can reach the port.
      runtime.logger.warn({ err: error }, "health check: the store does not answer");
      return reply.code(503).send({ status: "unavailable", error: "the store does not answer; the server's log says why" });
    }
  });

  await app.register(metricsRoutes(runtime));

  if (platform) {
    app.addHook("onRequest", async (request: FastifyRequest, reply: FastifyReply) => {
      // By the route the request matched as well as by its path decoded: the router decodes the
      // path, so `/%61pi/...` is served by the `/api/...` routes.
      const route = request.routeOptions.url ?? "";
      if (!(route.startsWith("/api/") || decodedPath(request.url).startsWith("/api/")) || PUBLIC.has(route)) return;
      const { token, bearer } = requestToken(request);
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
    await app.register(eventRoutes(feed, platform.sessions, options.sessionCheckMs));
  }
  // Any other method and path: `{ error }` like every other answer (Fastify's own 404 has another
  // shape and echoes the whole path).
  app.setNotFoundHandler((request, reply) => {
    const shown = request.url.length > 120 ? `${request.url.slice(0, 120)}…` : request.url;
    return reply.code(404).send({ error: `no route ${request.method} ${shown}` });
  });

  const webRoot = options.webRoot ?? WEB_DIST;
  if (webRoot !== false) await app.register(staticAssets(webRoot));

  return app;
}
