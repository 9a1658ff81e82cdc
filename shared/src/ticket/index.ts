export * from './claims';
export * from './jwk';
export * from './verify';
