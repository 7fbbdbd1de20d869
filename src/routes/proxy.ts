import { Hono, type Context } from 'hono';
import { SidecarError, isSidecarError } from '../errors.ts';
import { assertSafePath } from '../http/path.ts';
import type { Logger } from '../log.ts';
import { routeOf, type ProxyEnv } from '../http/context.ts';
import { replySidecarError, targetOf } from './respond.ts';

type Handler = (c: Context<ProxyEnv>) => Promise<Response>;

/**
 * The answer for a raw target that must not reach a route (not origin-form,
 * a path read differently downstream, or outside `/llm/` and `/mcp/` before
 * decoding), else undefined.
 */
function guard(c: Context<ProxyEnv>): Response | undefined {
  try {
    const target = targetOf(c);
    assertSafePath(target.path);
    // Route on the raw path too: the router sees a decoded one.
    if (routeOf(target.path) === 'other') return replySidecarError(c, new SidecarError('not_found'));
  } catch (err) {
    if (isSidecarError(err)) return replySidecarError(c, err);
    throw err;
  }
  return undefined;
}

/**
 * The proxy listener's routes: `/llm/*` and `/mcp/*`, everything else 404.
 * Before any route, the raw target must be origin-form and a path no server
 * downstream can read differently (path.ts), so the router, the policy and the
 * upstream all see one path.
 */
export function createProxyApp(deps: { llm: Handler; mcp: Handler; logger: Logger }): Hono<ProxyEnv> {
  const app = new Hono<ProxyEnv>();
  // The check runs first in each route's handler and in the not-found
  // handler, not as an `app.use('*')` middleware: a route with one handler
  // takes hono's direct path (no compose, no `next` closure, one async frame
  // fewer per request).
  const guarded = (handler: Handler) => (c: Context<ProxyEnv>): Response | Promise<Response> => guard(c) ?? handler(c);
  app.all('/llm/*', guarded(deps.llm));
  app.all('/mcp/*', guarded(deps.mcp));
  app.notFound((c) => guard(c) ?? replySidecarError(c, new SidecarError('not_found')));
  app.onError((err, c) => {
    if (isSidecarError(err)) return replySidecarError(c, err);
    deps.logger.error({ err: { message: err.message, stack: err.stack } }, 'unhandled error in request handler');
    return replySidecarError(c, new SidecarError('internal'));
  });
  return app;
}
