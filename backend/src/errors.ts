/**
 * The registry of `POS_ERR_*` codes raised by @pos/backend. HTTP error bodies carry them
 * (`{ "error": { "code", "message" } }`, see docs/backend.md). Codes from @pos/shared (tickets, JWKs,
 * PIN blocks, DUKPT) pass through unchanged. Every code here is documented in docs/errors.md.
 */
export const BACKEND_ERRORS = {
  POS_ERR_INTERNAL:
    'An unexpected failure inside the service; it was logged with a request id. Nothing was decided in the caller’s favour.',

  // Service (HTTP layer, store, keys, enrollment, challenges, terminal request authentication)
  POS_ERR_REQUEST_INVALID:
    'The request does not match the route schema (missing, unknown or wrongly typed fields).',
  POS_ERR_REQUEST_MALFORMED: 'The request body is not well-formed JSON.',
  POS_ERR_REQUEST_TOO_LARGE: 'The request body is larger than the route accepts.',
  POS_ERR_REQUEST_TIMEOUT:
    'The request (headers, or headers and body) did not arrive in time; the connection was closed. Send the whole request at once.',
  POS_ERR_REQUEST_MEDIA_TYPE:
    'The request body has a content type the route does not accept (send application/json).',
  POS_ERR_NOT_FOUND: 'No such route, or no such resource.',
  POS_ERR_RATE_LIMITED:
    'Too many requests from this client; retry after the interval in the Retry-After header.',
  POS_ERR_UNAVAILABLE: 'The service is shutting down or its store is unreachable; retry later.',
  POS_ERR_OPERATOR_AUTH: 'The operator API token is missing, malformed, unknown or revoked.',
  POS_ERR_FORBIDDEN: 'The caller is authenticated but its role may not do this.',
  POS_ERR_OPERATOR_EXISTS: 'An operator with this username already exists.',
  POS_ERR_CSRF:
    'A cookie-authenticated request with an unsafe method lacks the session’s CSRF token in the X-CSRF-Token header, or carries another one.',
  POS_ERR_LOGIN_FAILED:
    'The username or password is wrong, or the account is disabled or locked after too many failures (one answer for all, so it tells nothing).',
  POS_ERR_LOGIN_RATE_LIMITED: 'Too many login attempts from this client address; retry later.',
  POS_ERR_PASSWORD_POLICY: 'The password does not meet the policy (12 to 1024 characters).',
  POS_ERR_USER_UNKNOWN: 'No operator account has this id.',
  POS_ERR_TOKEN_UNKNOWN: 'No API token has this id.',
  POS_ERR_USER_SCOPE_INVALID:
    'The role and merchant do not go together: a merchant user or token names its merchant, an admin is provider-wide, and the merchant must exist.',
  POS_ERR_ENROLLMENT_CODE_INVALID: 'The enrollment code is unknown, already used or expired.',
  POS_ERR_ENROLLMENT_KEY_IN_USE: 'The device key is already enrolled for another terminal.',
  POS_ERR_ENROLLMENT_REFUSED: 'The first evidence did not earn a verdict that allows the terminal to enroll.',
  POS_ERR_MERCHANT_UNKNOWN: 'No merchant has this id.',
  POS_ERR_TERMINAL_UNKNOWN: 'No terminal has this id.',
  POS_ERR_TERMINAL_HALTED:
    'The terminal is halted: no ticket is issued and no transaction accepted until an operator resumes it.',
  POS_ERR_TERMINAL_RESUME_PENDING:
    'The terminal was resumed but has not yet made an affirming attestation since: no ticket, no transaction until it does.',
  POS_ERR_TERMINAL_NOT_HALTED: 'Only a halted terminal can be resumed.',
  POS_ERR_EVENTS_TOO_MANY:
    'This caller (API token, or user over all their sessions) already holds the most concurrent event streams allowed per process; close one first.',
  POS_ERR_EVENTS_NOT_ACCEPTABLE:
    'GET /v1/events answers a Server-Sent Events stream only: send Accept: text/event-stream (as EventSource does).',
  POS_ERR_TERMINAL_STALE:
    'The terminal missed its attestation deadline by more than the liveness margin: no ticket and no transaction until an affirming attestation.',
  POS_ERR_CORRELATION_COUNTER_REPLAY:
    'Verdict reason: evidence signed by the terminal’s own key carried a counter at or below one already accepted (a replay or a cloned key); the terminal is halted.',
  POS_ERR_CORRELATION_READER_SHARED:
    'Verdict reason: the card reader’s serial is enrolled on another terminal too; an enrollment is refused, an enrolled terminal is halted.',
  POS_ERR_HALT_UNKNOWN: 'No halt has this id (or it belongs to another merchant).',
  POS_ERR_HALT_LIFTED: 'The halt was already lifted.',
  POS_ERR_HALT_STILL_COVERS:
    'Another active halt (merchant, app version or fleet) still covers the terminal: lift that halt first.',
  POS_ERR_HALT_TARGET:
    'The halt target does not fit the scope: terminal, merchant and app-version halts name one, a fleet halt names none.',
  POS_ERR_PUSH_MESSAGE:
    'A push connection frame is not a valid message (not JSON, unknown type, bad fields, or too large); the connection is closed (1008).',
  POS_ERR_PUSH_DUPLICATE:
    'The device key already holds a live push connection: two connections of one device key are a fleet correlation, and the terminal is halted (close 4409).',
  POS_ERR_TICKET_USED:
    'The PIN-entry ticket was already used for a transaction, or was not issued to this terminal: one ticket, one PIN transaction.',
  POS_ERR_TRANSACTION_KSN_REPLAY:
    'The KSN counter is not above the highest already seen for its BDK ID and derivation ID: a replayed PIN block or card data.',
  POS_ERR_CHALLENGE_UNKNOWN: 'The challenge was never issued by this service, or its record has been purged.',
  POS_ERR_PROOF_MISSING: 'A terminal request lacks the Pos-Proof header (device-key proof of possession).',
  POS_ERR_PROOF_INVALID: 'The Pos-Proof header is not a compact ES256 JWS of the expected shape.',
  POS_ERR_PROOF_SIGNATURE:
    'The Pos-Proof signature does not verify under the enrolled device key of the named terminal.',
  POS_ERR_PROOF_BINDING: 'The Pos-Proof is for another method, URL, body or ticket.',
  POS_ERR_PROOF_STALE: 'The Pos-Proof was issued too long ago or in the future.',
  POS_ERR_PROOF_REPLAY: 'The Pos-Proof was already used (its jti was seen before).',
  POS_ERR_TICKET_MISSING: 'The request needs an `Authorization: PosTicket <ticket>` header.',
  POS_ERR_ATTESTATION_REFUSED:
    'The evidence failed appraisal; the verdict and its reasons are in the response.',
  POS_ERR_POLICY_UNKNOWN: 'No policy has this version.',
  POS_ERR_POLICY_INVALID: 'The policy document does not match the policy schema.',
  POS_ERR_POLICY_EXISTS: 'A policy with this version already exists; versions are immutable.',
  POS_ERR_POLICY_TOO_DEEP:
    'The policy nests its conditions (not, all, any) deeper than 16 levels; it is refused before it is parsed.',
  POS_ERR_POLICY_CORE_VERIFIER_MISSING:
    'The policy’s requiredVerifiers leaves out a core verifier; a policy may only add to the core list, never drop one.',
  POS_ERR_MASTER_KEY_INVALID:
    'The master key is not 32 bytes of base64url, or it does not open the stored keys.',
  POS_ERR_KEY_DECRYPT: 'A stored private key could not be decrypted (wrong master key or altered data).',
  POS_ERR_STORE: 'The store failed an operation (locked, full, or its schema is newer than this service).',
  POS_ERR_AUDIT_CHAIN: 'The audit chain does not verify (an entry was changed, removed or reordered).',
  POS_ERR_CLI_USAGE: 'The pos-backend command line has an unknown option or a malformed value.',
  POS_ERR_TLS_FILE_UNREADABLE:
    'A --tls-cert or --tls-key file cannot be read (missing, or no permission); the service does not start.',
  POS_ERR_TLS_INVALID:
    'The --tls-cert file holds no valid PEM certificate, the --tls-key file no valid PEM private key, or the key does not belong to the certificate; the service does not start.',

  // Domain (evidence verifiers, policy, tickets, audit chain, acquirer host; docs/attestation.md)
  POS_ERR_ATTEST_SIGNATURE:
    'The evidence signature does not verify under the terminal’s enrolled device key.',
  POS_ERR_ATTEST_KEY_MISMATCH:
    'The evidence was signed by (or names) a key other than the terminal’s enrolled device key.',
  POS_ERR_ATTEST_JWK_MISSING: 'Enrollment evidence must carry the device public key in its header (`jwk`).',
  POS_ERR_ATTEST_JWK_UNEXPECTED: 'Only enrollment evidence may carry a key in its header.',
  POS_ERR_ATTEST_SUBJECT: 'The evidence names another terminal than the one it was submitted for.',
  POS_ERR_ATTEST_CHALLENGE_UNKNOWN: 'The evidence names a challenge this service did not issue.',
  POS_ERR_ATTEST_CHALLENGE_MISMATCH: 'The evidence names another challenge than the one looked up.',
  POS_ERR_ATTEST_CHALLENGE_USED: 'The challenge was already used: replayed evidence.',
  POS_ERR_ATTEST_CHALLENGE_EXPIRED: 'The challenge expired before the evidence arrived.',
  POS_ERR_ATTEST_CHALLENGE_TERMINAL: 'The challenge was issued to another terminal.',
  POS_ERR_ATTEST_COUNTER_REGRESSION:
    'The evidence counter is not above the last accepted one (replay or cloned key).',
  POS_ERR_ATTEST_CLOCK_SKEW:
    'The terminal’s clock differs from the server’s by more than the allowed window.',
  POS_ERR_ATTEST_PURPOSE: 'The evidence was made for another purpose than the operation needs.',
  POS_ERR_ATTEST_NONCE:
    'Pre-PIN evidence is not bound to the reader’s transaction nonce (or other evidence carries one).',
  POS_ERR_ATTEST_READER_ABSENT:
    'The evidence carries no signed reader status (the reader verifier reports unknown).',
  POS_ERR_ATTEST_READER_UNVERIFIABLE:
    'The service has no reader status verifier or no manufacturer CA root (unknown).',
  POS_ERR_ATTEST_READER_UNPAIRED:
    'No reader is paired with the terminal, so the status cannot be bound to one (unknown).',
  POS_ERR_ATTEST_READER_SIGNATURE:
    'The reader status is not signed by a reader certificate chained to the manufacturer CA.',
  POS_ERR_ATTEST_READER_MISMATCH:
    'The reader status comes from a reader other than the one paired with the terminal.',
  POS_ERR_ATTEST_READER_TAMPERED: 'The reader reports its tamper latch set.',
  POS_ERR_ATTEST_READER_STALE:
    'The reader status is too old (pre-PIN without the challenge echo: more than 5 s), or echoes another challenge.',
  POS_ERR_ATTEST_READER_REPLAYED:
    'Pre-PIN evidence carries a reader status whose sequence number is missing or not above the last one seen from that reader.',
  POS_ERR_ATTEST_RELEASE_UNKNOWN:
    'The app version and build kind match no approved release’s reference values.',
  POS_ERR_ATTEST_CODE_HASH: 'The app’s code hash is not one of the approved release’s.',
  POS_ERR_ATTEST_SHELL_NOT_ALLOWED:
    'The shell kind (electron, browser, headless) is not allowed for the release.',
  POS_ERR_ATTEST_FUSES: 'The Electron fuse wire differs from the release’s, or its measurement failed.',
  POS_ERR_ATTEST_EXECUTABLE_HASH:
    'The executable hash is not one of the release’s, or its measurement failed.',
  POS_ERR_ATTEST_MEASUREMENT_UNKNOWN:
    'A required measurement is missing or reported unknown (unknown is not ok).',
  POS_ERR_ATTEST_RUNTIME_TAMPERED:
    'A runtime signal failed: debugger, inspector, devtools, NODE_OPTIONS, ELECTRON_RUN_AS_NODE or suspicious environment.',
  POS_ERR_ATTEST_ENVIRONMENT_RISK:
    'An environment signal failed: virtual machine, remote session or no screen-capture protection.',
  POS_ERR_ATTEST_VERIFIER_ERROR:
    'A verifier failed unexpectedly; the verdict is contraindicated, never a pass.',
  POS_ERR_ATTEST_POLICY_ERROR: 'The policy failed to evaluate; the verdict is contraindicated.',
  POS_ERR_ATTEST_INCOMPLETE: 'A verifier the policy requires did not pass, so the verdict is not affirming.',
  POS_ERR_TICKET_REFUSED:
    'No ticket for this verdict: halted, contraindicated or none; or a PIN-entry ticket without a fresh affirming pre-PIN verdict and nonce.',
  POS_ERR_TICKET_CLAIMS_INVALID:
    'The ticket claims would not match the ticket schema (a programming or configuration error).',
  POS_ERR_TICKET_SIGNER: 'The ticket signer did not return a 64-byte ES256 signature.',
  POS_ERR_AUDIT_MALFORMED: 'An audit entry does not have the entry shape.',
  POS_ERR_AUDIT_SEQUENCE:
    'An audit entry has an unexpected sequence number: an entry was removed, inserted or reordered.',
  POS_ERR_AUDIT_LINK: 'An audit entry does not link to the hash of the entry before it.',
  POS_ERR_AUDIT_HASH: 'An audit entry’s content does not match its hash: it was changed.',
  POS_ERR_AUDIT_CHECKPOINT:
    'An audit checkpoint does not verify under a trusted key, signs another chain, or lies beyond the chain’s end.',
  POS_ERR_ACQ_REQUEST_INVALID:
    'The authorization request has an amount or currency outside what the acquirer accepts.',
  POS_ERR_ACQ_KSN_INVALID: 'The KSN is not a valid AES DUKPT key serial number.',
  POS_ERR_ACQ_BDK_UNKNOWN: 'The KSN names a BDK the acquirer host does not hold.',
  POS_ERR_ACQ_CARD_DATA:
    'The card cannot be read: the one answer to every card-data failure (does not authenticate under the DUKPT data key of the KSN, malformed record, card unknown to the issuer).',
  POS_ERR_ACQ_CARD_UNKNOWN:
    'No longer answered (an unknown card gets POS_ERR_ACQ_CARD_DATA, so card data is no oracle); kept so the code is never reused.',
  POS_ERR_ACQ_CARD_EXPIRED: 'The card has expired.',
  POS_ERR_ACQ_PIN_REQUIRED: 'The card needs online PIN and the transaction has no PIN block.',
  POS_ERR_ACQ_PIN_BLOCK_INVALID:
    'The PIN block does not decrypt to a format 4 PIN block for the card under the KSN’s PIN key.',
  POS_ERR_ACQ_PIN_WRONG: 'The PIN is wrong.',
  POS_ERR_ACQ_PIN_TRIES_EXCEEDED: 'The card has reached its limit of wrong PIN tries.',
  POS_ERR_ACQ_DECLINED: 'The simulated issuer declined the transaction (the reason says why).',
  POS_ERR_ACQ_VELOCITY:
    'A velocity rule halted the transaction (transactions per terminal, or one card on many terminals).',
  POS_ERR_ACQ_INTERNAL: 'The acquirer host failed unexpectedly; the transaction is declined.',

  // Store faults (503; docs/backend.md "Failures")
  POS_ERR_STORE_FULL:
    'The store’s disk is full (SQLite SQLITE_FULL / ENOSPC, PostgreSQL disk_full): nothing was written; reads still work; retry once space is freed.',
  POS_ERR_STORE_READ_ONLY:
    'The store cannot be written (read-only file system or database): nothing was written; reads still work; retry once it is writable again.',
  // Start-up without a master key (docs/backend.md "Master key")
  POS_ERR_MASTER_KEY_REQUIRED:
    'pos-backend was started without --dev and without a master key; make one with `pos-backend master-key --out FILE` (outside the data directory) and pass it with --master-key-file FILE or POS_MASTER_KEY. The service does not start.',
  // The metrics scrape token (docs/monitoring.md "Protecting /metrics")
  POS_ERR_METRICS_UNAUTHORIZED:
    'GET /metrics needs the metrics scrape token (`Authorization: Bearer <token>`, the token of pos-backend --metrics-token-file); it is missing or wrong. Operator API tokens and sessions do not open /metrics.',
  // The admin token hand-over file (README, docs/backend.md)
  POS_ERR_ADMIN_TOKEN_UNWRITABLE:
    'DATA_DIR/admin-token could not be written (the errno says why, e.g. ENOSPC): the new admin token is revoked at once, since nobody has it. At first start the service still starts (run `pos-backend token rotate` once the directory is writable); `token rotate` revokes nothing else and exits 1.',
  POS_ERR_METRICS_TOKEN_INVALID:
    'The --metrics-token-file (or POS_METRICS_TOKEN_FILE) file cannot be read, or does not hold one line of 32 to 1024 visible ASCII characters (no spaces; the file at most 1 KiB); the service does not start.',
  // Terminal decommissioning (docs/fleet.md "Decommissioning")
  POS_ERR_TERMINAL_DECOMMISSIONED:
    'The terminal was decommissioned (retired for good by an operator): its device key is refused on every terminal route, it gets no ticket and no push connection, and no resume or lift brings it back. Enroll the replacement as a new terminal.',
} as const satisfies Record<`POS_ERR_${string}`, string>;

export type BackendErrorCode = keyof typeof BACKEND_ERRORS;
