/**
 * Small value validators shared by the injector's env parsing and the per-pod
 * annotation parsing. Each returns a problem description, or undefined when
 * the value is acceptable, so callers can collect every problem at once.
 */
import { parseBaseUrl } from '../config.ts';
import { LOG_LEVELS } from '../log.ts';

export const LOG_LEVEL_VALUES: readonly string[] = LOG_LEVELS;
export const FAIL_MODE_VALUES = ['closed', 'open'] as const;
export const PROXY_MODE_VALUES = ['env', 'off'] as const;

const DNS1123_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const CONFIGMAP_KEY = /^[-._a-zA-Z0-9]+$/;
const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;
const QUANTITY = /^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|P|E|Ki|Mi|Gi|Ti|Pi|Ei)?$/;

const QUANTITY_FACTORS: Record<string, number> = {
  '': 1, m: 1e-3, k: 1e3, M: 1e6, G: 1e9, T: 1e12, P: 1e15, E: 1e18,
  Ki: 2 ** 10, Mi: 2 ** 20, Gi: 2 ** 30, Ti: 2 ** 40, Pi: 2 ** 50, Ei: 2 ** 60,
};

export function checkOneOf<T extends string>(value: string, allowed: readonly T[]): string | undefined {
  return (allowed as readonly string[]).includes(value)
    ? undefined
    : `must be one of ${allowed.join(', ')} (got ${JSON.stringify(value)})`;
}

export function isOneOf<T extends string>(value: string, allowed: readonly T[]): value is T {
  return (allowed as readonly string[]).includes(value);
}

/** Names of Secrets and ConfigMaps. */
export function checkObjectName(value: string): string | undefined {
  if (value.length > 253 || !DNS1123_SUBDOMAIN.test(value)) {
    return `must be a Kubernetes object name (lowercase DNS-1123 subdomain, at most 253 characters; got ${JSON.stringify(value)})`;
  }
  return undefined;
}

export function isDns1123Label(value: string): boolean {
  return value.length <= 63 && DNS1123_LABEL.test(value);
}

export function checkConfigMapKey(value: string): string | undefined {
  if (value.length > 253 || !CONFIGMAP_KEY.test(value)) {
    return `must be a ConfigMap key (letters, digits, '-', '_', '.'; got ${JSON.stringify(value)})`;
  }
  return undefined;
}

export function checkEnvName(value: string): string | undefined {
  return ENV_NAME.test(value) ? undefined : `is not a valid environment variable name (${JSON.stringify(value)})`;
}

/**
 * An http(s) base URL as the sidecar accepts it (src/config.ts parseBaseUrl:
 * host required, no credentials, query or fragment). A value containing
 * `@` is not echoed.
 */
export function checkHttpUrl(value: string): string | undefined {
  const parsed = parseBaseUrl(value);
  if (typeof parsed !== 'string') return undefined;
  // Like the sidecar's own messages: a value with an `@` may hold a password, never echo it.
  const shown = value.includes('@') ? '<redacted: contains @>' : value;
  return `must be ${parsed} (got ${JSON.stringify(shown)})`;
}

export function checkAbsolutePath(value: string): string | undefined {
  return value.startsWith('/') && !value.split('/').includes('..')
    ? undefined
    : `must be an absolute path without '..' (got ${JSON.stringify(value)})`;
}

/** Parses a decimal integer within [min, max]; anything else is a problem. */
export function parseIntegerIn(value: string, min: number, max: number): number | string {
  if (!/^[0-9]+$/.test(value)) return `must be an integer between ${min} and ${max} (got ${JSON.stringify(value)})`;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    return `must be an integer between ${min} and ${max} (got ${value})`;
  }
  return n;
}

export function parseBoolean(value: string): boolean | undefined {
  if (value === 'true') return true;
  if (value === 'false') return false;
  return undefined;
}

export function checkQuantity(value: string): string | undefined {
  return QUANTITY.test(value)
    ? undefined
    : `must be a Kubernetes quantity such as 100m, 0.5, 128Mi or 1Gi (got ${JSON.stringify(value)})`;
}

/** Numeric value of a quantity accepted by checkQuantity (for comparisons only). */
export function quantityValue(value: string): number {
  const match = QUANTITY.exec(value);
  if (match === null) return Number.NaN;
  return Number(match[1]) * (QUANTITY_FACTORS[match[2] ?? ''] ?? Number.NaN);
}
