/**
 * The renderer's pure parts under Node: amount parsing (no floats), the transport choice and the
 * guard that re-parses what the core sends, the status words.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  MAX_AMOUNT_MINOR,
  UI_API_VERSION,
  formatAmount,
  type Command,
  type Snapshot,
  type TerminalApi,
} from '../../src/api/contract';
import { parseAmount } from '../../src/renderer/amount';
import { formatAge, reasonFor, tierStatus } from '../../src/renderer/messages';
import { guardApi, selectTransport } from '../../src/renderer/transport/select';
import { snap } from './harness';

describe('parseAmount', () => {
  it('reads whole and decimal digits as integers', () => {
    expect(parseAmount('12.34')).toEqual({ ok: true, minor: 1234 });
    expect(parseAmount('12')).toEqual({ ok: true, minor: 1200 });
    expect(parseAmount('12.3')).toEqual({ ok: true, minor: 1230 });
    expect(parseAmount('12.')).toEqual({ ok: true, minor: 1200 });
    expect(parseAmount('0.01')).toEqual({ ok: true, minor: 1 });
    expect(parseAmount('  7,5 ')).toEqual({ ok: true, minor: 750 });
    expect(parseAmount('000042.10')).toEqual({ ok: true, minor: 4210 });
    expect(parseAmount('999999.99')).toEqual({ ok: true, minor: MAX_AMOUNT_MINOR });
    // Where a float would round: 0.29 * 100 = 28.999999999999996, 1.15 * 100 = 114.99999999999999.
    expect(parseAmount('0.29')).toEqual({ ok: true, minor: 29 });
    expect(parseAmount('1.15')).toEqual({ ok: true, minor: 115 });
    expect(parseAmount('4.35')).toEqual({ ok: true, minor: 435 });
  });

  it('refuses more than two decimals, zero, too large, and anything not plain digits', () => {
    for (const bad of [
      '',
      ' ',
      '12.345',
      '1,234',
      '0',
      '0.00',
      '00.0',
      '1000000',
      '999999.999',
      '99999999999999999999999',
      '-1',
      '+1',
      '1e3',
      '0x10',
      '1 000',
      '12.3.4',
      '12,3.4',
      '.5',
      'Infinity',
      'NaN',
      '１２',
      '١٢',
    ]) {
      expect(parseAmount(bad).ok, bad).toBe(false);
    }
  });

  it('round-trips every amount through formatAmount', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: MAX_AMOUNT_MINOR }), (minor) => {
        const text = formatAmount(minor, 'EUR').replace(' EUR', '');
        expect(parseAmount(text)).toEqual({ ok: true, minor });
      }),
      { numRuns: 2000 },
    );
  });
});

interface RawApi {
  version: unknown;
  invoke: (c: Command) => unknown;
  subscribe: (cb: (s: unknown) => void) => unknown;
}

function fakeApi(over: Partial<RawApi> = {}) {
  const subscribers: ((s: unknown) => void)[] = [];
  const sent: Command[] = [];
  return {
    sent,
    emit: (s: unknown) => subscribers.forEach((cb) => cb(s)),
    api: {
      version: UI_API_VERSION as unknown,
      invoke: (c: Command) => {
        sent.push(c);
        return Promise.resolve({ ok: true });
      },
      subscribe: (cb: (s: unknown) => void) => {
        subscribers.push(cb);
        return () => subscribers.splice(subscribers.indexOf(cb), 1);
      },
      ...over,
    } satisfies RawApi,
  };
}

const noBrowser = (): TerminalApi => {
  throw new Error('no browser shell here');
};

describe('selectTransport', () => {
  it('takes the preload API when it has the shape and version', () => {
    const t = selectTransport({ posTerminal: fakeApi().api }, noBrowser);
    expect(t.ok && t.kind).toBe('preload');
  });

  it('refuses a preload API of another version or shape, without falling back to the browser client', () => {
    let browserTried = false;
    const browser = () => {
      browserTried = true;
      return fakeApi().api as unknown as TerminalApi;
    };
    for (const posTerminal of [
      fakeApi({ version: 2 }).api,
      fakeApi({ version: '1' }).api,
      { ...fakeApi().api, invoke: 'nope' },
      { version: 1, subscribe: () => () => undefined },
      null,
      42,
    ]) {
      const t = selectTransport({ posTerminal }, browser);
      expect(t).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_API_UNAVAILABLE' });
    }
    expect(browserTried).toBe(false);
  });

  it('uses the browser client without a preload API; a client that cannot start is unavailable', () => {
    const t = selectTransport({}, () => fakeApi().api as unknown as TerminalApi);
    expect(t.ok && t.kind).toBe('browser');
    expect(selectTransport({}, noBrowser)).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
    });
  });
});

describe('guardApi', () => {
  it('passes valid snapshots in order and drops invalid and stale ones', () => {
    const f = fakeApi();
    const api = guardApi(f.api);
    const got: Snapshot[] = [];
    const off = api.subscribe((s) => got.push(s));
    f.emit({ ...snap(), seq: 5 });
    f.emit({ ...snap(), seq: 5 }); // not newer
    f.emit({ ...snap(), seq: 3 }); // older
    f.emit({ ...snap(), seq: 6, extra: 'field' }); // not in the contract
    f.emit({
      ...snap({
        sale: { state: 'pin', pad: { layout: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], digits: 0, deadline: 1 } },
      }),
      seq: 7,
    });
    f.emit('garbage');
    f.emit({ ...snap(), seq: 8 });
    expect(got.map((s) => s.seq)).toEqual([5, 8]);
    off();
    f.emit({ ...snap(), seq: 9 });
    expect(got).toHaveLength(2);
  });

  it('turns a rejection, a throw or a malformed answer into POS_ERR_DESKTOP_API_UNAVAILABLE', async () => {
    const rejecting = guardApi(fakeApi({ invoke: () => Promise.reject(new Error('ipc closed')) }).api);
    const throwing = guardApi(
      fakeApi({
        invoke: () => {
          throw new Error('gone');
        },
      }).api,
    );
    const malformed = guardApi(fakeApi({ invoke: () => Promise.resolve({ ok: 'yes' }) }).api);
    for (const api of [rejecting, throwing, malformed]) {
      expect(await api.invoke({ cmd: 'attest.now' })).toMatchObject({
        ok: false,
        code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
      });
    }
    const f = fakeApi();
    expect(await guardApi(f.api).invoke({ cmd: 'pin.key', position: 3 })).toEqual({ ok: true });
    expect(f.sent).toEqual([{ cmd: 'pin.key', position: 3 }]);
  });
});

describe('status words', () => {
  it('says the age of the verdict in words', () => {
    const now = 1_000_000_000;
    expect(formatAge(now + 500, now)).toBe('just now');
    expect(formatAge(now - 12_000, now)).toBe('12 s ago');
    expect(formatAge(now - 180_000, now)).toBe('3 min ago');
    expect(formatAge(now - 7_200_000, now)).toBe('2 h ago');
  });

  it('gives every tier a distinct word', () => {
    const tiers = ['affirming', 'warning', 'contraindicated', 'none', 'unknown'] as const;
    const labels = tiers.map((t) => tierStatus(t).label);
    expect(new Set(labels).size).toBe(tiers.length);
    expect(tierStatus('affirming').label).toBe('trusted');
  });

  it('explains a code, else the core detail as a sentence', () => {
    expect(reasonFor('POS_ERR_DESKTOP_TXN_TIMEOUT_PIN')).toBe('The PIN was not entered in time.');
    expect(reasonFor('POS_ERR_SOMETHING_NEW', 'the acquirer said no')).toBe('The acquirer said no.');
    expect(reasonFor(undefined)).toBe('The sale could not be completed.');
  });
});
