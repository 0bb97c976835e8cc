/**
 * POST /api/v1/sync without Express: up to maxSyncItems upserts and deletes, each validated and
 * answered on its own (a bad item never stops the others), answers in the order of the items.
 * Task items are applied before block items, so a block may name (taskExternalId) a task of the
 * same request; items of one externalId are applied one after the other, in their order; the
 * rest runs `concurrency` at a time. Repeating a request changes nothing more: upserts answer 200,
 * deletes of what is gone 404.
 */
import type { ZodError } from 'zod';
import type { AppContext } from '../context';
import { externalIdKey, type ExternalKind, type ExternalRef } from '../db/externalId';
import { StoreBusyError } from '../db/guarded';
import { dataSchemas, maxSyncItems, syncItemEnvelope, type SyncResult } from './schemas';
import { deleteByExternalId, upsertBlock, upsertTask } from './upsert';

type Issue = { field: string; message: string };
type Item =
  | { op: 'upsert'; kind: 'task'; ref: ExternalRef; data: ReturnType<typeof dataSchemas.task.parse> }
  | { op: 'upsert'; kind: 'block'; ref: ExternalRef; data: ReturnType<typeof dataSchemas.block.parse> }
  | { op: 'delete'; kind: ExternalKind; ref: ExternalRef };

/** items[3] + ['data', 'deadline'] → items[3].data.deadline */
function fieldName(prefix: string, path: PropertyKey[]): string {
  return path.reduce<string>((name, part) => (typeof part === 'number' ? `${name}[${part}]` : `${name}.${String(part)}`), prefix);
}
const issuesOf = (prefix: string, error: ZodError): Issue[] => error.issues.map((i) => ({ field: fieldName(prefix, i.path), message: i.message }));

export function invalid(issues: Issue[]): SyncResult {
  return { status: 400, error: { code: 'validation_failed', message: issues.map((d) => `${d.field}: ${d.message}`).join('; '), details: issues } };
}

/** The item, or every problem with it: the data is checked by its kind even when another field is wrong, so one answer names them all. */
export function parseItem(raw: unknown, index: number): { ok: true; item: Item } | { ok: false; result: SyncResult } {
  const prefix = `items[${index}]`;
  const envelope = syncItemEnvelope.safeParse(raw);
  const issues = envelope.success ? [] : issuesOf(prefix, envelope.error);
  const fields = (typeof raw === 'object' && raw !== null ? raw : {}) as Record<string, unknown>;
  const kind = fields.kind === 'task' || fields.kind === 'block' ? fields.kind : undefined;
  let data: unknown;
  if (fields.op === 'upsert' && kind) {
    if (fields.data === undefined) issues.push({ field: `${prefix}.data`, message: 'required for upsert: the whole task or block' });
    else {
      const parsed = dataSchemas[kind].safeParse(fields.data);
      if (parsed.success) data = parsed.data;
      else issues.push(...issuesOf(`${prefix}.data`, parsed.error));
    }
  } else if (fields.op === 'delete' && fields.data !== undefined) {
    issues.push({ field: `${prefix}.data`, message: 'only for upsert: a delete takes no data' });
  }
  if (issues.length || !envelope.success) return { ok: false, result: invalid(issues) };
  const { op, userId, externalId } = envelope.data;
  const ref = { userId, externalId };
  return { ok: true, item: (op === 'delete' ? { op, kind: envelope.data.kind, ref } : { op, kind: envelope.data.kind, ref, data }) as Item };
}

async function apply(ctx: AppContext, item: Item, index: number, now: Date): Promise<SyncResult> {
  try {
    if (item.op === 'delete') {
      const gone = await deleteByExternalId(ctx, item.kind, item.ref, now);
      return gone
        ? { status: 204, id: gone.id }
        : { status: 404, error: { code: 'not_found', message: `no ${item.kind} of this user has this externalId`, details: null } };
    }
    if (item.kind === 'task') {
      const written = await upsertTask(ctx, item.ref, item.data, now);
      return { status: written.created ? 201 : 200, id: String(written.doc._id) };
    }
    const written = await upsertBlock(ctx, item.ref, item.data);
    if (!written.ok) return invalid([{ field: `items[${index}].data.${written.field}`, message: written.message }]);
    return { status: written.created ? 201 : 200, id: String(written.doc._id) };
  } catch (err) {
    if (err instanceof StoreBusyError)
      return {
        status: 409,
        error: { code: 'busy', message: `${item.kind} ${item.ref.externalId} is being changed by another request; send the item again`, details: null },
      };
    throw err;
  }
}

/** Runs fn over every entry, at most `limit` at a time. */
async function eachBounded<T>(entries: T[], limit: number, fn: (entry: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runner = async () => {
    while (next < entries.length) await fn(entries[next++]);
  };
  await Promise.all(Array.from({ length: Math.min(limit, entries.length) }, runner));
}

/** Applies the items; the answer has one result per item, in their order. */
export async function runSync(ctx: AppContext, items: unknown[], opts: { concurrency?: number; now?: Date } = {}): Promise<SyncResult[]> {
  if (items.length > maxSyncItems) throw new RangeError(`at most ${maxSyncItems} items per request`);
  const now = opts.now ?? new Date();
  const results: SyncResult[] = new Array(items.length);
  const valid: Array<{ index: number; item: Item }> = [];
  items.forEach((raw, index) => {
    const parsed = parseItem(raw, index);
    if (parsed.ok) valid.push({ index, item: parsed.item });
    else results[index] = parsed.result;
  });
  for (const kind of ['task', 'block'] as const) {
    // One queue per externalId, so its items apply in order; the queues run side by side.
    const queues = new Map<string, Array<{ index: number; item: Item }>>();
    for (const entry of valid.filter((e) => e.item.kind === kind)) {
      const key = externalIdKey(kind, entry.item.ref);
      const queue = queues.get(key);
      if (queue) queue.push(entry);
      else queues.set(key, [entry]);
    }
    await eachBounded([...queues.values()], opts.concurrency ?? 8, async (queue) => {
      for (const { index, item } of queue) results[index] = await apply(ctx, item, index, now);
    });
  }
  return results;
}
