/**
 * Fleet routes: halts by scope (a terminal, a merchant, an app version, the fleet), their delivery
 * acknowledgements, lifting them, and the per-terminal shortcuts. The terminals' push connection is in
 * fleet/push.ts. A merchant-scoped principal halts and sees only its own merchant's terminals (another
 * tenant's object answers 404, as if absent) and never halts the fleet or an app version (403).
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { HaltRow, OutboxRow } from '../../store/types';
import { canReachMerchant, requirePrincipal, type Ctx, type Principal } from '../context';
import { ServiceError } from '../http-errors';

const Id = z.string().min(1).max(128);
const Security = [{ operatorToken: [] }, { sessionCookie: [] }];
const Tags = ['fleet'];
const Reason = z.string().min(1).max(500);
const Scope = z.enum(['terminal', 'merchant', 'app-version', 'fleet']);

const HaltOut = z.object({
  haltId: z.string(),
  scope: Scope,
  target: z.string().nullable(),
  reason: z.string(),
  createdBy: z.string(),
  createdAt: z.number(),
  liftedAt: z.number().nullable(),
  liftedBy: z.string().nullable(),
});
const DeliveryOut = z.object({
  terminalId: z.string(),
  seq: z.number().int(),
  kind: z.enum(['halt', 'resume']),
  createdAt: z.number(),
  sentAt: z.number().nullable(),
  ackedAt: z.number().nullable(),
});

const haltOut = (h: HaltRow): z.infer<typeof HaltOut> => ({
  haltId: h.id,
  scope: h.scope,
  target: h.target,
  reason: h.reason,
  createdBy: h.createdBy,
  createdAt: h.createdAt,
  liftedAt: h.liftedAt,
  liftedBy: h.liftedBy,
});
const deliveryOut = (r: OutboxRow): z.infer<typeof DeliveryOut> => ({
  terminalId: r.terminalId,
  seq: r.seq,
  kind: r.kind,
  createdAt: r.createdAt,
  sentAt: r.sentAt,
  ackedAt: r.ackedAt,
});

const HaltBody = z.strictObject({
  scope: Scope,
  target: Id.optional().describe('terminal id, merchant id or app version; none for a fleet halt'),
  reason: Reason,
});

/** A provider-wide principal sees every halt; a merchant its own and the fleet-wide ones (fleet, app version). */
async function maySee(ctx: Ctx, p: Principal, h: HaltRow): Promise<boolean> {
  if (p.merchantId === null) return true;
  switch (h.scope) {
    case 'fleet':
    case 'app-version':
      return true;
    case 'merchant':
      return h.target !== null && canReachMerchant(p, h.target);
    case 'terminal': {
      const t = h.target === null ? undefined : await ctx.store.getTerminal(h.target);
      return t !== undefined && canReachMerchant(p, t.merchantId);
    }
  }
}

/** The halt, or 404 (unknown, or not visible to this principal). */
async function haltOr404(ctx: Ctx, p: Principal, haltId: string): Promise<HaltRow> {
  const h = await ctx.store.getHalt(haltId);
  if (h === undefined || !(await maySee(ctx, p, h))) throw new ServiceError(404, 'POS_ERR_HALT_UNKNOWN');
  return h;
}

/** Deliveries the principal may see: a merchant sees only its own terminals' rows. */
async function visibleDeliveries(ctx: Ctx, p: Principal, rows: OutboxRow[]): Promise<OutboxRow[]> {
  if (p.merchantId === null) return rows;
  const own = new Set(await ctx.store.listTerminalIds({ merchantId: p.merchantId }));
  return rows.filter((r) => own.has(r.terminalId));
}

/** Halt sources that are not a principal: a halt they ordered names the source as its creator. */
const AUTOMATIC_CREATORS = new Set(['policy', 'velocity', 'correlation', 'liveness']);

/**
 * The merchant a halt's creator was scoped to: a merchant id, null for a provider-wide principal, or
 * undefined for an automatic source. An operator or token that no longer exists counts as
 * provider-wide (fail closed: a merchant never lifts a halt whose author it cannot prove was its own).
 */
async function creatorScope(ctx: Ctx, createdBy: string): Promise<string | null | undefined> {
  if (AUTOMATIC_CREATORS.has(createdBy)) return undefined;
  const sep = createdBy.indexOf(':');
  const kind = createdBy.slice(0, sep);
  const id = createdBy.slice(sep + 1);
  if (sep > 0 && kind === 'operator') return (await ctx.store.getOperator(id))?.merchantId ?? null;
  if (sep > 0 && kind === 'token')
    return (await ctx.store.listApiTokens()).find((t) => t.id === id)?.merchantId ?? null;
  return null;
}

/**
 * Lift authority: a provider-wide principal lifts any halt; a merchant-scoped one only a halt of its
 * own merchant or terminal (never a fleet or app-version halt) that no provider-wide principal ordered
 * (an operator of merchant A must not lift the provider's halt on merchant A). Throws 403.
 */
