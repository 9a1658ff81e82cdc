/**
 * The handshake (docs/reader-protocol.md, "Handshake"): version negotiation, then a mutually
 * authenticated ephemeral ECDH P-256 exchange, in the manner of TLS 1.3 / SIGMA.
 *
 *   T→R offer          { versions }
 *   R→T accept         { version }
 *   T→R hello          { epk_T, nonce_T (32) }
 *   R→T reader-hello   { epk_R, nonce_R (32), certs (leaf first), sig_R }
 *   T→R terminal-auth  { dk (device key), ticket (session ticket naming dk), sig_T }
 *   R→T rec(finished)  first record of the channel: key confirmation
 *
 * Transcript: TH(x) = SHA-256 of the concatenated encodings of messages up to x. A message that carries
 * `sig` enters the hash for its own signature without `sig`; everything after sees it whole.
 *
 *   sig_R = ECDSA-P256-SHA256(reader identity key, "pos-reader/1 reader signature" || 00 || TH(reader-hello without sig))
 *   sig_T = ECDSA-P256-SHA256(terminal device key, "pos-reader/1 terminal signature" || 00 || TH(terminal-auth without sig))
 *   PRK   = HKDF-Extract(salt = TH(terminal-auth), IKM = x-coordinate of ECDH(eph_T, eph_R))
 *   keys  = HKDF-Expand(PRK, "pos-reader/1 t2r key" | "t2r iv" | "r2t key" | "r2t iv" | "session id", 32|12|32|12|16)
 *
 * The reader proves its identity by signing both nonces and both ephemeral keys under a key its
 * manufacturer certified; the terminal proves possession of the device key the back-end's session
 * ticket names (cnf.jkt) for this reader (rsn). Both signatures cover the whole transcript (versions
 * included, so a downgrade is detected), and the keys depend on it.
 */
import { p256 } from '@noble/curves/nist.js';
import { extract, expand } from '@noble/hashes/hkdf.js';
import { sha256 } from '@noble/hashes/sha2.js';
import { utf8ToBytes } from '@noble/hashes/utils.js';
import { concatBytes, randomBytes, wipe } from '../bytes';
import type { PosErrorCode } from '../errors';
import { err, type Err, type Result } from '../result';
import {
  jwkFromPublicKey,
  jwkThumbprint,
  verifyTicket,
  type TicketClaims,
  type TrustedTicketKey,
} from '../ticket';
import { SecureChannel, type ChannelRole } from './channel';
import {
  MAX_MESSAGE_BYTES,
  READER_PROTOCOL_VERSIONS,
  encodeMessage,
  type AcceptMessage,
  type ErrorMessage,
  type HelloMessage,
  type OfferMessage,
  type ReaderHelloMessage,
  type ReaderMessage,
  type TerminalAuthMessage,
} from './messages';
import { encodeNoResidue } from './cbor';
import { verifyReaderCertChain } from './x509';

// ---------------------------------------------------------------------------------------------------
// Keys and signatures

/** Something that signs with a P-256 key: ECDSA over SHA-256(message), raw r || s (64 bytes). */
export interface P256Signer {
  /** Uncompressed SEC1 public key (65 bytes). */
  readonly publicKey: Uint8Array;
  sign(message: Uint8Array): Uint8Array | Promise<Uint8Array>;
}

/** A signer over a raw 32-byte P-256 secret key (RFC 6979 deterministic signatures). */
export function p256Signer(secretKey: Uint8Array): P256Signer {
  return {
    publicKey: p256.getPublicKey(secretKey, false),
    sign: (message) => p256.sign(message, secretKey, { prehash: true }),
  };
}

/** Verifies an ECDSA P-256 SHA-256 raw signature; accepts high S (WebCrypto and HSMs produce it). */
export function verifyP256(signature: Uint8Array, message: Uint8Array, publicKey: Uint8Array): boolean {
  try {
    return p256.verify(signature, message, publicKey, { prehash: true, lowS: false });
  } catch {
    return false;
  }
}

