/**
 * The audit record: an append-only hash chain. Entry n's hash is SHA-256 over the deterministic CBOR
 * (RFC 8949 4.2.1, @pos/shared `cborEncode`) of `{ v: 1, seq, prevHash, at, actor, action, subject,
 * data }`; entry 1's prevHash is 64 zeros. Checkpoints are compact JWS (ES256, the ticket key) over
 * `{ seq, hash, at }`, so an outsider holding the JWKS can tell a truncated or rewritten chain.
 * `data` is normalised through JSON first, so an entry exported as a JSON line re-hashes the same.
 */
import { createHash } from 'node:crypto';
import {
  cborEncode,
  constantTimeEqual,
  err,
  jwkFromPublicKey,
  ok,
  parseBase64url,
  PosError,
  toBase64url,
  type Result,
  type TrustedTicketKey,
} from '@pos/shared';
import { z } from 'zod';
import { verifyEs256 } from '../attestation/verifiers';
import type { TicketSigner } from '../tickets/index';

export interface AuditDraft {
  /** ISO 8601 time. */
  at: string;
  actor: string;
  action: string;
  subject: string;
  data: Record<string, unknown>;
}
export interface AuditEntry extends AuditDraft {
  seq: number;
  prevHash: string;
  hash: string;
}
export interface AuditCheckpoint {
  seq: number;
  hash: string;
  at: string;
  kid: string;
  /** Compact JWS over { seq, hash, at }. */
  signature: string;
}

export const AUDIT_GENESIS_HASH = '0'.repeat(64);
export const AUDIT_CHECKPOINT_TYPE = 'pos-audit-checkpoint+jwt';

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
export const AuditEntrySchema = z.strictObject({
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  prevHash: hex64,
  hash: hex64,
  at: z.string().min(1).max(64),
  actor: z.string().max(256),
  action: z.string().min(1).max(128),
  subject: z.string().max(256),
  data: z.record(z.string(), z.unknown()),
});
export const AuditCheckpointSchema = z.strictObject({
  seq: z.number().int().min(1).max(Number.MAX_SAFE_INTEGER),
  hash: hex64,
  at: z.string().min(1).max(64),
  kid: z.string().min(1).max(128),
  signature: z.string().max(2048),
});

/** JSON-normalised copy: what is stored and exported is exactly what is hashed. */
function normaliseData(data: Record<string, unknown>): Record<string, unknown> {
  let copy: unknown;
  try {
    copy = JSON.parse(JSON.stringify(data ?? {})) as unknown;
  } catch {
    throw new PosError('POS_ERR_AUDIT_MALFORMED', 'audit data must be JSON (no BigInt, no cycles)');
  }
  if (typeof copy !== 'object' || copy === null || Array.isArray(copy)) return {};
  return copy as Record<string, unknown>;
}

/** The hash of an entry's content (everything but `hash`), hex SHA-256 of its deterministic CBOR. */
export function auditEntryHash(e: Omit<AuditEntry, 'hash'>): string {
  const bytes = cborEncode({
    v: 1,
    seq: e.seq,
    prevHash: e.prevHash,
    at: e.at,
    actor: e.actor,
    action: e.action,
    subject: e.subject,
    data: e.data,
  });
  return createHash('sha256').update(bytes).digest('hex');
}

/** The next entry of the chain after `prev` (undefined: the first entry). */
export function chainAuditEntry(prev: AuditEntry | undefined, draft: AuditDraft): AuditEntry {
  const body = {
    seq: prev === undefined ? 1 : prev.seq + 1,
    prevHash: prev === undefined ? AUDIT_GENESIS_HASH : prev.hash,
    at: draft.at,
    actor: draft.actor,
    action: draft.action,
    subject: draft.subject,
    data: normaliseData(draft.data),
  };
  return { ...body, hash: auditEntryHash(body) };
}

const encoder = new TextEncoder();
const decoder = new TextDecoder();
const b64json = (value: unknown): string => toBase64url(encoder.encode(JSON.stringify(value)));

/** Signs a checkpoint over the chain's head with the ticket key. */
export async function signAuditCheckpoint(
  head: AuditEntry,
  signer: TicketSigner,
  at: string,
): Promise<AuditCheckpoint> {
  const h = b64json({ alg: 'ES256', kid: signer.kid, typ: AUDIT_CHECKPOINT_TYPE });
  const p = b64json({ seq: head.seq, hash: head.hash, at });
  const signature = await signer.sign(encoder.encode(`${h}.${p}`));
  if (!(signature instanceof Uint8Array) || signature.length !== 64) {
    throw new PosError('POS_ERR_TICKET_SIGNER', 'the signer did not return a 64-byte ES256 signature');
  }
  return {
    seq: head.seq,
    hash: head.hash,
    at,
    kid: signer.kid,
    signature: `${h}.${p}.${toBase64url(signature)}`,
  };
}

export type AuditErrorCode =
  | 'POS_ERR_AUDIT_MALFORMED'
  | 'POS_ERR_AUDIT_SEQUENCE'
  | 'POS_ERR_AUDIT_LINK'
  | 'POS_ERR_AUDIT_HASH'
  | 'POS_ERR_AUDIT_CHECKPOINT';

