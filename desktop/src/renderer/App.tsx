import { useCallback, useEffect, useState, type ReactElement } from 'react';
import type { Command, CommandResult, Snapshot, TerminalApi } from '../api/contract';
import { AmountForm } from './components/AmountForm';
import { EnrollScreen } from './components/EnrollScreen';
import { BlockedScreen, HaltScreen, UnavailableScreen, WaitingScreen } from './components/Notices';
import { PinScreen } from './components/PinScreen';
import { ResultScreen } from './components/ResultScreen';
import { SaleProgress } from './components/SaleProgress';
import { StatusBar } from './components/StatusBar';
import { API_UNAVAILABLE, type Transport } from './transport';
import './styles.css';

/** How long the UI waits for the core's first snapshot before it says the core is not there. */
const FIRST_SNAPSHOT_MS = 15_000;

type Send = (command: Command) => Promise<CommandResult>;

/**
 * Which screen the snapshot calls for, and its key (a new key mounts a new screen, which moves focus).
 * Order matters: a halt outranks everything a sale shows, so no PIN pad is drawn while one holds.
 */
export function screenFor(snapshot: Snapshot, send: Send): { key: string; element: ReactElement } {
  const { sale } = snapshot;
  if (!snapshot.enrolled) return { key: 'enroll', element: <EnrollScreen send={send} /> };
  if (snapshot.halt !== undefined) {
    return {
      key: 'halt',
      element: <HaltScreen halt={snapshot.halt} sale={sale} terminalId={snapshot.terminalId} send={send} />,
    };
  }
  if (sale.state === 'pin' && sale.pad !== undefined) {
    return { key: 'pin', element: <PinScreen sale={sale} pad={sale.pad} send={send} /> };
  }
  if (sale.state === 'result') return { key: 'result', element: <ResultScreen sale={sale} send={send} /> };
  if (sale.state !== 'idle') {
    return { key: `progress-${sale.state}`, element: <SaleProgress sale={sale} send={send} /> };
  }
  if (snapshot.reader.state !== 'connected' || snapshot.backend.link === 'down') {
    return { key: 'blocked', element: <BlockedScreen snapshot={snapshot} send={send} /> };
  }
  const tier = snapshot.attestation.tier;
  const warning =
    tier === 'contraindicated' || tier === 'none'
      ? 'The last check of this terminal did not pass, so the customer will not be able to enter a PIN. See the status bar.'
      : undefined;
  return { key: 'idle', element: <AmountForm send={send} warning={warning} /> };
}

/** The terminal UI: renders each snapshot from the core and sends the merchant's and customer's commands. */
export function App({ transport }: { transport: Transport }) {
  const api: TerminalApi | null = transport.ok ? transport.api : null;
  const [snapshot, setSnapshot] = useState<Snapshot | null>(null);
  const [lost, setLost] = useState<string | null>(transport.ok ? null : transport.detail);

  useEffect(() => {
    if (api === null) return;
    const timer = window.setTimeout(
      () => setLost((l) => l ?? 'the terminal core sent no state'),
      FIRST_SNAPSHOT_MS,
    );
    const off = api.subscribe((s) => {
      window.clearTimeout(timer);
      setLost(null);
      setSnapshot(s);
    });
    return () => {
      window.clearTimeout(timer);
      off();
    };
  }, [api]);

  const send = useCallback<Send>(
    async (command) => {
      if (api === null) return { ok: false, code: API_UNAVAILABLE, detail: 'no terminal core' };
      const r = await api.invoke(command);
      if (!r.ok && r.code === API_UNAVAILABLE) setLost(r.detail);
      return r;
    },
    [api],
  );

  let screen: { key: string; element: ReactElement };
  if (lost !== null) screen = { key: 'unavailable', element: <UnavailableScreen detail={lost} /> };
  else if (snapshot === null) screen = { key: 'waiting', element: <WaitingScreen /> };
  else screen = screenFor(snapshot, send);

  return (
    <div className="app">
      {snapshot === null || lost !== null ? null : (
        <StatusBar snapshot={snapshot} onAttest={() => void send({ cmd: 'attest.now' })} />
      )}
      <main className="main" key={screen.key}>
        {screen.element}
      </main>
    </div>
  );
}
