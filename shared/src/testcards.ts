/**
 * The test-card catalogue: the cards the reader simulator can put in its slot, and what the back-end's
 * simulated issuer answers for each. One list, so the reader and the issuer cannot disagree.
 *
 * PANs come from shared/test/vectors/test-cards.json (public test PANs, all Luhn-valid). PINs: 1234
 * with 4111111111111111 is the ANSI X9.24-3-2017 supplement's pairing; every other PIN, every expiry
 * and every issuer outcome is a simulator convention (the vectors file suggests 1234 for all; some
 * cards here use other PINs so that a PIN block checked against the wrong card fails).
 *
 * DEVELOPMENT ONLY. Nothing here is a secret of a real card, and no production build may load the
 * development BDK below.
 */

export const TEST_CARD_SCHEMES = ['visa', 'mastercard', 'amex', 'discover', 'jcb'] as const;
export type TestCardScheme = (typeof TEST_CARD_SCHEMES)[number];

export const ISSUER_DECLINE_REASONS = ['do-not-honour', 'insufficient-funds', 'expired-card'] as const;
export type IssuerDeclineReason = (typeof ISSUER_DECLINE_REASONS)[number];

export type IssuerOutcome =
  { readonly outcome: 'approve' } | { readonly outcome: 'decline'; readonly reason: IssuerDeclineReason };

export interface TestCard {
  /** Stable name used by the simulator's CLI and control API (`visa-pin`, ...). */
  readonly name: string;
  readonly scheme: TestCardScheme;
  /** Full PAN. Test data only, but treat it as a PAN: never log it. */
  readonly pan: string;
  /** Expiry, YYMM. */
  readonly expiry: string;
  /** PAN sequence number, when the card has one. */
  readonly psn?: number;
  /** The test PIN the simulated issuer accepts. */
  readonly pin: string;
  /** Whether the card's CVM is online PIN (otherwise the transaction goes on without a PIN). */
  readonly onlinePin: boolean;
  /** What the simulated issuer answers (when the PIN, if any, is right). */
  readonly issuer: IssuerOutcome;
  /** What the card exercises, for a developer picking one. */
  readonly exercises: string;
}

export const TEST_CARDS: readonly TestCard[] = [
  {
    name: 'visa-pin',
    scheme: 'visa',
    pan: '4111111111111111',
    expiry: '3012',
    pin: '1234',
    onlinePin: true,
    issuer: { outcome: 'approve' },
    exercises: 'Visa with online PIN, approved: the happy path (the PAN and PIN of the X9.24-3 vectors)',
  },
  {
    name: 'mastercard-pin',
    scheme: 'mastercard',
    pan: '5555555555554444',
    expiry: '3106',
    psn: 1,
    pin: '5678',
    onlinePin: true,
    issuer: { outcome: 'approve' },
    exercises: 'Mastercard with online PIN, approved; has a PAN sequence number',
  },
  {
    name: 'mastercard-debit-pin',
    scheme: 'mastercard',
    pan: '5200828282828210',
    expiry: '2912',
    pin: '246810',
    onlinePin: true,
    issuer: { outcome: 'approve' },
    exercises: 'Mastercard debit with a 6-digit online PIN, approved',
  },
  {
    name: 'visa-no-pin',
    scheme: 'visa',
    pan: '4242424242424242',
    expiry: '3012',
    pin: '1234',
    onlinePin: false,
    issuer: { outcome: 'approve' },
    exercises: 'no CVM (no PIN): the reader returns card data and asks for no PIN-entry ticket',
  },
  {
    name: 'visa-expired',
    scheme: 'visa',
    pan: '4012888888881881',
    expiry: '2001',
    pin: '1234',
    onlinePin: true,
    issuer: { outcome: 'decline', reason: 'expired-card' },
    exercises:
      'expired card (01/2020): the reader reports it expired and takes no ticket and no PIN; the issuer would decline it',
  },
  {
    name: 'visa-declined',
    scheme: 'visa',
    pan: '4000000000000002',
    expiry: '3012',
    pin: '1234',
    onlinePin: true,
    issuer: { outcome: 'decline', reason: 'do-not-honour' },
    exercises: 'online PIN taken, then the issuer declines (do not honour)',
  },
  {
    name: 'visa-insufficient-funds',
    scheme: 'visa',
    pan: '4000000000009995',
    expiry: '3012',
    pin: '4321',
    onlinePin: true,
    issuer: { outcome: 'decline', reason: 'insufficient-funds' },
    exercises: 'online PIN taken, then the issuer declines (insufficient funds)',
  },
  {
    name: 'amex-pin',
    scheme: 'amex',
    pan: '378282246310005',
    expiry: '3012',
    pin: '1234',
    onlinePin: true,
    issuer: { outcome: 'approve' },
    exercises: 'a 15-digit PAN with online PIN (PAN field of format 4 with fewer than 16 digits)',
  },
];

/** The test card with this name, or undefined. */
export function findTestCard(name: string): TestCard | undefined {
  return TEST_CARDS.find((c) => c.name === name);
}

/** The test card with this PAN, or undefined (for the simulated issuer). */
export function findTestCardByPan(pan: string): TestCard | undefined {
  return TEST_CARDS.find((c) => c.pan === pan);
}

/**
 * DEVELOPMENT ONLY: the ANSI X9.24-3-2017 test BDK (AES-128). The reader simulator derives its initial
 * key from it on first start (and keeps only the DUKPT device state); the back-end's acquirer
 * simulation derives PIN and data keys from it. Never use it outside development and tests.
 */
export const DEV_BDK_HEX = 'FEDCBA9876543210F1F1F1F1F1F1F1F1';
/** DEVELOPMENT ONLY: the BDK ID of DEV_BDK_HEX: the first 4 bytes of every development reader's KSN. */
export const DEV_BDK_ID_HEX = '12345678';
