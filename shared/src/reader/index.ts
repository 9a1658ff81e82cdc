/**
 * The card-reader link protocol, both ends (docs/reader-protocol.md is the specification).
 *
 * Layers, bottom up:
 * - `messages`: the message set, deterministic CBOR, one zod schema per type; `encodeMessage` /
 *   `decodeMessage`.
 *
 * Every function that handles outside input returns a `Result` with a `POS_ERR_READER_*` (or
 * `POS_ERR_TICKET_*`) code and never throws.
 */
export * from './messages';
export * from './transport';
export * from './serial-frame';
export * from './x509';
export * from './channel';
export * from './handshake';
export * from './session';
export * from './status';
export * from './hid-frame';
