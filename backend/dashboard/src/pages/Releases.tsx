/** Reference values: the approved releases a terminal's measurements are compared with. */
import { useState, type ReactNode } from 'react';
import { z } from 'zod';
import { call, Created, Deleted, enc, ReferenceValuesOut } from '../api';
import { errorText, time } from '../format';
import { ActionButton, ErrorBox, useLoad, useSession } from '../ui';

/** A release manifest as POST /v1/reference-values takes it (checked again, strictly, by the API). */
const Manifest = z.looseObject({ version: z.string(), build: z.string(), codeHashes: z.array(z.string()) });

export function ReleasesPage(): ReactNode {
  const { can } = useSession();
  const list = useLoad(() => call(ReferenceValuesOut, 'GET', '/v1/reference-values'), []);
  const [text, setText] = useState('');
  const [error, setError] = useState<string>();
  const [done, setDone] = useState<string>();
  const upload = (): void => {
    setError(undefined);
    setDone(undefined);
    let doc: unknown;
    try {
      doc = JSON.parse(text);
    } catch {
      setError('The manifest is not JSON.');
      return;
    }
    const parsed = Manifest.safeParse(doc);
    if (!parsed.success) {
      setError('A manifest has version, build, codeHashes (and fuseWire, executableHashes, allowedShells).');
      return;
    }
    call(Created, 'POST', '/v1/reference-values', parsed.data).then(
      (r) => {
        setDone(`Uploaded as ${r.id}.`);
        setText('');
        list.reload();
      },
      (e: unknown) => setError(errorText(e)),
    );
  };
  return (
    <>
      <h1>Reference values</h1>
      <p className="muted">
        The releases whose measurements attest: a terminal reporting a version, build and code hash not listed
        here is not affirmed.
      </p>
      <ErrorBox error={list.error} />
      <table>
        <thead>
          <tr>
            <th>Version</th>
            <th>Build</th>
            <th>Shells</th>
            <th>Code hashes</th>
            <th>Uploaded</th>
            {can('manage-releases') ? <th /> : null}
          </tr>
        </thead>
        <tbody>
          {(list.data?.referenceValues ?? []).map((r) => {
            const d = Manifest.safeParse(r.document);
            const shells = r.document['allowedShells'];
            return (
              <tr key={r.id}>
                <td>{d.success ? d.data.version : '?'}</td>
                <td>{d.success ? d.data.build : '?'}</td>
                <td>{Array.isArray(shells) ? shells.join(', ') : ''}</td>
                <td className="mono">
                  {(d.success ? d.data.codeHashes : []).map((h) => (
                    <div key={h}>{h.slice(0, 16)}…</div>
                  ))}
                </td>
                <td>{time(r.createdAt)}</td>
                {can('manage-releases') ? (
                  <td>
                    <ActionButton
                      label="Withdraw"
                      danger
                      needsReason={false}
                      description={`Withdraw ${r.id}: terminals running this release no longer attest as affirming.`}
                      onConfirm={async () => {
                        await call(Deleted, 'DELETE', `/v1/reference-values/${enc(r.id)}`);
                        list.reload();
                        return 'Withdrawn.';
                      }}
                    />
                  </td>
                ) : null}
              </tr>
            );
          })}
        </tbody>
      </table>
      {can('manage-releases') ? (
        <section>
          <h2>Upload a release manifest</h2>
          <label>
            Manifest file (JSON){' '}
            <input
              type="file"
              accept="application/json,.json"
              onChange={(e) => {
                const file = e.target.files?.[0];
                if (file !== undefined) file.text().then(setText, (x: unknown) => setError(errorText(x)));
              }}
            />
          </label>
          <label>
            Manifest
            <textarea
              rows={8}
              className="mono"
              value={text}
              placeholder='{"version":"1.2.3","build":"release","codeHashes":["…64 hex…"],"allowedShells":["electron"]}'
              onChange={(e) => setText(e.target.value)}
            />
          </label>
          <button type="button" disabled={text.trim() === ''} onClick={upload}>
            Upload
          </button>
          {done === undefined ? null : <p className="ok">{done}</p>}
          <ErrorBox error={error} />
        </section>
      ) : null}
    </>
  );
}
