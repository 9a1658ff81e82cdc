/**
 * Dashboard login: `POST /v1/auth/login` (scrypt password check, per-address rate limit, per-account
 * lock-out) sets the `__Host-pos_session` cookie (HttpOnly, Secure, SameSite=Strict, Path=/) and
 * returns the session's CSRF token; `POST /v1/auth/logout` ends the session; `GET /v1/auth/me` says
 * who the caller is (token or session) and what it may do.
 */
import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { newId, type Ctx } from '../context';
import { ServiceError } from '../http-errors';
import { dummyHash, verifyPassword } from './passwords';
import {
  ALL_PERMISSIONS,
  authenticate,
  CSRF_PREFIX,
  hasPermission,
  newSecret,
  SESSION_COOKIE,
  SESSION_PREFIX,
  sha256Hex,
} from './principal';

const Security = [{ operatorToken: [] }, { sessionCookie: [] }];
const Role = z.enum(['admin', 'operator', 'auditor', 'merchant']);
const UserOut = z.object({
  userId: z.string(),
  username: z.string(),
  role: Role,
  merchantId: z.string().nullable(),
});

export function sessionCookie(value: string, maxAgeS: number): string {
  return `${SESSION_COOKIE}=${value}; Path=/; Max-Age=${maxAgeS}; HttpOnly; Secure; SameSite=Strict`;
}

function clearCookie(reply: FastifyReply): void {
  void reply.header('set-cookie', sessionCookie('', 0));
}

export function registerAuthRoutes(appIn: FastifyInstance, ctx: Ctx): void {
  const app = appIn.withTypeProvider<ZodTypeProvider>();

  app.post(
    '/v1/auth/login',
    {
      bodyLimit: 4 * 1024,
      schema: {
        tags: ['auth'],
        summary: 'Dashboard login: sets the session cookie and returns its CSRF token',
        body: z.strictObject({
          username: z.string().min(1).max(64),
          password: z.string().min(1).max(1024),
        }),
        response: {
          200: z.object({ csrfToken: z.string(), expiresAt: z.number().int(), user: UserOut }),
        },
      },
    },
    async (request, reply) => {
      const cfg = ctx.config.auth;
      const now = ctx.clock.now();
      // Per client address, in the store (every process shares the count).
      const attempts = await ctx.store.velocityHit(
        `auth:login:ip:${request.ip}`,
        now,
        cfg.loginWindowS * 1000,
      );
      if (attempts > cfg.loginAttemptsPerIp) {
        if (attempts === cfg.loginAttemptsPerIp + 1) {
          await ctx.audit(`ip:${request.ip}`, 'auth.login.rate-limited', 'auth', { attempts });
        }
        throw new ServiceError(429, 'POS_ERR_LOGIN_RATE_LIMITED');
      }
      const username = request.body.username.toLowerCase();
      const user = await ctx.store.findOperatorByUsername(username);
      // Always one scrypt, against a dummy hash for an unknown user: the time tells nothing.
      const passwordOk = await verifyPassword(
        request.body.password,
        user?.passwordHash ?? (await dummyHash(cfg.scryptN)),
      );
      const fail = (): ServiceError => new ServiceError(401, 'POS_ERR_LOGIN_FAILED');
      if (user === undefined) {
        await ctx.audit(`ip:${request.ip}`, 'auth.login.failed', 'unknown-user', { reason: 'unknown-user' });
        throw fail();
      }
      const subject = `operator:${user.id}`;
      if (user.disabledAt !== null) {
        await ctx.audit(`ip:${request.ip}`, 'auth.login.failed', subject, { reason: 'disabled' });
        throw fail();
      }
      if (user.lockedUntil !== null && now < user.lockedUntil) {
        await ctx.audit(`ip:${request.ip}`, 'auth.login.failed', subject, { reason: 'locked' });
        throw fail();
      }
      if (!passwordOk) {
        const after = await ctx.store.registerLoginFailure(
          user.id,
          now,
          cfg.maxLoginFailures,
          cfg.lockoutS * 1000,
        );
        if (after?.lockedUntil !== null && after?.lockedUntil !== undefined && now < after.lockedUntil) {
          await ctx.audit(`ip:${request.ip}`, 'auth.lockout', subject, {
            failures: cfg.maxLoginFailures,
            lockedUntil: after.lockedUntil,
          });
        } else {
          await ctx.audit(`ip:${request.ip}`, 'auth.login.failed', subject, {
            reason: 'password',
            failures: after?.failedLogins ?? null,
          });
        }
        throw fail();
      }
      if (user.failedLogins !== 0 || user.lockedUntil !== null) await ctx.store.resetLoginFailures(user.id);
      const token = newSecret(SESSION_PREFIX);
      const csrfToken = newSecret(CSRF_PREFIX);
      const sessionId = newId('ses');
      const expiresAt = now + cfg.sessionTtlS * 1000;
      await ctx.store.createSession({
        id: sessionId,
        tokenHash: sha256Hex(token),
        csrfHash: sha256Hex(csrfToken),
        operatorId: user.id,
        createdAt: now,
        expiresAt,
        revokedAt: null,
      });
      await ctx.audit(subject, 'auth.login', sessionId, { ip: request.ip, expiresAt });
      void reply.header('set-cookie', sessionCookie(token, cfg.sessionTtlS));
      void reply.header('cache-control', 'no-store');
      return {
        csrfToken,
        expiresAt,
        user: { userId: user.id, username: user.username, role: user.role, merchantId: user.merchantId },
      };
    },
  );

  app.post(
    '/v1/auth/logout',
    {
      bodyLimit: 1024,
      schema: {
        tags: ['auth'],
        summary: 'End the dashboard session (needs the CSRF token) and clear its cookie',
        security: Security,
        body: z.strictObject({}).optional(),
        response: { 200: z.object({ loggedOut: z.literal(true) }) },
      },
    },
    async (request, reply) => {
      const who = await authenticate(ctx, request);
      if (who.session === undefined) {
        throw new ServiceError(
          400,
          'POS_ERR_REQUEST_INVALID',
          'logout ends a dashboard session; an API token is revoked with DELETE /v1/tokens/:tokenId',
        );
      }
      await ctx.store.revokeSession(who.session.id, ctx.clock.now());
      await ctx.audit(who.principal.actor, 'auth.logout', who.session.id, {});
      clearCookie(reply);
      return { loggedOut: true as const };
    },
  );

  app.get(
    '/v1/auth/me',
    {
      schema: {
        tags: ['auth'],
        summary: 'Who the caller is (API token or dashboard session), its scope and permissions',
        security: Security,
        response: {
          200: z.object({
            actor: z.string(),
            via: z.enum(['token', 'session']),
            role: Role,
            merchantId: z.string().nullable(),
            username: z.string().optional(),
            expiresAt: z.number().int().nullable(),
            permissions: z.array(z.string()),
          }),
        },
      },
    },
    async (request) => {
      const who = await authenticate(ctx, request);
      return {
        actor: who.principal.actor,
        via: who.via,
        role: who.principal.role,
        merchantId: who.principal.merchantId,
        ...(who.session === undefined ? {} : { username: who.session.username }),
        expiresAt: who.session?.expiresAt ?? who.tokenExpiresAt ?? null,
        permissions: ALL_PERMISSIONS.filter((p) => hasPermission(who.principal, p)),
      };
    },
  );
}