export const HANDSHAKE_LABELS = {
  readerSignature: 'pos-reader/1 reader signature',
  terminalSignature: 'pos-reader/1 terminal signature',
  t2rKey: 'pos-reader/1 t2r key',
  t2rIv: 'pos-reader/1 t2r iv',
  r2tKey: 'pos-reader/1 r2t key',
  r2tIv: 'pos-reader/1 r2t iv',
  sessionId: 'pos-reader/1 session id',
} as const;

/** The bytes a handshake signature covers: label || 00 || transcript hash. */
export function signatureInput(label: string, transcriptHash: Uint8Array): Uint8Array {
  return concatBytes(utf8ToBytes(label), Uint8Array.of(0), transcriptHash);
}

/** The transcript: encodings of the handshake messages so far. */
class Transcript {
  private readonly parts: Uint8Array[] = [];
  add(msg: ReaderMessage): void {
    this.parts.push(encodeMessage(msg));
  }
  /**
   * SHA-256 of everything so far, plus `extra`: a message without its `sig`, which is not a valid
   * message on its own, so it is encoded (deterministically) without the schema check.
   */
  hash(extra?: object): Uint8Array {
    return sha256(
      concatBytes(...this.parts, ...(extra === undefined ? [] : [encodeNoResidue(extra, MAX_MESSAGE_BYTES)])),
    );
  }
}

function withoutSig<T extends { sig: Uint8Array }>(m: T): Omit<T, 'sig'> {
  const { sig: _sig, ...rest } = m;
  return rest;
}

/** Session keys from the ECDH secret and the transcript hash (see the file comment). */
export function deriveSessionKeys(
  sharedX: Uint8Array,
  transcriptHash: Uint8Array,
): { t2rKey: Uint8Array; t2rIv: Uint8Array; r2tKey: Uint8Array; r2tIv: Uint8Array; sessionId: Uint8Array } {
  const prk = extract(sha256, sharedX, transcriptHash);
  const x = (label: string, n: number) => expand(sha256, prk, utf8ToBytes(label), n);
  const out = {
    t2rKey: x(HANDSHAKE_LABELS.t2rKey, 32),
    t2rIv: x(HANDSHAKE_LABELS.t2rIv, 12),
    r2tKey: x(HANDSHAKE_LABELS.r2tKey, 32),
    r2tIv: x(HANDSHAKE_LABELS.r2tIv, 12),
    sessionId: x(HANDSHAKE_LABELS.sessionId, 16),
  };
  wipe(prk);
  return out;
}

function ecdh(secret: Uint8Array, peerPublic: Uint8Array): Uint8Array | undefined {
  try {
    const shared = p256.getSharedSecret(secret, peerPublic, true);
    const x = shared.slice(1);
    wipe(shared);
    return x;
  } catch {
    return undefined;
  }
}

function validPoint(p: Uint8Array): boolean {
  try {
    p256.Point.fromBytes(p).assertValidity();
    return true;
  } catch {
    return false;
  }
}

function ephemeral(random: (n: number) => Uint8Array): { secret: Uint8Array; publicKey: Uint8Array } {
  for (;;) {
    const secret = random(32);
    if (p256.utils.isValidSecretKey(secret)) return { secret, publicKey: p256.getPublicKey(secret, false) };
  }
}

function makeChannel(
  role: ChannelRole,
  keys: ReturnType<typeof deriveSessionKeys>,
  recordLimit: number | undefined,
): SecureChannel {
  const t = role === 'terminal';
  return new SecureChannel(
    role,
    {
      sendKey: t ? keys.t2rKey : keys.r2tKey,
      sendIv: t ? keys.t2rIv : keys.r2tIv,
      receiveKey: t ? keys.r2tKey : keys.t2rKey,
      receiveIv: t ? keys.r2tIv : keys.t2rIv,
    },
    keys.sessionId,
    recordLimit,
  );
}

// ---------------------------------------------------------------------------------------------------
// Steps

/** What a handshake step produced: messages to send, then go on, finish or fail. */
export type HandshakeStep<D> =
  | { readonly status: 'continue'; readonly send: readonly ReaderMessage[] }
  | ({ readonly status: 'done'; readonly send: readonly ReaderMessage[] } & D)
  | { readonly status: 'failed'; readonly send: readonly ReaderMessage[]; readonly error: Err<PosErrorCode> };

