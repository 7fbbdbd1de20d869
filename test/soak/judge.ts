import { slope, type SoakReport } from './soak.ts';

/**
 * What counts as flat.
 * - Heap: the trend of the post-GC floor (the minimum of each window of
 *   samples), not of raw heapUsed, which is a GC saw-tooth. A leak of 1 KiB
 *   per request at 100 req/s is ~6 MiB/min; the bound is well under that.
 * - RSS follows V8's heap reservation (heapTotal), which grows in steps of
 *   tens of MiB when V8 decides to and is given back lazily, so an RSS slope
 *   over minutes is not a leak signal; RSS is held to an absolute bound and
 *   its slope is reported.
 * - File descriptors: slope and spread (the pool opens and closes sockets).
 */
export const LIMITS = {
  heapFloorBytesPerMin: 2 * 2 ** 20,
  rssMaxBytes: 512 * 2 ** 20,
  fdsPerMin: 10,
  floorWindow: 6,
};

export function heapFloorSlope(report: SoakReport, window = LIMITS.floorWindow): number {
  const floors: Array<[number, number]> = [];
  for (let i = 0; i + window <= report.samples.length; i += window) {
    const part = report.samples.slice(i, i + window);
    const min = part.reduce((a, b) => (b.heap < a.heap ? b : a));
    floors.push([min.t, min.heap]);
  }
  return slope(floors) * 60;
}

export function judge(report: SoakReport, limits = LIMITS): string[] {
  const problems: string[] = [];
  if (report.errors.length) problems.push(`${report.errors.length} errors beyond the injected aborts: ${report.errors.slice(0, 5).join('; ')}`);
  if (report.sidecarErrors.length) problems.push(`${report.sidecarErrors.length} request lines with a sidecar error: ${JSON.stringify(report.sidecarErrors.slice(0, 3))}`);
  if (report.ok < report.started * 0.5) problems.push(`only ${report.ok} of ${report.started} requests completed`);
  if (report.injectedAborts === 0) problems.push('no aborts were injected');
  const floor = heapFloorSlope(report, limits.floorWindow);
  if (floor > limits.heapFloorBytesPerMin) problems.push(`post-GC heap floor grows ${(floor / 2 ** 20).toFixed(2)} MiB/min`);
  const maxRss = Math.max(...report.samples.map((s) => s.rss));
  if (maxRss > limits.rssMaxBytes) problems.push(`RSS reached ${(maxRss / 2 ** 20).toFixed(0)} MiB`);
  if (report.slopes.fdsPerMin > limits.fdsPerMin) problems.push(`open fds grow ${report.slopes.fdsPerMin.toFixed(1)}/min`);
  if (report.exitCode !== 0) problems.push(`the sidecar exited ${report.exitCode} after SIGTERM`);
  if (report.rejectedProofs.length) problems.push(`the gateway rejected proofs: ${report.rejectedProofs.slice(0, 3).join('; ')}`);
  return problems;
}
