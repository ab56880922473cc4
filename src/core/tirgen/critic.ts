/**
 * TIRGen's critic (docs/tirgen.md#critic): it sees one step of the actor's answer, never the question
 * or the reference, and either leaves it alone (no computation in it), rewrites its computation as
 * ```python blocks that print their results, or gives a reply the lab cannot use (counted, never
 * fatal). The lab then runs the blocks itself; the critic never runs code.
 *
 * Two critics: the rule critic (rule-critic.ts) for the synthetic tasks, and ModelCritic here, any
 * TextModel (the lab's own model or an OpenAI-compatible endpoint) with the lab's critic prompt.
 */
import { LabError } from '../errors';
import type { TextModel } from '../llm/types';
import { splitFences } from '../tir/format';

export type CriticInvalidReason =
  /** A reply with no ```python block that is not the step itself. */
  | 'no-code'
  /** A reply whose only code block never closes. */
  | 'unclosed-code'
  /** A reply whose words are not the step's: the critic answered something else. */
  | 'not-a-rewrite'
  /** An empty reply (or only thinking). */
  | 'empty'
  /** The critic's prompt did not fit the critic's context. */
  | 'too-long';

export const CRITIC_INVALID_REASONS: readonly CriticInvalidReason[] = ['no-code', 'unclosed-code', 'not-a-rewrite', 'empty', 'too-long'];

export type CriticVerdict =
  | { kind: 'unchanged'; reply?: string }
  /** `text`: the step's reasoning with ```python blocks (an ```output block after a block is the critic's prediction, replaced by the real output). */
  | { kind: 'rewrite'; text: string; reply?: string }
  | { kind: 'invalid'; reason: CriticInvalidReason; detail?: string; reply?: string };

export interface CriticOptions {
  signal?: AbortSignal;
  /** Seed of a sampled critic's reply. */
  seed?: number;
}

export interface Critic {
  /** What to call it in reports ("rule", "model: Qwen3-32B @ http://…"). */
  readonly label: string;
  /** Looks at one step alone. Throws only when the critic itself is gone (an endpoint that fails); bad replies are verdicts. */
  revise(step: string, options?: CriticOptions): Promise<CriticVerdict>;
}

/**
 * The lab's critic prompt: one worked example, and the step in place of {step}. The critic is told it
 * sees a step alone, to keep its words, to make every block independent and printing, and to say
 * NO COMPUTATION when there is nothing to compute.
 */
export const CRITIC_PROMPT = `You revise one step of a solution to a math problem so that its computation is done by Python.
You see only this step, not the problem. Do not solve the problem and do not add reasoning of your own.

- If the step has no computation that a program should do (it only sets up, explains or states an answer), reply with exactly: NO COMPUTATION
- Otherwise copy the step's words up to each computation, and replace the computation and the result the step claims for it by a \`\`\`python block that computes it and prints the result.
- Every block is independent: it imports what it needs, uses no variable of another block, and prints what it computes.
- After a block you may give the output you expect in an \`\`\`output block; the real output will replace it.
- Keep any \`\`\`python block the step already has. Stop after the last block: the rest of the step will be written again from the real output.

Example step:
The two numbers are 1071 and 462. Their greatest common divisor is 21, so the fraction 462/1071 reduces to 22/51, and the answer is \\boxed{22/51}.

Example rewrite:
The two numbers are 1071 and 462. Their greatest common divisor, and the fraction 462/1071 reduced:
\`\`\`python
from math import gcd
from fractions import Fraction
print(gcd(1071, 462))
print(Fraction(462, 1071))
\`\`\`
\`\`\`output
21
22/51
\`\`\`

Step:
{step}

Rewrite:
`;

/** A critic prompt with the step in place of {step}. */
export function criticPrompt(step: string, template = CRITIC_PROMPT): string {
  return template.includes('{step}') ? template.split('{step}').join(step) : `${template}${step}`;
}