const CheckpointHeaderSchema = z.strictObject({
  alg: z.literal('ES256'),
  kid: z.string().min(1).max(128),
  typ: z.literal(AUDIT_CHECKPOINT_TYPE),
});
const CheckpointPayloadSchema = z.strictObject({ seq: z.number().int(), hash: hex64, at: z.string() });

function decodePart(part: string): unknown {
  const b = parseBase64url(part);
  if (!b.ok) return undefined;
  try {
    return JSON.parse(decoder.decode(b.bytes)) as unknown;
  } catch {
    return undefined;
  }
}

/** Checks one checkpoint's signature under the trusted keys and that its fields match its JWS. */
export function verifyAuditCheckpoint(
  cp: AuditCheckpoint,
  keys: readonly TrustedTicketKey[],
): Result<object, AuditErrorCode> {
  const bad = (detail: string) =>
    err('POS_ERR_AUDIT_CHECKPOINT' as const, `checkpoint at ${cp.seq}: ${detail}`);
  if (!AuditCheckpointSchema.safeParse(cp).success) return bad('malformed');
  const parts = cp.signature.split('.');
  if (parts.length !== 3) return bad('the signature is not a compact JWS');
  const [h, p, s] = parts as [string, string, string];
  const header = CheckpointHeaderSchema.safeParse(decodePart(h));
  const payload = CheckpointPayloadSchema.safeParse(decodePart(p));
  const sig = parseBase64url(s);
  if (!header.success || !payload.success || !sig.ok || sig.bytes.length !== 64)
    return bad('the JWS is malformed');
  if (header.data.kid !== cp.kid) return bad('the key id differs from the JWS');
  const key = keys.find((k) => k.kid === cp.kid);
  if (key === undefined) return bad('signed under a key that is not trusted');
  let valid: boolean;
  try {
    valid = verifyEs256(jwkFromPublicKey(key.publicKey), encoder.encode(`${h}.${p}`), sig.bytes);
  } catch {
    valid = false;
  }
  if (!valid) return bad('the signature does not verify');
  if (payload.data.seq !== cp.seq || payload.data.hash !== cp.hash || payload.data.at !== cp.at) {
    return bad('the signed values differ from the checkpoint');
  }
  return ok({});
}

/**
 * Walks the chain from its first entry: sequence numbers 1, 2, 3..., each prevHash the previous hash,
 * each hash recomputed. Finds a changed entry (hash), a removed, inserted or reordered one (sequence or
 * link), and with checkpoints and keys a forged checkpoint or a chain cut short before a checkpoint.
 */
export function verifyAuditChain(
  entries: Iterable<AuditEntry>,
  opts: { checkpoints?: readonly AuditCheckpoint[]; keys?: readonly TrustedTicketKey[] } = {},
): Result<{ count: number; head: string }, AuditErrorCode> {
  const checkpoints = new Map<number, AuditCheckpoint[]>();
  for (const cp of opts.checkpoints ?? []) {
    const checked = verifyAuditCheckpoint(cp, opts.keys ?? []);
    if (!checked.ok) return checked;
    checkpoints.set(cp.seq, [...(checkpoints.get(cp.seq) ?? []), cp]);
  }
  let expectedSeq = 1;
  let prevHash = AUDIT_GENESIS_HASH;
  let count = 0;
  for (const raw of entries) {
    const parsed = AuditEntrySchema.safeParse(raw);
    if (!parsed.success)
      return err('POS_ERR_AUDIT_MALFORMED', `entry ${count + 1} does not have the entry shape`);
    const e = parsed.data;
    if (e.seq !== expectedSeq) {
      return err(
        'POS_ERR_AUDIT_SEQUENCE',
        `entry ${count + 1} has sequence ${e.seq}, expected ${expectedSeq} (removed, inserted or reordered)`,
      );
    }
    if (!constantTimeEqual(encoder.encode(e.prevHash), encoder.encode(prevHash))) {
      return err('POS_ERR_AUDIT_LINK', `entry ${e.seq} does not link to the entry before it`);
    }
    let recomputed: string;
    try {
      recomputed = auditEntryHash({ ...e, data: normaliseData(e.data) });
    } catch {
      return err('POS_ERR_AUDIT_MALFORMED', `entry ${e.seq} cannot be encoded`);
    }
    if (recomputed !== e.hash)
      return err('POS_ERR_AUDIT_HASH', `entry ${e.seq} was changed after it was written`);
    for (const cp of checkpoints.get(e.seq) ?? []) {
      if (cp.hash !== e.hash)
        return err('POS_ERR_AUDIT_CHECKPOINT', `the checkpoint at ${e.seq} signs another chain`);
    }
    prevHash = e.hash;
    expectedSeq += 1;
    count += 1;
  }
  for (const seq of checkpoints.keys()) {
    if (seq > count)
      return err(
        'POS_ERR_AUDIT_CHECKPOINT',
        `a checkpoint at ${seq} is beyond the chain's end (${count}): entries were removed`,
      );
  }
  return ok({ count, head: prevHash });
}
