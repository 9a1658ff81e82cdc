/**
 * User and API token management (admin; an auditor may list): dashboard users with scrypt password
 * hashes, scoped API tokens shown once. Every change is audited, never with a password or a token.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import {
  StoreError,
  type AuditDraftRow,
  type AuditRow,
  type LockoutProbe,
  type OperatorRole,
  type OperatorRow,
  type Store,
} from '../../store/types';
import { hashPassword, MAX_PASSWORD_LENGTH, passwordPolicyError } from '../auth/passwords';
import { newApiToken, sha256Hex } from '../auth/principal';
import { creatorGone, tokensMadeBy } from '../auth/revoke';
import { loginThrottleKeys, throttleEpoch } from '../auth/throttle';
import { chainEntry, draftAt, newId, requirePrincipal, type Ctx } from '../context';
import { ServiceError } from '../http-errors';

const Security = [{ operatorToken: [] }, { sessionCookie: [] }];
const Role = z.enum(['admin', 'operator', 'auditor', 'merchant']);
const IdParam = (name: string): z.ZodObject => z.strictObject({ [name]: z.string().min(1).max(128) });
export const UsernameSchema = z
  .string()
  .min(3)
  .max(64)
  .transform((u) => u.toLowerCase())
  .pipe(z.string().regex(/^[a-z0-9][a-z0-9._@-]{2,63}$/, 'letters, digits and . _ @ -'));
const Password = z.string().min(1).max(MAX_PASSWORD_LENGTH);
const MerchantId = z.string().min(1).max(128).nullable().optional();

/**
 * Checks that role and merchant go together: a merchant user or token names its merchant, an admin is
 * provider-wide, and a named merchant exists. Resolves to an error message, or undefined.
 */
export async function scopeError(
  store: Pick<Store, 'getMerchant'>,
  role: OperatorRole,
  merchantId: string | null,
): Promise<string | undefined> {
  if (role === 'merchant' && merchantId === null) return 'a merchant user or token names its merchant';
  if (role === 'admin' && merchantId !== null) return 'an admin is provider-wide (no merchant)';
  if (merchantId !== null && (await store.getMerchant(merchantId)) === undefined) return 'no such merchant';
  return undefined;
}

/** The schema of an action on one user that takes no body (`{}` or none). */
const UserAction = {
  tags: ['users'],
  security: Security,
  params: IdParam('userId'),
  body: z.strictObject({}).optional(),
};
const UserOut = z.object({
  userId: z.string(),
  username: z.string(),
  role: Role,
  merchantId: z.string().nullable(),
  createdAt: z.number().int(),
  disabledAt: z.number().int().nullable(),
  loginLocked: z
    .boolean()
    .describe(
      'the account-wide sign-in budget is spent: sign-in is refused from every address the user has not signed in from recently',
    ),
  lockedUntil: z
    .number()
    .int()
    .nullable()
    .describe(
      'ms since the epoch: when the account-wide lock-out ends if the attempts stop (each refused one counts too); null when not locked. Lock-outs of single addresses are not included (POST /v1/users/{userId}/unlock clears them too)',
    ),
});

const TokenOut = z.object({
  tokenId: z.string(),
  label: z.string(),
  role: Role,
  merchantId: z.string().nullable(),
  createdBy: z.string().nullable(),
  createdAt: z.number().int(),
  expiresAt: z.number().int().nullable(),
  revokedAt: z.number().int().nullable(),
});

/** The audit entry of a change to the operator `userId`. */
function userEntry(
  now: number,
  actor: string,
  action: string,
  userId: string,
  data: Record<string, unknown>,
): AuditDraftRow {
  return draftAt(now, actor, action, `operator:${userId}`, data);
}

/**
 * When the account-wide lock-out of `user` ends, or undefined when it is not locked: an attempt is
 * refused once the attempts in the window reach `max` (its own hit makes max + 1), until the oldest of
 * the last `max` has left the window. One bounded read (`loginLockoutStart`), however many attempts
 * the key holds.
 */
