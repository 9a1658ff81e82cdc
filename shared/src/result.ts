import type { PosErrorCode, SharedErrorCode } from './errors';

/**
 * Verifiers and parsers return a result union instead of throwing: the caller must look at `ok`
 * before it can reach the value, and a failure always carries a stable code.
 */
export type Ok<T extends object = object> = { readonly ok: true } & T;
export interface Err<C extends PosErrorCode = SharedErrorCode> {
  readonly ok: false;
  readonly code: C;
  /** One sentence for a human. Never contains a PIN, PAN, key or token. */
  readonly detail: string;
}
export type Result<T extends object = object, C extends PosErrorCode = SharedErrorCode> = Ok<T> | Err<C>;

export function ok<T extends object>(value: T): Ok<T> {
  return { ok: true, ...value };
}

export function err<C extends PosErrorCode>(code: C, detail: string): Err<C> {
  return { ok: false, code, detail };
}

/**
 * Thrown only where a caller broke a contract the types could not express (a programming error),
 * never for bad input from outside: that gets a `Result`. Carries the same stable code.
 */
export class PosError<C extends PosErrorCode = PosErrorCode> extends Error {
  override readonly name = 'PosError';
  constructor(
    readonly code: C,
    readonly detail: string,
  ) {
    super(`${code}: ${detail}`);
  }
}

/** Unwraps a result or throws its error as a `PosError`. For tests and for code that already validated. */
export function unwrap<T extends object, C extends PosErrorCode>(result: Result<T, C>): Ok<T> {
  if (!result.ok) throw new PosError(result.code, result.detail);
  return result;
}
