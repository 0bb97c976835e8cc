/** Planning in one call: context → issues → candidates → the chosen one and its message. Reads only. */
import type { AppContext } from '../context';
import { chooseCandidate, generateCandidates, observe, type Candidate, type Issue, type PlanningContext } from './candidates';
import { loadPlanningContext, type PlanningInput } from './context';
import { buildMessage, type Message } from './message';

export interface Plan {
  context: PlanningContext | null;
  /** Set when there is nothing to do (task done, gone, already scheduled...). */
  closeReason: string | null;
  issues: Issue[];
  candidates: Candidate[];
  chosen: Candidate | null;
}

export const previewUrl = (config: Pick<AppContext['config'], 'PUBLIC_BASE_URL'>, previewId: string) =>
  `${config.PUBLIC_BASE_URL.replace(/\/+$/, '')}/app/previews/${previewId}`;

export async function plan(ctx: Pick<AppContext, 'models'>, input: PlanningInput): Promise<Plan> {
  const { context, closeReason } = await loadPlanningContext(ctx, input);
  if (!context) return { context, closeReason, issues: [], candidates: [], chosen: null };
  const issues = observe(context);
  const candidates = closeReason ? [] : generateCandidates(context, issues);
  return { context, closeReason, issues, candidates, chosen: candidates.length > 0 ? chooseCandidate(candidates) : null };
}

export function messageFor(c: PlanningContext, chosen: Candidate, actionUrl: string, issues: Issue[]): Message {
  return buildMessage({
    language: c.language,
    timeZone: c.timeZone,
    kind: chosen.kind,
    triggerType: c.triggerType,
    taskTitle: c.task.title,
    deadline: c.task.deadline,
    slot: chosen.start && chosen.end ? { start: chosen.start, end: chosen.end } : null,
    block: c.triggerType === 'missed_block' && c.block ? { title: c.block.title, start: c.block.start, end: c.block.end } : null,
    neededMinutes: c.neededMinutes,
    issue: issues.includes('no_free_slot') ? 'no_free_slot' : 'not_enough_capacity',
    actionUrl,
  });
}
