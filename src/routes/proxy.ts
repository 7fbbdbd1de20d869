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
 * objects per request on the governed hop (about 8 µs of CPU per request,
 * issue 21). A route's error answer, and an unexpected failure (logged,
 * answered 500 `internal`), are written here.
 */
export function createProxyRoutes(deps: { llm: RouteHandler; mcp: RouteHandler; logger: Logger }) {
  const { llm, mcp, logger } = deps;

  async function answer(req: IncomingMessage, res: ServerResponse, record: RequestRecord): Promise<Reply> {
    try {
      const host = req.headers.host;
      if (host !== undefined && !isUsableHost(host)) return replySidecarError({ record }, new SidecarError('bad_request', 'unusable Host header'));
      const target = checkedTarget(req.url);
      const route = routeOf(target.path);
      if (route === 'other') return replySidecarError({ record }, new SidecarError('not_found'));
      const x: Exchange = { req, res, record, target };
      return await (route === 'llm' ? llm(x) : mcp(x));
    } catch (err) {
      if (isSidecarError(err)) return replySidecarError({ record }, err);
      const { message, stack } = err as Error;
      logger.error({ err: { message, stack } }, 'unhandled error in request handler');
      return replySidecarError({ record }, new SidecarError('internal'));
    }
  }

  return async function handleProxyRequest(req: IncomingMessage, res: ServerResponse, record: RequestRecord): Promise<void> {
    writeReply(res, await answer(req, res, record));
  };
}
