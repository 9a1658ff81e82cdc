/**
 * The one place the service imports Engineer D's domain modules from (evidence verifiers, policy,
 * tickets, audit chain, acquirer host). Until D's modules land this file holds a minimal stand-in with
 * the agreed signatures (the issue 4 contract); routes import only from here, so the swap is one file.
 *
 * STAND-IN: small, fail-closed, enough for the routes and their tests. Replace with re-exports of
 * backend/src/attestation, backend/src/tickets, backend/src/audit, backend/src/acquirer and
 * shared/src/evidence.ts as soon as they exist.
 */
import { createHash, createPublicKey, verify as nodeVerify } from 'node:crypto';
import {
  aesDukptWorkingKey,
  constantTimeEqual,
  decodePinBlock,
  decryptCardData,
  err,
  ok,
  parseAesKsn,
  parseBase64url,
  pinDigitsToText,
  toBase64url,
  wipe,
  TICKET_AUDIENCE,
  type EncryptedCardData,
  type P256Jwk,
  type Result,
  type TicketClaims,
  type TicketPermission,
  type TrustTier,
  type TrustedTicketKey,
} from '@pos/shared';
import { TEST_CARDS } from '@pos/shared/testcards';
import { z } from 'zod';

// ---- shared/src/evidence.ts (contract) ----
export const EVIDENCE_TYPE = 'pos-evidence+jwt';
const PURPOSES = ['enrollment', 'startup', 'periodic', 'pre-transaction', 'pre-pin'] as const;
export const EvidenceClaimsSchema = z.object({
  iss: z.string().min(1).max(128),
  iat: z.number().int().nonnegative(),
  challenge: z.string().regex(/^[A-Za-z0-9_-]{43}$/),
  counter: z.number().int().nonnegative(),
  purpose: z.enum(PURPOSES),
  nonce: z.string().max(128).optional(),
  app: z.object({
    version: z.string().max(64),
    build: z.enum(['release', 'development']),
    codeHash: z.string().regex(/^[0-9a-f]{64}$/),
  }),
  shell: z.enum(['electron', 'browser', 'headless']),
  measurements: z
    .array(
      z.object({
        name: z.string().max(64),
        status: z.enum(['ok', 'fail', 'unknown']),
        method: z.string().max(128),
        value: z.string().max(512).optional(),
      }),
    )
    .max(64),
  time: z.number().int().nonnegative(),
});
export type EvidenceClaims = z.infer<typeof EvidenceClaimsSchema>;

// ---- backend/src/attestation (contract) ----
export type Ar4siCategory =
  | 'instance-identity'
  | 'configuration'
  | 'executables'
  | 'file-system'
  | 'hardware'
  | 'runtime-opaque'
  | 'storage-opaque'
  | 'sourced-data';
export type TrustVector = Partial<Record<Ar4siCategory, number>>;
export interface ReferenceValues {
  version: string;
  build: 'release' | 'development';
  codeHashes: readonly string[];
  fuseWire?: string;
  executableHashes?: readonly string[];
  allowedShells: readonly ('electron' | 'browser' | 'headless')[];
}
export interface TerminalContext {
  terminalId: string;
  merchantId: string;
  deviceJwk: P256Jwk;
  deviceJkt: string;
  readerSerial?: string;
  lastCounter: number;
}
export interface ChallengeContext {
  value: string;
  terminalId: string | null;
  expiresAt: number;
  usedAt: number | null;
}
export interface AppraisalInput {
  evidenceJws: string;
  terminal: TerminalContext;
  challenge: ChallengeContext | undefined;
  referenceValues: readonly ReferenceValues[];
  readerCaRoots: readonly Uint8Array[];
  now: number;
  expectedPurpose?: EvidenceClaims['purpose'];
  expectedNonce?: string;
}
export type VerifierOutcome = {
  verifier: string;
  category: Ar4siCategory;
  status: 'pass' | 'fail' | 'unknown' | 'error';
  code?: string;
  detail?: string;
};
export interface Appraisal {
  outcomes: readonly VerifierOutcome[];
  claims?: EvidenceClaims;
  trustVector: TrustVector;
  signatureValid: boolean;
}
export interface Verdict {
  tier: TrustTier;
  trustVector: TrustVector;
  reasons: readonly { code: string; text: string }[];
  policyVersion: string;
  halt: boolean;
  shadow: readonly { policyVersion: string; tier: TrustTier; halt: boolean }[];
}
export const PolicySchema = z.object({
  version: z.string().min(1).max(64),
  unknownIs: z.enum(['warning', 'contraindicated']).default('warning'),
});
export type Policy = z.infer<typeof PolicySchema>;
export const DEFAULT_POLICY: Policy = { version: 'default-1', unknownIs: 'warning' };

