/**
 * `npm run cli -- SUBCOMMAND [args]`: the lab's command line, a door onto the lab service (built in
 * src/node/lab.ts). Each subcommand is one entry in the table below, loaded only when used (so
 * `exec` never loads tfjs).
 */
import { LabError } from '../core/errors';
import type { Subcommand } from './command';

const SUBCOMMANDS: Record<string, () => Promise<Subcommand>> = {
  exec: async () => (await import('./exec')).execCommand,
  infer: async () => (await import('./infer')).inferCommand,
  eval: async () => (await import('./eval')).evalCommand,
  train: async () => (await import('./train')).trainCommand,
  serve: async () => (await import('./serve')).serveCommand,
  compare: async () => (await import('./compare')).compareCommand,
  tirgen: async () => (await import('./tirgen')).tirgenCommand,
  merge: async () => (await import('./merge')).mergeCommand,
  'export-verl': async () => (await import('./export-verl')).exportVerlCommand,
};

async function main(argv: string[]): Promise<number> {
  const [name, ...args] = argv;
  if (!name || name === '--help' || name === '-h' || name === 'help') {
    await printHelp();
    return name ? 0 : 2;
  }
  const load = SUBCOMMANDS[name];
  if (!load) {
    console.error(`unknown subcommand "${name}"`);
    await printHelp();
    return 2;
  }
  const command = await load();
  if (args.includes('--help') || args.includes('-h')) {
    console.log(`usage: npm run cli -- ${command.usage}\n\n${command.summary}`);
    return 0;
  }
  return command.run(args);
}

async function printHelp(): Promise<void> {
  console.log('usage: npm run cli -- SUBCOMMAND [args]\n\nsubcommands:');
  for (const [name, load] of Object.entries(SUBCOMMANDS)) {
    const command = await load();
    console.log(`  ${name.padEnd(10)} ${command.summary}\n  ${''.padEnd(10)} npm run cli -- ${command.usage}`);
  }
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  console.error(e instanceof LabError ? `error: ${e.message}` : e);
  process.exitCode = e instanceof LabError ? 2 : 1;
}
