/** Revoking the API tokens a user made when the user is disabled (tokens do not outlive their creator). */
import type { Store } from '../../store/types';

/**
 * Revokes every unrevoked API token created by `operator:<operatorId>`, and every token created with
 * one of those (transitively); resolves to how many were revoked.
 */
export async function revokeTokensOf(store: Store, operatorId: string, at: number): Promise<number> {
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
  let revoked = 0;
  for (const t of tokens) {
    if (doomed.has(t.id) && t.revokedAt === null && (await store.revokeApiToken(t.id, at))) revoked++;
  }
  return revoked;
}
