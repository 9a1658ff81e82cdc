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

/** The state an operator reads: halted, resume-pending, stale, trusted, warning or unverified. */
export type DisplayState = 'trusted' | 'warning' | 'halted' | 'stale' | 'resume-pending' | 'unverified';

/** The fields of a terminal its display state depends on. */
export interface StateFields {
  readonly state: 'active' | 'halted' | 'resume-pending';
  readonly stale: boolean;
  readonly lastTier: string | null;
}

export function displayState(t: StateFields): DisplayState {
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
