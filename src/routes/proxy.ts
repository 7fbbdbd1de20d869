import { Hono, type Context } from 'hono';
import { SidecarError, isSidecarError } from '../errors.ts';
import { assertSafePath } from '../http/path.ts';
import type { Logger } from '../log.ts';
import { routeOf, type ProxyEnv } from '../http/context.ts';
import { replySidecarError, targetOf } from './respond.ts';

type Handler = (c: Context<ProxyEnv>) => Promise<Response>;

/**
 * The proxy listener's routes: `/llm/*` and `/mcp/*`, everything else 404.
 * Before any route, the raw target must be origin-form and a path no server
 * downstream can read differently (path.ts), so the router, the policy and the
 * upstream all see one path.
 */
export function createProxyApp(deps: { llm: Handler; mcp: Handler; logger: Logger }): Hono<ProxyEnv> {
  const app = new Hono<ProxyEnv>();
  app.use('*', async (c, next) => {
    try {
      const target = targetOf(c);
      assertSafePath(target.path);
      // Route on the raw path too: the router sees a decoded one.
      if (routeOf(target.path) === 'other') return replySidecarError(c, new SidecarError('not_found'));
    } catch (err) {
      if (isSidecarError(err)) return replySidecarError(c, err);
      throw err;
    }
    await next();
  });
  app.all('/llm/*', deps.llm);
  app.all('/mcp/*', deps.mcp);
  app.notFound((c) => replySidecarError(c, new SidecarError('not_found')));
  app.onError((err, c) => {
    if (isSidecarError(err)) return replySidecarError(c, err);
    deps.logger.error({ err: { message: err.message, stack: err.stack } }, 'unhandled error in request handler');
    return replySidecarError(c, new SidecarError('internal'));
  });
  return app;
}