function decodeJsonPart(part: string): unknown {
  const b = parseBase64url(part);
  if (!b.ok) return undefined;
  try {
    return JSON.parse(Buffer.from(b.bytes).toString('utf8')) as unknown;
  } catch {
    return undefined;
  }
}

export function appraiseEvidence(input: AppraisalInput): Promise<Appraisal> {
  const outcomes: VerifierOutcome[] = [];
  const fail = (verifier: string, category: Ar4siCategory, code: string, detail: string): Appraisal => {
    outcomes.push({ verifier, category, status: 'fail', code, detail });
    return { outcomes, trustVector: { [category]: 96 }, signatureValid: false };
  };
  const parts = input.evidenceJws.split('.');
  if (parts.length !== 3)
    return Promise.resolve(
      fail('signature', 'instance-identity', 'POS_ERR_EVIDENCE_MALFORMED', 'not a compact JWS'),
    );
  const [h, p, s] = parts as [string, string, string];
  const header = z
    .object({ alg: z.literal('ES256'), typ: z.literal(EVIDENCE_TYPE) })
    .safeParse(decodeJsonPart(h));
  const claims = EvidenceClaimsSchema.safeParse(decodeJsonPart(p));
  const sig = parseBase64url(s);
  if (!header.success || !claims.success || !sig.ok || sig.bytes.length !== 64)
    return Promise.resolve(
      fail('signature', 'instance-identity', 'POS_ERR_EVIDENCE_MALFORMED', 'bad evidence shape'),
    );
  let valid: boolean;
  try {
    const key = createPublicKey({ key: input.terminal.deviceJwk, format: 'jwk' });
    valid = nodeVerify('sha256', Buffer.from(`${h}.${p}`), { key, dsaEncoding: 'ieee-p1363' }, sig.bytes);
  } catch {
    valid = false;
  }
  if (!valid)
    return Promise.resolve(fail('signature', 'instance-identity', 'POS_ERR_EVIDENCE_SIGNATURE', 'signature'));
  const c = claims.data;
  outcomes.push({ verifier: 'signature', category: 'instance-identity', status: 'pass' });
  const ch = input.challenge;
  const expectIss = ch?.terminalId === null ? 'enrolling' : input.terminal.terminalId;
  if (c.iss !== expectIss)
    outcomes.push({
      verifier: 'issuer',
      category: 'instance-identity',
      status: 'fail',
      code: 'POS_ERR_EVIDENCE_ISSUER',
    });
  if (
    ch === undefined ||
    ch.value !== c.challenge ||
    ch.usedAt !== null ||
    ch.expiresAt <= input.now ||
    (ch.terminalId !== null && ch.terminalId !== input.terminal.terminalId)
  )
    outcomes.push({
      verifier: 'challenge',
      category: 'instance-identity',
      status: 'fail',
      code: 'POS_ERR_EVIDENCE_CHALLENGE',
    });
  if (c.counter <= input.terminal.lastCounter)
    outcomes.push({
      verifier: 'counter',
      category: 'instance-identity',
      status: 'fail',
      code: 'POS_ERR_EVIDENCE_COUNTER',
    });
  if (input.expectedPurpose !== undefined && c.purpose !== input.expectedPurpose)
    outcomes.push({
      verifier: 'purpose',
      category: 'instance-identity',
      status: 'fail',
      code: 'POS_ERR_EVIDENCE_PURPOSE',
    });
  if (c.purpose === 'pre-pin' && (input.expectedNonce === undefined || c.nonce !== input.expectedNonce))
    outcomes.push({
      verifier: 'nonce',
      category: 'instance-identity',
      status: 'fail',
      code: 'POS_ERR_EVIDENCE_NONCE',
    });
  const ref = input.referenceValues.find((r) => r.version === c.app.version && r.build === c.app.build);
  if (ref === undefined || !ref.codeHashes.includes(c.app.codeHash) || !ref.allowedShells.includes(c.shell))
    outcomes.push({
      verifier: 'reference-values',
      category: 'executables',
      status: 'fail',
      code: 'POS_ERR_EVIDENCE_REFERENCE',
    });
  for (const m of c.measurements)
    if (m.status !== 'ok')
      outcomes.push({
        verifier: `measurement:${m.name}`,
        category: 'runtime-opaque',
        status: m.status === 'fail' ? 'fail' : 'unknown',
        code: 'POS_ERR_EVIDENCE_MEASUREMENT',
      });
  const bad = outcomes.some((o) => o.status === 'fail' || o.status === 'error');
  return Promise.resolve({
    outcomes,
    claims: c,
    trustVector: { 'instance-identity': bad ? 96 : 2 },
    signatureValid: true,
  });
}

