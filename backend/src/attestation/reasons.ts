/**
 * Reasons a merchant can read: a short stable code and one plain sentence. The codes of the verifiers
 * are the POS_ERR_ATTEST_* codes of the back-end registry; policy rules bring their own.
 */
export const REASON_TEXTS: Readonly<Record<string, string>> = {
  POS_ERR_EVIDENCE_MALFORMED: 'The terminal sent a malformed attestation; restart the app.',
  POS_ERR_EVIDENCE_TOO_LARGE: 'The terminal sent an attestation that is too large; restart the app.',
  POS_ERR_EVIDENCE_ALGORITHM: 'The terminal signed its attestation the wrong way; update the app.',
  POS_ERR_EVIDENCE_CLAIMS:
    'The terminal sent an attestation this service does not understand; update the app.',
  POS_ERR_ATTEST_SIGNATURE: 'The attestation was not signed by this terminal’s key.',
  POS_ERR_ATTEST_KEY_MISMATCH: 'The attestation was signed by a key this terminal did not enroll.',
  POS_ERR_ATTEST_JWK_MISSING: 'The enrollment attestation did not include the terminal’s key.',
  POS_ERR_ATTEST_JWK_UNEXPECTED: 'The attestation carried a key where none belongs.',
  POS_ERR_ATTEST_SUBJECT: 'The attestation came from another terminal.',
  POS_ERR_ATTEST_CHALLENGE_UNKNOWN:
    'The attestation answered a challenge this service never gave; try again.',
  POS_ERR_ATTEST_CHALLENGE_MISMATCH: 'The attestation answered another challenge; try again.',
  POS_ERR_ATTEST_CHALLENGE_USED: 'The attestation was a replay of an earlier one.',
  POS_ERR_ATTEST_CHALLENGE_EXPIRED: 'The attestation came too late; try again.',
  POS_ERR_ATTEST_CHALLENGE_TERMINAL: 'The attestation answered a challenge given to another terminal.',
  POS_ERR_ATTEST_COUNTER_REGRESSION:
    'The attestation counter went backwards: the terminal’s key may be in use on another machine.',
  POS_ERR_ATTEST_CLOCK_SKEW: 'The computer’s clock is wrong; set the date and time automatically.',
  POS_ERR_ATTEST_PURPOSE: 'The terminal attested for another step than the one it is doing.',
  POS_ERR_ATTEST_NONCE: 'The attestation is not bound to this card transaction.',
  POS_ERR_ATTEST_READER_ABSENT: 'No card reader status was included; connect the card reader.',
  POS_ERR_ATTEST_READER_UNVERIFIABLE: 'The card reader could not be checked by this service.',
  POS_ERR_ATTEST_READER_UNPAIRED: 'No card reader is paired with this terminal yet.',
  POS_ERR_ATTEST_READER_SIGNATURE: 'The card reader is not a genuine, certified reader.',
  POS_ERR_ATTEST_READER_MISMATCH: 'The card reader is not the one paired with this terminal.',
  POS_ERR_ATTEST_READER_TAMPERED: 'The card reader reports tampering; stop using it and contact support.',
  POS_ERR_ATTEST_READER_STALE: 'The card reader’s status is out of date; reconnect the reader.',
  POS_ERR_ATTEST_READER_REPLAYED: 'The card reader’s status was sent before; try the payment again.',
  POS_ERR_ATTEST_RELEASE_UNKNOWN: 'This version of the app is not approved; update the app.',
  POS_ERR_ATTEST_CODE_HASH: 'The app’s code has been modified; reinstall the app.',
  POS_ERR_ATTEST_SHELL_NOT_ALLOWED:
    'This app version may not run in this kind of window (browser, desktop or headless).',
  POS_ERR_ATTEST_FUSES: 'The app’s security settings have been changed; reinstall the app.',
  POS_ERR_ATTEST_EXECUTABLE_HASH: 'The app’s program file has been modified; reinstall the app.',
  POS_ERR_ATTEST_MEASUREMENT_UNKNOWN: 'The app could not check some of its security settings.',
  POS_ERR_ATTEST_RUNTIME_TAMPERED:
    'A debugger or developer tool is attached to the app, or it was started with unsafe settings.',
  POS_ERR_ATTEST_ENVIRONMENT_RISK:
    'The computer runs in a virtual machine, a remote session or without screen-capture protection.',
  POS_ERR_ATTEST_VERIFIER_ERROR:
    'A check failed unexpectedly, so PIN entry is stopped until support looks into it.',
  POS_ERR_ATTEST_POLICY_ERROR: 'The attestation policy failed unexpectedly, so PIN entry is stopped.',
  POS_ERR_ATTEST_INCOMPLETE: 'Not every required check passed, so PIN entry stays off for now.',
};

export function reasonText(code: string): string {
  return REASON_TEXTS[code] ?? 'A check did not pass.';
}
