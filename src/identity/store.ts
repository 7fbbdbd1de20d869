import { createIdentity, readIdentityFiles, IdentityError, type Identity, type IdentityFiles } from './agent.ts';
import { startPoller } from './reload.ts';
import type { Logger } from '../log.ts';
import type { Metrics } from '../metrics.ts';

/** What is loaded, for the debug listener: the agent id and key thumbprint, never the key. */
export interface IdentityStatus {
  readonly dir: string;
  readonly agentId: string | undefined;
  readonly jkt: string | undefined;
  readonly loadedAt: string | undefined;
  /** The outcome of the last reload that found changed files. */
  readonly lastReload: { readonly at: string; readonly result: 'success' | 'failure'; readonly error?: string } | undefined;
}

export interface IdentityStore {
  /** The identity new requests are signed with; undefined when none is mounted. */
  current(): Identity | undefined;
  /** Why there is no identity, for the 503 the routes answer. */
  readonly missingReason: string;
  status(): IdentityStatus;
  /** Re-reads the secret now (the poller does this every interval). */
  reload(): Promise<void>;
  close(): void;
}

function fingerprint(files: IdentityFiles | undefined): string {
  return files ? `${files.agentId}\0${files.privateKey}` : 'absent';
}

/**
 * Loads the mounted identity and keeps it current. At start an invalid secret
 * is an error (the caller exits); later an invalid or vanished secret keeps
 * the identity in use, is logged and counted, so a bad rotation never turns
 * into failed requests.
 */
export async function openIdentityStore(options: {
  dir: string;
  reloadIntervalMs: number;
  logger: Logger;
  metrics: Metrics;
}): Promise<IdentityStore> {
  const { dir, logger, metrics } = options;
  const log = logger.child({ component: 'identity' });
  const files = await readIdentityFiles(dir);
  let identity = files ? await createIdentity(files.agentId, files.privateKey) : undefined;
  metrics.identityLoaded.set(identity ? 1 : 0);
  let loadedAt = identity ? new Date().toISOString() : undefined;
  let lastReload: IdentityStatus['lastReload'];
  const missingReason = `no agent identity is mounted at ${dir} (files agent-id and private-key.pem)`;
  if (identity) log.info({ jkt: identity.jkt.slice(0, 8) }, 'agent identity loaded');
  else log.warn({ dir }, `${missingReason}: /mcp answers 503 and remote policy evaluation is skipped until one appears`);

  type Read = IdentityFiles | undefined | Error;
  const poller = startPoller<Read>({
    intervalMs: options.reloadIntervalMs,
    initial: files,
    read: () => readIdentityFiles(dir).catch((err: Error) => err),
    key: (read) => (read instanceof Error ? `unreadable:${read.message}` : fingerprint(read)),
    onChange: async (read) => {
      try {
        if (read instanceof Error) throw read;
        if (!read) throw new IdentityError(`identity files disappeared from ${dir}`);
        const fresh = await createIdentity(read.agentId, read.privateKey);
        const rotated = identity !== undefined;
        identity = fresh;
        loadedAt = new Date().toISOString();
        lastReload = { at: loadedAt, result: 'success' };
        metrics.identityLoaded.set(1);
        metrics.identityReloads.inc({ result: 'success' });
        log.info({ jkt: fresh.jkt.slice(0, 8) }, rotated ? 'agent identity rotated' : 'agent identity loaded');
      } catch (err) {
        lastReload = { at: new Date().toISOString(), result: 'failure', error: (err as Error).message };
        metrics.identityReloads.inc({ result: 'failure' });
        log.error({ err: { code: (err as IdentityError).code, message: (err as Error).message } }, identity ? 'new identity rejected; keeping the current one' : 'identity rejected');
      }
    },
  });

  return {
    current: () => identity,
    missingReason,
    status: () => ({ dir, agentId: identity?.agentId, jkt: identity?.jkt, loadedAt, lastReload }),
    reload: poller.check,
    close: poller.stop,
  };
}
