/**
 * One terminal: its state and why, its current ticket's expiry, Halt / Resume, the verdict timeline, the evidence history (each
 * verdict with the verifiers that did not pass), the halts covering it with its acknowledgements, and
 * its latest transactions.
 */
import { useEffect, useState, type ReactNode } from 'react';
import {
  AttestationsOut,
  call,
  enc,
  HaltsOut,
  q,
  TerminalDecommissioned,
  TerminalHalted,
  TerminalOut,
  TerminalsOut,
  TransactionsOut,
  VerdictDoc,
  type Attestation,
  type HaltRow,
  type TerminalTicket,
} from '../api';
import { age, displayState, serverNow, ticketExpiry, time } from '../format';
import {
  ActionButton,
  ErrorBox,
  HaltDeliveries,
  PageNoticeArea,
  StateBadge,
  TierBadge,
  useLoad,
  usePageNotice,
  useSession,
} from '../ui';

const TIER_Y: Record<string, number> = { affirming: 10, warning: 30, contraindicated: 50, none: 70 };

/** Each verdict as a dot by time (x) and tier (y). */
function Timeline({ items }: { items: readonly Attestation[] }): ReactNode {
  if (items.length === 0) return <p className="muted">No verdict yet.</p>;
  const first = Math.min(...items.map((a) => a.at));
  const last = Math.max(...items.map((a) => a.at));
  const span = Math.max(1, last - first);
  const w = 1000;
  return (
    <figure className="chart">
      <figcaption>
        Verdict timeline ({items.length} verdicts, {time(first)} – {time(last)})
      </figcaption>
      <svg viewBox={`0 0 ${w} 80`} role="img" aria-label="Verdict timeline" className="timeline">
        {Object.entries(TIER_Y).map(([tier, y]) => (
          <g key={tier}>
            <line x1={110} x2={w} y1={y} y2={y} className="grid" />
            <text x={0} y={y + 4} className="tick">
              {tier}
            </text>
          </g>
        ))}
        {items.map((a) => (
          <circle
            key={a.id}
            cx={115 + ((a.at - first) / span) * (w - 125)}
            cy={TIER_Y[a.tier] ?? 70}
            r={4}
            className={`fill-${a.tier in TIER_Y ? a.tier : 'none'}`}
          >
            <title>{`${time(a.at)} ${a.purpose}: ${a.tier}`}</title>
          </circle>
        ))}
      </svg>
    </figure>
  );
}

/** The current ticket's expiry, its distance from now (kept current every second), use and issue time. */
function TicketExpiry({ ticket }: { ticket: TerminalTicket | null }): ReactNode {
  const [now, setNow] = useState(serverNow);
  useEffect(() => {
    setNow(serverNow());
    const timer = window.setInterval(() => setNow(serverNow()), 1_000);
    return () => window.clearInterval(timer);
  }, [ticket]);
  if (ticket === null) return 'no ticket';
  return (
    <>
      {time(ticket.expiresAt)} ({ticketExpiry(ticket, now)})
      <span className="muted">
        {' '}
        · {ticket.use} ticket issued {time(ticket.issuedAt)}
        {ticket.used ? ', used' : ''}
      </span>
    </>
  );
}

function covers(h: HaltRow, terminalId: string, merchantId: string, appVersion: string | null): boolean {
  switch (h.scope) {
    case 'terminal':
      return h.target === terminalId;
    case 'merchant':
      return h.target === merchantId;
    case 'app-version':
      return appVersion !== null && h.target === appVersion;
    case 'fleet':
      return true;
  }
}

