/** Progress text for the command line. */

/** ", ETA 42 s" from the time since `started` and the work done and left, or '' before anything is done. */
export function etaText(started: number, done: number, total: number): string {
  if (done <= 0) return '';
  const eta = ((Date.now() - started) / done) * (total - done);
  if (!Number.isFinite(eta)) return '';
  const s = Math.round(eta / 1000);
  return `, ETA ${s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`}`;
}
