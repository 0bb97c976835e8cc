/** My schedule blocks, and reporting one unfinished (which creates an unfinished_feedback trigger). */
import { z } from 'zod';
import type { AppContext } from '../../context';
import type { BlockWrite } from '../../planning/blocks';
import { createBlock, deleteBlock, listBlocks, toBlockView, updateBlock } from '../../planning/blocks';
import { blockCreateBody, blockFeedbackBody, blockPatchBody, blockRangeQuery, blockView, blockWithTriggerView, idParams } from '../../planning/schemas';
import { HttpError, notFound } from '../errors';
import { defineRoute } from '../route';

const tag = 'schedule';
const path = '/api/v1/schedule/blocks';
const missing = () => notFound('schedule block');

/** The answer to a write: the block (and its feedback trigger), or a 400 naming the field. */
function answer(write: BlockWrite | null, status: number) {
  if (!write) throw missing();
  if (!write.ok) throw new HttpError(400, 'validation_failed', `${write.field}: ${write.message}`, [{ field: write.field, message: write.message }]);
  return { status, body: { ...toBlockView(write.block), ...(write.feedbackTrigger ? { feedbackTrigger: write.feedbackTrigger } : {}) } };
}

export function blockRoutes(ctx: AppContext) {
  return [
    defineRoute({
      method: 'post',
      path,
      tag,
      auth: 'user',
      body: blockCreateBody,
      summary: 'Add a block to my schedule (overlaps are allowed; end must be after start)',
      responses: { 201: { description: 'The block', schema: blockView } },
      handler: async ({ userId, body }) => answer(await createBlock(ctx, userId, body), 201),
    }),
    defineRoute({
      method: 'get',
      path,
      tag,
      auth: 'user',
      query: blockRangeQuery,
      summary: 'My blocks overlapping [from, to), by start (at most 62 days)',
      responses: { 200: { description: 'The blocks', schema: z.object({ items: z.array(blockView) }) } },
      handler: async ({ userId, query }) => ({ status: 200, body: { items: (await listBlocks(ctx, userId, query.from, query.to)).map(toBlockView) } }),
    }),
    defineRoute({
      method: 'patch',
      path: `${path}/:id`,
      tag,
      auth: 'user',
      params: idParams,
      body: blockPatchBody,
      summary: 'Change a block (fields left out stay; taskId null unlinks). Moving it to unfinished reports it (an unfinished_feedback trigger)',
      responses: {
        200: { description: 'The block, with the feedback trigger when reported', schema: blockWithTriggerView },
        404: { description: 'No such block of yours' },
      },
      handler: async ({ userId, params, body }) => answer(await updateBlock(ctx, userId, params.id, body), 200),
    }),
    defineRoute({
      method: 'post',
      path: `${path}/:id/feedback`,
      tag,
      auth: 'user',
      params: idParams,
      body: blockFeedbackBody,
      summary: 'Report a block unfinished (with an optional note): the block becomes unfinished and an unfinished_feedback trigger is created (deduplicated)',
      responses: { 200: { description: 'The block and its feedback trigger', schema: blockWithTriggerView }, 404: { description: 'No such block of yours' } },
      handler: async ({ userId, params, body }) => answer(await updateBlock(ctx, userId, params.id, { status: body.status }, { note: body.note }), 200),
    }),
    defineRoute({
      method: 'delete',
      path: `${path}/:id`,
      tag,
      auth: 'user',
      params: idParams,
      summary: 'Remove a block',
      responses: { 204: { description: 'Removed' }, 404: { description: 'No such block of yours' } },
      handler: async ({ userId, params }) => {
        if (!(await deleteBlock(ctx, userId, params.id))) throw missing();
        return { status: 204 };
      },
    }),
  ];
}
