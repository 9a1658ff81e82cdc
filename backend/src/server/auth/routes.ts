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
import { loginAddress } from './address';
import { dummyHash, hashHasCost, hashPassword, verifyPassword } from './passwords';
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
import { loginIpKey, loginThrottleKeys, throttleEpoch } from './throttle';

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
  // Made now rather than on the first unknown username, whose answer would otherwise take twice as long.
  dummyHash(ctx.config.auth.scryptN).catch(() => undefined);

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
      const lockMs = cfg.lockoutS * 1000;
      const address = loginAddress(request, ctx.config.trustProxy);
      const from = `ip:${address}`;
      // Per client address, in the store (every process shares the count; exact under concurrency).
      const attempts = await ctx.store.hitLoginAttempt(loginIpKey(address), now, cfg.loginWindowS * 1000);
      if (attempts > cfg.loginAttemptsPerIp) {
        if (attempts === cfg.loginAttemptsPerIp + 1) {
          await ctx.audit(from, 'auth.login.rate-limited', 'auth', { attempts });
        }
        // Retry-After (seconds, sendError): at the latest when the window has passed.
        throw Object.assign(new ServiceError(429, 'POS_ERR_LOGIN_RATE_LIMITED'), {
          retryAfter: cfg.loginWindowS * 1000,
        });
      }
      const username = request.body.username.toLowerCase();
      // From here on a known and an unknown username take the same store calls in the same order
      // (only the audit subject differs), and the same one scrypt: the answer and its timing tell nothing.
      const user = await ctx.store.findOperatorByUsername(username);
      const subject = user === undefined ? 'unknown-user' : `operator:${user.id}`;
      const epoch = throttleEpoch(user);
      const keys = loginThrottleKeys(ctx.keys);
      const pairKey = keys.pair(address, username, epoch);
      const knownKey = keys.known(address, username);
      const fail = (): ServiceError => new ServiceError(401, 'POS_ERR_LOGIN_FAILED');
      const known = (await ctx.store.velocityCount(knownKey, now, cfg.knownAddressS * 1000)) > 0;
      // Reserve the attempt before the password check, atomically: a concurrent burst gets distinct
      // counts, so at most maxLoginFailures checks run per (username, address) per window.
      const pair = await ctx.store.hitLoginAttempt(pairKey, now, lockMs);
      if (pair > cfg.maxLoginFailures) {
        await ctx.audit(from, 'auth.login.failed', subject, { reason: 'locked', scope: 'address' });
        throw fail();
      }
      // The account-wide budget: an attacker spread over many addresses spends it, but an address that
      // logged in to this account before still gets its (per-address limited) tries.
      const total = await ctx.store.hitLoginAttempt(keys.user(username, epoch), now, lockMs);
      if (total > cfg.maxLoginAttemptsPerUser && !known) {
        if (total === cfg.maxLoginAttemptsPerUser + 1) {
          await ctx.audit(from, 'auth.lockout', subject, {
            scope: 'account',
            attempts: total,
            windowS: cfg.lockoutS,
          });
        } else {
          await ctx.audit(from, 'auth.login.failed', subject, { reason: 'locked', scope: 'account' });
        }
        throw fail();
      }
      const passwordOk = await verifyPassword(
        request.body.password,
        user?.passwordHash ?? (await dummyHash(cfg.scryptN)),
      );
      if (user === undefined || user.disabledAt !== null || !passwordOk) {
        const reason =
          user === undefined ? 'unknown-user' : user.disabledAt !== null ? 'disabled' : 'password';
        if (pair === cfg.maxLoginFailures) {
          await ctx.audit(from, 'auth.lockout', subject, {
            scope: 'address',
            reason,
            failures: pair,
            lockedForS: cfg.lockoutS,
          });
        } else {
          await ctx.audit(from, 'auth.login.failed', subject, { reason, failures: pair });
        }
        throw fail();
      }
      await ctx.store.velocityReset(pairKey);
      await ctx.store.velocityReset(knownKey);
      await ctx.store.velocityHit(knownKey, now, cfg.knownAddressS * 1000);
      // A hash made with other parameters (an older cost) is remade with the current ones, so every
      // stored hash costs what the dummy hash of an unknown user costs.
      if (!hashHasCost(user.passwordHash, cfg.scryptN)) {
        await ctx.store.setOperatorPassword(user.id, await hashPassword(request.body.password, cfg.scryptN));
      }
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
      await ctx.audit(`operator:${user.id}`, 'auth.login', sessionId, { ip: address, expiresAt });
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
