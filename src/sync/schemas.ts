/**
 * The host product's writes by its own ids: the externalId, the block body that may name its task
 * by externalId, and POST /api/v1/sync (its items, answered one result each, in order).
 */
import { z } from 'zod';
import { externalKinds } from '../db/externalId';
import { blockShape, checkBlockTimes, taskCreateBody } from '../planning/schemas';

/** A batch holds at most this many items; more is a 400 on body.items. */
export const maxSyncItems = 500;

export const externalIdSchema = z
  .string()
  .regex(/^[A-Za-z0-9._:-]{1,128}$/, 'must be 1 to 128 characters of A-Z, a-z, 0-9, ".", "_", ":" and "-"')
  .meta({ description: "The host product's own id of it, unique per user and kind", example: 'task_8f3a2c' });

/** The user's id as the host product's JWTs carry it (their sub): 1 to 128 characters. */
export const syncUserId = z.string().min(1, 'must not be empty').max(128, 'at most 128 characters');

export const externalParams = z.object({ userId: syncUserId, externalId: externalIdSchema });
export const userParams = z.object({ userId: syncUserId });

/** POST /api/v1/schedule/blocks's body, where the task may also be named by the host product's id. */
export const blockSyncBody = z
  .strictObject({
    ...blockShape,
    title: blockShape.title.meta({ description: "Defaults to the task's title; required without taskId or taskExternalId" }),
    taskExternalId: externalIdSchema.optional().meta({ description: "Instead of taskId: the externalId of one of the user's synced tasks" }),
  })
  .superRefine(checkBlockTimes)
  .superRefine((b, c) => {
    if (b.taskId && b.taskExternalId) c.addIssue({ code: 'custom', path: ['taskExternalId'], message: 'give taskId or taskExternalId, not both' });
    else if (!b.taskId && !b.taskExternalId && b.title === undefined)
      c.addIssue({ code: 'custom', path: ['title'], message: 'required when there is no taskId or taskExternalId' });
  });
export type BlockSyncBody = z.output<typeof blockSyncBody>;

export const syncOps = ['upsert', 'delete'] as const;

/** One item as validated; data is checked afterwards by its kind's schema (dataSchemas), so its errors are named inside data. */
export const syncItemEnvelope = z.strictObject({
  op: z.enum(syncOps, { message: "must be 'upsert' or 'delete'" }),
  kind: z.enum(externalKinds, { message: "must be 'task' or 'block'" }),
  userId: syncUserId,
  externalId: externalIdSchema,
  data: z.unknown().optional(),
});

export const dataSchemas = { task: taskCreateBody, block: blockSyncBody } as const;

/** The item as documented (its data by kind); JSON Schema, as OpenAPI cannot say "data follows kind". */
const documentedItem = (() => {
  const item = syncItemEnvelope.extend({
    data: z.union([taskCreateBody, blockSyncBody]).optional().meta({
      description:
        'upsert only, and required there: the body of PUT /api/v1/users/{userId}/tasks/{externalId} (kind task) or .../blocks/{externalId} (kind block)',
    }),
  });
  const { $schema: _ignored, ...json } = z.toJSONSchema(item, { io: 'input' });
  return json;
})();

/**
 * Items are validated one by one by runSync (a bad one is answered 400 in its result, the others
 * still apply), so at the request level an item is anything: only the envelope can fail here.
 */
const syncItem = z.unknown().meta({
  ...documentedItem,
  id: 'SyncItem',
  description:
    'upsert creates or replaces (data is the whole resource: what it leaves out goes back to its default); delete removes it (404 when there is none)',
});

export const syncBody = z
  .strictObject({
    items: z.array(syncItem).max(maxSyncItems, `at most ${maxSyncItems} items per request`),
  })
  .meta({
    id: 'SyncRequest',
    description: 'Task items are applied before block items (a block may name a task of the same request); items of one externalId in their order',
  });

const itemError = z.object({
  code: z.string(),
  message: z.string(),
  details: z
    .array(z.object({ field: z.string(), message: z.string() }))
    .nullable()
    .meta({ description: 'For 400: each field, named from the request (items[3].data.deadline)' }),
});

export const syncResult = z
  .object({
    status: z.union([z.literal(200), z.literal(201), z.literal(204), z.literal(400), z.literal(404), z.literal(409)]).meta({
      description:
        '201 created, 200 replaced (or already as sent), 204 deleted, 400 invalid (error names the field), 404 nothing to delete, 409 busy: try the item again',
    }),
    id: z.string().optional().meta({ description: "dueflow's id of the task or block" }),
    error: itemError.optional(),
  })
  .meta({ id: 'SyncResult' });
export type SyncResult = z.infer<typeof syncResult>;
export type SyncStatus = SyncResult['status'];

export const syncAnswer = z
  .object({ results: z.array(syncResult).meta({ description: 'One per item, in the order of the items' }) })
  .meta({ id: 'SyncResponse' });
