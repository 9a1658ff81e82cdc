/**
 * The registry of `POS_ERR_*` codes raised by @pos/backend. HTTP error bodies carry them
 * (`{ "error": { "code", "message" } }`, see docs/backend.md). Codes from @pos/shared (tickets, JWKs,
 * PIN blocks, DUKPT) pass through unchanged. Every code here is documented in docs/errors.md.
 */
export const BACKEND_ERRORS = {
  POS_ERR_INTERNAL:
    'An unexpected failure inside the service; it was logged with a request id. Nothing was decided in the caller’s favour.',
} as const satisfies Record<`POS_ERR_${string}`, string>;

export type BackendErrorCode = keyof typeof BACKEND_ERRORS;
