/**
 * The registry of `POS_ERR_*` codes raised by @pos/desktop (the merchant terminal's core). Codes of
 * the reader protocol (`POS_ERR_READER_*`, `POS_ERR_TICKET_*`) come from @pos/shared and pass through
 * unchanged; codes the back-end answers pass through as it sent them. Every code here is documented in
 * docs/errors.md (generated: `npm run docs:errors`).
 */
export const DESKTOP_ERRORS = {
  // Reader link (serial, HID) and the connection manager
  POS_ERR_DESKTOP_READER_NOT_FOUND:
    'No reader was found: no serial port or HID device with the configured USB vendor and product id, or the explicit path does not exist.',
  POS_ERR_DESKTOP_READER_OPEN:
    'The reader device exists but could not be opened (in use by another process, permissions, or it went away while opening).',
  POS_ERR_DESKTOP_READER_LOST:
    'The reader went away (unplugged, powered off, or its line failed); the terminal reconnects with backoff.',
  POS_ERR_DESKTOP_HID_UNAVAILABLE:
    'The HID driver (node-hid) cannot be loaded on this machine; on Linux it needs libusb-1.0 at run time.',
  POS_ERR_DESKTOP_READER_CONFIG:
    'The reader configuration is not valid (give a serial path, or a USB vendor and product id).',

  // Attestation agent
  POS_ERR_DESKTOP_ATTEST_CODE_HASH:
    "The app's code could not be hashed (an unreadable file, or too many files), so no evidence can be made.",
  POS_ERR_DESKTOP_ATTEST_CLAIMS:
    'The measurements do not fit the evidence claims schema (a bug in a collector or an out-of-range input).',

  POS_ERR_DESKTOP_NOT_ENROLLED:
    'The terminal has no terminal id or device key yet: enroll it first (`pos-terminal enroll`).',

  // Key storage
  POS_ERR_DESKTOP_KEYSTORE_PERMISSIONS:
    'The key file is readable or writable by others than its owner (it must be mode 0600): it is not loaded.',
  POS_ERR_DESKTOP_KEYSTORE_CORRUPT:
    'The key file is not JSON of the expected shape; restore it or enroll the terminal again.',
  POS_ERR_DESKTOP_KEYSTORE_IO: 'The key file or its directory cannot be read or written.',
  POS_ERR_DESKTOP_KEYSTORE_SEALER_UNAVAILABLE:
    "The OS key protection the Electron app seals the device key with (Electron safeStorage) is not available or does not protect (Linux without a keyring: 'basic_text'), or the main process did not answer: the device key is neither written nor read.",
  POS_ERR_DESKTOP_KEYSTORE_UNSEAL:
    'The device key is sealed but cannot be unsealed here: it was sealed by another key protection (only the Electron app reads a safeStorage-sealed key), by another user or machine, or the sealed blob is damaged. Enroll the terminal again.',

  // Transaction engine
  POS_ERR_DESKTOP_TXN_BUSY: 'A transaction is already running; finish or cancel it first.',
  POS_ERR_DESKTOP_TXN_AMOUNT:
    'The amount is not a whole number of minor units between 1 and the reader limit.',
  POS_ERR_DESKTOP_TXN_STATE:
    'The event does not apply in the current state of the transaction (for example PIN digits before PIN entry).',
  POS_ERR_DESKTOP_TXN_CANCELLED: 'The transaction was cancelled by the merchant or the customer.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_AMOUNT: 'No amount was entered in time.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_CARD: 'No card was presented in time.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_ATTEST:
    'The pre-PIN attestation and PIN-entry ticket did not come back in time.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_PIN: 'The PIN was not entered in time.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_PIN_BLOCK: 'The reader did not return the PIN block in time.',
  POS_ERR_DESKTOP_TXN_TIMEOUT_SUBMIT: 'The back-end did not answer the transaction in time; it may retry it.',
  POS_ERR_DESKTOP_TXN_READER:
    'The reader refused or failed a step of the transaction (its own code is in the detail).',
  POS_ERR_DESKTOP_TXN_ATTEST_REFUSED:
    'The back-end did not give a PIN-entry ticket after the pre-PIN attestation (its code is in the detail).',
  POS_ERR_DESKTOP_TXN_BACKEND:
    'The back-end could not be reached or refused the transaction request (its code is in the detail).',
  POS_ERR_DESKTOP_TXN_HALTED:
    'The terminal is halted by the back-end: the PIN pad was closed, the digits wiped and the reader told to abort.',
  POS_ERR_DESKTOP_TXN_TICKET_EXPIRED:
    'The PIN-entry ticket expired before the PIN was complete: the PIN pad was closed, the digits wiped and the reader told to abort.',
  POS_ERR_DESKTOP_TXN_TICKET_MISSING:
    'PIN entry was attempted without a valid PIN-entry ticket; the halt gate refused it.',
  POS_ERR_DESKTOP_TXN_PIN_LENGTH: 'A PIN is 4 to 12 digits.',
  POS_ERR_DESKTOP_TXN_DECLINED:
    'The acquirer declined the transaction (its own code, when it gave one, is the result code instead).',

  // Back-end HTTP client
  POS_ERR_DESKTOP_BACKEND_UNREACHABLE:
    'The back-end could not be reached (connection refused, DNS, TLS or network failure).',
  POS_ERR_DESKTOP_BACKEND_TIMEOUT: 'The back-end did not answer in time; the request was abandoned.',
  POS_ERR_DESKTOP_BACKEND_REFUSED:
    'The back-end answered an error without its error shape (the HTTP status is in the detail); an answer in the error shape passes its own code through instead.',
  POS_ERR_DESKTOP_BACKEND_RESPONSE:
    'The back-end answered something that does not match the expected response schema.',
  POS_ERR_DESKTOP_BACKEND_NO_TICKET:
    'The back-end gave no ticket for this attestation (the verdict does not allow one, or the terminal is halted).',

  // Enrollment and the CLI
  POS_ERR_DESKTOP_ALREADY_ENROLLED:
    'This data directory already holds an enrolled terminal; use another --data-dir to enroll another.',
  POS_ERR_DESKTOP_CLI_USAGE: 'The command line is not valid (unknown command or option, or a bad value).',
  POS_ERR_DESKTOP_BACKEND_INSECURE:
    'The back-end URL is plain http to a host that is not loopback; use https (http is allowed only to localhost, 127.0.0.0/8 or [::1]).',
  POS_ERR_DESKTOP_SIMULATOR:
    "The reader simulator's control API could not insert the card (it is not running, or refused the request).",

  // The UI API (desktop/src/api/contract.ts) and the shells that carry it
  POS_ERR_DESKTOP_API_INVALID:
    'A message from the renderer does not match the UI API schema (unknown command, missing or extra field, out-of-range value); it was refused unread.',
  POS_ERR_DESKTOP_API_UNAVAILABLE:
    'The terminal core is not running or not reachable from the UI (the utility process exited, or the browser shell lost its server); the UI shows this instead of a PIN pad.',
  POS_ERR_DESKTOP_API_SENDER:
    'An IPC message came from a frame or window that is not the terminal UI; it was refused.',
  POS_ERR_DESKTOP_SHELL_AUTH:
    "A request to the browser shell lacks this launch's secret, or comes from another origin or host; it was refused.",

  // Packaging and release manifest (desktop/scripts, docs/electron.md)
  POS_ERR_DESKTOP_PACKAGE_NO_ELECTRON:
    'The Electron binary is not installed (node_modules/electron has no dist/: its install script did not run), so no package can be built here.',
  POS_ERR_DESKTOP_PACKAGE_FUSES:
    'The installed @electron/fuses has a fuse the decision table (desktop/scripts/fuses.ts) does not decide, or the fuse wire read back after flipping is not the expected one; the build stops.',
  POS_ERR_DESKTOP_PACKAGE_BUILD:
    'Bundling, staging or electron-builder failed (the renderer not built, an esbuild error, or electron-builder refused).',
  POS_ERR_DESKTOP_RELEASE_MANIFEST:
    'The release manifest could not be made: bad arguments, an unreadable app.asar or app directory, or an executable without a fuse wire.',
} as const satisfies Record<`POS_ERR_${string}`, string>;

export type DesktopErrorCode = keyof typeof DESKTOP_ERRORS;
