/**
 * Shared pieces: the session context, badges, the two-step action form and the page's notice of its
 * outcome, halt deliveries, charts.
 */
import {
  createContext,
  useCallback,
  useContext,
  useEffect,
  useMemo,
  useRef,
  useState,
  type ReactNode,
} from 'react';
import { call, enc, HaltDetailOut, type FleetEvent, type HaltDetail, type Me } from './api';
import { deliverySummary, errorText, serverNow, time, type DisplayState } from './format';

export interface Session {
  readonly me: Me;
  /** Whether the signed-in user holds a permission (GET /v1/auth/me): controls without it are not shown. */
  readonly can: (permission: string) => boolean;
  /** The newest live events first (at most 200). */
  readonly events: readonly FleetEvent[];
  /** Whether the event stream is connected. */
  readonly live: boolean;
  /** Calls `fn` for every live event from now on; returns the unsubscribe. */
  readonly subscribe: (fn: (e: FleetEvent) => void) => () => void;
  /** Merchant names by id (those the user may reach). */
  readonly merchantNames: ReadonlyMap<string, string>;
}

export const SessionContext = createContext<Session | null>(null);

export function useSession(): Session {
  const s = useContext(SessionContext);
  if (s === null) throw new Error('no session');
  return s;
}

/** Runs `load` now, whenever `deps` change, and (optionally) when a live event passes `refreshOn`. */
export function useLoad<T>(
  load: () => Promise<T>,
  deps: readonly unknown[],
  refreshOn?: (e: FleetEvent) => boolean,
  /** At most one live refresh per this many ms (events come in bursts; the API rate-limits per address). */
  throttleMs = 1000,
): { data: T | undefined; error: string | undefined; reload: () => void } {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string>();
  const [tick, setTick] = useState(0);
  const session = useContext(SessionContext);
  const reload = useCallback(() => setTick((n) => n + 1), []);
  useEffect(() => {
    let cancelled = false;
    load().then(
      (d) => {
        if (!cancelled) {
          setData(d);
          setError(undefined);
        }
      },
      (e: unknown) => {
        if (!cancelled) setError(errorText(e));
      },
    );
    return () => {
      cancelled = true;
    };
    // The caller lists in `deps` what `load` reads.
  }, [...deps, tick]);
  // The latest `refreshOn` (a new closure each render), read when an event arrives.
  const refreshRef = useRef(refreshOn);
  refreshRef.current = refreshOn;
  // Subscribed once per session: `subscribe` is stable while `session` changes with every event.
  const subscribe = session?.subscribe;
  useEffect(() => {
    if (subscribe === undefined) return undefined;
    // Events come in bursts (a fleet halt acknowledged by many terminals): one reload per throttleMs.
    let timer: number | undefined;
    const off = subscribe((e) => {
      const wants = refreshRef.current;
      if (wants === undefined || !wants(e) || timer !== undefined) return;
      timer = window.setTimeout(() => {
        timer = undefined;
        reload();
      }, throttleMs);
    });
    return () => {
      off();
      if (timer !== undefined) window.clearTimeout(timer);
    };
  }, [subscribe, reload, throttleMs]);
  return { data, error, reload };
}

export function ErrorBox({ error }: { error: string | undefined }): ReactNode {
  return error === undefined ? null : (
    <p className="error" role="alert">
      {error}
    </p>
  );
}

export function StateBadge({ state }: { state: DisplayState }): ReactNode {
  return <span className={`badge state-${state}`}>{state}</span>;
}

export function TierBadge({ tier }: { tier: string | null | undefined }): ReactNode {
  const t = tier ?? 'none';
  return <span className={`badge tier-${t}`}>{t}</span>;
}

/** The outcome of the page's last action, as the page shows it. */
export interface Outcome {
  /** Counts up with every outcome (a repeated text is still a new outcome). */
  readonly id: number;
  readonly text: ReactNode;
  /** When it happened, by the server's clock. */
  readonly at: number;
}

