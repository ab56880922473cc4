/**
 * `npm run node -- [--port 8787]`: the remote node (docs/node.md), a door onto the lab service: the
 * same LabApi the browser worker serves, over a WebSocket, plus the OpenAI-compatible API, /health and
 * /metrics, on one port. tfjs runs on the machine's GPU through Dawn when it has one, else on wasm;
 * it says which. Ctrl-C stops it.
 */
import { readFileSync } from 'node:fs';
import { LabError } from '../src/core/errors';
import type { DisconnectPolicy } from '../src/core/lab/rpc';
import { parseFlags, countFlag } from '../src/cli/args';
import { loadCliModel } from '../src/cli/model-source';
import { nodeLab, parseBackend } from '../src/node/lab';
import { startLabNode } from '../src/node/lab-node';
import { parsePort } from '../src/node/openai-server';

const USAGE = `npm run node -- [--host 127.0.0.1] [--port 8787] [--token TOKEN] [--allow-origin URL ...]
       [--model DIR|hf:owner/name] [--runs DIR] [--backend webgpu,wasm] [--on-disconnect continue|pause|stop]
       [--python pyodide|cpython] [--python-bin PATH] [--python-workers N]
       [--max-body BYTES] [--max-message BYTES] [--max-in-flight N] [--quiet]`;

async function main(args: string[]): Promise<number> {
  if (args.includes('--help') || args.includes('-h')) {
    console.log(`usage: ${USAGE}`);
    return 0;
  }
  const flags = parseFlags(
    args,
    {
      host: { type: 'string' },
      port: { type: 'string' },
      token: { type: 'string' },
      'allow-origin': { type: 'string', multiple: true },
      model: { type: 'string' },
      runs: { type: 'string' },
      backend: { type: 'string' },
      'on-disconnect': { type: 'string' },
      'max-body': { type: 'string' },
      'max-message': { type: 'string' },
      'max-in-flight': { type: 'string' },
      python: { type: 'string' },
      'python-bin': { type: 'string' },
      'python-workers': { type: 'string' },
      quiet: { type: 'boolean' },
    },
    USAGE,
  );
  const onDisconnect = flags['on-disconnect'] ?? 'continue';
  if (!['continue', 'pause', 'stop'].includes(onDisconnect)) throw new LabError('cli-args', 'unknown policy', { field: '--on-disconnect', expected: 'continue, pause or stop', found: onDisconnect });
  const version = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  const runtime = flags.python ?? 'pyodide';
  if (runtime !== 'pyodide' && runtime !== 'cpython') throw new LabError('cli-args', 'unknown Python runtime', { field: '--python', expected: 'pyodide (WebAssembly, the default) or cpython (subprocesses with OS limits, docs/sandbox.md)', found: runtime });
  if (flags['python-bin'] !== undefined && runtime !== 'cpython') throw new LabError('cli-args', '--python-bin names a CPython interpreter', { field: '--python-bin', hint: 'add --python cpython' });
  const size = countFlag(flags['python-workers'], '--python-workers');
  const python = runtime === 'cpython' ? { runtime, ...(flags['python-bin'] && { python: flags['python-bin'] }), ...(size && { size }) } as const : { ...(size && { size }) };
  const lab = await nodeLab({ backend: parseBackend(flags.backend), runsDir: flags.runs, python });
  const info = await lab.init();
  console.log(`compute: ${info.name}${info.adapter ? ` (${info.adapter})` : ''}: ${info.reason}`);
  const summary = await loadCliModel(lab, flags.model);
  console.log(`model: ${summary.label}`);
  // Python is started before the node opens, so what it says about the sandbox is what runs.
  const sandbox = await lab.sandboxWarm();
  if (sandbox.state !== 'ready' || !sandbox.info) throw new LabError('python', `the Python sandbox did not start: ${sandbox.error ?? 'unknown reason'}`, { field: '--python', found: runtime });
  const py = sandbox.info;
  const pythonText = py.runtime === 'cpython' ? `cpython ${py.pythonVersion} (subprocesses with OS limits)` : `pyodide ${py.pyodideVersion}, Python ${py.pythonVersion} (WebAssembly, in worker threads)`;
  console.log(`python: ${pythonText}`);
  for (const line of py.isolation) console.log(`  ${line}`);
  const host = flags.host ?? '127.0.0.1';
  const node = await startLabNode({
    lab,
    host,
    port: parsePort(flags.port, 8787),
    token: flags.token ?? process.env.THOR_LAB_TOKEN,
    ...(flags['allow-origin'] && { allowedOrigins: flags['allow-origin'] }),
    maxBodyBytes: countFlag(flags['max-body'], '--max-body'),
    maxMessageBytes: countFlag(flags['max-message'], '--max-message'),
    maxInFlight: countFlag(flags['max-in-flight'], '--max-in-flight'),
    onDisconnect: onDisconnect as DisconnectPolicy,
    engine: { gatherMs: 10, maxBatchRows: 64 },
    python: pythonText,
    version,
    log: flags.quiet ? undefined : (line) => console.error(line),
  });
  console.log(`THOR Lab node at ${node.url} (OpenAI API at ${node.url}/v1)`);
  if (flags.token === undefined && process.env.THOR_LAB_TOKEN === undefined) console.log(`token: ${node.token}`);
  if (!['127.0.0.1', 'localhost', '::1'].includes(host)) console.log(`listening on ${host}: other machines can reach it (they still need the token)`);
  await new Promise<void>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  await node.close();
  await lab.close();
  return 0;
}

try {
  process.exitCode = await main(process.argv.slice(2));
} catch (e) {
  console.error(e instanceof LabError ? `error: ${e.message}` : e);
  process.exitCode = e instanceof LabError ? 2 : 1;
}
