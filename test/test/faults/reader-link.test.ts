/**
 * The reader link cut or corrupted at every step of a sale (issue 9, point 3): no PIN block without a
 * ticket, no hang, recovery. docs/reader-protocol.md §9.1 ("Link faults") is the matrix this file proves.
 *
 * Both ends run in process: the terminal's own code (ReaderConnection, SessionReaderPort,
 * TransactionEngine from desktop/src/core) and the reader simulator (device-sim's firmware, service and
 * link host). Between them a fault-injecting wire carries every unit in both directions and plants one
 * fault at the Nth unit of a given protocol step:
 *
 * - layer `message`: the unit is one whole message (the in-memory link): a fault past any framing;
 * - layer `serial`: the unit is one COBS + CRC-32 frame between two real `SerialLink`s, so a bit flip
 *   meets the CRC (NAK, retransmission) and a lost or repeated frame meets ACK/seq;
 * - layer `hid`: the unit is one 64-byte report between a real `HidHostLink` and `HidDeviceLink`
 *   (INIT channel allocation, init and continuation packets; no CRC, no retransmission).
 *
 * A step is the message type: a clear handshake message by its `t`, a record by the type of the
 * plaintext it carries (the test records, for each record the channel seals, which type it sealed; the
 * wire never decrypts); an HID report by the message its init packet starts (SYNC/ACK/NAK frames and
 * HID INIT/ERROR reports are the framing's own, no step). The table is made from `MESSAGE_INFO`, the
 * protocol's own list of types: a type this file does not classify fails the first test
 * ("unclassified step"), so a new message type is covered or noticed. PIN key presses do not cross the
 * link (the pad is the terminal's; the PIN goes as one `pin` message), so they are no step of their own.
 *
 * Between the liveness probe and the sale the terminal renews its session with a fresh session ticket
 * (`renew` / `renewed`, docs/reader-protocol.md §5.5), as it does after every attestation.
 *
 * Faults: `cut` (the port closes both ways and the device reports itself lost: an unplug), `corrupt`
 * (one bit flipped), `drop` (the unit is lost), `duplicate` (delivered twice: a replay), `stall` (from
 * this unit on the link carries nothing either way: a reader that stopped answering).
 *
 * Time is the links' injectable `LinkTimer` (a ManualTimer) for everything on the terminal side: the
 * handshake, request, heartbeat, serial ACK and reconnect timers and the engine's state timers. The
 * test only moves it in 50 ms ticks while it waits for something, and a wait that passes NO_HANG_MS of
 * that protocol time fails as a hang. No wall-clock sleeping: between ticks the test yields to the
 * event loop (setImmediate) so every message in flight is processed.
 *
 * For each cell: the fault fired (the scenario reached the step); the terminal ends with a coded
 * outcome (the sale's `POS_ERR_DESKTOP_TXN_READER` with a `POS_ERR_` cause, or a coded reader-lost /
 * attempt-failed notice) or absorbs the fault as its layer promises (serial: CRC/ACK/seq; HID: a
 * repeated init packet restarts its message); no PIN block without a ticket-bound session (reader
 * side: every PIN block follows an accepted PIN-entry ticket of the same transaction in the same
 * session; terminal side: a PIN block goes to the back-end only with the ticket bound to the card's
 * nonce, and never from a sale that failed); no PIN left behind (the engine's buffer wiped, the pad
 * closed, the digits of every `pin` message the terminal sealed wiped, the reader not waiting for a
 * PIN); and recovery: a new session and a new sale on the same terminal is approved with exactly one
 * new PIN block.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { devAm, newP256KeyPair } from '@pos/device-sim/dev/am';
import { Simulator } from '@pos/device-sim/sim';
import {
  connectToReader,
  createMemoryLinkPair,
  decodeMessage,
  decodeSerialFrame,
  findTestCard,
  HANDSHAKE_TIMEOUT_MS,
  jwkFromPublicKey,
  jwkThumbprint,
  HidDeviceLink,
  HidHostLink,
  ManualTimer,
  MESSAGE_INFO,
  p256Signer,
  REQUEST_TIMEOUT_MS,
  SecureChannel,
  SERIAL_DEFAULTS,
  SerialLink,
  type LinkEvents,
  type LinkError,
  type ReaderLink,
} from '@pos/shared';
import {
  DEFAULT_HEARTBEAT_MS,
  DEFAULT_HEARTBEAT_TIMEOUT_MS,
  ReaderConnection,
} from '@pos/desktop/core/reader/connection';
import { LostSignal, type ReaderDevice, type ReaderDriver } from '@pos/desktop/core/reader/device';
import { SessionReaderPort } from '@pos/desktop/core/reader/reader-port';
import {
  TransactionEngine,
  type BackendPort,
  type PushPort,
  type SubmitInput,
  type TxnResult,
} from '@pos/desktop/core/transaction/index';
import { afterAll, beforeAll, describe, expect, it, vi, type MockInstance } from 'vitest';

// ---- the table --------------------------------------------------------------------------------------

const LAYERS = ['message', 'serial', 'hid'] as const;
type Layer = (typeof LAYERS)[number];
const FAULTS = ['cut', 'corrupt', 'drop', 'duplicate', 'stall'] as const;
type Fault = (typeof FAULTS)[number];

/** Where a step happens: the scenario that reaches it and the phase it belongs to. */
type Phase = 'handshake' | 'idle' | 'renew' | 'sale' | 'after' | 'cancel';
type Scenario = 'sale' | 'cancel';
type StepClass = { readonly scenario: Scenario; readonly phase: Phase } | { readonly offPath: string };

