/**
 * The reader protocol's message set (docs/reader-protocol.md, "Messages").
 *
 * Every message is one deterministic CBOR map (RFC 8949 4.2.1) with text keys. `t` names the type;
 * every type except `rec` carries `id`, a uint32 that matches responses to requests:
 *
 * - a request carries a fresh id chosen by its sender (1..2^32-1, never 0);
 * - a response (or an `error` about a request) carries the id of the request it answers;
 * - an event the reader sends on its own carries id 0.
 *
 * Messages travel in two layers. Before the secure channel exists only the handshake messages, `error`
 * and `rec` may be sent in the clear; every other message travels inside a `rec` record (channel.ts),
 * whose plaintext is again one message encoded here. `MESSAGE_INFO` says which is which.
 *
 * Decoding never throws: any byte string gives either a message or a `POS_ERR_READER_MESSAGE_*` code.
 * Unknown keys are refused (maps are strict), as are unknown types and anything over its type's size.
 *
 * PIN digits (`pin.digits`) are bytes, one per digit, never text. `decodeMessage` returns them in a
 * fresh array that the receiver must `wipe` when done; the decoder keeps no other copy (it re-encodes
 * into a scratch buffer that it wipes, and wipes every byte string of a message it refuses). The caller
 * wipes the input bytes (a decrypted record plaintext) itself.
 */
import { z } from 'zod';
import { wipe } from '../bytes';
import { PosError, err, ok, type Result } from '../result';
import { decodeNoResidue, encodeNoResidue } from './cbor';

/** Protocol versions this implementation speaks, best first. */
export const READER_PROTOCOL_VERSIONS = [1] as const;
export type ReaderProtocolVersion = (typeof READER_PROTOCOL_VERSIONS)[number];

/** The largest encoded message of any type (a `rec` record included). Both transports carry it. */
export const MAX_MESSAGE_BYTES = 4096;
/** The default limit of one message type; types with larger fields name their own in `MESSAGE_INFO`. */
export const DEFAULT_MESSAGE_LIMIT = 256;
/** The longest ticket (compact JWS) a message carries. A real one is about 700 characters. */
export const MAX_TICKET_CHARS = 2048;
/** Certificates in a reader chain (leaf first, root excluded or included), and the size of each. */
export const MAX_CERT_CHAIN = 3;
export const MAX_CERT_BYTES = 1024;
/** The largest status record (CBOR) inside a `status` message. */
export const MAX_STATUS_REPORT_BYTES = 512;
/** Largest amount in minor units: EMV's Amount, Authorised (9F02) is n12. */
export const MAX_AMOUNT_MINOR = 999_999_999_999;
/** Card schemes a card event may name. */
export const CARD_SCHEMES = ['visa', 'mastercard', 'amex', 'discover', 'jcb', 'unionpay', 'other'] as const;
export type CardScheme = (typeof CARD_SCHEMES)[number];

// ---------------------------------------------------------------------------------------------------
// Field schemas

const u8 = z.custom<Uint8Array>((v) => v instanceof Uint8Array, { message: 'must be a byte string' });
const bytes = (min: number, max: number = min) =>
  u8.refine((b) => b.length >= min && b.length <= max, {
    message: min === max ? `must be ${min} bytes` : `must be ${min} to ${max} bytes`,
  });
const UINT32_MAX = 0xffff_ffff;
const requestId = z.number().int().min(1).max(UINT32_MAX);
const anyId = z.number().int().min(0).max(UINT32_MAX);
const eventId = z.literal(0);
/** An uncompressed SEC1 P-256 point (04 || x || y). On-curve checks happen where the key is used. */
const p256Point = bytes(65).refine((b) => b[0] === 0x04, { message: 'must be an uncompressed point' });
const errorCode = z
  .string()
  .regex(/^POS_ERR_[A-Z0-9]+(?:_[A-Z0-9]+)*$/)
  .max(64);
const version = z.number().int().min(1).max(255);

/** Masked PAN as `maskPan` makes it: first 6 and last 4 digits, or only the last 4 for short PANs. */
export const MASKED_PAN_RE = /^(?:[0-9]{6}\*{3,9}[0-9]{4}|\*{8}[0-9]{4})$/;