async function checkLift(ctx: Ctx, p: Principal, h: HaltRow): Promise<void> {
  if (p.merchantId === null) return;
  if (h.scope === 'fleet' || h.scope === 'app-version') throw new ServiceError(403, 'POS_ERR_FORBIDDEN');
  const creator = await creatorScope(ctx, h.createdBy);
  if (creator !== undefined && creator !== p.merchantId) throw new ServiceError(403, 'POS_ERR_FORBIDDEN');
}

/** Checks scope, target and the principal's reach; resolves to the target (null for the fleet). */
async function checkHaltOrder(
  ctx: Ctx,
  p: Principal,
  scope: z.infer<typeof Scope>,
  target: string | undefined,
): Promise<{ target: string | null; merchantId: string | null }> {
  if ((scope === 'fleet') !== (target === undefined)) throw new ServiceError(400, 'POS_ERR_HALT_TARGET');
  if (scope === 'fleet' || scope === 'app-version') {
    if (p.merchantId !== null) throw new ServiceError(403, 'POS_ERR_FORBIDDEN');
    return { target: target ?? null, merchantId: null };
  }
  const t = target ?? '';
  if (scope === 'merchant') {
    if (!canReachMerchant(p, t) || (await ctx.store.getMerchant(t)) === undefined)
      throw new ServiceError(404, 'POS_ERR_MERCHANT_UNKNOWN');
    return { target: t, merchantId: t };
  }
  const terminal = await ctx.store.getTerminal(t);
  if (terminal === undefined || !canReachMerchant(p, terminal.merchantId))
    throw new ServiceError(404, 'POS_ERR_TERMINAL_UNKNOWN');
  if (terminal.state === 'decommissioned') throw new ServiceError(409, 'POS_ERR_TERMINAL_DECOMMISSIONED');
  return { target: t, merchantId: terminal.merchantId };
}

