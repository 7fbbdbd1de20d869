/**
 * Errors raised by the injector. Every error carries a stable machine code so
 * logs, metrics labels and admission messages can be matched on reliably; the
 * human message may change between releases, the code does not.
 */
export const INJECTOR_ERROR_CODES = [
  /** The injector's own environment is invalid (startup). */
  'INJECTOR_CONFIG_INVALID',
  /** The webhook certificate or key cannot be read or do not form a pair. */
  'INJECTOR_TLS_INVALID',
  /** The request body is not an admission.k8s.io/v1 AdmissionReview. */
  'ADMISSION_REVIEW_INVALID',
  /** The request body exceeds FIRSTOPS_INJECTOR_MAX_REQUEST_BYTES. */
  'ADMISSION_BODY_TOO_LARGE',
  /** A firstops.dev/* annotation on the pod has an invalid value. */
  'POD_ANNOTATION_INVALID',
  /** The pod asks for injection but names no identity Secret. */
  'POD_AGENT_SECRET_MISSING',
  /** The pod already uses a volume name the injector needs. */
  'POD_NAME_CONFLICT',
  /** The pod uses hostNetwork: the sidecar's ports would bind on the node. */
  'POD_HOST_NETWORK',
  /** Unexpected failure inside the injector. */
  'INJECTOR_INTERNAL',
] as const;

export type InjectorErrorCode = (typeof INJECTOR_ERROR_CODES)[number];

export class InjectorError extends Error {
  readonly code: InjectorErrorCode;
  /** One line per problem, each naming the variable/annotation at fault. */
  readonly issues: readonly string[];

  constructor(code: InjectorErrorCode, message: string, issues: readonly string[] = []) {
    super(issues.length > 0 ? `${message}: ${issues.join('; ')}` : message);
    this.name = 'InjectorError';
    this.code = code;
    this.issues = issues;
  }
}