/**
 * DUKPT-encrypted card data (shared/src/carddata.ts): AES-GCM under the data key of `ksn`, with `ksn`
 * as additional authenticated data; `iv` is the 12-byte GCM nonce, `ct` the ciphertext and its
 * 16-byte tag.
 */
export const EncryptedCardDataWireSchema = z.strictObject({
  ksn: bytes(12),
  iv: bytes(12),
  ct: bytes(17, 256),
});

// ---------------------------------------------------------------------------------------------------
// Handshake (in the clear)

/** T→R. Protocol versions the terminal speaks, best first. */
export const OfferSchema = z.strictObject({
  t: z.literal('offer'),
  id: requestId,
  versions: z.array(version).min(1).max(8),
});
/** R→T. The version the reader chose from the offer (its best one the terminal also speaks). */
export const AcceptSchema = z.strictObject({ t: z.literal('accept'), id: requestId, version });
/** T→R. Terminal ephemeral ECDH key and nonce. */
export const HelloSchema = z.strictObject({
  t: z.literal('hello'),
  id: requestId,
  epk: p256Point,
  nonce: bytes(32),
});
/** R→T. Reader ephemeral key, nonce, certificate chain (DER, leaf first) and transcript signature. */
export const ReaderHelloSchema = z.strictObject({
  t: z.literal('reader-hello'),
  id: requestId,
  epk: p256Point,
  nonce: bytes(32),
  certs: z.array(bytes(64, MAX_CERT_BYTES)).min(1).max(MAX_CERT_CHAIN),
  sig: bytes(64),
});
/** T→R. Terminal device key, the back-end session ticket that names it, transcript signature. */
export const TerminalAuthSchema = z.strictObject({
  t: z.literal('terminal-auth'),
  id: requestId,
  dk: p256Point,
  ticket: z.string().min(1).max(MAX_TICKET_CHARS),
  sig: bytes(64),
});
/**
 * A secure-channel record: `n` is the sender's record counter (0, 1, 2, ... per direction), `ct` the
 * AES-256-GCM ciphertext of one encoded message followed by the 16-byte tag.
 */
export const RecordSchema = z.strictObject({
  t: z.literal('rec'),
  n: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER),
  ct: bytes(17, MAX_MESSAGE_BYTES),
});

// ---------------------------------------------------------------------------------------------------
// In the channel

/** R→T, first record of a session: key confirmation. `id` is the terminal-auth's id. */
export const FinishedSchema = z.strictObject({ t: z.literal('finished'), id: requestId });
/** T→R. Asks for a signed status report; `challenge` (optional) is echoed inside the signed record. */
export const GetStatusSchema = z.strictObject({
  t: z.literal('get-status'),
  id: requestId,
  challenge: bytes(1, 64).optional(),
});
/** R→T. `report` is the CBOR status record (status.ts), `sig` its ES256 signature (raw r || s). */
export const StatusSchema = z.strictObject({
  t: z.literal('status'),
  id: requestId,
  report: bytes(1, MAX_STATUS_REPORT_BYTES),
  sig: bytes(64),
});
/** T→R. Starts a transaction: amount in minor units of an ISO 4217 alpha-3 currency. */
export const StartSchema = z.strictObject({
  t: z.literal('start'),
  id: requestId,
  amount: z.number().int().min(1).max(MAX_AMOUNT_MINOR),
  currency: z.string().regex(/^[A-Z]{3}$/),
});
/** R→T. The reader waits for a card. */
export const StartedSchema = z.strictObject({ t: z.literal('started'), id: requestId });
const cardEventFields = {
  id: eventId,
  /** Masked PAN (first 6, last 4). The clear PAN is only inside `card`. */
  pan: z.string().regex(MASKED_PAN_RE),
  /** Reader-made token for the card, stable for one PAN on one reader. */
  token: z.string().regex(/^[A-Za-z0-9_-]{8,64}$/),
  scheme: z.enum(CARD_SCHEMES),
  /** The card asks for an online PIN. */
  pinRequired: z.boolean(),
  expired: z.boolean(),
  /** The transaction nonce the reader issued; a PIN-entry ticket must carry it (base64url). */
  nonce: bytes(16, 64),
  card: EncryptedCardDataWireSchema,
};
/** R→T event. A card was inserted (contact). */
export const CardInsertedSchema = z.strictObject({ t: z.literal('card-inserted'), ...cardEventFields });
/** R→T event. A card was tapped (contactless). */
export const CardTappedSchema = z.strictObject({ t: z.literal('card-tapped'), ...cardEventFields });
/** R→T event. The card left the slot. */
export const CardRemovedSchema = z.strictObject({ t: z.literal('card-removed'), id: eventId });
/** T→R. The PIN-entry ticket (compact JWS) for the current transaction. */
export const TicketSchema = z.strictObject({
  t: z.literal('ticket'),
  id: requestId,
  jws: z.string().min(1).max(MAX_TICKET_CHARS),
});
/** R→T. The ticket verified; the reader now accepts one `pin`. Refusal is an `error`. */
export const TicketAcceptedSchema = z.strictObject({ t: z.literal('ticket-ok'), id: requestId });
/**
 * T→R. A fresh session ticket for the open session (compact JWS): verified as the handshake's is
 * (§5.4); on success it replaces the session's expiry and grant (`perm`). Refusal is an `error` and
 * the session keeps what it had.
 */
