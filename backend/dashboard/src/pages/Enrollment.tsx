/** Merchants and their enrollment codes (single use, shown once). */
import { useState, type ReactNode } from 'react';
import { call, CodeOut, enc, MerchantCreated, MerchantsOut } from '../api';
import { errorText, time } from '../format';
import { ErrorBox, useLoad, useSession } from '../ui';

const TTLS: readonly [string, number][] = [
  ['1 hour', 3600],
  ['1 day', 86_400],
  ['7 days', 7 * 86_400],
];

function CodeButton({ merchantId }: { merchantId: string }): ReactNode {
  const [ttl, setTtl] = useState(86_400);
  const [code, setCode] = useState<{ code: string; expiresAt: number }>();
  const [error, setError] = useState<string>();
  return (
    <div className="code">
      <label className="inline">
        valid for{' '}
        <select value={ttl} onChange={(e) => setTtl(Number(e.target.value))}>
          {TTLS.map(([l, s]) => (
            <option key={s} value={s}>
              {l}
            </option>
          ))}
        </select>
      </label>{' '}
      <button
        type="button"
        onClick={() => {
          setError(undefined);
          call(CodeOut, 'POST', `/v1/merchants/${enc(merchantId)}/enrollment-codes`, { ttlS: ttl }).then(
            setCode,
            (e: unknown) => setError(errorText(e)),
          );
        }}
      >
        Create enrollment code
      </button>
      {code === undefined ? null : (
        <p className="secret">
          <code data-testid="enrollment-code">{code.code}</code> — single use, expires {time(code.expiresAt)}.
          It is shown only now: give it to the merchant (<code>pos-terminal enroll --code …</code>).
        </p>
      )}
      <ErrorBox error={error} />
    </div>
  );
}

export function EnrollmentPage(): ReactNode {
  const { can } = useSession();
  const merchants = useLoad(() => call(MerchantsOut, 'GET', '/v1/merchants'), []);
  const [name, setName] = useState('');
  const [error, setError] = useState<string>();
  return (
    <>
      <h1>Merchants and enrollment</h1>
      {can('manage-merchants') ? (
        <form
          className="filters"
          onSubmit={(e) => {
            e.preventDefault();
            setError(undefined);
            call(MerchantCreated, 'POST', '/v1/merchants', { name: name.trim() }).then(
              () => {
                setName('');
                merchants.reload();
              },
              (x: unknown) => setError(errorText(x)),
            );
          }}
        >
          <label>
            New merchant
            <input value={name} required maxLength={200} onChange={(e) => setName(e.target.value)} />
          </label>
          <button type="submit">Create merchant</button>
        </form>
      ) : null}
      <ErrorBox error={error ?? merchants.error} />
      <table>
        <thead>
          <tr>
            <th>Merchant</th>
            <th>Id</th>
            <th>Since</th>
            <th>Terminals</th>
            {can('enroll') ? <th>Enrollment code</th> : null}
          </tr>
        </thead>
        <tbody>
          {(merchants.data?.merchants ?? []).map((m) => (
            <tr key={m.merchantId}>
              <td>{m.name}</td>
              <td className="mono">{m.merchantId}</td>
              <td>{time(m.createdAt)}</td>
              <td>
                <a href={`#/terminals?merchant=${enc(m.merchantId)}`}>terminals</a>
              </td>
              {can('enroll') ? (
                <td>
                  <CodeButton merchantId={m.merchantId} />
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
}
