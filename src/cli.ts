import { request } from 'node:http';
import { describeConfig, loadConfig, type Env } from './config.ts';
import { loadClientCertificates } from './egress/client-certs.ts';
import { createIdentity, readIdentityFiles } from './identity/agent.ts';
import { compilePolicy, readPolicyDocument } from './policy/local.ts';
import { compilePattern, NativeModuleError } from './policy/regex.ts';
import type { ResponseRuleDoc } from './policy/response-rules.ts';
import { readFile } from 'node:fs/promises';

export type Command = 'serve' | 'check' | 'healthcheck' | 'injector' | 'help';
const COMMANDS: readonly Command[] = ['serve', 'check', 'healthcheck', 'injector', 'help'];

export const USAGE = `usage: firstops-sidecar [serve|check|healthcheck|injector]
  serve        run the proxy (default)
  check        validate configuration, identity and policy; print the resolved config (no secrets)
  healthcheck  exit 0 when the admin listener's /readyz answers 200 (for images without curl)
  injector     run the Kubernetes admission webhook that injects the sidecar`;

export function parseCommand(argv: readonly string[]): Command | undefined {
  const arg = argv[0];
  if (arg === undefined) return 'serve';
  if (arg === '--help' || arg === '-h') return 'help';
  return (COMMANDS as readonly string[]).includes(arg) ? (arg as Command) : undefined;
}

/**
 * Why the native RE2 binding that every policy pattern (local rules, remote
 * answers) runs on cannot load, or undefined when it loads. `serve` refuses
 * to start and `check` reports it, with the fix, before anything else.
 */
export function nativeProblem(): string | undefined {
  try {
    compilePattern('', '');
    return undefined;
  } catch (err) {
    if (err instanceof NativeModuleError) return err.message;
    throw err;
  }
}

/**
 * The policy file's response rules as `check` shows them, one short entry
 * each in file order: id, decision, and what it matches (tool-name globs,
 * argument fields and their globs, text globs; nothing: every tool call, or
 * every text part). Redactions by name only.
 */
export function describeResponseRules(rules: readonly ResponseRuleDoc[] | undefined): Array<Record<string, unknown>> {
  return (rules ?? []).map((rule) => {
    const target = rule.target ?? 'tool_call';
    const entry: Record<string, unknown> = { id: rule.id, decision: rule.decision, target };
    const { tool_name: toolName, arguments: args, text: textGlobs } = rule.match ?? {};
    const matches: Record<string, unknown> = {};
    if (toolName !== undefined) matches.tool_name = toolName;
    if (args !== undefined && Object.keys(args).length > 0) matches.arguments = args;
    if (textGlobs !== undefined) matches.text = textGlobs;
    entry.matches = Object.keys(matches).length > 0 ? matches : target === 'text' ? 'every text part' : 'every tool call';
    if (rule.redact?.length) entry.redacts = rule.redact.map((r, i) => r.name || `redact[${i}]`);
    return entry;
  });
}

/** `check`: everything `serve` validates before it listens, as a report. Returns the exit code. */
export async function runCheck(env: Env, out: (line: string) => void): Promise<number> {
  const problems: string[] = [];
  let report: Record<string, unknown> = {};
  const native = nativeProblem();
  if (native) problems.push(native);
  try {
    const config = loadConfig(env);
    report = { config: describeConfig(config) };
    if (config.memory.warning) report.warnings = [config.memory.warning];
    try {
      const files = await readIdentityFiles(config.identityDir);
      if (files) {
        const identity = await createIdentity(files.agentId, files.privateKey);
        report.identity = { status: 'loaded', jkt: identity.jkt };
      } else {
        report.identity = { status: 'absent', dir: config.identityDir };
      }
    } catch (err) {
      problems.push(`identity: ${(err as Error).message}`);
    }
    if (config.clientCerts.size > 0) {
      try {
        const certs = await loadClientCertificates(config.clientCerts);
        report.client_certificates = Object.fromEntries([...certs].map(([name, c]) => [name, { subject: c.subject, expires: c.validTo, sha256: c.fingerprint256 }]));
      } catch (err) {
        problems.push((err as Error).message);
      }
    }
    // Without the binding, compiling the policy would only repeat that problem.
    if (config.policyFile && !native) {
      try {
        const text = await readFile(config.policyFile, 'utf8');
        const policy = compilePolicy(text, config.policyFile);
        report.policy = {
          file: config.policyFile,
          rules: policy.ruleCount,
          response_rules: policy.responses?.ruleCount ?? 0,
          // The schema validated the section: its rules have the written shape.
          responses: describeResponseRules(readPolicyDocument(text, config.policyFile).responses as ResponseRuleDoc[] | undefined),
        };
      } catch (err) {
        problems.push(`policy: ${(err as Error).message}`);
      }
    }
  } catch (err) {
    problems.push((err as Error).message);
  }
  report.problems = problems;
  out(JSON.stringify(report, null, 2));
  return problems.length === 0 ? 0 : 1;
}

/** `healthcheck`: GET /readyz on the admin port. Returns the exit code. */
export function runHealthcheck(env: Env, timeoutMs = 2_000): Promise<number> {
  let host = '127.0.0.1';
  let port = 9323;
  try {
    const config = loadConfig(env);
    port = config.adminPort;
    if (!['0.0.0.0', '::', ''].includes(config.adminHost)) host = config.adminHost;
  } catch {
    return Promise.resolve(2);
  }
  return new Promise((resolve) => {
    const req = request({ host, port, path: '/readyz', method: 'GET', timeout: timeoutMs }, (res) => {
      res.resume();
      resolve(res.statusCode === 200 ? 0 : 1);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', () => resolve(1));
    req.end();
  });
}
