/**
 * A run's report card: the curves as SVG images and the figures as markdown. Pure text, so the same
 * report is written by the command line and exported from the browser.
 */

export interface Series {
  name: string;
  points: [number, number][];
}

const COLORS = ['#e0a84a', '#5fa8e0', '#5fbf7a', '#e06c6c', '#b48ee0', '#8b95a3'];

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

function niceNumber(v: number): string {
  if (v === 0) return '0';
  const a = Math.abs(v);
  if (a >= 1000 || a < 0.01) return v.toExponential(1);
  return Number(v.toPrecision(3)).toString();
}

/** Round tick positions covering [lo, hi]: about `count` steps of 1, 2, 2.5 or 5 × 10^k. */
export function niceTicks(lo: number, hi: number, count = 4): number[] {
  const raw = (hi - lo) / count;
  const magnitude = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * magnitude).find((v) => v >= raw * (1 - 1e-9))!;
  const first = Math.floor(lo / step + 1e-9);
  const last = Math.ceil(hi / step - 1e-9);
  return Array.from({ length: last - first + 1 }, (_, i) => Number(((first + i) * step).toPrecision(12)));
}

/** A line chart of one or more series as a standalone SVG document. */
export function svgLineChart(title: string, series: Series[], xLabel = 'step', width = 560, height = 300): string {
  const pad = { left: 56, right: 16, top: 44, bottom: 40 };
  const all = series.flatMap((s) => s.points).filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
  const xs = all.map((p) => p[0]);
  const ys = all.map((p) => p[1]);
  let [x0, x1] = [Math.min(...xs), Math.max(...xs)];
  let [y0, y1] = [Math.min(...ys), Math.max(...ys)];
  if (!all.length) [x0, x1, y0, y1] = [0, 1, 0, 1];
  if (x0 === x1) x1 = x0 + 1;
  if (y0 === y1) [y0, y1] = [y0 - 0.5, y1 + 0.5];
  const xTicks = niceTicks(x0, x1);
  const yTicks = niceTicks(y0, y1);
  [x0, x1] = [xTicks[0], xTicks[xTicks.length - 1]];
  [y0, y1] = [yTicks[0], yTicks[yTicks.length - 1]];
  const W = width - pad.left - pad.right;
  const H = height - pad.top - pad.bottom;
  const sx = (x: number) => pad.left + ((x - x0) / (x1 - x0)) * W;
  const sy = (y: number) => pad.top + H - ((y - y0) / (y1 - y0)) * H;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#ffffff"/>`,
    `<text x="${pad.left}" y="18" font-size="13" font-weight="bold">${esc(title)}</text>`,
  ];
  for (const y of yTicks) {
    parts.push(`<line x1="${pad.left}" x2="${pad.left + W}" y1="${sy(y)}" y2="${sy(y)}" stroke="#e5e5e5"/>`);
    parts.push(`<text x="${pad.left - 6}" y="${sy(y) + 4}" text-anchor="end" fill="#555">${niceNumber(y)}</text>`);
  }
  for (const x of xTicks) parts.push(`<text x="${sx(x)}" y="${pad.top + H + 16}" text-anchor="middle" fill="#555">${niceNumber(x)}</text>`);
  parts.push(`<text x="${pad.left + W / 2}" y="${height - 6}" text-anchor="middle" fill="#555">${esc(xLabel)}</text>`);
  series.forEach((s, i) => {
    const pts = s.points.filter(([x, y]) => Number.isFinite(x) && Number.isFinite(y));
    const color = COLORS[i % COLORS.length];
    if (pts.length > 1) parts.push(`<polyline fill="none" stroke="${color}" stroke-width="2" points="${pts.map(([x, y]) => `${sx(x).toFixed(1)},${sy(y).toFixed(1)}`).join(' ')}"/>`);
    for (const [x, y] of pts.length <= 40 ? pts : []) parts.push(`<circle cx="${sx(x).toFixed(1)}" cy="${sy(y).toFixed(1)}" r="2.5" fill="${color}"/>`);
    parts.push(`<rect x="${pad.left + 8 + i * 130}" y="${pad.top - 16}" width="10" height="3" fill="${color}"/>`);
    parts.push(`<text x="${pad.left + 22 + i * 130}" y="${pad.top - 12}" fill="#333">${esc(s.name)}</text>`);
  });
  parts.push('</svg>');
  return parts.join('\n') + '\n';
}

