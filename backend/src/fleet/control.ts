/**
 * Fleet control: the one way anything halts terminals (operators, policy verdicts, velocity, fleet
 * correlation, liveness) and the one way dashboard events are published. Halts are stored and
 * audited, then pushed through the bus to every process's connected terminals.
 */
import type { HaltRow, HaltScope, Store } from '../store/types';
import type { Bus } from './bus';
import type { FleetEvent } from './events';

export type HaltSource = 'operator' | 'policy' | 'velocity' | 'correlation' | 'liveness';

export interface HaltRequest {
  readonly scope: HaltScope;
  /** Terminal id, merchant id or app version; null for the fleet. */
  readonly target: string | null;
  readonly reason: string;
  /** Audit actor: `operator:<id>`, `token:<id>`, or the automatic source's name. */
  readonly actor: string;
  readonly source: HaltSource;
}

export interface FleetControl {
  /** Stores, audits and pushes a halt; resolves to it and the terminals it covers. */
  halt(request: HaltRequest): Promise<{ readonly halt: HaltRow; readonly terminalIds: readonly string[] }>;
  /** Publishes a dashboard event to every process (never throws; a bus failure is logged and counted). */
  emit(event: FleetEvent): void;
}

export interface FleetControlDeps {
  readonly store: Store;
  readonly bus: Bus;
  readonly clock: { now(): number };
  readonly newId: (prefix: string) => string;
  audit(actor: string, action: string, subject: string, data: Record<string, unknown>): Promise<unknown>;
  onHalt?(source: HaltSource, terminals: number): void;
}

/** Terminals a scope covers, from the store. */
async function terminalsInScope(
  deps: FleetControlDeps,
  scope: HaltScope,
  target: string | null,
): Promise<string[]> {
  switch (scope) {
    case 'terminal':
      return target !== null && (await deps.store.getTerminal(target)) !== undefined ? [target] : [];
    case 'merchant':
      return target === null ? [] : deps.store.listTerminalIds({ merchantId: target });
    case 'app-version':
      return target === null ? [] : deps.store.listTerminalIds({ appVersion: target });
    case 'fleet':
      return deps.store.listTerminalIds({});
  }
}

export function createFleetControl(deps: FleetControlDeps): FleetControl {
  const emit = (event: FleetEvent): void => {
    void deps.bus.publish({ type: 'event', event }).catch(() => undefined);
  };
  return {
    emit,
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
      await deps.store.createHalt(halt, terminalIds);
      await deps.audit(request.actor, 'halt.create', halt.id, {
        scope: halt.scope,
        target: halt.target,
        reason: halt.reason,
        source: request.source,
        terminals: terminalIds.length,
      });
      deps.onHalt?.(request.source, terminalIds.length);
      await deps.bus.publish({ type: 'outbox', haltId: halt.id });
      return { halt, terminalIds };
    },
  };
}