/**
 * Every message type of the protocol, classified. Keyed by string on purpose: `MESSAGE_INFO` is the
 * list, and a type missing here fails at run time with its name.
 */
const STEP_CLASSES: Readonly<Record<string, StepClass>> = {
  offer: { scenario: 'sale', phase: 'handshake' },
  accept: { scenario: 'sale', phase: 'handshake' },
  hello: { scenario: 'sale', phase: 'handshake' },
  'reader-hello': { scenario: 'sale', phase: 'handshake' },
  'terminal-auth': { scenario: 'sale', phase: 'handshake' },
  finished: { scenario: 'sale', phase: 'handshake' },
  'get-status': { scenario: 'sale', phase: 'idle' },
  status: { scenario: 'sale', phase: 'idle' },
  renew: { scenario: 'sale', phase: 'renew' },
  renewed: { scenario: 'sale', phase: 'renew' },
  start: { scenario: 'sale', phase: 'sale' },
  started: { scenario: 'sale', phase: 'sale' },
  'card-inserted': { scenario: 'sale', phase: 'sale' },
  ticket: { scenario: 'sale', phase: 'sale' },
  'ticket-ok': { scenario: 'sale', phase: 'sale' },
  pin: { scenario: 'sale', phase: 'sale' },
  'pin-block': { scenario: 'sale', phase: 'sale' },
  'card-removed': { scenario: 'sale', phase: 'after' },
  close: { scenario: 'sale', phase: 'after' },
  abort: { scenario: 'cancel', phase: 'cancel' },
  aborted: { scenario: 'cancel', phase: 'cancel' },
  rec: { offPath: 'the carrier: every channel step above is faulted as the record that carries it' },
  'card-tapped': {
    offPath:
      'the contactless twin of card-inserted: the same event fields and the same SessionReaderPort path',
  },
  error: {
    offPath:
      "no step of a good sale: it is the answer to a refused message, which the faults above provoke (the message layer's corrupt cells end in one)",
  },
  tamper: {
    offPath: 'the reader ends the session by design (device-sim tamper tests); no link fault makes one',
  },
};

type Step = string;

function onPath(): { step: Step; scenario: Scenario; phase: Phase }[] {
  const out: { step: Step; scenario: Scenario; phase: Phase }[] = [];
  for (const step of Object.keys(MESSAGE_INFO)) {
    const c = STEP_CLASSES[step];
    if (c !== undefined && 'scenario' in c) out.push({ step, scenario: c.scenario, phase: c.phase });
  }
  return out;
}

/** What a cell must end in. */
interface Expected {
  /** The faulted scenario's own sale. */
  readonly sale: 'approved' | 'error' | 'cancelled';
  /** A coded reader-lost / attempt-failed notice (true), none at all (false), either (undefined). */
  readonly noticed: boolean | undefined;
}