/** Points (step, metric) of every row that has a finite number for the metric. */
export function metricSeries(rows: readonly Record<string, unknown>[], metric: string, name = metric, x = 'step'): Series {
  const points: [number, number][] = [];
  for (const r of rows) {
    const xv = r[x];
    const yv = r[metric];
    if (typeof xv === 'number' && typeof yv === 'number' && Number.isFinite(yv)) points.push([xv, yv]);
  }
  return { name, points };
}

/** The charts of a training run: file name -> SVG. */
export function trainingCharts(metrics: readonly Record<string, unknown>[], evals: readonly Record<string, unknown>[]): Map<string, string> {
  const charts = new Map<string, string>();
  charts.set('reward.svg', svgLineChart('Reward and accuracy (training rollouts)', [metricSeries(metrics, 'reward_mean', 'reward'), metricSeries(metrics, 'accuracy')]));
  charts.set('tools.svg', svgLineChart('Tool use', [metricSeries(metrics, 'code_ratio', 'code ratio'), metricSeries(metrics, 'pass_ratio', 'pass ratio'), metricSeries(metrics, 'tool_calls_per_response', 'calls / response')]));
  charts.set('length.svg', svgLineChart('Response length (tokens)', [metricSeries(metrics, 'response_length_mean', 'mean')]));
  charts.set('policy.svg', svgLineChart('Policy update', [metricSeries(metrics, 'clip_fraction', 'clip fraction'), metricSeries(metrics, 'approx_kl', 'approx KL'), metricSeries(metrics, 'entropy')]));
  charts.set('time.svg', svgLineChart('Time per phase (s)', [metricSeries(metrics, 'time_rollout_s', 'rollout'), metricSeries(metrics, 'time_step_level_s', 'step level'), metricSeries(metrics, 'time_update_s', 'update')]));
  if (evals.length) charts.set('eval.svg', svgLineChart('Held-out evaluation', [metricSeries(evals, 'accuracy'), metricSeries(evals, 'code_ratio', 'code ratio'), metricSeries(evals, 'pass_ratio', 'pass ratio')]));
  return charts;
}

const fmt = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(3)) : v === null || v === undefined ? '—' : String(v));

/** The report card in markdown; charts are referenced as images next to it. */
export function renderReport(title: string, config: unknown, metrics: readonly Record<string, unknown>[], evals: readonly Record<string, unknown>[], charts: Iterable<string>): string {
  const lines = [`# ${title}`, ''];
  if (evals.length) {
    const keys = ['step', 'accuracy', 'maj_at_k', 'code_ratio', 'pass_ratio', 'p_correct_given_code_ok', 'p_correct_given_code_failed'];
    lines.push('## Held-out evaluation', '', `| ${keys.join(' | ')} |`, `|${keys.map(() => '---').join('|')}|`);
    for (const e of evals) lines.push(`| ${keys.map((k) => fmt(e[k])).join(' | ')} |`);
    lines.push('');
  }
  if (metrics.length) {
    const last = metrics[metrics.length - 1];
    const first = metrics[0];
    const keys = ['reward_mean', 'accuracy', 'code_ratio', 'pass_ratio', 'response_length_mean', 'time_step_s'];
    lines.push('## Training', '', `${metrics.length} steps.`, '', `| metric | first step | last step |`, `|---|---|---|`);
    for (const k of keys) lines.push(`| ${k} | ${fmt(first[k])} | ${fmt(last[k])} |`);
    lines.push('');
  }
  lines.push('## Curves', '');
  for (const file of charts) lines.push(`![${file.replace(/\.svg$/, '')}](${file})`, '');
  lines.push('## Configuration', '', '```json', JSON.stringify(config, null, 2), '```', '');
  return lines.join('\n');
}

/** The report card of a run and its charts, by file name (report.md, *.svg), as the run folder keeps them. */
export function reportFiles(title: string, config: unknown, metrics: readonly Record<string, unknown>[], evals: readonly Record<string, unknown>[]): Record<string, string> {
  const charts = trainingCharts(metrics, evals);
  return { 'report.md': renderReport(title, config, metrics, evals, charts.keys()), ...Object.fromEntries(charts) };
}
