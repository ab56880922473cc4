/**
 * Columns of a live chart: x values and one column per series, appended to in place (no copies,
 * no deep reactive proxies on big arrays). `version` is the only reactive part: a chart redraws
 * when it changes, at most once per animation frame however many points arrive.
 */
export class ChartData {
  /** [x, series1, series2, …], the layout uPlot draws from. */
  readonly columns: (number | null)[][];
  version = $state(0);

  constructor(readonly seriesCount: number) {
    this.columns = Array.from({ length: seriesCount + 1 }, () => []);
  }

  get length(): number {
    return this.columns[0].length;
  }

  /** Adds one point per series at x; a missing or non-finite value leaves a gap in that line. */
  push(x: number, values: readonly (number | null | undefined)[]): void {
    this.columns[0].push(x);
    for (let s = 0; s < this.seriesCount; s++) {
      const v = values[s];
      this.columns[s + 1].push(typeof v === 'number' && Number.isFinite(v) ? v : null);
    }
    this.version++;
  }

  clear(): void {
    for (const c of this.columns) c.length = 0;
    this.version++;
  }

  /** Chart columns from rows of named figures (e.g. stored per-step metrics). */
  static fromRows(rows: readonly Record<string, unknown>[], x: string, keys: readonly string[]): ChartData {
    const data = new ChartData(keys.length);
    for (const row of rows) {
      const xv = row[x];
      if (typeof xv === 'number') data.push(xv, keys.map((k) => row[k] as number | null | undefined));
    }
    return data;
  }
}
