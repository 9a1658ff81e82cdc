import { useId, useState, type FormEvent } from 'react';
import { CommandSchema, type Command, type CommandResult } from '../../api/contract';
import { useFocusOnMount } from '../hooks';
import { reasonFor } from '../messages';

type Send = (command: Command) => Promise<CommandResult>;

/** First run: the back-end's URL and the operator's one-time code. */
export function EnrollScreen({ send }: { send: Send }) {
  const [url, setUrl] = useState('');
  const [code, setCode] = useState('');
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const errorId = useId();
  const heading = useFocusOnMount<HTMLHeadingElement>();

  async function submit(e: FormEvent) {
    e.preventDefault();
    const command = { cmd: 'enroll' as const, backendUrl: url.trim(), code: code.trim() };
    const parsed = CommandSchema.safeParse(command);
    if (!parsed.success) {
      const field = parsed.error.issues[0]?.path[0];
      setError(
        field === 'backendUrl'
          ? 'Enter the back-end address your payment provider gave you, starting with https://.'
          : 'Enter the enrollment code your payment provider gave you (at least 4 characters).',
      );
      return;
    }
    setBusy(true);
    setError(null);
    const r = await send(parsed.data);
    setBusy(false);
    if (r.ok) setCode('');
    else setError(`${reasonFor(r.code, r.detail)} (${r.code})`);
  }

  return (
    <section className="screen" aria-labelledby="enroll-title">
      <h1 id="enroll-title" tabIndex={-1} ref={heading}>
        Set up this terminal
      </h1>
      <p>
        Enter the back-end address and the one-time enrollment code from your payment provider. The terminal
        then registers its key and checks itself with the provider.
      </p>
      <form className="form" onSubmit={(e) => void submit(e)} noValidate>
        <label htmlFor="enroll-url">Back-end URL</label>
        <input
          id="enroll-url"
          type="url"
          inputMode="url"
          autoComplete="off"
          spellCheck={false}
          value={url}
          placeholder="https://"
          onChange={(e) => setUrl(e.target.value)}
          aria-describedby={error === null ? undefined : errorId}
        />
        <label htmlFor="enroll-code">Enrollment code</label>
        <input
          id="enroll-code"
          type="text"
          autoComplete="off"
          spellCheck={false}
          value={code}
          onChange={(e) => setCode(e.target.value)}
          aria-describedby={error === null ? undefined : errorId}
        />
        <button type="submit" className="primary" disabled={busy}>
          {busy ? 'Enrolling…' : 'Enroll'}
        </button>
        {error === null ? null : (
          <p id={errorId} className="error" role="alert">
            {error}
          </p>
        )}
      </form>
    </section>
  );
}
