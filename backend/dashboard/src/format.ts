/** Formatting of times, ages and states for the tables. */

/** The server's clock minus the browser's, in ms (fleet summaries carry the server's `at`). */
let offsetMs = 0;
export function setServerNow(serverAt: number): void {
  offsetMs = serverAt - Date.now();
}
/** Now, by the server's clock (ages are measured against it, not the browser's). */
export function serverNow(): number {
  return Date.now() + offsetMs;
}

/** A span of whole seconds (at least 0) as the pages write it: "42 s", "3 min", "2 h", "4 d". */
function span(s: number): string {
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min`;
  if (s < 86_400) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

export function age(at: number | null, now = serverNow()): string {
  if (at === null) return 'never';
  const s = Math.round((now - at) / 1000);
  if (s < 0) return 'just now';
  return `${span(s)} ago`;
}

/** A terminal's current ticket as GET /v1/terminals/:id gives it (the fields its expiry needs). */
export interface TicketTimes {
  readonly expiresAt: number;
  /** The server's word at the time of the answer: expired then stays expired. */
  readonly expired: boolean;
}

/**
 * How far a ticket's expiry is from now (the server's clock): "in 42 s" (rounded up: never "in 0 s"
 * while it lives), "expired 3 min ago", or "no ticket".
 */
export function ticketExpiry(ticket: TicketTimes | null, now = serverNow()): string {
  if (ticket === null) return 'no ticket';
  if (ticket.expired || ticket.expiresAt <= now)
    return `expired ${age(ticket.expiresAt, Math.max(now, ticket.expiresAt))}`;
  return `in ${span(Math.ceil((ticket.expiresAt - now) / 1000))}`;
}

export function time(at: number | string | null): string {
  if (at === null) return '—';
  const d = new Date(at);
  return Number.isNaN(d.getTime())
    ? String(at)
    : d
        .toISOString()
        .replace('T', ' ')
        .replace(/\.\d+Z$/, 'Z');
}

/** The state an operator reads: decommissioned, halted, resume-pending, stale, trusted, warning or unverified. */
export type DisplayState =
  'trusted' | 'warning' | 'halted' | 'stale' | 'resume-pending' | 'unverified' | 'decommissioned';

/** The fields of a terminal its display state depends on. */
export interface StateFields {
  readonly state: 'active' | 'halted' | 'resume-pending' | 'decommissioned';
  readonly stale: boolean;
  readonly lastTier: string | null;
}

export function displayState(t: StateFields): DisplayState {
  if (t.state === 'decommissioned') return 'decommissioned';
  if (t.state === 'halted') return 'halted';
  if (t.state === 'resume-pending') return 'resume-pending';
  if (t.stale) return 'stale';
  if (t.lastTier === 'affirming') return 'trusted';
  if (t.lastTier === 'warning') return 'warning';
  return 'unverified';
}

/** The API query for a display state (GET /v1/terminals). */
export function stateQuery(state: DisplayState | ''): Record<string, string | undefined> {
  switch (state) {
    case '':
      return {};
    case 'trusted':
      return { state: 'active', stale: 'false', tier: 'affirming' };
    case 'warning':
      return { state: 'active', stale: 'false', tier: 'warning' };
    case 'halted':
      return { state: 'halted' };
    case 'resume-pending':
      return { state: 'resume-pending' };
    case 'decommissioned':
      return { state: 'decommissioned' };
    case 'stale':
      return { state: 'active', stale: 'true' };
    case 'unverified':
      return { state: 'active', stale: 'false' };
  }
}

export function errorText(e: unknown): string {
  if (e instanceof Error) {
    const code = (e as { code?: unknown }).code;
    return typeof code === 'string' ? `${e.message} (${code})` : e.message;
  }
  return String(e);
}

/** The query part of a URL fragment (#/terminals?state=halted). */
export function hashParams(hash: string): URLSearchParams {
  const i = hash.indexOf('?');
  return new URLSearchParams(i < 0 ? '' : hash.slice(i + 1));
}

/** One message of a halt's delivery (GET /v1/halts/:id `deliveries`): one row per message, not per terminal. */
export interface DeliveryMessage {
  readonly terminalId: string;
  readonly kind: 'halt' | 'resume';
  readonly ackedAt: number | null;
}

/** How many distinct terminals got messages of one kind, and how many of them acknowledged them all. */
export interface KindDelivery {
  readonly kind: 'halt' | 'resume';
  readonly terminals: number;
  readonly acknowledged: number;
  readonly pending: number;
}

/**
 * A halt's delivery counted per distinct terminal and per message kind (a terminal halted and then
 * resumed has a `halt` and a `resume` row: one terminal, not two). A terminal counts as acknowledged
 * for a kind when every message of that kind to it is acknowledged. Kinds without a message are left
 * out; `halt` comes before `resume`.
 */
export function deliveryCounts(rows: readonly DeliveryMessage[]): KindDelivery[] {
  const out: KindDelivery[] = [];
  for (const kind of ['halt', 'resume'] as const) {
    const acked = new Map<string, boolean>();
    for (const r of rows)
      if (r.kind === kind) acked.set(r.terminalId, (acked.get(r.terminalId) ?? true) && r.ackedAt !== null);
    if (acked.size === 0) continue;
    const acknowledged = [...acked.values()].filter(Boolean).length;
    out.push({ kind, terminals: acked.size, acknowledged, pending: acked.size - acknowledged });
  }
  return out;
}

/**
 * The delivery summary an operator reads: "Acknowledged by 1 of 2 terminals (1 pending)." for halt
 * messages only; each kind on its own when the halt also has resume notices ("Halt acknowledged by 1
 * of 1 terminal; resume acknowledged by 0 of 1 terminal (1 pending)."). `complete` when nothing is
 * pending.
 */
export function deliverySummary(rows: readonly DeliveryMessage[]): { text: string; complete: boolean } {
  const counts = deliveryCounts(rows);
  if (counts.length === 0) return { text: 'No terminal to deliver to.', complete: true };
  const part = (c: KindDelivery): string =>
    `acknowledged by ${c.acknowledged} of ${c.terminals} terminal${c.terminals === 1 ? '' : 's'}` +
    (c.pending === 0 ? '' : ` (${c.pending} pending)`);
  // Halt messages only (the usual case): the kind goes without saying.
  const line =
    counts.length === 1 && counts[0]?.kind === 'halt'
      ? part(counts[0])
      : counts.map((c) => `${c.kind} ${part(c)}`).join('; ');
  return {
    text: `${line.charAt(0).toUpperCase()}${line.slice(1)}.`,
    complete: counts.every((c) => c.pending === 0),
  };
}
