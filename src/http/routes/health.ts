/** Liveness, readiness and metrics: what a platform and Prometheus ask of the process. */
import { z } from 'zod';
import type { AppContext } from '../../context';
import { pingMongo } from '../../db/connection';
import { defineRoute } from '../route';

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  return Promise.race([promise, new Promise<T>((_, reject) => setTimeout(() => reject(new Error(`no answer within ${ms} ms`)), ms).unref())]);
}

async function check(probe: () => Promise<unknown>): Promise<string> {
  try {
    await withTimeout(probe(), 2000);
    return 'up';
  } catch (err) {
    return `down: ${(err as Error).message}`;
  }
}

const readySchema = z.object({ status: z.literal('ready'), checks: z.record(z.string(), z.string()) });

export function healthRoutes(ctx: AppContext) {
  return [
    defineRoute({
      method: 'get',
      path: '/healthz',
      tag: 'health',
      auth: 'none',
      summary: 'The process is alive',
      responses: { 200: { description: 'Alive', schema: z.object({ status: z.literal('ok') }) } },
      handler: async () => ({ status: 200, body: { status: 'ok' } }),
    }),
    defineRoute({
      method: 'get',
      path: '/readyz',
      tag: 'health',
      auth: 'none',
      summary: 'Redis and MongoDB answer',
      responses: { 200: { description: 'Ready', schema: readySchema }, 503: { description: 'A dependency is down; the message names it' } },
      handler: async () => {
        const checks = { redis: await check(() => ctx.redis.ping()), mongodb: await check(() => pingMongo(ctx.mongo)) };
        const down = Object.entries(checks)
          .filter(([, v]) => v !== 'up')
          .map(([k]) => k);
        if (down.length === 0) return { status: 200, body: { status: 'ready', checks } };
        return {
          status: 503,
          body: { error: { code: 'not_ready', message: `${down.join(' and ')} ${down.length > 1 ? 'are' : 'is'} down`, details: checks } },
        };
      },
    }),
    defineRoute({
      method: 'get',
      path: '/metrics',
      tag: 'health',
      auth: 'none',
      summary: 'Prometheus metrics',
      responses: { 200: { description: 'Prometheus text format' } },
      handler: async () => ({
        status: 200,
        text: { contentType: ctx.metrics.registry.contentType, content: await ctx.metrics.registry.metrics() },
      }),
    }),
  ];
}