export function evaluatePolicy(
  policy: Policy,
  appraisal: Appraisal,
  shadowPolicies: readonly Policy[] = [],
): Verdict {
  const one = (pol: Policy): { tier: TrustTier; halt: boolean } => {
    if (!appraisal.signatureValid) return { tier: 'contraindicated', halt: false };
    const failing = appraisal.outcomes.filter((o) => o.status === 'fail' || o.status === 'error');
    if (
      failing.some(
        (o) =>
          o.status === 'error' || o.verifier === 'reference-values' || o.verifier.startsWith('measurement:'),
      )
    )
      return { tier: 'contraindicated', halt: true };
    if (failing.length > 0) return { tier: 'none', halt: false };
    if (appraisal.outcomes.some((o) => o.status === 'unknown'))
      return { tier: pol.unknownIs, halt: pol.unknownIs === 'contraindicated' };
    return { tier: 'affirming', halt: false };
  };
  const main = one(policy);
  return {
    ...main,
    trustVector: appraisal.trustVector,
    reasons: appraisal.outcomes
      .filter((o) => o.status !== 'pass')
      .map((o) => ({ code: o.code ?? 'POS_ERR_EVIDENCE', text: o.verifier })),
    policyVersion: policy.version,
    shadow: shadowPolicies.map((s) => ({ policyVersion: s.version, ...one(s) })),
  };
}

// ---- backend/src/tickets (contract) ----
export interface TicketSigner {
  readonly kid: string;
  sign(signingInput: Uint8Array): Uint8Array | Promise<Uint8Array>;
}
const enc = (o: unknown): string => toBase64url(Buffer.from(JSON.stringify(o)));
export async function signTicket(claims: TicketClaims, signer: TicketSigner): Promise<string> {
  const input = `${enc({ alg: 'ES256', kid: signer.kid, typ: 'pos-ticket+jwt' })}.${enc(claims)}`;
  const sig = await signer.sign(Buffer.from(input));
  return `${input}.${toBase64url(sig)}`;
}
export function ticketClaims(opts: {
  issuer: string;
  terminalId: string;
  merchantId: string;
  deviceJkt: string;
  readerSerial: string;
  verdict: Verdict;
  use: 'session' | 'pin-entry';
  nonce?: string;
  now: number;
  lifetimeS?: number;
  jti: string;
}): Result<{ claims: TicketClaims }, `POS_ERR_${string}`> {
  const { verdict } = opts;
  if (verdict.halt || verdict.tier === 'contraindicated' || verdict.tier === 'none')
    return err('POS_ERR_TICKET_TIER', 'the verdict allows no ticket');
  if (opts.use === 'pin-entry' && (verdict.tier !== 'affirming' || opts.nonce === undefined))
    return err('POS_ERR_TICKET_TIER', 'PIN entry needs an affirming verdict and a nonce');
  const iat = Math.floor(opts.now / 1000);
  const perm: TicketPermission[] = opts.use === 'pin-entry' ? ['pin-entry'] : ['transact'];
  return ok({
    claims: {
      iss: opts.issuer,
      sub: opts.terminalId,
      aud: TICKET_AUDIENCE,
      iat,
      exp: iat + (opts.lifetimeS ?? 60),
      jti: opts.jti,
      cnf: { jkt: opts.deviceJkt },
      rsn: opts.readerSerial,
      mid: opts.merchantId,
      use: opts.use,
      tier: verdict.tier,
      perm,
      ...(opts.nonce === undefined ? {} : { nonce: opts.nonce }),
    },
  });
}

// ---- backend/src/audit (contract) ----
export interface AuditDraft {
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
  signature: string;
}
const GENESIS = '0'.repeat(64);
const entryHash = (seq: number, prevHash: string, d: AuditDraft): string =>
  createHash('sha256')
    .update(JSON.stringify([seq, prevHash, d.at, d.actor, d.action, d.subject, d.data]))
    .digest('hex');
export function chainAuditEntry(prev: AuditEntry | undefined, draft: AuditDraft): AuditEntry {
  const seq = prev === undefined ? 1 : prev.seq + 1;
  const prevHash = prev?.hash ?? GENESIS;
  return { ...draft, seq, prevHash, hash: entryHash(seq, prevHash, draft) };
}
export function verifyAuditChain(
  entries: Iterable<AuditEntry>,
  _opts?: { checkpoints?: readonly AuditCheckpoint[]; keys?: readonly TrustedTicketKey[] },
): Result<{ count: number; head: string }, `POS_ERR_${string}`> {
  let prev: AuditEntry | undefined;
  let count = 0;
  for (const e of entries) {
    const expectSeq = prev === undefined ? 1 : prev.seq + 1;
    const expectPrev = prev?.hash ?? GENESIS;
    if (e.seq !== expectSeq || e.prevHash !== expectPrev || e.hash !== entryHash(e.seq, e.prevHash, e))
      return err('POS_ERR_AUDIT_CHAIN', `the chain breaks at entry ${e.seq}`);
    prev = e;
    count++;
  }
  return ok({ count, head: prev?.hash ?? GENESIS });
}
export async function signAuditCheckpoint(
  head: AuditEntry,
  signer: TicketSigner,
  at: string,
): Promise<AuditCheckpoint> {
  const input = `${enc({ alg: 'ES256', kid: signer.kid, typ: 'pos-audit-checkpoint+jwt' })}.${enc({ seq: head.seq, hash: head.hash, at })}`;
  const sig = await signer.sign(Buffer.from(input));
  return { seq: head.seq, hash: head.hash, at, kid: signer.kid, signature: `${input}.${toBase64url(sig)}` };
}