const errorMessage = (id: number, e: Err<PosErrorCode>): ErrorMessage => ({
  t: 'error',
  id,
  code: e.code,
  detail: e.detail.slice(0, 200),
});

const failed = (e: Err<PosErrorCode>, id?: number) =>
  ({ status: 'failed', send: id === undefined ? [] : [errorMessage(id, e)], error: e }) as const;

export interface ReaderIdentity {
  /** The serial the reader certificate names (subject serialNumber, else CN). */
  readonly serial: string;
  /** The reader identity key (uncompressed P-256); it also signs the status report. */
  readonly publicKey: Uint8Array;
  /** The chain the reader sent (DER, leaf first). */
  readonly certChain: readonly Uint8Array[];
}

export interface TerminalHandshakeOptions {
  /** The terminal's device key: the one the session ticket names. */
  readonly deviceKey: P256Signer;
  /** A back-end session ticket (compact JWS) with `cnf.jkt` of the device key and `rsn` of this reader. */
  readonly sessionTicket: string;
  /** Trusted manufacturer CA root certificates (DER). */
  readonly trustedRoots: readonly Uint8Array[];
  /** The terminal's clock, seconds since the epoch (for certificate validity). */
  readonly now: () => number;
  /**
   * The serial of the reader this terminal paired with (required: a terminal always pins its reader;
   * pairing by discovery passes the serial it is about to pin). A reader whose certificate names
   * another serial is refused (`POS_ERR_READER_SERIAL_MISMATCH`), however genuine its chain.
   */
  readonly expectedSerial: string;
  readonly versions?: readonly number[];
  /** Random bytes (ephemeral key, nonce). Tests fix it to make vectors; never in production. */
  readonly random?: (n: number) => Uint8Array;
  readonly recordLimit?: number;
}

type TerminalDone = {
  readonly channel: SecureChannel;
  readonly reader: ReaderIdentity;
  readonly version: number;
};

/** The terminal's side as a state machine: `start()`, then feed every message to `receive()`. */
export class TerminalHandshake {
  private state: 'new' | 'offered' | 'hello' | 'auth' | 'done' | 'failed' = 'new';
  private readonly transcript = new Transcript();
  private readonly random: (n: number) => Uint8Array;
  private version = 0;
  private eph: { secret: Uint8Array; publicKey: Uint8Array } | undefined;
  private pending: { channel: SecureChannel; reader: ReaderIdentity; authId: number } | undefined;

  constructor(private readonly opts: TerminalHandshakeOptions) {
    this.random = opts.random ?? randomBytes;
  }

  /** The first message (offer). */
  start(): OfferMessage {
    if (this.state !== 'new') throw new Error('start() once');
    const offer: OfferMessage = {
      t: 'offer',
      id: 1,
      versions: [...(this.opts.versions ?? READER_PROTOCOL_VERSIONS)],
    };
    this.transcript.add(offer);
    this.state = 'offered';
    return offer;
  }

  private fail(e: Err<PosErrorCode>, id?: number): HandshakeStep<TerminalDone> {
    this.state = 'failed';
    wipe(this.eph?.secret);
    this.pending?.channel.close(e.code, e.detail);
    return failed(e, id);
  }

  async receive(msg: ReaderMessage): Promise<HandshakeStep<TerminalDone>> {
    if (msg.t === 'error' && this.state !== 'done')
      return this.fail(err(msg.code as PosErrorCode, `the reader refused: ${msg.detail}`));
    if (this.state === 'offered' && msg.t === 'accept' && msg.id === 1) return this.onAccept(msg);
    if (this.state === 'hello' && msg.t === 'reader-hello' && msg.id === 2) return this.onReaderHello(msg);
    if (this.state === 'auth' && msg.t === 'rec') return this.onFinished(msg);
    return this.fail(err('POS_ERR_READER_UNEXPECTED', `a ${msg.t} message is not expected now`), 0);
  }

