/** The workflows this project registers (the worker's workflowsPath points here). */
export { sweep, progressQuery } from './sweep.ts';
export { sweepCell } from './cell.ts';
