/**
 * Active scheduling for users: raise a trigger by hand, follow it, dry-run the workflow for a task,
 * and answer previews. A user sees only their own: anything else is 404, never 403.
 */
import { isValidObjectId } from 'mongoose';
import { z } from 'zod';
import type { AppContext } from '../../context';
import { triggerTypes, type TriggerDoc } from '../../db/trigger';
import { confirmPreview, rejectPreview } from '../../previews/answer';
import { blockView, previewView, toBlockView, toPreviewView } from '../../previews/views';
import { createTrigger } from '../../triggers/create';
import { createTriggerBody, createTriggerResult, toTriggerView, triggerView } from '../../triggers/schemas';
import { dryRun } from '../../workflow/dryRun';
import { HttpError, notFound } from '../errors';
import { idempotencyHeaders } from '../idempotency';
import { defineRoute } from '../route';
import { refreshCards } from '../../cards/updates';
import { answerPlace } from '../answerPlace';

const tag = 'active-schedule';
const base = '/api/v1/active-schedule';
const idParams = z.object({ id: z.string().min(1).max(64) });
const errors = (description: string) => ({ description });

export function activeScheduleRoutes(ctx: AppContext) {
  const { models } = ctx;
  const ownTask = (userId: string, id: string) => (isValidObjectId(id) ? models.tasks.exists({ _id: id, userId }) : null);
  const ownBlock = (userId: string, id: string) => (isValidObjectId(id) ? models.scheduleBlocks.exists({ _id: id, userId }) : null);

  return [
    defineRoute({
      method: 'post',
      path: `${base}/triggers`,
      tag,
      auth: 'user',
      headers: idempotencyHeaders,
      body: createTriggerBody,
      summary: 'Raise a trigger by hand (source api_trigger); deduplicated by idempotency key and by user, type, target and 30-minute window',
      responses: {
        201: { description: 'A new trigger; its workflow is queued', schema: createTriggerResult },
        200: { description: 'An existing trigger (same key, or same target in the window)', schema: createTriggerResult },
        404: errors('The target is not one of yours'),
        422: errors('The idempotency key was used with another body'),
      },
      handler: async ({ userId, body, req }) => {
        const exists = body.target.type === 'task' ? await ownTask(userId, body.target.id) : await ownBlock(userId, body.target.id);
        if (!exists) throw notFound(body.target.type === 'task' ? 'task' : 'schedule block');
        const headerKey = req.header('idempotency-key');
        if (headerKey && body.idempotencyKey && headerKey !== body.idempotencyKey) {
          throw new HttpError(400, 'validation_failed', 'body.idempotencyKey: differs from the Idempotency-Key header; send one of them');
        }
        const { trigger, created } = await createTrigger(ctx, {
          userId,
          type: body.type,
          source: 'api_trigger',
          target: body.target,
          at: new Date(),
          idempotencyKey: body.idempotencyKey ?? headerKey,
        });
        return { status: created ? 201 : 200, body: { ...toTriggerView(trigger), created } };
      },
    }),
    defineRoute({
      method: 'get',
      path: `${base}/triggers/:id`,
      tag,
      auth: 'user',
      params: idParams,
      summary: 'One of my triggers: its status, and its preview and notification once there',
      responses: { 200: { description: 'The trigger', schema: triggerView }, 404: errors('No such trigger of yours') },
      handler: async ({ userId, params }) => {
        const t = isValidObjectId(params.id) ? await models.triggers.findOne({ _id: params.id, userId }).lean<TriggerDoc>() : null;
        if (!t) throw notFound('trigger');
        return { status: 200, body: toTriggerView(t) };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/dry-run`,
      tag,
      auth: 'user',
      body: z.strictObject({ taskId: z.string().regex(/^[0-9a-f]{24}$/, 'must be a task id'), type: z.enum(triggerTypes).default('important_urgent_task') }),
      summary: 'What the workflow would decide for one of my tasks now (context, issues, candidates); writes nothing',
      responses: {
        200: { description: 'The context, the issues, up to 3 candidates (best first) and the message it would send' },
        404: errors('No such task of yours'),
      },
      handler: async ({ userId, body }) => {
        if (!(await ownTask(userId, body.taskId))) throw notFound('task');
        return { status: 200, body: await dryRun(ctx, userId, body.taskId, body.type) };
      },
    }),
    defineRoute({
      method: 'get',
      path: `${base}/previews/:id`,
      tag,
      auth: 'user',
      params: idParams,
      summary: 'One of my previews (a ready one past its expiry shows as expired)',
      responses: { 200: { description: 'The preview', schema: previewView }, 404: errors('No such preview of yours') },
      handler: async ({ userId, params }) => {
        const p = isValidObjectId(params.id) ? await models.previews.findOne({ _id: params.id, userId }).lean() : null;
        if (!p) throw notFound('preview');
        return { status: 200, body: toPreviewView(p as any) };
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/previews/:id/confirm`,
      tag,
      auth: 'user',
      params: idParams,
      summary: 'Confirm a preview: its slot becomes a schedule block; confirming again answers the same block',
      responses: {
        200: {
          description: 'Confirmed (replayed: true when it already was); block is null for candidates that place nothing',
          schema: z.object({ preview: previewView, block: blockView.nullable(), replayed: z.boolean() }),
        },
        404: errors('No such preview of yours'),
        409: errors('preview_expired | preview_rejected | schedule_conflict (a block of yours overlaps the slot now) | confirm_in_progress'),
      },
      handler: async ({ userId, params, req }) => {
        const r = await confirmPreview(ctx, { userId, previewId: params.id, via: answerPlace(req) });
        switch (r.kind) {
          case 'not_found':
            throw notFound('preview');
          case 'expired':
            throw new HttpError(409, 'preview_expired', `preview expired at ${r.preview.expiresAt.toISOString()}; ask for a new suggestion`);
          case 'rejected':
            throw new HttpError(409, 'preview_rejected', 'preview was rejected');
          case 'in_progress':
            throw new HttpError(409, 'confirm_in_progress', 'another confirmation of this preview is running; try again in a moment');
          case 'conflict':
            throw new HttpError(409, 'schedule_conflict', 'the suggested slot is no longer free: a block of yours overlaps it', {
              blocks: r.blocks.map(toBlockView),
            });
          case 'confirmed':
            if (!r.replayed) await refreshCards(ctx, { previewId: params.id });
            return { status: 200, body: { preview: toPreviewView(r.preview), block: r.block && toBlockView(r.block), replayed: r.replayed } };
        }
      },
    }),
    defineRoute({
      method: 'post',
      path: `${base}/previews/:id/reject`,
      tag,
      auth: 'user',
      params: idParams,
      summary: 'Reject a preview: nothing changes in the schedule; the trigger is closed as rejected',
      responses: {
        200: { description: 'Rejected (replayed: true when it already was)', schema: z.object({ preview: previewView, replayed: z.boolean() }) },
        404: errors('No such preview of yours'),
        409: errors('preview_expired | preview_confirmed | confirm_in_progress'),
      },
      handler: async ({ userId, params, req }) => {
        const r = await rejectPreview(ctx, { userId, previewId: params.id, via: answerPlace(req) });
        switch (r.kind) {
          case 'not_found':
            throw notFound('preview');
          case 'expired':
            throw new HttpError(409, 'preview_expired', `preview expired at ${r.preview.expiresAt.toISOString()}`);
          case 'confirmed':
            throw new HttpError(409, 'preview_confirmed', 'preview was already confirmed');
          case 'in_progress':
            throw new HttpError(409, 'confirm_in_progress', 'the preview is being confirmed');
          case 'rejected':
            if (!r.replayed) await refreshCards(ctx, { previewId: params.id });
            return { status: 200, body: { preview: toPreviewView(r.preview), replayed: r.replayed } };
        }
      },
    }),
  ];
}
