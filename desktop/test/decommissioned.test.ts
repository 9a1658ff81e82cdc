/**
 * A terminal its provider decommissioned (docs/fleet.md "Decommissioning"): the back-end's
 * POS_ERR_TERMINAL_DECOMMISSIONED reaches the core with the terminal's own words (never the back-end's
 * message), and the renderer tells the merchant that, not the step that failed; the push notice (a halt
 * whose reason starts `decommissioned: `) is told apart from an ordinary halt.
 */
import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { BACKEND_CODE_DETAIL, requestJson, type FetchFn } from '../src/core/backend/http';
import { decommissionReason, DECOMMISSIONED_TEXT, reasonFor } from '../src/renderer/messages';

/** A back-end that answers every request with `status` and this error body. */
const answering =
  (status: number, code: string, message: string): FetchFn =>
  () =>
    Promise.resolve(
      new Response(JSON.stringify({ error: { code, message } }), {
        status,
        headers: { 'content-type': 'application/json' },
      }),
    );

const request = { method: 'POST' as const, url: 'http://127.0.0.1:1/v1/attestations', body: '{}' };

describe('a decommissioned terminal', () => {
  it("the core passes the back-end's code on with the terminal's own words for it", async () => {
    const r = await requestJson(
      request,
      z.object({}),
      answering(403, 'POS_ERR_TERMINAL_DECOMMISSIONED', 'terminal trm_x decommissioned by op_y'),
    );
    expect(r).toEqual({
      ok: false,
      code: 'POS_ERR_TERMINAL_DECOMMISSIONED',
      detail: BACKEND_CODE_DETAIL['POS_ERR_TERMINAL_DECOMMISSIONED'],
    });
    // The back-end's message (ids, operator) is not what the merchant reads.
    expect(r.ok ? '' : r.detail).not.toContain('trm_x');
  });

  it("any other back-end code keeps the back-end's message (bounded)", async () => {
    const r = await requestJson(
      request,
      z.object({}),
      answering(403, 'POS_ERR_TERMINAL_HALTED', 'x'.repeat(500)),
    );
    expect(r).toEqual({ ok: false, code: 'POS_ERR_TERMINAL_HALTED', detail: 'x'.repeat(300) });
  });

  it('the renderer says the terminal was decommissioned, for the code and for a sale that failed on it', () => {
    const detail = BACKEND_CODE_DETAIL['POS_ERR_TERMINAL_DECOMMISSIONED'];
    expect(reasonFor('POS_ERR_TERMINAL_DECOMMISSIONED')).toBe(DECOMMISSIONED_TEXT);
    // The sale fails at a step (here the attestation) whose cause is the decommissioning: its detail
    // decides, not the step's own words.
    expect(reasonFor('POS_ERR_DESKTOP_TXN_ATTEST_REFUSED', detail)).toBe(DECOMMISSIONED_TEXT);
    expect(reasonFor('POS_ERR_DESKTOP_TXN_ATTEST_REFUSED', 'the back-end refused')).not.toBe(
      DECOMMISSIONED_TEXT,
    );
  });

  it("the push notice is told apart from an ordinary halt, with the operator's reason", () => {
    expect(decommissionReason('decommissioned: stolen from the shop')).toBe('stolen from the shop');
    expect(decommissionReason('velocity: too many cards')).toBeUndefined();
    expect(decommissionReason('operator halt: decommissioned: no')).toBeUndefined();
  });
});
