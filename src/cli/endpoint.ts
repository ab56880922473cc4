/** The command line's endpoint flags (docs/engines.md), shared by eval and infer. */
import { LabError } from '../core/errors';
import type { EndpointSpec } from '../core/lab/api';
import { countFlag } from './args';

export const ENDPOINT_FLAGS = {
  endpoint: { type: 'string' },
  'endpoint-model': { type: 'string' },
  'api-key': { type: 'string' },
  prompt: { type: 'string' },
} as const;

/** The endpoint the flags name, or undefined without --endpoint; flags that need --endpoint are refused without it. */
export function endpointFrom(flags: { endpoint?: string; 'endpoint-model'?: string; 'api-key'?: string; concurrency?: string; prompt?: string; model?: string }): EndpointSpec | undefined {
  if (!flags.endpoint) {
    for (const f of ['endpoint-model', 'api-key', 'concurrency', 'prompt'] as const) if (flags[f] !== undefined) throw new LabError('cli-args', `--${f} needs --endpoint`, { field: `--${f}` });
    return undefined;
  }
  if (flags.model) throw new LabError('cli-args', 'give --model (the lab evaluates a model folder) or --endpoint (a server), not both', { field: '--model' });
  if (!flags['endpoint-model']) throw new LabError('cli-args', '--endpoint needs --endpoint-model (a name the server lists under /v1/models)', { field: '--endpoint-model' });
  if (flags.prompt !== undefined && flags.prompt !== 'chat' && flags.prompt !== 'text') throw new LabError('cli-args', 'unknown prompt form', { field: '--prompt', expected: 'chat or text', found: flags.prompt });
  return {
    baseURL: flags.endpoint,
    model: flags['endpoint-model'],
    ...(flags['api-key'] !== undefined ? { apiKey: flags['api-key'] } : process.env.OPENAI_API_KEY ? { apiKey: process.env.OPENAI_API_KEY } : {}),
    ...(flags.concurrency !== undefined && { concurrency: countFlag(flags.concurrency, '--concurrency') }),
    ...(flags.prompt !== undefined && { prompt: flags.prompt as 'chat' | 'text' }),
  };
}