export const RenewSchema = z.strictObject({
  t: z.literal('renew'),
  id: requestId,
  jws: z.string().min(1).max(MAX_TICKET_CHARS),
});
/** R→T. The session now runs under the new ticket, until `exp` (seconds since the epoch). */
export const RenewedSchema = z.strictObject({
  t: z.literal('renewed'),
  id: requestId,
  exp: z
    .number()
    .int()
    .min(0)
    .max(2 ** 40),
});
/** T→R. PIN digits, one byte (0..9) per digit, 4 to 12 of them. */
export const PinSchema = z.strictObject({
  t: z.literal('pin'),
  id: requestId,
  digits: bytes(4, 12).refine((b) => b.every((d) => d <= 9), { message: 'digits are 0..9' }),
});
/** R→T. ISO 9564-1 format 4 PIN block under the AES DUKPT PIN key of `ksn`. */
export const PinBlockSchema = z.strictObject({
  t: z.literal('pin-block'),
  id: requestId,
  block: bytes(16),
  ksn: bytes(12),
});
/** T→R. Abort the transaction in progress (always allowed; answered by `aborted`). */
export const AbortSchema = z.strictObject({ t: z.literal('abort'), id: requestId });
/**
 * R→T. The transaction ended without a PIN block: as the answer to `abort` (its id), or on the
 * reader's own initiative (id 0) with the reason as `code` (card removed, timeout, tamper).
 */
export const AbortedSchema = z.strictObject({
  t: z.literal('aborted'),
  id: anyId,
  code: errorCode.optional(),
});
/** R→T event. Tamper detected: the reader has wiped its keys; the session ends after this. */
export const TamperSchema = z.strictObject({ t: z.literal('tamper'), id: eventId });
/** Either way. Orderly end of the session; no answer. Like TLS close_notify. */
export const CloseSchema = z.strictObject({
  t: z.literal('close'),
  id: eventId,
  code: errorCode.optional(),
});
/**
 * Either way, in the clear during the handshake or in the channel after it. `id` is the refused
 * request's id, or 0. `detail` is one sentence for a human; never a PIN, PAN, key or token.
 */
export const ErrorSchema = z.strictObject({
  t: z.literal('error'),
  id: anyId,
  code: errorCode,
  detail: z.string().max(200),
});

// ---------------------------------------------------------------------------------------------------
// The set

export const MESSAGE_SCHEMAS = {
  offer: OfferSchema,
  accept: AcceptSchema,
  hello: HelloSchema,
  'reader-hello': ReaderHelloSchema,
  'terminal-auth': TerminalAuthSchema,
  rec: RecordSchema,
  finished: FinishedSchema,
  'get-status': GetStatusSchema,
  status: StatusSchema,
  start: StartSchema,
  started: StartedSchema,
  'card-inserted': CardInsertedSchema,
  'card-tapped': CardTappedSchema,
  'card-removed': CardRemovedSchema,
  ticket: TicketSchema,
  'ticket-ok': TicketAcceptedSchema,
  renew: RenewSchema,
  renewed: RenewedSchema,
  pin: PinSchema,
  'pin-block': PinBlockSchema,
  abort: AbortSchema,
  aborted: AbortedSchema,
  tamper: TamperSchema,
  close: CloseSchema,
  error: ErrorSchema,
} as const;