function expected(layer: Layer, phase: Phase, step: Step, fault: Fault, hit: Hit): Expected {
  const own: Expected['sale'] = phase === 'cancel' ? 'cancelled' : 'approved';
  // The serial framing heals what it is made for: a flipped bit fails the CRC (NAK, resent), a lost
  // frame is resent after the ACK timeout, a repeated one has the seq already delivered. Nobody above
  // notices.
  if (layer === 'serial' && fault !== 'cut' && fault !== 'stall') return { sale: own, noticed: false };
  // HID has no CRC and no retransmission (USB provides them), so the rest is the message layer's, but
  // for one thing: a repeated init packet of a message that needs continuation packets abandons the
  // message in progress and starts it again (§3.2); the continuations complete it once.
  if (layer === 'hid' && fault === 'duplicate' && hit.multiReport) return { sale: own, noticed: false };
  switch (phase) {
    case 'handshake':
    case 'idle':
      // Before the sale: the attempt or the session fails with a code, the terminal reconnects, and
      // the sale that follows is approved.
      return { sale: 'approved', noticed: true };
    case 'sale':
      // A repeated `pin` or `pin-block` record: the PIN block was made once, under the ticket, and
      // reached the terminal before the replay ended the session; the sale stands.
      if (fault === 'duplicate' && (step === 'pin' || step === 'pin-block'))
        return { sale: 'approved', noticed: true };
      return { sale: 'error', noticed: true };
    case 'renew':
      // The session's renewal (a fresh session ticket, §5.5): lost or damaged, it either ends the
      // session (a coded reader-lost, then a new session) or goes unanswered (the renewal times out
      // and the terminal runs a new handshake, which is no loss to report); either way the sale that
      // follows runs on a live session and is approved.
      return { sale: 'approved', noticed: undefined };
    case 'after':
      return { sale: 'approved', noticed: undefined };
    case 'cancel':
      return { sale: 'cancelled', noticed: undefined };
  }
}

// ---- protocol time ----------------------------------------------------------------------------------

const TICK_MS = 50;
/**
 * The longest a fault may go unnoticed, by the protocol's own timers: an unanswered probe (heartbeat
 * interval + its timeout), a request's timeout, the handshake's, the serial retries (ACK timeout ×
 * (1 + retries)), with the first reconnect backoff on top. Far below the engine's own fallbacks for
 * the card and PIN states (60 s), so a cell passes only if the protocol, not the engine, ends it.
 */
const NO_HANG_MS =
  Math.max(DEFAULT_HEARTBEAT_MS + DEFAULT_HEARTBEAT_TIMEOUT_MS, REQUEST_TIMEOUT_MS, HANDSHAKE_TIMEOUT_MS) +
  SERIAL_DEFAULTS.ackTimeoutMs * (1 + SERIAL_DEFAULTS.maxRetries) +
  1000;

const yieldToLoop = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

// ---- which step a unit is ---------------------------------------------------------------------------

/**
 * Every record the channel sealed (its encoded bytes, hex) → the type of the message inside, from a
 * spy that calls through to the real `seal` and keeps its arguments and results (cleared per cell).
 */
const sealedTypes = new Map<string, string>();
const hexOf = (b: Uint8Array): string => Buffer.from(b).toString('hex');
let sealSpy: MockInstance<SecureChannel['seal']> | undefined;
let sealsRead = 0;

beforeAll(() => {
  sealSpy = vi.spyOn(SecureChannel.prototype, 'seal');
});
afterAll(() => {
  sealSpy?.mockRestore();
});

function forgetSeals(): void {
  sealSpy?.mockClear();
  sealsRead = 0;
  sealedTypes.clear();
}

function sealedType(record: Uint8Array): string | undefined {
  const calls = sealSpy?.mock.calls ?? [];
  const results = sealSpy?.mock.results ?? [];
  for (; sealsRead < results.length; sealsRead++) {
    const r = results[sealsRead];
    const m = calls[sealsRead]?.[0];
    if (r?.type === 'return' && r.value.ok && m !== undefined) sealedTypes.set(hexOf(r.value.bytes), m.t);
  }
  return sealedTypes.get(hexOf(record));
}

/** The step of one message's bytes; undefined when they are not a message (only after a fault). */
function messageStep(bytes: Uint8Array): Step | undefined {
  const d = decodeMessage(bytes);
  if (!d.ok) return undefined;
  if (d.message.t !== 'rec') return d.message.t;
  const inner = sealedType(bytes);
  if (inner === undefined) throw new Error('a record the channel did not seal');
  return inner;
}

/**
 * HID: every message a link end sends, by its first 57 bytes (what an init packet carries) → its
 * step; the continuation packets that follow an init packet on a direction belong to its step.
 */
const hidPrefixes = new Map<string, Step>();
const HID_INIT_DATA = 57;
const hidPrefixKey = (b: Uint8Array): string => hexOf(b.subarray(0, HID_INIT_DATA));

