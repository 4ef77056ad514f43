// 学在网格: which campaign is this week's for a grid, participation in words, what a
// recorded session sends, and the county's participation by town.
import type { Campaign, NewSession, ReportRow, SessionKind } from '@/api/study';
import { percent } from '@/domain/centre';

// The county's clock (Asia/Shanghai keeps no daylight saving time).
const COUNTY_OFFSET_MS = 8 * 3600 * 1000;
const DAY_MS = 24 * 3600 * 1000;

/** The county's week holding ``now``: Monday 00:00 to the next Monday 00:00, county time. */
export function weekOf(now: Date): { start: Date; end: Date } {
  const local = new Date(now.getTime() + COUNTY_OFFSET_MS);
  const sinceMonday = (local.getUTCDay() + 6) % 7;
  const start = new Date(Date.UTC(local.getUTCFullYear(), local.getUTCMonth(), local.getUTCDate() - sinceMonday) - COUNTY_OFFSET_MS);
  return { start, end: new Date(start.getTime() + 7 * DAY_MS) };
}

export interface Place {
  grid_id: string;
  town_id: string;
  community_id: string;
}

/** Whether the campaign goes to the grid (to all, its town, its community or itself). */
export function targets(campaign: Pick<Campaign, 'target'>, grid: Place): boolean {
  const { scope, ids } = campaign.target;
  if (scope === 'all') return true;
  const id = { towns: grid.town_id, communities: grid.community_id, grids: grid.grid_id }[scope];
  return ids.includes(id);
}

function within(iso: string | null, week: { start: Date; end: Date }): boolean {
  if (!iso) return false;
  const at = new Date(iso).getTime();
  return at >= week.start.getTime() && at < week.end.getTime();
}

/** This week's campaign (of the grid, if one is named): the newest with a round in the
 * county's week; else the one whose round went out last; ``null`` if none. ``campaigns``
 * come newest first, as study lists them. */
export function campaignOfWeek(campaigns: Campaign[], now: Date, grid?: Place): { campaign: Campaign; thisWeek: boolean } | null {
  const week = weekOf(now);
  const candidates = grid ? campaigns.filter((campaign) => targets(campaign, grid)) : campaigns;
  const current = candidates.find((campaign) => within(campaign.last_round_at, week) || within(campaign.next_round_at, week));
  if (current) return { campaign: current, thisWeek: true };
  const sent = candidates.filter((campaign) => campaign.last_round_at !== null)
    .sort((a, b) => new Date(b.last_round_at!).getTime() - new Date(a.last_round_at!).getTime());
  return sent.length ? { campaign: sent[0], thisWeek: false } : null;
}

/** "3/12 人（25%）", or with nobody to count, "暂无成员". */
export function participationWords(participants: number, members: number): string {
  return members ? `${participants}/${members} 人（${percent(participants / members)}）` : '暂无成员';
}

export const SESSION_KINDS: { kind: SessionKind; words: string }[] = [
  { kind: 'bench', words: '板凳会' },
  { kind: 'courtyard', words: '院落会' },
  { kind: 'online', words: '线上学习会' },
  { kind: 'door_to_door', words: '入户宣讲' },
];

const TAKING_PART: Record<string, string> = { read: '已读', attended: '参加学习会', commented: '已评论' };
const MEMBER_KINDS: Record<string, string> = { party_member: '党员', resident: '居民' };

export function takingPartWords(kinds: string[]): string {
  return kinds.map((kind) => TAKING_PART[kind] ?? kind).join('、');
}

export function memberKindWords(kind: string): string {
  return MEMBER_KINDS[kind] ?? kind;
}

/** County time as a ``datetime-local`` input shows it: "2026-11-29T14:05". */
export function countyInputTime(now: Date): string {
  return new Date(now.getTime() + COUNTY_OFFSET_MS).toISOString().slice(0, 16);
}

export interface SessionForm {
  kind: SessionKind | '';
  team: string;
  title: string;
  /** county time, as a datetime-local input gives it */
  heldAt: string;
  attendees: string[];
}

/** What to record, or the words saying what is missing. */
export function sessionOrder(form: SessionForm, gridId: string, campaignId: string): { session: NewSession } | { problem: string } {
  if (!form.kind) return { problem: '请选择学习形式' };
  if (!form.team.trim()) return { problem: '请填写宣讲队' };
  if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}$/.test(form.heldAt)) return { problem: '请填写学习时间' };
  if (form.attendees.length === 0) return { problem: '请勾选到场的成员' };
  const session: NewSession = {
    grid_id: gridId, campaign_id: campaignId, kind: form.kind, team: form.team.trim(),
    held_at: `${form.heldAt}:00+08:00`, attendees: [...form.attendees],
  };
  const title = form.title.trim();
  if (title) session.title = title;
  return { session };
}

export interface TownParticipation {
  townId: string;
  name: string;
  members: number;
  participants: number;
  missing: number;
  rate: number | null;
}

/** Each town's participation with its name, the lowest rate first (towns without members last). */
export function participationByTown(rows: ReportRow[], names: Map<string, string>): TownParticipation[] {
  return rows
    .map((row) => ({
      townId: row.town_id ?? '', name: names.get(row.town_id ?? '') ?? row.town_id ?? '',
      members: row.members, participants: row.participants, missing: row.members - row.participants, rate: row.rate,
    }))
    .sort((a, b) => (a.rate ?? 2) - (b.rate ?? 2) || a.name.localeCompare(b.name, 'zh-CN'));
}
