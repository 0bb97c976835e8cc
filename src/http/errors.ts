/** Every error the API answers has one shape: {error: {code, message, details}}. */
import type { ErrorRequestHandler } from 'express';
import type { ZodError } from 'zod';
import type { Logger } from '../logger';
import { StoreBusyError } from '../db/guarded';
import { isStoreUnavailable } from '../db/errors';

export class HttpError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
  ) {
    super(message);
  }
}

export const notFound = (what = 'resource') => new HttpError(404, 'not_found', `${what} not found`);
export const unauthorized = (message = 'missing or invalid credentials') => new HttpError(401, 'unauthorized', message);

/** Turns a zod error on a part of the request ('body', 'query', 'params') into a 400 that names each field. */
export function validationError(part: string, error: ZodError): HttpError {
  const details = error.issues.map((issue) => ({
    field: [part, ...issue.path.map(String)].join('.'),
    message: issue.message,
  }));
  const message = details.map((d) => `${d.field}: ${d.message}`).join('; ');
  return new HttpError(400, 'validation_failed', message, details);
}

export function errorBody(code: string, message: string, details?: unknown) {
  return { error: { code, message, details: details ?? null } };
}

export function errorHandler(logger: Logger): ErrorRequestHandler {
  return (err, req, res, _next) => {
    if (err instanceof HttpError) {
      res.status(err.status).json(errorBody(err.code, err.message, err.details));
      return;
    }
    // body-parser's errors carry a status and a type
    const status = typeof err?.status === 'number' ? err.status : undefined;
    if (status === 413) {
      res.status(413).json(errorBody('payload_too_large', 'request body is too large'));
      return;
    }
    if (status === 400 && err?.type === 'entity.parse.failed') {
      res.status(400).json(errorBody('invalid_json', 'request body is not valid JSON'));
      return;
    }
    if (status && status >= 400 && status < 500) {
      res.status(status).json(errorBody('bad_request', String(err.message ?? 'bad request')));
      return;
    }
    if (err instanceof StoreBusyError || isStoreUnavailable(err)) {
      // A lock that stayed taken or a refused write changed nothing; the client may send it again.
      logger.warn({ err: { name: err.name, message: err.message }, reqId: req.id }, 'store busy: answered 503');
      res
        .status(503)
        .set('Retry-After', '1')
        .json(errorBody('store_unavailable', 'the store is busy; try again shortly', { requestId: req.id }));
      return;
    }
    logger.error({ err, reqId: req.id }, 'unhandled error');
    res.status(500).json(errorBody('internal', 'internal error', { requestId: req.id }));
  };
}
