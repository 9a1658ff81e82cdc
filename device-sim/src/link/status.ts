/**
 * The signed status report in the shared format (shared/src/reader/status.ts): a deterministic CBOR
 * record signed ES256 with the reader's identity key, which its certificate vouches for. The sequence
 * number is persisted ahead (StatusSequence).
 *
 * Tamper wipes the identity key, so a tampered reader signs nothing more. Just before the wipe it signs
 * one last report with `tamper: true` (the "final status", kept in tamper.json and shown by the control
 * API): a genuine, verifiable record that the reader was tampered with. It also refuses every handshake
 * afterwards, so a terminal gets no status from it and reports the reader as unattested (fail closed).
 */
import { encodeReaderStatus, hex, p256Signer, type SignedReaderStatus } from '@pos/shared';
import type { ReaderFirmware, StatusBody } from '../firmware/reader';
import type { StatusSequence } from '../state/status-seq';
import type { StatusSigner } from './service';

/** Signs a status body now, with this identity key; undefined if the sequence cannot be persisted. */
export function signStatusWith(
  privateKey: Uint8Array,
  seq: StatusSequence,
  body: StatusBody,
  challenge?: Uint8Array,
): SignedReaderStatus | undefined {
  const n = seq.take();
  if (!n.ok) return undefined;
  const report = encodeReaderStatus({
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
  });
  const sig = p256Signer(privateKey).sign(report);
  if (!(sig instanceof Uint8Array)) return undefined;
  return { report, sig };
}

export function makeStatusSigner(fw: ReaderFirmware, seq: StatusSequence): StatusSigner {
  return (body, challenge) => {
    const identity = fw.identity;
    if (identity === undefined || fw.tampered) return undefined;
    return signStatusWith(identity.privateKey, seq, body, challenge);
  };
}