function noteHidMessage(message: Uint8Array): void {
  const step = messageStep(message);
  if (step !== undefined) hidPrefixes.set(hidPrefixKey(message), step);
}

/** An init packet: CID (4) | CMD with bit 7 | BCNT (2) | data; MSG is command 03. */
const hidInit = (r: Uint8Array): { msg: boolean; bcnt: number } | undefined =>
  ((r[4] ?? 0) & 0x80) === 0
    ? undefined
    : { msg: ((r[4] ?? 0) & 0x7f) === 0x03, bcnt: ((r[5] ?? 0) << 8) | (r[6] ?? 0) };

/** The step of one serial frame (00 COBS 00); undefined for SYNC/ACK/NAK, which are not steps. */
function frameStep(wire: Uint8Array): Step | undefined {
  const d = decodeSerialFrame(wire.subarray(1, wire.length - 1));
  if (!d.ok || d.frame.type !== 'data') return undefined;
  return messageStep(d.frame.payload);
}

// ---- the fault-injecting wire -----------------------------------------------------------------------

interface Plan {
  readonly step: Step;
  readonly nth: number;
  readonly fault: Fault;
  /** Which bit a `corrupt` flips (modulo the unit's length); default: the last byte's low bit. */
  readonly bit?: number;
}

/** What the fault hit (HID: whether the message needed continuation packets). */
interface Hit {
  multiReport: boolean;
}

/** One fault, planted once per cell, counted over every link the cell opens. */
class Wire {
  readonly hit: Hit = { multiReport: false };
  readonly seen = new Map<Step, number>();
  readonly log: string[] = [];
  fired = false;
  armed = true;

  constructor(
    readonly layer: Layer,
    readonly plan: Plan,
  ) {}

  /** One link's worth of wire: what one end sends passes here before the other end gets it. */
  pair(onCut: () => void): (dir: 'T>R' | 'R>T', unit: Uint8Array, deliver: (u: Uint8Array) => void) => void {
    let stalled = false;
    const hidStep: Record<'T>R' | 'R>T', Step | undefined> = { 'T>R': undefined, 'R>T': undefined };
    const classify = (dir: 'T>R' | 'R>T', unit: Uint8Array): Step | undefined => {
      if (this.layer === 'message') return messageStep(unit);
      if (this.layer === 'serial') return frameStep(unit);
      const init = hidInit(unit);
      if (init !== undefined) {
        hidStep[dir] = init.msg
          ? hidPrefixes.get(hexOf(unit.subarray(7, 7 + Math.min(HID_INIT_DATA, init.bcnt))))
          : undefined;
        if (init.msg && hidStep[dir] === undefined) throw new Error('an HID message no end sent');
      }
      return hidStep[dir];
    };
    return (dir, unit, deliver) => {
      if (stalled) return;
      const step = classify(dir, unit);
      if (step === undefined) {
        deliver(unit);
        return;
      }
      const n = (this.seen.get(step) ?? 0) + 1;
      this.seen.set(step, n);
      this.log.push(`${dir} ${step}`);
      if (!this.armed || this.fired || step !== this.plan.step || n !== this.plan.nth) {
        deliver(unit);
        return;
      }
      this.fired = true;
      this.hit.multiReport = (hidInit(unit)?.bcnt ?? 0) > HID_INIT_DATA;
      this.log.push(`   ^ ${this.plan.fault}`);
      switch (this.plan.fault) {
        case 'cut':
          onCut();
          return;
        case 'corrupt':
          deliver(this.flip(unit));
          return;
        case 'drop':
          return;
        case 'duplicate':
          deliver(unit.slice());
          deliver(unit);
          return;
        case 'stall':
          stalled = true;
          return;
      }
    };
  }

  private flip(unit: Uint8Array): Uint8Array {
    const out = unit.slice();
    // Serial: inside the COBS body (the delimiters are the framing's own business).
    const lo = this.layer === 'serial' ? 1 : 0;
    const len = out.length - (this.layer === 'serial' ? 2 : 0);
    // HID, by default: the last message byte of the report (its padding is not read).
    const init = this.layer === 'hid' ? hidInit(unit) : undefined;
    const last =
      this.layer !== 'hid' ? len - 1 : init === undefined ? 5 : 7 + Math.min(HID_INIT_DATA, init.bcnt) - 1;
    const bit = this.plan.bit ?? last * 8;
    const i = lo + (Math.floor(bit / 8) % len);
    let mask = 1 << (bit % 8);
    if ((out[i]! ^ mask) === 0 && this.layer === 'serial') mask <<= 1; // keep a byte, not a delimiter
    out[i] = out[i]! ^ mask;
    return out;
  }
}

