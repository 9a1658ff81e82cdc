/**
 * Fleet correlation in the attestation and enrollment path: signs that one terminal's identity is in
 * use elsewhere. Each finding makes the verdict `contraindicated`, halts the terminal whose evidence
 * showed it (source `correlation`), and raises an alert (a `correlation` event, an audit entry, a
 * metric). docs/monitoring.md has the rules.
 *
 * Only evidence that passed the signature check under the terminal's own enrolled key counts: a
 * request cannot make another terminal's identity look replayed or shared, so nobody halts a terminal
 * they do not hold the key of.
 */
import type { Ctx } from '../server/context';
import type { TerminalRow } from '../store/types';
import type { Verdict } from '../server/domain';

export type CorrelationKind = 'counter-replay' | 'reader-serial-shared';

export interface CorrelationFinding {
  readonly kind: CorrelationKind;
  /** The other terminal involved (reader-serial-shared). */
  readonly otherTerminalId?: string;
}

/** The reason code a finding adds to the verdict (registered in errors.ts). */
export const CORRELATION_REASON: Record<CorrelationKind, { code: string; text: string }> = {
  'counter-replay': {
    code: 'POS_ERR_CORRELATION_COUNTER_REPLAY',
    text: 'The evidence counter went back or repeated under the terminal’s own key: a replay or a cloned key.',
  },
  'reader-serial-shared': {
    code: 'POS_ERR_CORRELATION_READER_SHARED',
    text: 'The card reader’s serial is enrolled on another terminal too.',
  },
};

/** Terminals other than `exceptId` enrolled with this reader serial and not decommissioned (at most `limit`). */
export async function otherTerminalsWithReader(
  ctx: Ctx,
  readerSerial: string,
  exceptId: string | null,
  limit = 5,
): Promise<TerminalRow[]> {
  // A decommissioned terminal no longer holds its reader: the replacement of a retired PC enrolls
  // with the same reader without a finding.
  const rows = await ctx.store.listTerminals({ readerSerial, notState: 'decommissioned', limit: limit + 1 });
  return rows.filter((r) => r.id !== exceptId).slice(0, limit);
}

/** The verdict made contraindicated by the findings (each adds its reason). */
export function contraindicate(verdict: Verdict, findings: readonly CorrelationFinding[]): Verdict {
  if (findings.length === 0) return verdict;
  const reasons = [...verdict.reasons];
  for (const f of findings) {
    const reason = CORRELATION_REASON[f.kind];
    if (!reasons.some((r) => r.code === reason.code)) reasons.push(reason);
  }
  return { ...verdict, tier: 'contraindicated', reasons };
}

/**
 * Alerts on each finding (event, audit, metric). The event names `terminalId` (for a refused
 * enrollment: the enrolled terminal whose reader it claimed) and its merchant; the audit entry's
 * subject is `auditSubject` (a terminal id, or a refused enrollment's device-key thumbprint).
 */
export async function alertCorrelation(
  ctx: Ctx,
  subject: { readonly terminalId: string; readonly merchantId: string; readonly auditSubject: string },
  findings: readonly CorrelationFinding[],
  data: Record<string, unknown> = {},
): Promise<void> {
  const now = ctx.clock.now();
  for (const f of findings) {
    ctx.metrics.correlationAlerts.inc({ kind: f.kind });
    ctx.fleet.emit({
      type: 'correlation',
      at: now,
      merchantId: subject.merchantId,
      terminalId: subject.terminalId,
      kind: f.kind,
    });
    await ctx.audit('correlation', 'correlation.alert', subject.auditSubject, {
      kind: f.kind,
      ...(f.otherTerminalId === undefined ? {} : { otherTerminal: f.otherTerminalId }),
      ...data,
    });
  }
}

/**
 * At enrollment (evidence accepted, enrollment code valid): a reader serial already enrolled on
 * another terminal. The enrollment is refused; the enrolled terminal is not halted (the request does
 * not prove it holds that terminal's key), but its merchant gets the alert.
 */
export async function readerSerialAtEnrollment(
  ctx: Ctx,
  readerSerial: string,
  deviceJkt: string,
  enrollingMerchantId: string,
): Promise<CorrelationFinding[]> {
  const others = await otherTerminalsWithReader(ctx, readerSerial, null);
  const findings: CorrelationFinding[] = [];
  for (const other of others) {
    const finding: CorrelationFinding = { kind: 'reader-serial-shared', otherTerminalId: other.id };
    findings.push(finding);
    await alertCorrelation(
      ctx,
      { terminalId: other.id, merchantId: other.merchantId, auditSubject: deviceJkt },
      [finding],
      { readerSerial, enrollment: true, enrollingMerchant: enrollingMerchantId },
    );
  }
  return findings;
}

/**
 * After a finding on an enrolled terminal's own evidence: alert, then halt it (unless it is halted
 * already). Resolves to the terminal as it is afterwards.
 */
export async function haltOnCorrelation(
  ctx: Ctx,
  terminal: TerminalRow,
  findings: readonly CorrelationFinding[],
): Promise<TerminalRow> {
  if (findings.length === 0) return terminal;
  await alertCorrelation(
    ctx,
    { terminalId: terminal.id, merchantId: terminal.merchantId, auditSubject: terminal.id },
    findings,
  );
  if (terminal.state === 'halted') return terminal;
  const reason = `correlation: ${findings.map((f) => f.kind).join(', ')}`;
  await ctx.fleet.halt({
    scope: 'terminal',
    target: terminal.id,
    reason,
    actor: 'correlation',
    source: 'correlation',
    merchantId: terminal.merchantId,
  });
  return { ...terminal, state: 'halted', stateReason: reason };
}

/** A velocity rule fired on a transaction: a `velocity` event and a metric (the halt, if any, is the route's). */
export function alertVelocity(
  ctx: Ctx,
  terminal: TerminalRow,
  velocity: { readonly rule: string; readonly action: string },
  at: number,
): void {
  ctx.metrics.velocityAlerts.inc({ rule: velocity.rule, action: velocity.action });
  ctx.fleet.emit({
    type: 'velocity',
    at,
    merchantId: terminal.merchantId,
    terminalId: terminal.id,
    rule: velocity.rule,
    action: velocity.action,
  });
}

/** Findings on evidence of an enrolled terminal that passed the signature check under its own key. */
export async function correlateAttestation(
  ctx: Ctx,
  terminal: TerminalRow,
  counter: { readonly signatureValid: boolean; readonly advanced: boolean },
): Promise<CorrelationFinding[]> {
  if (!counter.signatureValid) return [];
  const findings: CorrelationFinding[] = [];
  if (!counter.advanced) findings.push({ kind: 'counter-replay' });
  for (const other of await otherTerminalsWithReader(ctx, terminal.readerSerial, terminal.id)) {
    findings.push({ kind: 'reader-serial-shared', otherTerminalId: other.id });
  }
  return findings;
}
