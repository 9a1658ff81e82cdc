/**
 * Terminal routes: challenges, enrollment, attestations (evidence -> appraisal -> policy -> verdict,
 * audit, ticket) and transactions (ticket + proof -> acquirer host).
 */
import { randomBytes, randomFillSync } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import {
  constantTimeEqual,
  jwkThumbprint,
  parseBase64url,
  parseTicket,
  publicKeyFromJwk,
  toBase64url,
  verifyTicket,
  P256JwkSchema,
} from '@pos/shared';
import { z } from 'zod';
import type { AttestationRow, AuditRow, Store, TerminalRow, TicketRow } from '../../store/types';
import { StoreError } from '../../store/types';
import { hashEnrollmentCode, ENROLLMENT_CODE_RE } from './operator';
import { checkStale, isOverdue, noteVerdict } from '../../fleet/liveness';
import {
  alertVelocity,
  contraindicate,
  correlateAttestation,
  haltOnCorrelation,
  readerSerialAtEnrollment,
} from '../../fleet/correlation';
import { chainEntry, draftAt, newId, requireTerminalProof, sha256Hex, type Ctx } from '../context';
import {
  appraiseEvidence,
  evaluatePolicy,
  signAuditCheckpoint,
  signTicket,
  ticketClaims,
  DEFAULT_POLICY,
  PRODUCTION_POLICY,
  PolicySchema,
  type Appraisal,
  type AppraisalOptions,
  type ChallengeContext,
  type Policy,
  type ReferenceValues,
  type TerminalContext,
  type Verdict,
} from '../domain';
import { ServiceError } from '../http-errors';

const b64url = z.string().regex(/^[A-Za-z0-9_-]+$/);
const EvidenceJws = z.string().min(1).max(65_536);

const VerdictOut = z.object({
  tier: z.enum(['affirming', 'warning', 'contraindicated', 'none']),
  reasons: z.array(z.object({ code: z.string(), text: z.string() })),
  policyVersion: z.string(),
  trustVector: z.record(z.string(), z.unknown()),
});
const TicketOut = z.object({
  jws: z.string(),
  use: z.enum(['session', 'pin-entry']),
  expiresAt: z.number().int().describe('seconds since the epoch'),
});
const AttestationOut = z.object({
  verdict: VerdictOut,
  ticket: TicketOut.optional(),
  halted: z.boolean(),
  nextAttestationAt: z.number().int().describe('ms since the epoch: attest again by then'),
  attestationIntervalS: z.number().int(),
});

function verdictOut(v: Verdict): z.infer<typeof VerdictOut> {
  return {
    tier: v.tier,
    reasons: v.reasons.map((r) => ({ code: r.code, text: r.text })),
    policyVersion: v.policyVersion,
    trustVector: { ...v.trustVector },
  };
}

/**
 * The enforced policy and the shadow ones. With none activated: the production policy, or the
 * development one only when the service runs in development mode (`--dev`).
 */
async function loadPolicies(ctx: Ctx): Promise<{ active: Policy; shadow: Policy[] }> {
  const rows = await ctx.store.listPolicies();
  let active: Policy = ctx.config.development ? DEFAULT_POLICY : PRODUCTION_POLICY;
  const shadow: Policy[] = [];
  for (const row of rows) {
    if (row.role === 'inactive') continue;
    const parsed = parsedPolicy(ctx.store, row.version, row.document);
    if (row.role === 'active') active = parsed;
    else shadow.push(parsed);
  }
  return { active, shadow };
}

/**
 * Parsed policies by version, per store. A policy version is immutable (`putPolicy` refuses an
 * existing version, on every engine), so a parse stays valid for as long as the store holds that
 * version; which versions are active or shadow is read from the store on every attestation, so an
 * activation by any process applies at once. At most POLICY_CACHE_MAX versions are kept.
 */
const POLICY_CACHE_MAX = 256;
const policyCache = new WeakMap<Store, Map<string, Policy>>();

function parsedPolicy(store: Store, version: string, document: unknown): Policy {
  let cache = policyCache.get(store);
  if (cache === undefined) {
    cache = new Map();
    policyCache.set(store, cache);
  }
  const hit = cache.get(version);
  if (hit !== undefined) return hit;
  const parsed = PolicySchema.safeParse(document);
  if (!parsed.success || parsed.data.version !== version)
    throw new ServiceError(500, 'POS_ERR_POLICY_INVALID', 'a stored policy does not parse');
  if (cache.size >= POLICY_CACHE_MAX) cache.clear();
  cache.set(version, parsed.data);
  return parsed.data;
}

async function loadReferenceValues(ctx: Ctx): Promise<ReferenceValues[]> {
  return (await ctx.store.listReferenceValues()).map((r) => r.document as unknown as ReferenceValues);
}

/**
 * The two claims the route reads before appraisal. Built once: zod 4 compiles an object schema on its
 * first parse, so a schema made per request costs a compile per request.
 */
const EvidencePeekSchema = z.object({
  challenge: z.string().max(64).optional(),
  purpose: z.string().max(32).optional(),
});

