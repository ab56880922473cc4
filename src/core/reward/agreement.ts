/**
 * Agreement of the answer checker with a table of labelled cases (docs/reward.md, "Agreement"): each
 * case holds a reference ("gold"), a prediction and whether the two should be judged equal. Both texts
 * go through the same extraction (a bare answer is taken whole; else boxed answers first, then "the
 * answer is", the last math span or number), then through isEquivalent. A false positive is a case expected different that the
 * checker calls equal; a miss is the opposite.
 */
import { LabError } from '../errors';
import { isEquivalent, type SymbolicChecker } from './equivalence';
import { ALL_METHODS, extractAnswer, type ExtractionMethod } from './extract';

/** Which kinds of answer a case lets the extractor look for (Math-Verify's match_types): LaTeX, plain numbers, or both. */
export type CaseTarget = 'latex' | 'expr';

export interface EquivalenceCase {
  /** The reference: a bare answer or a whole solution text. */
  gold: string;
  /** The prediction: a bare answer or a whole response. */
  prediction: string;
  /** Should the two be judged equal? */
  expected: boolean;
  /** Where the case comes from ("tests/test_all.py::test_relations_math[3]", "hostile: list joining"). */
  source: string;
  note?: string;
  /** Kinds of answer to extract; both when absent. */
  targets?: CaseTarget[];
}

export interface AgreementResult {
  total: number;
  /** Cases where the checker's verdict equals the expected one. */
  agree: number;
  /** agree / total (0 for an empty table). */
  agreement: number;
  /** Expected different, judged equal. */
  falsePositives: EquivalenceCase[];
  /** Expected equal, judged different. */
  misses: EquivalenceCase[];
}

const LATEX_METHODS: readonly ExtractionMethod[] = ['boxed', 'answer_is', 'final_math'];
const EXPR_METHODS: readonly ExtractionMethod[] = ['gsm8k', 'answer_is', 'last_number'];

/** The extraction methods a case allows, in the order tried. */
export function caseMethods(c: Pick<EquivalenceCase, 'targets'>): readonly ExtractionMethod[] {
  const targets = c.targets ?? ['latex', 'expr'];
  return ALL_METHODS.filter((m) => (targets.includes('latex') && LATEX_METHODS.includes(m)) || (targets.includes('expr') && EXPR_METHODS.includes(m)));
}

/**
 * A bare answer, stored as reference answers are: no math delimiters, no box, and at most one word
 * of three letters or more outside LaTeX commands and \\text{} ("\\frac{10}{9}", "7425000",
 * "x \\in [-2,7]", "five", "6 \\text{ and } 8", "28 percent"). Anything longer is a response.
 */
export function isBareAnswer(text: string): boolean {
  const t = text.trim();
  if (t === '' || t.length > 200 || /\$|\\[([]|\\(?:boxed|fbox)(?![a-zA-Z])/.test(t)) return false;
  const prose = t.replace(/\\(?:text|textbf|textit|textrm|mbox|mathrm)\s*\{[^{}]*\}/g, ' ');
  return (prose.match(/(?<![\\a-zA-Z])[a-zA-Z]{3,}/g) ?? []).length <= 1;
}

/** The answer read from one side of a case: a bare answer whole, else what the extractor finds (undefined when nothing). */
export function caseAnswer(text: string, c: Pick<EquivalenceCase, 'targets'> = {}): string | undefined {
  if (isBareAnswer(text)) return text.trim();
  return extractAnswer(text, caseMethods(c))?.answer;
}

/** The checker's verdict on one case: both sides extracted, then compared (prediction first). */
export async function judgeCase(c: EquivalenceCase, checker?: SymbolicChecker): Promise<boolean> {
  const gold = caseAnswer(c.gold, c);
  const prediction = caseAnswer(c.prediction, c);
  if (gold === undefined || prediction === undefined) return false;
  return isEquivalent(prediction, gold, checker);
}

/**
 * Runs the checker on every case. With a SymbolicChecker (sympy in the sandbox) the pairs the cheap
 * checks leave open are decided by it; without one they count as different.
 */
export async function measureAgreement(cases: EquivalenceCase[], checker?: SymbolicChecker): Promise<AgreementResult> {
  const verdicts = await Promise.all(cases.map((c) => judgeCase(c, checker)));
  const falsePositives = cases.filter((c, i) => verdicts[i] && !c.expected);
  const misses = cases.filter((c, i) => !verdicts[i] && c.expected);
  const agree = cases.length - falsePositives.length - misses.length;
  return { total: cases.length, agree, agreement: cases.length === 0 ? 0 : agree / cases.length, falsePositives, misses };
}

/**
 * Parses a JSONL table of cases (one JSON object a line; blank lines are skipped). A bad line throws a
 * LabError naming the file, the line and the field.
 */
export function parseEquivalenceCases(text: string, file: string): EquivalenceCase[] {
  const cases: EquivalenceCase[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = index + 1;
    if (raw.trim() === '') return;
    let value: unknown;
    try {
      value = JSON.parse(raw);
    } catch (e) {
      throw new LabError('equivalence-case', 'the line is not valid JSON', { file, line, found: e instanceof Error ? e.message : String(e) });
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw new LabError('equivalence-case', 'each line must be a JSON object', { file, line, found: Array.isArray(value) ? 'an array' : typeof value });
    }
    const o = value as Record<string, unknown>;
    const field = (name: string, ok: boolean, expected: string) => {
      if (!ok) throw new LabError('equivalence-case', 'bad field', { file, line, field: name, expected, found: JSON.stringify(o[name]) ?? 'nothing' });
    };
    field('gold', typeof o.gold === 'string', 'a string');
    field('prediction', typeof o.prediction === 'string', 'a string');
    field('expected', typeof o.expected === 'boolean', 'true or false');
    field('source', typeof o.source === 'string' && o.source !== '', 'a non-empty string');
    field('note', o.note === undefined || typeof o.note === 'string', 'a string when present');
    field(
      'targets',
      o.targets === undefined || (Array.isArray(o.targets) && o.targets.length > 0 && o.targets.every((t) => t === 'latex' || t === 'expr')),
      'a non-empty list of "latex" and "expr" when present',
    );
    const known = new Set(['gold', 'prediction', 'expected', 'source', 'note', 'targets']);
    const unknown = Object.keys(o).find((k) => !known.has(k));
    if (unknown !== undefined) throw new LabError('equivalence-case', 'unknown field', { file, line, field: unknown, expected: [...known].join(', ') });
    cases.push({
      gold: o.gold as string,
      prediction: o.prediction as string,
      expected: o.expected as boolean,
      source: o.source as string,
      ...(o.note !== undefined ? { note: o.note as string } : {}),
      ...(o.targets !== undefined ? { targets: o.targets as CaseTarget[] } : {}),
    });
  });
  return cases;
}