async function lockedUntil(ctx: Ctx, user: OperatorRow, now: number): Promise<number | undefined> {
  const { key, windowMs, max } = lockoutProbe(ctx, now);
  const start = await ctx.store.loginLockoutStart(key(user), now, windowMs, max);
  return start === undefined ? undefined : start + windowMs;
}

/** The account-wide lock-out budget of the login throttle (its key of an operator, window, budget). */
function lockoutProbe(ctx: Ctx, now: number): LockoutProbe {
  const { lockoutS, maxLoginAttemptsPerUser } = ctx.config.auth;
  const keys = loginThrottleKeys(ctx.keys);
  return {
    key: (user) => keys.user(user.username, throttleEpoch(user)),
    now,
    windowMs: lockoutS * 1000,
    max: maxLoginAttemptsPerUser,
  };
}

export function registerUserRoutes(appIn: FastifyInstance, ctx: Ctx): void {
  const app = appIn.withTypeProvider<ZodTypeProvider>();
  const opts = { bodyLimit: 8 * 1024 };

  app.post(
    '/v1/users',
    {
      ...opts,
      schema: {
        tags: ['users'],
        summary: 'Create a dashboard user (password: 12 characters or more)',
        security: Security,
        body: z.strictObject({
          username: UsernameSchema,
          password: Password,
          role: Role,
          merchantId: MerchantId,
        }),
        response: { 201: z.object({ userId: z.string() }) },
      },
    },
    async (request, reply) => {
      const principal = await requirePrincipal(ctx, request, 'manage-users');
      const { username, password, role } = request.body;
      const merchantId = request.body.merchantId ?? null;
      const policy = passwordPolicyError(password);
      if (policy !== undefined) throw new ServiceError(400, 'POS_ERR_PASSWORD_POLICY', policy);
      const scope = await scopeError(ctx.store, role, merchantId);
      if (scope !== undefined) throw new ServiceError(400, 'POS_ERR_USER_SCOPE_INVALID', scope);
      const id = newId('usr');
      const passwordHash = await hashPassword(password, ctx.config.auth.scryptN);
      const now = ctx.clock.now();
      let entry: AuditRow;
      try {
        // The user and its audit entry in one transaction.
        entry = await ctx.store.createOperatorAudited(
          {
            id,
            username,
            passwordHash,
            role,
            merchantId,
            createdAt: now,
            disabledAt: null,
          },
          userEntry(now, principal.actor, 'user.create', id, { username, role, merchantId }),
          chainEntry,
        );
      } catch (e) {
        if (e instanceof StoreError && e.code === 'POS_ERR_OPERATOR_EXISTS')
          throw new ServiceError(409, e.code);
        throw e;
      }
      await ctx.audited([entry]);
      return reply.code(201).send({ userId: id });
    },
  );

  app.get(
    '/v1/users',
    {
      schema: {
        tags: ['users'],
        summary: 'List dashboard users (never their password hashes)',
        security: Security,
        response: { 200: z.object({ users: z.array(UserOut) }) },
      },
    },
    async (request) => {
      await requirePrincipal(ctx, request, 'read-users');
      const rows = await ctx.store.listOperators();
      const now = ctx.clock.now();
      const locks = await Promise.all(rows.map((u) => lockedUntil(ctx, u, now)));
      return {
        users: rows.map((u, i) => ({
          userId: u.id,
          username: u.username,
          role: u.role,
          merchantId: u.merchantId,
          createdAt: u.createdAt,
          disabledAt: u.disabledAt,
          loginLocked: locks[i] !== undefined,
          lockedUntil: locks[i] ?? null,
        })),
      };
    },
  );

  app.post(
    '/v1/users/:userId/unlock',
    {
      ...opts,
      schema: {
        ...UserAction,
        summary:
          "Clear a user's sign-in lock-outs: the account-wide one and every per-address one start over (the password and sessions are kept)",
        response: {
          200: z.object({
            userId: z.string(),
            unlocked: z.literal(true),
            wasLockedUntil: z
              .number()
              .int()
              .nullable()
              .describe('ms since the epoch: the end of the account-wide lock-out this cleared; null: none'),
          }),
        },
      },
    },
    async (request) => {
      const principal = await requirePrincipal(ctx, request, 'manage-users');
      const userId = (request.params as { userId: string }).userId;
      const now = ctx.clock.now();
      // The lock-out read from the operator as it is in the transaction that raises its epoch, with
      // the audit entry: a concurrent password set or unlock cannot slip in between.
      const done = await ctx.store.clearLoginLockoutsAudited(
        userId,
        lockoutProbe(ctx, now),
        (wasLockedUntil) => userEntry(now, principal.actor, 'user.unlock', userId, { wasLockedUntil }),
        chainEntry,
      );
      if (done === undefined) throw new ServiceError(404, 'POS_ERR_USER_UNKNOWN');
      await ctx.audited([done.audit]);
      return { userId, unlocked: true as const, wasLockedUntil: done.wasLockedUntil };
    },
  );

  app.post(
    '/v1/users/:userId/disable',
    {
      ...opts,
      schema: {
        ...UserAction,
        summary:
          'Disable a user: no login, every session of theirs ends, and the API tokens they made (and tokens made with those) are revoked',
        response: {
          200: z.object({
            userId: z.string(),
            disabled: z.literal(true),
            sessionsEnded: z.number(),
            tokensRevoked: z.number(),
          }),
        },
      },
    },
    async (request) => {
      const principal = await requirePrincipal(ctx, request, 'manage-users');
      const userId = (request.params as { userId: string }).userId;
      const now = ctx.clock.now();
      if ((await ctx.store.getOperator(userId)) === undefined)
        throw new ServiceError(404, 'POS_ERR_USER_UNKNOWN');
      // The user disabled, its sessions ended, its tokens revoked and the audit entry in one
      // transaction (a token it makes meanwhile is taken back by the creation's own check).
      const done = await ctx.store.disableOperatorAudited(
        userId,
        now,
        await tokensMadeBy(ctx.store, userId),
        (counts) => userEntry(now, principal.actor, 'user.disable', userId, { ...counts }),
        chainEntry,
      );
      if (done === undefined) throw new ServiceError(404, 'POS_ERR_USER_UNKNOWN');
      await ctx.audited([done.audit]);
      const { sessionsEnded, tokensRevoked } = done;
      return { userId, disabled: true as const, sessionsEnded, tokensRevoked };
    },
  );

  app.post(
    '/v1/users/:userId/password',
    {
      ...opts,
      schema: {
        tags: ['users'],
        summary: "Set a user's password: their sessions end, every sign-in lock-out of the account is lifted",
        security: Security,
        params: IdParam('userId'),
        body: z.strictObject({ password: Password }),
        response: { 200: z.object({ userId: z.string(), sessionsEnded: z.number() }) },
      },
    },
    async (request) => {
      const principal = await requirePrincipal(ctx, request, 'manage-users');
      const userId = (request.params as { userId: string }).userId;
      const policy = passwordPolicyError(request.body.password);
      if (policy !== undefined) throw new ServiceError(400, 'POS_ERR_PASSWORD_POLICY', policy);
      const hash = await hashPassword(request.body.password, ctx.config.auth.scryptN);
      const now = ctx.clock.now();
      // Break glass: a new password hash starts every login lock-out of the account over (auth/throttle.ts).
      // The hash, the sessions ended and the audit entry in one transaction.
      const done = await ctx.store.setOperatorPasswordAudited(
        userId,
        hash,
        now,
        (sessionsEnded) => userEntry(now, principal.actor, 'user.password', userId, { sessionsEnded }),
        chainEntry,
      );
      if (done === undefined) throw new ServiceError(404, 'POS_ERR_USER_UNKNOWN');
      await ctx.audited([done.audit]);
      const { sessionsEnded } = done;
      return { userId, sessionsEnded };
    },
  );

  app.post(
    '/v1/tokens',
    {
      ...opts,
      schema: {
        tags: ['users'],
        summary: 'Create an API token (role, merchant, expiry, label); the token is shown once',
        security: Security,
        body: z.strictObject({
          label: z.string().min(1).max(100),
          role: Role,
          merchantId: MerchantId,
          expiresInS: z.number().int().min(60),
        }),
        response: {
          201: z.object({ tokenId: z.string(), token: z.string(), expiresAt: z.number().int() }),
        },
      },
    },
    async (request, reply) => {
      const principal = await requirePrincipal(ctx, request, 'manage-users');
      const { label, role, expiresInS } = request.body;
      const merchantId = request.body.merchantId ?? null;
      if (expiresInS > ctx.config.auth.maxTokenLifetimeS) {
        throw new ServiceError(
          400,
          'POS_ERR_REQUEST_INVALID',
          `a token lives at most ${ctx.config.auth.maxTokenLifetimeS} s`,
        );
      }
      const scope = await scopeError(ctx.store, role, merchantId);
      if (scope !== undefined) throw new ServiceError(400, 'POS_ERR_USER_SCOPE_INVALID', scope);
      const now = ctx.clock.now();
      const token = newApiToken(role);
      const id = newId('tok');
      const expiresAt = now + expiresInS * 1000;
      // The token and its audit entry in one transaction (a crash never leaves an unaudited token).
      const entry = await ctx.store.createApiTokenAudited(
        {
          id,
          tokenHash: sha256Hex(token),
          label,
          role,
          merchantId,
          createdBy: principal.actor,
          createdAt: now,
          expiresAt,
          revokedAt: null,
        },
        draftAt(now, principal.actor, 'token.create', id, { label, role, merchantId, expiresAt }),
        chainEntry,
      );
      await ctx.audited([entry]);
      // A disable that ran while this request was in flight listed the tokens before this one existed:
      // look again now that it is stored, and take it back if its creator is gone (audited).
      if (await creatorGone(ctx.store, principal.actor, now)) {
        const revoked = await ctx.store.revokeApiTokenAudited(
          id,
          now,
          draftAt(now, principal.actor, 'token.revoke', id, { reason: 'creator disabled' }),
          chainEntry,
        );
        if (revoked !== undefined) await ctx.audited([revoked]);
        throw new ServiceError(401, 'POS_ERR_OPERATOR_AUTH');
      }
      void reply.header('cache-control', 'no-store');
      return reply.code(201).send({ tokenId: id, token, expiresAt });
    },
  );

  app.get(
    '/v1/tokens',
    {
      schema: {
        tags: ['users'],
        summary: 'List API tokens (never the tokens or their hashes)',
        security: Security,
        response: { 200: z.object({ tokens: z.array(TokenOut) }) },
      },
    },
    async (request) => {
      await requirePrincipal(ctx, request, 'read-users');
      const rows = await ctx.store.listApiTokens();
      return {
        tokens: rows.map((t) => ({
          tokenId: t.id,
          label: t.label,
          role: t.role,
          merchantId: t.merchantId,
          createdBy: t.createdBy,
          createdAt: t.createdAt,
          expiresAt: t.expiresAt,
          revokedAt: t.revokedAt,
        })),
      };
    },
  );

  app.delete(
    '/v1/tokens/:tokenId',
    {
      schema: {
        tags: ['users'],
        summary: 'Revoke an API token',
        security: Security,
        params: IdParam('tokenId'),
        response: { 200: z.object({ tokenId: z.string(), revoked: z.literal(true) }) },
      },
    },
    async (request) => {
      const principal = await requirePrincipal(ctx, request, 'manage-users');
      const tokenId = (request.params as { tokenId: string }).tokenId;
      const known = (await ctx.store.listApiTokens()).some((t) => t.id === tokenId);
      if (!known) throw new ServiceError(404, 'POS_ERR_TOKEN_UNKNOWN');
      const now = ctx.clock.now();
      // The revocation and its audit entry in one transaction (none when it was already revoked).
      const entry = await ctx.store.revokeApiTokenAudited(
        tokenId,
        now,
        draftAt(now, principal.actor, 'token.revoke', tokenId, {}),
        chainEntry,
      );
      if (entry !== undefined) await ctx.audited([entry]);
      return { tokenId, revoked: true as const };
    },
  );
}
