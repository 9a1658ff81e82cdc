/**
 * Fleet control: the one way anything halts terminals (operators, policy verdicts, velocity, fleet
 * correlation, liveness), lifts halts, and publishes dashboard events. Halts are stored and audited
 * (one transaction: the halt, the terminals' state, one outbox message per terminal, the audit
 * entry), then pushed through the bus to every process's connected terminals, and counted. A lift or
 * resume is likewise one transaction with its audit entries.
 */
import { chainAuditEntry } from '../audit/index';
import type {
  AuditAppend,
  AuditDraftRow,
  AuditRow,
  CoveringHalt,
  DecommissionDone,
  HaltRow,
  HaltScope,
  LiftDone,
  OutboxRow,
  Store,
} from '../store/types';
import type { Bus } from './bus';
import type { FleetEvent } from './events';
import { decommissionNoticeReason } from './push-protocol';

export type HaltSource = 'operator' | 'policy' | 'velocity' | 'correlation' | 'liveness';

export interface HaltRequest {
  readonly scope: HaltScope;
  /** Terminal id, merchant id or app version; null for the fleet. */
  readonly target: string | null;
  readonly reason: string;
  /** Audit actor: `operator:<id>`, `token:<id>`, or the automatic source's name. */
  readonly actor: string;
  readonly source: HaltSource;
  /** The merchant the event names (a terminal's or the target merchant); null: fleet-wide. */
  readonly merchantId?: string | null;
}

export type LiftResult =
  | {
      readonly ok: true;
      readonly halt: HaltRow;
      /** Moved from halted to resume-pending (a resume notice was written for each). */
      readonly resumed: readonly string[];
      /** Still covered by another active halt: they stay halted. */
      readonly stillHalted: readonly string[];
    }
  | { readonly ok: false; readonly code: 'POS_ERR_HALT_UNKNOWN' | 'POS_ERR_HALT_LIFTED' };

export type ResumeResult =
  | { readonly ok: true; readonly lifted: readonly string[] }
  | {
      readonly ok: false;
      readonly code:
        | 'POS_ERR_TERMINAL_UNKNOWN'
        | 'POS_ERR_TERMINAL_NOT_HALTED'
        | 'POS_ERR_HALT_STILL_COVERS'
        | 'POS_ERR_TERMINAL_DECOMMISSIONED';
    };

export type DecommissionResult =
  | {
      readonly ok: true;
      readonly previous: 'active' | 'halted' | 'resume-pending';
      readonly noticeId: string;
    }
  | { readonly ok: false; readonly code: 'POS_ERR_TERMINAL_UNKNOWN' | 'POS_ERR_TERMINAL_DECOMMISSIONED' };

export interface FleetControl {
  /**
   * Decommissions a terminal for good: state `decommissioned`, its notice (a `halt` message with a
   * `dcm_` id) in its outbox, and the audit entry `terminal.decommission`, in one store transaction;
   * then the notice is pushed (the hub holding the terminal sends it and closes the connection),
   * counted and published (`decommission` event).
   */
  decommission(terminalId: string, reason: string, actor: string): Promise<DecommissionResult>;
  /** Stores, audits and pushes a halt; resolves to it and the terminals it covers. */
  halt(request: HaltRequest): Promise<{ readonly halt: HaltRow; readonly terminalIds: readonly string[] }>;
  /**
   * Lifts one halt: each terminal it halted moves to `resume-pending` (and gets a `resume` notice) only
   * when no other active halt still covers it. Audited, pushed.
   */
  lift(haltId: string, reason: string, actor: string): Promise<LiftResult>;
  /**
   * Resume one terminal (the operator shortcut): lifts every active terminal-scope halt of it, then
   * moves it to `resume-pending` unless a merchant, app-version or fleet halt still covers it.
   */
  resumeTerminal(terminalId: string, reason: string, actor: string): Promise<ResumeResult>;
  /** Active halts that cover a terminal of this merchant (and app version) about to be enrolled. */
  haltsForNewTerminal(merchantId: string, appVersion: string | null): Promise<HaltRow[]>;
  /**
   * After enrollment: writes a halt message for each active halt covering the new terminal (the
   * terminal row was created halted when `haltsForNewTerminal` found any), then pushes them.
   */
  applyToNewTerminal(terminalId: string, merchantId: string, appVersion: string | null): Promise<number>;
  /**
   * After an accepted verdict (the app version it reported is recorded): halts the terminal under
   * every active halt in `covering` it has no halt message for (an app-version halt made before the
   * terminal reported that version, or before its first version), as enrollment does. Resolves to the
   * halts applied.
   */
  applyToAttestedTerminal(terminalId: string, covering: readonly CoveringHalt[]): Promise<number>;
  /** Publishes a dashboard event to every process (never throws; a bus failure is logged and counted). */
  emit(event: FleetEvent): void;
  /**
   * This process's push hub: handed the outbox rows as soon as the transaction that wrote them has
   * committed, so it sends them without reading them back; the bus message then goes to the other
   * processes only. Returns an unsubscribe function.
   */
  onOutboxRows(handler: (rows: readonly OutboxRow[]) => void): () => void;
}

