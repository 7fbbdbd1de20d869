import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** A Prometheus HTTP API answer (https://prometheus.io/docs/prometheus/latest/querying/api/). */
export interface ApiAnswer<T = unknown> {
  status: 'success' | 'error';
  data: T;
  errorType?: string;
  error?: string;
}
export interface Sample {
  metric: Record<string, string>;
  value: [number, string];
}

export interface TestPrometheus {
  readonly url: string;
  readonly child: ChildProcess;
  /** An instant query; the raw API answer (errors included, for queries that must parse). */
  query(promql: string): Promise<ApiAnswer<{ resultType: string; result: Sample[] }>>;
  api<T>(path: string): Promise<ApiAnswer<T>>;
  /** Polls `check` (every 100 ms, at most `timeoutMs`) until it returns a value that is not undefined. */
  until<T>(what: string, check: () => Promise<T | undefined>, timeoutMs?: number): Promise<T>;
  close(): Promise<void>;
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

/**
 * Debian's Prometheus server (package prometheus, installed by
 * .ci/setup-host.sh) on 127.0.0.1, scraping `targets` every second, with
 * `ruleFiles` loaded. Storage in a temporary directory, removed on close.
 */
export async function startPrometheus(options: { targets: string[]; ruleFiles?: string[] }): Promise<TestPrometheus> {
  const dir = await mkdtemp(join(tmpdir(), 'fo-prom-'));
  const config = join(dir, 'prometheus.yml');
  await writeFile(config, JSON.stringify({
    global: { scrape_interval: '1s', scrape_timeout: '900ms', evaluation_interval: '1s' },
    rule_files: options.ruleFiles ?? [],
    scrape_configs: [{ job_name: 'firstops-sidecar', static_configs: [{ targets: options.targets }] }],
  }));
  let lastError = '';
  // The port is free when picked; another process may take it before Prometheus binds, so try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const port = await freePort();
    const url = `http://127.0.0.1:${port}`;
    const child = spawn('prometheus', [
      `--config.file=${config}`,
      `--storage.tsdb.path=${join(dir, `data-${attempt}`)}`,
      `--web.listen-address=127.0.0.1:${port}`,
      '--log.level=warn',
    ], { stdio: ['ignore', 'ignore', 'pipe'] });
    const stderr: string[] = [];
    child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString()));
    let exited = false;
    const exit = once(child, 'exit').then(() => { exited = true; });
    child.once('error', (err) => stderr.push(String(err)));
    const ready = await (async () => {
      const deadline = Date.now() + 30_000;
      while (!exited && Date.now() < deadline) {
        const ok = await fetch(`${url}/-/ready`).then((r) => r.ok, () => false);
        if (ok) return true;
        await new Promise((resolve) => setTimeout(resolve, 100));
      }
      return false;
    })();
    if (!ready) {
      lastError = stderr.join('');
      child.kill('SIGKILL');
      await exit;
      continue;
    }
    const api = async <T>(path: string): Promise<ApiAnswer<T>> => (await (await fetch(`${url}/api/v1/${path}`)).json()) as ApiAnswer<T>;
    return {
      url,
      child,
      api,
      query: (promql) => api(`query?query=${encodeURIComponent(promql)}`),
      async until(what, check, timeoutMs = 30_000) {
        const deadline = Date.now() + timeoutMs;
        for (;;) {
          const value = await check();
          if (value !== undefined) return value;
          if (Date.now() > deadline || exited) throw new Error(`Prometheus: gave up waiting for ${what}${exited ? ` (exited: ${stderr.join('')})` : ''}`);
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      },
      async close() {
        if (!exited) {
          child.kill('SIGTERM');
          await exit;
        }
        await rm(dir, { recursive: true, force: true });
      },
    };
  }
  await rm(dir, { recursive: true, force: true });
  throw new Error(`prometheus did not start (is Debian's prometheus package installed? .ci/setup-host.sh): ${lastError}`);
}
