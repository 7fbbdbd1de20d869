// `npm start` as a user, a process manager or a CI harness runs it: the
// sidecar must get the signal, drain, and npm must exit with its status.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { connect } from 'node:net';
import { createInterface } from 'node:readline';
import OpenAI from 'openai';
import { startUpstream } from './helpers/upstream.ts';
import { portsOf } from './helpers/process.ts';
import { TEST_API_KEY } from './helpers/sidecar.ts';

const ROOT = new URL('..', import.meta.url).pathname;

function refused(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, '127.0.0.1');
    socket.on('connect', () => { socket.destroy(); resolve(false); });
    socket.on('error', (err: NodeJS.ErrnoException) => resolve(err.code === 'ECONNREFUSED'));
  });
}

function groupAlive(pgid: number): boolean {
  try {
    process.kill(-pgid, 0);
    return true;
  } catch {
    return false;
  }
}

async function startNpm(upstreamUrl: string) {
  // Its own process group, as a shell job or a service manager gives it.
  const child = spawn('npm', ['start', '--silent'], {
    cwd: ROOT,
    detached: true,
    stdio: ['ignore', 'pipe', 'pipe'],
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '/tmp',
      FIRSTOPS_PORT: '0',
      FIRSTOPS_ADMIN_PORT: '0',
      FIRSTOPS_ADMIN_HOST: '127.0.0.1',
      FIRSTOPS_DEBUG_PORT: '0',
      FIRSTOPS_IDENTITY_DIR: '/nonexistent/identity',
      FIRSTOPS_UPSTREAM_OPENAI: upstreamUrl,
    },
  });
  const lines: Array<Record<string, unknown>> = [];
  let onLine: (() => void) | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line) as Record<string, unknown>);
    } catch {
      lines.push({ msg: line });
    }
    onLine?.();
  });
  const stderr: string[] = [];
  child.stderr!.on('data', (c: Buffer) => stderr.push(c.toString()));
  const exited = once(child, 'exit') as Promise<[number | null, NodeJS.Signals | null]>;
  const waitFor = (msg: string): Promise<Record<string, unknown>> => new Promise((resolve, reject) => {
    const look = (): void => {
      const hit = lines.find((l) => l.msg === msg);
      if (hit) resolve(hit);
    };
    onLine = look;
    look();
    void exited.then(([code]) => reject(new Error(`npm start exited (${code}) before "${msg}": ${stderr.join('')}`)));
  });
  return { child, lines, exited, waitFor };
}

for (const target of ['npm', 'process group'] as const) {
  test(`npm start: SIGTERM to the ${target} drains the sidecar and npm exits 0`, async () => {
    const upstream = await startUpstream();
    const npm = await startNpm(upstream.url);
    try {
      const listening = await npm.waitFor('firstops-sidecar listening');
      const { proxy, admin } = portsOf(listening);
      const policy = npm.lines.find((l) => l.msg === 'local policy loaded')!;
      assert.equal(policy.file, 'examples/policy.yaml', 'the embedded default policy');
      // The shipped policy against a hostile prompt, as a new user would try it.
      const client = new OpenAI({ apiKey: TEST_API_KEY, baseURL: `http://127.0.0.1:${proxy}/llm/openai/v1`, maxRetries: 0 });
      await client.chat.completions.create({ model: 'gpt-4o', messages: [{ role: 'user', content: 'a1'.repeat(512 * 1024) }] });

      if (target === 'npm') npm.child.kill('SIGTERM');
      else process.kill(-npm.child.pid!, 'SIGTERM');
      const [code, signal] = await npm.exited;
      assert.deepEqual({ code, signal }, { code: 0, signal: null }, 'npm exits with the sidecar\'s status');
      assert.ok(npm.lines.some((l) => l.msg === 'drained; bye'), 'the sidecar drained');
      assert.equal(npm.lines.filter((l) => l.msg === 'draining').length, 1, 'one drain, however many copies of the signal');
      assert.ok(await refused(proxy), 'proxy port released');
      assert.ok(await refused(admin), 'admin port released');
      assert.equal(groupAlive(npm.child.pid!), false, 'nothing of the group is left running');
    } finally {
      if (groupAlive(npm.child.pid!)) process.kill(-npm.child.pid!, 'SIGKILL');
      await upstream.close();
    }
  });
}
