/**
 * createTrigger: the one way an anomaly enters the workflow (the scanner's due jobs, the API, block
 * feedback). Deduplicated twice: by the caller's idempotency key (idempotency_keys, since FerretDB
 * v1 has no partial unique index) and by the unique dedupe key (user, type, target, window), which
 * also decides races: the trigger is inserted first and looked up only when the key is taken.
 * A new trigger gets its workflow job, unless its creator claimed it to run the workflow itself
 * (`claimedAt`); so does an existing one still pending (its first enqueue may have failed), which
 * is a no-op when the job is there.
 */
import type { AppContext } from '../context';
import type { AnomalySeverity, TriggerDoc } from '../db/trigger';
import { withIdempotencyKey } from '../http/idempotency';
import { triggerDedupeKey } from './dedupe';
import { enqueueTriggerWorkflow } from './enqueue';
import { insertTrigger } from './transitions';

type Ctx = Pick<AppContext, 'models' | 'queues' | 'config'>;

export interface CreateTriggerInput {
  userId: string;
  /** important_urgent_task | unfinished_feedback, or an anomaly's own type (triggerTypePattern). */
  type: string;
  source: 'worker_due_job' | 'api_trigger' | 'user_feedback';
  target: { type: string; id: string };
  /** For worker_due_job: the due job's triggerAt (the window); otherwise when it happened. */
  at: Date;
  idempotencyKey?: string;
  dueJobId?: string;
  detail?: Record<string, unknown>;
  /** An anomaly from another service: the workflow sends a message built from it instead of a preview. */
  anomaly?: { severity: AnomalySeverity; title: string; detail: string; occurredAt: Date; actionUrl?: string };
  /** Where the idempotency key lives and what body it must match; default: the user's triggers, by type and target. */
  idempotency?: { scope: string; body: unknown };
  /**
   * The caller runs the workflow itself, at once (a fired due job, which has read what it plans
   * with): a new trigger is inserted claimed at this time (processing) and gets no job.
   */
  claimedAt?: Date;
}

export async function createTrigger(ctx: Ctx, input: CreateTriggerInput): Promise<{ trigger: TriggerDoc; created: boolean }> {
  const Triggers = ctx.models.triggers;
  const dedupeKey = triggerDedupeKey(input);

  const create = async (): Promise<{ id: string; trigger: TriggerDoc; created: boolean }> => {
    const fields = {
      userId: input.userId,
      type: input.type,
      source: input.source,
      target: { type: input.target.type, id: input.target.id },
      dedupeKey,
      idempotencyKey: input.idempotencyKey,
      dueJobId: input.dueJobId,
      detail: input.detail ? JSON.stringify(input.detail) : undefined,
      anomaly: input.anomaly,
    };
    const inserted = await insertTrigger(Triggers, fields, input.claimedAt);
    if (inserted) return { id: String(inserted._id), trigger: inserted, created: true };
    // Already there (a repeat, or another caller won the race): the unique index decided.
    const existing = await Triggers.findOne({ dedupeKey }).lean<TriggerDoc>();
    if (!existing) throw new Error(`trigger ${dedupeKey} was a duplicate and is gone`);
    return { id: String(existing._id), trigger: existing, created: false };
  };

  const replay = async (id: string) => {
    const trigger = await Triggers.findOne({ _id: id, userId: input.userId }).lean<TriggerDoc>();
    if (!trigger) throw new Error(`trigger ${id} of idempotency key ${input.idempotencyKey} is gone`);
    return { id, trigger, created: false };
  };

  const { result } = input.idempotencyKey
    ? await withIdempotencyKey(
        ctx,
        input.idempotency?.scope ?? `triggers|${input.userId}`,
        input.idempotencyKey,
        input.idempotency ? input.idempotency.body : { type: input.type, target: input.target },
        create,
        replay,
      )
    : { result: await create() };

  // One inserted claimed is run by its creator, now: it needs no job.
  const claimedByCaller = result.created && input.claimedAt !== undefined;
  if (!claimedByCaller && (result.created || result.trigger.status === 'pending')) await enqueueTriggerWorkflow(ctx, result.id);
  return { trigger: result.trigger, created: result.created };
}
