/**
 * The acquirer-host simulation: what the acquirer's HSM and switch do with a transaction. Holds the
 * BDKs (development key store), derives the AES DUKPT data and PIN keys from the KSN, decrypts the
 * card data and the ISO 9564-1 format 4 PIN block, checks the PIN against the simulated issuer in
 * constant time, applies the velocity rules, and approves or declines with a code and a reason.
 * Every key and PIN buffer is wiped; no PAN or PIN leaves this module (the card is named by a token).
 */
import { createHmac, randomBytes as nodeRandomBytes, randomInt } from 'node:crypto';
import {
  aesDukptWorkingKey,
  constantTimeEqual,
  decodePinBlock,
  decryptCardData,
  parseAesKsn,
  pinDigitsFromText,
  toBase64url,
  toHex,
  wipe,
  type AesKsn,
  type EncryptedCardData,
  type Pan,
} from '@pos/shared';
import { TEST_CARD_ISSUER, type SimulatedIssuer } from './issuer';
import {
  DEFAULT_VELOCITY_RULES,
  VELOCITY_COUNTERS,
  judge,
  type VelocityAction,
  type VelocityRules,
  type VelocityStore,
} from './velocity';

export * from './velocity';
export * from './issuer';
export type { EncryptedCardData };

export interface AuthorizationRequest {
  terminalId: string;
  /** Minor units (cents). */
  amount: number;
  /** ISO 4217 alpha code. */
  currency: string;
  /** AES DUKPT KSN, 12 bytes: BDK id (4) ‖ derivation id (4) ‖ counter (4). */
  ksn: Uint8Array;
  cardData: EncryptedCardData;
  /** Format 4 PIN block, 16 bytes, under the PIN key of the same KSN. */
  pinBlock?: Uint8Array;
  /** ms. */
  now: number;
}

export type AuthorizationResult =
  | { approved: true; authCode: string; cardToken: string; velocity?: { action: 'warn'; rule: string } }
  | {
      approved: false;
      code: string;
      reason: string;
      cardToken?: string;
      velocity?: { action: 'warn' | 'halt'; rule: string };
      /** Card-data failures only: the internal cause, for the audit and log; never sent to the terminal. */
      internal?: CardDataFailure;
    };

export interface AcquirerHost {
  authorize(req: AuthorizationRequest): Promise<AuthorizationResult>;
}

export interface AcquirerHostOptions {
  /** BDK id (8 hex digits, the first 4 bytes of the KSN) → BDK. */
  bdks: ReadonlyMap<string, Uint8Array>;
  velocity: VelocityStore;
  rules?: VelocityRules;
  issuer?: SimulatedIssuer;
  /** Key of the card token (HMAC-SHA-256 of the PAN). Default: random per host. Give a stable one to keep velocity across restarts. */
  tokenKey?: Uint8Array;
}

/** The largest amount accepted, minor units. */
export const MAX_AMOUNT = 100_000_000;

function decline(
  code: string,
  reason: string,
  cardToken?: string,
  velocity?: VelocityAction,
): AuthorizationResult {
  return {
    approved: false,
    code,
    reason,
    ...(cardToken === undefined ? {} : { cardToken }),
    ...(velocity === undefined ? {} : { velocity: { action: velocity.action, rule: velocity.rule } }),
  };
}

/** The one answer to every card-data failure (see `authorize`). */
export const CARD_DATA_DECLINE = {
  code: 'POS_ERR_ACQ_CARD_DATA',
  reason: 'The card cannot be read; try again or use another card.',
} as const;

/**
 * Why the card data was refused, for the host's own audit and logs only (never sent to the terminal,
 * never a PAN): the key could not be derived, the data did not authenticate or held no valid record,
 * or the issuer does not know the card.
 */
export type CardDataFailure = 'card-data-key' | 'card-data-invalid' | 'card-unknown';

function cardDataDecline(internal: CardDataFailure): AuthorizationResult {
  return { approved: false, code: CARD_DATA_DECLINE.code, reason: CARD_DATA_DECLINE.reason, internal };
}

function expired(expiry: string, now: number): boolean {
  const yy = Number(expiry.slice(0, 2));
  const mm = Number(expiry.slice(2, 4));
  const d = new Date(now);
  const year = d.getUTCFullYear() % 100;
  const month = d.getUTCMonth() + 1;
  return yy < year || (yy === year && mm < month);
}

