/** The Express app: health, metrics, API routes, OpenAPI + docs, Bull Board. */
import { randomUUID } from 'node:crypto';
import type { Express } from 'express';
import express, { Router } from 'express';
import { pinoHttp } from 'pino-http';
import { redactKeys } from '../logger';
import swaggerUi from 'swagger-ui-express';
import type { AppContext } from '../context';
import { createDashboardRouter, dashboardPath } from '../../dashboard';
import { adminAuth, serviceAuth, userAuth } from './auth';
import { createLimiter, limitRequests, tokenKey } from './rateLimit';
import { errorHandler, HttpError } from './errors';
import { buildOpenApiDocument } from './openapi';
import type { RouteDef } from './route';
import { mountRoute } from './route';
import { healthRoutes } from './routes/health';
import { notificationRoutes } from './routes/notifications';
import { channelRoutes } from './routes/channels';
import { settingsRoutes } from './routes/settings';
import { taskRoutes } from './routes/tasks';
import { blockRoutes } from './routes/blocks';
import { activeScheduleRoutes } from './routes/activeSchedule';
import { anomalyRoutes } from './routes/anomalies';
import { reminderRoutes } from './routes/reminders';
import { createWebAppRouter } from './routes/app';
import { syncRoutes } from './routes/sync';
import { webhookEndpointRoutes } from './routes/webhookEndpoints';
import { feishuCallbackRoute, feishuCallbackRouter } from './routes/feishuCallback';
import { createCardActionHandler } from '../cards/actions';

/** Every documented route of the API. */
export function allRoutes(ctx: AppContext): RouteDef[] {
  return [
    ...healthRoutes(ctx),
    ...notificationRoutes(ctx),
    ...channelRoutes(ctx),
    ...settingsRoutes(ctx),
    ...taskRoutes(ctx),
    ...blockRoutes(ctx),
    ...activeScheduleRoutes(ctx),
    ...anomalyRoutes(ctx),
    ...reminderRoutes(ctx),
    ...syncRoutes(ctx),
    ...webhookEndpointRoutes(ctx),
  ];
}

export function createApp(ctx: AppContext): Express {
  const app = express();
  app.disable('x-powered-by');
  app.set('trust proxy', 1); // one proxy hop: Heroku's router

  app.use(
    pinoHttp({
      logger: ctx.logger,
      genReqId: (req, res) => {
        const given = req.headers['x-request-id'];
        const id = typeof given === 'string' && /^[\w.-]{1,100}$/.test(given) ? given : randomUUID();
        res.setHeader('X-Request-Id', id);
        return id;
      },
      autoLogging: { ignore: (req) => req.url === '/healthz' || req.url === '/metrics' || req.url === '/readyz' },
      // The request is serialized after the logger's formatter has run: its headers are censored here.
      serializers: { req: (req: Record<string, unknown>) => ({ ...req, headers: redactKeys(req.headers) }) },
    }),
  );

  const routes = allRoutes(ctx);
  const cardActions = createCardActionHandler(ctx);
  // The callback has its own router (below), so it is documented here rather than in allRoutes.
  const openapi = buildOpenApiDocument([...routes, feishuCallbackRoute(ctx, cardActions)], ctx.config.PUBLIC_BASE_URL);
  app.get('/openapi.json', (_req, res) => {
    res.json(openapi);
  });
  app.use('/docs', swaggerUi.serve, swaggerUi.setup(openapi, { customSiteTitle: 'dueflow API' }));

  const { config, redis } = ctx;
  const prefix = config.QUEUE_PREFIX;
  const failedLogins = createLimiter(redis, { prefix, name: 'admin-login', points: config.ADMIN_LOGIN_ATTEMPTS, durationSec: 900, blockSec: 900 });
  app.use(dashboardPath, adminAuth(config, failedLogins), createDashboardRouter(ctx.queues));
  app.use(createWebAppRouter()); // the user page (/app): static files, the API below does the work

  app.use(feishuCallbackRouter(ctx, cardActions)); // before the API's JSON parser: the signature covers the raw bytes

  const api = Router();
  // A sync of 500 items is bigger than any other body: it has its own limit.
  api.use('/api/v1/sync', express.json({ limit: ctx.config.SYNC_BODY_LIMIT }));
  api.use(express.json({ limit: ctx.config.BODY_LIMIT }));
  const perUser = createLimiter(redis, { prefix, name: 'user', points: config.USER_RATE_LIMIT_PER_MINUTE, durationSec: 60 });
  const perService = createLimiter(redis, { prefix, name: 'service', points: config.SERVICE_RATE_LIMIT_PER_MINUTE, durationSec: 60 });
  const guards = {
    none: [],
    user: [userAuth(config), limitRequests(perUser, (req) => `user:${req.userId}`)],
    service: [serviceAuth(config), limitRequests(perService, (req) => `service:${tokenKey(req.headers.authorization)}`)],
  };
  for (const route of routes) mountRoute(api, route, guards);
  app.use(api);

  app.use((req, _res, next) => next(new HttpError(404, 'not_found', `no route for ${req.method} ${req.path}`)));
  app.use(errorHandler(ctx.logger));
  return app;
}
