/**
 * `npm run serve -- --model DIR`: the lab's engine behind an OpenAI-compatible API
 * (docs/engines.md), on 127.0.0.1 unless --host says otherwise. Requests in flight together are
 * decoded in one batch. Ctrl-C stops it.
 */
import { startOpenAIServer, parsePort } from '../node/openai-server';
import { nodeLab, parseBackend } from '../node/lab';
import { countFlag, parseFlags } from './args';
import type { Subcommand } from './command';
import { loadCliModel } from './model-source';

const USAGE = 'serve [--model DIR [--weights f32|f16]] [--name NAME] [--host 127.0.0.1] [--port 8000] [--api-key KEY] [--allow-origin URL ...] [--gather-ms 10] [--max-batch 64] [--backend wasm|webgpu|cpu] [--quiet]';

export const serveCommand: Subcommand = {
  summary: "serve the lab's model over an OpenAI-compatible API (/v1/models, /v1/completions, /v1/chat/completions)",
  usage: USAGE,
  run: async (args) => {
    const flags = parseFlags(
      args,
      {
        model: { type: 'string' },
        weights: { type: 'string' },
        name: { type: 'string' },
        host: { type: 'string' },
        port: { type: 'string' },
        'api-key': { type: 'string' },
        backend: { type: 'string' },
        quiet: { type: 'boolean' },
        'gather-ms': { type: 'string' },
        'allow-origin': { type: 'string', multiple: true },
        'max-batch': { type: 'string' },
      },
      USAGE,
    );
    const lab = await nodeLab({ backend: parseBackend(flags.backend) });
    const summary = await loadCliModel(lab, flags.model, flags.weights);
    const name = flags.name ?? (flags.model ? flags.model.replace(/\/+$/, '').split('/').pop()! : 'thor-tiny');
    const host = flags.host ?? '127.0.0.1';
    const server = await startOpenAIServer({
      model: lab.textModel({ gatherMs: flags['gather-ms'] === undefined ? 10 : Number(flags['gather-ms']), maxBatchRows: countFlag(flags['max-batch'], '--max-batch') ?? 64 }),
      name,
      host,
      port: parsePort(flags.port, 8000),
      apiKey: flags['api-key'] ?? process.env.THOR_LAB_API_KEY,
      contextLength: summary.config.max_position_embeddings,
      ...(flags['allow-origin'] && { allowedOrigins: flags['allow-origin'] }),
      log: flags.quiet ? undefined : (line) => console.error(line),
    });
    console.log(`serving ${summary.label} as "${name}" at ${server.baseURL}`);
    const keyed = (flags['api-key'] ?? process.env.THOR_LAB_API_KEY) !== undefined;
    if (!['127.0.0.1', 'localhost', '::1'].includes(host)) console.log(`listening on ${host}: other machines can reach it${keyed ? '' : ' (no API key set: consider --api-key)'}`);
    await new Promise<void>((resolve) => {
      process.once('SIGINT', resolve);
      process.once('SIGTERM', resolve);
    });
    await server.close();
    await lab.close();
    return 0;
  },
};
