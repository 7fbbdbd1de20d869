import { loadConfig, type Env } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import { createMetrics } from '../../src/metrics.ts';
import { startSidecar, type Sidecar } from '../../src/server.ts';
import { LogCapture, assertNoSecrets } from './logs.ts';

/** Strings the tests send that must never appear in a log line. */
export const TEST_API_KEY = 'sk-test-SECRETKEY-0123456789abcdef';
export const PROMPT_MARKER = 'PROMPT-TEXT-MUST-NOT-BE-LOGGED';

export interface TestSidecar {
  readonly sidecar: Sidecar;
  /** http://127.0.0.1:<proxy port> */
  readonly url: string;
  /** http://127.0.0.1:<admin port> */
  readonly adminUrl: string;
  /** http://127.0.0.1:<debug port>; empty when FIRSTOPS_DEBUG_PORT=off. */
  readonly debugUrl: string;
  readonly logs: LogCapture;
  metricValue(name: string, labels?: Record<string, string>): Promise<number>;
  /** Drains, then checks that no log line carried a secret. */
  close(extraSecrets?: ReadonlyArray<string | undefined>): Promise<void>;
}

/** The sidecar in this process on 127.0.0.1 port 0 (both listeners), logs captured and parsed. */
export async function startTestSidecar(env: Env, secrets: ReadonlyArray<string | undefined> = []): Promise<TestSidecar> {
  const config = loadConfig({
    FIRSTOPS_PORT: '0',
    FIRSTOPS_ADMIN_PORT: '0',
    FIRSTOPS_ADMIN_HOST: '127.0.0.1',
    FIRSTOPS_DEBUG_PORT: '0',
    FIRSTOPS_IDENTITY_DIR: '/nonexistent/firstops-test-identity',
    FIRSTOPS_LOG_LEVEL: 'debug',
    FIRSTOPS_DRAIN_TIMEOUT_MS: '2000',
    FIRSTOPS_RELOAD_INTERVAL_MS: '100',
    ...env,
  });
  const logs = new LogCapture();
  const logger = createLogger({ level: config.logLevel, destination: logs });
  const metrics = createMetrics({ defaultMetrics: false });
  const sidecar = await startSidecar({ config, logger, metrics });
  return {
    sidecar,
    url: `http://127.0.0.1:${sidecar.proxyAddress.port}`,
    adminUrl: `http://127.0.0.1:${sidecar.adminAddress.port}`,
    debugUrl: sidecar.debugAddress ? `http://127.0.0.1:${sidecar.debugAddress.port}` : '',
    logs,
    async metricValue(name, labels = {}) {
      const metric = await metrics.registry.getSingleMetric(name)?.get();
      if (!metric) return 0;
      return metric.values
        .filter((v) => Object.entries(labels).every(([k, want]) => String((v.labels as Record<string, unknown>)[k]) === want))
        .filter((v) => !('metricName' in v) || v.metricName === name || v.metricName === `${name}_count`)
        .reduce((sum, v) => sum + v.value, 0);
    },
    async close(extraSecrets = []) {
      await sidecar.drain();
      assertNoSecrets(logs.raw, [TEST_API_KEY, PROMPT_MARKER, ...secrets, ...extraSecrets]);
    },
  };
}
