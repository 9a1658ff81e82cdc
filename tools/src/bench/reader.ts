/**
 * `npm run bench -- reader [--seconds N] [--transactions N] [--baud N]`: PIN submitted to PIN block
 * returned, over the reader simulator's pseudo-terminal, with both ends paced to a real UART's line
 * rate (default 115200 baud, 10 bits a byte). Reports p50 and p99 of that latency and the serial
 * frames per second the link carried, beside the in-process cost of the same PIN block (no line) as
 * the baseline, measured in the same run. The goal (docs/design.md) is p99 under 30 ms; it is
 * reported, never asserted.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { devAm } from '@pos/device-sim/dev/am';
import { DevTerminal } from '@pos/device-sim/dev/terminal';
import { Simulator } from '@pos/device-sim/sim';
import { SerialLine, socatAvailable } from '@pos/device-sim/transport/serial';
import {
  AesDukptDevice,
  aesDukptInitialKey,
  encodePinBlock,
  hex,
  unwrap,
  wipe,
  type Pan,
  type PinDigits,
  type ReaderMessage,
  type SerialLink,
} from '@pos/shared';
import { measure, type Benchmark } from './measure';

const PIN = '1234';
const CARD = 'visa-pin';

function digits(): Uint8Array<ArrayBuffer> {
  const d = new Uint8Array(PIN.length);
  for (let i = 0; i < PIN.length; i++) d[i] = PIN.charCodeAt(i) - 0x30;
  return d;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i] ?? Number.NaN;
}

const round = (x: number, digitsAfter = 3): number => Number(x.toFixed(digitsAfter));

export const readerBench: Benchmark = {
  name: 'reader',
  usesSeconds: true,
  summary: 'PIN to PIN block over the simulator pseudo-terminal at 115200 baud (p50/p99), frames per second',
  async run(ctx) {
    if (!socatAvailable()) {
      ctx.emit({
        metric: 'skipped',
        reason: 'socat is not installed (/usr/bin/socat): apt-get install socat',
      });
      return;
    }
    const baud = Number(ctx.options['baud'] ?? 115_200);
    const maxTxns = Number(ctx.options['transactions'] ?? 100);

    // Baseline: the reader's own work for one PIN block (DUKPT transaction keys + format 4), no line.
    const ik = unwrap(aesDukptInitialKey(hex('FEDCBA9876543210F1F1F1F1F1F1F1F1'), hex('1234567800000001')));
    let device = unwrap(AesDukptDevice.load(ik.key, hex('1234567800000001'))).device;
    const pan = '4111111111111111' as Pan;
    const base = measure(
      () => {
        let t = device.nextTransaction([{ usage: 'pin-encryption' }]);
        if (!t.ok) {
          device = unwrap(AesDukptDevice.load(ik.key, hex('1234567800000001'))).device;
          t = unwrap(device.nextTransaction([{ usage: 'pin-encryption' }]));
        }
        const key = t.keys[0] ?? new Uint8Array(16);
        const block = encodePinBlock({ format: 4, pin: digits() as PinDigits, pan, key });
        wipe(key, block.ok ? block.block : undefined);
      },
      Math.min(ctx.seconds, 1),
      16,
    );

    const dir = mkdtempSync(join(tmpdir(), 'pos-bench-reader-'));
    const am = devAm();
    const started = await Simulator.start({ stateDir: join(dir, 'state'), paceBaud: baud, baudRate: baud });
    if (!started.ok) {
      rmSync(dir, { recursive: true, force: true });
      ctx.emit({ metric: 'error', code: started.code, detail: started.detail });
      return;
    }
    const sim = started.sim;
    let term: DevTerminal | undefined;
    let line: SerialLine | undefined;
    try {
      sim.fw.trust(am.jwks);
      const identity = sim.fw.identity;
      const opened = await SerialLine.open({ path: sim.ready.path ?? '', baudRate: baud, paceBaud: baud });
      if (!opened.ok || identity === undefined) throw new Error('the pseudo-terminal cannot be opened');
      line = opened.line;
      const connected = await DevTerminal.connect({
        line,
        caCertificateDer: identity.caCertificateDer,
        serial: sim.ready.serial,
        signTicket: (c) => am.sign(c),
      });
      if (!connected.ok) throw new Error(`${connected.code}: ${connected.detail}`);
      term = connected.terminal;
      const t = term;
      const link = t.link as SerialLink;
      const ask = async (msg: ReaderMessage & { id: number }): Promise<ReaderMessage> => {
        const r = await t.request(msg);
        if (!r.ok) throw new Error(`${msg.t}: ${r.code}`);
        return r.message;
      };

      // Bytes on the line during each PIN round trip, both ways: the floor a UART at `baud` imposes.
      let window = false;
      let windowBytes = 0;
      const lineRef = line;
      const rawWrite = lineRef.write.bind(lineRef);
      lineRef.write = (b: Uint8Array): void => {
        if (window) windowBytes += b.length;
        rawWrite(b);
      };
      lineRef.onData((b) => {
        if (window) windowBytes += b.length;
      });
      const wireBytes: number[] = [];
      const samples: number[] = [];
      const framesBefore = link.stats.framesSent + link.stats.framesReceived;
      const runStart = performance.now();
      // At least 50 transactions (a p99 needs samples), at most --transactions or 15 x --seconds.
      const deadline = runStart + ctx.seconds * 1000 * 15;
      for (let i = 0; i < maxTxns && (i < 50 || performance.now() < deadline); i++) {
        await ask({ t: 'start', id: t.newId(), amount: 1000 + i, currency: 'EUR' });
        sim.card({ card: CARD, action: 'insert' });
        const ev = await t.waitFor('card-inserted');
        await ask({ t: 'ticket', id: t.newId(), jws: await t.pinTicket(ev) });
        const pin = digits();
        windowBytes = 0;
        window = true;
        const t0 = performance.now();
        const answer = await ask({ t: 'pin', id: t.newId(), digits: pin });
        const t1 = performance.now();
        window = false;
        wireBytes.push(windowBytes);
        wipe(pin);
        if (answer.t !== 'pin-block') throw new Error('no PIN block');
        samples.push(t1 - t0);
        sim.card({ action: 'remove' });
        await t.waitFor('card-removed');
      }
      const elapsedS = (performance.now() - runStart) / 1000;
      const frames = link.stats.framesSent + link.stats.framesReceived - framesBefore;
      samples.sort((a, b) => a - b);
      const p50 = percentile(samples, 50);
      const p99 = percentile(samples, 99);
      const baselineMs = 1000 / base.opsPerSec;
      wireBytes.sort((a, b) => a - b);
      const medianBytes = percentile(wireBytes, 50);
      const wireMs = (medianBytes * 10 * 1000) / baud;
      ctx.emit({
        pin_to_block_p50_ms: round(p50),
        pin_to_block_p99_ms: round(p99),
        transactions: samples.length,
        baud,
        goal_p99_ms: 30,
        within_goal: p99 < 30,
        in_process_pin_block_ms: round(baselineMs, 4),
        ratio_p50_to_in_process: round(p50 / baselineMs, 1),
        line_bytes_per_round_trip: medianBytes,
        wire_time_ms: round(wireMs),
        ratio_p50_to_wire_time: round(p50 / wireMs, 2),
      });
      ctx.emit({
        metric: 'frames_per_second',
        frames_per_second: round(frames / elapsedS, 1),
        frames,
        seconds: round(elapsedS, 2),
        retransmissions: link.stats.retransmissions,
        note: 'serial frames (DATA, ACK, SYNC, NAK) both ways, seen by the terminal end, over whole transactions',
      });
    } finally {
      term?.close();
      await line?.close();
      await sim.stop();
      rmSync(dir, { recursive: true, force: true });
      wipe(ik.key);
    }
  },
};
