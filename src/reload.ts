export interface Poller {
  /** Runs one check now (tests call it instead of waiting for the timer). */
  check(): Promise<void>;
  stop(): void;
}

/**
 * Polls a snapshot of some files and calls `onChange` when it differs from the
 * last one. Polling, not fs.watch: Kubernetes updates mounted Secrets and
 * ConfigMaps by swapping a `..data` symlink, which inotify watches on the
 * files themselves miss; re-reading a few small files every interval is cheap
 * and always right.
 */
export function startPoller(options: {
  intervalMs: number;
  initial: string;
  snapshot: () => Promise<string>;
  onChange: (snapshot: string) => Promise<void>;
}): Poller {
  let last = options.initial;
  let running: Promise<void> | undefined;
  const check = (): Promise<void> => {
    running ??= (async () => {
      try {
        const next = await options.snapshot();
        if (next === last) return;
        last = next;
        await options.onChange(next);
      } finally {
        running = undefined;
      }
    })();
    return running;
  };
  const timer = setInterval(() => void check().catch(() => undefined), options.intervalMs);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
