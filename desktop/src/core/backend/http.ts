/**
 * One JSON request to the back-end, never hanging: every request has a timeout (AbortSignal), a
 * connection failure is `POS_ERR_DESKTOP_BACKEND_UNREACHABLE`, a timeout `_BACKEND_TIMEOUT`, an error
 * answer carries the back-end's own code (its error shape, docs/backend.md) or `_BACKEND_REFUSED`, and
 * a success body that does not match the caller's zod schema is `_BACKEND_RESPONSE`. Nothing here logs;
 * headers (proofs, tickets) never appear in a detail.
 */
import type { Result } from '@pos/shared';
import { z } from 'zod';
import type { DesktopCode } from '../result';

export const DEFAULT_BACKEND_TIMEOUT_MS = 10_000;
/** Larger answers are refused (the back-end's biggest answers are a few KiB). */
export const MAX_RESPONSE_BYTES = 1024 * 1024;

const ErrorShape = z.object({
  error: z.object({
    code: z.string().regex(/^POS_ERR_[A-Z0-9_]{1,80}$/),
    message: z.string().max(2000).optional(),
  }),
});

export interface JsonRequest {
  readonly method: 'GET' | 'POST';
  readonly url: string;
  /** The exact body bytes (already serialised: a proof signs them). */
  readonly body?: string;
  readonly headers?: Readonly<Record<string, string>>;
  readonly timeoutMs?: number;
}

export type FetchFn = (url: string, init: RequestInit) => Promise<Response>;

/**
 * Back-end codes whose detail the terminal words itself, for the merchant, instead of passing the
 * back-end's message on (the code itself is passed on unchanged).
 */
export const BACKEND_CODE_DETAIL: Readonly<Record<string, string>> = {
  // The operator retired this terminal for good (docs/fleet.md "Decommissioning"): every terminal
  // route refuses its device key from now on.
  POS_ERR_TERMINAL_DECOMMISSIONED:
    'this terminal was decommissioned by the payment provider: it takes no more card payments, and a replacement must be enrolled as a new terminal',
};

const fail = (code: DesktopCode, detail: string): { ok: false; code: DesktopCode; detail: string } => ({
  ok: false,
  code,
  detail,
});

export async function requestJson<S extends z.ZodType>(
  req: JsonRequest,
  schema: S,
  fetchFn: FetchFn = fetch,
): Promise<Result<{ status: number; body: z.infer<S> }, DesktopCode>> {
  const timeoutMs = req.timeoutMs ?? DEFAULT_BACKEND_TIMEOUT_MS;
  const where = safeOrigin(req.url);
  let res: Response;
  let text: string;
  try {
    const signal = AbortSignal.timeout(timeoutMs);
    res = await fetchFn(req.url, {
      method: req.method,
      headers: {
        accept: 'application/json',
        ...(req.body === undefined ? {} : { 'content-type': 'application/json' }),
        ...req.headers,
      },
      ...(req.body === undefined ? {} : { body: req.body }),
      signal,
      redirect: 'error',
    });
    const read = await readBounded(res, MAX_RESPONSE_BYTES);
    if (read === undefined)
      return fail('POS_ERR_DESKTOP_BACKEND_RESPONSE', 'the back-end answer is too large');
    text = read;
  } catch (e) {
    const name = e instanceof Error ? e.name : '';
    if (name === 'TimeoutError' || name === 'AbortError')
      return fail(
        'POS_ERR_DESKTOP_BACKEND_TIMEOUT',
        `the back-end at ${where} did not answer within ${timeoutMs} ms`,
      );
    return fail('POS_ERR_DESKTOP_BACKEND_UNREACHABLE', `the back-end at ${where} cannot be reached`);
  }
  let json: unknown;
  try {
    json = text === '' ? undefined : JSON.parse(text);
  } catch {
    json = undefined;
  }
  if (res.status >= 400) {
    const e = ErrorShape.safeParse(json);
    if (e.success)
      return fail(
        e.data.error.code as DesktopCode,
        BACKEND_CODE_DETAIL[e.data.error.code] ?? (e.data.error.message ?? '').slice(0, 300),
      );
    return fail('POS_ERR_DESKTOP_BACKEND_REFUSED', `the back-end answered HTTP ${res.status}`);
  }
  const parsed = schema.safeParse(json);
  if (!parsed.success) {
    const path = parsed.error.issues[0]?.path.map(String).join('.') ?? '';
    return fail(
      'POS_ERR_DESKTOP_BACKEND_RESPONSE',
      `unexpected answer from ${req.method} ${pathOf(req.url)} (${path})`,
    );
  }
  return { ok: true, status: res.status, body: parsed.data };
}

/**
 * The body as UTF-8 text, read only up to `max` bytes: a larger one (declared or streamed) is cancelled
 * at once and undefined returned, so a hostile or broken back-end cannot make the terminal buffer an
 * unbounded answer until the timeout.
 */
async function readBounded(res: Response, max: number): Promise<string | undefined> {
  const declared = Number(res.headers.get('content-length') ?? '0');
  if (declared > max) {
    await res.body?.cancel().catch(() => undefined);
    return undefined;
  }
  if (res.body === null) return '';
  const reader: ReadableStreamDefaultReader<Uint8Array> = res.body.getReader();
  const decoder = new TextDecoder('utf-8');
  let text = '';
  let size = 0;
  for (;;) {
    const chunk = await reader.read();
    if (chunk.done) break;
    size += chunk.value.byteLength;
    if (size > max) {
      await reader.cancel().catch(() => undefined);
      return undefined;
    }
    text += decoder.decode(chunk.value, { stream: true });
  }
  return text + decoder.decode();
}

function safeOrigin(url: string): string {
  try {
    return new URL(url).origin;
  } catch {
    return 'the configured address';
  }
}

function pathOf(url: string): string {
  try {
    return new URL(url).pathname;
  } catch {
    return '';
  }
}
