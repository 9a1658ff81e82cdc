export * from './errors';
export * from './result';
export * from './brand';
export * from './bytes';
export * from './card';
