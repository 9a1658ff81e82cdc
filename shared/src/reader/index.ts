/**
 * The card-reader link protocol, both ends. The specification is docs/reader-protocol.md; this is its
 * reference implementation, the same code in the terminal (`desktop/`), the reader simulator
 * (`device-sim/`) and the A&M back-end (status check). No I/O: callers own the serial port or the HID
 * device and pass bytes in and out.
 *
 * Layers, bottom up, and what to use from each:
 *
 * - Transports (`transport.ts`): the `ReaderLink` interface (send one message, events `message`,
 *   `error`, `close`), `LinkTimer` with `realTimer` and `ManualTimer` (tests drive time), and
 *   `createMemoryLinkPair()` for tests above the framing; `createSerialLinkPair()` and
 *   `createHidLinkPair()` join two real links in-process (with an optional `tap` to drop or alter).
 * - Serial (`serial-frame.ts`): `new SerialLink({ write })` then `link.receive(chunk)` for every chunk
 *   read from the port. COBS + CRC-32 frames, SYNC/DATA/ACK/NAK, bounded retry, resync after garbage.
 *   Building blocks: `crc32`, `cobsEncode`/`cobsDecode`, `encodeSerialFrame`/`decodeSerialFrame`,
 *   `SerialFrameDecoder`.
 * - HID (`hid-frame.ts`): `new HidHostLink({ writeReport })` (terminal) / `new HidDeviceLink({ writeReport })`
 *   (reader), then `link.receiveReport(report)` for every 64-byte report. CTAPHID-style packets, INIT
 *   channel allocation. Building blocks: `fragmentHid`, `HidReassembler`.
 * - Messages (`messages.ts`): `encodeMessage(msg)` / `decodeMessage(bytes)` (never throws), the zod
 *   schemas, the `ReaderMessage` union (discriminated by `t`), `MESSAGE_INFO` (direction, layer,
 *   kind, size limit of each type) and the limits (`MAX_MESSAGE_BYTES`, ...).
 * - Handshake (`handshake.ts`): step state machines `TerminalHandshake` (`start()`, then
 *   `await receive(msg)`) and `ReaderHandshake` (`await receive(msg)`), each step giving messages to
 *   send and `continue` / `done` (with the `SecureChannel` and the peer's identity) / `failed` (with the
 *   code). Keys are `P256Signer`s (`p256Signer(secretKey)` for a raw 32-byte key).
 * - Channel (`channel.ts`): `SecureChannel.seal(msg)` → `{ record, bytes }`, `open(record)` →
 *   `{ message }`; any replay, reorder, tamper or truncation ends it with its code.
 * - Session (`session.ts`): `connectToReader(link, opts)` (terminal) and `acceptTerminal(link, opts)`
 *   (reader) run the handshake over a link and return a `ReaderSession` (`send`, `request` with id
 *   matching and timeout, events `message` and `end`, `close`). Firmware-style code may instead drive
 *   the step machines and `SecureChannel` itself.
 * - Certificates (`x509.ts`): `verifyReaderCertChain(chain, roots, { now, expectedSerial })` and
 *   `parseReaderCertificate(der)` for exactly the profile in the spec (§7), on noble, synchronous.
 * - Status (`status.ts`): `signReaderStatus(status, signer)` (reader) and
 *   `verifyReaderStatus(signed, certChain, trustedCaRoots, { now, expectedSerial, maxAgeS })` (back-end).
 *
 * Every function that handles outside input returns a `Result` with a `POS_ERR_READER_*` (or
 * `POS_ERR_TICKET_*`) code and never throws; `PosError` is thrown only for a broken contract (e.g.
 * encoding a message that does not fit its own schema). PIN digits are bytes (`pin.digits`); whoever
 * receives them wipes them.
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
