import { formatAmount, type Command, type CommandResult, type Sale, type Snapshot } from '../../api/contract';
import { useFocusOnMount } from '../hooks';
import { canCancel, decommissionReason, DECOMMISSIONED_TEXT, resultTitle, sentence } from '../messages';

type Send = (command: Command) => Promise<CommandResult>;

/** The provider's halt: its reason, what to do, and no PIN pad while it holds. */
export function HaltScreen({
  halt,
  sale,
  terminalId,
  send,
}: {
  halt: { reason: string };
  sale: Sale;
  terminalId: string | undefined;
  send: Send;
}) {
  const heading = useFocusOnMount<HTMLHeadingElement>();
  const retired = decommissionReason(halt.reason);
  return (
    <section className="screen notice tone-bad" aria-labelledby="halt-title">
      <h1 id="halt-title" tabIndex={-1} ref={heading}>
        <span aria-hidden="true">✕ </span>
        {retired === undefined ? 'PIN entry is halted' : 'This terminal was decommissioned'}
      </h1>
      {retired === undefined ? (
        <p role="alert" className="reason">
          Your payment provider has halted PIN entry on this terminal. Reason given:{' '}
          <strong>{sentence(halt.reason)}</strong>
        </p>
      ) : (
        <p role="alert" className="reason">
          {DECOMMISSIONED_TEXT} Reason given: <strong>{sentence(retired)}</strong>
        </p>
      )}
      <h2>What to do</h2>
      {retired === undefined ? (
        <ul>
          <li>Do not take card payments with PIN on this terminal for now; take the payment another way.</li>
          <li>
            Contact your payment provider&apos;s support
            {terminalId === undefined ? '' : ` and give them the terminal id ${terminalId}`}.
          </li>
          <li>
            PIN entry comes back by itself once the provider lifts the halt and the terminal passes a fresh
            check.
          </li>
        </ul>
      ) : (
        <ul>
          <li>Take no more card payments on this terminal; take the payment another way.</li>
          <li>
            This cannot be undone on the terminal. If it was a mistake, or to set up a replacement, contact
            your payment provider&apos;s support
            {terminalId === undefined ? '' : ` and give them the terminal id ${terminalId}`}: a replacement is
            enrolled as a new terminal.
          </li>
        </ul>
      )}
      {sale.state === 'result' && sale.result !== undefined ? (
        <div className="halt-sale" role="status">
          <p>
            {sale.amountMinor !== undefined && sale.currency !== undefined
              ? `The sale of ${formatAmount(sale.amountMinor, sale.currency)}: `
              : 'The sale: '}
            <strong>{resultTitle(sale.result)}</strong>
            {sale.result.status === 'halted' ? ' (no PIN was taken).' : '.'}
            {sale.cardPrompt === 'remove' ? ' Remove the card.' : ''}
          </p>
          <button type="button" className="secondary" onClick={() => void send({ cmd: 'sale.new' })}>
            New sale
          </button>
        </div>
      ) : canCancel(sale.state) ? (
        <button type="button" className="secondary" onClick={() => void send({ cmd: 'sale.cancel' })}>
          Cancel
        </button>
      ) : null}
    </section>
  );
}

/**
 * What keeps the terminal from taking a sale when it is idle: the reader not connected, the back-end
 * unreachable. Each with what to do.
 */
export function BlockedScreen({ snapshot, send }: { snapshot: Snapshot; send: Send }) {
  const heading = useFocusOnMount<HTMLHeadingElement>();
  const { reader, backend } = snapshot;
  const readerDown = reader.state !== 'connected';
  const backendDown = backend.link === 'down';
  const title = readerDown
    ? reader.state === 'connecting'
      ? 'Connecting to the card reader…'
      : reader.state === 'not-configured'
        ? 'No card reader is set up'
        : 'The card reader is disconnected'
    : 'The payment back-end cannot be reached';
  return (
    <section className="screen notice tone-warn" aria-labelledby="blocked-title">
      <h1 id="blocked-title" tabIndex={-1} ref={heading}>
        <span aria-hidden="true">! </span>
        {title}
      </h1>
      <p>No sale can start until this is resolved.</p>
      {readerDown ? (
        <div className="problem">
          <h2>Card reader</h2>
          {reader.detail === undefined ? null : <p className="detail">{sentence(reader.detail)}</p>}
          <p>
            {reader.state === 'not-configured'
              ? 'This terminal has no card reader configured; ask whoever set it up.'
              : 'Check that the card reader is plugged in and switched on. The terminal reconnects by itself.'}
          </p>
        </div>
      ) : null}
      {backendDown ? (
        <div className="problem">
          <h2>Payment back-end</h2>
          <p>
            The terminal cannot reach its payment provider, so it cannot be checked and no PIN can be entered.
            Check the network connection.
          </p>
          <button type="button" className="secondary" onClick={() => void send({ cmd: 'attest.now' })}>
            Try again
          </button>
        </div>
      ) : null}
    </section>
  );
}

/** The core itself is not there (POS_ERR_DESKTOP_API_UNAVAILABLE): nothing can be done from here. */
export function UnavailableScreen({ detail }: { detail: string }) {
  const heading = useFocusOnMount<HTMLHeadingElement>();
  return (
    <section className="screen notice tone-bad" aria-labelledby="unavailable-title">
      <h1 id="unavailable-title" tabIndex={-1} ref={heading}>
        <span aria-hidden="true">✕ </span>The terminal is not running
      </h1>
      <p role="alert">
        This screen cannot reach the terminal core, so no sale and no PIN entry is possible.{' '}
        {sentence(detail)}
      </p>
      <h2>What to do</h2>
      <p>
        Close the terminal app and start it again. If this keeps happening, contact your payment provider.
      </p>
      <p className="code">Code: POS_ERR_DESKTOP_API_UNAVAILABLE</p>
    </section>
  );
}

export function WaitingScreen() {
  return (
    <section className="screen" aria-labelledby="waiting-title">
      <div className="progress" role="status">
        <span className="spinner" aria-hidden="true" />
        <h1 id="waiting-title">Starting the terminal…</h1>
      </div>
    </section>
  );
}
