/**
 * Ticket-signing keys: ES256 (P-256) key pairs made and used with node:crypto (native, the hot path),
 * published as a JWKS with key ids (RFC 7638 thumbprints). Private keys rest in the store encrypted
 * with AES-256-GCM under the master key; the key id is the GCM additional data, so a ciphertext moved
 * to another key's row does not open.
 *
 * Rotation makes a new active key and retires the old one; a retired key stays in the JWKS until its
 * last ticket has expired (plus clock skew), so every ticket it signed still verifies.
 */
import {
  createCipheriv,
  createDecipheriv,
  createHmac,
  createPrivateKey,
  generateKeyPairSync,
  randomBytes,
  sign as nodeSign,
  type KeyObject,
} from 'node:crypto';
import {
  constantTimeEqual,
  err,
  jwkThumbprint,
  ok,
  parseBase64url,
  publicKeyFromJwk,
  toBase64url,
  type P256Jwk,
  type Result,
  type TrustedTicketKey,
} from '@pos/shared';
import type { BackendErrorCode } from '../errors';
import type { Bus } from '../fleet/bus';
import type { TicketSigner } from '../server/domain';
import type { SigningKeyRow, Store } from '../store/types';

export const MASTER_KEY_BYTES = 32;
const GCM_IV_BYTES = 12;
const CHECK_LABEL = 'pos-backend master key check v1';
/** The store meta key holding the master key's check value (KeyRing.open; pos-backend --dev reads it). */
export const MASTER_KEY_CHECK_META = 'master_key_check';

/** Parses a master key given as base64url text (env `POS_MASTER_KEY` or the key file). */
export function parseMasterKey(text: string): Result<{ key: Uint8Array }, BackendErrorCode> {
  const parsed = parseBase64url(text.trim());
  if (!parsed.ok || parsed.bytes.length !== MASTER_KEY_BYTES) {
    return err('POS_ERR_MASTER_KEY_INVALID', 'the master key must be 32 bytes of unpadded base64url');
  }
  return ok({ key: parsed.bytes });
}

export function generateMasterKeyText(): string {
  return toBase64url(randomBytes(MASTER_KEY_BYTES));
}

/** AES-256-GCM: base64url(iv).base64url(ciphertext).base64url(tag). `aad` binds the ciphertext to its row. */
export function seal(master: Uint8Array, plain: Uint8Array, aad: string): string {
  const iv = randomBytes(GCM_IV_BYTES);
  const cipher = createCipheriv('aes-256-gcm', master, iv);
  cipher.setAAD(Buffer.from(aad, 'utf8'));
  const ct = Buffer.concat([cipher.update(plain), cipher.final()]);
  return `${toBase64url(iv)}.${toBase64url(ct)}.${toBase64url(cipher.getAuthTag())}`;
}

export function open(
  master: Uint8Array,
  sealed: string,
  aad: string,
): Result<{ plain: Buffer }, BackendErrorCode> {
  const parts = sealed.split('.');
  const [iv, ct, tag] = parts.map((p) => parseBase64url(p));
  if (
    parts.length !== 3 ||
    !iv?.ok ||
    !ct?.ok ||
    !tag?.ok ||
    iv.bytes.length !== GCM_IV_BYTES ||
    tag.bytes.length !== 16
  ) {
    return err('POS_ERR_KEY_DECRYPT', 'the sealed key is malformed');
  }
  try {
    const d = createDecipheriv('aes-256-gcm', master, iv.bytes);
    d.setAAD(Buffer.from(aad, 'utf8'));
    d.setAuthTag(tag.bytes);
    return ok({ plain: Buffer.concat([d.update(ct.bytes), d.final()]) });
  } catch {
    return err('POS_ERR_KEY_DECRYPT', 'the sealed key does not open under this master key');
  }
}

/** A check value of the master key, stored so a wrong key is refused at start, not at first use. */
export function masterKeyCheck(master: Uint8Array): string {
  return createHmac('sha256', master).update(CHECK_LABEL).digest('base64url');
}

/** A purpose-bound key derived from the master key (HMAC-SHA-256 of the label). */
export function deriveSubkey(master: Uint8Array, label: string): Uint8Array {
  return new Uint8Array(createHmac('sha256', master).update(`pos-backend subkey: ${label}`).digest());
}

export type PublicJwk = P256Jwk & { kid: string; alg: 'ES256'; use: 'sig' };