export function TerminalPage({ terminalId }: { terminalId: string }): ReactNode {
  const { can, merchantNames } = useSession();
  const mine = (e: { terminalId?: string | undefined; type: string }): boolean =>
    e.terminalId === terminalId || e.type === 'halt' || e.type === 'resume';
  const terminal = useLoad(
    () => call(TerminalOut, 'GET', `/v1/terminals/${enc(terminalId)}`),
    [terminalId],
    mine,
  );
  const merchantId = terminal.data?.merchantId;
  // The list row has the app version, last tier, deadline and staleness (the merchant's terminals).
  const row = useLoad(
    async () =>
      merchantId === undefined
        ? undefined
        : (
            await call(TerminalsOut, 'GET', `/v1/terminals${q({ merchant: merchantId, limit: 500 })}`)
          ).terminals.find((t) => t.terminalId === terminalId),
    [merchantId, terminalId],
    mine,
  );
  const attestations = useLoad(
    () => call(AttestationsOut, 'GET', `/v1/terminals/${enc(terminalId)}/attestations${q({ limit: 100 })}`),
    [terminalId],
    (e) => e.terminalId === terminalId && e.type === 'verdict',
  );
  const transactions = useLoad(
    () => call(TransactionsOut, 'GET', `/v1/terminals/${enc(terminalId)}/transactions${q({ limit: 20 })}`),
    [terminalId],
  );
  const appVersion = row.data?.appVersion ?? null;
  const halts = useLoad(
    async () =>
      merchantId === undefined
        ? []
        : (await call(HaltsOut, 'GET', `/v1/halts${q({ state: 'all', limit: 500 })}`)).halts
            .filter((h) => covers(h, terminalId, merchantId, appVersion))
            .slice(0, 10),
    [merchantId, appVersion, terminalId],
    (e) => e.type === 'halt' || e.type === 'resume',
  );
  const [expanded, setExpanded] = useState<string>();
  // Owned by the page: Halt is replaced by Resume (and back) as the state changes, the outcome stays.
  const notice = usePageNotice();

  const t = terminal.data;
  if (t === undefined)
    return (
      <>
        <h1>Terminal {terminalId}</h1>
        <ErrorBox error={terminal.error} />
      </>
    );
  const reloadAll = (): void => {
    terminal.reload();
    row.reload();
    halts.reload();
  };
  const state = displayState({
    state: t.state,
    stale: row.data?.stale ?? false,
    lastTier: row.data?.lastTier ?? null,
  });
  return (
    <>
      <p>
        <a href="#/terminals">← Terminals</a>
      </p>
      <h1>
        Terminal {t.terminalId} <StateBadge state={state} />
      </h1>
      <dl className="facts">
        <dt>State</dt>
        <dd data-testid="terminal-state">
          {t.state}
          {t.stateReason === null ? '' : ` — ${t.stateReason}`}
        </dd>
        <dt>Merchant</dt>
        <dd>
          {merchantNames.get(t.merchantId) ?? ''} ({t.merchantId})
        </dd>
        <dt>Reader serial</dt>
        <dd>{t.readerSerial}</dd>
        <dt>App version</dt>
        <dd>{appVersion ?? '—'}</dd>
        <dt>Last verdict</dt>
        <dd>
          <TierBadge tier={row.data?.lastTier} /> {age(t.lastAttestedAt)} ({time(t.lastAttestedAt)})
        </dd>
        <dt>Next attestation due</dt>
        <dd>
          {time(row.data?.nextDueAt ?? null)} (every {t.attestationIntervalS} s)
          {row.data?.stale === true ? ` · stale since ${time(row.data.staleAt)}` : ''}
        </dd>
        <dt>Ticket expires</dt>
        <dd data-testid="ticket-expiry">
          <TicketExpiry ticket={t.ticket} />
        </dd>
        <dt>New tickets</dt>
        <dd className="muted">
          {t.state === 'active' && state !== 'stale'
            ? 'one with each accepted verdict, living the ticket lifetime (60 s by default)'
            : t.state === 'resume-pending'
              ? 'only a handshake ticket (reader session, no PIN entry, no sale) until an affirming attestation'
              : t.state === 'decommissioned'
                ? 'never again: decommissioned for good, its device key is refused on every terminal route'
                : 'none: no PIN entry, no sale (a ticket from before is refused too)'}
        </dd>
        <dt>Evidence counter</dt>
        <dd>{t.lastCounter}</dd>
        <dt>Device key</dt>
        <dd className="mono">{t.deviceJkt}</dd>
      </dl>
      <div className="actions">
        {can('halt') && t.state === 'active' ? (
          <ActionButton
            label="Halt"
            danger
            notice={notice}
            description={`Halt terminal ${t.terminalId}: PIN entry stops on it at once (pushed to the terminal; no ticket until resumed).`}
            onConfirm={async (reason) => {
              const r = await call(TerminalHalted, 'POST', `/v1/terminals/${enc(terminalId)}/halt`, {
                reason,
              });
              reloadAll();
              return `Halted (${r.haltId ?? ''}).`;
            }}
          />
        ) : null}
        {can('resume') && t.state === 'halted' ? (
          <ActionButton
            label="Resume"
            notice={notice}
            description={`Resume terminal ${t.terminalId}: it becomes resume-pending and takes PINs again only after a fresh affirming attestation.`}
            onConfirm={async (reason) => {
              const r = await call(TerminalHalted, 'POST', `/v1/terminals/${enc(terminalId)}/resume`, {
                reason,
              });
              reloadAll();
              return `Now ${r.state}: waiting for a fresh affirming attestation.`;
            }}
          />
        ) : null}
        {can('halt') && t.state !== 'decommissioned' ? (
          <ActionButton
            label="Decommission"
            danger
            notice={notice}
            description={`Decommission terminal ${t.terminalId} for good (a stolen or replaced PC, a closed shop). This cannot be undone: its device key is refused from now on, no resume brings it back, and a replacement must be enrolled as a new terminal. Its reader may be enrolled on the replacement; its history stays.`}
            onConfirm={async (reason) => {
              await call(TerminalDecommissioned, 'POST', `/v1/terminals/${enc(terminalId)}/decommission`, {
                reason,
              });
              reloadAll();
              return 'Decommissioned for good.';
            }}
          />
        ) : null}
      </div>
      <PageNoticeArea notice={notice} />

      <h2>Halts covering this terminal</h2>
      <ErrorBox error={halts.error} />
      {halts.data === undefined || halts.data.length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        halts.data.map((h) => (
          <section key={h.haltId} className="halt">
            <h3>
              {h.scope} halt {h.haltId}{' '}
              {h.liftedAt === null ? (
                <span className="badge state-halted">active</span>
              ) : (
                <span className="badge">lifted</span>
              )}
            </h3>
            <p>
              “{h.reason}” by {h.createdBy} at {time(h.createdAt)}
              {h.liftedAt === null ? '' : `; lifted by ${h.liftedBy ?? '?'} at ${time(h.liftedAt)}`}
            </p>
            <HaltDeliveries haltId={h.haltId} onlyTerminal={terminalId} />
          </section>
        ))
      )}

      <h2>Verdicts and evidence</h2>
      <ErrorBox error={attestations.error} />
      <Timeline items={attestations.data?.attestations ?? []} />
      <table>
        <thead>
          <tr>
            <th>Time</th>
            <th>Purpose</th>
            <th>Counter</th>
            <th>Verdict</th>
            <th>Policy</th>
            <th>Reasons</th>
          </tr>
        </thead>
        <tbody>
          {(attestations.data?.attestations ?? []).map((a) => {
            const v = VerdictDoc.safeParse(a.verdict);
            const doc = v.success ? v.data : {};
            const open = expanded === a.id;
            return (
              <tr key={a.id}>
                <td>{time(a.at)}</td>
                <td>{a.purpose}</td>
                <td>{a.counter ?? '—'}</td>
                <td>
                  <TierBadge tier={a.tier} />
                </td>
                <td>
                  {a.policyVersion}
                  {(doc.shadow ?? []).map((s) => (
                    <div key={s.policyVersion} className="muted">
                      shadow {s.policyVersion}: {s.tier}
                      {s.halt === true ? ' (would halt)' : ''}
                    </div>
                  ))}
                </td>
                <td>
                  {(doc.reasons ?? []).map((r) => (
                    <div key={r.code}>
                      <code>{r.code}</code> {r.text ?? ''}
                    </div>
                  ))}
                  <button type="button" className="link" onClick={() => setExpanded(open ? undefined : a.id)}>
                    {open ? 'hide evidence' : 'evidence'}
                  </button>
                  {open ? (
                    <div className="evidence">
                      <p>Passed: {(doc.passed ?? []).join(', ') || '—'}</p>
                      {(doc.outcomes ?? []).map((o, i) => (
                        <p key={i}>
                          <strong>{o.verifier ?? '?'}</strong> {o.status ?? ''} <code>{o.code ?? ''}</code>{' '}
                          {o.detail ?? ''}
                        </p>
                      ))}
                    </div>
                  ) : null}
                </td>
              </tr>
            );
          })}
        </tbody>
      </table>

      <h2>Transactions</h2>
      <ErrorBox error={transactions.error} />
      {(transactions.data?.transactions ?? []).length === 0 ? (
        <p className="muted">None.</p>
      ) : (
        <table>
          <thead>
            <tr>
              <th>Time</th>
              <th>Amount</th>
              <th>Result</th>
              <th>Card token</th>
            </tr>
          </thead>
          <tbody>
            {(transactions.data?.transactions ?? []).map((x) => (
              <tr key={x.id}>
                <td>{time(x.at)}</td>
                <td>
                  {(x.amount / 100).toFixed(2)} {x.currency}
                </td>
                <td>{x.approved ? `approved ${x.authCode ?? ''}` : `declined ${x.code ?? ''}`}</td>
                <td className="mono">{x.cardToken ?? '—'}</td>
              </tr>
            ))}
          </tbody>
        </table>
      )}
    </>
  );
}
