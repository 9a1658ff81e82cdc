/**
 * Dashboard users and API tokens: list (read-users), create, disable, set a password, clear sign-in
 * lock-outs, revoke (manage-users).
 */
import { useState, type ReactNode } from 'react';
import {
  call,
  enc,
  PasswordSet,
  Role,
  TokenCreated,
  TokenRevoked,
  TokensOut,
  UserCreated,
  UserDisabled,
  UsersOut,
  UserUnlocked,
} from '../api';
import { errorText, time } from '../format';
import { ActionButton, ErrorBox, useLoad, useSession } from '../ui';

const ROLES = Role.options;

/** Role and merchant go together: a merchant-role principal names a merchant, an admin names none. */
function ScopeFields(props: {
  role: Role;
  merchantId: string;
  onRole: (r: Role) => void;
  onMerchant: (m: string) => void;
}): ReactNode {
  const { merchantNames } = useSession();
  return (
    <>
      <label>
        Role
        <select
          value={props.role}
          onChange={(e) => {
            const r = ROLES.find((x) => x === e.target.value);
            if (r !== undefined) props.onRole(r);
          }}
        >
          {ROLES.map((r) => (
            <option key={r} value={r}>
              {r}
            </option>
          ))}
        </select>
      </label>
      {props.role === 'admin' ? null : (
        <label>
          Limited to merchant
          <select value={props.merchantId} onChange={(e) => props.onMerchant(e.target.value)}>
            {props.role === 'merchant' ? null : <option value="">provider-wide</option>}
            {props.role === 'merchant' && props.merchantId === '' ? <option value="">choose…</option> : null}
            {[...merchantNames].map(([id, name]) => (
              <option key={id} value={id}>
                {name} ({id})
              </option>
            ))}
          </select>
        </label>
      )}
    </>
  );
}

/** Set a user's password: their sessions end and a sign-in lock-out is lifted. */
function SetPassword({ userId, username }: { userId: string; username: string }): ReactNode {
  const [open, setOpen] = useState(false);
  const [password, setPassword] = useState('');
  const [result, setResult] = useState<string>();
  const [error, setError] = useState<string>();
  if (!open)
    return (
      <span className="action">
        <button type="button" onClick={() => setOpen(true)}>
          Set password
        </button>
        {result === undefined ? null : <span className="result">{result}</span>}
      </span>
    );
  return (
    <form
      className="confirm"
      onSubmit={(e) => {
        e.preventDefault();
        call(PasswordSet, 'POST', `/v1/users/${enc(userId)}/password`, { password }).then(
          (r) => {
            setPassword('');
            setOpen(false);
            setResult(`Password set; ${r.sessionsEnded} sessions ended.`);
          },
          (x: unknown) => setError(errorText(x)),
        );
      }}
    >
      <p>New password for {username} (12 characters or more); their sessions end.</p>
      <label>
        New password
        <input
          type="password"
          autoComplete="new-password"
          minLength={12}
          required
          value={password}
          onChange={(e) => setPassword(e.target.value)}
        />
      </label>
      <div className="buttons">
        <button type="submit">Confirm</button>
        <button type="button" onClick={() => setOpen(false)}>
          Cancel
        </button>
      </div>
      <ErrorBox error={error} />
    </form>
  );
}

