import { MemoryVelocityStore } from '../../src/acquirer/index';
import { velocityStoreConformance } from './velocity-conformance';

velocityStoreConformance('memory', () => new MemoryVelocityStore());
