/**
 * The dashboard shell: sign-in, the signed-in user's permissions, the live event stream, navigation
 * (by the URL's fragment: #/terminals/trm_...) and sign-out.
 */
import { useCallback, useEffect, useMemo, useRef, useState, type ReactNode } from 'react';
import {
  ApiError,
  call,
  csrfToken,
  FleetEvent,
  LoggedOut,
  LoginOut,
  MeOut,
  MerchantsOut,
  setCsrfToken,
  setUnauthorizedHandler,
  type Me,
} from './api';
import { errorText } from './format';
import { AuditPage } from './pages/Audit';
import { EnrollmentPage } from './pages/Enrollment';
import { HaltsPage } from './pages/Halts';
import { OverviewPage } from './pages/Overview';
import { PoliciesPage } from './pages/Policies';
import { ReleasesPage } from './pages/Releases';
import { TerminalPage } from './pages/Terminal';
import { TerminalsPage } from './pages/Terminals';
import { UsersPage } from './pages/Users';
import { ErrorBox, SessionContext, type Session } from './ui';

function useHash(): string {
  const [hash, setHash] = useState(window.location.hash);
  useEffect(() => {
    const on = (): void => setHash(window.location.hash);
    window.addEventListener('hashchange', on);
    return () => window.removeEventListener('hashchange', on);
  }, []);
  return hash;
}

