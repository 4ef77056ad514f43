import { describe, expect, it } from 'vitest';

import type { Campaign } from '@/api/study';
import {
  campaignOfWeek, countyInputTime, participationByTown, participationWords, sessionOrder, takingPartWords, targets, weekOf,
} from '@/domain/study';

function campaign(id: string, target: Campaign['target'], last: string | null, next: string | null): Campaign {
  return { campaign_id: id, title: id, content_ids: ['CT-1'], target, last_round_at: last, next_round_at: next, created_at: '2026-11-01T00:00:00Z', grids: 1 };
}

const GRID = { grid_id: 'YT-GL-FG-01', town_id: 'geling', community_id: 'gl-fangguang' };
// Saturday 28 November 2026, 10:00 in the county; its week is Monday 23 (00:00 county time) to Monday 30
const NOW = new Date('2026-11-28T02:00:00Z');

describe("the county's week", () => {
  it('runs from Monday 00:00 county time, whatever time zone the phone is in', () => {
    expect(weekOf(NOW)).toEqual({ start: new Date('2026-11-22T16:00:00Z'), end: new Date('2026-11-29T16:00:00Z') });
    // Sunday 23:30 in the county is still that week; Monday 00:30 is the next
    expect(weekOf(new Date('2026-11-29T15:30:00Z')).start).toEqual(new Date('2026-11-22T16:00:00Z'));
    expect(weekOf(new Date('2026-11-29T16:30:00Z')).start).toEqual(new Date('2026-11-29T16:00:00Z'));
  });
});

describe("a grid's campaign", () => {
  it('is for the grid when it targets all, its town, its community or the grid itself', () => {
    expect(targets(campaign('a', { scope: 'all', ids: [] }, null, null), GRID)).toBe(true);
    expect(targets(campaign('t', { scope: 'towns', ids: ['geling'] }, null, null), GRID)).toBe(true);
    expect(targets(campaign('c', { scope: 'communities', ids: ['zc-nanmen'] }, null, null), GRID)).toBe(false);
    expect(targets(campaign('g', { scope: 'grids', ids: ['YT-GL-FG-01'] }, null, null), GRID)).toBe(true);
  });

  it("is the newest one with a round this week, sent or still to come", () => {
    const campaigns = [
      campaign('other-town', { scope: 'towns', ids: ['zhangcheng'] }, '2026-11-27T01:00:00Z', null),
      campaign('coming', { scope: 'grids', ids: ['YT-GL-FG-01'] }, null, '2026-11-29T01:00:00Z'),
      campaign('sent', { scope: 'all', ids: [] }, '2026-11-24T01:00:00Z', '2026-12-01T01:00:00Z'),
    ];
    expect(campaignOfWeek(campaigns, NOW, GRID)).toEqual({ campaign: campaigns[1], thisWeek: true });
    expect(campaignOfWeek(campaigns, NOW)!.campaign.campaign_id).toBe('other-town');
  });

  it('is the last one sent when none falls this week, and none when nothing was sent', () => {
    const older = campaign('older', { scope: 'all', ids: [] }, '2026-11-02T01:00:00Z', null);
    const old = campaign('old', { scope: 'all', ids: [] }, '2026-11-16T01:00:00Z', '2026-12-07T01:00:00Z');
    expect(campaignOfWeek([older, old], NOW, GRID)).toEqual({ campaign: old, thisWeek: false });
    expect(campaignOfWeek([campaign('later', { scope: 'all', ids: [] }, null, '2026-12-07T01:00:00Z')], NOW, GRID)).toBeNull();
  });
});

describe('participation in words', () => {
  it('counts and rates, and says so when a grid has no members', () => {
    expect(participationWords(3, 12)).toBe('3/12 人（25%）');
    expect(participationWords(0, 0)).toBe('暂无成员');
    expect(takingPartWords(['attended', 'read'])).toBe('参加学习会、已读');
  });
});

describe('a recorded session', () => {
  const form = { kind: 'bench' as const, team: ' 方广村宣讲队 ', title: '', heldAt: '2026-11-28T09:30', attendees: ['m1', 'm2'] };

  it('is held at county time by the grid, for the campaign, with who attended', () => {
    expect(sessionOrder(form, 'YT-GL-FG-01', 'CP-1')).toEqual({ session: {
      grid_id: 'YT-GL-FG-01', campaign_id: 'CP-1', kind: 'bench', team: '方广村宣讲队', held_at: '2026-11-28T09:30:00+08:00', attendees: ['m1', 'm2'],
    } });
    expect(countyInputTime(NOW)).toBe('2026-11-28T10:00');
  });

  it('says what is missing', () => {
    expect(sessionOrder({ ...form, kind: '' }, 'g', 'c')).toEqual({ problem: '请选择学习形式' });
    expect(sessionOrder({ ...form, team: ' ' }, 'g', 'c')).toEqual({ problem: '请填写宣讲队' });
    expect(sessionOrder({ ...form, heldAt: '' }, 'g', 'c')).toEqual({ problem: '请填写学习时间' });
    expect(sessionOrder({ ...form, attendees: [] }, 'g', 'c')).toEqual({ problem: '请勾选到场的成员' });
  });
});

describe("the county's participation by town", () => {
  it('names each town, counts who is missing and puts the lowest rate first, towns without members last', () => {
    const rows = [
      { town_id: 'geling', members: 10, participants: 8, rate: 0.8 },
      { town_id: 'zhangcheng', members: 0, participants: 0, rate: null },
      { town_id: 'chengfeng', members: 4, participants: 1, rate: 0.25 },
    ];
    const names = new Map([['geling', '葛岭镇'], ['chengfeng', '城峰镇']]);
    expect(participationByTown(rows, names)).toEqual([
      { townId: 'chengfeng', name: '城峰镇', members: 4, participants: 1, missing: 3, rate: 0.25 },
      { townId: 'geling', name: '葛岭镇', members: 10, participants: 8, missing: 2, rate: 0.8 },
      { townId: 'zhangcheng', name: 'zhangcheng', members: 0, participants: 0, missing: 0, rate: null },
    ]);
  });
});
