/**
 * Live events for the dashboard (and for tests): every event names its merchant (null for fleet-wide
 * ones) so the event stream can show each operator only what their tenant may see. Events carry no
 * secret and no card data.
 */
import { z } from 'zod';

const id = z.string().min(1).max(128);
const base = { at: z.number().int(), merchantId: id.nullable() };

export const FleetEventSchema = z.discriminatedUnion('type', [
  z.strictObject({
    ...base,
    type: z.literal('verdict'),
    terminalId: id,
    tier: z.string(),
    purpose: z.string(),
  }),
  z.strictObject({
    ...base,
    type: z.literal('halt'),
    haltId: id,
    scope: z.enum(['terminal', 'merchant', 'app-version', 'fleet']),
    target: z.string().nullable(),
    reason: z.string(),
    source: z.string(),
    terminals: z.number().int().nonnegative(),
  }),
  z.strictObject({
    ...base,
    type: z.literal('resume'),
    haltId: id,
    terminals: z.number().int().nonnegative(),
  }),
  z.strictObject({
    ...base,
    type: z.literal('ack'),
    haltId: id,
    terminalId: id,
    seq: z.number().int().positive(),
    latencyMs: z.number().nonnegative(),
  }),
  z.strictObject({ ...base, type: z.literal('stale'), terminalId: id, overdueMs: z.number().nonnegative() }),
  z.strictObject({
    ...base,
    type: z.literal('velocity'),
    terminalId: id,
    rule: z.string(),
    action: z.string(),
  }),
  z.strictObject({
    ...base,
    type: z.literal('correlation'),
    terminalId: id,
    kind: z.enum(['device-key-two-connections', 'counter-replay', 'reader-serial-shared']),
  }),
  z.strictObject({ ...base, type: z.literal('connection'), terminalId: id, connected: z.boolean() }),
  z.strictObject({ ...base, type: z.literal('decommission'), terminalId: id, reason: z.string() }),
]);
export type FleetEvent = z.infer<typeof FleetEventSchema>;