/** A ReaderLink whose sends go through the wire (the memory layer's ends). */
class WiredLink implements ReaderLink {
  constructor(
    private readonly inner: ReaderLink,
    private readonly through: (unit: Uint8Array, deliver: (u: Uint8Array) => void) => void,
  ) {}
  get closed(): boolean {
    return this.inner.closed;
  }
  send(message: Uint8Array): { ok: true } | LinkError {
    if (this.inner.closed) return this.inner.send(message);
    this.through(message.slice(), (u) => void this.inner.send(u));
    return { ok: true };
  }
  on<E extends keyof LinkEvents>(event: E, handler: LinkEvents[E]): () => void {
    return this.inner.on(event, handler);
  }
  close(): void {
    this.inner.close();
  }
}

/** Both ends of one link over the wire: [terminal end, reader end]. */
function openLink(wire: Wire, timer: ManualTimer, lost: LostSignal): [ReaderLink, ReaderLink] {
  let ends: [ReaderLink, ReaderLink] | undefined;
  const cut = () => {
    ends?.[0].close();
    ends?.[1].close();
    lost.fire('the reader was unplugged');
  };
  const through = wire.pair(cut);
  if (wire.layer === 'hid') {
    const hid: { host?: HidHostLink; device?: HidDeviceLink } = {};
    const usb = (to: 'host' | 'device') => (u: Uint8Array) =>
      void Promise.resolve().then(() => hid[to]?.receiveReport(u));
    hid.host = new HidHostLink({ timer, writeReport: (r) => through('T>R', r.slice(), usb('device')) });
    hid.device = new HidDeviceLink({ timer, writeReport: (r) => through('R>T', r.slice(), usb('host')) });
    // Each end's messages are noted (by the prefix an init packet carries) as they are sent.
    const noting = (inner: ReaderLink) =>
      new WiredLink(inner, (u, send) => {
        noteHidMessage(u);
        send(u);
      });
    ends = [noting(hid.host), noting(hid.device)];
    return ends;
  }
  if (wire.layer === 'message') {
    const [t, r] = createMemoryLinkPair();
    ends = [
      new WiredLink(t, (u, deliver) => through('T>R', u, deliver)),
      new WiredLink(r, (u, deliver) => through('R>T', u, deliver)),
    ];
    return ends;
  }
  const serial: { t?: SerialLink; r?: SerialLink } = {};
  // A line delivers later than the write (as the memory link does): never inside the sender's call.
  const line = (to: 't' | 'r') => (u: Uint8Array) =>
    void Promise.resolve().then(() => serial[to]?.receive(u));
  serial.t = new SerialLink({
    timer,
    write: (b) => through('T>R', b.slice(), line('r')),
  });
  serial.r = new SerialLink({
    timer,
    write: (b) => through('R>T', b.slice(), line('t')),
  });
  ends = [serial.t, serial.r];
  return ends;
}

// ---- one cell ---------------------------------------------------------------------------------------

interface CellReport {
  readonly fired: boolean;
  readonly sale: TxnResult | undefined;
  readonly notices: { kind: string; code: string }[];
  readonly log: string[];
  readonly hit: Hit;
}

const PIN_CARD = findTestCard('visa-pin');

/** One reader for the whole file (a simulator costs a key pair and certificates to start). */
interface Reader {
  readonly sim: Simulator;
  readonly am: ReturnType<typeof devAm>;
  readonly events: Record<string, unknown>[];
  readonly dir: string;
}
let shared: Reader | undefined;

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), 'pos-fault-'));
  const events: Record<string, unknown>[] = [];
  const started = await Simulator.start({ stateDir: dir, transport: 'hid', onEvent: (e) => events.push(e) });
  if (!started.ok) throw new Error(started.code);
  const am = devAm();
  expect(started.sim.fw.trust(am.jwks).ok).toBe(true);
  shared = { sim: started.sim, am, events, dir };
});
afterAll(async () => {
  await shared?.sim.stop();
  if (shared !== undefined) rmSync(shared.dir, { recursive: true, force: true });
});

