/**
 * Writes dashboards/*.json from the TypeScript in dashboards/src/ (Grafana's foundation SDK, so
 * every panel is checked against Grafana's schema types):
 *
 *   npm run dashboards            regenerate the JSON files
 *   npm run dashboards -- --check exit 1 when a committed file differs from what the code generates
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { accuracySurfaces } from './src/accuracy-surfaces.ts';
import { sweepProgress } from './src/sweep-progress.ts';

export const DASHBOARDS_DIR = path.dirname(fileURLToPath(import.meta.url));

/** File name -> the JSON model Grafana provisions from it. */
export function generatedDashboards(): Record<string, string> {
  return {
    'accuracy-surfaces.json': `${JSON.stringify(accuracySurfaces().build(), null, 2)}\n`,
    'sweep-progress.json': `${JSON.stringify(sweepProgress().build(), null, 2)}\n`,
  };
}

/** The committed files that differ from the generated ones (missing files count). */
export function staleDashboards(dir = DASHBOARDS_DIR): string[] {
  return Object.entries(generatedDashboards())
    .filter(([file, text]) => {
      try {
        return readFileSync(path.join(dir, file), 'utf8') !== text;
      } catch {
        return true;
      }
    })
    .map(([file]) => file);
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--check')) {
    const stale = staleDashboards();
    if (stale.length > 0) {
      process.stderr.write(`dashboards out of date (edit dashboards/src/, then npm run dashboards): ${stale.join(', ')}\n`);
      process.exit(1);
    }
    process.stdout.write('dashboards/*.json match dashboards/src/\n');
  } else {
    const dashboards = generatedDashboards();
    for (const [file, text] of Object.entries(dashboards)) writeFileSync(path.join(DASHBOARDS_DIR, file), text);
    process.stdout.write(`wrote ${Object.keys(dashboards).join(', ')}\n`);
  }
}
