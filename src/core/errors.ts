/**
 * Typed errors that say what went wrong and what to do about it: where (file, line, field),
 * what was expected and what was found.
 */
export interface LabErrorDetails {
  file?: string;
  line?: number;
  field?: string;
  expected?: string;
  found?: string;
  hint?: string;
}

export class LabError extends Error {
  readonly details: LabErrorDetails;
  readonly code: string;

  constructor(code: string, message: string, details: LabErrorDetails = {}) {
    super(LabError.compose(message, details));
    this.name = 'LabError';
    this.code = code;
    this.details = details;
  }

  private static compose(message: string, d: LabErrorDetails): string {
    const where = [d.file, d.line !== undefined ? `line ${d.line}` : undefined, d.field ? `field "${d.field}"` : undefined]
      .filter(Boolean)
      .join(', ');
    let text = where ? `${where}: ${message}` : message;
    if (d.expected !== undefined || d.found !== undefined) text += ` (expected ${d.expected ?? '?'}, found ${d.found ?? '?'})`;
    if (d.hint) text += `. ${d.hint}`;
    return text;
  }
}

/** Plain-object form of an error, safe to send across postMessage / Comlink. */
export function errorToPlain(e: unknown): { name: string; code?: string; message: string; details?: LabErrorDetails } {
  if (e instanceof LabError) return { name: e.name, code: e.code, message: e.message, details: e.details };
  if (e instanceof Error) return { name: e.name, message: e.message };
  return { name: 'Error', message: String(e) };
}

/**
 * The text no longer fits the model's context: an endpoint said so (`endpoint-context`, from the
 * OpenAI client) or the lab's own model refused the prompt (`request`, from its checks).
 */
export function isContextError(e: unknown): e is LabError {
  return e instanceof LabError && (e.code === 'endpoint-context' || (e.code === 'request' && /context/.test(e.message)));
}
