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

  /** Like push, but values for the x of the last point join that point (a held-out evaluation after its step). */
  put(x: number, values: readonly (number | null | undefined)[]): void {
    const last = this.columns[0].length - 1;
    if (last < 0 || this.columns[0][last] !== x) return this.push(x, values);
    for (let s = 0; s < this.seriesCount; s++) {
      const v = values[s];
      if (typeof v === 'number' && Number.isFinite(v)) this.columns[s + 1][last] = v;
    }
    this.version++;
  }

  clear(): void {
    for (const c of this.columns) c.length = 0;
    this.version++;
  }

  /** Chart columns from rows of named figures (e.g. stored per-step metrics), rows of the same x merged. */
  static fromRows(rows: readonly Record<string, unknown>[], x: string, keys: readonly string[]): ChartData {
    const data = new ChartData(keys.length);
    const sorted = rows.filter((r) => typeof r[x] === 'number').sort((a, b) => (a[x] as number) - (b[x] as number));
    for (const row of sorted) data.put(row[x] as number, keys.map((k) => row[k] as number | null | undefined));
    return data;
  }
}
