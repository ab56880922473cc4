/**
 * `npm run bench -- NAME [args]` runs bench/NAME.ts, which writes bench/results/NAME.json.
 * Benchmarks measure and report; they never fail because a number is low.
 */
import { readdirSync } from 'node:fs';
import { dirname } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const available = readdirSync(here)
  .filter((f) => f.endsWith('.ts') && !['run.ts', 'lib.ts'].includes(f))
  .map((f) => f.replace(/\.ts$/, ''));
const name = process.argv[2];
if (!name || !available.includes(name)) {
  console.error(`usage: npm run bench -- NAME   (NAME one of: ${available.join(', ') || 'none yet'})`);
  process.exit(2);
}
const mod = (await import(pathToFileURL(`${here}/${name}.ts`).href)) as { main: (args: string[]) => Promise<void> };
await mod.main(process.argv.slice(3));
