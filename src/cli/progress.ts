/** Progress text for the command line. */

/** ", ETA 42 s" from the time since `started` and the work done and left, or '' before anything is done. */
export function etaText(started: number, done: number, total: number): string {
  if (done <= 0) return '';
  const eta = ((Date.now() - started) / done) * (total - done);
  if (!Number.isFinite(eta)) return '';
  return `, ETA ${durationText(eta / 1000)}`;
}

/** "42 s", "3 min 5 s", "1 h 20 min". */
function durationText(seconds: number): string {
  const s = Math.round(seconds);
  return s >= 3600 ? `${Math.floor(s / 3600)} h ${Math.round((s % 3600) / 60)} min` : s >= 60 ? `${Math.floor(s / 60)} min ${s % 60} s` : `${s} s`;
}

/** One line of a model download's progress: bytes of all files, files whole, rate and time left. */
export function downloadText(p: { done: number; total: number; files: number; filesDone: number; bytesPerSecond: number; etaSeconds: number | undefined; file: string }): string {
  const mb = (n: number) => (n / 1e6).toFixed(1);
  const eta = p.etaSeconds === undefined ? '' : `, ETA ${durationText(p.etaSeconds)}`;
  return `download ${mb(p.done)} / ${mb(p.total)} MB, ${p.filesDone}/${p.files} files, ${mb(p.bytesPerSecond)} MB/s${eta} (${p.file})`;
}