/** A page's notice of its last action's outcome (usePageNotice, shown by PageNoticeArea). */
export interface PageNotice {
  readonly outcome: Outcome | undefined;
  readonly show: (text: ReactNode) => void;
  readonly dismiss: () => void;
}

/**
 * The notice state a page owns: an action's outcome stays shown after the control that produced it
 * is gone (Halt replaced by Resume once the terminal is halted; a lifted halt leaving the list of
 * active ones), until the next action's outcome replaces it or the operator dismisses it.
 */
export function usePageNotice(): PageNotice {
  const [outcome, setOutcome] = useState<Outcome>();
  const show = useCallback(
    (text: ReactNode) => setOutcome((o) => ({ id: (o?.id ?? 0) + 1, text, at: serverNow() })),
    [],
  );
  const dismiss = useCallback(() => setOutcome(undefined), []);
  return useMemo(() => ({ outcome, show, dismiss }), [outcome, show, dismiss]);
}

/**
 * Where a page shows its last action's outcome: a live region (role="status", present even when
 * empty so screen readers announce what appears in it), with the time and a Dismiss button; scrolled
 * into view when a new outcome arrives.
 */
export function PageNoticeArea({ notice }: { notice: PageNotice }): ReactNode {
  const ref = useRef<HTMLDivElement>(null);
  const id = notice.outcome?.id;
  useEffect(() => {
    if (id !== undefined) ref.current?.scrollIntoView({ block: 'nearest' });
  }, [id]);
  const o = notice.outcome;
  return (
    <div ref={ref} className="notice" role="status" data-testid="action-result">
      {o === undefined ? null : (
        <>
          <span>{o.text}</span>
          <span className="muted">{time(o.at)}</span>
          <button type="button" className="link" onClick={notice.dismiss}>
            Dismiss
          </button>
        </>
      )}
    </div>
  );
}

/**
 * A change in two steps: the button (`label`, e.g. Halt) opens a form with a required `Reason`; the
 * `Confirm` button sends it. `onConfirm` resolves to a line to show (what happened) or throws. With
 * `notice`, that line goes to the page's notice (which outlives this button); without, it is shown
 * next to the button.
 */
