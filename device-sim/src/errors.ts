/**
 * The registry of `POS_ERR_*` codes raised by @pos/device-sim (the reader simulator and its CLI).
 * Codes of the reader protocol itself live in @pos/shared. Every code here is documented in
 * docs/errors.md.
 */
export const DEVICE_SIM_ERRORS = {
  POS_ERR_SIM_STATE_DIR: 'The state directory cannot be created, read or written.',

  // Reader firmware: state directory, keys, transaction state machine, tamper (issue 3). Refusals the
  // terminal sees on the link use the POS_ERR_READER_* codes of @pos/shared.
  POS_ERR_SIM_STATE_CORRUPT:
    'A file in the state directory does not parse or does not match its schema; fix or remove it (or run init in a fresh directory).',
  POS_ERR_SIM_STATE_MISSING:
    'The state directory has no reader identity yet; run `pos-reader-sim init` or start once.',
  POS_ERR_SIM_STATE_INCOMPLETE:
    'The state directory holds part of a reader (a certificate, DUKPT, device, status or tamper file) but a piece it needs is missing; it is never re-created as a new reader: restore the files or use a fresh directory.',
  POS_ERR_SIM_TAMPER_NOT_DURABLE:
    'The tamper latch could not be written to the state directory yet: the reader is latched in memory, refuses everything and keeps its key files until the latch is on disk, retrying.',
  POS_ERR_SIM_BAD_REQUEST: 'The request has a field outside what the reader accepts.',
  POS_ERR_SIM_CARD_UNKNOWN: 'No test card has that name; `pos-reader-sim cards` lists them.',
  POS_ERR_SIM_NO_SESSION: 'No terminal is authenticated to the reader: run the handshake first.',
  POS_ERR_SIM_NO_TRUSTED_KEYS:
    'The reader trusts no A&M ticket-signing key; give it a JWKS (`pos-reader-sim trust`).',
  POS_ERR_SIM_TICKET_REPLAYED: 'The ticket (its jti) was already used at this reader.',
  POS_ERR_SIM_BATTERY_LOW: 'The battery is too low to start a transaction.',
  POS_ERR_SIM_TRUST_INVALID: 'The JWKS given to trust is not a set of P-256 public keys with key ids.',
  POS_ERR_SIM_CERT: 'The reader certificate or the manufacturer CA cannot be made or read.',

  // Reader simulator transports, CLI and control API (issue 3)
  POS_ERR_SIM_CLI_ARGS: 'A pos-reader-sim argument is unknown or has a value outside what it accepts.',
  POS_ERR_SIM_SOCAT: 'socat is missing or did not create the pseudo-terminal pair.',
  POS_ERR_SIM_SERIAL: 'The serial port cannot be opened or failed.',
  POS_ERR_SIM_CONTROL_BODY: 'The control API request body is not JSON of the shape the endpoint accepts.',
  POS_ERR_SIM_CONTROL_NOT_FOUND: 'The control API has no such endpoint.',
  POS_ERR_SIM_CONTROL_ORIGIN:
    'The control API refuses requests with an Origin header: a web page must not drive the reader.',
  POS_ERR_SIM_CONTROL_HOST:
    'The control API refuses a Host header other than the loopback address:port it listens on (DNS rebinding).',
  POS_ERR_SIM_CONTROL_CONTENT_TYPE:
    'A control API POST body must be sent with Content-Type: application/json.',
  POS_ERR_SIM_INTERNAL: 'An unexpected failure inside the simulator (a bug).',
} as const satisfies Record<`POS_ERR_${string}`, string>;

export type DeviceSimErrorCode = keyof typeof DEVICE_SIM_ERRORS;
