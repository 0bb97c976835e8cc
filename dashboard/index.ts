/** Bull Board for operators at /admin/queues, behind HTTP Basic (it has no auth of its own). */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Router } from 'express';
import type { Queues } from '../queues';

export const dashboardPath = '/admin/queues';

export function createDashboardRouter(queues: Queues): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(dashboardPath);
  createBullBoard({
    queues: Object.values(queues).map((q) => new BullMQAdapter(q, { allowRetries: true })),
    serverAdapter,
    options: { uiConfig: { boardTitle: 'dueflow' } },
  });
  return serverAdapter.getRouter();
}