/** What an evidence JWS claims about its challenge and purpose, read without trusting it (the appraisal verifies). */
function peekEvidence(evidenceJws: string): { challenge?: string; purpose?: string } {
  const payload = evidenceJws.split('.')[1];
  if (payload === undefined) return {};
  const bytes = parseBase64url(payload);
  if (!bytes.ok) return {};
  try {
    const parsed = EvidencePeekSchema.safeParse(JSON.parse(Buffer.from(bytes.bytes).toString('utf8')));
    if (!parsed.success) return {};
    return {
      ...(parsed.data.challenge === undefined ? {} : { challenge: parsed.data.challenge }),
      ...(parsed.data.purpose === undefined ? {} : { purpose: parsed.data.purpose }),
    };
  } catch {
    return {};
  }
}

/**
 * Challenges are stateless and MAC'd: 32 bytes = the issue time (6 bytes, ms) ‖ 10 random bytes ‖ the
 * first 16 bytes of HMAC-SHA-256 under a key derived from the master key over a label, the terminal id
 * (empty for enrollment) and those 16 bytes. Issuing one writes nothing; its first use is recorded
 * (`Store.useChallenge`, atomic), so single use holds across processes. A challenge is valid for the
 * terminal it names only: the MAC is checked with the proving terminal's id (or none, enrollment).
 */
const CHALLENGE_MAC_LABEL = 'pos-challenge v1';

function challengeTag(ctx: Ctx, terminalId: string | null, head: Uint8Array): Buffer {
  const label = Buffer.from(`${CHALLENGE_MAC_LABEL}\0${terminalId ?? ''}\0`, 'utf8');
  return ctx.keys.challengeMac(Buffer.concat([label, head])).subarray(0, 16);
}

function newChallenge(ctx: Ctx, terminalId: string | null, now: number): string {
  const head = Buffer.alloc(16);
  head.writeUIntBE(now, 0, 6);
  randomFillSync(head, 6, 10);
  return toBase64url(Buffer.concat([head, challengeTag(ctx, terminalId, head)]));
}

/** The terminal (null: enrollment) among `candidates` a MAC'd challenge was issued to, and when. */
function openChallenge(
  ctx: Ctx,
  value: string,
  candidates: readonly (string | null)[],
): { terminalId: string | null; createdAt: number } | undefined {
  const bytes = parseBase64url(value);
  if (!bytes.ok || bytes.bytes.length !== 32) return undefined;
  const head = bytes.bytes.subarray(0, 16);
  const tag = bytes.bytes.subarray(16);
  for (const terminalId of candidates) {
    if (constantTimeEqual(tag, challengeTag(ctx, terminalId, head))) {
      return { terminalId, createdAt: Buffer.from(head).readUIntBE(0, 6) };
    }
  }
  return undefined;
}

/**
 * Consumes the challenge the evidence names (peeked once by the caller), if this service issued it
 * to one of `candidates`: a MAC'd one is recorded as used (nothing is written for an expired one, which
 * the challenge verifier refuses); any other value is looked up among stored challenges (those a
 * previous version issued).
 */
async function consumeChallenge(
  ctx: Ctx,
  value: string | undefined,
  candidates: readonly (string | null)[],
): Promise<(ChallengeContext & { createdAt: number }) | undefined> {
  if (value === undefined) return undefined;
  const now = ctx.clock.now();
  const opened = openChallenge(ctx, value, candidates);
  if (opened !== undefined) {
    const issued = {
      value,
      terminalId: opened.terminalId,
      createdAt: opened.createdAt,
      expiresAt: opened.createdAt + ctx.config.challengeTtlS * 1000,
    };
    if (now >= issued.expiresAt) return { ...issued, usedAt: null };
    return await ctx.store.useChallenge(issued, now);
  }
  const row = await ctx.store.consumeChallenge(value, now);
  return row === undefined
    ? undefined
    : {
        value: row.value,
        terminalId: row.terminalId,
        expiresAt: row.expiresAt,
        usedAt: row.usedAt,
        createdAt: row.createdAt,
      };
}

/** The reader status verifier, and the store's record of each reader's last status seq (L4). */
function appraisalOptions(ctx: Ctx, now: number): AppraisalOptions {
  return {
    readerVerifier: ctx.readerStatusVerifier,
    readerStatusSeq: (serial, seq) => ctx.store.advanceReaderStatusSeq(serial, seq, now),
  };
}

/** Parsed device JWKs by their stored text (a JWK is immutable per terminal; bounded, cleared when full). */
const DEVICE_JWK_CACHE_MAX = 20_000;
const deviceJwkCache = new Map<string, TerminalContext['deviceJwk']>();

function deviceJwkOf(text: string): TerminalContext['deviceJwk'] {
  const hit = deviceJwkCache.get(text);
  if (hit !== undefined) return hit;
  const jwk = P256JwkSchema.parse(JSON.parse(text));
  if (deviceJwkCache.size >= DEVICE_JWK_CACHE_MAX) deviceJwkCache.clear();
  deviceJwkCache.set(text, jwk);
  return jwk;
}

function terminalContext(t: TerminalRow): TerminalContext {
  return {
    terminalId: t.id,
    merchantId: t.merchantId,
    deviceJwk: deviceJwkOf(t.deviceJwk),
    deviceJkt: t.deviceJkt,
    readerSerial: t.readerSerial,
    lastCounter: t.lastCounter,
  };
}

