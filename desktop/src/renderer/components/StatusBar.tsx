import type { Snapshot } from '../../api/contract';
import { useNow } from '../hooks';
import {
  TONE_ICON,
  backendStatus,
  formatAge,
  pushStatus,
  readerStatus,
  tierStatus,
  type StatusText,
} from '../messages';

function Item({ name, status, extra }: { name: string; status: StatusText; extra?: string | undefined }) {
  return (
    <li className={`status-item tone-${status.tone}`} data-tone={status.tone}>
      <span className="status-icon" aria-hidden="true">
        {TONE_ICON[status.tone]}
      </span>
      <span className="status-name">{name}:</span> <span className="status-value">{status.label}</span>
      {extra === undefined ? null : <span className="status-extra"> · {extra}</span>}
    </li>
  );
}

/** Reader, attestation tier and age, back-end link and halt push; each in words with an icon. */
export function StatusBar({
  snapshot,
  onAttest,
}: {
  snapshot: Snapshot;
  onAttest?: (() => void) | undefined;
}) {
  const now = useNow(1000);
  const { reader, attestation, backend } = snapshot;
  const readerDetail = reader.state === 'connected' ? undefined : reader.detail;
  const tier = tierStatus(attestation.tier);
  return (
    <header className="status-bar" aria-label="Terminal status">
      <ul className="status-list">
        <Item name="Reader" status={readerStatus(reader)} extra={readerDetail} />
        <Item
          name="Attestation"
          status={tier}
          extra={attestation.at === undefined ? undefined : formatAge(attestation.at, now)}
        />
        <Item name="Back-end" status={backendStatus(backend.link)} />
        <Item name="Halt push" status={pushStatus(backend.push)} />
        {snapshot.halt === undefined ? null : (
          <Item name="PIN entry" status={{ label: 'halted', tone: 'bad' }} />
        )}
      </ul>
      {snapshot.enrolled && onAttest !== undefined ? (
        <button type="button" className="link-button" onClick={onAttest}>
          Check attestation now
        </button>
      ) : null}
      {attestation.reasons.length > 0 && attestation.tier !== 'affirming' ? (
        <ul className="status-reasons" aria-label="Attestation reasons">
          {attestation.reasons.map((r, i) => (
            <li key={i}>{r}</li>
          ))}
        </ul>
      ) : null}
    </header>
  );
}
