/**
 * The secure channel (docs/reader-protocol.md, "Secure channel"): AES-256-GCM records with a key, an
 * IV and a 64-bit record counter per direction, derived by the handshake.
 *
 * Record `n` of a direction: nonce = IV XOR (0x00000000 || n as 8 bytes big-endian) (as TLS 1.3),
 * AAD = the 10-byte record header `01 (protocol version) || direction (01 T→R, 02 R→T) || n (8 BE)`,
 * ciphertext = GCM(plaintext = one encoded message) || 16-byte tag, sent as `{t: "rec", n, ct}`.
 *
 * The receiver accepts only the next counter. A counter already seen is a replay, a later one means a
 * lost or reordered record, a bad tag means an altered or truncated record: each ends the session at
 * once with its code, and every later call answers `POS_ERR_READER_SESSION_CLOSED`. Counters never
 * wrap: at `recordLimit` records the direction is used up (`POS_ERR_READER_RECORD_LIMIT`) and a new
 * handshake is needed.
 */
import { gcm } from '@noble/ciphers/aes.js';
import { wipe } from '../bytes';
import type { PosErrorCode } from '../errors';
import { err, ok, type Result } from '../result';
import {
  MESSAGE_INFO,
  decodeMessage,
  encodeMessage,
  type ReaderMessage,
  type RecordMessage,
} from './messages';

export type ChannelRole = 'terminal' | 'reader';

/** Per-direction keys from the handshake. Secret: the channel wipes them when it ends. */
export interface ChannelKeys {
  readonly sendKey: Uint8Array;
  readonly sendIv: Uint8Array;
  readonly receiveKey: Uint8Array;
  readonly receiveIv: Uint8Array;
}

/** Records one direction may carry before a new handshake. 2^32: far below GCM's limits for one key. */
export const DEFAULT_RECORD_LIMIT = 2 ** 32;
const PROTOCOL_VERSION_BYTE = 0x01;
const DIRECTION = { terminal: 0x01, reader: 0x02 } as const;

/** The 10-byte record header (the AAD) of record `n` sent by `from`. */
export function recordHeader(from: ChannelRole, n: number): Uint8Array {
  const h = new Uint8Array(10);
  h[0] = PROTOCOL_VERSION_BYTE;
  h[1] = DIRECTION[from];
  new DataView(h.buffer).setBigUint64(2, BigInt(n), false);
  return h;
}

function recordNonce(iv: Uint8Array, n: number): Uint8Array {
  const nonce = iv.slice();
  const c = new Uint8Array(8);
  new DataView(c.buffer).setBigUint64(0, BigInt(n), false);
  for (let i = 0; i < 8; i++) nonce[4 + i]! ^= c[i] ?? 0;
  return nonce;
}

export interface ChannelEnd {
  readonly code: PosErrorCode;
  readonly detail: string;
}

/** One end of an established channel. Not thread-safe; one per session. */
export class SecureChannel {
  private sendN = 0;
  private receiveN = 0;
  private ended: ChannelEnd | undefined;
  private readonly peer: ChannelRole;

  constructor(
    readonly role: ChannelRole,
    private readonly keys: ChannelKeys,
    /** Public, for logs and binding: 16 bytes from the key schedule, the same at both ends. */
    readonly sessionId: Uint8Array,
    private readonly recordLimit: number = DEFAULT_RECORD_LIMIT,
  ) {
    this.peer = role === 'terminal' ? 'reader' : 'terminal';
  }

  /** Why the session ended, or undefined while it is open. */
  get end(): ChannelEnd | undefined {
    return this.ended;
  }
  get closed(): boolean {
    return this.ended !== undefined;
  }
  /** Records sent and received so far. */
  get counters(): { sent: number; received: number } {
    return { sent: this.sendN, received: this.receiveN };
  }

