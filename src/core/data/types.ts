/** A question with a reference answer, from a generator or a benchmark file. */
export interface Problem {
  /** Stable id: the generator's hash of the question text, or the file's own id. */
  id: string;
  question: string;
  /** Reference answer as a string (canonical for generated tasks; as written in the file otherwise). */
  answer: string;
  /** Where it came from: "synthetic" or the file name. */
  source: string;
  /** Worked solution when the file has one (MATH, GSM8K). */
  solution?: string;
  /** Task family or subject (e.g. "multiply", "Algebra"). */
  kind?: string;
  /** Difficulty grade (generators: 1..MAX_DIFFICULTY; MATH: its level). */
  difficulty?: number;
}
