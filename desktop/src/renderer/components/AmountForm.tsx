import { useId, useState, type FormEvent } from 'react';
import type { Command, CommandResult } from '../../api/contract';
import { CURRENCIES, parseAmount } from '../amount';
import { useFocusOnMount } from '../hooks';
import { reasonFor } from '../messages';

type Send = (command: Command) => Promise<CommandResult>;

/** The merchant's start of a sale: `Amount`, currency, `Charge`. */
export function AmountForm({ send, warning }: { send: Send; warning?: string | undefined }) {
  const [text, setText] = useState('');
  const [currency, setCurrency] = useState<string>(CURRENCIES[0]);
  const [busy, setBusy] = useState(false);
  const [error, setError] = useState<string | null>(null);
  const errorId = useId();
  const input = useFocusOnMount<HTMLInputElement>();

  async function submit(e: FormEvent) {
    e.preventDefault();
    if (busy) return;
    const amount = parseAmount(text);
    if (!amount.ok) {
      setError(amount.message);
      input.current?.focus();
      return;
    }
    setBusy(true);
    setError(null);
    const r = await send({ cmd: 'sale.start', amountMinor: amount.minor, currency });
    setBusy(false);
    if (!r.ok) setError(`${reasonFor(r.code, r.detail)} (${r.code})`);
  }

  return (
    <section className="screen" aria-labelledby="sale-title">
      <h1 id="sale-title">New sale</h1>
      {warning === undefined ? null : (
        <p className="warning-note" role="note">
          <span aria-hidden="true">! </span>
          {warning}
        </p>
      )}
      <form className="form amount-form" onSubmit={(e) => void submit(e)} noValidate>
        <label htmlFor="amount">Amount</label>
        <div className="amount-row">
          <input
            id="amount"
            ref={input}
            className="amount-input"
            type="text"
            inputMode="decimal"
            autoComplete="off"
            placeholder="0.00"
            value={text}
            onChange={(e) => {
              setText(e.target.value);
              setError(null);
            }}
            aria-invalid={error !== null}
            aria-describedby={error === null ? 'amount-hint' : `amount-hint ${errorId}`}
          />
          <label htmlFor="currency" className="visually-hidden">
            Currency
          </label>
          <select id="currency" value={currency} onChange={(e) => setCurrency(e.target.value)}>
            {CURRENCIES.map((c) => (
              <option key={c} value={c}>
                {c}
              </option>
            ))}
          </select>
        </div>
        <p id="amount-hint" className="hint">
          Like 12.34 — at most 2 decimals.
        </p>
        <button type="submit" className="primary big" disabled={busy}>
          Charge
        </button>
        {error === null ? null : (
          <p id={errorId} className="error" role="alert">
            <span aria-hidden="true">✕ </span>
            {error}
          </p>
        )}
      </form>
    </section>
  );
}
