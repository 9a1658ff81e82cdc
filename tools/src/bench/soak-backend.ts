/**
 * The soak bench's back-end: `pos-backend` itself (its CLI, its routes, its store), started with one
 * acquirer velocity rule lifted for the bench. The rule "one card on many terminals"
 * (`cardTerminals`: a warning at 2 terminals an hour, a halt of the terminal at 4) stands between a
 * soak of 20 terminals and the four PIN cards the test catalogue's issuer approves: the fourth terminal to use a
 * card would be halted, by design, and the soak would measure halts. Every other rule stays as it is
 * (the soak keeps each terminal under the per-terminal rate's warning, and sends no wrong PIN).
 *
 * Run as `node --import tsx tools/src/bench/soak-backend.ts <pos-backend options>`. Bench only: nothing
 * else imports it.
 */
import { DEFAULT_VELOCITY_RULES } from '@pos/backend/acquirer/velocity';

const spread = DEFAULT_VELOCITY_RULES.cardTerminals;
delete spread.warnAt;
delete spread.haltAt;

const { main } = await import('@pos/backend/cli/main');
await main(process.argv.slice(2));
