/**
 * Halts: order one for a terminal, a merchant, an app version or the fleet (Halt → Reason → Confirm),
 * see each halt's delivery acknowledgements, and lift it (Resume → Reason → Confirm).
 */
import { useState, type ReactNode } from 'react';
import { call, enc, HaltCreated, HaltsOut, Lifted, q, type Scope } from '../api';
import { time } from '../format';
import {
  ActionButton,
  ErrorBox,
  HaltDeliveries,
  PageNoticeArea,
  useLoad,
  usePageNotice,
  useSession,
  type PageNotice,
} from '../ui';

const SCOPE_TEXT: Record<Scope, string> = {
  terminal: 'one terminal',
  merchant: 'every terminal of a merchant, including ones enrolled later',
  'app-version': 'every terminal reporting an app version, including ones that report it later',
  fleet: 'every terminal of the fleet',
};

function HaltOrder({ onDone, notice }: { onDone: () => void; notice: PageNotice }): ReactNode {
  const { me, merchantNames } = useSession();
  const scopes: Scope[] =
    me.merchantId === null ? ['terminal', 'merchant', 'app-version', 'fleet'] : ['terminal', 'merchant'];
  const [scope, setScope] = useState<Scope>('terminal');
  const [target, setTarget] = useState('');
  const needsTarget = scope !== 'fleet';
  return (
    <section className="order">
      <h2>Order a halt</h2>
      <div className="filters">
        <label>
          Scope
          <select
            value={scope}
            onChange={(e) => {
              const s = scopes.find((x) => x === e.target.value);
              if (s !== undefined) setScope(s);
              setTarget('');
            }}
          >
            {scopes.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </label>
        {scope === 'merchant' ? (
          <label>
            Merchant
            <select value={target} onChange={(e) => setTarget(e.target.value)}>
              <option value="">choose…</option>
              {[...merchantNames].map(([id, name]) => (
                <option key={id} value={id}>
                  {name} ({id})
                </option>
              ))}
            </select>
          </label>
        ) : needsTarget ? (
          <label>
            {scope === 'terminal' ? 'Terminal id' : 'App version'}
            <input value={target} onChange={(e) => setTarget(e.target.value.trim())} />
          </label>
        ) : null}
      </div>
      <p className="muted">
        Halts {SCOPE_TEXT[scope]}: PIN entry stops at once, pushed to connected terminals.
      </p>
      {needsTarget && target === '' ? null : (
        <ActionButton
          label="Halt"
          danger
          notice={notice}
          description={`Halt ${scope === 'fleet' ? 'the whole fleet' : `${scope} ${target}`}: ${SCOPE_TEXT[scope]} stops taking PINs now.`}
          onConfirm={async (reason) => {
            const r = await call(HaltCreated, 'POST', '/v1/halts', {
              scope,
              ...(needsTarget ? { target } : {}),
              reason,
            });
            onDone();
            return `Halt ${r.haltId} ordered: ${r.terminals} terminal${r.terminals === 1 ? '' : 's'} covered.`;
          }}
        />
      )}
    </section>
  );
}

export function HaltsPage(): ReactNode {
  const { can, merchantNames } = useSession();
  const [all, setAll] = useState(false);
  // Owned by the page: a lifted halt leaves the list of active ones, its outcome stays.
  const notice = usePageNotice();
  const halts = useLoad(
    () => call(HaltsOut, 'GET', `/v1/halts${q({ state: all ? 'all' : 'active', limit: 25 })}`),
    [all],
    (e) => e.type === 'halt' || e.type === 'resume',
  );
  return (
    <>
      <h1>Halts</h1>
      {can('halt') ? <HaltOrder onDone={halts.reload} notice={notice} /> : null}
      <PageNoticeArea notice={notice} />
      <h2>{all ? 'All halts' : 'Active halts'} (newest 25)</h2>
      <label className="inline">
        <input type="checkbox" checked={all} onChange={(e) => setAll(e.target.checked)} /> show lifted halts
        too
      </label>
      <ErrorBox error={halts.error} />
      {halts.data?.halts.length === 0 ? <p className="muted">None.</p> : null}
      {(halts.data?.halts ?? []).map((h) => (
        <section key={h.haltId} className="halt">
          <h3>
            {h.scope}
            {h.target === null ? '' : ' '}
            {h.scope === 'terminal' && h.target !== null ? (
              <a href={`#/terminals/${enc(h.target)}`}>{h.target}</a>
            ) : h.scope === 'merchant' && h.target !== null ? (
              `${merchantNames.get(h.target) ?? ''} (${h.target})`
            ) : (
              (h.target ?? '')
            )}{' '}
            <span className="muted">{h.haltId}</span>{' '}
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
          <HaltDeliveries haltId={h.haltId} />
          {can('resume') && h.liftedAt === null ? (
            <ActionButton
              label="Resume"
              notice={notice}
              description={`Lift halt ${h.haltId}: its terminals become resume-pending (unless another halt still covers them) and take PINs again after a fresh affirming attestation.`}
              onConfirm={async (reason) => {
                const r = await call(Lifted, 'POST', `/v1/halts/${enc(h.haltId)}/lift`, { reason });
                halts.reload();
                return `Halt ${h.haltId} lifted: ${r.resumed} resume-pending, ${r.stillHalted} still halted by another halt.`;
              }}
            />
          ) : null}
        </section>
      ))}
    </>
  );
}
