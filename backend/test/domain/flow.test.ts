/**
 * The domain modules together, in the order the service uses them: enrollment, a periodic
 * attestation with a session ticket, a pre-PIN attestation with a PIN-entry ticket the reader accepts
 * (@pos/shared verifyTicket, as the reader runs it), then a halt that stops every ticket. Audit
 * entries chain along the way.
 */
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { parseBase64url, toBase64url, verifyTicket, type TrustedTicketKey } from '@pos/shared';
import {
  appraiseEvidence,
  DEFAULT_POLICY,
  evaluatePolicy,
  type AppraisalInput,
  type Verdict,
} from '../../src/attestation/index';
import { chainAuditEntry, verifyAuditChain, type AuditEntry } from '../../src/audit/index';
import { nodeTicketSigner, signTicket, ticketClaims } from '../../src/tickets/index';
import {
  NOW,
  READER_SERIAL,
  REFERENCE,
  challengeCtx,
  challengeValue,
  claims,
  deviceKey,
  goodMeasurements,
  sign,
  standInReaderVerifier,
  terminal,
  readerEvidence,
} from './helpers';

const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signer = nodeTicketSigner('k1', privateKey);
const pub = publicKey.export({ format: 'jwk' }) as { x: string; y: string };
const x = parseBase64url(pub.x);
const y = parseBase64url(pub.y);
if (!x.ok || !y.ok) throw new Error('jwk');
const trusted: TrustedTicketKey[] = [{ kid: 'k1', publicKey: new Uint8Array([4, ...x.bytes, ...y.bytes]) }];

describe('enroll, attest, take a PIN, halt', () => {
  it('runs end to end in the domain', async () => {
    const key = deviceKey();
    const audit: AuditEntry[] = [];
    const log = (action: string, data: Record<string, unknown>) =>
      audit.push(
        chainAuditEntry(audit.at(-1), {
          at: new Date(NOW).toISOString(),
          actor: 'system',
          action,
          subject: 'term_A',
          data,
        }),
      );
    let lastCounter = -1;
    let now = NOW;
    const attest = async (
      over: Parameters<typeof claims>[0],
      extra: Partial<AppraisalInput> = {},
      jwk = false,
      challengeTerminal: string | null = 'term_A',
    ): Promise<Verdict> => {
      const value = challengeValue();
      const c = claims({ counter: lastCounter + 1, time: now, iat: Math.floor(now / 1000), ...over }, value);
      const appraisal = await appraiseEvidence({
        evidenceJws: sign(c, key, jwk),
        terminal: terminal(key, { lastCounter }),
        challenge: challengeCtx(value, { terminalId: challengeTerminal, expiresAt: now + 30_000 }),
        referenceValues: [REFERENCE],
        readerCaRoots: [new Uint8Array([1])],
        now,
        options: { readerVerifier: standInReaderVerifier },
        ...extra,
      });
      const verdict = evaluatePolicy(DEFAULT_POLICY, appraisal);
      if (appraisal.signatureValid && verdict.tier !== 'none') lastCounter = c.counter;
      log('verdict', { tier: verdict.tier, reasons: verdict.reasons.map((r) => r.code) });
      return verdict;
    };
    const ticket = async (verdict: Verdict, use: 'session' | 'pin-entry', nonce?: string) => {
      const made = ticketClaims({
        issuer: 'https://am.example',
        terminalId: 'term_A',
        merchantId: 'm_1',
        deviceJkt: key.jkt,
        readerSerial: READER_SERIAL,
        verdict,
        use,
        ...(nonce === undefined ? {} : { nonce }),
        now,
        jti: toBase64url(new Uint8Array(randomBytes(12))),
      });
      return made.ok ? signTicket(made.claims, signer) : undefined;
    };

    // Enrollment: enrollment challenge (no terminal yet), the key in the header.
    const enrolled = await attest(
      { purpose: 'enrollment', iss: 'enrolling' },
      { expectedPurpose: 'enrollment' },
      true,
      null,
    );
    expect(enrolled.tier).toBe('affirming');
    expect(lastCounter).toBe(0);

    // Periodic: a session ticket.
    now += 60_000;
    const periodic = await attest({ purpose: 'periodic' });
    const session = await ticket(periodic, 'session');
    expect(session).toBeDefined();
    expect(
      verifyTicket(session ?? '', trusted, {
        now: Math.floor(now / 1000),
        use: 'session',
        permission: 'transact',
      }).ok,
    ).toBe(true);

    // Pre-PIN bound to the reader's nonce: a PIN-entry ticket the reader accepts.
    const nonce = toBase64url(new Uint8Array(randomBytes(16)));
    now += 5_000;
    const prePin = await attest(
      // Pre-PIN needs a reader status from now (at most 5 s old without the challenge echo).
      { purpose: 'pre-pin', nonce, reader: readerEvidence({ time: now }) },
      { expectedPurpose: 'pre-pin', expectedNonce: nonce },
    );
    const pinTicket = await ticket(prePin, 'pin-entry', nonce);
    expect(pinTicket).toBeDefined();
    const atReader = verifyTicket(pinTicket ?? '', trusted, {
      now: Math.floor(now / 1000),
      use: 'pin-entry',
      readerSerial: READER_SERIAL,
      deviceKeyThumbprint: key.jkt,
      nonce,
      permission: 'pin-entry',
    });
    expect(atReader.ok).toBe(true);
    // ...but not for another transaction's nonce.
    expect(
      verifyTicket(pinTicket ?? '', trusted, {
        now: Math.floor(now / 1000),
        use: 'pin-entry',
        nonce: toBase64url(new Uint8Array(16)),
      }),
    ).toMatchObject({ ok: false, code: 'POS_ERR_TICKET_NONCE_MISMATCH' });

    // A debugger attaches: contraindicated, halt, no ticket of any kind.
    now += 5_000;
    const measurements = goodMeasurements().map((m) =>
      m.name === 'debugger' ? { ...m, status: 'fail' as const } : m,
    );
    const halted = await attest({ purpose: 'periodic', measurements });
    expect(halted).toMatchObject({ tier: 'contraindicated', halt: true });
    expect(await ticket(halted, 'session')).toBeUndefined();
    expect(await ticket(halted, 'pin-entry', nonce)).toBeUndefined();

    // A replay of the earlier pre-PIN evidence cannot earn a new ticket.
    const replayValue = challengeValue();
    const replayed = await appraiseEvidence({
      evidenceJws: sign(
        claims(
          { counter: 2, purpose: 'pre-pin', nonce, time: now, iat: Math.floor(now / 1000) },
          replayValue,
        ),
        key,
      ),
      terminal: terminal(key, { lastCounter }),
      challenge: challengeCtx(replayValue, { usedAt: now - 1 }),
      referenceValues: [REFERENCE],
      readerCaRoots: [new Uint8Array([1])],
      now,
      options: { readerVerifier: standInReaderVerifier },
      expectedNonce: nonce,
    });
    expect(await ticket(evaluatePolicy(DEFAULT_POLICY, replayed), 'pin-entry', nonce)).toBeUndefined();

    expect(verifyAuditChain(audit)).toMatchObject({ ok: true, count: 4 });
  });
});
