/**
 * A route is declared once: its zod schemas validate the request, type the handler and
 * generate the OpenAPI document. Nothing is mounted that is not documented, and the other way round.
 */
import type { Request, RequestHandler, Response, Router } from 'express';
import { z } from 'zod';
import type { OpenAPIRegistry, RouteConfig } from '@asteasolutions/zod-to-openapi';
import type { AuthKind } from './auth';
import { validationError } from './errors';

type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';
type AnyObject = z.ZodType<Record<string, unknown>>;

export interface HandlerInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  /** Set on user routes: the JWT's subject. */
  userId: string;
  req: Request;
  res: Response;
}

export interface HandlerResult {
  status: number;
  body?: unknown;
  /** A non-JSON answer (e.g. Prometheus text) with its content type. */
  text?: { contentType: string; content: string };
  headers?: Record<string, string>;
}

export interface RouteDef<P = any, Q = any, B = any> {
  method: Method;
  /** Express-style path, e.g. /api/v1/notification/records/:id */
  path: string;
  summary: string;
  tag: string;
  auth: AuthKind;
  params?: z.ZodType<P>;
  query?: z.ZodType<Q>;
  body?: z.ZodType<B>;
  /** Extra request headers to document (e.g. Idempotency-Key). */
  headers?: AnyObject;
  responses: Record<number, { description: string; schema?: z.ZodType }>;
  handler: (input: HandlerInput<P, Q, B>) => Promise<HandlerResult>;
}

export function defineRoute<P = Record<string, never>, Q = Record<string, never>, B = undefined>(def: RouteDef<P, Q, B>): RouteDef {
  return def as RouteDef;
}

function parsePart<T>(part: string, schema: z.ZodType<T> | undefined, value: unknown): T {
  if (!schema) return (value ?? {}) as T;
  const result = schema.safeParse(value ?? {});
  if (!result.success) throw validationError(part, result.error);
  return result.data;
}

/** A route whose auth kind has no guard here (a feishu route on the JSON API) is a startup error, never an open route. */
export function mountRoute(router: Router, route: RouteDef, guards: Partial<Record<AuthKind, RequestHandler[]>>): void {
  const guard = guards[route.auth];
  if (!guard) throw new Error(`no guard for ${route.auth} routes (${route.method.toUpperCase()} ${route.path})`);
  router[route.method](route.path, ...guard, async (req: Request, res: Response) => {
    const params = parsePart('params', route.params, req.params);
    const query = parsePart('query', route.query, req.query);
    const body = route.body ? parsePart('body', route.body, req.body) : undefined;
    const result = await route.handler({ params, query, body, userId: req.userId ?? '', req, res });
    for (const [k, v] of Object.entries(result.headers ?? {})) res.setHeader(k, v);
    if (result.text) res.status(result.status).type(result.text.contentType).send(result.text.content);
    else if (result.body === undefined) res.status(result.status).end();
    else res.status(result.status).json(result.body);
  });
}

const errorSchema = z.object({
  error: z.object({ code: z.string(), message: z.string(), details: z.unknown() }),
});

const securityScheme = { user: 'userJwt', service: 'serviceToken', feishu: 'feishuSignature' } as const;

export function registerOpenApi(registry: OpenAPIRegistry, route: RouteDef): void {
  const responses: RouteConfig['responses'] = {};
  for (const [status, r] of Object.entries(route.responses)) {
    responses[Number(status)] = r.schema
      ? { description: r.description, content: { 'application/json': { schema: r.schema } } }
      : { description: r.description };
  }
  if (route.params || route.query || route.body)
    responses[400] ??= { description: 'Invalid input; the message names each field', content: { 'application/json': { schema: errorSchema } } };
  if (route.auth !== 'none') responses[401] = { description: 'Missing or invalid credentials', content: { 'application/json': { schema: errorSchema } } };

  registry.registerPath({
    method: route.method,
    path: route.path.replace(/:(\w+)/g, '{$1}'),
    summary: route.summary,
    tags: [route.tag],
    security: route.auth === 'none' ? [] : [{ [securityScheme[route.auth]]: [] }],
    'x-dueflow-auth': route.auth,
    request: {
      params: route.params as any,
      query: route.query as any,
      headers: route.headers as any,
      body: route.body ? { content: { 'application/json': { schema: route.body } } } : undefined,
    },
    responses,
  } as RouteConfig);
}
