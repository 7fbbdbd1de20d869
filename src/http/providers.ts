import type { SidecarError } from '../errors.ts';

/**
 * How each provider family shapes an error body, so the official SDKs raise
 * their usual typed errors with our message. Providers are data: a new
 * family is a new entry here, not a branch in a handler.
 */
export type ErrorStyle = 'openai' | 'anthropic' | 'gemini';

const STYLE_BY_PROVIDER: Readonly<Record<string, ErrorStyle>> = {
  anthropic: 'anthropic',
  google: 'gemini',
  gemini: 'gemini',
};

/** Anything not listed speaks the OpenAI shape, as most gateways and compatible APIs do. */
export function errorStyleFor(provider: string | undefined): ErrorStyle {
  return (provider && STYLE_BY_PROVIDER[provider]) || 'openai';
}

const GEMINI_STATUS: Readonly<Record<number, string>> = {
  400: 'INVALID_ARGUMENT',
  403: 'PERMISSION_DENIED',
  404: 'NOT_FOUND',
  413: 'INVALID_ARGUMENT',
  415: 'INVALID_ARGUMENT',
  500: 'INTERNAL',
  502: 'UNAVAILABLE',
  503: 'UNAVAILABLE',
  504: 'DEADLINE_EXCEEDED',
};

export interface ErrorBody {
  readonly status: number;
  /** `firstops_policy_violation` for a denial, `firstops_error` otherwise. */
  readonly type: string;
  readonly code: string;
  readonly message: string;
  readonly policyId?: string;
}

export function errorEnvelope(style: ErrorStyle, e: ErrorBody): unknown {
  switch (style) {
    case 'anthropic':
      return { type: 'error', error: { type: e.type, message: e.message } };
    case 'gemini':
      return { error: { code: e.status, message: e.message, status: GEMINI_STATUS[e.status] ?? 'UNKNOWN' } };
    case 'openai':
      return {
        error: {
          message: e.message,
          type: e.type,
          code: e.code,
          param: null,
          ...(e.policyId !== undefined ? { policy_id: e.policyId } : {}),
        },
      };
  }
}

export function denialBody(policyId: string, reason: string): ErrorBody {
  return {
    status: 403,
    type: 'firstops_policy_violation',
    code: 'policy_denied',
    message: `blocked by FirstOps policy: ${reason}`,
    policyId,
  };
}

export function sidecarErrorBody(err: SidecarError): ErrorBody {
  return { status: err.status, type: 'firstops_error', code: err.code, message: err.message };
}
