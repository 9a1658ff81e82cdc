import { openSqliteStore } from '../../src/store/sqlite';
import { storeVelocity } from '../../src/store/velocity';
import { velocityStoreConformance } from '../domain/velocity-conformance';

// The domain's VelocityStore suite, run on the service's store-backed counters.
velocityStoreConformance('SQLite store', () => storeVelocity(openSqliteStore({ path: ':memory:' })));