async function runCell(layer: Layer, scenario: Scenario, plan: Plan): Promise<CellReport> {
  if (PIN_CARD === undefined) throw new Error('the test card catalogue has no visa-pin');
  if (shared === undefined) throw new Error('the reader did not start');
  const card = PIN_CARD;
  const { sim, am } = shared;
  const cleanups: (() => unknown)[] = [];
  try {
    // The reader as a previous cell left it: no transaction, no card (its link is replaced below).
    sim.fw.abort();
    if (sim.fw.cardInSlot !== undefined) sim.card({ action: 'remove' });
    expect(sim.fw.txnState).toBe('idle');
    const readerEvents = shared.events;
    readerEvents.splice(0);
    const identity = sim.fw.identity;
    if (identity === undefined) throw new Error('the simulator has no identity');
    const serial = sim.ready.serial;

    const timer = new ManualTimer();
    const wire = new Wire(layer, plan);
    forgetSeals();
    hidPrefixes.clear();

    // The terminal: a device key, session tickets from the development A&M, the shared handshake.
    const key = newP256KeyPair();
    const jkt = jwkThumbprint(jwkFromPublicKey(key.publicKey));
    const driver: ReaderDriver = {
      kind: layer === 'serial' ? 'serial' : 'hid',
      open: () => {
        const lost = new LostSignal();
        const [t, r] = openLink(wire, timer, lost);
        sim.attachLink(r);
        const device: ReaderDevice = {
          kind: layer === 'serial' ? 'serial' : 'hid',
          where: `in-process ${layer} link`,
          link: t,
          onLost: (cb) => lost.on(cb),
          close: () => {
            lost.silence();
            t.close();
            return Promise.resolve();
          },
          get closed() {
            return t.closed;
          },
        };
        return Promise.resolve({ ok: true, device });
      },
    };
    const conn = new ReaderConnection({
      driver,
      handshake: async (link) => {
        const r = await connectToReader(link, {
          deviceKey: p256Signer(key.secretKey),
          sessionTicket: am.sign({ use: 'session', cnf: { jkt }, rsn: serial, perm: ['transact'] }),
          trustedRoots: [identity.caCertificateDer],
          now: () => Math.floor(Date.now() / 1000),
          expectedSerial: serial,
          timer,
        });
        return r.ok ? { ok: true, session: r.session } : r;
      },
      timer,
      random: () => 0.5,
    });
    cleanups.unshift(() => conn.close());
    const notices: { kind: string; code: string }[] = [];
    conn.on('reader-lost', (e) => notices.push({ kind: 'reader-lost', code: e.code }));
    conn.on('attempt-failed', (e) => notices.push({ kind: 'attempt-failed', code: e.code }));
    // Liveness probes answered: `status` messages that reached the terminal's session.
    let statusAnswers = 0;
    conn.on('connected', ({ session }) =>
      session.on('message', (m) => {
        if (m.t === 'status') statusAnswers++;
      }),
    );

    const submits: SubmitInput[] = [];
    const cardNonces: string[] = [];
    const backend: BackendPort = {
      prePin: ({ nonce }) => {
        const exp = Math.floor(Date.now() / 1000) + 120;
        const jws = am.sign({
          use: 'pin-entry',
          cnf: { jkt },
          rsn: serial,
          nonce,
          exp,
          perm: ['transact', 'pin-entry'],
        });
        return Promise.resolve({ ok: true, ticket: { jws, exp, nonce } });
      },
      submit: (input) => {
        submits.push(input);
        return Promise.resolve({ ok: true, outcome: 'approved' });
      },
    };
    const push: PushPort = {
      current: () => undefined,
      onHalt: () => () => undefined,
      onResume: () => () => undefined,
    };
    const port = new SessionReaderPort(conn);
    cleanups.unshift(() => port.dispose());
    port.onCard((c) => cardNonces.push(c.nonce));
    const engine = new TransactionEngine({
      reader: port,
      backend,
      push,
      clock: {
        now: () => Date.now() + timer.now(),
        setTimeout: (fn, ms) => timer.setTimeout(fn, ms),
        clearTimeout: (h) => timer.clearTimeout(h),
      },
    });
    cleanups.unshift(() => engine.dispose());

    /** Moves protocol time in ticks until `cond` holds; a hang past NO_HANG_MS fails the cell. */
    const settle = async (cond: () => boolean, what: string): Promise<void> => {
      const from = timer.now();
      for (;;) {
        await yieldToLoop();
        await yieldToLoop();
        if (cond()) return;
        if (timer.now() - from >= NO_HANG_MS)
          throw new Error(
            `hang: ${what} not reached in ${NO_HANG_MS} ms of protocol time (${layer} ${plan.fault} at ${plan.step} #${plan.nth})\n${wire.log.join('\n')}`,
          );
        timer.advance(TICK_MS);
      }
    };
    const READER_BUSY = new Set([
      'waiting-for-card',
      'reading-card',
      'waiting-for-ticket',
      'waiting-for-pin',
    ]);
    const readerQuiet = () => !READER_BUSY.has(sim.fw.txnState);

    const sale = async (mode: Scenario): Promise<TxnResult | undefined> => {
      expect(engine.begin()).toEqual({ ok: true });
      expect(engine.enterAmount(2500, 'EUR')).toEqual({ ok: true });
      await settle(
        () => engine.state === 'result' || sim.fw.txnState === 'waiting-for-card',
        'the reader waiting for a card',
      );
      if (engine.state !== 'result') {
        expect(sim.card({ card: 'visa-pin', action: 'insert' })).toEqual({ ok: true });
        await settle(() => engine.state === 'pin' || engine.state === 'result', 'the PIN pad');
      }
      if (engine.state === 'pin') {
        if (mode === 'cancel') expect(engine.cancel()).toEqual({ ok: true });
        else {
          for (const c of card.pin) engine.pressDigit(Number(c));
          engine.submitPin();
        }
      }
      await settle(
        () => engine.state === 'result' && readerQuiet() && conn.state === 'connected',
        'the sale ended, the reader idle and connected',
      );
      const result = engine.snapshot().result;
      // No PIN left behind: the engine's buffer wiped, the pad closed, the reader not waiting for one.
      expect(engine.pinWiped()).toBe(true);
      expect(engine.snapshot()).toMatchObject({ padOpen: false, pinLength: 0 });
      expect(sim.fw.txnState).not.toBe('waiting-for-pin');
      if (sim.fw.cardInSlot !== undefined) sim.card({ action: 'remove' });
      await yieldToLoop();
      expect(engine.reset()).toEqual({ ok: true });
      return result;
    };

    // -- the faulted scenario: connect, one liveness probe, a sale (or a cancelled one), the end
    conn.start();
    await settle(() => conn.state === 'connected', 'the first session');
    // A probe answered on the session in use: after a loss, one on the new session.
    const probed = () => statusAnswers;
    let mark = { notices: notices.length, probes: probed() };
    await settle(() => {
      if (notices.length !== mark.notices) mark = { notices: notices.length, probes: probed() };
      return conn.state === 'connected' && probed() > mark.probes;
    }, 'a liveness probe answered');
    // The session is renewed with a fresh session ticket, as after every attestation (§5.5): by
    // `renew`, or by a new handshake when the renewal fails.
    let renewal: Awaited<ReturnType<ReaderConnection['renew']>> | undefined;
    void conn
      .renew(am.sign({ use: 'session', cnf: { jkt }, rsn: serial, perm: ['transact'] }))
      .then((r) => (renewal = r));
    await settle(() => renewal !== undefined && conn.state === 'connected', 'the session renewed');
    if (!wire.fired) expect(renewal).toEqual({ ok: true, via: 'renew' });
    const submitsBefore = submits.length;
    const result = await sale(scenario);
    if (result?.status !== 'approved')
      expect(submits.slice(submitsBefore).filter((s) => s.pinBlock !== undefined)).toEqual([]);
    // The session ends in order (`close`) and a new one opens, as before every sale that needs one.
    void conn.reopen();
    await settle(() => conn.state === 'connected', 'a new session after the faulted one');
    const fired = wire.fired;
    const faultedNotices = [...notices];
    wire.armed = false;

    // -- recovery: a new session and a sale, approved, with exactly one new PIN block
    const blocksBefore = readerEvents.filter((e) => e['event'] === 'pin-block').length;
    const again = await sale('sale');
    expect(again).toEqual({ status: 'approved' });
    expect(readerEvents.filter((e) => e['event'] === 'pin-block').length).toBe(blocksBefore + 1);
    expect(submits.at(-1)?.pinBlock).toBeDefined();

    // -- no PIN block without a ticket-bound session, over the whole cell
    assertPinBlocksTicketBound(readerEvents);
    // -- no PIN digits left in any `pin` message the terminal sealed (the port wipes its copy once sent)
    const pins = (sealSpy?.mock.calls ?? []).flatMap(([m]) => (m.t === 'pin' ? [m.digits] : []));
    expect(pins.length).toBeGreaterThan(0);
    for (const digits of pins) expect(digits.every((b) => b === 0)).toBe(true);
    for (const s of submits) {
      if (s.pinBlock === undefined) continue;
      expect(s.ticket).toBeDefined();
      expect(cardNonces).toContain(s.ticket?.nonce);
    }
    expect(submits.filter((s) => s.pinBlock !== undefined).length).toBeLessThanOrEqual(
      readerEvents.filter((e) => e['event'] === 'pin-block').length,
    );
    return { fired, sale: result, notices: faultedNotices, log: wire.log, hit: wire.hit };
  } finally {
    for (const c of cleanups) await c();
  }
}

