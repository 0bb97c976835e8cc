/**
 * Tasks and schedule blocks as the API sees them: request bodies (validation + TS type + OpenAPI)
 * and answers. Datetimes are ISO 8601 with a zone (Z or an offset); answers are always UTC (Z).
 */
import { z } from 'zod';
import { taskStatuses } from '../db/task';
import { blockStatuses } from '../db/scheduleBlock';

/** A block may last at most this long; it also bounds the range query on the {userId, start} index. */
export const maxBlockMs = 7 * 86_400_000;
/** The widest window one GET of blocks may ask for. */
export const maxRangeMs = 62 * 86_400_000;

const isoDate = z.iso
  .datetime({ offset: true, message: 'must be an ISO 8601 datetime with a zone, like 2026-01-31T18:00:00Z or 2026-02-01T02:00:00+08:00' })
  .transform((v) => new Date(v));
const objectId = z.string().regex(/^[0-9a-f]{24}$/, 'must be an id returned by this API');

const title = z.string().trim().min(1, 'must not be empty').max(200, 'at most 200 characters');
const priority = z
  .number({ message: 'must be 1, 2, 3 or 4' })
  .int('must be 1, 2, 3 or 4')
  .min(1, 'must be 1 (important and urgent) to 4 (neither)')
  .max(4, 'must be 1 (important and urgent) to 4 (neither)')
  .meta({ description: '1 important and urgent, 2 important, 3 urgent, 4 neither' });
const estimatedMinutes = z.number().int('must be whole minutes').min(1).max(10_080, 'at most 10080 (a week)');

export const taskCreateBody = z.strictObject({
  title,
  priority,
  deadline: isoDate.nullable().optional(),
  urgencyThresholdAt: isoDate.nullable().optional().meta({ description: 'When the task becomes urgent; its due job fires then' }),
  estimatedMinutes: estimatedMinutes.nullable().optional(),
  status: z.enum(taskStatuses).default('todo'),
});
export type TaskCreateBody = z.output<typeof taskCreateBody>;

/** Fields left out stay as they are; null clears an optional field. */
export const taskPatchBody = z.strictObject({
  title: title.optional(),
  priority: priority.optional(),
  deadline: isoDate.nullable().optional(),
  urgencyThresholdAt: isoDate.nullable().optional(),
  estimatedMinutes: estimatedMinutes.nullable().optional(),
  status: z.enum(taskStatuses).optional(),
});
export type TaskPatchBody = z.output<typeof taskPatchBody>;

export const taskListQuery = z.strictObject({
  status: z.enum(taskStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(200).default(50),
  cursor: objectId.optional().meta({ description: 'The nextCursor of the previous page' }),
});

export const idParams = z.object({ id: z.string().min(1) });

export const taskView = z.object({
  id: z.string(),
  title: z.string(),
  priority: z.number(),
  deadline: z.iso.datetime().nullable(),
  urgencyThresholdAt: z.iso.datetime().nullable(),
  estimatedMinutes: z.number().nullable(),
  status: z.enum(taskStatuses),
  completedAt: z.iso.datetime().nullable(),
  externalId: z
    .string()
    .nullable()
    .meta({ description: "The host product's id of it (synced by PUT /api/v1/users/{userId}/tasks/{externalId}); null otherwise" }),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type TaskView = z.infer<typeof taskView>;

/** A block's fields as POST (and the host product's PUT) send them. */
export const blockShape = {
  taskId: objectId.optional().meta({ description: 'One of my tasks' }),
  title: title.optional().meta({ description: "Defaults to the task's title; required without taskId" }),
  start: isoDate,
  end: isoDate,
  status: z.enum(blockStatuses).default('planned'),
};

/** end after start, at most maxBlockMs apart. zod 4 runs object refinements even when a field failed: look only at what parsed. */
export function checkBlockTimes(b: { start?: unknown; end?: unknown }, c: z.RefinementCtx): void {
  if (!(b.start instanceof Date) || !(b.end instanceof Date)) return;
  if (b.end.getTime() <= b.start.getTime()) c.addIssue({ code: 'custom', path: ['end'], message: 'must be after start' });
  else if (b.end.getTime() - b.start.getTime() > maxBlockMs) c.addIssue({ code: 'custom', path: ['end'], message: 'a block lasts at most 7 days' });
}

export const blockCreateBody = z
  .strictObject(blockShape)
  .superRefine(checkBlockTimes)
  .superRefine((b, c) => {
    if (!b.taskId && b.title === undefined) c.addIssue({ code: 'custom', path: ['title'], message: 'required when there is no taskId' });
  });
export type BlockCreateBody = z.output<typeof blockCreateBody>;

/** Fields left out stay; taskId null unlinks the task. start/end are checked against the stored ones too. */
export const blockPatchBody = z
  .strictObject({
    taskId: objectId.nullable().optional(),
    title: title.optional(),
    start: isoDate.optional(),
    end: isoDate.optional(),
    status: z.enum(blockStatuses).optional(),
  })
  .superRefine((b, c) => {
    if (b.start instanceof Date && b.end instanceof Date && b.end.getTime() <= b.start.getTime())
      c.addIssue({ code: 'custom', path: ['end'], message: 'must be after start' });
  });
export type BlockPatchBody = z.output<typeof blockPatchBody>;

export const blockFeedbackBody = z.strictObject({
  status: z.literal('unfinished', { message: "must be 'unfinished'" }),
  note: z.string().trim().max(1000, 'at most 1000 characters').optional(),
});
export type BlockFeedbackBody = z.output<typeof blockFeedbackBody>;

export const blockRangeQuery = z.strictObject({ from: isoDate, to: isoDate }).superRefine((q, c) => {
  if (!(q.from instanceof Date) || !(q.to instanceof Date)) return;
  if (q.to.getTime() <= q.from.getTime()) c.addIssue({ code: 'custom', path: ['to'], message: 'must be after from' });
  else if (q.to.getTime() - q.from.getTime() > maxRangeMs) c.addIssue({ code: 'custom', path: ['to'], message: 'the range spans at most 62 days' });
});

export const blockView = z.object({
  id: z.string(),
  taskId: z.string().nullable(),
  title: z.string(),
  start: z.iso.datetime(),
  end: z.iso.datetime(),
  status: z.enum(blockStatuses),
  previewId: z.string().nullable(),
  externalId: z
    .string()
    .nullable()
    .meta({ description: "The host product's id of it (synced by PUT /api/v1/users/{userId}/blocks/{externalId}); null otherwise" }),
  createdAt: z.iso.datetime(),
  updatedAt: z.iso.datetime(),
});
export type BlockView = z.infer<typeof blockView>;

export const feedbackTriggerView = z.object({ id: z.string(), status: z.string(), created: z.boolean() });
export const blockWithTriggerView = blockView.extend({
  feedbackTrigger: feedbackTriggerView.optional().meta({ description: 'Set when this request reported the block unfinished' }),
});
