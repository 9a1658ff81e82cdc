/**
 * Policy versions: the active one, shadow ones with their impact (what each would have done to every
 * terminal's latest verdict), upload, activate, shadow on/off.
 */
import { useEffect, useState, type ReactNode } from 'react';
import {
  AttestationsOut,
  call,
  enc,
  PoliciesOut,
  PolicyCreated,
  PolicyRole,
  q,
  TerminalsOut,
  VerdictDoc,
} from '../api';
import { errorText, time } from '../format';
import { ActionButton, ErrorBox, useLoad, useSession } from '../ui';

/** Terminals whose latest verdict is read for the impact (one request each: the API rate-limits). */
const IMPACT_TERMINALS = 100;

interface Impact {
  readonly checked: number;
  readonly evaluated: number;
  readonly halt: number;
  readonly warning: number;
  readonly affirming: number;
}

/** Each terminal's latest verdict (up to 200 terminals): what the shadow version said of it. */
async function shadowImpact(version: string): Promise<Impact> {
  const list = await call(TerminalsOut, 'GET', `/v1/terminals${q({ limit: IMPACT_TERMINALS })}`);
  let evaluated = 0;
  let halt = 0;
  let warning = 0;
  let affirming = 0;
  const ids = list.terminals.filter((t) => t.lastAttestedAt !== null).map((t) => t.terminalId);
  for (let i = 0; i < ids.length; i += 8) {
    const batch = await Promise.all(
      ids
        .slice(i, i + 8)
        .map((id) => call(AttestationsOut, 'GET', `/v1/terminals/${enc(id)}/attestations${q({ limit: 1 })}`)),
    );
    for (const a of batch) {
      const latest = a.attestations[0];
      const v = latest === undefined ? undefined : VerdictDoc.safeParse(latest.verdict);
      const s = v?.success === true ? v.data.shadow?.find((x) => x.policyVersion === version) : undefined;
      if (s === undefined) continue;
      evaluated++;
      if (s.halt === true || s.tier === 'contraindicated') halt++;
      else if (s.tier === 'affirming') affirming++;
      else warning++;
    }
  }
  return { checked: ids.length, evaluated, halt, warning, affirming };
}

function ShadowImpact({ version }: { version: string }): ReactNode {
  const [impact, setImpact] = useState<Impact>();
  const [error, setError] = useState<string>();
  useEffect(() => {
    shadowImpact(version).then(setImpact, (e: unknown) => setError(errorText(e)));
  }, [version]);
  if (error !== undefined) return <ErrorBox error={error} />;
  if (impact === undefined) return <span className="muted">computing shadow impact…</span>;
  return (
    <span data-testid={`shadow-impact-${version}`}>
      This version would have halted <strong>{impact.halt}</strong> terminal{impact.halt === 1 ? '' : 's'}{' '}
      (warned {impact.warning}, affirmed {impact.affirming}) — of {impact.evaluated} latest verdicts it was
      evaluated on
      {impact.checked > impact.evaluated
        ? ` (${impact.checked - impact.evaluated} made before it was shadowed)`
        : ''}
      .
    </span>
  );
}

export function PoliciesPage(): ReactNode {
  const { can } = useSession();
  const list = useLoad(() => call(PoliciesOut, 'GET', '/v1/policies'), []);
  const [text, setText] = useState('');
  const [error, setError] = useState<string>();
  const [shown, setShown] = useState<string>();
  const manage = can('manage-policies');
  const upload = (): void => {
    setError(undefined);
    let policy: unknown;
    try {
      policy = JSON.parse(text);
    } catch {
      setError('The policy is not JSON.');
      return;
    }
    call(PolicyCreated, 'POST', '/v1/policies', { policy }).then(
      () => {
        setText('');
        list.reload();
      },
      (e: unknown) => setError(errorText(e)),
    );
  };
  const policies = list.data?.policies ?? [];
  return (
    <>
      <h1>Policies</h1>
      <p className="muted">
        {policies.some((p) => p.role === 'active')
          ? 'The active version is enforced; shadow versions are evaluated on every attestation and reported, never enforced.'
          : 'No version activated: the service enforces its shipped default (prod-1, or dev-2 in development mode).'}
      </p>
      <ErrorBox error={list.error} />
      <table>
        <thead>
          <tr>
            <th>Version</th>
            <th>Role</th>
            <th>Uploaded</th>
            <th>Shadow impact</th>
            <th />
          </tr>
        </thead>
        <tbody>
          {policies.map((p) => (
            <tr key={p.version}>
              <td>
                <button
                  type="button"
                  className="link"
                  onClick={() => setShown(shown === p.version ? undefined : p.version)}
                >
                  {p.version}
                </button>
              </td>
              <td>
                <span className={`badge role-${p.role}`}>{p.role}</span>
              </td>
              <td>{time(p.createdAt)}</td>
              <td>{p.role === 'shadow' ? <ShadowImpact version={p.version} /> : null}</td>
              <td>
                {manage && p.role !== 'active' ? (
                  <ActionButton
                    label="Activate"
                    needsReason={false}
                    description={`Enforce ${p.version} from the next attestation on (the current active version becomes inactive).`}
                    onConfirm={async () => {
                      await call(PolicyRole, 'POST', `/v1/policies/${enc(p.version)}/activate`, {});
                      list.reload();
                      return 'Activated.';
                    }}
                  />
                ) : null}{' '}
                {manage && p.role !== 'active' ? (
                  <ActionButton
                    label={p.role === 'shadow' ? 'Stop shadow' : 'Shadow'}
                    needsReason={false}
                    description={
                      p.role === 'shadow'
                        ? `Stop evaluating ${p.version} in shadow mode.`
                        : `Evaluate ${p.version} on every attestation without enforcing it.`
                    }
                    onConfirm={async () => {
                      await call(PolicyRole, 'POST', `/v1/policies/${enc(p.version)}/shadow`, {
                        enabled: p.role !== 'shadow',
                      });
                      list.reload();
                      return 'Done.';
                    }}
                  />
                ) : null}
              </td>
            </tr>
          ))}
        </tbody>
      </table>
      {shown === undefined ? null : (
        <section>
          <h2>Policy {shown}</h2>
          <pre className="json">
            {JSON.stringify(policies.find((p) => p.version === shown)?.policy ?? {}, null, 2)}
          </pre>
        </section>
      )}
      {manage ? (
        <section>
          <h2>Upload a policy version</h2>
          <p className="muted">
            Versions are immutable: upload a new version, run it in shadow mode, then activate it.
          </p>
          <label>
            Policy (JSON)
            <textarea rows={10} className="mono" value={text} onChange={(e) => setText(e.target.value)} />
          </label>
          <button type="button" disabled={text.trim() === ''} onClick={upload}>
            Upload
          </button>
          <ErrorBox error={error} />
        </section>
      ) : null}
    </>
  );
}
