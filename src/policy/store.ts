import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { parse as parseYaml } from 'yaml';
import { compilePolicy, type LocalPolicy } from './local.ts';
import { startPoller } from '../identity/reload.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

/** The outcome of the last reload that found a changed file. */
export interface ReloadResult {
  readonly at: string;
  readonly result: 'success' | 'failure';
  readonly error?: string;
}

/** What is loaded, for the debug listener: never rule contents beyond their ids. */
export interface PolicyStatus {
  readonly file: string;
  /** sha256 (hex) of the file text the rules in force were compiled from. */
  readonly sha256: string;
  readonly ruleIds: readonly string[];
  readonly loadedAt: string;
  readonly lastReload: ReloadResult | undefined;
}

/** Rule ids in file order, from a text compilePolicy accepted. */
function ruleIdsOf(text: string): string[] {
  const doc = parseYaml(text) as { rules?: Array<{ id?: unknown }> };
  return (doc.rules ?? []).map((rule) => String(rule.id));
}

function loaded(file: string, text: string): Omit<PolicyStatus, 'lastReload'> {
  return { file, sha256: createHash('sha256').update(text).digest('hex'), ruleIds: ruleIdsOf(text), loadedAt: new Date().toISOString() };
}

export interface PolicyStore {
  current(): LocalPolicy;
  status(): PolicyStatus;
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
  let inForce = loaded(file, text);
  let lastReload: ReloadResult | undefined;

  const poller = startPoller<string | Error>({
    intervalMs: options.reloadIntervalMs,
    initial: text,
    read: () => readFile(file, 'utf8').catch((err: NodeJS.ErrnoException) => new Error(`cannot read ${file}: ${err.code ?? err.message}`)),
    key: (read) => (read instanceof Error ? `\0${read.message}` : read),
    onChange: async (read) => {
      try {
        if (read instanceof Error) throw read;
        policy = compilePolicy(read, file);
        inForce = loaded(file, read);
        lastReload = { at: inForce.loadedAt, result: 'success' };
        metrics.policyReloads.inc({ result: 'success' });
        log.info({ file, rules: policy.ruleCount }, 'local policy reloaded');
      } catch (err) {
        lastReload = { at: new Date().toISOString(), result: 'failure', error: (err as Error).message };
        metrics.policyReloads.inc({ result: 'failure' });
        log.error({ file, err: { message: (err as Error).message } }, 'policy file rejected; keeping the rules in force');
      }
    },
  });
  return { current: () => policy, status: () => ({ ...inForce, lastReload }), reload: poller.check, close: poller.stop };
}