/** The app versions whose halts cover a terminal: its stored one and the one it now reports. */
function versionsOf(stored: string | null | undefined, reported: string | undefined): string[] {
  const out = new Set<string>();
  if (stored !== null && stored !== undefined) out.add(stored);
  if (reported !== undefined) out.add(reported);
  return [...out];
}

async function issueTicket(
  ctx: Ctx,
  terminal: TerminalRow,
  verdict: Verdict,
  use: 'session' | 'pin-entry',
  nonce: string | undefined,
): Promise<z.infer<typeof TicketOut> | undefined> {
  const made = await makeTicket(ctx, terminal, verdict, use, nonce);
  if (made === undefined) return undefined;
  await ctx.store.recordTicket(made.row);
  ctx.metrics.ticketsIssued.inc({ use });
  return made.out;
}

/** A signed ticket and the row that records it (not yet stored), or undefined when none is due. */
async function makeTicket(
  ctx: Ctx,
  terminal: TerminalRow,
  verdict: Verdict,
  use: 'session' | 'pin-entry',
  nonce: string | undefined,
): Promise<{ out: z.infer<typeof TicketOut>; row: TicketRow } | undefined> {
  // An active terminal gets what its verdict allows. A resume-pending one (an operator resumed it; no
  // halt covers it) gets only a handshake-only session ticket (`perm: []`): enough to open its reader
  // session so that its next evidence carries the reader's signed status and can be affirming, never a
  // PIN-entry ticket, and /v1/transactions refuses it until it is active (M1 holds).
  const handshakeOnly = terminal.state === 'resume-pending' && use === 'session';
  if (terminal.state !== 'active' && !handshakeOnly) return undefined;
  const now = ctx.clock.now();
  const jti = toBase64url(randomBytes(18));
  const made = ticketClaims({
    issuer: ctx.config.issuer,
    terminalId: terminal.id,
    merchantId: terminal.merchantId,
    deviceJkt: terminal.deviceJkt,
    readerSerial: terminal.readerSerial,
    verdict,
    use,
    ...(nonce === undefined ? {} : { nonce }),
    now,
    lifetimeS: ctx.config.ticketLifetimeS,
    jti,
    ...(handshakeOnly ? { handshakeOnly } : {}),
  });
  if (!made.ok) return undefined;
  const signer = ctx.keys.signer();
  const jws = await signTicket(made.claims, signer);
  return {
    out: { jws, use, expiresAt: made.claims.exp },
    row: {
      jti,
      terminalId: terminal.id,
      use,
      kid: signer.kid,
      issuedAt: made.claims.iat * 1000,
      expiresAt: made.claims.exp * 1000,
    },
  };
}

/**
 * A refused enrollment leaves a trace in the audit chain (L7): the device key's thumbprint, the reader
 * serial and why (`evidence` with the verdict's tier and reason codes, `code` for an unknown, used or
 * expired code, `key-in-use`). Never the enrollment code itself, nor a hash of it.
 */
async function auditRefusedEnrollment(
  ctx: Ctx,
  deviceJkt: string,
  readerSerial: string,
  refusal: 'evidence' | 'code' | 'key-in-use' | 'reader-serial-shared',
  data: Record<string, unknown>,
): Promise<void> {
  await ctx.audit('enrollment', 'enrollment.refused', deviceJkt, { refusal, readerSerial, ...data });
}

/** The stored record of a verdict. */
function attestationRow(
  now: number,
  terminal: TerminalRow,
  evidenceJws: string,
  appraisal: Appraisal,
  verdict: Verdict,
): AttestationRow {
  return {
    id: newId('att'),
    terminalId: terminal.id,
    at: now,
    purpose: appraisal.claims?.purpose ?? 'unknown',
    counter: appraisal.claims?.counter ?? null,
    tier: verdict.tier,
    policyVersion: verdict.policyVersion,
    evidenceHash: sha256Hex(evidenceJws),
    verdict: {
      tier: verdict.tier,
      halt: verdict.halt,
      reasons: verdict.reasons,
      trustVector: verdict.trustVector,
      shadow: verdict.shadow,
      // Passing verifiers by name only; the others in full (code, detail, value).
      passed: appraisal.outcomes.filter((o) => o.status === 'pass').map((o) => o.verifier),
      outcomes: appraisal.outcomes.filter((o) => o.status !== 'pass'),
    },
  };
}

/** The `attestation.verdict` audit entry's data. */
function verdictAuditData(attestationId: string, verdict: Verdict): Record<string, unknown> {
  return {
    attestation: attestationId,
    tier: verdict.tier,
    policyVersion: verdict.policyVersion,
    reasons: verdict.reasons.map((r) => r.code),
    shadow: verdict.shadow.map((s) => ({ policyVersion: s.policyVersion, tier: s.tier })),
  };
}