export interface FleetControlDeps {
  readonly store: Store;
  readonly bus: Bus;
  readonly clock: { now(): number };
  readonly newId: (prefix: string) => string;
  /**
   * Entries the store appended in a halt's, lift's or resume's own transaction (signs the audit
   * checkpoints that fall due). Every fleet act is audited that way, never in a second write.
   */
  audited(entries: readonly AuditRow[]): Promise<void>;
  onHalt?(source: HaltSource, terminals: number): void;
  onDecommission?(): void;
  onBusError?(): void;
}

/** Active halts considered at most (a fleet with more simultaneous halts is misconfigured). */
const ACTIVE_HALTS_MAX = 10_000;

const RETIRED = 'decommissioned';

/** Terminals a scope covers, from the store. */
async function terminalsInScope(
  deps: FleetControlDeps,
  scope: HaltScope,
  target: string | null,
): Promise<string[]> {
  switch (scope) {
    case 'terminal':
      return target !== null && (await deps.store.getTerminal(target)) !== undefined ? [target] : [];
    // A decommissioned terminal is left out: its state never changes again, and a halt message it
    // will never acknowledge would stay pending in the halt's deliveries for ever.
    case 'merchant':
      return target === null ? [] : deps.store.listTerminalIds({ merchantId: target, notState: RETIRED });
    case 'app-version':
      return target === null ? [] : deps.store.listTerminalIds({ appVersion: target, notState: RETIRED });
    case 'fleet':
      return deps.store.listTerminalIds({ notState: RETIRED });
  }
}

const RESUMED = 'resumed: awaiting an affirming attestation';

/** Audit entries the store appends in the change's own transaction, built from its result. */
function auditWith<T>(
  at: number,
  actor: string,
  drafts: (result: T) => readonly Omit<AuditDraftRow, 'at' | 'actor'>[],
): AuditAppend<T> {
  const iso = new Date(at).toISOString();
  return {
    drafts: (result) => drafts(result).map((d) => ({ ...d, at: iso, actor })),
    chain: (prev, draft) => chainAuditEntry(prev, draft),
  };
}

