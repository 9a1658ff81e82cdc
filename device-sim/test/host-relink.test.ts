/**
 * The link host serves one link at a time: a message that arrived on a link, but was still queued when
 * the reader was given another link (a terminal that reconnected, a serial relink on a new `offer`), is
 * dropped unread. Before, it was processed after the switch and its answer went out on the new link:
 * the next handshake got a stray `error` (seen as a failed reconnect attempt in
 * test/test/faults/reader-link.test.ts).
 */
import { createMemoryLinkPair, decodeMessage, encodeMessage, type ReaderMessage } from '@pos/shared';
import { afterEach, describe, expect, it } from 'vitest';
import { Simulator } from '../src/sim';
import { tempStateDir } from './support';

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const c of cleanups.splice(0).reverse()) await c();
});

const turn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

describe('the link host when its link is replaced', () => {
  it.each<ReaderMessage>([
    { t: 'offer', id: 1, versions: [1] },
    { t: 'get-status', id: 7 },
    { t: 'rec', n: 0, ct: new Uint8Array(32) },
  ])('does not answer a $t of the old link on the new one', async (stale) => {
    const t = tempStateDir();
    cleanups.push(t.cleanup);
    const started = await Simulator.start({ stateDir: t.dir, transport: 'hid' });
    if (!started.ok) throw new Error(started.code);
    const sim = started.sim;
    cleanups.push(() => sim.stop());

    const [oldTerminal, oldReader] = createMemoryLinkPair();
    const [newTerminal, newReader] = createMemoryLinkPair();
    sim.attachLink(oldReader);
    const onNew: string[] = [];
    newTerminal.on('message', (b) => {
      const d = decodeMessage(b);
      onNew.push(d.ok ? d.message.t : d.code);
    });
    // The host has taken the message (it subscribed first) but not processed it yet when the reader
    // is given the new link.
    oldReader.on('message', () => sim.attachLink(newReader));
    oldTerminal.send(encodeMessage(stale));
    for (let i = 0; i < 5; i++) await turn();
    expect(sim.host.currentLink).toBe(newReader);
    expect(onNew).toEqual([]);

    // The new link is served as usual.
    newTerminal.send(encodeMessage({ t: 'offer', id: 1, versions: [1] }));
    for (let i = 0; i < 5; i++) await turn();
    expect(onNew).toEqual(['accept']);
  });
});