interface LoadedKey {
  readonly row: SigningKeyRow;
  readonly jwk: PublicJwk;
  readonly publicKey: Uint8Array;
  readonly privateKey: KeyObject | undefined;
}

export interface KeyRingOptions {
  /** Longest ticket lifetime in seconds: how long a retired key must stay published at least. */
  readonly ticketLifetimeS: number;
  /** Clock skew allowed by verifiers, seconds (default 60). */
  readonly skewS?: number;
}

/** At most one reload for an unknown ticket key id per this many milliseconds. */
export const UNKNOWN_KID_RELOAD_INTERVAL_MS = 5_000;

export class KeyRing {
  private keys: LoadedKey[] = [];
  private bus: Bus | undefined;
  /** The key of the MAC'd challenges (derived from the master key: every process has the same). */
  private readonly challengeKey: Uint8Array;
  /** The key of the login throttle's username tags (derived from the master key, as above). */
  private readonly loginThrottleKey: Uint8Array;
  private lastUnknownKidReload = Number.NEGATIVE_INFINITY;

  private constructor(
    private readonly store: Store,
    private readonly master: Uint8Array,
    private readonly options: KeyRingOptions,
  ) {
    this.challengeKey = deriveSubkey(master, 'challenge-mac v1');
    this.loginThrottleKey = deriveSubkey(master, 'login-throttle v1');
  }

  /** HMAC-SHA-256 under the challenge key (MAC'd challenges; the key itself never leaves the ring). */
  challengeMac(data: Uint8Array): Buffer {
    return createHmac('sha256', this.challengeKey).update(data).digest();
  }

  /** HMAC-SHA-256 under the login throttle's key (usernames in throttle keys; the key never leaves the ring). */
  loginThrottleMac(data: Uint8Array): Buffer {
    return createHmac('sha256', this.loginThrottleKey).update(data).digest();
  }

  /**
   * Checks the master key against the store (first use records its check value), loads every key and
   * makes the first active key when there is none.
   */
  static async open(
    store: Store,
    master: Uint8Array,
    now: number,
    options: KeyRingOptions,
  ): Promise<Result<{ ring: KeyRing }, BackendErrorCode>> {
    const check = masterKeyCheck(master);
    await store.initMeta(MASTER_KEY_CHECK_META, check);
    const stored = (await store.getMeta(MASTER_KEY_CHECK_META)) ?? '';
    if (!constantTimeEqual(Buffer.from(stored), Buffer.from(check))) {
      return err('POS_ERR_MASTER_KEY_INVALID', 'this master key is not the one the store was created with');
    }
    const ring = new KeyRing(store, master, options);
    const loaded = await ring.reload();
    if (!loaded.ok) return loaded;
    if (ring.active() === undefined) await ring.create(now);
    return ok({ ring });
  }

  /**
   * Several processes on one store: a rotation in one is published on the bus (`{type:'keys'}`) and
   * every process (this one included) reloads its ring from the store; so does a reconnect of the bus
   * (a message may have been missed). Returns the unsubscribe function.
   */
  attachBus(bus: Bus): () => void {
    this.bus = bus;
    const reload = (): void => {
      void this.reloadFromStore();
    };
    const off = bus.subscribe((message) => {
      if (message.type === 'keys') reload();
    });
    const offReconnect = bus.onReconnect?.(reload);
    return () => {
      off();
      offReconnect?.();
      if (this.bus === bus) this.bus = undefined;
    };
  }

  /**
   * Reloads every key from the store (another process rotated). On failure the loaded keys stay as
   * they were; resolves whether the reload succeeded. Never rejects.
   */
  async reloadFromStore(): Promise<boolean> {
    try {
      return (await this.reload()).ok;
    } catch {
      return false;
    }
  }

  /**
   * The fallback for a missed bus message: a ticket names a key id this ring does not know. Reloads
   * at most once per UNKNOWN_KID_RELOAD_INTERVAL_MS (so tickets with made-up key ids cannot make every
   * request read the store); resolves true when the key is known afterwards.
   */
  async reloadForUnknownKid(kid: string, now: number): Promise<boolean> {
    if (this.keys.some((k) => k.row.kid === kid)) return true;
    if (now - this.lastUnknownKidReload < UNKNOWN_KID_RELOAD_INTERVAL_MS) return false;
    this.lastUnknownKidReload = now;
    await this.reloadFromStore();
    return this.keys.some((k) => k.row.kid === kid);
  }

