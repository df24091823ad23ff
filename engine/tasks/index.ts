/** Tasks: definitions, rendering, sampling and scoring rules (see README.md). */
export * from './definitions.ts';
export * from './registry.ts';
export * from './render.ts';
export * from './sampling.ts';
export * from './scoring.ts';
export { createRng, shuffledIndices } from '../random.ts';
