// The engine thread's entry (engine/thread.ts): a worker thread does not inherit the TypeScript loader its
// parent was started with, so it registers it before loading the engine.
import { register } from 'tsx/esm/api';

register();
const { serveEngine } = await import('./thread.ts');
await serveEngine();