  private onAccept(msg: AcceptMessage): HandshakeStep<TerminalDone> {
    const offered = this.opts.versions ?? READER_PROTOCOL_VERSIONS;
    if (!offered.includes(msg.version))
      return this.fail(
        err('POS_ERR_READER_VERSION', 'the reader chose a version the terminal did not offer'),
        msg.id,
      );
    this.version = msg.version;
    this.transcript.add(msg);
    this.eph = ephemeral(this.random);
    const hello: HelloMessage = { t: 'hello', id: 2, epk: this.eph.publicKey, nonce: this.random(32) };
    this.transcript.add(hello);
    this.state = 'hello';
    return { status: 'continue', send: [hello] };
  }

  private async onReaderHello(msg: ReaderHelloMessage): Promise<HandshakeStep<TerminalDone>> {
    const eph = this.eph;
    if (eph === undefined) return this.fail(err('POS_ERR_READER_UNEXPECTED', 'no hello was sent'), msg.id);
    // Pinning is not optional: a caller (JavaScript, a cast) that gives no serial accepts no reader.
    const pinned: unknown = this.opts.expectedSerial;
    if (typeof pinned !== 'string' || pinned.length === 0) {
      return this.fail(
        err('POS_ERR_READER_SERIAL_MISMATCH', 'the terminal has no paired reader serial to check'),
        msg.id,
      );
    }
    const chain = verifyReaderCertChain(msg.certs, this.opts.trustedRoots, {
      now: this.opts.now(),
      expectedSerial: this.opts.expectedSerial,
    });
    if (!chain.ok) return this.fail(chain, msg.id);
    const th = this.transcript.hash(withoutSig(msg));
    if (!verifyP256(msg.sig, signatureInput(HANDSHAKE_LABELS.readerSignature, th), chain.publicKey))
      return this.fail(
        err('POS_ERR_READER_SIGNATURE', 'the reader signature over the transcript does not verify'),
        msg.id,
      );
    if (!validPoint(msg.epk))
      return this.fail(
        err('POS_ERR_READER_MESSAGE_MALFORMED', 'the reader ephemeral key is not on P-256'),
        msg.id,
      );
    this.transcript.add(msg);
    const unsigned = {
      t: 'terminal-auth' as const,
      id: 3,
      dk: this.opts.deviceKey.publicKey,
      ticket: this.opts.sessionTicket,
    };
    const sigT = await this.opts.deviceKey.sign(
      signatureInput(HANDSHAKE_LABELS.terminalSignature, this.transcript.hash(unsigned)),
    );
    const auth: TerminalAuthMessage = { ...unsigned, sig: sigT };
    this.transcript.add(auth);
    const shared = ecdh(eph.secret, msg.epk);
    wipe(eph.secret);
    if (shared === undefined)
      return this.fail(
        err('POS_ERR_READER_MESSAGE_MALFORMED', 'the reader ephemeral key is not on P-256'),
        msg.id,
      );
    const keys = deriveSessionKeys(shared, this.transcript.hash());
    wipe(shared);
    this.pending = {
      channel: makeChannel('terminal', keys, this.opts.recordLimit),
      reader: { serial: chain.serial, publicKey: chain.publicKey, certChain: msg.certs },
      authId: auth.id,
    };
    this.state = 'auth';
    return { status: 'continue', send: [auth] };
  }

  private onFinished(msg: ReaderMessage & { t: 'rec' }): HandshakeStep<TerminalDone> {
    const p = this.pending;
    if (p === undefined) return this.fail(err('POS_ERR_READER_UNEXPECTED', 'no keys yet'));
    const opened = p.channel.open(msg);
    if (!opened.ok) return this.fail(opened);
    if (opened.message.t === 'error')
      return this.fail(
        err(opened.message.code as PosErrorCode, `the reader refused: ${opened.message.detail}`),
      );
    if (opened.message.t !== 'finished' || opened.message.id !== p.authId)
      return this.fail(err('POS_ERR_READER_UNEXPECTED', 'the first record must be finished'));
    this.state = 'done';
    return { status: 'done', send: [], channel: p.channel, reader: p.reader, version: this.version };
  }
}

