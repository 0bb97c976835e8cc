/** My tasks. Writing one also creates, moves or cancels its due job in the same request. */
import { z } from 'zod';
import type { AppContext } from '../../context';
import { idParams, taskCreateBody, taskListQuery, taskPatchBody, taskView } from '../../planning/schemas';
import { createTask, deleteTask, findUserTask, listTasks, toTaskView, updateTask } from '../../planning/tasks';
import { notFound } from '../errors';
import { defineRoute } from '../route';

const tag = 'tasks';
const path = '/api/v1/tasks';
const missing = () => notFound('task');

export function taskRoutes(ctx: AppContext) {
  return [
    defineRoute({
      method: 'post',
      path,
      tag,
      auth: 'user',
      body: taskCreateBody,
      summary: 'Create a task; with urgencyThresholdAt (and status todo) its due job is pending at that time',
      responses: { 201: { description: 'The task', schema: taskView } },
      handler: async ({ userId, body }) => ({ status: 201, body: toTaskView(await createTask(ctx, userId, body)) }),
    }),
    defineRoute({
      method: 'get',
      path,
      tag,
      auth: 'user',
      query: taskListQuery,
      summary: 'My tasks, newest first (cursor pagination)',
      responses: { 200: { description: 'A page of tasks', schema: z.object({ items: z.array(taskView), nextCursor: z.string().nullable() }) } },
      handler: async ({ userId, query }) => ({ status: 200, body: await listTasks(ctx, userId, query) }),
    }),
    defineRoute({
      method: 'get',
      path: `${path}/:id`,
      tag,
      auth: 'user',
      params: idParams,
      summary: 'One of my tasks',
      responses: { 200: { description: 'The task', schema: taskView }, 404: { description: 'No such task of yours' } },
      handler: async ({ userId, params }) => {
        const task = await findUserTask(ctx, userId, params.id);
        if (!task) throw missing();
        return { status: 200, body: toTaskView(task) };
      },
    }),
    defineRoute({
      method: 'patch',
      path: `${path}/:id`,
      tag,
      auth: 'user',
      params: idParams,
      body: taskPatchBody,
      summary: 'Change a task (fields left out stay, null clears); moving urgencyThresholdAt moves its due job, done or no threshold cancels it',
      responses: { 200: { description: 'The task', schema: taskView }, 404: { description: 'No such task of yours' } },
      handler: async ({ userId, params, body }) => {
        const task = await updateTask(ctx, userId, params.id, body);
        if (!task) throw missing();
        return { status: 200, body: toTaskView(task) };
      },
    }),
    defineRoute({
      method: 'delete',
      path: `${path}/:id`,
      tag,
      auth: 'user',
      params: idParams,
      summary: 'Delete a task; its due job is canceled',
      responses: { 204: { description: 'Deleted' }, 404: { description: 'No such task of yours' } },
      handler: async ({ userId, params }) => {
        if (!(await deleteTask(ctx, userId, params.id))) throw missing();
        return { status: 204 };
      },
    }),
  ];
}
