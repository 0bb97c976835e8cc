/**
 * The host product's data by its own ids (service token): a task or block PUT and DELETE by
 * externalId, a user's settings, and POST /api/v1/sync for many at once. PUT creates (201) or
 * replaces (200); the same PUT again is a 200 that changes nothing.
 */
import type { AppContext } from '../../context';
import { StoreBusyError } from '../../db/guarded';
import { blockWithTriggerView, taskCreateBody, taskView } from '../../planning/schemas';
import { toBlockView } from '../../planning/blocks';
import { toTaskView } from '../../planning/tasks';
import { userSettingsBody, userSettingsView } from '../../settings/schemas';
import { saveUserSettings } from '../../settings/store';
import { runSync } from '../../sync/batch';
import { blockSyncBody, externalParams, syncAnswer, syncBody, userParams } from '../../sync/schemas';
import { deleteByExternalId, upsertBlock, upsertTask } from '../../sync/upsert';
import type { ExternalKind } from '../../db/externalId';
import { HttpError, notFound } from '../errors';
import { idempotencyHeaders, withStoredAnswer } from '../idempotency';
import { defineRoute } from '../route';

const tag = 'sync';
const users = '/api/v1/users/:userId';

/** A write whose store lock stayed taken: the client's retry is safe (every write here is idempotent). */
async function orBusy<T>(write: () => Promise<T>): Promise<T> {
  try {
    return await write();
  } catch (err) {
    if (err instanceof StoreBusyError) throw new HttpError(409, 'busy', 'this resource is being changed by another request; try again');
    throw err;
  }
}

function deleteRoute(ctx: AppContext, kind: ExternalKind) {
  const what = kind === 'task' ? 'task' : 'schedule block';
  return defineRoute({
    method: 'delete',
    path: `${users}/${kind}s/:externalId`,
    tag,
    auth: 'service',
    params: externalParams,
    summary: kind === 'task' ? "Delete the user's task of this externalId; its due job is canceled" : "Remove the user's block of this externalId",
    responses: {
      204: { description: 'Deleted' },
      404: { description: `No ${what} of this user has this externalId` },
      409: { description: 'Being changed by another request: try again' },
    },
    handler: async ({ params }) => {
      if (!(await orBusy(() => deleteByExternalId(ctx, kind, params)))) throw notFound(what);
      return { status: 204 };
    },
  });
}

export function syncRoutes(ctx: AppContext) {
  return [
    defineRoute({
      method: 'put',
      path: `${users}/tasks/:externalId`,
      tag,
      auth: 'service',
      params: externalParams,
      body: taskCreateBody,
      summary: "Create or replace the user's task of this externalId (the body is the whole task, as for POST /api/v1/tasks); its due job follows",
      responses: {
        201: { description: 'Created', schema: taskView },
        200: { description: 'Replaced (or already as sent)', schema: taskView },
        409: { description: 'Being changed by another request: try again' },
      },
      handler: async ({ params, body }) => {
        const written = await orBusy(() => upsertTask(ctx, params, body));
        return { status: written.created ? 201 : 200, body: toTaskView(written.doc) };
      },
    }),
    deleteRoute(ctx, 'task'),
    defineRoute({
      method: 'put',
      path: `${users}/blocks/:externalId`,
      tag,
      auth: 'service',
      params: externalParams,
      body: blockSyncBody,
      summary:
        "Create or replace the user's block of this externalId (the body of POST /api/v1/schedule/blocks; its task by taskId or taskExternalId). Moving it to unfinished reports it",
      responses: {
        201: { description: 'Created', schema: blockWithTriggerView },
        200: { description: 'Replaced (or already as sent), with the feedback trigger when reported', schema: blockWithTriggerView },
        409: { description: 'Being changed by another request: try again' },
      },
      handler: async ({ params, body }) => {
        const written = await orBusy(() => upsertBlock(ctx, params, body));
        if (!written.ok) {
          const field = `body.${written.field}`;
          throw new HttpError(400, 'validation_failed', `${field}: ${written.message}`, [{ field, message: written.message }]);
        }
        const view = { ...toBlockView(written.doc), ...(written.feedbackTrigger ? { feedbackTrigger: written.feedbackTrigger } : {}) };
        return { status: written.created ? 201 : 200, body: view };
      },
    }),
    deleteRoute(ctx, 'block'),
    defineRoute({
      method: 'put',
      path: `${users}/settings`,
      tag,
      auth: 'service',
      params: userParams,
      body: userSettingsBody,
      summary: "Replace the user's settings (the body of PUT /api/v1/me/settings; a field left out goes back to its default)",
      responses: { 200: { description: 'The stored settings', schema: userSettingsView } },
      handler: async ({ params, body }) => ({ status: 200, body: await saveUserSettings(ctx, params.userId, body) }),
    }),
    defineRoute({
      method: 'post',
      path: '/api/v1/sync',
      tag,
      auth: 'service',
      headers: idempotencyHeaders,
      body: syncBody,
      summary:
        'Upsert and delete many tasks and blocks by externalId (at most 500 items); each item is answered on its own, in order. Idempotency-Key honoured: a repeat gets the first answer',
      responses: {
        200: { description: 'One result per item, in order', schema: syncAnswer },
        422: { description: 'Idempotency-Key reused with another body' },
      },
      handler: async ({ req, body }) => {
        const { answer } = await withStoredAnswer(ctx, 'sync', req.header('idempotency-key'), req.body, async () => ({
          status: 200,
          body: { results: await runSync(ctx, body.items) },
        }));
        return answer;
      },
    }),
  ];
}