// ---- backend/src/acquirer (contract) ----
export interface VelocityStore {
  /** Adds one event under `key` at `now` and returns how many events the key has in the last `windowMs`. */
  hit(key: string, now: number, windowMs: number): Promise<number>;
}
export type AuthorizationResult =
  | { approved: true; authCode: string; cardToken: string }
  | {
      approved: false;
      code: string;
      reason: string;
      cardToken?: string;
      velocity?: { action: 'warn' | 'halt'; rule: string };
    };
export interface AcquirerHost {
  authorize(req: {
    terminalId: string;
    amount: number;
    currency: string;
    ksn: Uint8Array;
    cardData: EncryptedCardData;
    pinBlock?: Uint8Array;
    now: number;
  }): Promise<AuthorizationResult>;
}
export function createAcquirerHost(opts: {
  bdks: ReadonlyMap<string, Uint8Array>;
  velocity: VelocityStore;
}): AcquirerHost {
  return {
    async authorize(req) {
      const perMinute = await opts.velocity.hit(`terminal:${req.terminalId}`, req.now, 60_000);
      if (perMinute > 30)
        return {
          approved: false,
          code: 'POS_ERR_VELOCITY',
          reason: 'too many transactions',
          velocity: { action: 'halt', rule: 'terminal-per-minute' },
        };
      const ksn = parseAesKsn(req.ksn);
      if (!ksn.ok) return { approved: false, code: ksn.code, reason: 'bad KSN' };
      const bdk = opts.bdks.get(Buffer.from(req.ksn.subarray(0, 4)).toString('hex').toUpperCase());
      if (bdk === undefined)
        return { approved: false, code: 'POS_ERR_ACQUIRER_BDK_UNKNOWN', reason: 'unknown BDK' };
      const dataKey = aesDukptWorkingKey({ bdk, ksn: ksn.ksn, usage: 'data-encryption', keyType: 'aes128' });
      if (!dataKey.ok) return { approved: false, code: dataKey.code, reason: 'key derivation' };
      const card = decryptCardData(dataKey.key, req.cardData);
      wipe(dataKey.key);
      if (!card.ok) return { approved: false, code: card.code, reason: 'card data' };
      const cardToken = createHash('sha256').update(card.card.pan).digest('base64url').slice(0, 22);
      const tc = TEST_CARDS.find((t) => t.pan === card.card.pan);
      if (tc === undefined)
        return { approved: false, code: 'POS_ERR_ACQUIRER_CARD_UNKNOWN', reason: 'unknown card', cardToken };
      if (tc.onlinePin) {
        if (req.pinBlock === undefined)
          return {
            approved: false,
            code: 'POS_ERR_ACQUIRER_PIN_REQUIRED',
            reason: 'PIN required',
            cardToken,
          };
        const pinKey = aesDukptWorkingKey({ bdk, ksn: ksn.ksn, usage: 'pin-encryption', keyType: 'aes128' });
        if (!pinKey.ok) return { approved: false, code: pinKey.code, reason: 'key derivation', cardToken };
        const pin = decodePinBlock({
          format: 4,
          block: req.pinBlock,
          pan: card.card.pan,
          key: pinKey.key,
        } as Parameters<typeof decodePinBlock>[0]);
        wipe(pinKey.key);
        if (!pin.ok)
          return { approved: false, code: 'POS_ERR_ACQUIRER_PIN_WRONG', reason: 'wrong PIN', cardToken };
        const text = pinDigitsToText(pin.pin);
        wipe(pin.pin);
        if (!constantTimeEqual(Buffer.from(text), Buffer.from(tc.pin)))
          return { approved: false, code: 'POS_ERR_ACQUIRER_PIN_WRONG', reason: 'wrong PIN', cardToken };
      }
      if (tc.issuer.outcome === 'decline')
        return { approved: false, code: 'POS_ERR_ACQUIRER_DECLINED', reason: tc.issuer.reason, cardToken };
      return {
        approved: true,
        authCode: createHash('sha256')
          .update(`${req.now}${cardToken}`)
          .digest('hex')
          .slice(0, 6)
          .toUpperCase(),
        cardToken,
      };
    },
  };
}
