/**
 * The shape of THOR Lab as rules (`npm run layers`; CI runs it with the tests). One engine, many doors:
 *
 *   src/app (Svelte UI) ──► src/core/lab/index.ts (the service's interface, types, pure helpers)
 *   workers/, server/, src/cli, src/main.ts (doors) ──► src/browser | src/node (where things run) ──► src/core
 *
 * Inside src/core, leaves first; a layer may use the ones before it, never a later one:
 *   1 config, data, reward, sandbox, tokenizer (and the shared files at core's root)
 *   2 model, optim   3 engine   4 tir   5 llm, verl   6 eval   7 tirgen   8 rl   9 run   10 lab
 * An import of types alone may point anywhere in core (a text rollout names the TextModel it is given).
 */
const LAYERS = [['config', 'data', 'reward', 'sandbox', 'tokenizer'], ['model', 'optim'], ['engine'], ['tir'], ['llm', 'verl'], ['eval'], ['tirgen'], ['rl'], ['run'], ['lab']];
const folders = (names) => `^src/core/(${names.join('|')})/`;

module.exports = {
  forbidden: [
    { name: 'no-cycles', severity: 'error', comment: 'No import cycle anywhere.', from: {}, to: { circular: true } },
    ...LAYERS.slice(0, -1).map((layer, i) => ({
      name: `core-layer-${i + 1}-uses-only-earlier-layers`,
      severity: 'error',
      comment: `src/core/{${layer.join(',')}} may not import a later layer.`,
      from: { path: folders(layer) },
      to: { path: folders(LAYERS.slice(i + 1).flat()), dependencyTypesNot: ['type-only'] },
    })),
    {
      name: 'core-root-files-are-leaves',
      severity: 'error',
      comment: "The shared files at src/core's root (errors, files, tar, rng, stats, tick, backend) import no core folder.",
      from: { path: '^src/core/[^/]+\\.ts$' },
      to: { path: '^src/core/[^/]+/' },
    },
    {
      name: 'core-runs-anywhere',
      severity: 'error',
      comment: 'src/core is plain TypeScript: no UI, no browser or Node adapters, no doors.',
      from: { path: '^src/core/' },
      to: { path: '^(src/(app|browser|node|cli)|workers|server|tests|bench|scripts)/' },
    },
    {
      name: 'ui-talks-to-the-service-interface',
      severity: 'error',
      comment: 'The Svelte UI uses src/core/lab/index.ts only: never the engine, never how the service is reached.',
      from: { path: '^src/app/' },
      to: { path: '^(src/(core|browser|node|cli)|workers)/', pathNot: '^src/core/lab/index\\.ts$' },
    },
    {
      name: 'workers-are-doors',
      severity: 'error',
      comment: 'A worker only builds a service (or the sandbox) with its environment and exposes it.',
      from: { path: '^workers/' },
      to: { path: '^src/', pathNot: '^src/(browser/|core/lab/service\\.ts$|core/sandbox/worker-api\\.ts$)' },
    },
    {
      name: 'browser-and-node-stay-apart',
      severity: 'error',
      comment: 'src/browser and src/node are two sets of implementations of the same interfaces.',
      from: { path: '^src/(browser|node)/' },
      to: { path: '^src/(app|cli)/' },
    },
    { name: 'browser-not-node', severity: 'error', from: { path: '^src/browser/' }, to: { path: '^src/node/' } },
    { name: 'node-not-browser', severity: 'error', from: { path: '^src/node/' }, to: { path: '^src/browser/' } },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|dist)/' },
    tsConfig: { fileName: 'tsconfig.json' },
    tsPreCompilationDeps: true,
    enhancedResolveOptions: { extensions: ['.ts', '.js', '.svelte', '.mjs'] },
  },
};