/**
 * The common attestation in one store transaction (`Store.recordAttestationOutcome`): fresh evidence
 * under the terminal's key (its counter above the stored one), an `active` terminal that is not stale
 * nor overdue, no correlation finding, an affirming or warning verdict, the same app version as
 * before. Then the counter compare-and-set, the liveness deadline and last tier, the verdict row, its
 * audit entry and the ticket row are written all or nothing. It resolves undefined (nothing written)
 * when any of that does not hold, or when the store's compare-and-set refuses (another request took
 * the counter, the terminal was halted or marked stale meanwhile): the caller then takes the
 * step-by-step path, which decides those cases (counter replay, halts, resume, revival) as before.
 */
async function attestInOneTransaction(
  ctx: Ctx,
  terminal: TerminalRow,
  evidenceJws: string,
  appraisal: Appraisal,
  policies: { active: Policy; shadow: Policy[] },
  nonce: string | undefined,
  now: number,
): Promise<z.infer<typeof AttestationOut> | undefined> {
  const claims = appraisal.claims;
  if (
    claims === undefined ||
    !appraisal.signatureValid ||
    claims.counter <= terminal.lastCounter ||
    terminal.state !== 'active' ||
    (terminal.staleAt ?? null) !== null ||
    isOverdue(ctx, terminal, now) ||
    claims.app.version !== (terminal.appVersion ?? undefined)
  ) {
    return undefined;
  }
  const findings = await correlateAttestation(ctx, terminal, { signatureValid: true, advanced: true });
  if (findings.length > 0) return undefined;
  const verdict = evaluatePolicy(policies.active, appraisal, policies.shadow);
  if (verdict.halt || (verdict.tier !== 'affirming' && verdict.tier !== 'warning')) return undefined;
  const use = claims.purpose === 'pre-pin' ? 'pin-entry' : 'session';
  const ticket = await makeTicket(ctx, terminal, verdict, use, use === 'pin-entry' ? nonce : undefined);
  const row = attestationRow(now, terminal, evidenceJws, appraisal, verdict);
  const auditAt = new Date(now).toISOString();
  const recorded = await ctx.store.recordAttestationOutcome(
    {
      terminalId: terminal.id,
      counter: claims.counter,
      at: now,
      nextDueAt: now + terminal.intervalS * 1000,
      lastTier: verdict.tier,
      attestation: row,
      audit: {
        at: auditAt,
        actor: 'system',
        action: 'attestation.verdict',
        subject: terminal.id,
        data: verdictAuditData(row.id, verdict),
      },
      ticket: ticket?.row ?? null,
    },
    chainEntry,
  );
  if (!recorded.ok) return undefined;
  ctx.metrics.attestations.inc({ tier: verdict.tier });
  if (ticket !== undefined) ctx.metrics.ticketsIssued.inc({ use });
  if (recorded.audit.seq % ctx.config.auditCheckpointEvery === 0) {
    await ctx.store.putCheckpoint(await signAuditCheckpoint(recorded.audit, ctx.keys.signer(), auditAt));
  }
  ctx.fleet.emit({
    type: 'verdict',
    at: now,
    merchantId: terminal.merchantId,
    terminalId: terminal.id,
    tier: verdict.tier,
    purpose: claims.purpose,
  });
  return {
    verdict: verdictOut(verdict),
    ...(ticket === undefined ? {} : { ticket: ticket.out }),
    halted: false,
    nextAttestationAt: now + terminal.intervalS * 1000,
    attestationIntervalS: terminal.intervalS,
  };
}

/** Stores the verdict, audits it, and halts the terminal on a contraindicated or halting verdict. */
/** resume-pending -> active and its audit entry in one transaction; false when not resume-pending. */
async function activateAudited(ctx: Ctx, terminalId: string, now: number): Promise<boolean> {
  const entry = await ctx.store.transitionTerminalStateAudited(
    terminalId,
    'resume-pending',
    'active',
    null,
    now,
    draftAt(now, 'policy', 'terminal.activate', terminalId, { reason: 'affirming attestation after resume' }),
    chainEntry,
  );
  if (entry === undefined) return false;
  await ctx.audited([entry]);
  return true;
}

async function recordVerdict(
  ctx: Ctx,
  terminal: TerminalRow,
  evidenceJws: string,
  appraisal: Appraisal,
  verdict: Verdict,
): Promise<TerminalRow> {
  const now = ctx.clock.now();
  const row = attestationRow(now, terminal, evidenceJws, appraisal, verdict);
  // The verdict and its audit entry in one transaction (a crash never leaves one without the other).
  const auditAt = new Date(now).toISOString();
  const entry = await ctx.store.recordAttestationAudited(
    row,
    {
      at: auditAt,
      actor: 'system',
      action: 'attestation.verdict',
      subject: terminal.id,
      data: verdictAuditData(row.id, verdict),
    },
    chainEntry,
  );
  ctx.metrics.attestations.inc({ tier: verdict.tier });
  await ctx.audited([entry]);
  if ((verdict.halt || verdict.tier === 'contraindicated') && terminal.state !== 'halted') {
    // Stored, audited (terminal.halt), counted and pushed to the terminal's connection.
    await ctx.fleet.halt({
      scope: 'terminal',
      target: terminal.id,
      reason: 'contraindicated verdict',
      actor: 'policy',
      source: 'policy',
      merchantId: terminal.merchantId,
    });
    return { ...terminal, state: 'halted', stateReason: 'contraindicated verdict' };
  }
  return terminal;
}

