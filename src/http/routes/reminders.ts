/** My reminders. Writing one also creates, moves or cancels its due job in the same request. */
import { z } from 'zod';
import type { AppContext } from '../../context';
import { idParams } from '../../planning/schemas';
import { reminderBodies, reminderListQuery, reminderView } from '../../reminders/schemas';
import { createReminder, deleteReminder, findUserReminder, listReminders, ReminderInputError, toReminderView, updateReminder } from '../../reminders/store';
import { HttpError, notFound } from '../errors';
import { defineRoute } from '../route';

const tag = 'reminders';
const path = '/api/v1/reminders';
const missing = () => notFound('reminder');

/** The store's refusals in the API's shape: a 400 naming the field (a busy store is the error handler's 503). */
async function answer<T>(work: () => Promise<T>): Promise<T> {
  try {
    return await work();
  } catch (err) {
    if (err instanceof ReminderInputError) {
      const field = `body.${err.field}`;
      throw new HttpError(400, 'validation_failed', `${field}: ${err.message}`, [{ field, message: err.message }]);
    }
    throw err;
  }
}

export function reminderRoutes(ctx: AppContext) {
  const bodies = reminderBodies(ctx.config);
  return [
    defineRoute({
      method: 'post',
      path,
      tag,
      auth: 'user',
      body: bodies.create,
      summary:
        'Create a reminder: a message at a time (at), or by a cron expression in my time zone (cron, with endAt and/or count); its first occurrence is due at once',
      responses: { 201: { description: 'The reminder', schema: reminderView } },
      handler: async ({ userId, body }) => ({ status: 201, body: toReminderView(await answer(() => createReminder(ctx, userId, body))) }),
    }),
    defineRoute({
      method: 'get',
      path,
      tag,
      auth: 'user',
      query: reminderListQuery,
      summary: 'My reminders, newest first (cursor pagination); deleted ones are gone',
      responses: { 200: { description: 'A page of reminders', schema: z.object({ items: z.array(reminderView), nextCursor: z.string().nullable() }) } },
      handler: async ({ userId, query }) => ({ status: 200, body: await listReminders(ctx, userId, query) }),
    }),
    defineRoute({
      method: 'get',
      path: `${path}/:id`,
      tag,
      auth: 'user',
      params: idParams,
      summary: 'One of my reminders, with its next occurrence and how many were sent',
      responses: { 200: { description: 'The reminder', schema: reminderView }, 404: { description: 'No such reminder of yours' } },
      handler: async ({ userId, params }) => {
        const reminder = await findUserReminder(ctx, userId, params.id);
        if (!reminder) throw missing();
        return { status: 200, body: toReminderView(reminder) };
      },
    }),
    defineRoute({
      method: 'patch',
      path: `${path}/:id`,
      tag,
      auth: 'user',
      params: idParams,
      body: bodies.patch,
      summary:
        'Change a reminder (fields left out stay, null clears endAt or count); changing at, cron, endAt or count moves its next occurrence to the first one after now',
      responses: {
        200: { description: 'The reminder', schema: reminderView },
        404: { description: 'No such reminder of yours' },
        503: { description: 'Being changed by another request: try again' },
      },
      handler: async ({ userId, params, body }) => {
        const reminder = await answer(() => updateReminder(ctx, userId, params.id, body));
        if (!reminder) throw missing();
        return { status: 200, body: toReminderView(reminder) };
      },
    }),
    defineRoute({
      method: 'delete',
      path: `${path}/:id`,
      tag,
      auth: 'user',
      params: idParams,
      summary: 'Delete a reminder: its next occurrence is canceled',
      responses: {
        204: { description: 'Deleted' },
        404: { description: 'No such reminder of yours' },
        503: { description: 'Being changed by another request: try again' },
      },
      handler: async ({ userId, params }) => {
        if (!(await answer(() => deleteReminder(ctx, userId, params.id)))) throw missing();
        return { status: 204 };
      },
    }),
  ];
}
