/**
 * Coalesces calls made in one turn of the event loop into one batch operation: a fleet halt's fan-out
 * records `sentAt` for a thousand messages, and a thousand terminals acknowledge within milliseconds;
 * one statement (or one transaction) for all of them instead of one each. Each caller's promise
 * settles when its batch has run (so "resolved" still means "written"); a failed batch rejects every
 * caller in it.
 */
export function coalesce<I, O>(
  run: (items: readonly I[]) => Promise<readonly O[]> | readonly O[],
  max = 1000,
): (item: I) => Promise<O> {
  let pending: { item: I; resolve: (o: O) => void; reject: (e: unknown) => void }[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    while (pending.length > 0) {
      const batch = pending.slice(0, max);
      pending = pending.slice(batch.length);
      Promise.resolve()
        .then(() => run(batch.map((b) => b.item)))
        .then(
          (out) => {
            batch.forEach((b, i) => b.resolve(out[i] as O));
          },
          (error: unknown) => {
            for (const b of batch) b.reject(error);
          },
        );
    }
  };
  return (item) =>
    new Promise<O>((resolve, reject) => {
      pending.push({ item, resolve, reject });
      if (!scheduled) {
        scheduled = true;
        setImmediate(flush);
      }
    });
}
