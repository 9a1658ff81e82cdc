/**
 * Operator routes: merchants, enrollment codes, terminal reads, reference values, policies, audit, key
 * rotation. Each route names its permission (`requirePrincipal`; the role matrix is in
 * docs/operators.md) and a principal limited to one merchant reaches only that merchant's objects:
 * another merchant's terminal or merchant answers 404, as if it did not exist.
 */
import { randomBytes } from 'node:crypto';
import { Readable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { toBase64url } from '@pos/shared';
import { z } from 'zod';
import { StoreError, TERMINAL_STATES, type AuditRow } from '../../store/types';
import {
  canReachMerchant,
  chainEntry,
  draftAt,
  newId,
  requirePrincipal,
  sha256Hex,
  type Ctx,
  type Principal,
} from '../context';
import {
  missingCoreVerifiers,
  policyTooDeep,
  MAX_POLICY_CONDITION_DEPTH,
  PolicySchema,
  signAuditCheckpoint,
  verifyAuditChain,
} from '../domain';
import { ServiceError } from '../http-errors';

export const ENROLLMENT_CODE_PREFIX = 'pos_enr_';
export const ENROLLMENT_CODE_RE = /^pos_enr_[A-Za-z0-9_-]{22}$/;

export function hashEnrollmentCode(code: string): string {
  return sha256Hex(code);
}

const hex64 = z.string().regex(/^[0-9a-fA-F]{64}$/);
export const ReferenceValuesBody = z.strictObject({
  version: z.string().regex(/^[0-9A-Za-z.+_-]{1,64}$/),
  build: z.enum(['release', 'development']),
  codeHashes: z.array(hex64).min(1).max(64),
  fuseWire: z.string().min(1).max(256).optional(),
  executableHashes: z.array(hex64).max(64).optional(),
  allowedShells: z
    .array(z.enum(['electron', 'browser', 'headless']))
    .min(1)
    .max(3),
});

const IdParam = (name: string): z.ZodObject => z.strictObject({ [name]: z.string().min(1).max(128) });
const Security = [{ operatorToken: [] }, { sessionCookie: [] }];
const EmptyBody = z.strictObject({}).optional();

/** The terminal named by the route, or a 404 POS_ERR_TERMINAL_UNKNOWN (also for another merchant's). */
export async function terminalOr404(
  ctx: Ctx,
  principal: Principal,
  terminalId: string,
): Promise<NonNullable<Awaited<ReturnType<Ctx['store']['getTerminal']>>>> {
  const t = await ctx.store.getTerminal(terminalId);
  if (t === undefined || !canReachMerchant(principal, t.merchantId))
    throw new ServiceError(404, 'POS_ERR_TERMINAL_UNKNOWN');
  return t;
}

/**
 * The terminal's current ticket (the newest one issued to it) as the dashboard shows it: its use and
 * times, never the ticket itself nor its id.
 */
const TerminalTicketOut = z.object({
  use: z
    .enum(['session', 'pin-entry'])
    .describe(
      'session: reader session and sales (handshake only while resume-pending); pin-entry: one PIN entry',
    ),
  issuedAt: z.number().int().describe('ms since the epoch'),
  expiresAt: z.number().int().describe('ms since the epoch'),
  expired: z.boolean().describe("expiresAt is not after the server's clock"),
  used: z.boolean().describe('a single-use PIN-entry ticket already spent'),
});

function ticketUse(use: string): 'session' | 'pin-entry' {
  if (use === 'session' || use === 'pin-entry') return use;
  throw new ServiceError(500, 'POS_ERR_STORE');
}

const TerminalOut = z.object({
  terminalId: z.string(),
  merchantId: z.string(),
  deviceJkt: z.string(),
  readerSerial: z.string(),
  state: z.enum(TERMINAL_STATES),
  stateReason: z.string().nullable(),
  lastCounter: z.number().int(),
  attestationIntervalS: z.number().int(),
  lastAttestedAt: z.number().int().nullable(),
  ticket: TerminalTicketOut.nullable().describe(
    'the newest ticket issued to the terminal (expired or not); null when it never got one',
  ),
});

export async function readAudit(ctx: Pick<Ctx, 'store'>): Promise<AuditRow[]> {
  const out: AuditRow[] = [];
  for (let after = 0; ;) {
    const page = await ctx.store.listAudit(after, 1000);
    if (page.length === 0) return out;
    out.push(...page);
    after = page[page.length - 1]?.seq ?? after;
  }
}

export function registerOperatorRoutes(appIn: FastifyInstance, ctx: Ctx): void {
  const app = appIn.withTypeProvider<ZodTypeProvider>();
  const opts = { bodyLimit: 16 * 1024 };

  app.post(
    '/v1/merchants',
    {
      ...opts,
      schema: {
        tags: ['operator'],
        summary: 'Create a merchant',
        security: Security,
        body: z.strictObject({ name: z.string().min(1).max(200) }),
        response: { 201: z.object({ merchantId: z.string() }) },
      },
    },
    async (request, reply) => {
      const { actor } = await requirePrincipal(ctx, request, 'manage-merchants');
      const id = newId('mer');
      const now = ctx.clock.now();
      // The merchant and its audit entry in one transaction.
      await ctx.audited([
        await ctx.store.createMerchantAudited(
          { id, name: request.body.name, createdAt: now },
          draftAt(now, actor, 'merchant.create', id, { name: request.body.name }),
          chainEntry,
        ),
      ]);
      return reply.code(201).send({ merchantId: id });
    },
  );

  app.get(
    '/v1/merchants',
    {
      schema: {
        tags: ['operator'],
        summary: 'List the merchants the caller may reach (a merchant-scoped caller sees its own)',
        security: Security,
        response: {
          200: z.object({
            merchants: z.array(z.object({ merchantId: z.string(), name: z.string(), createdAt: z.number() })),
          }),
        },
      },
    },
    async (request) => {
      const principal = await requirePrincipal(ctx, request, 'read');
      const rows = await ctx.store.listMerchants();
      return {
        merchants: rows
          .filter((m) => canReachMerchant(principal, m.id))
          .map((m) => ({ merchantId: m.id, name: m.name, createdAt: m.createdAt })),
      };
    },
  );

  app.post(
    '/v1/merchants/:merchantId/enrollment-codes',
    {
      ...opts,
      schema: {
        tags: ['operator'],
        summary: 'Create a single-use, expiring enrollment code for a merchant (shown once)',
        security: Security,
        params: IdParam('merchantId'),
        body: z
          .strictObject({
            ttlS: z
              .number()
              .int()
              .min(60)
              .max(30 * 24 * 3600)
              .optional(),
          })
          .optional(),
        response: { 201: z.object({ code: z.string(), expiresAt: z.number().int() }) },
      },
    },
    async (request, reply) => {
      const principal = await requirePrincipal(ctx, request, 'enroll');
      const actor = principal.actor;
      const merchantId = (request.params as { merchantId: string }).merchantId;
      if (!canReachMerchant(principal, merchantId) || (await ctx.store.getMerchant(merchantId)) === undefined)
        throw new ServiceError(404, 'POS_ERR_MERCHANT_UNKNOWN');
      const now = ctx.clock.now();
      const code = `${ENROLLMENT_CODE_PREFIX}${toBase64url(randomBytes(16))}`;
      const expiresAt = now + (request.body?.ttlS ?? ctx.config.enrollmentCodeTtlS) * 1000;
      const codeHash = hashEnrollmentCode(code);
      // The code and its audit entry in one transaction.
      await ctx.audited([
        await ctx.store.createEnrollmentCodeAudited(
          { codeHash, merchantId, expiresAt, createdAt: now, createdBy: actor },
          draftAt(now, actor, 'enrollment-code.create', merchantId, {
            codeHash: codeHash.slice(0, 16),
            expiresAt,
          }),
          chainEntry,
        ),
      ]);
      return reply.code(201).send({ code, expiresAt });
    },
  );

  app.get(
    '/v1/terminals/:terminalId',
    {
      schema: {
        tags: ['operator'],
        summary: 'A terminal, its state and its current ticket (times and use only)',
        security: Security,
        params: IdParam('terminalId'),
        response: { 200: TerminalOut },
      },
    },
    async (request) => {
      const principal = await requirePrincipal(ctx, request, 'read');
      const t = await terminalOr404(ctx, principal, (request.params as { terminalId: string }).terminalId);
      const ticket = await ctx.store.latestTicket(t.id);
      return {
        terminalId: t.id,
        merchantId: t.merchantId,
        deviceJkt: t.deviceJkt,
        readerSerial: t.readerSerial,
        state: t.state,
        stateReason: t.stateReason,
        lastCounter: t.lastCounter,
        attestationIntervalS: t.intervalS,
        lastAttestedAt: t.lastAttestedAt,
        ticket:
          ticket === null
            ? null
            : {
                use: ticketUse(ticket.use),
                issuedAt: ticket.issuedAt,
                expiresAt: ticket.expiresAt,
                expired: ticket.expiresAt <= ctx.clock.now(),
                used: ticket.usedAt !== null,
              },
      };
    },
  );

  app.get(
    '/v1/terminals/:terminalId/attestations',
    {
      schema: {
        tags: ['operator'],
        summary: "A terminal's latest verdicts, newest first",
        security: Security,
        params: IdParam('terminalId'),
        querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(500).optional() }),
        response: {
          200: z.object({
            attestations: z.array(
              z.object({
                id: z.string(),
                at: z.number().int(),
                purpose: z.string(),
                counter: z.number().int().nullable(),
                tier: z.string(),
                policyVersion: z.string(),
                verdict: z.record(z.string(), z.unknown()),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const principal = await requirePrincipal(ctx, request, 'read');
      const terminalId = (request.params as { terminalId: string }).terminalId;
      await terminalOr404(ctx, principal, terminalId);
      const limit = (request.query as { limit?: number }).limit ?? 50;
      const rows = await ctx.store.listAttestations(terminalId, limit);
      return {
        attestations: rows.map((r) => ({
          id: r.id,
          at: r.at,
          purpose: r.purpose,
          counter: r.counter,
          tier: r.tier,
          policyVersion: r.policyVersion,
          verdict: r.verdict,
        })),
      };
    },
  );

  app.get(
    '/v1/terminals/:terminalId/transactions',
    {
      schema: {
        tags: ['operator'],
        summary: "A terminal's latest transactions, newest first (card tokens, never PANs)",
        security: Security,
        params: IdParam('terminalId'),
        querystring: z.strictObject({ limit: z.coerce.number().int().min(1).max(500).optional() }),
        response: {
          200: z.object({
            transactions: z.array(
              z.object({
                id: z.string(),
                at: z.number().int(),
                amount: z.number().int(),
                currency: z.string(),
                approved: z.boolean(),
                code: z.string().nullable(),
                authCode: z.string().nullable(),
                cardToken: z.string().nullable(),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      const principal = await requirePrincipal(ctx, request, 'read');
      const terminalId = (request.params as { terminalId: string }).terminalId;
      await terminalOr404(ctx, principal, terminalId);
      const limit = (request.query as { limit?: number }).limit ?? 50;
      const rows = await ctx.store.listTransactions(terminalId, limit);
      return {
        transactions: rows.map((r) => ({
          id: r.id,
          at: r.at,
          amount: r.amount,
          currency: r.currency,
          approved: r.approved,
          code: r.code,
          authCode: r.authCode,
          cardToken: r.cardToken,
        })),
      };
    },
  );

  app.post(
    '/v1/reference-values',
    {
      ...opts,
      schema: {
        tags: ['operator'],
        summary: 'Upload the reference values of an approved release',
        security: Security,
        body: ReferenceValuesBody,
        response: { 201: z.object({ id: z.string() }) },
      },
    },
    async (request, reply) => {
      const { actor } = await requirePrincipal(ctx, request, 'manage-releases');
      const id = newId('ref');
      const doc = request.body;
      const now = ctx.clock.now();
      // The reference values and their audit entry in one transaction.
      const entry = await ctx.store.putReferenceValuesAudited(
        {
          id,
          version: doc.version,
          build: doc.build,
          document: { ...doc, codeHashes: doc.codeHashes.map((h) => h.toLowerCase()) },
          createdAt: now,
          createdBy: actor,
        },
        draftAt(now, actor, 'reference-values.create', id, { ...doc }),
        chainEntry,
      );
      await ctx.audited([entry]);
      return reply.code(201).send({ id });
    },
  );

  app.get(
    '/v1/reference-values',
    {
      schema: {
        tags: ['operator'],
        summary: 'List reference values',
        security: Security,
        response: {
          200: z.object({
            referenceValues: z.array(
              z.object({
                id: z.string(),
                createdAt: z.number(),
                document: z.record(z.string(), z.unknown()),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      await requirePrincipal(ctx, request, 'read-config');
      const rows = await ctx.store.listReferenceValues();
      return {
        referenceValues: rows.map((r) => ({ id: r.id, createdAt: r.createdAt, document: r.document })),
      };
    },
  );

  app.delete(
    '/v1/reference-values/:id',
    {
      schema: {
        tags: ['operator'],
        summary: 'Withdraw reference values (that release no longer attests)',
        security: Security,
        params: IdParam('id'),
        response: { 200: z.object({ deleted: z.literal(true) }) },
      },
    },
    async (request) => {
      const { actor } = await requirePrincipal(ctx, request, 'manage-releases');
      const id = (request.params as { id: string }).id;
      const entry = await ctx.store.deleteReferenceValuesAudited(
        id,
        draftAt(ctx.clock.now(), actor, 'reference-values.delete', id, {}),
        chainEntry,
      );
      if (entry === undefined) throw new ServiceError(404, 'POS_ERR_NOT_FOUND');
      await ctx.audited([entry]);
      return { deleted: true as const };
    },
  );

  app.post(
    '/v1/policies',
    {
      bodyLimit: 64 * 1024,
      schema: {
        tags: ['operator'],
        summary: 'Upload a new policy version (inactive until activated or shadowed)',
        security: Security,
        body: z.strictObject({ policy: z.record(z.string(), z.unknown()) }),
        response: { 201: z.object({ version: z.string() }) },
      },
    },
    async (request, reply) => {
      const { actor } = await requirePrincipal(ctx, request, 'manage-policies');
      // The schema is recursive: a cheap iterative depth check first, so a deep body is a 400, not a stack overflow.
      if (policyTooDeep(request.body.policy)) {
        throw new ServiceError(
          400,
          'POS_ERR_POLICY_TOO_DEEP',
          `conditions nest deeper than ${MAX_POLICY_CONDITION_DEPTH} levels`,
        );
      }
      const parsed = PolicySchema.safeParse(request.body.policy);
      if (!parsed.success) throw new ServiceError(400, 'POS_ERR_POLICY_INVALID');
      const version = (parsed.data as { version?: unknown }).version;
      if (typeof version !== 'string') throw new ServiceError(400, 'POS_ERR_POLICY_INVALID');
      // A policy may only add to the core verifiers (it is evaluated with them anyway): say so at upload.
      const missing = missingCoreVerifiers(parsed.data);
      if (missing.length > 0) {
        throw new ServiceError(
          400,
          'POS_ERR_POLICY_CORE_VERIFIER_MISSING',
          `requiredVerifiers leaves out core verifiers: ${missing.join(', ')}`,
        );
      }
      const now = ctx.clock.now();
      let entry: AuditRow;
      try {
        // The policy and its audit entry in one transaction.
        entry = await ctx.store.putPolicyAudited(
          { version, document: parsed.data, role: 'inactive', createdAt: now, createdBy: actor },
          draftAt(now, actor, 'policy.create', version, { sha256: sha256Hex(JSON.stringify(parsed.data)) }),
          chainEntry,
        );
      } catch (e) {
        if (e instanceof StoreError && e.code === 'POS_ERR_POLICY_EXISTS')
          throw new ServiceError(409, e.code);
        throw e;
      }
      await ctx.audited([entry]);
      return reply.code(201).send({ version });
    },
  );

  app.get(
    '/v1/policies',
    {
      schema: {
        tags: ['operator'],
        summary: 'List policy versions and their roles (active, shadow, inactive)',
        security: Security,
        response: {
          200: z.object({
            policies: z.array(
              z.object({
                version: z.string(),
                role: z.enum(['active', 'shadow', 'inactive']),
                createdAt: z.number(),
                policy: z.record(z.string(), z.unknown()),
              }),
            ),
          }),
        },
      },
    },
    async (request) => {
      await requirePrincipal(ctx, request, 'read-config');
      const rows = await ctx.store.listPolicies();
      return {
        policies: rows.map((r) => ({
          version: r.version,
          role: r.role,
          createdAt: r.createdAt,
          policy: r.document,
        })),
      };
    },
  );

  app.post(
    '/v1/policies/:version/activate',
    {
      ...opts,
      schema: {
        tags: ['operator'],
        summary: 'Make a policy version the enforced one',
        security: Security,
        params: IdParam('version'),
        body: EmptyBody,
        response: { 200: z.object({ version: z.string(), role: z.literal('active') }) },
      },
    },
    async (request) => {
      const { actor } = await requirePrincipal(ctx, request, 'manage-policies');
      const version = (request.params as { version: string }).version;
      // The activation and its audit entry in one transaction.
      const entry = await ctx.store.activatePolicyAudited(
        version,
        draftAt(ctx.clock.now(), actor, 'policy.activate', version, {}),
        chainEntry,
      );
      if (entry === undefined) throw new ServiceError(404, 'POS_ERR_POLICY_UNKNOWN');
      await ctx.audited([entry]);
      return { version, role: 'active' as const };
    },
  );

  app.post(
    '/v1/policies/:version/shadow',
    {
      ...opts,
      schema: {
        tags: ['operator'],
        summary: 'Run a policy version in shadow mode (evaluated and reported, not enforced), or stop',
        security: Security,
        params: IdParam('version'),
        body: z.strictObject({ enabled: z.boolean() }),
        response: { 200: z.object({ version: z.string(), role: z.enum(['shadow', 'inactive']) }) },
      },
    },
    async (request) => {
      const { actor } = await requirePrincipal(ctx, request, 'manage-policies');
      const version = (request.params as { version: string }).version;
      // The mode and its audit entry in one transaction.
      const entry = await ctx.store.setPolicyShadowAudited(
        version,
        request.body.enabled,
        draftAt(
          ctx.clock.now(),
          actor,
          request.body.enabled ? 'policy.shadow' : 'policy.unshadow',
          version,
          {},
        ),
        chainEntry,
      );
      if (entry === undefined) throw new ServiceError(404, 'POS_ERR_POLICY_UNKNOWN');
      await ctx.audited([entry]);
      return { version, role: request.body.enabled ? ('shadow' as const) : ('inactive' as const) };
    },
  );

  app.get(
    '/v1/audit',
    {
      schema: {
        tags: ['audit'],
        summary: 'Export the audit chain as JSON lines (application/x-ndjson)',
        security: Security,
        querystring: z.strictObject({ after: z.coerce.number().int().min(0).optional() }),
      },
    },
    async (request, reply) => {
      await requirePrincipal(ctx, request, 'audit');
      const after = (request.query as { after?: number }).after ?? 0;
      // Streamed a page at a time, so a long chain is never held in memory whole.
      const store = ctx.store;
      async function* lines(): AsyncGenerator<string> {
        for (let from = after; ;) {
          const page = await store.listAudit(from, 1000);
          if (page.length === 0) return;
          yield page.map((r) => `${JSON.stringify(r)}\n`).join('');
          from = page[page.length - 1]?.seq ?? from;
        }
      }
      return reply.type('application/x-ndjson; charset=utf-8').send(Readable.from(lines()));
    },
  );

  app.get(
    '/v1/audit/verify',
    {
      schema: {
        tags: ['audit'],
        summary: 'Verify the audit chain and its signed checkpoints',
        security: Security,
        response: {
          200: z.object({
            valid: z.boolean(),
            count: z.number().int().optional(),
            head: z.string().optional(),
            checkpoints: z.number().int(),
            code: z.string().optional(),
            detail: z.string().optional(),
          }),
        },
      },
    },
    async (request) => {
      await requirePrincipal(ctx, request, 'audit');
      const checkpoints = await ctx.store.listCheckpoints();
      const result = verifyAuditChain(await readAudit(ctx), { checkpoints, keys: ctx.keys.allKeys() });
      return result.ok
        ? { valid: true, count: result.count, head: result.head, checkpoints: checkpoints.length }
        : { valid: false, code: result.code, detail: result.detail, checkpoints: checkpoints.length };
    },
  );

  app.post(
    '/v1/audit/checkpoints',
    {
      ...opts,
      schema: {
        tags: ['audit'],
        summary: 'Sign a checkpoint of the audit head now',
        security: Security,
        body: EmptyBody,
        response: { 201: z.object({ seq: z.number().int(), hash: z.string(), kid: z.string() }) },
      },
    },
    async (request, reply) => {
      const { actor } = await requirePrincipal(ctx, request, 'audit-checkpoint');
      const head = await ctx.audit(actor, 'audit.checkpoint', 'audit', {});
      const cp = await signAuditCheckpoint(head, ctx.keys.signer(), head.at);
      await ctx.store.putCheckpoint(cp);
      return reply.code(201).send({ seq: cp.seq, hash: cp.hash, kid: cp.kid });
    },
  );

  app.post(
    '/v1/keys/rotate',
    {
      ...opts,
      schema: {
        tags: ['keys'],
        summary: 'Rotate the ticket-signing key (the old one stays in the JWKS until its tickets expire)',
        security: Security,
        body: EmptyBody,
        response: { 200: z.object({ kid: z.string(), retired: z.array(z.string()) }) },
      },
    },
    async (request) => {
      const { actor } = await requirePrincipal(ctx, request, 'keys');
      const result = await ctx.keys.rotate(ctx.clock.now());
      await ctx.audit(actor, 'keys.rotate', result.kid, { retired: result.retired });
      return result;
    },
  );
}