export function createFleetControl(deps: FleetControlDeps): FleetControl {
  const emit = (event: FleetEvent): void => {
    void deps.bus.publish({ type: 'event', event }).catch(() => deps.onBusError?.());
  };
  const local = new Set<(rows: readonly OutboxRow[]) => void>();
  /**
   * `rows` are committed. The bus message to the other processes is queued first (the bus writes it
   * at the next turn of the event loop), then, one turn later, this process's hub sends the rows it
   * was handed: the other processes start their fan-out while this one does its own, and the caller
   * (audit, answer) continues only once the local messages are written to their sockets.
   */
  const push = async (haltId: string, rows: readonly OutboxRow[]): Promise<void> => {
    const remoteOnly = local.size > 0;
    // Settled at once (never an unhandled rejection while the local sends wait for their turn).
    const published = deps.bus.publish({ type: 'outbox', haltId }, { remoteOnly }).then(
      () => true,
      () => false,
    );
    if (remoteOnly) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      for (const handler of local) {
        try {
          handler(rows);
        } catch {
          // the hub's failure is its own; the outbox keeps the rows for the next connection
        }
      }
    }
    // Not published: stored all the same, the terminals get it from the outbox when they reconnect.
    if (!(await published)) deps.onBusError?.();
  };

  /** Writes halt messages for terminals the halt covers but has no message for yet; pushes them. */
  const catchUp = async (halt: HaltRow, terminalIds: readonly string[]): Promise<string[]> => {
    const have = new Set((await deps.store.listHaltDeliveries(halt.id)).map((r) => r.terminalId));
    const missing = terminalIds.filter((id) => !have.has(id));
    if (missing.length === 0) return [];
    await haltLate(halt, missing);
    return missing;
  };

  /**
   * The halt row first, then the state: a lift racing this (liftHaltAndResume, serialized with the
   * append) either sees the row and keeps the terminal halted, or resumes it before the row is
   * written and the transitions below halt it again.
   */
  const haltLate = async (halt: HaltRow, terminalIds: readonly string[]): Promise<void> => {
    const at = deps.clock.now();
    const rows = await deps.store.appendOutbox(terminalIds, {
      kind: 'halt',
      haltId: halt.id,
      reason: halt.reason,
      createdAt: at,
    });
    for (const id of terminalIds)
      await deps.store.transitionTerminalState(id, 'active', 'halted', halt.reason, at);
    for (const id of terminalIds)
      await deps.store.transitionTerminalState(id, 'resume-pending', 'halted', halt.reason, at);
    await push(halt.id, rows);
  };

  const eventMerchant = async (request: HaltRequest): Promise<string | null> => {
    if (request.merchantId !== undefined) return request.merchantId;
    if (request.scope === 'merchant') return request.target;
    if (request.scope === 'terminal' && request.target !== null)
      return (await deps.store.getTerminal(request.target))?.merchantId ?? null;
    return null;
  };

  /**
   * True when a fleet or merchant halt certainly covered every terminal of its scope: terminals are
   * never deleted and never change merchant, so the scope's count after the halt was stored equal to
   * the number halted means nobody enrolled in between (one COUNT instead of re-listing thousands of
   * ids and reading the halt's outbox back). An app-version scope can gain members by an update, so it
   * is always re-listed.
   */
  const sameFleetOrMerchant = async (halt: HaltRow, terminalIds: readonly string[]): Promise<boolean> => {
    if (halt.scope === 'fleet')
      return (await deps.store.countTerminalsWhere({ notState: RETIRED })) === new Set(terminalIds).size;
    if (halt.scope === 'merchant' && halt.target !== null)
      return (
        (await deps.store.countTerminalsWhere({ merchantId: halt.target, notState: RETIRED })) ===
        new Set(terminalIds).size
      );
    return false;
  };

  const control: FleetControl = {
    emit,
    onOutboxRows(handler) {
      local.add(handler);
      return () => local.delete(handler);
    },
    async halt(request) {
      const at = deps.clock.now();
      const terminalIds = await terminalsInScope(deps, request.scope, request.target);
      const halt: HaltRow = {
        id: deps.newId('hlt'),
        scope: request.scope,
        target: request.target,
        reason: request.reason,
        createdBy: request.actor,
        createdAt: at,
        liftedAt: null,
        liftedBy: null,
      };
      const data = {
        halt: halt.id,
        scope: halt.scope,
        target: halt.target,
        reason: halt.reason,
        source: request.source,
        terminals: terminalIds.length,
      };
      // The halt and its audit entry in one transaction (a crash never leaves a halt unaudited).
      const stored = await deps.store.createHaltAudited(
        halt,
        terminalIds,
        auditWith(at, request.actor, () => [
          halt.scope === 'terminal' && halt.target !== null
            ? { action: 'terminal.halt', subject: halt.target, data }
            : { action: 'halt.create', subject: halt.id, data },
        ]),
      );
      await push(halt.id, stored.rows);
      await deps.audited(stored.audit);
      deps.onHalt?.(request.source, terminalIds.length);
      emit({
        type: 'halt',
        at,
        merchantId: await eventMerchant(request),
        haltId: halt.id,
        scope: halt.scope,
        target: halt.target,
        reason: halt.reason,
        source: request.source,
        terminals: terminalIds.length,
      });
      // A terminal enrolled while the scope was being listed: enrollment re-checks active halts
      // after creating the terminal, and this re-lists after storing the halt, so one of the two
      // always sees the other.
      if (halt.scope !== 'terminal' && !(await sameFleetOrMerchant(halt, terminalIds))) {
        const again = await terminalsInScope(deps, halt.scope, halt.target);
        const late = await catchUp(halt, again);
        return { halt, terminalIds: [...terminalIds, ...late] };
      }
      return { halt, terminalIds };
    },

    async decommission(terminalId, reason, actor) {
      const at = deps.clock.now();
      const noticeId = deps.newId('dcm');
      const out = await deps.store.decommissionTerminalAudited(
        { terminalId, at, reason, noticeId, noticeReason: decommissionNoticeReason(reason) },
        auditWith(at, actor, (done: DecommissionDone) => [
          {
            action: 'terminal.decommission',
            subject: terminalId,
            data: { reason, previousState: done.previous, notice: noticeId },
          },
        ]),
      );
      if (!out.ok)
        return {
          ok: false,
          code:
            out.code === 'terminal-unknown' ? 'POS_ERR_TERMINAL_UNKNOWN' : 'POS_ERR_TERMINAL_DECOMMISSIONED',
        };
      await push(noticeId, out.rows);
      await deps.audited(out.audit);
      deps.onDecommission?.();
      emit({
        type: 'decommission',
        at,
        merchantId: (await deps.store.getTerminal(terminalId))?.merchantId ?? null,
        terminalId,
        reason,
      });
      return { ok: true, previous: out.previous, noticeId };
    },

    async lift(haltId, reason, actor) {
      const halt = await deps.store.getHalt(haltId);
      if (halt === undefined) return { ok: false, code: 'POS_ERR_HALT_UNKNOWN' };
      const at = deps.clock.now();
      // Coverage and transition in one store transaction serialized with createHalt (review issue 5 #2).
      // The lift and its audit entry in one transaction.
      const out = await deps.store.liftHaltAndResume(
        haltId,
        { by: actor, at, reason, stateReason: RESUMED },
        auditWith(at, actor, (done: LiftDone) => [
          {
            action: 'halt.lift',
            subject: haltId,
            data: {
              scope: halt.scope,
              target: halt.target,
              reason,
              resumed: done.resumed.length,
              stillHalted: done.stillHalted.length,
            },
          },
        ]),
      );
      if (!out.ok)
        return {
          ok: false,
          code: out.code === 'halt-unknown' ? 'POS_ERR_HALT_UNKNOWN' : 'POS_ERR_HALT_LIFTED',
        };
      const lifted: HaltRow = { ...halt, liftedAt: at, liftedBy: actor };
      const resumed = [...out.resumed];
      const stillHalted = [...out.stillHalted];
      if (out.rows.length > 0) await push(haltId, out.rows);
      await deps.audited(out.audit);
      emit({
        type: 'resume',
        at,
        merchantId: halt.scope === 'merchant' ? halt.target : null,
        haltId,
        terminals: resumed.length,
      });
      return { ok: true, halt: lifted, resumed, stillHalted };
    },

    async resumeTerminal(terminalId, reason, actor) {
      const terminal = await deps.store.getTerminal(terminalId);
      if (terminal === undefined) return { ok: false, code: 'POS_ERR_TERMINAL_UNKNOWN' };
      if (terminal.state === RETIRED) return { ok: false, code: 'POS_ERR_TERMINAL_DECOMMISSIONED' };
      if (terminal.state !== 'halted') return { ok: false, code: 'POS_ERR_TERMINAL_NOT_HALTED' };
      const at = deps.clock.now();
      // Coverage, lifts and transition in one store transaction serialized with createHalt (#2).
      // The lifts, the resume and their audit entries in one transaction.
      const out = await deps.store.resumeTerminalAndLift(
        terminalId,
        { by: actor, at, reason, stateReason: RESUMED },
        auditWith(at, actor, (done: LiftDone) => [
          ...done.lifted.map((id) => ({
            action: 'halt.lift',
            subject: id,
            data: { scope: 'terminal', target: terminalId, reason },
          })),
          {
            action: 'terminal.resume',
            subject: terminalId,
            data: { reason, state: 'resume-pending', lifted: [...done.lifted] },
          },
        ]),
      );
      if (!out.ok)
        return {
          ok: false,
          code:
            out.code === 'still-covered'
              ? 'POS_ERR_HALT_STILL_COVERS'
              : out.code === 'terminal-unknown'
                ? 'POS_ERR_TERMINAL_UNKNOWN'
                : 'POS_ERR_TERMINAL_NOT_HALTED',
        };
      const lifted = [...out.lifted];
      // One resume notice, named after the newest lifted halt (a terminal halted without a stored halt
      // record, before halts were stored, gets none: there was no halt message to answer).
      const notice = lifted[0];
      if (notice !== undefined && out.rows.length > 0) await push(notice, out.rows);
      await deps.audited(out.audit);
      emit({
        type: 'resume',
        at,
        merchantId: terminal.merchantId,
        haltId: notice ?? `none:${terminalId}`,
        terminals: 1,
      });
      return { ok: true, lifted };
    },

    async haltsForNewTerminal(merchantId, appVersion) {
      const active = await deps.store.listHalts({ activeOnly: true, limit: ACTIVE_HALTS_MAX });
      return active.filter(
        (h) =>
          h.scope === 'fleet' ||
          (h.scope === 'merchant' && h.target === merchantId) ||
          (h.scope === 'app-version' && appVersion !== null && h.target === appVersion),
      );
    },

    async applyToAttestedTerminal(terminalId, covering) {
      let applied = 0;
      for (const c of covering) {
        if (c.delivered) continue;
        await haltLate(c.halt, [terminalId]);
        applied++;
      }
      return applied;
    },

    async applyToNewTerminal(terminalId, merchantId, appVersion) {
      let written = 0;
      for (const h of await control.haltsForNewTerminal(merchantId, appVersion)) {
        written += (await catchUp(h, [terminalId])).length;
      }
      return written;
    },
  };
  return control;
}