export function createAcquirerHost(opts: AcquirerHostOptions): AcquirerHost {
  const rules = opts.rules ?? DEFAULT_VELOCITY_RULES;
  const issuer = opts.issuer ?? TEST_CARD_ISSUER;
  const tokenKey = opts.tokenKey ?? new Uint8Array(nodeRandomBytes(32));
  const bdks = new Map([...opts.bdks].map(([id, key]) => [id.toUpperCase(), key] as const));
  const store = opts.velocity;

  const tokenOf = (pan: string): string =>
    `ct_${toBase64url(new Uint8Array(createHmac('sha256', tokenKey).update(pan).digest()).subarray(0, 16))}`;

  async function authorize(req: AuthorizationRequest): Promise<AuthorizationResult> {
    if (
      typeof req.terminalId !== 'string' ||
      req.terminalId.length === 0 ||
      !Number.isInteger(req.amount) ||
      req.amount <= 0 ||
      req.amount > MAX_AMOUNT ||
      !/^[A-Z]{3}$/.test(req.currency)
    ) {
      return decline('POS_ERR_ACQ_REQUEST_INVALID', 'The amount or currency is not acceptable.');
    }
    // Transactions per terminal per minute: counted before anything else, declines included.
    const rate = await store.hit(
      VELOCITY_COUNTERS.terminalRate,
      req.terminalId,
      req.now,
      rules.terminalRate.windowMs,
    );
    const rateAction = judge('terminalRate', rules.terminalRate, rate);
    if (rateAction?.action === 'halt') {
      return decline(
        'POS_ERR_ACQ_VELOCITY',
        'Too many transactions from this terminal in a minute.',
        undefined,
        rateAction,
      );
    }

    const ksn = parseAesKsn(req.ksn);
    if (!ksn.ok)
      return decline('POS_ERR_ACQ_KSN_INVALID', 'The key serial number is not a valid AES DUKPT KSN.');
    const bdk = bdks.get(toHex(req.ksn.subarray(0, 4)));
    if (bdk === undefined)
      return decline(
        'POS_ERR_ACQ_BDK_UNKNOWN',
        'The reader is loaded with a key this acquirer does not hold.',
      );
    const aesKsn = req.ksn as AesKsn;

    // Card data: whatever is wrong with it (does not authenticate under the data key of this KSN, a
    // malformed record, a card the issuer does not know), the answer is the same code and reason, with
    // no card token, before anything else looks at the card: no oracle for a compromised terminal.
    const dataKey = aesDukptWorkingKey({ bdk, ksn: aesKsn, usage: 'data-encryption', keyType: 'aes128' });
    if (!dataKey.ok) return cardDataDecline('card-data-key');
    const card = decryptCardData(dataKey.key, req.cardData, aesKsn);
    wipe(dataKey.key);
    if (!card.ok) return cardDataDecline('card-data-invalid');
    const pan = card.card.pan;
    const record = issuer.lookup(pan);
    if (record === undefined) return cardDataDecline('card-unknown');
    const cardToken = tokenOf(pan);

    // One card on many terminals.
    const terminals = await store.addDistinct(
      VELOCITY_COUNTERS.cardTerminals,
      cardToken,
      req.terminalId,
      req.now,
      rules.cardTerminals.windowMs,
    );
    const spreadAction = judge('cardTerminals', rules.cardTerminals, terminals);
    if (spreadAction?.action === 'halt') {
      return decline(
        'POS_ERR_ACQ_VELOCITY',
        'This card was tried on too many terminals.',
        cardToken,
        spreadAction,
      );
    }

    if (expired(card.card.exp, req.now) || expired(record.expiry, req.now)) {
      return decline('POS_ERR_ACQ_CARD_EXPIRED', 'The card has expired.', cardToken);
    }

    // Wrong PIN tries: a card at its limit is refused before its PIN is even looked at.
    const tries = await store.count(VELOCITY_COUNTERS.wrongPin, cardToken, req.now, rules.wrongPin.windowMs);
    const triesAction = judge('wrongPin', rules.wrongPin, tries);
    if (triesAction?.action === 'halt') {
      return decline(
        'POS_ERR_ACQ_PIN_TRIES_EXCEEDED',
        'Too many wrong PIN tries for this card.',
        cardToken,
        triesAction,
      );
    }

    if (record.onlinePin && req.pinBlock === undefined) {
      return decline('POS_ERR_ACQ_PIN_REQUIRED', 'This card needs its PIN.', cardToken);
    }
    let warn: VelocityAction | undefined = rateAction ?? spreadAction ?? triesAction;
    if (req.pinBlock !== undefined) {
      const pinKey = aesDukptWorkingKey({ bdk, ksn: aesKsn, usage: 'pin-encryption', keyType: 'aes128' });
      if (!pinKey.ok)
        return decline('POS_ERR_ACQ_PIN_BLOCK_INVALID', 'The PIN key cannot be derived.', cardToken);
      const decoded = decodePinBlock({ format: 4, block: req.pinBlock, pan: pan as Pan, key: pinKey.key });
      wipe(pinKey.key);
      if (!decoded.ok) {
        return decline(
          'POS_ERR_ACQ_PIN_BLOCK_INVALID',
          'The PIN block does not decrypt to a format 4 PIN block for this card.',
          cardToken,
        );
      }
      const expected = pinDigitsFromText(record.pin);
      const right = expected.ok && constantTimeEqual(decoded.pin, expected.pin);
      wipe(decoded.pin, expected.ok ? expected.pin : undefined);
      if (!right) {
        const wrong = await store.hit(
          VELOCITY_COUNTERS.wrongPin,
          cardToken,
          req.now,
          rules.wrongPin.windowMs,
        );
        const action = judge('wrongPin', rules.wrongPin, wrong);
        return decline('POS_ERR_ACQ_PIN_WRONG', 'The PIN is wrong.', cardToken, action);
      }
      await store.reset(VELOCITY_COUNTERS.wrongPin, cardToken);
      if (warn?.rule === 'wrongPin') warn = rateAction ?? spreadAction;
    }

    if (record.outcome.outcome === 'decline') {
      const reasons: Record<string, string> = {
        'do-not-honour': 'The issuer declined the transaction (do not honour).',
        'insufficient-funds': 'The issuer declined the transaction (insufficient funds).',
        'expired-card': 'The issuer declined the transaction (expired card).',
      };
      return decline(
        'POS_ERR_ACQ_DECLINED',
        reasons[record.outcome.reason] ?? 'The issuer declined the transaction.',
        cardToken,
        warn,
      );
    }
    const authCode = String(randomInt(0, 1_000_000)).padStart(6, '0');
    return {
      approved: true,
      authCode,
      cardToken,
      ...(warn === undefined ? {} : { velocity: { action: 'warn' as const, rule: warn.rule } }),
    };
  }

  return {
    authorize: async (req) => {
      try {
        return await authorize(req);
      } catch {
        return decline('POS_ERR_ACQ_INTERNAL', 'The acquirer host failed; the transaction is declined.');
      }
    },
  };
}
