import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../../src/api/contract';
import { CoreBridge, coreLostSnapshot } from '../../src/main/core-bridge';
import type { ElectronShell } from '../../src/utility/protocol';
import { FakeChild, flush, ManualTimers, padSnapshot, snapshot } from './fixtures';

const shell: ElectronShell = {
  kind: 'electron',
  build: 'release',
  version: '0.1.0',
  packaged: true,
  appPath: '/opt/pos/resources/app.asar',
  asarPath: '/opt/pos/resources/app.asar',
  devtoolsOpen: false,
  contentProtection: true,
};

function setup() {
  const timers = new ManualTimers();
  const children: FakeChild[] = [];
  const shown: Snapshot[] = [];
  const logs: string[] = [];
  const bridge = new CoreBridge({
    spawn: () => {
      const c = new FakeChild();
      children.push(c);
      return c;
    },
    init: () => ({ dataDir: '/data', shell }),
    onSnapshot: (s) => shown.push(s),
    log: (l) => logs.push(l),
    timers,
    invokeTimeoutMs: 1000,
    restartDelaysMs: [100, 200],
    closeTimeoutMs: 500,
  });
  const child = (): FakeChild => {
    const c = children.at(-1);
    if (c === undefined) throw new Error('no child');
    return c;
  };
  return { timers, children, shown, logs, bridge, child };
}

describe('CoreBridge', () => {
  it('starts the child with init, answers unavailable until ready, then routes commands by id', async () => {
    const { bridge, child } = setup();
    bridge.start();
    expect(child().sent).toEqual([{ t: 'init', dataDir: '/data', shell }]);
    expect(await bridge.invoke({ cmd: 'attest.now' })).toMatchObject({
      ok: false,
      code: 'POS_ERR_DESKTOP_API_UNAVAILABLE',
    });
    child().send({ t: 'ready' });
    expect(bridge.ready).toBe(true);
    const a = bridge.invoke({ cmd: 'sale.start', amountMinor: 500, currency: 'EUR' });
    const b = bridge.invoke({ cmd: 'sale.cancel' });
    const [ia, ib] = child()
      .sent.slice(1)
      .map((m) => (m.t === 'invoke' ? m.id : -1));
    child().send({
      t: 'result',
      id: ib,
      result: { ok: false, code: 'POS_ERR_DESKTOP_TXN_STATE', detail: 'x' },
    });
    child().send({ t: 'result', id: ia, result: { ok: true } });
    expect(await a).toEqual({ ok: true });
    expect(await b).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_TXN_STATE' });
  });

  it('drops messages that do not parse, and snapshots that do not match the contract', () => {
    const { bridge, child, shown, logs } = setup();
    bridge.start();
    child().send({ t: 'ready' });
    child().send({ t: 'snapshot', snapshot: { ...snapshot(), pin: '1234' } });
    child().send({ t: 'result', id: 1, result: { ok: true }, extra: 1 });
    child().send('hello');
    child().send({
      t: 'snapshot',
      snapshot: {
        ...padSnapshot(),
        sale: { state: 'pin', pad: { layout: [1, 1, 1, 1, 1, 1, 1, 1, 1, 1], digits: 0, deadline: 0 } },
      },
    });
    expect(shown).toHaveLength(0);
    expect(logs.filter((l) => l.includes('dropped'))).toHaveLength(4);
    expect(logs.join('\n')).not.toContain('1234');
  });

  it('renumbers snapshots so a restarted core is not taken for a stale one', () => {
    const { bridge, child, shown, timers } = setup();
    bridge.start();
    child().send({ t: 'ready' });
    child().send({ t: 'snapshot', snapshot: snapshot({ seq: 40 }) });
    child().send({ t: 'snapshot', snapshot: snapshot({ seq: 41 }) });
    child().exit(1);
    timers.advance(100);
    child().send({ t: 'ready' });
    child().send({ t: 'snapshot', snapshot: snapshot({ seq: 0 }) });
    const seqs = shown.map((s) => s.seq);
    expect(seqs).toEqual([...seqs].sort((a, b) => a - b));
    expect(new Set(seqs).size).toBe(seqs.length);
    expect(bridge.latest()?.seq).toBe(seqs.at(-1));
  });

  it('when the core dies during PIN entry: the pad goes, the sale ends unavailable, pending commands resolve, a restart follows', async () => {
    const { bridge, child, children, shown, timers } = setup();
    bridge.start();
    child().send({ t: 'ready' });
    child().send({ t: 'snapshot', snapshot: padSnapshot(3) });
    const pending = bridge.invoke({ cmd: 'pin.ok' });
    child().exit(9);
    expect(await pending).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_API_UNAVAILABLE' });
    const last = shown.at(-1);
    expect(last?.sale.pad).toBeUndefined();
    expect(last?.sale).toMatchObject({
      state: 'result',
      amountMinor: 1234,
      result: { status: 'error', code: 'POS_ERR_DESKTOP_API_UNAVAILABLE' },
    });
    expect(JSON.stringify(last)).not.toContain('layout');
    expect(children).toHaveLength(1);
    timers.advance(99);
    expect(children).toHaveLength(1);
    timers.advance(1);
    expect(children).toHaveLength(2);
    expect(child().sent[0]).toMatchObject({ t: 'init' });
    // A second death waits longer (backoff), a successful start resets it.
    child().exit(1);
    timers.advance(199);
    expect(children).toHaveLength(2);
    timers.advance(1);
    expect(children).toHaveLength(3);
  });

  it('a command the core does not answer resolves unavailable at the timeout', async () => {
    const { bridge, child, timers } = setup();
    bridge.start();
    child().send({ t: 'ready' });
    const p = bridge.invoke({ cmd: 'attest.now' });
    timers.advance(1000);
    expect(await p).toMatchObject({ ok: false, code: 'POS_ERR_DESKTOP_API_UNAVAILABLE' });
    // A late answer is ignored.
    child().send({ t: 'result', id: 1, result: { ok: true } });
  });

  it('shell updates go to the running core', () => {
    const { bridge, child } = setup();
    bridge.updateShell(shell);
    bridge.start();
    bridge.updateShell({ ...shell, devtoolsOpen: true });
    expect(child().sent.map((m) => m.t)).toEqual(['init', 'shell']);
  });

  it('close asks the core to close, then kills it; no restart after', async () => {
    const { bridge, child, children, timers } = setup();
    bridge.start();
    child().send({ t: 'ready' });
    const closing = bridge.close();
    expect(child().sent.at(-1)).toEqual({ t: 'close' });
    child().send({ t: 'closed' });
    await closing;
    expect(child().killed).toBe(true);
    child().exit(0);
    timers.advance(10_000);
    expect(children).toHaveLength(1);
    expect(await bridge.invoke({ cmd: 'attest.now' })).toMatchObject({ ok: false });
  });

  it('close kills a core that does not answer', async () => {
    const { bridge, child, timers } = setup();
    bridge.start();
    child().send({ t: 'ready' });
    const closing = bridge.close();
    await flush();
    expect(child().killed).toBe(false);
    timers.advance(500);
    await closing;
    expect(child().killed).toBe(true);
  });
});

describe('coreLostSnapshot', () => {
  it('leaves an idle or finished screen as it was, minus the links', () => {
    const s = coreLostSnapshot(snapshot({ seq: 5 }), 6);
    expect(s.sale).toEqual({ state: 'idle' });
    expect(s.seq).toBe(6);
    expect(s.backend.push).toBe(false);
  });
});
