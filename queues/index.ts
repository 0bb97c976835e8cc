/** dueflow's Queue instances (producers). Workers live in processors/. */
import { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import type { QueueName } from './names';
import { allQueueNames, queueNames } from './names';

export { queueNames, allQueueNames };
export type { QueueName };

export type Queues = Record<QueueName, Queue>;

export function createQueues(connection: Redis, prefix: string, onError: (err: Error, queue: string) => void): Queues {
  const entries = allQueueNames.map((name) => {
    const queue = new Queue(name, { connection, prefix });
    queue.on('error', (err) => onError(err, name));
    return [name, queue] as const;
  });
  return Object.fromEntries(entries) as Queues;
}

export async function closeQueues(queues: Queues): Promise<void> {
  await Promise.all(Object.values(queues).map((q) => q.close()));
}
