import { formatAmount, type Command, type CommandResult, type Sale } from '../../api/contract';
import { useFocusOnMount } from '../hooks';
import { canCancel, progressText } from '../messages';

type Send = (command: Command) => Promise<CommandResult>;

/** The amount being charged and, when the card is read, its masked number. */
export function SaleSummary({ sale }: { sale: Sale }) {
  return (
    <dl className="sale-summary">
      {sale.amountMinor !== undefined && sale.currency !== undefined ? (
        <>
          <dt>Amount</dt>
          <dd className="amount">{formatAmount(sale.amountMinor, sale.currency)}</dd>
        </>
      ) : null}
      {sale.maskedPan === undefined ? null : (
        <>
          <dt>Card</dt>
          <dd>{sale.maskedPan}</dd>
        </>
      )}
    </dl>
  );
}

/** A sale under way: what is happening, what to do, and `Cancel` while the engine allows it. */
export function SaleProgress({ sale, send }: { sale: Sale; send: Send }) {
  const { title, hint } = progressText(sale);
  const heading = useFocusOnMount<HTMLHeadingElement>();
  return (
    <section className="screen" aria-labelledby="progress-title">
      <SaleSummary sale={sale} />
      <div className="progress" role="status" aria-live="polite">
        <span className="spinner" aria-hidden="true" />
        <h1 id="progress-title" tabIndex={-1} ref={heading}>
          {title}
        </h1>
        <p>{hint}</p>
      </div>
      {canCancel(sale.state) ? (
        <button type="button" className="secondary" onClick={() => void send({ cmd: 'sale.cancel' })}>
          Cancel
        </button>
      ) : null}
    </section>
  );
}
