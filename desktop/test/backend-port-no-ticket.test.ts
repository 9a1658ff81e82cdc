/**
 * HttpBackendPort.prePin without a PIN-entry ticket: `POS_ERR_DESKTOP_BACKEND_NO_TICKET`, and the detail
 * says why, the verdict and its reason codes, also when the terminal is halted (the merchant sees that
 * the app's code changed, not only that it is halted); a ticket of the right use is passed on.
 */
import { describe, expect, it } from 'vitest';
import type { AttestAnswer, AttestationAgent } from '../src/core/attest/agent';
import type { BackendClient } from '../src/core/backend/client';
import { HttpBackendPort } from '../src/core/backend/ports';

function portAnswering(answer: AttestAnswer): HttpBackendPort {
  const agent = { prePin: () => Promise.resolve({ ok: true as const, answer }) };
  return new HttpBackendPort({} as BackendClient, agent as unknown as AttestationAgent, {
    sessionTicket: () =>
      Promise.resolve({ ok: false, code: 'POS_ERR_DESKTOP_BACKEND_NO_TICKET', detail: '' }),
  });
}

describe('HttpBackendPort.prePin', () => {
  it('a halted terminal: NO_TICKET naming the verdict and its reasons', async () => {
    const r = await portAnswering({
      verdict: 'contraindicated',
      halted: true,
      reasons: ['POS_ERR_ATTEST_CODE_HASH', 'POS_ERR_ATTEST_MEASUREMENT_UNKNOWN'],
    }).prePin({ nonce: 'n1' });
    expect(r).toEqual({
      ok: false,
      code: 'POS_ERR_DESKTOP_BACKEND_NO_TICKET',
      detail:
        'no PIN-entry ticket (the terminal is halted, verdict contraindicated: POS_ERR_ATTEST_CODE_HASH, POS_ERR_ATTEST_MEASUREMENT_UNKNOWN)',
    });
  });

  it('halted by an operator with no verdict reason, and a warning: no dangling colon', async () => {
    const halted = await portAnswering({ verdict: 'affirming', halted: true, reasons: [] }).prePin({
      nonce: 'n1',
    });
    expect(halted.ok ? '' : halted.detail).toBe(
      'no PIN-entry ticket (the terminal is halted, verdict affirming)',
    );
    const warning = await portAnswering({
      verdict: 'warning',
      reasons: ['POS_ERR_ATTEST_READER_ABSENT'],
    }).prePin({
      nonce: 'n1',
    });
    expect(warning.ok ? '' : warning.detail).toBe(
      'no PIN-entry ticket (verdict warning: POS_ERR_ATTEST_READER_ABSENT)',
    );
  });

  it('a session ticket is not a PIN-entry ticket; a PIN-entry ticket is passed on with its nonce', async () => {
    const session = await portAnswering({
      verdict: 'affirming',
      ticket: 'a.b.c',
      ticketUse: 'session',
      ticketExpiresAt: 2e9,
    }).prePin({ nonce: 'n1' });
    expect(session.ok).toBe(false);
    const pin = await portAnswering({
      verdict: 'affirming',
      ticket: 'a.b.c',
      ticketUse: 'pin-entry',
      ticketExpiresAt: 2e9,
    }).prePin({ nonce: 'n1' });
    expect(pin).toEqual({ ok: true, ticket: { jws: 'a.b.c', exp: 2e9, nonce: 'n1' } });
  });
});