const ChallengeBody = z.strictObject({
  terminalId: z.string().min(1).max(128).optional().describe('absent: a challenge for enrollment'),
});
const EnrollBody = z.strictObject({
  code: z.string().regex(ENROLLMENT_CODE_RE),
  deviceJwk: P256JwkSchema.strict(),
  readerSerial: z.string().regex(/^[A-Za-z0-9._-]{1,64}$/),
  evidence: EvidenceJws,
});
const AttestBody = z.strictObject({
  evidence: EvidenceJws,
  nonce: b64url.min(16).max(128).optional().describe('pre-pin: the reader transaction nonce'),
});
const TransactionBody = z.strictObject({
  amount: z.number().int().min(1).max(100_000_000).describe('minor units'),
  currency: z.string().regex(/^[A-Z]{3}$/),
  ksn: z
    .string()
    .regex(/^[0-9A-Fa-f]{24}$/)
    .describe('AES DUKPT KSN, hex'),
  cardData: z.strictObject({ iv: b64url.length(16), ct: b64url.min(22).max(344) }),
  pinBlock: z
    .string()
    .regex(/^[0-9A-Fa-f]{32}$/)
    .optional()
    .describe('ISO 9564-1 format 4, hex'),
});
const TICKET_HEADER_RE = /^PosTicket ([A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+)$/;

/**
 * The nonce a PIN-entry ticket names (read before verifying it, so verifyTicket can check the ticket
 * is bound to one; the reader already held it to this transaction's nonce before taking the PIN).
 */
function ticketNonce(ticket: string): string {
  const parsed = parseTicket(ticket);
  return parsed.ok ? (parsed.claims.nonce ?? '') : '';
}

/** The `kid` a ticket's header names (parsed, not yet trusted: the verification follows). */
function ticketKid(ticket: string): string | undefined {
  const parsed = parseTicket(ticket);
  return parsed.ok ? parsed.header.kid : undefined;
}

export function registerTerminalRoutes(appIn: FastifyInstance, ctx: Ctx): void {
  const app = appIn.withTypeProvider<ZodTypeProvider>();
  // Key rotations by other processes on the same store reach this one's ring (it signs and checks the
  // tickets of these routes); detached when the app closes.
  const detachKeys = ctx.keys.attachBus(ctx.bus);
  appIn.addHook('onClose', (_instance, done) => {
    detachKeys();
    done();
  });
  const smallBody = 8 * 1024;
  const evidenceBody = 80 * 1024;

  app.post(
    '/v1/challenges',
    {
      bodyLimit: smallBody,
      schema: {
        tags: ['terminal'],
        summary: 'A fresh challenge: 32 random bytes, single use, expiring in seconds, bound to the terminal',
        body: ChallengeBody,
        response: { 201: z.object({ challenge: z.string(), expiresAt: z.number().int() }) },
      },
    },
    async (request, reply) => {
      const terminalId = request.body.terminalId ?? null;
      const terminal = terminalId === null ? undefined : await ctx.store.getTerminal(terminalId);
      if (terminalId !== null && terminal === undefined) {
        throw new ServiceError(404, 'POS_ERR_TERMINAL_UNKNOWN');
      }
      if (terminal?.state === 'decommissioned')
        throw new ServiceError(403, 'POS_ERR_TERMINAL_DECOMMISSIONED');
      const now = ctx.clock.now();
      const value = newChallenge(ctx, terminalId, now);
      return reply.code(201).send({ challenge: value, expiresAt: now + ctx.config.challengeTtlS * 1000 });
    },
  );

  app.post(
    '/v1/enrollments',
    {
      bodyLimit: evidenceBody,
      schema: {
        tags: ['terminal'],
        summary: 'Enroll a terminal with a single-use code, its device public key and first evidence',
        body: EnrollBody,
        response: {
          201: z.object({
            terminalId: z.string(),
            merchantId: z.string(),
            jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }),
            attestationIntervalS: z.number().int(),
            verdict: VerdictOut,
            ticket: TicketOut.optional(),
          }),
        },
      },
    },
    async (request, reply) => {
      const body = request.body;
      const key = publicKeyFromJwk(body.deviceJwk);
      if (!key.ok)
        throw new ServiceError(400, 'POS_ERR_JWK_INVALID', 'the device key is not a valid P-256 public key');
      const jwk = { kty: key.jwk.kty, crv: key.jwk.crv, x: key.jwk.x, y: key.jwk.y };
      const jkt = jwkThumbprint(jwk);
      const terminalId = newId('trm');
      const now = ctx.clock.now();
      const challenge = await consumeChallenge(ctx, peekEvidence(body.evidence).challenge, [null]);
      const context: TerminalContext = {
        terminalId,
        merchantId: '',
        deviceJwk: jwk,
        deviceJkt: jkt,
        readerSerial: body.readerSerial,
        lastCounter: -1,
      };
      const appraisal = await appraiseEvidence({
        evidenceJws: body.evidence,
        terminal: context,
        challenge,
        referenceValues: await loadReferenceValues(ctx),
        readerCaRoots: ctx.readerCaRoots,
        now,
        options: appraisalOptions(ctx, now),
        expectedPurpose: 'enrollment',
      });
      const policies = await loadPolicies(ctx);
      const verdict = evaluatePolicy(policies.active, appraisal, policies.shadow);
      if (
        verdict.halt ||
        verdict.tier === 'contraindicated' ||
        verdict.tier === 'none' ||
        appraisal.claims === undefined
      ) {
        ctx.metrics.attestations.inc({ tier: verdict.tier });
        await auditRefusedEnrollment(ctx, jkt, body.readerSerial, 'evidence', {
          tier: verdict.tier,
          reasons: verdict.reasons.map((r) => r.code),
          policyVersion: verdict.policyVersion,
        });
        const codes = verdict.reasons.map((r) => r.code).join(', ');
        throw new ServiceError(
          403,
          'POS_ERR_ENROLLMENT_REFUSED',
          `the first evidence was refused (${verdict.tier}: ${codes})`,
        );
      }
      const code = await ctx.store.consumeEnrollmentCode(hashEnrollmentCode(body.code), now, terminalId);
      if (code === undefined) {
        await auditRefusedEnrollment(ctx, jkt, body.readerSerial, 'code', {});
        throw new ServiceError(400, 'POS_ERR_ENROLLMENT_CODE_INVALID');
      }
      // Fleet correlation: a reader serial already enrolled refuses the enrollment (checked once the
      // code is valid, so only the holder of a code can raise the alert; the code is spent).
      const shared = await readerSerialAtEnrollment(ctx, body.readerSerial, jkt, code.merchantId);
      if (shared.length > 0) {
        await auditRefusedEnrollment(ctx, jkt, body.readerSerial, 'reader-serial-shared', {
          merchant: code.merchantId,
        });
        throw new ServiceError(
          403,
          'POS_ERR_ENROLLMENT_REFUSED',
          'the reader serial is enrolled on another terminal (POS_ERR_CORRELATION_READER_SHARED)',
        );
      }
      // A terminal enrolled under an active fleet, merchant or app-version halt starts halted.
      const covering = await ctx.fleet.haltsForNewTerminal(code.merchantId, appraisal.claims.app.version);
      const row: TerminalRow = {
        id: terminalId,
        merchantId: code.merchantId,
        deviceJwk: JSON.stringify(jwk),
        deviceJkt: jkt,
        readerSerial: body.readerSerial,
        lastCounter: appraisal.claims.counter,
        state: covering.length > 0 ? 'halted' : 'active',
        stateReason: covering[0]?.reason ?? null,
        intervalS: ctx.config.attestationIntervalS,
        createdAt: now,
        lastAttestedAt: now,
      };
      let enrollEntry: AuditRow;
      try {
        // The terminal and its audit entry in one transaction (a crash never leaves one without the other).
        enrollEntry = await ctx.store.createTerminalAudited(
          row,
          draftAt(now, 'enrollment', 'terminal.enroll', terminalId, {
            merchant: code.merchantId,
            deviceJkt: jkt,
            readerSerial: body.readerSerial,
          }),
          chainEntry,
        );
      } catch (e) {
        if (e instanceof StoreError && e.code === 'POS_ERR_ENROLLMENT_KEY_IN_USE') {
          await auditRefusedEnrollment(ctx, jkt, body.readerSerial, 'key-in-use', {});
          throw new ServiceError(409, e.code);
        }
        throw e;
      }
      await ctx.audited([enrollEntry]);
      const halts = await ctx.fleet.applyToNewTerminal(
        terminalId,
        code.merchantId,
        appraisal.claims.app.version,
      );
      const enrolled: TerminalRow = halts > 0 ? { ...row, state: 'halted' } : row;
      const terminal = await recordVerdict(ctx, enrolled, body.evidence, appraisal, verdict);
      await noteVerdict(ctx, terminal, {
        tier: verdict.tier,
        purpose: 'enrollment',
        appVersion: appraisal.claims.app.version,
      });
      const ticket = await issueTicket(ctx, terminal, verdict, 'session', undefined);
      return reply.code(201).send({
        terminalId,
        merchantId: code.merchantId,
        jwks: ctx.keys.jwks(ctx.clock.now()),
        attestationIntervalS: row.intervalS,
        verdict: verdictOut(verdict),
        ...(ticket === undefined ? {} : { ticket }),
      });
    },
  );

  app.post(
    '/v1/attestations',
    {
      bodyLimit: evidenceBody,
      schema: {
        tags: ['terminal'],
        summary:
          'Submit evidence; get a verdict and, when it allows, a ticket (pin-entry for purpose pre-pin)',
        description: 'Needs a Pos-Proof header signed by the terminal device key.',
        security: [{ posProof: [] }],
        body: AttestBody,
        response: { 200: AttestationOut },
      },
    },
    async (request) => {
      const terminal = await requireTerminalProof(ctx, request);
      const body = request.body;
      const peeked = peekEvidence(body.evidence);
      if (peeked.purpose === 'enrollment') {
        throw new ServiceError(
          400,
          'POS_ERR_ATTESTATION_REFUSED',
          'enrollment evidence goes to /v1/enrollments',
        );
      }
      const now = ctx.clock.now();
      const challenge = await consumeChallenge(ctx, peeked.challenge, [terminal.id, null]);
      const appraisal = await appraiseEvidence({
        evidenceJws: body.evidence,
        terminal: terminalContext(terminal),
        challenge,
        referenceValues: await loadReferenceValues(ctx),
        readerCaRoots: ctx.readerCaRoots,
        now,
        options: appraisalOptions(ctx, now),
        ...(body.nonce === undefined ? {} : { expectedNonce: body.nonce }),
      });
      const policies = await loadPolicies(ctx);
      // Active halts covering this terminal by scope (its stored version and the one it reports), one
      // query: a covered terminal never takes the one-transaction path and gets no ticket (#1).
      const covering = await ctx.store.activeHaltsCovering({
        id: terminal.id,
        merchantId: terminal.merchantId,
        appVersions: versionsOf(terminal.appVersion, appraisal.claims?.app.version),
      });
      const quick =
        covering.length > 0
          ? undefined
          : await attestInOneTransaction(ctx, terminal, body.evidence, appraisal, policies, body.nonce, now);
      if (quick !== undefined) return quick;
      const claims = appraisal.claims;
      // A counter at or below the last accepted one (or one another request just took) under the
      // terminal's own key is a replay or a cloned key: fleet correlation (docs/monitoring.md).
      const advanced =
        claims !== undefined &&
        appraisal.signatureValid &&
        claims.counter > terminal.lastCounter &&
        (await ctx.store.advanceTerminalCounter(terminal.id, claims.counter, now));
      const findings = await correlateAttestation(ctx, terminal, {
        signatureValid: appraisal.signatureValid && claims !== undefined,
        advanced,
      });
      const verdict = contraindicate(evaluatePolicy(policies.active, appraisal, policies.shadow), findings);
      const correlated = await haltOnCorrelation(ctx, terminal, findings);
      let after = await recordVerdict(ctx, correlated, body.evidence, appraisal, verdict);
      // The version this verdict leaves recorded: the reported one when accepted (noteVerdict below).
      const accepted = verdict.tier === 'affirming' || verdict.tier === 'warning';
      const recordedVersion = accepted ? (claims?.app.version ?? terminal.appVersion) : terminal.appVersion;
      const covers = covering.filter(
        (c) => c.halt.scope !== 'app-version' || c.halt.target === (recordedVersion ?? null),
      );
      // M1: a resumed terminal becomes active only on an affirming verdict on evidence made after the
      // resume (its challenge was issued after it); until then it gets no ticket.
      if (
        covers.length === 0 &&
        after.state === 'resume-pending' &&
        verdict.tier === 'affirming' &&
        challenge !== undefined &&
        challenge.createdAt >= (after.stateChangedAt ?? Number.POSITIVE_INFINITY) &&
        (await activateAudited(ctx, after.id, now))
      ) {
        after = { ...after, state: 'active', stateReason: null, stateChangedAt: now };
      }
      // Liveness: an affirming verdict sets the next deadline and revives a stale terminal (docs/monitoring.md).
      const live = await noteVerdict(ctx, after, {
        tier: verdict.tier,
        purpose: claims?.purpose ?? 'unknown',
        appVersion: claims?.app.version,
      });
      // #1: a halt covering the version just recorded (made before the terminal reported it) halts it
      // now, with its halt message, as enrollment does; any covering halt means no ticket (fail closed),
      // not even the handshake-only one of a resume-pending terminal whose halt message was already
      // written (review 2, L1): whatever the stored state, the answer is halted and carries no ticket.
      if (covers.length > 0) {
        if ((await ctx.fleet.applyToAttestedTerminal(after.id, covers)) > 0)
          after = (await ctx.store.getTerminal(after.id)) ?? after;
        if (after.state !== 'halted') after = { ...after, state: 'halted' };
      }
      if (live.stale && after.state === 'active') throw new ServiceError(403, 'POS_ERR_TERMINAL_STALE');
      const use = claims?.purpose === 'pre-pin' ? 'pin-entry' : 'session';
      const ticket = await issueTicket(
        ctx,
        after,
        verdict,
        use,
        use === 'pin-entry' ? body.nonce : undefined,
      );
      return {
        verdict: verdictOut(verdict),
        ...(ticket === undefined ? {} : { ticket }),
        halted: after.state === 'halted',
        nextAttestationAt: now + after.intervalS * 1000,
        attestationIntervalS: after.intervalS,
      };
    },
  );

  app.post(
    '/v1/transactions',
    {
      bodyLimit: smallBody,
      schema: {
        tags: ['terminal'],
        summary:
          'Authorize a card transaction (a Pos-Proof, and a session ticket; with a PIN block an unused PIN-entry ticket)',
        description:
          'Authorization: PosTicket <ticket>. Without pinBlock: a session ticket. With pinBlock: a pin-entry ticket issued to this terminal, unexpired and unused (single use). The KSN counter must be above every one seen for its BDK ID + derivation ID.',
        security: [{ posTicket: [], posProof: [] }],
        body: TransactionBody,
        response: {
          200: z.object({
            transactionId: z.string(),
            approved: z.boolean(),
            authCode: z.string().optional(),
            code: z.string().optional(),
            reason: z.string().optional(),
            halted: z.boolean(),
          }),
        },
      },
    },
    async (request) => {
      const header = request.headers.authorization;
      const m = typeof header === 'string' ? TICKET_HEADER_RE.exec(header) : null;
      const ticket = m?.[1];
      if (ticket === undefined) throw new ServiceError(401, 'POS_ERR_TICKET_MISSING');
      const terminal = await requireTerminalProof(ctx, request, ticket);
      const now = ctx.clock.now();
      const body = request.body;
      // C1: a PIN block needs a PIN-entry ticket (affirming pre-PIN verdict, bound to the reader's
      // nonce, which the reader checked before taking the PIN), used once; otherwise a session ticket.
      const pin = body.pinBlock !== undefined;
      const check = (): ReturnType<typeof verifyTicket> =>
        verifyTicket(ticket, ctx.keys.trustedKeys(now), {
          now: Math.floor(now / 1000),
          use: pin ? 'pin-entry' : 'session',
          issuer: ctx.config.issuer,
          deviceKeyThumbprint: terminal.deviceJkt,
          permission: pin ? 'pin-entry' : 'transact',
          maxLifetimeS: Math.max(ctx.config.ticketLifetimeS, 60),
          ...(pin ? { readerSerial: terminal.readerSerial, nonce: ticketNonce(ticket) } : {}),
        });
      let checked = check();
      // A key id this process does not know: another process may have rotated and its bus message
      // not arrived yet; reload the ring (rate-limited) and check once more.
      if (!checked.ok && checked.code === 'POS_ERR_TICKET_KEY_UNKNOWN') {
        const kid = ticketKid(ticket);
        if (kid !== undefined && (await ctx.keys.reloadForUnknownKid(kid, now))) checked = check();
      }
      if (!checked.ok) throw new ServiceError(401, checked.code, checked.detail);
      if (checked.claims.sub !== terminal.id) throw new ServiceError(401, 'POS_ERR_TICKET_KEY_MISMATCH');
      if (terminal.state === 'halted') throw new ServiceError(403, 'POS_ERR_TERMINAL_HALTED');
      if (terminal.state !== 'active') throw new ServiceError(403, 'POS_ERR_TERMINAL_RESUME_PENDING');
      // Fail closed on any active halt covering the terminal, whatever its state says (#1; one query).
      const covering = await ctx.store.activeHaltsCovering({
        id: terminal.id,
        merchantId: terminal.merchantId,
        appVersions: versionsOf(terminal.appVersion, undefined),
      });
      if (covering.length > 0) throw new ServiceError(403, 'POS_ERR_TERMINAL_HALTED');
      if (await checkStale(ctx, terminal, now)) throw new ServiceError(403, 'POS_ERR_TERMINAL_STALE');
      if (pin && !(await ctx.store.consumeTicket(checked.claims.jti, terminal.id, 'pin-entry', now))) {
        throw new ServiceError(401, 'POS_ERR_TICKET_USED');
      }
      // C1: a KSN at or below the highest seen for its BDK ID + derivation ID is a replay.
      const ksnHex = body.ksn.toUpperCase();
      if (
        !(await ctx.store.advanceKsnCounter(ksnHex.slice(0, 16), Number.parseInt(ksnHex.slice(16), 16), now))
      ) {
        throw new ServiceError(409, 'POS_ERR_TRANSACTION_KSN_REPLAY');
      }
      const iv = parseBase64url(body.cardData.iv);
      const ct = parseBase64url(body.cardData.ct);
      if (!iv.ok || !ct.ok)
        throw new ServiceError(400, 'POS_ERR_REQUEST_INVALID', 'cardData is not base64url');
      const result = await ctx.acquirer.authorize({
        terminalId: terminal.id,
        amount: body.amount,
        currency: body.currency,
        ksn: Uint8Array.from(Buffer.from(body.ksn, 'hex')),
        cardData: { iv: iv.bytes, ct: ct.bytes },
        ...(body.pinBlock === undefined
          ? {}
          : { pinBlock: Uint8Array.from(Buffer.from(body.pinBlock, 'hex')) }),
        now,
      });
      const id = newId('txn');
      await ctx.store.recordTransaction({
        id,
        terminalId: terminal.id,
        merchantId: terminal.merchantId,
        at: now,
        amount: body.amount,
        currency: body.currency,
        approved: result.approved,
        code: result.approved ? null : result.code,
        authCode: result.approved ? result.authCode : null,
        cardToken: result.cardToken ?? null,
        ticketJti: checked.claims.jti,
      });
      ctx.metrics.transactions.inc({ outcome: result.approved ? 'approved' : 'declined' });
      if (result.velocity !== undefined) alertVelocity(ctx, terminal, result.velocity, now);
      let halted = false;
      if (!result.approved && result.velocity?.action === 'halt') {
        await ctx.fleet.halt({
          scope: 'terminal',
          target: terminal.id,
          reason: `velocity: ${result.velocity.rule}`,
          actor: 'velocity',
          source: 'velocity',
          merchantId: terminal.merchantId,
        });
        halted = true;
      }
      return result.approved
        ? { transactionId: id, approved: true, authCode: result.authCode, halted }
        : { transactionId: id, approved: false, code: result.code, reason: result.reason, halted };
    },
  );
}
