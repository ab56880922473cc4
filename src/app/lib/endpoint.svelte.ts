/**
 * The OpenAI-compatible endpoint the Eval and Inference panels can ask instead of the loaded model
 * (docs/engines.md): one per page, so both panels point at the same server. URL, model, requests in
 * flight and prompt form are remembered in this browser; the API key stays in the page's memory only.
 */
import type { EndpointSpec } from '../../core/lab/index';

const KEY = 'thor-lab:endpoint';

function saved(): Partial<EndpointSpec> {
  try {
    return JSON.parse(localStorage.getItem(KEY) ?? '{}') as Partial<EndpointSpec>;
  } catch {
    return {};
  }
}

class EndpointChoice {
  /** Which model the panels ask: the loaded one, or the endpoint. */
  target = $state<'local' | 'endpoint'>('local');
  url = $state(saved().baseURL ?? 'http://127.0.0.1:8000/v1');
  model = $state(saved().model ?? '');
  key = $state('');
  concurrency = $state(saved().concurrency ?? 16);
  prompt = $state<'chat' | 'text'>(saved().prompt ?? 'chat');

  /** What is wrong with the endpoint fields, or null (also null while the loaded model is chosen). */
  get problem(): string | null {
    if (this.target !== 'endpoint') return null;
    try {
      const u = new URL(this.url);
      if (!['http:', 'https:'].includes(u.protocol)) return 'Endpoint URL: expected http:// or https://.';
    } catch {
      return 'Endpoint URL: expected a URL such as http://127.0.0.1:8000/v1.';
    }
    if (this.model.trim() === '') return 'Endpoint model: expected the name the server lists under /v1/models.';
    if (!Number.isInteger(this.concurrency) || this.concurrency < 1 || this.concurrency > 256) return 'Requests in flight: expected a whole number from 1 to 256.';
    return null;
  }

  /** The endpoint to send with a request (remembering its fields), or undefined for the loaded model. */
  spec(): EndpointSpec | undefined {
    if (this.target !== 'endpoint') return undefined;
    const spec = { baseURL: this.url.trim(), model: this.model.trim(), concurrency: this.concurrency, prompt: this.prompt };
    localStorage.setItem(KEY, JSON.stringify(spec));
    return { ...spec, ...(this.key && { apiKey: this.key }) };
  }

  /** How the chosen endpoint is named in results ("Qwen2.5-7B @ http://host:8000"). */
  label(): string {
    try {
      return `${this.model.trim()} @ ${new URL(this.url).origin}`;
    } catch {
      return this.model;
    }
  }
}

export const endpoint = new EndpointChoice();
