/** Fleet overview: counts by state, attestations per minute and verdicts over time, the live feed. */
import { useEffect, useMemo, useState, type ReactNode } from 'react';
import {
  AttestationsOut,
  call,
  enc,
  q,
  SummaryOut,
  TerminalsOut,
  VerdictDoc,
  type FleetEvent,
  type TerminalRow,
} from '../api';
import { age, displayState, serverNow, setServerNow, time } from '../format';
import { BarChart, ErrorBox, StateBadge, useLoad, useSession, type Series } from '../ui';

const MINUTES = 30;
const TIERS = ['affirming', 'warning', 'contraindicated', 'none'] as const;

interface Verdict {
  readonly key: string;
  readonly at: number;
  readonly tier: string;
}

/** What a live event says, in one line. */
export function describeEvent(e: FleetEvent): string {
  switch (e.type) {
    case 'verdict':
      return `${e.terminalId ?? '?'}: ${e.tier ?? '?'} verdict (${e.purpose ?? '?'})`;
    case 'halt':
      return `halt of ${e.scope ?? '?'}${e.target === null || e.target === undefined ? '' : ` ${e.target}`}: ${e.reason ?? ''} (${e.terminals ?? 0} terminals)`;
    case 'resume':
      return `halt ${e.haltId ?? '?'} lifted (${e.terminals ?? 0} terminals)`;
    case 'ack':
      return `${e.terminalId ?? '?'} acknowledged ${e.haltId ?? '?'}${e.latencyMs === undefined ? '' : ` in ${Math.round(e.latencyMs)} ms`}`;
    case 'stale':
      return `${e.terminalId ?? '?'} went stale (missed its attestation)`;
    case 'correlation':
      return `${e.terminalId ?? '?'}: correlation alert ${e.kind ?? ''}`;
    case 'connection':
      return `${e.terminalId ?? '?'} ${e.connected === true ? 'connected' : 'disconnected'}`;
    case 'decommission':
      return `${e.terminalId ?? '?'} decommissioned: ${e.reason ?? ''}`;
    default:
      return `${e.type}${e.terminalId === undefined ? '' : ` ${e.terminalId}`}`;
  }
}

export function EventFeed({
  events,
  limit = 30,
}: {
  events: readonly FleetEvent[];
  limit?: number;
}): ReactNode {
  return events.length === 0 ? (
    <p className="muted">
      No events since this page opened. Verdicts, halts and acknowledgements appear here live.
    </p>
  ) : (
    <ol className="feed" aria-label="Live events">
      {events.slice(0, limit).map((e, i) => (
        <li key={`${e.at}-${i}-${e.type}`} className={`ev-${e.type}`}>
          <time>{time(e.at)}</time> <span className="ev-type">{e.type}</span> {describeEvent(e)}
        </li>
      ))}
    </ol>
  );
}

interface Attention {
  readonly terminal: TerminalRow;
  readonly why: string;
}

/** Why a terminal is not trusted, in words: its halt reason, its missed deadline, its last verdict's reasons. */
async function needsAttention(): Promise<Attention[]> {
  const lists = await Promise.all(
    [
      { state: 'halted' },
      { state: 'active', stale: 'true' },
      { state: 'active', stale: 'false', tier: 'warning' },
    ].map((filter) => call(TerminalsOut, 'GET', `/v1/terminals${q({ ...filter, limit: 10 })}`)),
  );
  const rows = lists.flatMap((l) => l.terminals).slice(0, 20);
  return Promise.all(
    rows.map(async (t): Promise<Attention> => {
      if (t.state === 'halted') return { terminal: t, why: t.stateReason ?? 'halted' };
      if (t.stale) return { terminal: t, why: `missed its attestation (due ${time(t.nextDueAt)})` };
      const latest = (
        await call(
          AttestationsOut,
          'GET',
          `/v1/terminals/${enc(t.terminalId)}/attestations${q({ limit: 1 })}`,
        )
      ).attestations[0];
      const doc = latest === undefined ? undefined : VerdictDoc.safeParse(latest.verdict);
      const reasons = doc?.success === true ? (doc.data.reasons ?? []) : [];
      return {
        terminal: t,
        why: reasons.length === 0 ? 'last verdict: warning' : reasons.map((r) => r.text ?? r.code).join('; '),
      };
    }),
  );
}

