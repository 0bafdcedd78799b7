import type { FastifyInstance, FastifyRequest } from "fastify";
import type { Platform } from "../../platform/platform.ts";
import { SignInThrottledError } from "../../platform/users/sign-in-limits.ts";

export const SESSION_COOKIE = "underway_session";

/** The session token a request carries: its bearer token, else its session cookie. */
export function requestToken(request: FastifyRequest): { token: string | undefined; bearer: boolean } {
  const header = request.headers.authorization;
  const bearer = header?.startsWith("Bearer ") ? header.slice(7).trim() : undefined;
  return bearer !== undefined ? { token: bearer, bearer: true } : { token: request.cookies[SESSION_COOKIE], bearer: false };
}

function userView(user: { id: string; name: string; contactId: string; contactName: string; culture: string; timeZone: string; isAdmin: boolean }) {
  return {
    id: user.id,
    name: user.name,
    contactId: user.contactId,
    contactName: user.contactName,
    culture: user.culture,
    timeZone: user.timeZone,
    isAdmin: user.isAdmin,
  };
}

/** Sign-in, sign-out and the current user. */
export function authRoutes(platform: Platform) {
  return async (app: FastifyInstance): Promise<void> => {
    app.post(
      "/api/auth/login",
      {
        schema: {
          body: {
            type: "object",
            required: ["login", "password"],
            additionalProperties: false,
            properties: { login: { type: "string", minLength: 1, maxLength: 250 }, password: { type: "string", minLength: 1, maxLength: 1024 } },
          },
        },
      },
      async (request, reply) => {
        const { login, password } = request.body as { login: string; password: string };
        let session;
        try {
          session = await platform.sessions.signIn(login, password, request.ip);
        } catch (error) {
          if (!(error instanceof SignInThrottledError)) throw error;
          reply.header("retry-after", String(Math.ceil(error.retryAfterMs / 1000)));
          return reply.code(429).send({ error: error.message });
        }
        if (!session) return reply.code(401).send({ error: "wrong login or password" });
        reply.setCookie(SESSION_COOKIE, session.token, {
          httpOnly: true,
          sameSite: "lax",
          path: "/",
          secure: request.protocol === "https",
          expires: session.expiresAt,
        });
        return { token: session.token, csrfToken: session.csrfToken, expiresAt: session.expiresAt.toISOString(), user: userView(session.user) };
      },
    );

    app.post("/api/auth/logout", async (request, reply) => {
      await platform.sessions.signOut(requestToken(request).token);
      reply.clearCookie(SESSION_COOKIE, { path: "/" });
      return reply.code(204).send();
    });

    app.get("/api/auth/me", async (request) => {
      const session = request.session;
      return { user: session ? userView(session.user) : null, csrfToken: session?.csrfToken ?? null };
    });
  };
}