function SignIn({ onSignedIn, notice }: { onSignedIn: (me: Me) => void; notice?: string }): ReactNode {
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const submit = async (): Promise<void> => {
    setBusy(true);
    setError(undefined);
    try {
      const out = await call(LoginOut, 'POST', '/v1/auth/login', { username, password });
      setCsrfToken(out.csrfToken);
      setPassword('');
      onSignedIn(await call(MeOut, 'GET', '/v1/auth/me'));
    } catch (e) {
      setError(
        e instanceof ApiError && e.code === 'POS_ERR_LOGIN_FAILED'
          ? 'Sign-in failed: wrong username or password, or the account is locked.'
          : e instanceof ApiError && e.status === 429
            ? 'Too many sign-in attempts from this address; wait a few minutes.'
            : errorText(e),
      );
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="signin">
      <h1>Terminal attestation &amp; monitoring</h1>
      <form
        onSubmit={(e) => {
          e.preventDefault();
          void submit();
        }}
      >
        {notice === undefined ? null : <p className="muted">{notice}</p>}
        <label>
          Username
          <input
            name="username"
            autoComplete="username"
            value={username}
            required
            onChange={(e) => setUsername(e.target.value)}
          />
        </label>
        <label>
          Password
          <input
            name="password"
            type="password"
            autoComplete="current-password"
            value={password}
            required
            onChange={(e) => setPassword(e.target.value)}
          />
        </label>
        <button type="submit" disabled={busy}>
          Sign in
        </button>
        <ErrorBox error={error} />
      </form>
    </main>
  );
}

const PAGES: readonly { path: string; title: string; permission?: string }[] = [
  { path: '', title: 'Overview' },
  { path: 'terminals', title: 'Terminals' },
  { path: 'halts', title: 'Halts' },
  { path: 'enrollment', title: 'Enrollment' },
  { path: 'releases', title: 'Reference values', permission: 'read-config' },
  { path: 'policies', title: 'Policies', permission: 'read-config' },
  { path: 'audit', title: 'Audit', permission: 'audit' },
  { path: 'users', title: 'Users', permission: 'read-users' },
];

function Shell({ me, onSignOut }: { me: Me; onSignOut: () => void }): ReactNode {
  const hash = useHash();
  const [events, setEvents] = useState<FleetEvent[]>([]);
  const [live, setLive] = useState(false);
  const [merchantNames, setMerchantNames] = useState<ReadonlyMap<string, string>>(new Map());
  const listeners = useRef(new Set<(e: FleetEvent) => void>());

  useEffect(() => {
    call(MerchantsOut, 'GET', '/v1/merchants').then(
      (m) => setMerchantNames(new Map(m.merchants.map((x) => [x.merchantId, x.name]))),
      () => undefined,
    );
  }, []);

  // The live event stream (EventSource sends Accept: text/event-stream and the session cookie). The
  // browser reconnects by itself after a network error; a refused stream (401 when the session ended,
  // 429 too many streams, 503 while the back-end restarts) closes it for good, so it is reopened here
  // after a pause, once the session is known to be alive (a 401 returns to the sign-in form).
  useEffect(() => {
    let source: EventSource | undefined;
    let retry: number | undefined;
    let stopped = false;
    const onEvent = (message: MessageEvent<string>): void => {
      let raw: unknown;
      try {
        raw = JSON.parse(message.data);
      } catch {
        return;
      }
      const parsed = FleetEvent.safeParse(raw);
      if (!parsed.success) return;
      setEvents((list) => [parsed.data, ...list].slice(0, 200));
      for (const fn of listeners.current) fn(parsed.data);
    };
    const open = (): void => {
      const s = new EventSource('/v1/events');
      source = s;
      for (const type of [
        'verdict',
        'halt',
        'resume',
        'ack',
        'stale',
        'velocity',
        'correlation',
        'connection',
      ])
        s.addEventListener(type, onEvent);
      s.onopen = () => setLive(true);
      s.onerror = () => {
        setLive(false);
        if (s.readyState === EventSource.CLOSED && !stopped) reopen();
      };
    };
    const reopen = (): void => {
      retry = window.setTimeout(() => {
        call(MeOut, 'GET', '/v1/auth/me').then(
          () => {
            if (!stopped) open();
          },
          // 401: the sign-in form is back (setUnauthorizedHandler); anything else: try again later.
          (e: unknown) => {
            if (!(e instanceof ApiError && e.status === 401) && !stopped) reopen();
          },
        );
      }, 5000);
    };
    open();
    return () => {
      stopped = true;
      if (retry !== undefined) window.clearTimeout(retry);
      source?.close();
    };
  }, []);

  const subscribe = useCallback((fn: (e: FleetEvent) => void) => {
    listeners.current.add(fn);
    return () => {
      listeners.current.delete(fn);
    };
  }, []);

  const session: Session = useMemo(
    () => ({
      me,
      can: (p: string) => me.permissions.includes(p),
      events,
      live,
      subscribe,
      merchantNames,
    }),
    [me, events, live, subscribe, merchantNames],
  );

  const parts = (hash.replace(/^#\/?/, '').split('?')[0] ?? '').split('/');
  const top = parts[0] ?? '';
  const page = PAGES.find((p) => p.path === top && (p.permission === undefined || session.can(p.permission)));
  let body: ReactNode;
  if (page === undefined) body = <p>No such page.</p>;
  else if (top === 'terminals' && parts[1] !== undefined && parts[1] !== '')
    body = <TerminalPage key={parts[1]} terminalId={decodeURIComponent(parts[1])} />;
  else {
    switch (top) {
      case 'terminals':
        body = <TerminalsPage />;
        break;
      case 'halts':
        body = <HaltsPage />;
        break;
      case 'enrollment':
        body = <EnrollmentPage />;
        break;
      case 'releases':
        body = <ReleasesPage />;
        break;
      case 'policies':
        body = <PoliciesPage />;
        break;
      case 'audit':
        body = <AuditPage />;
        break;
      case 'users':
        body = <UsersPage />;
        break;
      default:
        body = <OverviewPage />;
    }
  }

  return (
    <SessionContext.Provider value={session}>
      <header>
        <strong>A&amp;M dashboard</strong>
        <nav>
          {PAGES.filter((p) => p.permission === undefined || session.can(p.permission)).map((p) => (
            <a key={p.path} href={`#/${p.path}`} className={p.path === top ? 'current' : ''}>
              {p.title}
            </a>
          ))}
        </nav>
        <span className="who">
          <span
            className={live ? 'live on' : 'live'}
            title={live ? 'live events connected' : 'live events reconnecting'}
          >
            {live ? '● live' : '○ offline'}
          </span>{' '}
          {me.username ?? me.actor} ({me.role}
          {me.merchantId === null ? '' : `, ${merchantNames.get(me.merchantId) ?? me.merchantId}`})
          <button type="button" onClick={onSignOut}>
            Sign out
          </button>
        </span>
      </header>
      <main>{body}</main>
    </SessionContext.Provider>
  );
}

export function App(): ReactNode {
  const [me, setMe] = useState<Me | null | undefined>(undefined);
  const [notice, setNotice] = useState<string>();

  useEffect(() => {
    setUnauthorizedHandler(() => {
      setCsrfToken(null);
      setNotice('Your session has ended; sign in again.');
      setMe(null);
    });
    // A reload keeps the session (cookie) and, in this tab, its CSRF token; a new tab signs in again.
    if (csrfToken() === null) {
      setMe(null);
      return;
    }
    call(MeOut, 'GET', '/v1/auth/me').then(
      (m) => setMe(m.via === 'session' ? m : null),
      () => setMe(null),
    );
  }, []);

  const signOut = (): void => {
    call(LoggedOut, 'POST', '/v1/auth/logout', {})
      .catch(() => undefined)
      .finally(() => {
        setCsrfToken(null);
        setNotice('Signed out.');
        setMe(null);
      });
  };

  if (me === undefined) return <p className="muted">Loading…</p>;
  if (me === null)
    return (
      <SignIn
        {...(notice === undefined ? {} : { notice })}
        onSignedIn={(m) => {
          setNotice(undefined);
          setMe(m);
        }}
      />
    );
  return <Shell me={me} onSignOut={signOut} />;
}
