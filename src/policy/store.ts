import { readFile } from 'node:fs/promises';
import { compilePolicy, type LocalPolicy } from './local.ts';
import { startPoller } from '../reload.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

export interface PolicyStore {
  current(): LocalPolicy;
  reload(): Promise<void>;
  close(): void;
}

/**
 * Loads the local policy file and keeps it current. An invalid file at start
 * is an error (the caller exits); later, an invalid, unreadable or removed
 * file keeps the rules in force, logs why and counts a failed reload.
 */
export async function openPolicyStore(options: {
  file: string;
  reloadIntervalMs: number;
  logger: Logger;
  metrics: Metrics;
}): Promise<PolicyStore> {
  const { file, logger, metrics } = options;
  const log = logger.child({ component: 'policy' });
  const text = await readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => {
    throw new Error(`cannot read FIRSTOPS_POLICY_FILE ${file}: ${err.code ?? err.message}`);
  });
  let policy = compilePolicy(text, file);
  log.info({ file, rules: policy.ruleCount }, 'local policy loaded');

  const poller = startPoller<string | Error>({
    intervalMs: options.reloadIntervalMs,
    initial: text,
    read: () => readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => new Error(`cannot read ${file}: ${err.code ?? err.message}`)),
    key: (read) => (read instanceof Error ? `\0${read.message}` : read),
    onChange: async (read) => {
      try {
        if (read instanceof Error) throw read;
        policy = compilePolicy(read, file);
        metrics.policyReloads.inc({ result: 'success' });
        log.info({ file, rules: policy.ruleCount }, 'local policy reloaded');
      } catch (err) {
        metrics.policyReloads.inc({ result: 'failure' });
        log.error({ file, err: { message: (err as Error).message } }, 'policy file rejected; keeping the rules in force');
      }
    },
  });
  return { current: () => policy, reload: poller.check, close: poller.stop };
}
