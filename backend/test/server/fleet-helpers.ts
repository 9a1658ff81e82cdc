/**
 * Helpers of the halt and push tests: enrolling a simulated terminal into a given merchant, a
 * listening app (push needs a real server), and waiting for a condition without timed assertions.
 */
import type { AddressInfo } from 'node:net';
import type { LightMyRequestResponse } from 'fastify';
import { SimTerminal, type Harness } from '../helpers';

export async function newMerchant(h: Harness, name = 'Shop'): Promise<string> {
  const m = await h.admin('POST', '/v1/merchants', { name });
  return m.json<{ merchantId: string }>().merchantId;
}

/** Enrolls a new simulated terminal into the merchant; throws unless 201. */
export async function enrollInto(
  h: Harness,
  merchantId: string,
): Promise<{ t: SimTerminal; res: LightMyRequestResponse }> {
  const t = new SimTerminal(h);
  t.readerSerial = `RDR-${Math.random().toString(36).slice(2, 10)}`;
  const c = await h.admin('POST', `/v1/merchants/${merchantId}/enrollment-codes`, {});
  const code = c.json<{ code: string }>().code;
  const challenge = await t.challenge(true);
  const res = await h.app.inject({
    method: 'POST',
    url: '/v1/enrollments',
    payload: {
      code,
      deviceJwk: t.jwk,
      readerSerial: t.readerSerial,
      evidence: t.evidence(challenge, 'enrollment'),
    },
  });
  if (res.statusCode !== 201) throw new Error(`enroll: ${res.body}`);
  t.id = res.json<{ terminalId: string }>().terminalId;
  return { t, res };
}

/** Listens on a random loopback port; resolves to the ws:// URL of the push endpoint. */
export async function listen(h: Harness): Promise<string> {
  await h.app.listen({ port: 0, host: '127.0.0.1' });
  const address = h.app.server.address() as AddressInfo;
  return `ws://127.0.0.1:${address.port}/v1/push`;
}

/** Resolves when `check` holds (polled every 5 ms); rejects after `limitMs` with the label. */
export async function until(
  label: string,
  check: () => boolean | Promise<boolean>,
  limitMs = 5000,
): Promise<void> {
  const start = Date.now();
  while (!(await check())) {
    if (Date.now() - start > limitMs) throw new Error(`timed out waiting for: ${label}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}
