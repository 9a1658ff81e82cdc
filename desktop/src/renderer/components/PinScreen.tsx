import { useEffect, useState } from 'react';
import {
  MAX_PIN_DIGITS,
  formatAmount,
  type Command,
  type CommandResult,
  type Pad,
  type Sale,
} from '../../api/contract';
import { useFocusOnMount, useNow } from '../hooks';

type Send = (command: Command) => Promise<CommandResult>;

/** The fewest digits a PIN has (ISO 9564); `OK` waits for them. */
const MIN_PIN_DIGITS = 4;

/** A key that would type a digit: the digit row, the numeric keypad, or any key producing 0-9. */
function isDigitKey(e: KeyboardEvent): boolean {
  return /^[0-9]$/.test(e.key) || /^(Digit|Numpad)[0-9]$/.test(e.code);
}

function isPadDigitButton(target: EventTarget | null): boolean {
  return target instanceof HTMLElement && target.dataset['padKey'] !== undefined;
}

/**
 * The customer's PIN pad. Each button shows `pad.layout[position]` and sends only its position
 * (`pin.key`); the digit pressed is held nowhere here (no state, no ref, no log), and the display
 * shows `pad.digits` dots. The hardware keyboard types nothing: digit keys are swallowed (and the
 * screen says to use the on-screen keys), the digit buttons take no keyboard focus, and Enter or
 * Space cannot re-press one.
 */
export function PinScreen({ sale, pad, send }: { sale: Sale; pad: Pad; send: Send }) {
  const now = useNow(250);
  const [keyboardTried, setKeyboardTried] = useState(false);
  const heading = useFocusOnMount<HTMLHeadingElement>();

  useEffect(() => {
    function onKeyDown(e: KeyboardEvent) {
      if (isDigitKey(e)) {
        e.preventDefault();
        e.stopImmediatePropagation();
        setKeyboardTried(true);
      } else if ((e.key === 'Enter' || e.key === ' ') && isPadDigitButton(e.target)) {
        e.preventDefault();
        e.stopImmediatePropagation();
        setKeyboardTried(true);
      }
    }
    function onKeyUp(e: KeyboardEvent) {
      // A button is pressed by Space on key-up.
      if (isDigitKey(e) || (e.key === ' ' && isPadDigitButton(e.target))) {
        e.preventDefault();
        e.stopImmediatePropagation();
      }
    }
    window.addEventListener('keydown', onKeyDown, true);
    window.addEventListener('keyup', onKeyUp, true);
    return () => {
      window.removeEventListener('keydown', onKeyDown, true);
      window.removeEventListener('keyup', onKeyUp, true);
    };
  }, []);

  const secondsLeft = Math.max(0, Math.ceil((pad.deadline - now) / 1000));
  const full = pad.digits >= MAX_PIN_DIGITS;
  const key = (position: number) => (
    <button
      key={`p${position}`}
      type="button"
      className="pad-key"
      tabIndex={-1}
      data-pad-key=""
      disabled={full}
      // A mouse or touch press must not leave keyboard focus on a digit button.
      onMouseDown={(e) => e.preventDefault()}
      onClick={() => void send({ cmd: 'pin.key', position })}
    >
      {pad.layout[position]}
    </button>
  );

  return (
    <section className="screen pin-screen" aria-labelledby="pin-title">
      <h1 id="pin-title" tabIndex={-1} ref={heading}>
        Enter your PIN
      </h1>
      {sale.amountMinor !== undefined && sale.currency !== undefined ? (
        <p className="pin-amount">
          Amount: <strong>{formatAmount(sale.amountMinor, sale.currency)}</strong>
        </p>
      ) : null}
      <div
        className="pin-dots"
        role="img"
        aria-label={pad.digits === 1 ? '1 digit entered' : `${pad.digits} digits entered`}
      >
        {pad.digits === 0 ? (
          <span className="pin-dots-empty" aria-hidden="true">
            No digits yet
          </span>
        ) : (
          Array.from({ length: pad.digits }, (_, i) => (
            <span key={i} className="pin-dot" aria-hidden="true">
              ●
            </span>
          ))
        )}
      </div>
      <p className={keyboardTried ? 'keyboard-note emphasised' : 'keyboard-note'} role="note">
        <span aria-hidden="true">⌨ </span>
        The keyboard does not enter PIN digits: use the on-screen keys.
      </p>
      <div className="pad" role="group" aria-label="PIN pad">
        {[0, 1, 2, 3, 4, 5, 6, 7, 8].map(key)}
        <button
          type="button"
          className="pad-key pad-action"
          onClick={() => void send({ cmd: 'pin.clear' })}
          disabled={pad.digits === 0}
        >
          Clear
        </button>
        {key(9)}
        <button
          type="button"
          className="pad-key pad-action pad-ok"
          onClick={() => void send({ cmd: 'pin.ok' })}
          disabled={pad.digits < MIN_PIN_DIGITS}
        >
          OK
        </button>
      </div>
      <button
        type="button"
        className="secondary pad-cancel"
        onClick={() => void send({ cmd: 'sale.cancel' })}
      >
        Cancel
      </button>
      <p className="countdown" role="timer" aria-live="off">
        The PIN pad closes in {secondsLeft} s if no key is pressed.
      </p>
    </section>
  );
}
