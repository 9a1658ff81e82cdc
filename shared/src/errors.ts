/**
 * The one registry of `POS_ERR_*` codes raised by @pos/shared.
 *
 * A code is a stable contract: tests, logs, the CLI and (later) HTTP error bodies carry it, so it is
 * never renamed or reused for another meaning. Every code here is documented in docs/errors.md; a test
 * fails when the two disagree. Details (the human sentence beside a code) never contain a PIN, a PAN,
 * a key or a token.
 */
export const SHARED_ERRORS = {
  // Byte and text input
  POS_ERR_HEX_INVALID: 'A value that must be hexadecimal has a non-hex character or an odd number of digits.',
  POS_ERR_BASE64URL_INVALID: 'A value that must be base64url (RFC 4648 section 5, no padding) is malformed.',
  POS_ERR_LENGTH: 'A byte string has the wrong length for its role.',

  // PIN and PAN input
  POS_ERR_PIN_LENGTH: 'A PIN must have 4 to 12 digits.',
  POS_ERR_PIN_NOT_NUMERIC: 'A PIN may contain only the digits 0 to 9.',
  POS_ERR_PAN_LENGTH: 'The PAN has a number of digits the PIN block format does not accept.',
  POS_ERR_PAN_NOT_NUMERIC: 'A PAN may contain only the digits 0 to 9.',

  // ISO 9564-1 PIN blocks
  POS_ERR_PINBLOCK_FORMAT_UNSUPPORTED:
    'The PIN block format is not one of ISO 9564-1 formats 0, 1, 2, 3 and 4.',
  POS_ERR_PINBLOCK_BLOCK_LENGTH:
    'The PIN block (or PIN field) has the wrong byte length: 8 for formats 0-3, 16 for format 4.',
  POS_ERR_PINBLOCK_CONTROL_FIELD: 'The control nibble of the PIN block is not the expected format number.',
  POS_ERR_PINBLOCK_PIN_LENGTH: 'The PIN length nibble of the PIN block is outside 4 to 12.',
  POS_ERR_PINBLOCK_FILLER:
    'The fill digits of the PIN block are wrong for its format (F for formats 0 and 2, A-F for format 3, A for format 4).',
  POS_ERR_PINBLOCK_PIN_NOT_NUMERIC: 'A PIN digit inside the PIN block is not 0 to 9.',
  POS_ERR_PINBLOCK_FILL_INVALID:
    'Caller-supplied fill or random data has the wrong length or digits for the format.',

  // Keys
  POS_ERR_KEY_LENGTH:
    'The key has the wrong length for its algorithm (AES: 16, 24 or 32 bytes; TDES: 16 or 24 bytes).',
  POS_ERR_DATA_LENGTH: 'The data is not a whole number of cipher blocks.',

  // DUKPT
  POS_ERR_KSN_INVALID:
    'The key serial number has the wrong length (12 bytes for AES DUKPT, 10 for TDES DUKPT).',
  POS_ERR_KSN_COUNTER_INVALID:
    'The KSN transaction counter is one a device never uses (zero, or more one-bits than the standard allows).',
  POS_ERR_KSN_EXHAUSTED: 'The KSN transaction counter has no next value: the device has used its last key.',
  POS_ERR_DUKPT_KEY_USAGE_UNKNOWN: 'The key usage is not one DUKPT defines for this variant.',
  POS_ERR_DUKPT_KEY_TYPE_UNKNOWN: 'The working-key type is not one DUKPT defines.',
  POS_ERR_DUKPT_KEY_TOO_STRONG: 'The working key would be stronger than the key it is derived from.',
  POS_ERR_DUKPT_DEVICE_STATE_INVALID: 'A stored DUKPT device state is malformed or inconsistent.',

  // Keys (JWK) and back-end tickets (compact JWS, ES256)
  POS_ERR_JWK_INVALID: 'A public key in JWK form is not a P-256 EC key with valid x and y coordinates.',
  POS_ERR_TICKET_MALFORMED:
    'The ticket is not a compact JWS with a JSON header and claims of the expected shape.',
  POS_ERR_TICKET_ALGORITHM: 'The ticket header names an algorithm other than ES256, or an unexpected type.',
  POS_ERR_TICKET_KEY_UNKNOWN: 'The ticket was signed under a key id this verifier does not trust.',
  POS_ERR_TICKET_SIGNATURE: 'The ticket signature does not verify under the trusted key.',
  POS_ERR_TICKET_EXPIRED: 'The ticket has expired.',
  POS_ERR_TICKET_NOT_YET_VALID: "The ticket was issued in the future by the verifier's clock.",
  POS_ERR_TICKET_LIFETIME: 'The ticket lives longer than the verifier accepts.',
  POS_ERR_TICKET_ISSUER: 'The ticket was issued by another issuer.',
  POS_ERR_TICKET_AUDIENCE: 'The ticket is for another audience.',
  POS_ERR_TICKET_USE:
    'The ticket is of another kind (a session ticket where a PIN-entry ticket is needed, or the reverse).',
  POS_ERR_TICKET_PERMISSION: 'The ticket does not grant the permission the operation needs.',
  POS_ERR_TICKET_TIER: 'The ticket carries a verdict that does not allow the operation.',
  POS_ERR_TICKET_READER_MISMATCH: 'The ticket is bound to another reader serial.',
  POS_ERR_TICKET_KEY_MISMATCH: 'The ticket is bound (cnf) to another terminal key.',
  POS_ERR_TICKET_NONCE_MISMATCH: 'The PIN-entry ticket is bound to another transaction nonce.',

  // Deterministic CBOR (RFC 8949 4.2.1) and encrypted card data
  POS_ERR_CBOR_INVALID:
    'The bytes are not well-formed deterministic CBOR of an accepted shape (no indefinite lengths, no duplicate keys, no trailing bytes).',
  POS_ERR_CBOR_TOO_LARGE: 'The CBOR item is larger or nested deeper than the limit.',
  POS_ERR_CARD_DATA_INVALID:
    'The encrypted card data does not decrypt to a well-formed card record under this key.',

  // Evidence (terminal attestation evidence, compact JWS ES256; docs/attestation.md)
  POS_ERR_EVIDENCE_MALFORMED:
    'The evidence is not a compact JWS with a JSON header and a 64-byte ES256 signature.',
  POS_ERR_EVIDENCE_TOO_LARGE: 'The evidence is larger than the size limit.',
  POS_ERR_EVIDENCE_ALGORITHM: 'The evidence header names an algorithm other than ES256.',
  POS_ERR_EVIDENCE_CLAIMS: 'The evidence claims do not have the shape of the evidence schema.',

  // Reader protocol (docs/reader-protocol.md): messages, framing, handshake, secure channel, status
  POS_ERR_READER_MESSAGE_MALFORMED:
    'A reader message is not deterministic CBOR of the shape its type requires.',
  POS_ERR_READER_MESSAGE_UNKNOWN: 'A reader message has a type this protocol version does not define.',
  POS_ERR_READER_MESSAGE_TOO_LARGE: 'A reader message is larger than the limit of its type.',
  POS_ERR_READER_FRAME_MALFORMED:
    'A serial frame is not valid COBS, or is too short to hold a header and CRC.',
  POS_ERR_READER_FRAME_CRC: 'A serial frame failed its CRC-32 check.',
  POS_ERR_READER_FRAME_TOO_LARGE: 'A serial frame is longer than the maximum frame size.',
  POS_ERR_READER_LINK_TIMEOUT: 'The peer did not acknowledge a frame after the last retry.',
  POS_ERR_READER_LINK_CLOSED: 'The reader link is closed.',
  POS_ERR_READER_LINK_BUSY: 'The link send queue is full.',
  POS_ERR_READER_HID_CHANNEL: 'A HID packet came on a channel that is not the one allocated or in use.',
  POS_ERR_READER_HID_SEQUENCE: 'A HID continuation packet was lost or came out of order.',
  POS_ERR_READER_HID_LENGTH: 'A HID message length is zero, over 7609 bytes, or over the agreed limit.',
  POS_ERR_READER_HID_COMMAND: 'A HID packet carries a command this protocol does not define.',
  POS_ERR_READER_HID_TIMEOUT: 'A HID message was not completed within the transaction timeout.',
  POS_ERR_READER_HID_BUSY: 'A HID message began on one channel while another channel was mid-message.',
  POS_ERR_READER_VERSION: 'The terminal and the reader share no protocol version.',
  POS_ERR_READER_UNEXPECTED:
    'A reader message came that the protocol state does not allow (wrong order, direction or state).',
  POS_ERR_READER_HANDSHAKE_TIMEOUT: 'The secure-channel handshake did not finish in time.',
  POS_ERR_READER_CERT_INVALID:
    'A reader certificate is not DER X.509 of the profile the protocol requires, or its chain is malformed.',
  POS_ERR_READER_CERT_UNTRUSTED: 'The reader certificate chain does not lead to a trusted manufacturer CA.',
  POS_ERR_READER_CERT_SIGNATURE: 'A signature in the reader certificate chain does not verify.',
  POS_ERR_READER_CERT_EXPIRED: 'A certificate in the reader chain is expired or not yet valid.',
  POS_ERR_READER_SERIAL_MISMATCH: 'The reader certificate or status names another reader serial.',
  POS_ERR_READER_SIGNATURE: "The reader's signature over the handshake transcript does not verify.",
  POS_ERR_READER_TERMINAL_KEY: "The terminal's device key is not a valid P-256 public key.",
  POS_ERR_READER_TERMINAL_SIGNATURE:
    "The terminal's device-key signature over the handshake transcript does not verify.",
  POS_ERR_READER_RECORD_REPLAY: 'A secure-channel record was replayed: the session is ended.',
  POS_ERR_READER_RECORD_ORDER: 'A secure-channel record was lost or came out of order: the session is ended.',
  POS_ERR_READER_RECORD_AUTH:
    'A secure-channel record failed authentication (altered or truncated): the session is ended.',
  POS_ERR_READER_RECORD_LIMIT: 'The record counter of the session is used up: a new handshake is needed.',
  POS_ERR_READER_SESSION_CLOSED: 'The secure-channel session has ended.',
  POS_ERR_READER_STATE: 'The reader cannot do this in its current state (no transaction, no card, busy).',
  POS_ERR_READER_TICKET_REQUIRED: 'The reader makes no PIN block without an accepted PIN-entry ticket.',
  POS_ERR_READER_PIN_NOT_REQUIRED: 'The card does not ask for an online PIN.',
  POS_ERR_READER_CARD_EXPIRED: 'The card has expired.',
  POS_ERR_READER_CARD_REMOVED: 'The card was removed before the transaction finished.',
  POS_ERR_READER_ABORTED: 'The transaction was aborted.',
  POS_ERR_READER_TIMEOUT: 'The reader gave up waiting (for a card, a ticket or a PIN).',
  POS_ERR_READER_TAMPERED:
    'The reader detected tampering: it has wiped its keys and refuses every operation.',
  POS_ERR_READER_STATUS_INVALID: 'A reader status report is not a well-formed, signed status record.',
  POS_ERR_READER_STATUS_SIGNATURE:
    "The reader status report's signature does not verify under the reader key.",
  POS_ERR_READER_STATUS_STALE: "The reader status report's time is too old or in the future.",
  POS_ERR_READER_SESSION_EXPIRED:
    "The reader session's session ticket has expired: the reader starts no transaction until a fresh session ticket renews the session.",
} as const satisfies Record<`POS_ERR_${string}`, string>;

export type SharedErrorCode = keyof typeof SHARED_ERRORS;

/** Any package's error code. Each package keeps its own registry; all share the prefix. */
export type PosErrorCode = `POS_ERR_${string}`;
