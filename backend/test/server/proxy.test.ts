/**
 * Behind a reverse proxy (`trustProxy`), the client address for the global rate limit is the hop the
 * proxy appended to X-Forwarded-For: a client cannot get a fresh bucket per request by writing its own
 * left-most entries.
 */
import { describe, expect, it } from 'vitest';
import { makeHarness } from '../helpers';

describe('trustProxy: one trusted hop', () => {
  it('a client writing random X-Forwarded-For entries still shares its proxy-appended bucket', async () => {
    const h = await makeHarness({ trustProxy: true, rateLimitPerMinute: 5 });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 8; i++) {
        const res = await h.app.inject({
          method: 'GET',
          url: '/healthz',
          remoteAddress: '10.0.0.1',
          headers: { 'x-forwarded-for': `198.51.100.${i}, 203.0.113.7` },
        });
        statuses.push(res.statusCode);
      }
      expect(statuses.filter((s) => s === 429).length).toBe(3);
      // Another client behind the same proxy has its own bucket.
      const other = await h.app.inject({
        method: 'GET',
        url: '/healthz',
        remoteAddress: '10.0.0.1',
        headers: { 'x-forwarded-for': '203.0.113.8' },
      });
      expect({ status: other.statusCode, body: other.body }).toMatchObject({ status: 200 });
    } finally {
      await h.close();
    }
  });
});