/**
 * The reader's own record (its events, in order): every PIN block follows the acceptance of a
 * PIN-entry ticket for the same transaction, with no end of the session in between.
 */
function assertPinBlocksTicketBound(events: readonly Record<string, unknown>[]): void {
  let ticketTxn: unknown;
  for (const e of events) {
    if (e['event'] === 'session' && e['authenticated'] === false) ticketTxn = undefined;
    if (e['event'] === 'ticket') ticketTxn = e['accepted'] === true ? e['txn'] : undefined;
    if (e['event'] === 'pin-block') {
      expect(ticketTxn, 'a PIN block without an accepted ticket in the same session').toBe(e['txn']);
      ticketTxn = undefined;
    }
  }
}

// ---- the tests --------------------------------------------------------------------------------------

const CODE = /^POS_ERR_[A-Z0-9_]+$/;

describe('reader link faults: every step × every fault', () => {
  it('every message type of the protocol is classified (a new type must be added to the table)', () => {
    const unclassified = Object.keys(MESSAGE_INFO).filter((t) => STEP_CLASSES[t] === undefined);
    expect(unclassified.map((t) => `unclassified step: ${t}`)).toEqual([]);
    const stale = Object.keys(STEP_CLASSES).filter((t) => !(t in MESSAGE_INFO));
    expect(stale).toEqual([]);
  });

  const cells = LAYERS.flatMap((layer) =>
    onPath().flatMap(({ step, scenario, phase }) =>
      FAULTS.map((fault) => ({ layer, step, scenario, phase, fault })),
    ),
  );

  it.each(cells)(
    '$layer: $fault at $step',
    async ({ layer, step, scenario, phase, fault }) => {
      const r = await runCell(layer, scenario, { step, nth: 1, fault });
      const want = expected(layer, phase, step, fault, r.hit);
      expect(r.fired, `the scenario never reached ${step}:\n${r.log.join('\n')}`).toBe(true);
      for (const n of r.notices) expect(n.code).toMatch(CODE);
      if (want.noticed === true) expect(r.notices.length).toBeGreaterThan(0);
      if (want.noticed === false) expect(r.notices, r.log.join('\n')).toEqual([]);
      switch (want.sale) {
        case 'approved':
          expect(r.sale).toEqual({ status: 'approved' });
          break;
        case 'cancelled':
          expect(r.sale).toMatchObject({ status: 'error', code: 'POS_ERR_DESKTOP_TXN_CANCELLED' });
          break;
        case 'error':
          expect(r.sale).toMatchObject({ status: 'error', code: 'POS_ERR_DESKTOP_TXN_READER' });
          expect(r.sale?.cause).toMatch(CODE);
          break;
      }
    },
    60_000,
  );
});

describe('reader link faults: property', () => {
  it('a random fault at a random unit never yields a PIN block without a ticket and never hangs', async () => {
    const steps = onPath();
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...LAYERS),
        fc.constantFrom(...steps),
        fc.integer({ min: 1, max: 3 }),
        fc.constantFrom(...FAULTS),
        fc.nat({ max: 8 * 4096 - 1 }),
        async (layer, { step, scenario }, nth, fault, bit) => {
          // runCell asserts the invariants itself (ticket-bound PIN blocks, wiped PIN, no hang,
          // recovery); here any outcome of the faulted sale is allowed but it must be coded.
          const r = await runCell(layer, scenario, { step, nth, fault, bit });
          for (const n of r.notices) expect(n.code).toMatch(CODE);
          if (r.sale?.status === 'error') expect(r.sale.code).toMatch(CODE);
        },
      ),
      { numRuns: 25 },
    );
  }, 300_000);
});
