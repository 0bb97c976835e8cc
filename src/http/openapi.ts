/** The OpenAPI 3.1 document, generated from the same zod schemas that validate requests. */
import { OpenAPIRegistry, OpenApiGeneratorV31 } from '@asteasolutions/zod-to-openapi';
import type { RouteDef } from './route';
import { registerOpenApi } from './route';

export function buildOpenApiDocument(routes: RouteDef[], serverUrl: string) {
  const registry = new OpenAPIRegistry();
  registry.registerComponent('securitySchemes', 'userJwt', {
    type: 'http',
    scheme: 'bearer',
    bearerFormat: 'JWT',
    description: 'HS256 JWT; sub is the user id',
  });
  registry.registerComponent('securitySchemes', 'serviceToken', { type: 'http', scheme: 'bearer', description: 'SERVICE_TOKEN, for other services' });
  // OpenAPI has no scheme for a signature over the body: an apiKey header, with the rule in words.
  registry.registerComponent('securitySchemes', 'feishuSignature', {
    type: 'apiKey',
    in: 'header',
    name: 'X-Lark-Signature',
    description:
      'Feishu/Lark callbacks: X-Lark-Signature = hex(sha256(X-Lark-Request-Timestamp + X-Lark-Request-Nonce + FEISHU_ENCRYPT_KEY + raw body)); the timestamp (Unix seconds) must be within 5 minutes',
  });
  for (const route of routes) registerOpenApi(registry, route);
  return new OpenApiGeneratorV31(registry.definitions).generateDocument({
    openapi: '3.1.0',
    info: { title: 'dueflow', version: '1.0.0', description: 'Schedules and anomalies in, Feishu messages out, with a record of every delivery.' },
    servers: [{ url: serverUrl }],
  });
}