export function OverviewPage(): ReactNode {
  const { events, subscribe } = useSession();
  const summary = useLoad(
    async () => {
      const s = await call(SummaryOut, 'GET', '/v1/fleet/summary');
      setServerNow(s.at);
      return s;
    },
    [],
    (e) => e.type !== 'connection',
    3000,
  );
  const { reload } = summary;
  const attention = useLoad(
    needsAttention,
    [],
    (e) => e.type === 'halt' || e.type === 'resume' || e.type === 'stale',
  );
  const { merchantNames } = useSession();
  useEffect(() => {
    const timer = window.setInterval(reload, 15_000);
    return () => window.clearInterval(timer);
  }, [reload]);

  // Verdicts of the last half hour: the recent history of the first terminals, then every live one.
  const [history, setHistory] = useState<readonly Verdict[]>([]);
  useEffect(() => {
    let cancelled = false;
    const since = serverNow() - MINUTES * 60_000;
    void (async () => {
      const list = await call(TerminalsOut, 'GET', `/v1/terminals${q({ limit: 25 })}`);
      const recent = list.terminals.filter((t) => t.lastAttestedAt !== null && t.lastAttestedAt >= since);
      const all = await Promise.all(
        recent.map((t) =>
          call(AttestationsOut, 'GET', `/v1/terminals/${enc(t.terminalId)}/attestations${q({ limit: 100 })}`),
        ),
      );
      if (cancelled) return;
      const seeded = all.flatMap((a) =>
        a.attestations.filter((x) => x.at >= since).map((x) => ({ key: x.id, at: x.at, tier: x.tier })),
      );
      setHistory((h) => [...seeded, ...h]);
    })().catch(() => undefined);
    const off = subscribe((e) => {
      if (e.type === 'verdict')
        setHistory((h) => [
          ...h,
          { key: `live-${e.at}-${e.terminalId ?? ''}-${h.length}`, at: e.at, tier: e.tier ?? 'none' },
        ]);
    });
    return () => {
      cancelled = true;
      off();
    };
  }, [subscribe]);

  const [now, setNow] = useState(serverNow());
  useEffect(() => {
    const timer = window.setInterval(() => setNow(serverNow()), 10_000);
    return () => window.clearInterval(timer);
  }, []);
  const latest = Math.max(now, ...history.map((v) => v.at));
  const chart = useMemo(() => {
    const end = Math.floor(latest / 60_000) + 1;
    const start = end - MINUTES;
    const labels = Array.from({ length: MINUTES }, (_, i) => time((start + i) * 60_000).slice(11, 16));
    const counts = Object.fromEntries(TIERS.map((t) => [t, new Array<number>(MINUTES).fill(0)])) as Record<
      string,
      number[]
    >;
    const seen = new Set<string>();
    for (const v of history) {
      if (seen.has(v.key)) continue;
      seen.add(v.key);
      const i = Math.floor(v.at / 60_000) - start;
      const row = counts[TIERS.includes(v.tier as (typeof TIERS)[number]) ? v.tier : 'none'];
      if (row !== undefined && i >= 0 && i < MINUTES) row[i] = (row[i] ?? 0) + 1;
    }
    const series: Series[] = TIERS.map((t) => ({
      label: t,
      className: `fill-${t}`,
      values: counts[t] ?? [],
    }));
    const total = Array.from({ length: MINUTES }, (_, i) =>
      series.reduce((s, x) => s + (x.values[i] ?? 0), 0),
    );
    return { labels, series, total };
  }, [history, latest]);

  const s = summary.data?.terminals;
  const cards: readonly [string, number | undefined, string][] = [
    ['Trusted', s?.trusted, 'trusted'],
    ['Warning', s?.warning, 'warning'],
    ['Halted', s?.halted, 'halted'],
    ['Stale', s?.stale, 'stale'],
    ['Resume pending', s?.resumePending, 'resume-pending'],
    ['Not verified yet', s?.other, 'unverified'],
    ['Decommissioned', s?.decommissioned, 'decommissioned'],
  ];
  return (
    <>
      <h1>Fleet overview</h1>
      <ErrorBox error={summary.error} />
      <section className="cards" aria-label="Terminals by state">
        {cards.map(([label, n, state]) => (
          <a key={label} className={`card state-${state}`} href={`#/terminals?state=${state}`}>
            <span className="n" data-testid={`count-${state}`}>
              {n ?? '…'}
            </span>
            <span>{label}</span>
          </a>
        ))}
        <div className="card">
          <span className="n">{s?.total ?? '…'}</span>
          <span>Total</span>
        </div>
      </section>
      <section className="charts">
        <BarChart
          title="Attestations per minute (last 30 minutes)"
          bucketLabels={chart.labels}
          series={[{ label: 'attestations', className: 'fill-all', values: chart.total }]}
        />
        <BarChart title="Verdicts over time, by tier" bucketLabels={chart.labels} series={chart.series} />
      </section>
      <section>
        <h2>Needs attention</h2>
        <ErrorBox error={attention.error} />
        {attention.data?.length === 0 ? (
          <p className="muted">No terminal is halted, stale or warned.</p>
        ) : (
          <table>
            <thead>
              <tr>
                <th>Terminal</th>
                <th>Merchant</th>
                <th>State</th>
                <th>Why</th>
                <th>Last verdict</th>
              </tr>
            </thead>
            <tbody>
              {(attention.data ?? []).map(({ terminal: t, why }) => (
                <tr key={t.terminalId}>
                  <td>
                    <a href={`#/terminals/${enc(t.terminalId)}`}>{t.terminalId}</a>
                  </td>
                  <td>{merchantNames.get(t.merchantId) ?? t.merchantId}</td>
                  <td>
                    <StateBadge state={displayState(t)} />
                  </td>
                  <td>{why}</td>
                  <td>{age(t.lastAttestedAt)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        )}
      </section>
      <section>
        <h2>Live events</h2>
        <EventFeed events={events} />
      </section>
    </>
  );
}