export interface ReaderHandshakeOptions {
  /** The reader identity key; its certificate is `certChain[0]`. */
  readonly identityKey: P256Signer;
  /** The reader certificate, then any intermediates (DER). The root may be left out. */
  readonly certChain: readonly Uint8Array[];
  /** This reader's serial (as in its certificate); session tickets must name it (`rsn`). */
  readonly serial: string;
  /** The A&M back-end's ticket-signing keys the reader trusts. */
  readonly trustedTicketKeys: readonly TrustedTicketKey[];
  /** The reader's clock, seconds since the epoch (ticket expiry). */
  readonly now: () => number;
  /** If set, a ticket from another issuer is refused. */
  readonly ticketIssuer?: string;
  readonly clockSkewS?: number;
  readonly versions?: readonly number[];
  readonly random?: (n: number) => Uint8Array;
  readonly recordLimit?: number;
}

export interface SessionTicketCheck {
  readonly trustedTicketKeys: readonly TrustedTicketKey[];
  /** This reader's serial: the ticket must name it (`rsn`). */
  readonly serial: string;
  /** RFC 7638 thumbprint of the terminal device key the session proved: the ticket's `cnf.jkt`. */
  readonly thumbprint: string;
  /** The reader's clock, seconds since the epoch. */
  readonly now: number;
  readonly ticketIssuer?: string;
  readonly clockSkewS?: number;
}

/**
 * The reader's check of a session ticket (§5.4), the same at the handshake (`terminal-auth`) and when
 * a session is renewed (`renew`): ES256 under a trusted A&M key, not expired and not issued in the
 * future by the reader's clock (5 s skew unless told), lifetime at most 300 s, `use` `session`, tier
 * neither `contraindicated` nor `none`, `rsn` this reader, `cnf.jkt` the session's device key (and
 * the issuer when one is configured). Each failed check has its `POS_ERR_TICKET_*` code.
 */
export function verifySessionTicket(
  jws: string,
  check: SessionTicketCheck,
): Result<{ claims: TicketClaims; kid: string }> {
  return verifyTicket(jws, check.trustedTicketKeys, {
    now: check.now,
    use: 'session',
    readerSerial: check.serial,
    deviceKeyThumbprint: check.thumbprint,
    ...(check.ticketIssuer === undefined ? {} : { issuer: check.ticketIssuer }),
    ...(check.clockSkewS === undefined ? {} : { clockSkewS: check.clockSkewS }),
  });
}

/** What the reader learns about the terminal. */
export interface TerminalIdentity {
  /** The device key (uncompressed P-256) and its RFC 7638 thumbprint; PIN-entry tickets must name it too. */
  readonly deviceKey: Uint8Array;
  readonly thumbprint: string;
  /** The verified session ticket's claims (terminal id `sub`, merchant `mid`, tier, expiry). */
  readonly claims: TicketClaims;
}

type ReaderDone = {
  readonly channel: SecureChannel;
  readonly terminal: TerminalIdentity;
  readonly version: number;
};

/** The reader's side as a state machine: feed every message to `receive()`. */
export class ReaderHandshake {
  private state: 'new' | 'accepted' | 'hello' | 'done' | 'failed' = 'new';
  private readonly transcript = new Transcript();
  private readonly random: (n: number) => Uint8Array;
  private version = 0;
  private eph: { secret: Uint8Array; publicKey: Uint8Array } | undefined;
  private peerEpk: Uint8Array | undefined;

  constructor(private readonly opts: ReaderHandshakeOptions) {
    this.random = opts.random ?? randomBytes;
  }

  private fail(e: Err<PosErrorCode>, id?: number): HandshakeStep<ReaderDone> {
    this.state = 'failed';
    wipe(this.eph?.secret);
    return failed(e, id);
  }

  async receive(msg: ReaderMessage): Promise<HandshakeStep<ReaderDone>> {
    if (msg.t === 'error')
      return this.fail(err(msg.code as PosErrorCode, `the terminal gave up: ${msg.detail}`));
    if (this.state === 'new' && msg.t === 'offer') return this.onOffer(msg);
    if (this.state === 'accepted' && msg.t === 'hello') return this.onHello(msg);
    if (this.state === 'hello' && msg.t === 'terminal-auth') return this.onAuth(msg);
    return this.fail(
      err('POS_ERR_READER_UNEXPECTED', `a ${msg.t} message is not expected now`),
      'id' in msg ? msg.id : 0,
    );
  }

