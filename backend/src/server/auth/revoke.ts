/** Revoking the API tokens a user made when the user is disabled (tokens do not outlive their creator). */
import type { Store } from '../../store/types';

/**
 * The unrevoked API tokens created by `operator:<operatorId>`, and those created with one of them
 * (transitively): what disabling the user revokes (`Store.disableOperatorAudited`).
 */
export async function tokensMadeBy(store: Store, operatorId: string): Promise<string[]> {
  const tokens = await store.listApiTokens();
  const creators = new Set([`operator:${operatorId}`]);
  const doomed = new Set<string>();
  // Each pass adds tokens made by a creator found so far; stops when a pass adds none.
  for (let grew = true; grew;) {
    grew = false;
    for (const t of tokens) {
      if (t.createdBy === null || doomed.has(t.id) || !creators.has(t.createdBy)) continue;
      doomed.add(t.id);
      creators.add(`token:${t.id}`);
      grew = true;
    }
  }
  return tokens.filter((t) => doomed.has(t.id) && t.revokedAt === null).map((t) => t.id);
}

/**
 * True when the actor that created a token can no longer act: a disabled (or absent) user, or a
 * revoked, expired or absent token, or a token whose own creator is such (followed up the chain).
 * `null` (first-start admin token, CLI) and any other actor are not checked.
 */
export async function creatorGone(store: Store, actor: string | null, now: number): Promise<boolean> {
  const tokens = await store.listApiTokens();
  const seen = new Set<string>();
  for (let current = actor; current !== null && !seen.has(current);) {
    seen.add(current);
    if (current.startsWith('operator:')) {
      const user = await store.getOperator(current.slice('operator:'.length));
      return user === undefined || user.disabledAt !== null;
    }
    if (!current.startsWith('token:')) return false;
    const id = current.slice('token:'.length);
    const row = tokens.find((t) => t.id === id);
    if (row === undefined || row.revokedAt !== null || (row.expiresAt !== null && row.expiresAt <= now))
      return true;
    current = row.createdBy;
  }
  return false;
}
