/** fast-check arbitraries for every reader message type (shared by the reader-* tests). */
import fc from 'fast-check';
import { CARD_SCHEMES, MAX_AMOUNT_MINOR, type ReaderMessage } from '../src/index';

const id = fc.integer({ min: 1, max: 0xffff_ffff });
const anyId = fc.integer({ min: 0, max: 0xffff_ffff });
const bytes = (min: number, max: number = min) => fc.uint8Array({ minLength: min, maxLength: max });
const point = bytes(64).map((b) => Uint8Array.of(0x04, ...b));
const code = fc.constantFrom(
  'POS_ERR_READER_STATE',
  'POS_ERR_TICKET_EXPIRED',
  'POS_ERR_READER_CARD_REMOVED',
  'POS_ERR_X',
);
const b64 = fc.string({ unit: fc.constantFrom(...'ABCxyz019_-'.split('')), minLength: 8, maxLength: 64 });
const maskedPan = fc
  .tuple(fc.integer({ min: 13, max: 19 }), fc.nat({ max: 999_999 }), fc.nat({ max: 9999 }))
  .map(([n, a, b]) => `${String(a).padStart(6, '0')}${'*'.repeat(n - 10)}${String(b).padStart(4, '0')}`);
const cardFields = fc.record({
  id: fc.constant(0 as const),
  pan: maskedPan,
  token: b64,
  scheme: fc.constantFrom(...CARD_SCHEMES),
  pinRequired: fc.boolean(),
  expired: fc.boolean(),
  nonce: bytes(16, 64),
  card: fc.record({
    ksn: bytes(12),
    iv: bytes(12),
    ct: bytes(17, 256),
  }),
});
const text = (max: number) => fc.string({ maxLength: max });

/** Any valid message. */
export const arbMessage: fc.Arbitrary<ReaderMessage> = fc.oneof(
  fc.record({
    t: fc.constant('offer' as const),
    id,
    versions: fc.array(fc.integer({ min: 1, max: 255 }), { minLength: 1, maxLength: 8 }),
  }),
  fc.record({ t: fc.constant('accept' as const), id, version: fc.integer({ min: 1, max: 255 }) }),
  fc.record({ t: fc.constant('hello' as const), id, epk: point, nonce: bytes(32) }),
  fc.record({
    t: fc.constant('reader-hello' as const),
    id,
    epk: point,
    nonce: bytes(32),
    certs: fc.array(bytes(64, 1000), { minLength: 1, maxLength: 3 }),
    sig: bytes(64),
  }),
  fc.record({
    t: fc.constant('terminal-auth' as const),
    id,
    dk: point,
    ticket: fc.string({ minLength: 1, maxLength: 2048 }),
    sig: bytes(64),
  }),
  fc.record({ t: fc.constant('rec' as const), n: fc.nat(), ct: bytes(17, 3000) }),
  fc.record({ t: fc.constant('finished' as const), id }),
  fc.record(
    { t: fc.constant('get-status' as const), id, challenge: bytes(1, 64) },
    { requiredKeys: ['t', 'id'] },
  ),
  fc.record({ t: fc.constant('status' as const), id, report: bytes(1, 512), sig: bytes(64) }),
  fc.record({
    t: fc.constant('start' as const),
    id,
    amount: fc.integer({ min: 1, max: MAX_AMOUNT_MINOR }),
    currency: fc.constantFrom('EUR', 'USD', 'CHF', 'GBP', 'JPY'),
  }),
  fc.record({ t: fc.constant('started' as const), id }),
  cardFields.map((f) => ({ t: 'card-inserted' as const, ...f })),
  cardFields.map((f) => ({ t: 'card-tapped' as const, ...f })),
  fc.record({ t: fc.constant('card-removed' as const), id: fc.constant(0 as const) }),
  fc.record({ t: fc.constant('ticket' as const), id, jws: fc.string({ minLength: 1, maxLength: 2048 }) }),
  fc.record({ t: fc.constant('ticket-ok' as const), id }),
  fc.record({ t: fc.constant('renew' as const), id, jws: fc.string({ minLength: 1, maxLength: 2048 }) }),
  fc.record({ t: fc.constant('renewed' as const), id, exp: fc.integer({ min: 0, max: 2 ** 40 }) }),
  fc.record({
    t: fc.constant('pin' as const),
    id,
    digits: fc.uint8Array({ min: 0, max: 9, minLength: 4, maxLength: 12 }),
  }),
  fc.record({ t: fc.constant('pin-block' as const), id, block: bytes(16), ksn: bytes(12) }),
  fc.record({ t: fc.constant('abort' as const), id }),
  fc.record({ t: fc.constant('aborted' as const), id: anyId, code }, { requiredKeys: ['t', 'id'] }),
  fc.record({ t: fc.constant('tamper' as const), id: fc.constant(0 as const) }),
  fc.record(
    { t: fc.constant('close' as const), id: fc.constant(0 as const), code },
    { requiredKeys: ['t', 'id'] },
  ),
  fc.record({ t: fc.constant('error' as const), id: anyId, code, detail: text(200) }),
);
