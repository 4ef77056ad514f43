// What a grid worker needs to know about a case at a glance: its words, which
// deadline comes next, and what can be done to it now (routing's lifecycle rules).
import type { CaseDetail, CaseSummary, ReturnReason } from '@/api/routing';

export const STATUS_WORDS: Record<string, string> = {
  received: '已受理',
  assigned: '待响应',
  acknowledged: '已响应',
  in_progress: '办理中',
  escalated: '已上报',
  returned: '已退单待派遣',
  resolved: '已办结待回访',
  reopened: '重新办理',
  closed: '已办结',
  merged: '已合并',
  rejected: '不予受理',
};

export const OPEN_STATUSES = ['received', 'assigned', 'acknowledged', 'in_progress', 'escalated', 'reopened', 'returned'];
const TERMINAL_STATUSES = ['closed', 'merged', 'rejected'];
// Routing stops the first-response clock once someone at the case's level answers.
const AWAITING_RESPONSE = ['received', 'assigned', 'escalated', 'reopened'];

export const FIVE_STEPS: { step: string; name: string }[] = [
  { step: 'collect', name: '收集议题' },
  { step: 'survey', name: '实地调研' },
  { step: 'coordinate', name: '开展协调' },
  { step: 'contact_departments', name: '联系部门' },
  { step: 'evaluate', name: '评估汇总' },
];

export const LEVEL_WORDS: Record<string, string> = { grid: '网格', community: '社区', town: '乡镇', department: '部门' };

export function statusWords(status: string): string {
  return STATUS_WORDS[status] ?? status;
}

export interface Deadline {
  clock: 'first_response' | 'resolution';
  due: Date;
}

/** The deadline a worker must meet next, or null for a case no clock runs on. */
export function nextDeadline(item: Pick<CaseSummary, 'status' | 'first_response_due' | 'resolution_due'>): Deadline | null {
  if (!OPEN_STATUSES.includes(item.status)) return null;
  const candidates: Deadline[] = [];
  if (AWAITING_RESPONSE.includes(item.status) && item.first_response_due) {
    candidates.push({ clock: 'first_response', due: new Date(item.first_response_due) });
  }
  if (item.resolution_due) candidates.push({ clock: 'resolution', due: new Date(item.resolution_due) });
  candidates.sort((a, b) => a.due.getTime() - b.due.getTime());
  return candidates[0] ?? null;
}

/** Due first; urgent before others at the same moment; cases without a clock last. */
export function byDueFirst<T extends CaseSummary>(items: T[]): T[] {
  const key = (item: T) => nextDeadline(item)?.due.getTime() ?? Number.POSITIVE_INFINITY;
  return [...items].sort((a, b) => key(a) - key(b) || Number(b.urgent) - Number(a.urgent));
}

/** "2天5小时", "1小时05分", "20分钟": a span of time to the minute. */
export function spanWords(milliseconds: number): string {
  const minutes = Math.floor(Math.abs(milliseconds) / 60000);
  const days = Math.floor(minutes / 1440);
  const hours = Math.floor((minutes % 1440) / 60);
  const rest = minutes % 60;
  return days > 0 ? `${days}天${hours}小时` : hours > 0 ? `${hours}小时${String(rest).padStart(2, '0')}分` : `${rest}分钟`;
}

/** "还剩 1小时05分" / "已超时 20分钟", to the minute. */
export function countdown(due: Date, now: Date): { words: string; overdue: boolean } {
  const span = spanWords(due.getTime() - now.getTime());
  const overdue = due.getTime() < now.getTime();
  return { words: overdue ? `已超时 ${span}` : `还剩 ${span}`, overdue };
}

export function clockWords(clock: Deadline['clock']): string {
  return clock === 'first_response' ? '响应' : '办结';
}

export const RETURN_REASONS: { reason: ReturnReason; words: string }[] = [
  { reason: 'wrong_grid', words: '不属于本网格' },
  { reason: 'wrong_department', words: '不属于本部门职责' },
  { reason: 'wrong_class', words: '分类错误' },
  { reason: 'other', words: '其他原因' },
];

export function returnReasonWords(reason: string | null | undefined): string {
  return RETURN_REASONS.find((entry) => entry.reason === reason)?.words ?? reason ?? '';
}

// The statuses routing lets a holder hand a case back from (退单).
const RETURNABLE_STATUSES = ['assigned', 'acknowledged', 'in_progress', 'escalated', 'reopened'];

export interface Actions {
  acknowledge: boolean;
  note: boolean;
  nextStep: { step: string; name: string } | null;
  resolve: boolean;
  escalate: boolean;
  /** 退单: only the person holding the case, and not while it waits for a dispatcher */
  giveBack: boolean;
}

/** What the lifecycle allows now (routing decides in the end; a refusal shows its words). */
export function actionsFor(
  item: Pick<CaseDetail, 'status' | 'level' | 'complexity' | 'five_steps'> & Partial<Pick<CaseDetail, 'assignee' | 'awaiting_dispatch'>>,
  callerId: string | null = null,
): Actions {
  const waiting = Boolean(item.awaiting_dispatch);
  const open = OPEN_STATUSES.includes(item.status) && !waiting;
  const done = new Set((item.five_steps ?? []).map((entry) => entry.step));
  const nextStep = FIVE_STEPS.find(({ step }) => !done.has(step)) ?? null;
  const needsEvaluation = item.level === 'department' && !done.has('evaluate');
  return {
    acknowledge: ['assigned', 'escalated', 'reopened'].includes(item.status),
    note: !['merged', 'rejected'].includes(item.status),
    nextStep: item.complexity === 'complex' && !TERMINAL_STATUSES.includes(item.status) ? nextStep : null,
    resolve: open && item.status !== 'received' && !needsEvaluation,
    escalate: open && item.level !== 'department',
    giveBack: open && RETURNABLE_STATUSES.includes(item.status) && callerId !== null && item.assignee?.id === callerId,
  };
}

const KIND_WORDS: Record<string, string> = {
  note: '记录',
  five_step: '五步工作法',
  escalation: '上报',
  merged_request: '合并诉求',
  sla_warning: '即将超时',
  sla_breached: '已超时',
  returned: '退单',
  dispatch: '派遣',
};

/** One timeline entry in plain words. */
export function timelineWords(entry: { kind: string; to?: string; step?: string; to_level?: string; clock?: string; reason?: string }): string {
  if (entry.kind === 'status' && entry.to) return statusWords(entry.to);
  if (entry.kind === 'five_step') return `${KIND_WORDS.five_step}：${FIVE_STEPS.find((s) => s.step === entry.step)?.name ?? entry.step}`;
  if (entry.kind === 'escalation' && entry.to_level) return `上报至${LEVEL_WORDS[entry.to_level] ?? entry.to_level}`;
  if (entry.kind === 'returned' && entry.reason) return `${KIND_WORDS.returned}：${returnReasonWords(entry.reason)}`;
  if (entry.kind.startsWith('sla_') && entry.clock) return `${KIND_WORDS[entry.kind]}（${clockWords(entry.clock as Deadline['clock'])}）`;
  return KIND_WORDS[entry.kind] ?? entry.kind;
}
