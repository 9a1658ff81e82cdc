/**
 * The preload with `electron` mocked: what it puts in the page's world, and that nothing outside the
 * UI API's schemas crosses it in either direction.
 */
import { beforeAll, describe, expect, it, vi } from 'vitest';
import type { Snapshot, TerminalApi } from '../../src/api/contract';
import { API_GLOBAL, IPC } from '../../src/main/channels';
import { padSnapshot, snapshot } from './fixtures';

const h = vi.hoisted(() => {
  const exposed = new Map<string, unknown>();
  const invokes: { channel: string; args: unknown[] }[] = [];
  const listeners = new Map<string, (event: unknown, ...args: unknown[]) => void>();
  const answers = { invoke: (): unknown => ({ ok: true }), snapshot: (): unknown => null };
  return { exposed, invokes, listeners, answers };
});

vi.mock('electron', () => ({
  contextBridge: {
    exposeInMainWorld: (key: string, api: unknown) => h.exposed.set(key, api),
  },
  ipcRenderer: {
    invoke: (channel: string, ...args: unknown[]) => {
      h.invokes.push({ channel, args });
      return Promise.resolve(channel === IPC.invoke ? h.answers.invoke() : h.answers.snapshot());
    },
    on: (channel: string, l: (event: unknown, ...args: unknown[]) => void) => h.listeners.set(channel, l),
  },
}));

let api: TerminalApi;
const emit = (s: unknown): void => h.listeners.get(IPC.snapshotEvent)?.({ sender: 'main' }, s);
const flush = (): Promise<void> => new Promise((r) => setImmediate(r));

beforeAll(async () => {
  await import('../../src/preload/index');
  api = h.exposed.get(API_GLOBAL) as TerminalApi;
});

describe('preload', () => {
  it('exposes exactly one global, posTerminal, with exactly version, invoke, subscribe', () => {
    expect([...h.exposed.keys()]).toEqual(['posTerminal']);
    expect(Object.keys(api).sort()).toEqual(['invoke', 'subscribe', 'version']);
    expect(api.version).toBe(1);
    expect(typeof api.invoke).toBe('function');
    expect(typeof api.subscribe).toBe('function');
    // Nothing of ipcRenderer or the process leaks through a value either.
    expect(JSON.stringify(Object.values(api))).not.toMatch(/ipc|env/i);
  });

  it('sends a valid command on the invoke channel and returns the result', async () => {
    h.invokes.length = 0;
    expect(await api.invoke({ cmd: 'pin.key', position: 4 })).toEqual({ ok: true });
    expect(h.invokes).toEqual([{ channel: IPC.invoke, args: [{ cmd: 'pin.key', position: 4 }] }]);
  });

  it.each([
    [{ cmd: 'pin.key', position: 10 }],
    [{ cmd: 'pin.key', digit: 4 }],
    [{ cmd: 'pin.key', position: 1, extra: 'x' }],
    [{ cmd: 'sale.start', amountMinor: 0, currency: 'EUR' }],
    [{ cmd: 'shell.openExternal', url: 'https://evil' }],
    ['pin.ok'],
    [null],
  ])('a bad command never reaches ipcRenderer: %j', async (bad) => {
    h.invokes.length = 0;
    const r = await api.invoke(bad as never);
    expect(r).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_API_INVALID' });
    expect(h.invokes).toEqual([]);
  });

  it('an answer from main outside the result schema becomes unavailable; a rejected invoke too', async () => {
    h.answers.invoke = () => ({ ok: 'yes' });
    expect(await api.invoke({ cmd: 'pin.ok' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
    });
    h.answers.invoke = () => {
      throw new Error('gone');
    };
    expect(await api.invoke({ cmd: 'pin.ok' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
    });
    h.answers.invoke = () => ({ ok: true });
  });

  it('subscribe asks for the current snapshot, then delivers parsed, newer snapshots only', async () => {
    h.answers.snapshot = () => snapshot({ seq: 2 });
    const seen: Snapshot[] = [];
    const off = api.subscribe((s) => seen.push(s));
    await flush();
    expect(seen.map((s) => s.seq)).toEqual([2]);
    emit({ ...snapshot({ seq: 3 }), secret: 'x' }); // not the schema: dropped
    emit({
      ...padSnapshot(4),
      sale: { state: 'pin', pad: { layout: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0], digits: 1, deadline: 1 } },
    });
    emit('not a snapshot');
    emit(snapshot({ seq: 1 })); // stale: dropped
    emit(padSnapshot(5));
    expect(seen.map((s) => s.seq)).toEqual([2, 5]);
    expect(seen[1]?.sale.pad?.layout).toHaveLength(10);
    // A late subscriber gets the latest at once; unsubscribe stops delivery.
    const late: Snapshot[] = [];
    const offLate = api.subscribe((s) => late.push(s));
    expect(late.map((s) => s.seq)).toEqual([5]);
    off();
    offLate();
    emit(snapshot({ seq: 6 }));
    expect(seen).toHaveLength(2);
    expect(late).toHaveLength(1);
  });

  it('a throwing subscriber does not starve the others', () => {
    const seen: number[] = [];
    const a = api.subscribe(() => {
      throw new Error('boom');
    });
    const b = api.subscribe((s) => seen.push(s.seq));
    seen.length = 0;
    emit(snapshot({ seq: 10 }));
    expect(seen).toEqual([10]);
    a();
    b();
  });
});
