/** The audit chain: filters, the chain's verification, a signed checkpoint, export. */
import { useMemo, useState, type ReactNode } from 'react';
import { AuditRow, AuditVerifyOut, call, CheckpointOut, getText, type AuditVerify } from '../api';
import { errorText, time } from '../format';
import { ErrorBox, useLoad, useSession } from '../ui';

const SHOWN = 200;

function parseLines(text: string): AuditRow[] {
  const out: AuditRow[] = [];
  for (const line of text.split('\n')) {
    if (line.trim() === '') continue;
    try {
      const parsed = AuditRow.safeParse(JSON.parse(line));
      if (parsed.success) out.push(parsed.data);
    } catch {
      // a line that is not JSON is left out (the chain's verification says whether it is whole)
    }
  }
  return out;
}

export function AuditPage(): ReactNode {
  const { can } = useSession();
  const log = useLoad(async () => parseLines(await getText('/v1/audit')), []);
  const [action, setAction] = useState('');
  const [actor, setActor] = useState('');
  const [subject, setSubject] = useState('');
  const [from, setFrom] = useState('');
  const [verify, setVerify] = useState<AuditVerify>();
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string>();
  const [note, setNote] = useState<string>();
  const rows = log.data ?? [];
  const actions = useMemo(() => [...new Set(rows.map((r) => r.action))].sort(), [rows]);
  const filtered = useMemo(
    () =>
      rows
        .filter(
          (r) =>
            (action === '' || r.action === action) &&
            (actor === '' || r.actor.toLowerCase().includes(actor.toLowerCase())) &&
            (subject === '' || r.subject.toLowerCase().includes(subject.toLowerCase())) &&
            (from === '' || r.at >= from),
        )
        .reverse(),
    [rows, action, actor, subject, from],
  );
  return (
    <>
      <h1>Audit log</h1>
      <div className="actions">
        <button
          type="button"
          disabled={busy}
          onClick={() => {
            setBusy(true);
            setError(undefined);
            call(AuditVerifyOut, 'GET', '/v1/audit/verify')
              .then(setVerify, (e: unknown) => setError(errorText(e)))
              .finally(() => setBusy(false));
          }}
        >
          Verify chain
        </button>{' '}
        <a className="button" href="/v1/audit" download="audit.ndjson">
          Export (JSON lines)
        </a>{' '}
        {can('audit-checkpoint') ? (
          <button
            type="button"
            onClick={() => {
              call(CheckpointOut, 'POST', '/v1/audit/checkpoints', {}).then(
                (c) => {
                  setNote(`Checkpoint signed at seq ${c.seq} (key ${c.kid.slice(0, 12)}…).`);
                  log.reload();
                },
                (e: unknown) => setError(errorText(e)),
              );
            }}
          >
            Sign checkpoint now
          </button>
        ) : null}
      </div>
      {verify === undefined ? null : verify.valid ? (
        <p className="ok" data-testid="audit-verify">
          Chain valid: {verify.count} entries, head {verify.head?.slice(0, 16)}…, {verify.checkpoints} signed
          checkpoint
          {verify.checkpoints === 1 ? '' : 's'}.
        </p>
      ) : (
        <p className="error" data-testid="audit-verify">
          Chain INVALID: {verify.code} {verify.detail}
        </p>
      )}
      {note === undefined ? null : <p className="ok">{note}</p>}
      <ErrorBox error={error ?? log.error} />
      <div className="filters">
        <label>
          Action
          <select value={action} onChange={(e) => setAction(e.target.value)}>
            <option value="">any</option>
            {actions.map((a) => (
              <option key={a} value={a}>
                {a}
              </option>
            ))}
          </select>
        </label>
        <label>
          Actor
          <input value={actor} onChange={(e) => setActor(e.target.value)} />
        </label>
        <label>
          Subject
          <input value={subject} onChange={(e) => setSubject(e.target.value)} />
        </label>
        <label>
          From (UTC)
          <input type="datetime-local" value={from} onChange={(e) => setFrom(e.target.value)} />
        </label>
      </div>
      <p className="muted">
        {filtered.length} of {rows.length} entries{filtered.length > SHOWN ? `, newest ${SHOWN} shown` : ''}.
      </p>
      <table className="audit">
        <thead>
          <tr>
            <th>Seq</th>
            <th>Time</th>
            <th>Actor</th>
            <th>Action</th>
            <th>Subject</th>
            <th>Data</th>
          </tr>
        </thead>
        <tbody>
          {filtered.slice(0, SHOWN).map((r) => (
            <tr key={r.seq}>
              <td>{r.seq}</td>
              <td>{time(r.at)}</td>
              <td>{r.actor}</td>
              <td>{r.action}</td>
              <td className="mono">{r.subject}</td>
              <td className="mono small">{JSON.stringify(r.data)}</td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