  /** Ends the session and wipes the keys. Idempotent; the first reason stays. */
  close(code: PosErrorCode = 'POS_ERR_READER_SESSION_CLOSED', detail = 'the session was closed'): void {
    if (this.ended !== undefined) return;
    this.ended = { code, detail };
    wipe(this.keys.sendKey, this.keys.sendIv, this.keys.receiveKey, this.keys.receiveIv);
  }

  private fail<C extends PosErrorCode>(code: C, detail: string) {
    this.close(code, detail);
    return err(code, detail);
  }

  private closedErr() {
    return err(
      'POS_ERR_READER_SESSION_CLOSED',
      `the session has ended (${this.ended?.code ?? 'POS_ERR_READER_SESSION_CLOSED'})`,
    );
  }

  /**
   * Encrypts one message into a record. Refuses (without ending the session) a message this end may
   * not send in the channel; ends it when the counter is used up.
   */
  seal(message: ReaderMessage): Result<{ record: RecordMessage; bytes: Uint8Array }, PosErrorCode> {
    if (this.ended !== undefined) return this.closedErr();
    const info = MESSAGE_INFO[message.t];
    if (info.layer === 'clear' || (info.from !== 'either' && info.from !== this.role))
      return err('POS_ERR_READER_UNEXPECTED', `the ${this.role} does not send ${message.t} in the channel`);
    if (this.sendN >= this.recordLimit)
      return this.fail(
        'POS_ERR_READER_RECORD_LIMIT',
        'the send counter is used up: a new handshake is needed',
      );
    let plain: Uint8Array;
    try {
      plain = encodeMessage(message);
    } catch {
      return err('POS_ERR_READER_MESSAGE_MALFORMED', `the ${message.t} message does not fit its schema`);
    }
    const n = this.sendN++;
    const ct = gcm(this.keys.sendKey, recordNonce(this.keys.sendIv, n), recordHeader(this.role, n)).encrypt(
      plain,
    );
    wipe(plain);
    const record: RecordMessage = { t: 'rec', n, ct };
    return ok({ record, bytes: encodeMessage(record) });
  }

  /**
   * Decrypts the next record. Any failure ends the session: replay (`..._RECORD_REPLAY`), gap or
   * reorder (`..._RECORD_ORDER`), bad tag (`..._RECORD_AUTH`), a plaintext that is not a message the
   * peer may send in the channel (`..._MESSAGE_*`, `..._UNEXPECTED`).
   */
  open(record: RecordMessage): Result<{ message: ReaderMessage }, PosErrorCode> {
    if (this.ended !== undefined) return this.closedErr();
    if (record.n < this.receiveN)
      return this.fail('POS_ERR_READER_RECORD_REPLAY', 'a record counter came twice');
    if (record.n > this.receiveN)
      return this.fail('POS_ERR_READER_RECORD_ORDER', 'a record was lost or came out of order');
    if (this.receiveN >= this.recordLimit)
      return this.fail('POS_ERR_READER_RECORD_LIMIT', 'the receive counter is used up');
    let plain: Uint8Array;
    try {
      plain = gcm(
        this.keys.receiveKey,
        recordNonce(this.keys.receiveIv, record.n),
        recordHeader(this.peer, record.n),
      ).decrypt(record.ct);
    } catch {
      return this.fail('POS_ERR_READER_RECORD_AUTH', 'a record failed authentication');
    }
    this.receiveN++;
    const decoded = decodeMessage(plain);
    wipe(plain);
    if (!decoded.ok) return this.fail(decoded.code, decoded.detail);
    const info = MESSAGE_INFO[decoded.message.t];
    if (info.layer === 'clear' || (info.from !== 'either' && info.from !== this.peer)) {
      const t = decoded.message.t;
      if (decoded.message.t === 'pin') wipe(decoded.message.digits);
      return this.fail('POS_ERR_READER_UNEXPECTED', `the ${this.peer} may not send ${t} in the channel`);
    }
    return ok({ message: decoded.message });
  }
}
