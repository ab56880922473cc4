/**
 * The architecture's rules (.dependency-cruiser.cjs: core's layers leaves first, the UI on the service
 * interface only, workers and the CLI as doors, no import cycle), checked over the whole tree.
 */
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';

const ROOT = join(import.meta.dirname, '..', '..');

describe('layering', () => {
  it('holds everywhere: npm run layers finds no violation', () => {
    const run = spawnSync(process.execPath, [join(ROOT, 'node_modules/dependency-cruiser/bin/dependency-cruise.mjs'), '--config', '.dependency-cruiser.cjs', '--output-type', 'err', 'src', 'workers', 'bench', 'scripts', 'tests'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
    expect(run.stdout + run.stderr).toMatch(/no dependency violations found \((\d+) modules/);
    expect(run.status).toBe(0);
    // The .svelte files are read too (their imports are what the UI rule is about).
    const modules = Number(/\((\d+) modules/.exec(run.stdout)?.[1]);
    expect(modules).toBeGreaterThan(150);
  });
});
