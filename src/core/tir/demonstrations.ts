/**
 * Demonstrations: a question and its TIR response, the data of SFT (cold start). Read from JSON-lines
 * files, or built from the synthetic tasks to teach the shipped tiny model the TIR format before any
 * RL: a mix of tool-integrated answers (a short lead-in, a ```python block, its real ```output, a boxed answer)
 * and direct answers written without a tool. The mix sets where RL starts: the model "knows the
 * format and sometimes writes code", and its own arithmetic (the direct answers) is unreliable, so
 * reward for correct answers teaches it to reach for Python.
 */
import type { Task } from '../data/tasks';
import type { Rng } from '../rng';
import { CODE_OPEN, FENCE_CLOSE, OUTPUT_OPEN, splitFences } from './format';

/** Lead-ins of a tool-using answer. The first words decide "code or not": a choice RL can move. */
export const TOOL_OPENINGS = ['Use Python.', 'Let me compute it.'];
/** Lead-ins of a direct answer. */
export const DIRECT_OPENINGS = ['In my head:', 'Directly:'];

export interface Demonstration {
  question: string;
  /** In the TIR format: ```output blocks are tool output, masked out of the loss. */
  response: string;
}

/** The response text of a tool-integrated answer; `output` is the real stdout of the program. */
export function toolResponse(task: Pick<Task, 'program' | 'answer'>, output: string, opening: string): string {
  return `${opening}\n${CODE_OPEN}${task.program}\n${FENCE_CLOSE}\n${OUTPUT_OPEN}${output.trimEnd()}\n${FENCE_CLOSE}\nSo \\boxed{${task.answer}}.`;
}

/** The response text of a direct answer (the reference answer, stated without work). */
export function directResponse(task: Pick<Task, 'answer'>, opening: string): string {
  return `${opening} \\boxed{${task.answer}}.`;
}

/**
 * Builds demonstrations: each task once, written with the tool with probability `toolShare`.
 * `outputs` maps a program to its real stdout from the sandbox (tasks without one are written directly).
 */
export function buildDemonstrations(tasks: readonly Task[], outputs: ReadonlyMap<string, string>, toolShare: number, rng: Rng): (Demonstration & { usesTool: boolean })[] {
  return tasks.map((task) => {
    const output = outputs.get(task.program);
    const usesTool = output !== undefined && rng.next() < toolShare;
    const response = usesTool ? toolResponse(task, output, rng.pick(TOOL_OPENINGS)) : directResponse(task, rng.pick(DIRECT_OPENINGS));
    return { question: task.question, response, usesTool };
  });
}

export interface BadLine {
  file: string;
  line: number;
  message: string;
}

const text = (v: unknown) => (typeof v === 'string' ? v : undefined);

/** Demonstrations from JSON lines, one {"question": …, "response": …} object a line; bad lines are listed by line number and the good ones load. */
export function readDemonstrationsJsonl(content: string, file: string): { demonstrations: Demonstration[]; skipped: BadLine[] } {
  const demonstrations: Demonstration[] = [];
  const skipped: BadLine[] = [];
  content.split(/\r?\n/).forEach((raw, i) => {
    const line = i + 1;
    if (raw.trim() === '') return;
    let row: unknown;
    try {
      row = JSON.parse(raw);
    } catch {
      skipped.push({ file, line, message: 'line is not valid JSON' });
      return;
    }
    if (typeof row !== 'object' || row === null || Array.isArray(row)) {
      skipped.push({ file, line, message: 'line is not a JSON object' });
      return;
    }
    const r = row as Record<string, unknown>;
    const question = (text(r.question) ?? text(r.problem) ?? text(r.prompt) ?? '').trim();
    const response = text(r.response) ?? text(r.completion) ?? '';
    if (question === '') skipped.push({ file, line, message: 'question is missing or empty (expected "question", "problem" or "prompt")' });
    else if (response.trim() === '') skipped.push({ file, line, message: 'response is missing or empty (expected "response" or "completion")' });
    else if (splitFences(response).some((p) => p.kind === 'output' && !p.closed)) skipped.push({ file, line, message: 'an ```output block is never closed (the rest of the response would count as tool output)' });
    else demonstrations.push({ question, response });
  });
  return { demonstrations, skipped };
}