export type ReaderMessageType = keyof typeof MESSAGE_SCHEMAS;
export const READER_MESSAGE_TYPES = Object.keys(MESSAGE_SCHEMAS) as ReaderMessageType[];

/** One message of the given type, e.g. `ReaderMessageOf<'pin'>`. */
export type ReaderMessageOf<T extends ReaderMessageType> = z.infer<(typeof MESSAGE_SCHEMAS)[T]>;
/** Any message: a union discriminated by `t`. */
export type ReaderMessage = { [T in ReaderMessageType]: ReaderMessageOf<T> }[ReaderMessageType];

export type OfferMessage = ReaderMessageOf<'offer'>;
export type AcceptMessage = ReaderMessageOf<'accept'>;
export type HelloMessage = ReaderMessageOf<'hello'>;
export type ReaderHelloMessage = ReaderMessageOf<'reader-hello'>;
export type TerminalAuthMessage = ReaderMessageOf<'terminal-auth'>;
export type RecordMessage = ReaderMessageOf<'rec'>;
export type CardEventMessage = ReaderMessageOf<'card-inserted'> | ReaderMessageOf<'card-tapped'>;
export type PinMessage = ReaderMessageOf<'pin'>;
export type PinBlockMessage = ReaderMessageOf<'pin-block'>;
export type StatusMessage = ReaderMessageOf<'status'>;
export type ErrorMessage = ReaderMessageOf<'error'>;

/** Who may send a message type. */
export type MessageSender = 'terminal' | 'reader' | 'either';
/** `clear`: only outside the channel (handshake); `channel`: only inside a record; `both`. */
export type MessageLayer = 'clear' | 'channel' | 'both';
export type MessageKind = 'request' | 'response' | 'event';

export interface MessageInfo {
  readonly from: MessageSender;
  readonly layer: MessageLayer;
  readonly kind: MessageKind;
  /** Largest encoded size of the message, in bytes. */
  readonly maxBytes: number;
}

const info = (
  from: MessageSender,
  layer: MessageLayer,
  kind: MessageKind,
  maxBytes = DEFAULT_MESSAGE_LIMIT,
): MessageInfo => ({ from, layer, kind, maxBytes });

/** Direction, layer, kind and size limit of every message type (the table in the spec). */
export const MESSAGE_INFO: Readonly<Record<ReaderMessageType, MessageInfo>> = {
  offer: info('terminal', 'clear', 'request'),
  accept: info('reader', 'clear', 'response'),
  hello: info('terminal', 'clear', 'request'),
  'reader-hello': info('reader', 'clear', 'response', MAX_MESSAGE_BYTES),
  'terminal-auth': info('terminal', 'clear', 'request', MAX_TICKET_CHARS + 256),
  rec: info('either', 'clear', 'event', MAX_MESSAGE_BYTES),
  finished: info('reader', 'channel', 'response'),
  'get-status': info('terminal', 'channel', 'request'),
  status: info('reader', 'channel', 'response', MAX_STATUS_REPORT_BYTES + 128),
  start: info('terminal', 'channel', 'request'),
  started: info('reader', 'channel', 'response'),
  'card-inserted': info('reader', 'channel', 'event', 640),
  'card-tapped': info('reader', 'channel', 'event', 640),
  'card-removed': info('reader', 'channel', 'event'),
  ticket: info('terminal', 'channel', 'request', MAX_TICKET_CHARS + 64),
  'ticket-ok': info('reader', 'channel', 'response'),
  renew: info('terminal', 'channel', 'request', MAX_TICKET_CHARS + 64),
  renewed: info('reader', 'channel', 'response'),
  pin: info('terminal', 'channel', 'request'),
  'pin-block': info('reader', 'channel', 'response'),
  abort: info('terminal', 'channel', 'request'),
  aborted: info('reader', 'channel', 'response'),
  tamper: info('reader', 'channel', 'event'),
  close: info('either', 'channel', 'event'),
  error: info('either', 'both', 'response', 512),
};

const isMessageType = (t: unknown): t is ReaderMessageType =>
  typeof t === 'string' && Object.prototype.hasOwnProperty.call(MESSAGE_SCHEMAS, t);

