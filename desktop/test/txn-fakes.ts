/**
 * Fakes of the transaction engine's ports. Every port call is queued until the test answers it
 * (`answer(kind, ...)` or `answerOldest`), so a test — or fast-check — chooses the interleaving of
 * answers, user input, halts and time. The fakes also keep an independent model of the gate: which
 * ticket the reader accepted for which nonce, whether a halt is in force, the wall clock; each PIN
 * block request is checked against it at the moment it is made.
 */
import { ManualTimer, type Result } from '@pos/shared';
import type { DesktopCode } from '../src/core/result';
import type {
  BackendPort,
  CardPresented,
  EngineClock,
  HaltInfo,
  PinTicket,
  PushPort,
  ReaderPort,
  SubmitInput,
} from '../src/core/transaction/ports';

export const BASE_MS = 1_800_000_000_000;

export class FakeClock implements EngineClock {
  readonly timer = new ManualTimer();
  now(): number {
    return BASE_MS + this.timer.now();
  }
  setTimeout(fn: () => void, ms: number): unknown {
    return this.timer.setTimeout(fn, ms);
  }
  clearTimeout(h: unknown): void {
    this.timer.clearTimeout(h);
  }
  advance(ms: number): void {
    this.timer.advance(ms);
  }
}

type Kind = 'start' | 'ticket' | 'pin' | 'prePin' | 'submit';
interface Pending {
  readonly kind: Kind;
  readonly resolve: (
    ok: boolean,
    extra?: { expInS?: number; wrongNonce?: boolean; declined?: boolean },
  ) => void;
}

export class FakePush implements PushPort {
  halt: HaltInfo | undefined;
  readonly #halt = new Set<(h: HaltInfo) => void>();
  readonly #resume = new Set<() => void>();
  current(): HaltInfo | undefined {
    return this.halt;
  }
  onHalt(cb: (h: HaltInfo) => void): () => void {
    this.#halt.add(cb);
    return () => this.#halt.delete(cb);
  }
  onResume(cb: () => void): () => void {
    this.#resume.add(cb);
    return () => this.#resume.delete(cb);
  }
  doHalt(reason = 'operator halt'): void {
    this.halt = { haltId: `h-${Math.random()}`, reason };
    for (const cb of [...this.#halt]) cb(this.halt);
  }
  doResume(): void {
    this.halt = undefined;
    for (const cb of [...this.#resume]) cb();
  }
}

export interface PinRequest {
  readonly digits: Uint8Array;
  /** The digits as they were when handed over (the test's copy, to check what was sent). */
  readonly sent: number[];
  readonly gateOk: boolean;
  readonly why: string;
}

export class Rig {
  readonly clock = new FakeClock();
  readonly push = new FakePush();
  readonly pending: Pending[] = [];
  readonly pinRequests: PinRequest[] = [];
  readonly submits: SubmitInput[] = [];
  aborts = 0;
  #cardCbs = new Set<(c: CardPresented) => void>();
  #abortedCbs = new Set<(e: { code: DesktopCode; detail: string }) => void>();
  #nonceN = 0;
  #ticketN = 0;
  /** The model: the current card's nonce and the ticket the reader accepted. */
  cardNonce: string | undefined;
  issued = new Map<string, PinTicket>();
  accepted: PinTicket | undefined;

  #queue<T>(kind: Kind, make: (ok: boolean, extra: Parameters<Pending['resolve']>[1]) => T): Promise<T> {
    return new Promise((resolve) =>
      this.pending.push({ kind, resolve: (ok, extra) => resolve(make(ok, extra)) }),
    );
  }

  readonly reader: ReaderPort = {
    start: () =>
      this.#queue('start', (ok): Result<object, DesktopCode> =>
        ok ? { ok: true } : { ok: false, code: 'POS_ERR_SIM_BATTERY_LOW', detail: 'battery' },
      ),
    onCard: (cb) => {
      this.#cardCbs.add(cb);
      return () => this.#cardCbs.delete(cb);
    },
    onAborted: (cb) => {
      this.#abortedCbs.add(cb);
      return () => this.#abortedCbs.delete(cb);
    },
    sendTicket: (jws) =>
      this.#queue('ticket', (ok): Result<object, DesktopCode> => {
        if (!ok) return { ok: false, code: 'POS_ERR_TICKET_EXPIRED', detail: 'refused' };
        this.accepted = this.issued.get(jws);
        return { ok: true };
      }),
    pinBlock: (digits) => {
      const t = this.accepted;
      const why: string[] = [];
      if (t === undefined) why.push('no accepted ticket');
      else {
        if (this.clock.now() >= t.exp * 1000) why.push('ticket expired');
        if (t.nonce !== this.cardNonce) why.push('ticket for another nonce');
      }
      if (this.push.halt !== undefined) why.push('halted');
      this.pinRequests.push({ digits, sent: [...digits], gateOk: why.length === 0, why: why.join(', ') });
      return this.#queue('pin', (ok) =>
        ok
          ? { ok: true as const, block: new Uint8Array(16).fill(7), ksn: new Uint8Array(12).fill(1) }
          : { ok: false as const, code: 'POS_ERR_READER_NO_TICKET', detail: 'refused' },
      );
    },
    abort: () => {
      this.aborts++;
      this.accepted = undefined;
      return Promise.resolve();
    },
  };

  readonly backend: BackendPort = {
    prePin: ({ nonce }) =>
      this.#queue('prePin', (ok, extra): Result<{ ticket: PinTicket }, DesktopCode> => {
        if (!ok) return { ok: false, code: 'POS_ERR_TERMINAL_HALTED', detail: 'refused' };
        const ticket: PinTicket = {
          jws: `ticket-${++this.#ticketN}`,
          exp: Math.floor(this.clock.now() / 1000) + (extra?.expInS ?? 60),
          nonce: extra?.wrongNonce === true ? 'another-nonce-xxxxxxxx' : nonce,
        };
        this.issued.set(ticket.jws, ticket);
        return { ok: true, ticket };
      }),
    submit: (input) => {
      this.submits.push(input);
      return this.#queue('submit', (ok, extra) =>
        ok
          ? {
              ok: true as const,
              outcome: extra?.declined === true ? ('declined' as const) : ('approved' as const),
            }
          : { ok: false as const, code: 'POS_ERR_UNAVAILABLE', detail: 'down' },
      );
    },
  };

  /** The reader reads a card (a fresh nonce). */
  presentCard(pinRequired = true): void {
    this.cardNonce = `nonce-${++this.#nonceN}-aaaaaaaaaaaa`;
    this.accepted = undefined;
    for (const cb of [...this.#cardCbs])
      cb({
        nonce: this.cardNonce,
        pinRequired,
        maskedPan: '411111******1111',
        scheme: 'visa',
        card: { opaque: true },
      });
  }

  readerAborts(code: DesktopCode = 'POS_ERR_READER_CARD_REMOVED'): void {
    for (const cb of [...this.#abortedCbs]) cb({ code, detail: 'card removed' });
  }

  /** Answers the oldest pending call of `kind` (or of any kind). False when none is pending. */
  answer(kind: Kind | undefined, ok: boolean, extra?: Parameters<Pending['resolve']>[1]): boolean {
    const i = this.pending.findIndex((p) => kind === undefined || p.kind === kind);
    if (i < 0) return false;
    const [p] = this.pending.splice(i, 1);
    p?.resolve(ok, extra);
    return true;
  }
}

/** Lets queued promise reactions run. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 10; i++) await Promise.resolve();
}