  private async reload(): Promise<Result<object, BackendErrorCode>> {
    const rows = await this.store.listSigningKeys();
    const keys: LoadedKey[] = [];
    for (const row of rows) {
      const pub = publicKeyFromJwk(JSON.parse(row.publicJwk) as unknown);
      if (!pub.ok) return err('POS_ERR_KEY_DECRYPT', `stored public key ${row.kid} is invalid`);
      let privateKey: KeyObject | undefined;
      if (row.state === 'active') {
        const opened = open(this.master, row.encryptedPrivateKey, row.kid);
        if (!opened.ok) return opened;
        privateKey = createPrivateKey({ key: opened.plain, format: 'der', type: 'pkcs8' });
        opened.plain.fill(0);
      }
      keys.push({
        row,
        jwk: { ...pub.jwk, kid: row.kid, alg: 'ES256', use: 'sig' },
        publicKey: pub.publicKey,
        privateKey,
      });
    }
    this.keys = keys;
    return ok({});
  }

  private async create(now: number): Promise<string> {
    const { publicKey, privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    const jwk = publicKey.export({ format: 'jwk' }) as { kty: 'EC'; crv: 'P-256'; x: string; y: string };
    const kid = jwkThumbprint(jwk);
    const pkcs8 = privateKey.export({ format: 'der', type: 'pkcs8' });
    const sealed = seal(this.master, pkcs8, kid);
    pkcs8.fill(0);
    await this.store.putSigningKey({
      kid,
      publicJwk: JSON.stringify({ kty: jwk.kty, crv: jwk.crv, x: jwk.x, y: jwk.y }),
      encryptedPrivateKey: sealed,
      state: 'active',
      createdAt: now,
      retiredAt: null,
      verifyUntil: null,
    });
    await this.reload();
    return kid;
  }

  private active(): LoadedKey | undefined {
    return this.keys.find((k) => k.row.state === 'active' && k.privateKey !== undefined);
  }

  /** True when an active signing key is loaded (for /readyz). */
  ready(): boolean {
    return this.active() !== undefined;
  }

  /** The signer of the active key, on node:crypto (IEEE P1363 r||s, as JWS wants). */
  signer(): TicketSigner {
    const k = this.active();
    if (k?.privateKey === undefined) throw new Error('no active ticket-signing key');
    const key = k.privateKey;
    return {
      kid: k.row.kid,
      sign: (input: Uint8Array): Uint8Array => nodeSign('sha256', input, { key, dsaEncoding: 'ieee-p1363' }),
    };
  }

  private published(now: number): LoadedKey[] {
    return this.keys.filter((k) => k.row.state === 'active' || (k.row.verifyUntil ?? 0) > now);
  }

  /** The JWKS: the active key and every retired key whose tickets may still be valid. */
  jwks(now: number): { keys: PublicJwk[] } {
    return { keys: this.published(now).map((k) => k.jwk) };
  }

  /** The same keys for @pos/shared `verifyTicket`. */
  trustedKeys(now: number): TrustedTicketKey[] {
    return this.published(now).map((k) => ({ kid: k.row.kid, publicKey: k.publicKey }));
  }

  /** Every key ever used, retired or not: audit checkpoints stay verifiable. */
  allKeys(): TrustedTicketKey[] {
    return this.keys.map((k) => ({ kid: k.row.kid, publicKey: k.publicKey }));
  }

  /** Makes a new active key; the old one is retired and stays published until its tickets expire. */
  async rotate(now: number): Promise<{ kid: string; retired: string[] }> {
    const skewMs = (this.options.skewS ?? 60) * 1000;
    const retired: string[] = [];
    for (const k of this.keys.filter((x) => x.row.state === 'active')) {
      const last = (await this.store.lastTicketExpiry(k.row.kid)) ?? now;
      const verifyUntil = Math.max(last, now + this.options.ticketLifetimeS * 1000) + skewMs;
      await this.store.retireSigningKey(k.row.kid, now, verifyUntil);
      retired.push(k.row.kid);
    }
    const kid = await this.create(now);
    // The other processes on this store reload (delivery to this one reloads again: harmless).
    if (this.bus !== undefined) await this.bus.publish({ type: 'keys' }).catch(() => undefined);
    return { kid, retired };
  }
}
