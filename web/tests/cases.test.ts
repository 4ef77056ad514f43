import { describe, expect, it } from 'vitest';

import type { CaseSummary } from '@/api/routing';
import { actionsFor, byDueFirst, countdown, nextDeadline, timelineWords } from '@/domain/cases';

function summary(overrides: Partial<CaseSummary>): CaseSummary {
  return {
    case_id: 'c', tracking_no: 'YT-1', status: 'assigned', level: 'grid', grid_id: 'g', grid_name: '网格', category: 'lighting',
    complexity: 'simple', urgent: false, assignee: null, reporter_count: 1, text: '路灯坏了', opened_at: '2026-01-01T00:00:00Z',
    status_at: '2026-01-01T00:00:00Z', first_response_due: '2026-01-01T02:00:00Z', resolution_due: '2026-01-04T00:00:00Z',
    ...overrides,
  };
}

describe('next deadline', () => {
  it('is the first response while nobody has answered', () => {
    expect(nextDeadline(summary({}))?.clock).toBe('first_response');
  });

  it('is the resolution once the case is acknowledged', () => {
    expect(nextDeadline(summary({ status: 'acknowledged' }))?.clock).toBe('resolution');
  });

  it('is none for a closed case', () => {
    expect(nextDeadline(summary({ status: 'closed' }))).toBeNull();
  });
});

describe('sorting my cases', () => {
  it('puts what is due first on top and urgent before others due at the same time', () => {
    const later = summary({ case_id: 'later', status: 'in_progress', resolution_due: '2026-01-05T00:00:00Z' });
    const soon = summary({ case_id: 'soon', first_response_due: '2026-01-01T01:00:00Z' });
    const sameTimeUrgent = summary({ case_id: 'urgent', urgent: true, first_response_due: '2026-01-01T01:00:00Z' });
    expect(byDueFirst([later, soon, sameTimeUrgent]).map((c) => c.case_id)).toEqual(['urgent', 'soon', 'later']);
  });
});

describe('countdown', () => {
  const now = new Date('2026-01-01T00:00:00Z');
  it('counts down hours and minutes', () => {
    expect(countdown(new Date('2026-01-01T01:05:00Z'), now)).toEqual({ words: '还剩 1小时05分', overdue: false });
  });
  it('says how late an overdue case is', () => {
    expect(countdown(new Date('2025-12-31T23:40:00Z'), now)).toEqual({ words: '已超时 20分钟', overdue: true });
  });
  it('counts days for long deadlines', () => {
    expect(countdown(new Date('2026-01-03T05:00:00Z'), now).words).toBe('还剩 2天5小时');
  });
});

describe('actions by state', () => {
  it('offers acknowledging an assigned case, not resolving a received one', () => {
    expect(actionsFor({ status: 'assigned', level: 'grid', complexity: 'simple', five_steps: [] })).toMatchObject({ acknowledge: true, resolve: true });
    expect(actionsFor({ status: 'received', level: 'grid', complexity: 'simple', five_steps: [] })).toMatchObject({ acknowledge: false, resolve: false });
  });

  it('offers the five steps in order for complex cases only', () => {
    const complex = { status: 'in_progress', level: 'grid', complexity: 'complex' };
    expect(actionsFor({ ...complex, five_steps: [] }).nextStep?.step).toBe('collect');
    const done = [{ step: 'collect', at: '', by: 'w', note: 'x' }, { step: 'survey', at: '', by: 'w', note: 'x' }];
    expect(actionsFor({ ...complex, five_steps: done }).nextStep?.step).toBe('coordinate');
    expect(actionsFor({ ...complex, complexity: 'simple', five_steps: [] }).nextStep).toBeNull();
  });

  it('holds back resolving a department case until the evaluation and escalating beyond a department', () => {
    const atDepartment = actionsFor({ status: 'escalated', level: 'department', complexity: 'complex', five_steps: [] });
    expect(atDepartment.resolve).toBe(false);
    expect(atDepartment.escalate).toBe(false);
  });

  it('offers nothing but notes on a closed case', () => {
    expect(actionsFor({ status: 'closed', level: 'grid', complexity: 'complex', five_steps: [] })).toEqual({
      acknowledge: false, note: true, nextStep: null, resolve: false, escalate: false, giveBack: false,
    });
  });

  it('offers 退单 to the person holding an open case only', () => {
    const held = { status: 'acknowledged', level: 'grid', complexity: 'simple', five_steps: [], assignee: { id: 'w-1' } };
    expect(actionsFor(held, 'w-1').giveBack).toBe(true);
    expect(actionsFor(held, 'w-2').giveBack).toBe(false);
    expect(actionsFor(held).giveBack).toBe(false);
    expect(actionsFor({ ...held, status: 'resolved' }, 'w-1').giveBack).toBe(false);
  });

  it('offers nothing but notes while a returned case waits for a dispatcher', () => {
    const waiting = { status: 'returned', level: 'town', complexity: 'simple', five_steps: [], assignee: null, awaiting_dispatch: true };
    expect(actionsFor(waiting, 'w-1')).toMatchObject({ acknowledge: false, resolve: false, escalate: false, giveBack: false, note: true });
  });
});

describe('timeline words', () => {
  it('names statuses, steps and escalations in plain words', () => {
    expect(timelineWords({ kind: 'status', to: 'acknowledged' })).toBe('已响应');
    expect(timelineWords({ kind: 'five_step', step: 'survey' })).toBe('五步工作法：实地调研');
    expect(timelineWords({ kind: 'escalation', to_level: 'town' })).toBe('上报至乡镇');
    expect(timelineWords({ kind: 'returned', reason: 'wrong_grid' })).toBe('退单：不属于本网格');
    expect(timelineWords({ kind: 'dispatch' })).toBe('派遣');
  });
});
