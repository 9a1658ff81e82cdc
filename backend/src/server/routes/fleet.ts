/**
 * Fleet routes: halts and resumes (a terminal, a merchant, an app version, the fleet), their delivery
 * acknowledgements, and the terminals' authenticated push connection.
 */
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireOperator, type Ctx } from '../context';
import { ServiceError } from '../http-errors';

const IdParam = (name: string): z.ZodObject => z.strictObject({ [name]: z.string().min(1).max(128) });
const Security = [{ operatorToken: [] }];

export function registerFleetRoutes(appIn: FastifyInstance, ctx: Ctx): void {
  const app = appIn.withTypeProvider<ZodTypeProvider>();
  const opts = { bodyLimit: 16 * 1024 };
  for (const action of ['halt', 'resume'] as const) {
    app.post(
      `/v1/terminals/:terminalId/${action}`,
      {
        ...opts,
        schema: {
          tags: ['operator'],
          summary:
            action === 'halt'
              ? 'Halt a terminal: no ticket, no transaction'
              : 'Resume a halted terminal: resume-pending until an affirming attestation made after it',
          security: Security,
          params: IdParam('terminalId'),
          body: z.strictObject({ reason: z.string().min(1).max(500) }),
          response: {
            200: z.object({ terminalId: z.string(), state: z.enum(['halted', 'resume-pending']) }),
          },
        },
      },
      async (request) => {
        const actor = await requireOperator(ctx, request);
        const terminalId = (request.params as { terminalId: string }).terminalId;
        const now = ctx.clock.now();
        let state: 'halted' | 'resume-pending';
        if (action === 'halt') {
          state = 'halted';
          if (!(await ctx.store.setTerminalState(terminalId, state, request.body.reason, now)))
            throw new ServiceError(404, 'POS_ERR_TERMINAL_UNKNOWN');
          ctx.metrics.halts.inc({ source: 'operator' });
        } else {
          // M1: resume only opens the way back: the terminal gets no ticket until an affirming
          // attestation made after this moment moves it to active.
          state = 'resume-pending';
          const moved = await ctx.store.transitionTerminalState(
            terminalId,
            'halted',
            state,
            'resumed: awaiting an affirming attestation',
            now,
          );
          if (!moved) {
            if ((await ctx.store.getTerminal(terminalId)) === undefined)
              throw new ServiceError(404, 'POS_ERR_TERMINAL_UNKNOWN');
            throw new ServiceError(409, 'POS_ERR_TERMINAL_NOT_HALTED');
          }
        }
        await ctx.audit(actor, `terminal.${action}`, terminalId, { reason: request.body.reason, state });
        return { terminalId, state };
      },
    );
  }
}