  private onOffer(msg: OfferMessage): HandshakeStep<ReaderDone> {
    const mine = this.opts.versions ?? READER_PROTOCOL_VERSIONS;
    const version = mine.find((v) => msg.versions.includes(v));
    if (version === undefined)
      return this.fail(
        err('POS_ERR_READER_VERSION', `no common protocol version; the reader speaks ${mine.join(', ')}`),
        msg.id,
      );
    this.version = version;
    const accept: AcceptMessage = { t: 'accept', id: msg.id, version };
    this.transcript.add(msg);
    this.transcript.add(accept);
    this.state = 'accepted';
    return { status: 'continue', send: [accept] };
  }

  private async onHello(msg: HelloMessage): Promise<HandshakeStep<ReaderDone>> {
    if (!validPoint(msg.epk))
      return this.fail(
        err('POS_ERR_READER_MESSAGE_MALFORMED', 'the terminal ephemeral key is not on P-256'),
        msg.id,
      );
    this.transcript.add(msg);
    this.peerEpk = msg.epk;
    this.eph = ephemeral(this.random);
    const unsigned = {
      t: 'reader-hello' as const,
      id: msg.id,
      epk: this.eph.publicKey,
      nonce: this.random(32),
      certs: [...this.opts.certChain],
    };
    const sig = await this.opts.identityKey.sign(
      signatureInput(HANDSHAKE_LABELS.readerSignature, this.transcript.hash(unsigned)),
    );
    const rh: ReaderHelloMessage = { ...unsigned, sig };
    this.transcript.add(rh);
    this.state = 'hello';
    return { status: 'continue', send: [rh] };
  }

  private onAuth(msg: TerminalAuthMessage): HandshakeStep<ReaderDone> {
    const eph = this.eph;
    const peerEpk = this.peerEpk;
    if (eph === undefined || peerEpk === undefined)
      return this.fail(err('POS_ERR_READER_UNEXPECTED', 'no hello'), msg.id);
    if (!validPoint(msg.dk))
      return this.fail(err('POS_ERR_READER_TERMINAL_KEY', 'the device key is not on P-256'), msg.id);
    const th = this.transcript.hash(withoutSig(msg));
    if (!verifyP256(msg.sig, signatureInput(HANDSHAKE_LABELS.terminalSignature, th), msg.dk))
      return this.fail(
        err(
          'POS_ERR_READER_TERMINAL_SIGNATURE',
          'the device-key signature over the transcript does not verify',
        ),
        msg.id,
      );
    const thumbprint = jwkThumbprint(jwkFromPublicKey(msg.dk));
    const ticket = verifySessionTicket(msg.ticket, {
      trustedTicketKeys: this.opts.trustedTicketKeys,
      serial: this.opts.serial,
      thumbprint,
      now: this.opts.now(),
      ...(this.opts.ticketIssuer === undefined ? {} : { ticketIssuer: this.opts.ticketIssuer }),
      ...(this.opts.clockSkewS === undefined ? {} : { clockSkewS: this.opts.clockSkewS }),
    });
    if (!ticket.ok) return this.fail(ticket, msg.id);
    this.transcript.add(msg);
    const shared = ecdh(eph.secret, peerEpk);
    wipe(eph.secret);
    if (shared === undefined)
      return this.fail(err('POS_ERR_READER_MESSAGE_MALFORMED', 'bad ephemeral key'), msg.id);
    const keys = deriveSessionKeys(shared, this.transcript.hash());
    wipe(shared);
    const channel = makeChannel('reader', keys, this.opts.recordLimit);
    const fin = channel.seal({ t: 'finished', id: msg.id });
    if (!fin.ok) return this.fail(fin, msg.id);
    this.state = 'done';
    return {
      status: 'done',
      send: [fin.record],
      channel,
      terminal: { deviceKey: msg.dk, thumbprint, claims: ticket.claims },
      version: this.version,
    };
  }
}

/** The reader's answer to a message it cannot take before the handshake (e.g. a `start`). */
export function handshakeRequired(id: number): ErrorMessage {
  return errorMessage(id, err('POS_ERR_READER_UNEXPECTED', 'a secure-channel handshake is needed first'));
}
