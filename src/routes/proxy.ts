import type { IncomingMessage, ServerResponse } from 'node:http';
import { SidecarError, isSidecarError } from '../errors.ts';
import { isUsableHost } from '../http/headers.ts';
import { assertSafePath, parseTarget, type Target } from '../http/path.ts';
import type { Logger } from '../log.ts';
import { routeOf, type Exchange, type RequestRecord } from '../http/context.ts';
import { replySidecarError, writeReply, type Reply } from './respond.ts';

export type RouteHandler = (x: Exchange) => Promise<Reply>;

/** The raw target, origin-form and a path no server downstream can read differently (path.ts), or the error to answer. */
function checkedTarget(url: string | undefined): Target {
  const target = parseTarget(url);
  assertSafePath(target.path);
  return target;
}

/**
 * The proxy listener's routes: `/llm/*` and `/mcp/*`, everything else 404.
 * Before any route, the raw target must be origin-form and a path no server
 * downstream can read differently, so the route, the policy and the upstream
 * all see one path; routing is on that raw path. Node's own request and
 * response go straight to the route: no router, `Request` or `Response`
 * objects per request on the governed hop (14 µs of CPU per request,
 * issue 21). A route's error answer, and an unexpected failure (logged,
 * answered 500 `internal`), are written here.
 */
export function createProxyRoutes(deps: { llm: RouteHandler; mcp: RouteHandler; logger: Logger }) {
  const { llm, mcp, logger } = deps;

  /** The refusal before any route, or the route's answer (a promise); throws what the checks and routes throw. */
  function answer(req: IncomingMessage, res: ServerResponse, record: RequestRecord): Reply | Promise<Reply> {
    const host = req.headers.host;
    if (host !== undefined && !isUsableHost(host)) return replySidecarError({ record }, new SidecarError('bad_request', 'unusable Host header'));
    const target = checkedTarget(req.url);
    const route = routeOf(target.path);
    if (route === 'other') return replySidecarError({ record }, new SidecarError('not_found'));
    const x: Exchange = { req, res, record, target };
    return route === 'llm' ? llm(x) : mcp(x);
  }

  function failure(err: unknown, record: RequestRecord): Reply {
    if (isSidecarError(err)) return replySidecarError({ record }, err);
    const { message, stack } = err as Error;
    logger.error({ err: { message, stack } }, 'unhandled error in request handler');
    return replySidecarError({ record }, new SidecarError('internal'));
  }

  return async function handleProxyRequest(req: IncomingMessage, res: ServerResponse, record: RequestRecord): Promise<void> {
    let reply: Reply;
    try {
      reply = await answer(req, res, record);
    } catch (err) {
      reply = failure(err, record);
    }
    writeReply(res, reply);
  };
}