/** Wipes every byte string inside a decoded value (a refused message may hold PIN digits). */
function wipeDeep(value: unknown, depth = 0): void {
  if (depth > 8) return;
  if (value instanceof Uint8Array) wipe(value);
  else if (Array.isArray(value)) for (const v of value as unknown[]) wipeDeep(v, depth + 1);
  else if (typeof value === 'object' && value !== null)
    for (const v of Object.values(value)) wipeDeep(v, depth + 1);
}

/**
 * Encodes a message. The message must satisfy its schema: a message that does not is a programming
 * error (`PosError` with `POS_ERR_READER_MESSAGE_MALFORMED` or `..._TOO_LARGE`), never sent. The
 * encoding leaves no copy of the message's bytes anywhere but in the result.
 */
export function encodeMessage(msg: ReaderMessage): Uint8Array {
  const type: unknown = (msg as { t?: unknown }).t;
  if (!isMessageType(type))
    throw new PosError('POS_ERR_READER_MESSAGE_UNKNOWN', `no message type ${String(type)}`);
  const parsed = MESSAGE_SCHEMAS[type].safeParse(msg);
  if (!parsed.success)
    throw new PosError('POS_ERR_READER_MESSAGE_MALFORMED', `the ${type} message does not fit its schema`);
  // Encode the caller's byte arrays themselves (no copies); absent optional fields are left out.
  const clean = Object.fromEntries(Object.entries(msg).filter(([, v]) => v !== undefined));
  return encodeNoResidue(clean, MESSAGE_INFO[type].maxBytes);
}

/**
 * Decodes and schema-checks one message. Never throws. Codes: `POS_ERR_READER_MESSAGE_TOO_LARGE`
 * (over `MAX_MESSAGE_BYTES` or its type's limit), `POS_ERR_READER_MESSAGE_MALFORMED` (not
 * deterministic CBOR, not a map with a text `t`, or fields outside the schema),
 * `POS_ERR_READER_MESSAGE_UNKNOWN` (a `t` this version does not define).
 */
export function decodeMessage(bytes: Uint8Array): Result<{ message: ReaderMessage }> {
  if (!(bytes instanceof Uint8Array))
    return err('POS_ERR_READER_MESSAGE_MALFORMED', 'a message is a byte string');
  if (bytes.length > MAX_MESSAGE_BYTES)
    return err(
      'POS_ERR_READER_MESSAGE_TOO_LARGE',
      `the message is ${bytes.length} bytes, over the ${MAX_MESSAGE_BYTES}-byte limit`,
    );
  const decoded = decodeNoResidue(bytes, MAX_MESSAGE_BYTES);
  if (!decoded.ok) return err('POS_ERR_READER_MESSAGE_MALFORMED', decoded.detail);
  const value = decoded.value;
  if (typeof value !== 'object' || value === null || Array.isArray(value) || value instanceof Uint8Array) {
    wipeDeep(value);
    return err('POS_ERR_READER_MESSAGE_MALFORMED', 'a message is a CBOR map');
  }
  const type = (value as { t?: unknown }).t;
  if (typeof type !== 'string') {
    wipeDeep(value);
    return err('POS_ERR_READER_MESSAGE_MALFORMED', 'a message has a text type `t`');
  }
  if (!isMessageType(type)) {
    wipeDeep(value);
    return err('POS_ERR_READER_MESSAGE_UNKNOWN', 'the message type is not one this version defines');
  }
  const limit = MESSAGE_INFO[type].maxBytes;
  if (bytes.length > limit) {
    wipeDeep(value);
    return err(
      'POS_ERR_READER_MESSAGE_TOO_LARGE',
      `a ${type} message is at most ${limit} bytes, this one is ${bytes.length}`,
    );
  }
  const parsed = MESSAGE_SCHEMAS[type].safeParse(value);
  if (!parsed.success) {
    wipeDeep(value);
    const path = parsed.error.issues[0]?.path.join('.') ?? '';
    return err(
      'POS_ERR_READER_MESSAGE_MALFORMED',
      `the ${type} message does not fit its schema${path === '' ? '' : ` (at ${path})`}`,
    );
  }
  return ok({ message: parsed.data });
}

/** Narrows a decoded message to one type. */
export function isMessage<T extends ReaderMessageType>(
  msg: ReaderMessage,
  type: T,
): msg is Extract<ReaderMessage, { t: T }> {
  return msg.t === type;
}
