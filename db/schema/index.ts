/** The whole schema (tables + views). Add a file in this folder and re-export it here. */
export * from './tables.ts';
export * from './views.ts';
