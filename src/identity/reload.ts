export interface Poller {
  /**
   * Reads now and applies a change. The read starts after the call (a check
   * already under way is followed by a fresh one), so a caller that has just
   * changed the files sees the result once this resolves.
   */
  check(): Promise<void>;
  stop(): void;
}

/**
 * Polls some files and calls `onChange` with what was read when its `key`
 * differs from the last one. Polling, not fs.watch: Kubernetes updates
 * mounted Secrets and ConfigMaps by swapping a `..data` symlink, which
 * inotify watches on the files themselves miss; re-reading a few small files
 * every interval is cheap and always right.
 */
export function startPoller<T>(options: {
  intervalMs: number;
  initial: T;
  read: () => Promise<T>;
  key: (value: T) => string;
  onChange: (value: T) => Promise<void>;
}): Poller {
  let last = options.key(options.initial);
  let running: Promise<void> | undefined;
  let queued: Promise<void> | undefined;

  const run = async (): Promise<void> => {
    try {
      const value = await options.read();
      const key = options.key(value);
      if (key === last) return;
      last = key;
      await options.onChange(value);
    } finally {
      running = undefined;
    }
  };
  const check = (): Promise<void> => {
    if (!running) return (running = run());
    queued ??= running.catch(() => undefined).then(() => {
      queued = undefined;
      return check();
    });
    return queued;
  };
  const timer = setInterval(() => void check().catch(() => undefined), options.intervalMs);
  timer.unref();
  return { check, stop: () => clearInterval(timer) };
}
