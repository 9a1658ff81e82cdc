import type { Command, CommandResult, Sale, SaleResult } from '../../api/contract';
import { useFocusOnMount } from '../hooks';
import { TONE_ICON, reasonFor, resultTitle, sentence, type Tone } from '../messages';
import { SaleSummary } from './SaleProgress';

type Send = (command: Command) => Promise<CommandResult>;

function tone(result: SaleResult): Tone {
  return result.status === 'approved' ? 'ok' : result.status === 'error' ? 'warn' : 'bad';
}

/** The outcome in words: `Approved`, `Declined` with the reason, halted or not completed; `New sale`. */
export function ResultView({ result }: { result: SaleResult }) {
  const t = tone(result);
  const reason = result.status === 'approved' ? null : reasonFor(result.code, result.detail);
  // The core's own sentence too when it says more than the code's (a halt: the provider's reason).
  const detail =
    result.detail !== undefined && result.detail.trim() !== '' && sentence(result.detail) !== reason
      ? sentence(result.detail)
      : null;
  return (
    <div className={`result tone-${t}`} role="status" aria-live="polite">
      <h1 id="result-title">
        <span className="result-icon" aria-hidden="true">
          {TONE_ICON[t]}
        </span>{' '}
        {resultTitle(result)}
      </h1>
      {reason === null ? null : <p className="reason">Reason: {reason}</p>}
      {detail === null ? null : (
        <p className="detail">{result.status === 'halted' ? `Provider's reason: ${detail}` : detail}</p>
      )}
      {result.code === undefined ? null : <p className="code">Code: {result.code}</p>}
    </div>
  );
}

export function ResultScreen({ sale, send }: { sale: Sale; send: Send }) {
  const button = useFocusOnMount<HTMLButtonElement>();
  return (
    <section className="screen" aria-labelledby="result-title">
      <SaleSummary sale={sale} />
      {sale.result === undefined ? <h1 id="result-title">Finished</h1> : <ResultView result={sale.result} />}
      {sale.cardPrompt === 'remove' ? (
        <p className="prompt" role="status">
          Remove the card.
        </p>
      ) : null}
      <button
        ref={button}
        type="button"
        className="primary big"
        onClick={() => void send({ cmd: 'sale.new' })}
      >
        New sale
      </button>
    </section>
  );
}
