/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests. */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import { registerOpenApi, RouteDef } from './route';

export function buildOpenApiDocument(routes: RouteDef[], serverUrl: string) {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'userJwt', { type: 'http', scheme: 'bearer', bearerFormat: 'JWT', description: 'HS256 JWT; sub is the user id' });
  registry.registerComponent('securitySchemes', 'serviceToken', { type: 'http', scheme: 'bearer', description: 'SERVICE_TOKEN, for other services' });
  for (const route of routes) registerOpenApi(registry, route);
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: 'dueflow', version: '1.0.0', description: 'Schedules and anomalies in, Feishu messages out, with a record of every delivery.' },
    servers: [{ url: serverUrl }],
  });
}