export function registerFleetRoutes(appIn: FastifyInstance, ctx: Ctx): void {
  const app = appIn.withTypeProvider<ZodTypeProvider>();
  const opts = { bodyLimit: 16 * 1024 };

  app.post(
    '/v1/halts',
    {
      ...opts,
      schema: {
        tags: Tags,
        summary: 'Halt a terminal, a merchant, an app version or the fleet: stored, audited, pushed',
        security: Security,
        body: HaltBody,
        response: { 201: z.object({ haltId: z.string(), terminals: z.number().int() }) },
      },
    },
    async (request, reply) => {
      const p = await requirePrincipal(ctx, request, 'halt');
      const { scope, target, reason } = request.body;
      const checked = await checkHaltOrder(ctx, p, scope, target);
      const { halt, terminalIds } = await ctx.fleet.halt({
        scope,
        target: checked.target,
        reason,
        actor: p.actor,
        source: 'operator',
        merchantId: checked.merchantId,
      });
      return reply.code(201).send({ haltId: halt.id, terminals: terminalIds.length });
    },
  );

  app.get(
    '/v1/halts',
    {
      schema: {
        tags: Tags,
        summary: 'Halts, newest first (active only by default)',
        security: Security,
        querystring: z.strictObject({
          state: z.enum(['active', 'all']).default('active'),
          limit: z.coerce.number().int().min(1).max(500).default(100),
        }),
        response: { 200: z.object({ halts: z.array(HaltOut) }) },
      },
    },
    async (request) => {
      const p = await requirePrincipal(ctx, request, 'read');
      const { state, limit } = request.query;
      const rows = await ctx.store.listHalts({ activeOnly: state === 'active', limit });
      const out: HaltRow[] = [];
      for (const h of rows) if (await maySee(ctx, p, h)) out.push(h);
      return { halts: out.map(haltOut) };
    },
  );

  app.get(
    '/v1/halts/:haltId',
    {
      schema: {
        tags: Tags,
        summary: 'One halt and its delivery per terminal: sent, acknowledged (who has the order)',
        security: Security,
        params: z.strictObject({ haltId: Id }),
        response: {
          200: HaltOut.extend({
            deliveries: z.array(DeliveryOut),
            acknowledged: z.number().int(),
            pending: z.number().int(),
          }),
        },
      },
    },
    async (request) => {
      const p = await requirePrincipal(ctx, request, 'read');
      const h = await haltOr404(ctx, p, request.params.haltId);
      const rows = await visibleDeliveries(ctx, p, await ctx.store.listHaltDeliveries(h.id));
      const acknowledged = rows.filter((r) => r.ackedAt !== null).length;
      return {
        ...haltOut(h),
        deliveries: rows.map(deliveryOut),
        acknowledged,
        pending: rows.length - acknowledged,
      };
    },
  );

  app.post(
    '/v1/halts/:haltId/lift',
    {
      ...opts,
      schema: {
        tags: Tags,
        summary:
          'Lift a halt: each terminal it halted becomes resume-pending unless another active halt covers it',
        security: Security,
        params: z.strictObject({ haltId: Id }),
        body: z.strictObject({ reason: Reason }),
        response: {
          200: z.object({
            haltId: z.string(),
            resumed: z.number().int(),
            stillHalted: z.number().int(),
          }),
        },
      },
    },
    async (request) => {
      const p = await requirePrincipal(ctx, request, 'resume');
      const h = await haltOr404(ctx, p, request.params.haltId);
      await checkLift(ctx, p, h);
      const result = await ctx.fleet.lift(h.id, request.body.reason, p.actor);
      if (!result.ok) throw new ServiceError(result.code === 'POS_ERR_HALT_LIFTED' ? 409 : 404, result.code);
      return { haltId: h.id, resumed: result.resumed.length, stillHalted: result.stillHalted.length };
    },
  );

  for (const action of ['halt', 'resume'] as const) {
    app.post(
      `/v1/terminals/:terminalId/${action}`,
      {
        ...opts,
        schema: {
          tags: ['operator', ...Tags],
          summary:
            action === 'halt'
              ? 'Halt a terminal (a terminal-scope halt): no ticket, no transaction; pushed to it'
              : 'Resume a halted terminal: lifts its terminal halts; resume-pending until an affirming attestation made after it',
          security: Security,
          params: z.strictObject({ terminalId: Id }),
          body: z.strictObject({ reason: Reason }),
          response: {
            200: z.object({
              terminalId: z.string(),
              state: z.enum(['halted', 'resume-pending']),
              haltId: z.string().optional(),
            }),
          },
        },
      },
      async (request) => {
        const p = await requirePrincipal(ctx, request, action);
        const terminalId = request.params.terminalId;
        const terminal = await ctx.store.getTerminal(terminalId);
        if (terminal === undefined || !canReachMerchant(p, terminal.merchantId))
          throw new ServiceError(404, 'POS_ERR_TERMINAL_UNKNOWN');
        // Final: no halt (it is refused everywhere already) and no resume.
        if (terminal.state === 'decommissioned')
          throw new ServiceError(409, 'POS_ERR_TERMINAL_DECOMMISSIONED');
        if (action === 'halt') {
          const { halt } = await ctx.fleet.halt({
            scope: 'terminal',
            target: terminalId,
            reason: request.body.reason,
            actor: p.actor,
            source: 'operator',
            merchantId: terminal.merchantId,
          });
          return { terminalId, state: 'halted' as const, haltId: halt.id };
        }
        // A merchant-scoped principal may not lift (through this shortcut) a terminal halt it could not
        // lift by id: one the provider ordered.
        if (p.merchantId !== null) {
          const active = await ctx.store.listHalts({ activeOnly: true, limit: 10_000 });
          for (const h of active)
            if (h.scope === 'terminal' && h.target === terminalId) await checkLift(ctx, p, h);
        }
        // M1: resume only opens the way back: the terminal gets no ticket until an affirming
        // attestation made after this moment moves it to active.
        const result = await ctx.fleet.resumeTerminal(terminalId, request.body.reason, p.actor);
        if (!result.ok)
          throw new ServiceError(result.code === 'POS_ERR_TERMINAL_UNKNOWN' ? 404 : 409, result.code);
        return { terminalId, state: 'resume-pending' as const };
      },
    );
  }

  app.post(
    '/v1/terminals/:terminalId/decommission',
    {
      ...opts,
      schema: {
        tags: ['operator', ...Tags],
        summary:
          'Decommission (retire) a terminal for good: its device key is refused on every terminal route; cannot be undone',
        description:
          'Permission `halt` (whoever may halt the terminal). One store transaction: state `decommissioned`, a notice pushed to an open push connection (then closed), the audit entry `terminal.decommission`. 409 POS_ERR_TERMINAL_DECOMMISSIONED when it already is.',
        security: Security,
        params: z.strictObject({ terminalId: Id }),
        body: z.strictObject({ reason: Reason }),
        response: {
          200: z.object({
            terminalId: z.string(),
            state: z.literal('decommissioned'),
            previousState: z.enum(['active', 'halted', 'resume-pending']),
          }),
        },
      },
    },
    async (request) => {
      const p = await requirePrincipal(ctx, request, 'halt');
      const terminalId = request.params.terminalId;
      const terminal = await ctx.store.getTerminal(terminalId);
      if (terminal === undefined || !canReachMerchant(p, terminal.merchantId))
        throw new ServiceError(404, 'POS_ERR_TERMINAL_UNKNOWN');
      const result = await ctx.fleet.decommission(terminalId, request.body.reason, p.actor);
      if (!result.ok)
        throw new ServiceError(result.code === 'POS_ERR_TERMINAL_UNKNOWN' ? 404 : 409, result.code);
      return { terminalId, state: 'decommissioned' as const, previousState: result.previous };
    },
  );
}