export function ActionButton(props: {
  label: string;
  description: string;
  onConfirm: (reason: string) => Promise<ReactNode>;
  danger?: boolean;
  needsReason?: boolean;
  notice?: PageNotice;
}): ReactNode {
  const needsReason = props.needsReason ?? true;
  const [open, setOpen] = useState(false);
  const [reason, setReason] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [result, setResult] = useState<ReactNode>();
  const submit = (): void => {
    setBusy(true);
    setError(undefined);
    props.onConfirm(reason.trim()).then(
      (r) => {
        setBusy(false);
        setOpen(false);
        setReason('');
        if (props.notice === undefined) setResult(r);
        else props.notice.show(r);
      },
      (e: unknown) => {
        setBusy(false);
        setError(errorText(e));
      },
    );
  };
  if (!open) {
    return (
      <span className="action">
        <button
          type="button"
          className={props.danger === true ? 'danger' : ''}
          onClick={() => {
            setOpen(true);
            setResult(undefined);
          }}
        >
          {props.label}
        </button>
        {result === undefined ? null : <span className="result">{result}</span>}
      </span>
    );
  }
  return (
    <form
      className="confirm"
      aria-label={`${props.label}: confirm`}
      onSubmit={(e) => {
        e.preventDefault();
        submit();
      }}
    >
      <p>{props.description}</p>
      {needsReason ? (
        <label>
          Reason
          <textarea
            value={reason}
            maxLength={500}
            required
            rows={2}
            onChange={(e) => setReason(e.target.value)}
          />
        </label>
      ) : null}
      <div className="buttons">
        <button
          type="submit"
          className={props.danger === true ? 'danger' : ''}
          disabled={busy || (needsReason && reason.trim() === '')}
        >
          Confirm
        </button>
        <button type="button" onClick={() => setOpen(false)} disabled={busy}>
          Cancel
        </button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

/**
 * A halt's delivery: how many covered terminals acknowledged it (distinct terminals per message kind,
 * format.ts deliverySummary), per message sent and acknowledged times; refreshed on every acknowledgement event of this halt and every 15 s while any is pending (an event missed during a reconnect).
 */
export function HaltDeliveries({
  haltId,
  onlyTerminal,
}: {
  haltId: string;
  onlyTerminal?: string;
}): ReactNode {
  const { data, error, reload } = useLoad<HaltDetail>(
    () => call(HaltDetailOut, 'GET', `/v1/halts/${enc(haltId)}`),
    [haltId],
    (e) => e.haltId === haltId,
    2000,
  );
  const pending = data?.pending ?? 0;
  useEffect(() => {
    if (pending === 0) return undefined;
    const timer = window.setInterval(reload, 15_000);
    return () => window.clearInterval(timer);
  }, [pending, reload]);
  if (data === undefined) return <ErrorBox error={error} />;
  const rows = data.deliveries.filter((d) => onlyTerminal === undefined || d.terminalId === onlyTerminal);
  const summary = deliverySummary(rows);
  return (
    <div className="deliveries">
      <p className={summary.complete ? 'ok' : 'pending'} data-testid="delivery-summary">
        {summary.text}
      </p>
      {rows.length > 0 ? (
        <table>
          <thead>
            <tr>
              <th>Terminal</th>
              <th>Message</th>
              <th>Sent</th>
              <th>Acknowledged</th>
            </tr>
          </thead>
          <tbody>
            {rows.slice(0, 50).map((d) => (
              <tr key={`${d.terminalId}-${d.seq}`}>
                <td>
                  <a href={`#/terminals/${enc(d.terminalId)}`}>{d.terminalId}</a>
                </td>
                <td>
                  {d.kind} #{d.seq}
                </td>
                <td>{d.sentAt === null ? 'not yet (offline)' : time(d.sentAt)}</td>
                <td>{d.ackedAt === null ? 'pending' : time(d.ackedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      ) : null}
      {rows.length > 50 ? <p className="muted">… and {rows.length - 50} more messages.</p> : null}
    </div>
  );
}

export interface Series {
  readonly label: string;
  readonly className: string;
  readonly values: readonly number[];
}

/** Stacked bars, one per bucket, hand-written SVG. */
export function BarChart(props: {
  title: string;
  series: readonly Series[];
  bucketLabels: readonly string[];
}): ReactNode {
  const n = props.bucketLabels.length;
  const totals = Array.from({ length: n }, (_, i) =>
    props.series.reduce((sum, s) => sum + (s.values[i] ?? 0), 0),
  );
  const max = Math.max(1, ...totals);
  const w = 600;
  const h = 140;
  const pad = 24;
  const bw = (w - pad) / Math.max(1, n);
  return (
    <figure className="chart">
      <figcaption>{props.title}</figcaption>
      <svg viewBox={`0 0 ${w} ${h + 18}`} role="img" aria-label={props.title}>
        <line x1={pad} y1={h} x2={w} y2={h} className="axis" />
        <text x={0} y={10} className="tick">
          {max}
        </text>
        <text x={0} y={h} className="tick">
          0
        </text>
        {Array.from({ length: n }, (_, i) => {
          let y = h;
          return props.series.map((s) => {
            const v = s.values[i] ?? 0;
            const bh = (v / max) * (h - 8);
            y -= bh;
            return v === 0 ? null : (
              <rect
                key={`${s.label}-${i}`}
                x={pad + i * bw + 1}
                y={y}
                width={Math.max(1, bw - 2)}
                height={bh}
                className={s.className}
              >
                <title>{`${props.bucketLabels[i] ?? ''}: ${v} ${s.label}`}</title>
              </rect>
            );
          });
        })}
        {props.bucketLabels.map((l, i) =>
          i % Math.ceil(n / 6) === 0 ? (
            <text key={l + String(i)} x={pad + i * bw} y={h + 14} className="tick">
              {l}
            </text>
          ) : null,
        )}
      </svg>
      <div className="legend">
        {props.series.map((s) => (
          <span key={s.label}>
            <i className={s.className} /> {s.label}
          </span>
        ))}
      </div>
    </figure>
  );
}
