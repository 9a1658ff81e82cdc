/**
 * The signed status report in the shared format (shared/src/reader/status.ts): a deterministic CBOR
 * record signed ES256 with the reader's identity key, which its certificate vouches for. The sequence
 * number is persisted ahead (StatusSequence). A tampered reader has no key and signs nothing: it also
 * refuses every handshake, so a terminal gets no status from it and reports the reader as unattested
 * (fail closed); the control API and the CLI events still show `tampered: true`.
 */
import { hex, p256Signer, signReaderStatus } from '@pos/shared';
import type { ReaderFirmware } from '../firmware/reader';
import type { StatusSequence } from '../state/status-seq';
import type { StatusSigner } from './service';

export function makeStatusSigner(fw: ReaderFirmware, seq: StatusSequence): StatusSigner {
  return async (body, challenge) => {
    const identity = fw.identity;
    if (identity === undefined || fw.tampered) return undefined;
    const n = seq.take();
    if (!n.ok) return undefined;
    return signReaderStatus(
      {
        v: 1,
        serial: body.serial,
        fw: body.firmwareVersion,
        fwHash: hex(body.firmwareHash),
        tamper: body.tampered,
        ksnCounter: body.ksnCounter,
        battery: body.battery,
        time: body.time,
        seq: n.seq,
        ...(challenge === undefined ? {} : { challenge }),
      },
      p256Signer(identity.privateKey),
    );
  };
}