/** Words of prose for the overlap test: letter words of 3+ letters, and numbers. */
function words(text: string): string[] {
  return text.toLowerCase().match(/[a-z]{3,}|\d+(?:\.\d+)?/g) ?? [];
}

const squash = (s: string) => s.replace(/\s+/g, ' ').trim();

/**
 * Reads a critic's reply: thinking dropped, a "Rewrite:" label dropped, "NO COMPUTATION" (or the step
 * given back as it was) is unchanged; a rewrite needs a closed ```python block (a block cut off at the
 * end is dropped) and prose that mostly reuses the step's words.
 */
export function parseCriticReply(reply: string, step: string, minOverlap: number): CriticVerdict {
  let text = reply.replace(/<think>[\s\S]*?<\/think>/g, '');
  if (/<think>/.test(text)) text = text.slice(0, text.indexOf('<think>'));
  // Other spellings of the python fence that critics write.
  text = text.replace(/```(?:py|python3|Python)[ \t]*\n/g, '```python\n');
  text = text.replace(/^\s*(?:\*\*)?(?:rewrite|revised step|revision|rewritten step)(?:\*\*)?\s*:[ \t]*\n?/i, '');
  if (text.trim() === '') return { kind: 'invalid', reason: 'empty', reply };
  if (/^\s*\**no[ _-]?computation\b/i.test(text)) return { kind: 'unchanged', reply };
  const pieces = splitFences(text);
  const open = pieces.find((p) => p.kind === 'code' && !p.closed);
  if (open) text = text.slice(0, open.start);
  const closedCode = pieces.filter((p) => p.kind === 'code' && p.closed && p.end <= text.length);
  if (closedCode.length === 0) {
    if (squash(text) === squash(step) || /\bno[ _-]?computation\b/i.test(text)) return { kind: 'unchanged', reply };
    return { kind: 'invalid', reason: open ? 'unclosed-code' : 'no-code', reply };
  }
  const stepWords = new Set(words(step));
  const prose = splitFences(text)
    .filter((p) => p.kind === 'text')
    .flatMap((p) => words(p.body));
  if (prose.length >= 4) {
    const shared = prose.filter((w) => stepWords.has(w)).length / prose.length;
    if (shared < minOverlap) return { kind: 'invalid', reason: 'not-a-rewrite', detail: `${Math.round(shared * 100)}% of its words are the step's`, reply };
  }
  return { kind: 'rewrite', text: text.replace(/^\s*\n/, ''), reply };
}

export interface ModelCriticOptions {
  temperature: number;
  maxTokens: number;
  topK?: number;
  topP?: number;
  minOverlap: number;
  /** The prompt, with {step} where the step goes (default CRITIC_PROMPT). */
  template?: string;
}

/** A critic that is a language model: the lab's own, or an OpenAI-compatible endpoint (THOR: Qwen3-32B, non-thinking). */
export class ModelCritic implements Critic {
  readonly label: string;
  constructor(
    readonly model: TextModel,
    readonly options: ModelCriticOptions,
  ) {
    this.label = `model: ${model.label}`;
  }

  async revise(step: string, options: CriticOptions = {}): Promise<CriticVerdict> {
    const o = this.options;
    let text: string;
    try {
      const out = await this.model.complete(
        [{ role: 'user', content: criticPrompt(step, o.template) }],
        { maxTokens: o.maxTokens, temperature: o.temperature, ...(o.topK !== undefined && { topK: o.topK }), ...(o.topP !== undefined && { topP: o.topP }), ...(options.seed !== undefined && { seed: options.seed }) },
        { signal: options.signal },
      );
      text = out.choices[0]?.text ?? '';
    } catch (e) {
      // A prompt longer than the critic's context fails this step only; any other failure is the critic's own.
      if (e instanceof LabError && (e.code === 'endpoint-context' || (e.code === 'request' && /context/.test(e.message)))) return { kind: 'invalid', reason: 'too-long', detail: e.message };
      throw e;
    }
    return parseCriticReply(text, step, o.minOverlap);
  }
}
