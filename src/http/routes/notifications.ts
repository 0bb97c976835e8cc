/** Requesting notifications (services) and reading one's own records (users). */
import { isValidObjectId } from 'mongoose';
import { z } from 'zod';
import type { AppContext } from '../../context';
import { recordStatuses } from '../../db/notificationRecord';
import { requestNotification } from '../../notifications/request';
import { notificationRequestSchema, requestResultSchema } from '../../notifications/schemas';
import { recordDetailView, recordView, toRecordDetailView, toRecordView } from '../../notifications/views';
import { notFound } from '../errors';
import { idempotencyHeaders, withIdempotencyKey } from '../idempotency';
import { defineRoute } from '../route';

const listQuery = z.object({
  status: z.enum(recordStatuses).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  /** The `nextCursor` of the previous page. */
  cursor: z
    .string()
    .regex(/^[0-9a-f]{24}$/, 'must be a nextCursor from a previous page')
    .optional(),
});

export function notificationRoutes(ctx: AppContext) {
  const Records = ctx.models.notificationRecords;
  return [
    defineRoute({
      method: 'post',
      path: '/api/v1/notifications',
      tag: 'notifications',
      auth: 'service',
      summary: 'Request a notification (other services); Idempotency-Key honoured',
      headers: idempotencyHeaders,
      body: notificationRequestSchema,
      responses: {
        202: { description: 'Accepted; reused is true when the dedupe key already had a record', schema: requestResultSchema },
        422: { description: 'Idempotency-Key reused with another body' },
      },
      handler: async ({ body, req }) => {
        const key = req.header('idempotency-key');
        const { result } = await withIdempotencyKey(
          ctx,
          'notifications',
          key,
          body,
          () => requestNotification(ctx, body),
          async (id) => {
            const record = await Records.findById(id, { status: 1 });
            return { id, status: record?.status ?? 'pending', reused: true };
          },
        );
        return { status: 202, body: result };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/api/v1/notification/records',
      tag: 'notifications',
      auth: 'user',
      summary: 'My notification records, newest first (cursor pagination)',
      query: listQuery,
      responses: { 200: { description: 'A page of records', schema: z.object({ items: z.array(recordView), nextCursor: z.string().nullable() }) } },
      handler: async ({ userId, query }) => {
        const filter: Record<string, unknown> = { userId };
        if (query.status) filter.status = query.status;
        if (query.cursor) filter._id = { $lt: query.cursor };
        const docs = await Records.find(filter, { history: 0, providerRequest: 0, providerResponse: 0 })
          .sort({ _id: -1 })
          .limit(query.limit + 1)
          .lean();
        const page = docs.slice(0, query.limit);
        return { status: 200, body: { items: page.map(toRecordView), nextCursor: docs.length > query.limit ? String(page[page.length - 1]._id) : null } };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/api/v1/notification/records/:id',
      tag: 'notifications',
      auth: 'user',
      summary: 'One of my notification records, with its attempt history',
      params: z.object({ id: z.string().min(1) }),
      responses: { 200: { description: 'The record', schema: recordDetailView }, 404: { description: 'No such record of yours' } },
      handler: async ({ userId, params }) => {
        const record = isValidObjectId(params.id) ? await Records.findOne({ _id: params.id, userId }).lean() : null;
        if (!record) throw notFound('notification record');
        return { status: 200, body: toRecordDetailView(record) };
      },
    }),
  ];
}
