/** The dry run (source api_dry_run): everything the workflow would decide for a task, writing nothing. */
import type { AppContext } from '../context';
import type { Candidate, TriggerType } from './candidates';
import { messageFor, plan } from './plan';
import type { Message } from './message';
import { isoOrNull as iso } from '../time/iso';

const candidateView = (c: Candidate) => ({
  kind: c.kind,
  taskId: c.taskId,
  title: c.title,
  start: iso(c.start),
  end: iso(c.end),
  score: c.score,
  reason: c.reason,
});

export async function dryRun(
  ctx: Pick<AppContext, 'models' | 'config'>,
  userId: string,
  taskId: string,
  type: TriggerType = 'important_urgent_task',
  now = new Date(),
) {
  const p = await plan(ctx, { userId, triggerType: type, target: { type: 'task', id: taskId }, now });
  const c = p.context;
  const message: Message | null =
    c && p.chosen ? messageFor(c, p.chosen, `${ctx.config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/app/previews/dry-run`, p.issues) : null;
  return {
    source: 'api_dry_run' as const,
    closeReason: p.closeReason,
    context: c && {
      now: c.now.toISOString(),
      window: { start: c.window.start.toISOString(), end: c.window.end.toISOString() },
      timeZone: c.timeZone,
      language: c.language,
      workingHours: c.workingHours,
      neededMinutes: c.neededMinutes,
      task: { ...c.task, deadline: iso(c.task.deadline) },
      blocks: c.blocks.map((b) => ({
        id: b.id,
        title: b.title,
        taskId: b.taskId ?? null,
        status: b.status,
        start: b.start.toISOString(),
        end: b.end.toISOString(),
      })),
      freeSlots: c.freeSlots.map((s) => ({ start: s.start.toISOString(), end: s.end.toISOString() })),
    },
    issues: p.issues,
    candidates: p.candidates.map(candidateView),
    chosen: p.chosen && candidateView(p.chosen),
    message,
  };
}
