/** `npm run cli -- infer --question "..."`: one trajectory, printed with its code cells and outputs. */
import { LabError } from '../core/errors';
import { blockBody } from '../core/tir/format';
import { responseLength, type TrajectoryRecord } from '../core/tir/types';
import { nodeLab, parseBackend } from '../node/lab';
import { configFrom, parseFlags } from './args';
import type { Subcommand } from './command';
import { ENDPOINT_FLAGS, endpointFrom } from './endpoint';
import { loadCliModel } from './model-source';

const USAGE =
  'infer --question "..." [--answer REF] [--model DIR|hf:OWNER/NAME[@REV] [--weights f32|f16] | --endpoint URL --endpoint-model NAME [--api-key KEY] [--prompt chat|text]] [--temperature T] [--seed N] [--self-correction | --no-self-correction] [--max-tool-calls C] [--max-tokens N] [--instruction TEXT] [--set section.key=value ...] [--json] [--backend wasm|webgpu|cpu]';

export const inferCommand: Subcommand = {
  summary: 'answer one question; print the trajectory with its code and outputs',
  usage: USAGE,
  run: async (args) => {
    const flags = parseFlags(
      args,
      {
        question: { type: 'string' },
        answer: { type: 'string' },
        model: { type: 'string' },
        weights: { type: 'string' },
        ...ENDPOINT_FLAGS,
        temperature: { type: 'string' },
        seed: { type: 'string' },
        'self-correction': { type: 'boolean' },
        'no-self-correction': { type: 'boolean' },
        'max-tool-calls': { type: 'string' },
        'max-tokens': { type: 'string' },
        instruction: { type: 'string' },
        set: { type: 'string', multiple: true },
        json: { type: 'boolean' },
        backend: { type: 'string' },
      },
      USAGE,
    );
    if (!flags.question?.trim()) throw new LabError('cli-args', 'no question', { field: '--question', expected: 'the question text', found: 'nothing', hint: `usage: npm run cli -- ${USAGE}` });
    if (flags['self-correction'] && flags['no-self-correction']) throw new LabError('cli-args', 'self-correction both on and off', { field: '--self-correction', hint: 'give one of --self-correction and --no-self-correction' });
    const { input } = configFrom(
      {
        sets: flags.set,
        flags: [
          { flag: '--temperature', path: 'infer.temperature', value: flags.temperature },
          { flag: '--seed', path: 'seed', value: flags.seed },
          { flag: flags['no-self-correction'] ? '--no-self-correction' : '--self-correction', path: 'infer.selfCorrection', value: flags['no-self-correction'] ? false : flags['self-correction'] },
          { flag: '--max-tool-calls', path: 'rollout.maxToolCalls', value: flags['max-tool-calls'] },
          { flag: '--max-tokens', path: 'rollout.maxResponseTokens', value: flags['max-tokens'] },
          { flag: '--instruction', path: 'rollout.instruction', value: flags.instruction },
        ],
      },
      'inference',
    );
    const endpoint = endpointFrom(flags);
    const lab = await nodeLab({ backend: parseBackend(flags.backend), python: { size: 1 } });
    try {
      if (!endpoint) await loadCliModel(lab, flags.model, flags.weights);
      const { record } = await lab.infer({ question: flags.question, reference: flags.answer, settings: input, ...(endpoint && { endpoint }) });
      console.log(flags.json ? JSON.stringify(record) : renderTrajectory(record, flags.answer !== undefined));
      return 0;
    } finally {
      await lab.close();
    }
  },
};

/** A terminal rendering: reasoning as is, code and output cells framed, discarded attempts marked. */
export function renderTrajectory(r: TrajectoryRecord, graded: boolean): string {
  const lines: string[] = [`Q: ${r.question}`, ''];
  for (const d of r.discarded) lines.push(`[self-correction: discarded attempt ${d.retry}, ${d.execution.status}: ${d.execution.observation}]`);
  for (const seg of r.segments) {
    if (seg.kind === 'text') lines.push(seg.text.replace(/<\|eos\|>$/, ''));
    else lines.push(seg.kind === 'code' ? '┌─ python ─────────' : '┌─ output ─────────', blockBody(seg.text), '└──────────────────');
  }
  lines.push('', `finished: ${r.finishReason}, ${responseLength(r)} tokens, ${r.executions.length} tool call(s)`);
  if (graded) lines.push(`answer: ${r.finalAnswer ?? '(none)'}  reference: ${r.reference}  ${r.correct ? 'correct' : 'wrong'}`);
  else if (r.finalAnswer !== null) lines.push(`answer: ${r.finalAnswer}`);
  return lines.join('\n');
}
