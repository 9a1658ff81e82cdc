/**
 * The push protocol between the service and a terminal (`GET /v1/push`, WebSocket; docs/fleet.md).
 * Shared by the server (fleet/push.ts) and the terminal-side client (fleet/push-client.ts): every
 * frame either side receives is parsed with these schemas.
 */
import { z } from 'zod';

/** Path of the push endpoint (the proof's `htu` is `${issuer}${PUSH_PATH}`). */
export const PUSH_PATH = '/v1/push';
/** Largest frame either side accepts, bytes. */
export const PUSH_MAX_FRAME = 4096;

/**
 * Close codes: 1008 malformed frame or too many frames, 4409 device key already connected
 * (correlation), 1001 shutdown, 1013 try again later (the connection could not be registered yet).
 */
export const CLOSE_POLICY = 1008;
export const CLOSE_DUPLICATE = 4409;
export const CLOSE_GOING_AWAY = 1001;
export const CLOSE_TRY_AGAIN = 1013;
/**
 * The terminal was decommissioned (docs/fleet.md "Decommissioning"): the server sent its notice (a
 * `halt` message whose haltId is a decommission notice id) and closed the connection; the terminal's
 * device key is refused from now on, so a client does not reconnect.
 */
export const CLOSE_DECOMMISSIONED = 4410;

/** Prefix of a decommission notice's id, carried in the `haltId` of its `halt` message. */
export const DECOMMISSION_NOTICE_PREFIX = 'dcm_';
/** True when a `halt` message is a decommission notice (its haltId names no halt). */
export function isDecommissionNotice(haltId: string): boolean {
  return haltId.startsWith(DECOMMISSION_NOTICE_PREFIX);
}
/** The reason a decommission notice carries: `decommissioned: <reason>`, cut to the message's 500. */
export function decommissionNoticeReason(reason: string): string {
  let out = 'decommissioned: ';
  for (const ch of reason) {
    if (out.length + ch.length > 500) break;
    out += ch;
  }
  return out;
}

/** Server → terminal: one outbox message. `at`: when the halt (or lift) was ordered, ms since the epoch. */
export const ServerMessageSchema = z.strictObject({
  type: z.enum(['halt', 'resume']),
  seq: z.number().int().positive(),
  haltId: z.string().min(1).max(128),
  reason: z.string().max(500),
  at: z.number().int().nonnegative(),
});
export type ServerMessage = z.infer<typeof ServerMessageSchema>;

/** Terminal → server: acknowledges one message by its seq. */
export const TerminalMessageSchema = z.strictObject({
  type: z.literal('ack'),
  seq: z.number().int().positive().max(Number.MAX_SAFE_INTEGER),
});
export type TerminalMessage = z.infer<typeof TerminalMessageSchema>;

/** Parses a text frame as JSON then with the schema; undefined when it is not a valid message. */
export function parseFrame<T>(schema: z.ZodType<T>, data: string): T | undefined {
  if (data.length > PUSH_MAX_FRAME) return undefined;
  let json: unknown;
  try {
    json = JSON.parse(data);
  } catch {
    return undefined;
  }
  const parsed = schema.safeParse(json);
  return parsed.success ? parsed.data : undefined;
}
