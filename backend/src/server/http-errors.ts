/**
 * The one error shape of the HTTP API: `{ "error": { "code": "POS_ERR_...", "message": "...", "requestId": "..." } }`
 * for every 4xx and 5xx, Fastify's own errors included (schema validation, body size, content type,
 * malformed JSON, unknown route, rate limit).
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { BACKEND_ERRORS, type BackendErrorCode } from '../errors';
import { faultOf, type StoreFault } from '../store/faults';

/** An error a route throws on purpose: status, stable code and a message safe to show the caller. */
export class ServiceError extends Error {
  override readonly name = 'ServiceError';
  constructor(
    readonly statusCode: number,
    readonly code: BackendErrorCode | `POS_ERR_${string}`,
    message?: string,
  ) {
    super(message ?? (code in BACKEND_ERRORS ? BACKEND_ERRORS[code as BackendErrorCode] : code));
  }
}

export const ErrorBodySchema = z.object({
  error: z.object({
    code: z.string(),
    message: z.string(),
    requestId: z.string(),
  }),
});
export type ErrorBody = z.infer<typeof ErrorBodySchema>;

interface Mapped {
  readonly status: number;
  readonly code: string;
  readonly message: string;
}

const FASTIFY_CODES: Readonly<Record<string, { status: number; code: BackendErrorCode }>> = {
  FST_ERR_VALIDATION: { status: 400, code: 'POS_ERR_REQUEST_INVALID' },
  FST_ERR_CTP_BODY_TOO_LARGE: { status: 413, code: 'POS_ERR_REQUEST_TOO_LARGE' },
  FST_ERR_CTP_INVALID_MEDIA_TYPE: { status: 415, code: 'POS_ERR_REQUEST_MEDIA_TYPE' },
  FST_ERR_CTP_INVALID_CONTENT_LENGTH: { status: 400, code: 'POS_ERR_REQUEST_MALFORMED' },
  FST_ERR_CTP_EMPTY_JSON_BODY: { status: 400, code: 'POS_ERR_REQUEST_MALFORMED' },
  FST_ERR_CTP_INVALID_JSON_BODY: { status: 400, code: 'POS_ERR_REQUEST_MALFORMED' },
  FST_ERR_CTP_EMPTY_TYPE: { status: 415, code: 'POS_ERR_REQUEST_MEDIA_TYPE' },
  FST_ERR_CTP_INVALID_TYPE: { status: 415, code: 'POS_ERR_REQUEST_MEDIA_TYPE' },
  FST_ERR_NOT_FOUND: { status: 404, code: 'POS_ERR_NOT_FOUND' },
  FST_ERR_BAD_URL: { status: 400, code: 'POS_ERR_REQUEST_MALFORMED' },
  FST_ERR_ASYNC_CONSTRAINT: { status: 400, code: 'POS_ERR_REQUEST_INVALID' },
  POS_ERR_RATE_LIMITED: { status: 429, code: 'POS_ERR_RATE_LIMITED' },
  POS_ERR_REQUEST_MALFORMED: { status: 400, code: 'POS_ERR_REQUEST_MALFORMED' },
};

/** A store that cannot answer or cannot be written: the caller may retry later (503), nothing was decided. */
const STORE_FAULT_CODES: Readonly<Record<StoreFault, BackendErrorCode>> = {
  unavailable: 'POS_ERR_UNAVAILABLE',
  full: 'POS_ERR_STORE_FULL',
  'read-only': 'POS_ERR_STORE_READ_ONLY',
};

/** Maps any error to status, code and a caller-safe message. Unknown errors become POS_ERR_INTERNAL. */
export function mapError(error: unknown): Mapped {
  if (error instanceof ServiceError)
    return { status: error.statusCode, code: error.code, message: error.message };
  const e = error as Partial<FastifyError> & { validation?: unknown };
  if (e.validation !== undefined) {
    return { status: 400, code: 'POS_ERR_REQUEST_INVALID', message: BACKEND_ERRORS.POS_ERR_REQUEST_INVALID };
  }
  const fault = faultOf(error);
  if (fault !== undefined) {
    const code = STORE_FAULT_CODES[fault];
    return { status: 503, code, message: BACKEND_ERRORS[code] };
  }
  const known = typeof e.code === 'string' ? FASTIFY_CODES[e.code] : undefined;
  if (known !== undefined)
    return { status: known.status, code: known.code, message: BACKEND_ERRORS[known.code] };
  const status = typeof e.statusCode === 'number' ? e.statusCode : 500;
  if (status >= 400 && status < 500) {
    // A client error Fastify or a plugin raised that we have no specific code for.
    const code: BackendErrorCode =
      status === 413
        ? 'POS_ERR_REQUEST_TOO_LARGE'
        : status === 415
          ? 'POS_ERR_REQUEST_MEDIA_TYPE'
          : 'POS_ERR_REQUEST_INVALID';
    return { status, code, message: BACKEND_ERRORS[code] };
  }
  return { status: 500, code: 'POS_ERR_INTERNAL', message: BACKEND_ERRORS.POS_ERR_INTERNAL };
}

export function sendError(request: FastifyRequest, reply: FastifyReply, error: unknown): FastifyReply {
  const mapped = mapError(error);
  const fault = error instanceof ServiceError ? undefined : faultOf(error);
  // A store fault is one warning line (its code), not a stack per refused request.
  if (fault !== undefined) request.log.warn({ code: mapped.code, fault }, 'store fault: request refused');
  else if (mapped.status >= 500) request.log.error({ err: error }, 'request failed');
  else request.log.info({ code: mapped.code, status: mapped.status }, 'request refused');
  if (mapped.status === 429) {
    const after = (error as { retryAfter?: unknown }).retryAfter;
    if (typeof after === 'number') void reply.header('retry-after', Math.ceil(after / 1000));
  }
  const body: ErrorBody = { error: { code: mapped.code, message: mapped.message, requestId: request.id } };
  return reply.code(mapped.status).type('application/json; charset=utf-8').send(body);
}
