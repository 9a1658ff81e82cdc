/**
 * The simulated issuer: the test-card catalogue (PAN, expiry, PIN, outcome). DEVELOPMENT ONLY.
 * The catalogue and the development BDK are @pos/shared's `testcards` (shared with the reader
 * simulator, so the two cannot disagree).
 */
import { DEV_BDK_HEX, DEV_BDK_ID_HEX, findTestCardByPan, hex, type IssuerOutcome } from '@pos/shared';

export interface IssuerCard {
  readonly pin: string;
  readonly expiry: string;
  readonly onlinePin: boolean;
  readonly outcome: IssuerOutcome;
}

export interface SimulatedIssuer {
  /** The issuer's record of a card, or undefined for a card it does not know. */
  lookup(pan: string): IssuerCard | undefined;
}

/** The issuer over the shared test-card catalogue. */
export const TEST_CARD_ISSUER: SimulatedIssuer = {
  lookup(pan) {
    const card = findTestCardByPan(pan);
    if (card === undefined) return undefined;
    return { pin: card.pin, expiry: card.expiry, onlinePin: card.onlinePin, outcome: card.issuer };
  },
};

/** DEVELOPMENT ONLY: the BDK store with the ANSI X9.24-3 test BDK under its id. */
export function developmentBdks(): ReadonlyMap<string, Uint8Array> {
  return new Map([[DEV_BDK_ID_HEX.toUpperCase(), hex(DEV_BDK_HEX)]]);
}
