/**
 * Terminals: filtered by state and merchant on the server (GET /v1/terminals), searched, sorted and
 * paged here over what is loaded (500 per request, "Load more" for the next 500).
 */
import { useMemo, useState, type ReactNode } from 'react';
import { call, enc, q, TerminalsOut, type TerminalRow } from '../api';
import { age, displayState, hashParams, stateQuery, type DisplayState } from '../format';
import { ErrorBox, StateBadge, TierBadge, useLoad, useSession } from '../ui';

const STATES: readonly DisplayState[] = [
  'trusted',
  'warning',
  'halted',
  'stale',
  'resume-pending',
  'unverified',
  'decommissioned',
];
const PAGE = 25;
type SortKey = 'terminalId' | 'merchant' | 'state' | 'lastAttestedAt' | 'readerSerial' | 'appVersion';

function isState(s: string | null): s is DisplayState {
  return s !== null && (STATES as readonly string[]).includes(s);
}

export function TerminalsPage(): ReactNode {
  const { merchantNames, me } = useSession();
  const params = hashParams(window.location.hash);
  const initial = params.get('state');
  const [state, setStateRaw] = useState<DisplayState | ''>(isState(initial) ? initial : '');
  const [merchant, setMerchantRaw] = useState(params.get('merchant') ?? '');
  const [search, setSearch] = useState('');
  const [sort, setSort] = useState<{ key: SortKey; desc: boolean }>({ key: 'terminalId', desc: false });
  const [page, setPage] = useState(0);
  const [extra, setExtra] = useState<{ rows: TerminalRow[]; next: string | null } | undefined>();
  // A new filter starts again at the first page.
  const setState = (s: DisplayState | ''): void => {
    setStateRaw(s);
    setPage(0);
  };
  const setMerchant = (m: string): void => {
    setMerchantRaw(m);
    setPage(0);
  };

  const loaded = useLoad(
    async () => {
      const first = await call(
        TerminalsOut,
        'GET',
        `/v1/terminals${q({ limit: 500, merchant, ...stateQuery(state) })}`,
      );
      // A live refresh re-reads the first 500; rows loaded with "Load more" are read again on demand.
      setExtra(undefined);
      return first;
    },
    [state, merchant],
    (e) =>
      e.type === 'halt' ||
      e.type === 'resume' ||
      e.type === 'stale' ||
      e.type === 'verdict' ||
      e.type === 'decommission',
    5000,
  );
  const rows = useMemo(() => {
    const all = [...(loaded.data?.terminals ?? []), ...(extra?.rows ?? [])];
    // "unverified" is active, live, neither affirming nor warning: the API filters active and live.
    const byState = state === 'unverified' ? all.filter((t) => displayState(t) === 'unverified') : all;
    const needle = search.trim().toLowerCase();
    const found =
      needle === ''
        ? byState
        : byState.filter((t) =>
            [
              t.terminalId,
              t.merchantId,
              merchantNames.get(t.merchantId) ?? '',
              t.readerSerial,
              t.appVersion ?? '',
            ]
              .join(' ')
              .toLowerCase()
              .includes(needle),
          );
    const value = (t: TerminalRow): string | number => {
      switch (sort.key) {
        case 'merchant':
          return merchantNames.get(t.merchantId) ?? t.merchantId;
        case 'state':
          return displayState(t);
        case 'lastAttestedAt':
          return t.lastAttestedAt ?? 0;
        case 'readerSerial':
          return t.readerSerial;
        case 'appVersion':
          return t.appVersion ?? '';
        case 'terminalId':
          return t.terminalId;
      }
    };
    return [...found].sort((a, b) => {
      const x = value(a);
      const y = value(b);
      const c = x < y ? -1 : x > y ? 1 : 0;
      return sort.desc ? -c : c;
    });
  }, [loaded.data, extra, state, search, sort, merchantNames]);

  const next = extra === undefined ? (loaded.data?.next ?? null) : extra.next;
  const loadMore = (): void => {
    if (next === null) return;
    void call(
      TerminalsOut,
      'GET',
      `/v1/terminals${q({ limit: 500, merchant, after: next, ...stateQuery(state) })}`,
    ).then((more) => setExtra((e) => ({ rows: [...(e?.rows ?? []), ...more.terminals], next: more.next })));
  };
  const pages = Math.max(1, Math.ceil(rows.length / PAGE));
  const shown = rows.slice(page * PAGE, page * PAGE + PAGE);
  const header = (key: SortKey, label: string): ReactNode => (
    <th aria-sort={sort.key === key ? (sort.desc ? 'descending' : 'ascending') : 'none'}>
      <button
        type="button"
        className="sort"
        onClick={() => setSort((s) => ({ key, desc: s.key === key ? !s.desc : false }))}
      >
        {label}
        {sort.key === key ? (sort.desc ? ' ▼' : ' ▲') : ''}
      </button>
    </th>
  );

  return (
    <>
      <h1>Terminals</h1>
      <div className="filters">
        <label>
          Search
          <input
            type="search"
            value={search}
            placeholder="id, merchant, reader serial, version"
            onChange={(e) => {
              setSearch(e.target.value);
              setPage(0);
            }}
          />
        </label>
        <label>
          State
          <select value={state} onChange={(e) => setState(isState(e.target.value) ? e.target.value : '')}>
            <option value="">any</option>
            {STATES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        {me.merchantId === null ? (
          <label>
            Merchant
            <select value={merchant} onChange={(e) => setMerchant(e.target.value)}>
              <option value="">any</option>
              {[...merchantNames].map(([id, name]) => (
                <option key={id} value={id}>
                  {name} ({id})
                </option>
              ))}
            </select>
          </label>
        ) : null}
      </div>
      <ErrorBox error={loaded.error} />
      <table className="terminals">
        <thead>
          <tr>
            {header('terminalId', 'Terminal')}
            {header('merchant', 'Merchant')}
            {header('state', 'State')}
            {header('lastAttestedAt', 'Last verdict')}
            {header('readerSerial', 'Reader serial')}
            {header('appVersion', 'App version')}
          </tr>
        </thead>
        <tbody>
          {shown.map((t) => (
            <tr key={t.terminalId}>
              <td>
                <a href={`#/terminals/${enc(t.terminalId)}`}>{t.terminalId}</a>
              </td>
              <td>{merchantNames.get(t.merchantId) ?? t.merchantId}</td>
              <td>
                <StateBadge state={displayState(t)} />
              </td>
              <td>
                <TierBadge tier={t.lastTier} /> {age(t.lastAttestedAt)}
              </td>
              <td>{t.readerSerial}</td>
              <td>{t.appVersion ?? '—'}</td>
            </tr>
          ))}
        </tbody>
      </table>
      {loaded.data !== undefined && rows.length === 0 ? <p className="muted">No terminal matches.</p> : null}
      <div className="pager">
        <button type="button" disabled={page === 0} onClick={() => setPage((p) => p - 1)}>
          Previous
        </button>
        <span>
          Page {page + 1} of {pages} · {rows.length} terminal{rows.length === 1 ? '' : 's'}
        </span>
        <button type="button" disabled={page + 1 >= pages} onClick={() => setPage((p) => p + 1)}>
          Next
        </button>
        {next === null ? null : (
          <button type="button" onClick={loadMore}>
            Load more from the server
          </button>
        )}
      </div>
    </>
  );
}