export function UsersPage(): ReactNode {
  const { can, merchantNames } = useSession();
  const manage = can('manage-users');
  const users = useLoad(() => call(UsersOut, 'GET', '/v1/users'), []);
  const tokens = useLoad(() => call(TokensOut, 'GET', '/v1/tokens'), []);
  const [username, setUsername] = useState('');
  const [password, setPassword] = useState('');
  const [role, setRole] = useState<Role>('operator');
  const [merchantId, setMerchantId] = useState('');
  const [label, setLabel] = useState('');
  const [tokenRole, setTokenRole] = useState<Role>('operator');
  const [tokenMerchant, setTokenMerchant] = useState('');
  const [days, setDays] = useState(30);
  const [newToken, setNewToken] = useState<{ token: string; expiresAt: number }>();
  const [error, setError] = useState<string>();
  const scope = (r: Role, m: string): { merchantId?: string } =>
    r === 'admin' || m === '' ? {} : { merchantId: m };
  const merchant = (id: string | null): string =>
    id === null ? 'provider-wide' : `${merchantNames.get(id) ?? ''} (${id})`;
  return (
    <>
      <h1>Users and API tokens</h1>
      <ErrorBox error={error ?? users.error ?? tokens.error} />
      <h2>Dashboard users</h2>
      <table>
        <thead>
          <tr>
            <th>Username</th>
            <th>Role</th>
            <th>Scope</th>
            <th>Since</th>
            <th>Status</th>
            {manage ? <th /> : null}
          </tr>
        </thead>
        <tbody>
          {(users.data?.users ?? []).map((u) => (
            <tr key={u.userId}>
              <td>{u.username}</td>
              <td>{u.role}</td>
              <td>{merchant(u.merchantId)}</td>
              <td>{time(u.createdAt)}</td>
              <td>
                {u.disabledAt !== null
                  ? `disabled ${time(u.disabledAt)}`
                  : u.loginLocked
                    ? `sign-in locked for this account until ${time(u.lockedUntil)} if the attempts stop (addresses that signed in to it recently may still try)`
                    : 'active'}
              </td>
              {manage ? (
                <td>
                  {u.disabledAt === null ? (
                    <ActionButton
                      label="Disable"
                      danger
                      needsReason={false}
                      description={`Disable ${u.username}: no more sign-in, their sessions end and the API tokens they made are revoked.`}
                      onConfirm={async () => {
                        const r = await call(UserDisabled, 'POST', `/v1/users/${enc(u.userId)}/disable`, {});
                        users.reload();
                        tokens.reload();
                        return `Disabled: ${r.sessionsEnded} sessions ended, ${r.tokensRevoked} tokens revoked.`;
                      }}
                    />
                  ) : null}{' '}
                  {u.disabledAt === null ? (
                    <ActionButton
                      label="Clear lock-outs"
                      needsReason={false}
                      description={`Clear every sign-in lock-out of ${u.username}: the account-wide one${u.loginLocked ? ` (until ${time(u.lockedUntil)})` : ' (none now)'} and those of single addresses after failed attempts (not listed here). Their password and sessions stay.`}
                      onConfirm={async () => {
                        const r = await call(UserUnlocked, 'POST', `/v1/users/${enc(u.userId)}/unlock`, {});
                        users.reload();
                        return r.wasLockedUntil === null
                          ? 'Lock-outs cleared (the account was not locked account-wide).'
                          : `Lock-outs cleared (the account was locked until ${time(r.wasLockedUntil)}).`;
                      }}
                    />
                  ) : null}{' '}
                  <SetPassword userId={u.userId} username={u.username} />
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      {manage ? (
        <form
          className="filters"
          onSubmit={(e) => {
            e.preventDefault();
            setError(undefined);
            call(UserCreated, 'POST', '/v1/users', {
              username,
              password,
              role,
              ...scope(role, merchantId),
            }).then(
              () => {
                setUsername('');
                setPassword('');
                users.reload();
              },
              (x: unknown) => setError(errorText(x)),
            );
          }}
        >
          <label>
            New username
            <input value={username} required onChange={(e) => setUsername(e.target.value)} />
          </label>
          <label>
            Initial password
            <input
              type="password"
              autoComplete="new-password"
              value={password}
              minLength={12}
              required
              onChange={(e) => setPassword(e.target.value)}
            />
          </label>
          <ScopeFields role={role} merchantId={merchantId} onRole={setRole} onMerchant={setMerchantId} />
          <button type="submit">Create user</button>
        </form>
      ) : null}

      <h2>API tokens</h2>
      <table>
        <thead>
          <tr>
            <th>Label</th>
            <th>Role</th>
            <th>Scope</th>
            <th>Created</th>
            <th>Expires</th>
            <th>Status</th>
            {manage ? <th /> : null}
          </tr>
        </thead>
        <tbody>
          {(tokens.data?.tokens ?? []).map((t) => (
            <tr key={t.tokenId}>
              <td>
                {t.label} <span className="muted mono">{t.tokenId}</span>
              </td>
              <td>{t.role}</td>
              <td>{merchant(t.merchantId)}</td>
              <td>
                {time(t.createdAt)} {t.createdBy === null ? '' : `by ${t.createdBy}`}
              </td>
              <td>{t.expiresAt === null ? 'never' : time(t.expiresAt)}</td>
              <td>{t.revokedAt === null ? 'active' : `revoked ${time(t.revokedAt)}`}</td>
              {manage ? (
                <td>
                  {t.revokedAt === null ? (
                    <ActionButton
                      label="Revoke"
                      danger
                      needsReason={false}
                      description={`Revoke ${t.label}: every call with it fails from now on.`}
                      onConfirm={async () => {
                        await call(TokenRevoked, 'DELETE', `/v1/tokens/${enc(t.tokenId)}`);
                        tokens.reload();
                        return 'Revoked.';
                      }}
                    />
                  ) : null}
                </td>
              ) : null}
            </tr>
          ))}
        </tbody>
      </table>
      {manage ? (
        <form
          className="filters"
          onSubmit={(e) => {
            e.preventDefault();
            setError(undefined);
            setNewToken(undefined);
            call(TokenCreated, 'POST', '/v1/tokens', {
              label,
              role: tokenRole,
              expiresInS: days * 86_400,
              ...scope(tokenRole, tokenMerchant),
            }).then(
              (r) => {
                setNewToken(r);
                setLabel('');
                tokens.reload();
              },
              (x: unknown) => setError(errorText(x)),
            );
          }}
        >
          <label>
            Token label
            <input value={label} required maxLength={100} onChange={(e) => setLabel(e.target.value)} />
          </label>
          <ScopeFields
            role={tokenRole}
            merchantId={tokenMerchant}
            onRole={setTokenRole}
            onMerchant={setTokenMerchant}
          />
          <label>
            Valid for (days)
            <input
              type="number"
              min={1}
              max={366}
              value={days}
              onChange={(e) => setDays(Math.max(1, Math.min(366, Number(e.target.value) || 1)))}
            />
          </label>
          <button type="submit">Create token</button>
        </form>
      ) : null}
      {newToken === undefined ? null : (
        <p className="secret">
          <code data-testid="new-token">{newToken.token}</code> — expires {time(newToken.expiresAt)}. Shown
          only now: copy it into the tool that needs it.
        </p>
      )}
    </>
  );
}
