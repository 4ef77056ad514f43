import { call } from './client';

export type Scope = 'all' | 'towns' | 'communities' | 'grids';

export interface Campaign {
  campaign_id: string;
  title: string;
  content_ids: string[];
  target: { scope: Scope; ids: string[] };
  next_round_at: string | null;
  last_round_at: string | null;
  created_at: string;
  /** how many grids it targets */
  grids: number;
}

export interface Media {
  type: 'picture' | 'audio' | 'video' | 'link';
  url: string;
  caption?: string;
}

export interface Content {
  content_id: string;
  title: string;
  body: string;
  media: Media[];
  team: string | null;
}

export interface ReportRow {
  grid_id?: string;
  grid_name?: string | null;
  community_id?: string | null;
  town_id?: string | null;
  members: number;
  participants: number;
  /** participants / members; null without members */
  rate: number | null;
}

export interface Member {
  member_id: string;
  name: string;
  kind: 'party_member' | 'resident';
}

export interface Participant extends Member {
  kinds: ('read' | 'attended' | 'commented')[];
  first_at: string;
}

export type SessionKind = 'online' | 'bench' | 'courtyard' | 'door_to_door';

export interface NewSession {
  grid_id: string;
  campaign_id: string;
  team: string;
  kind: SessionKind;
  held_at: string;
  title?: string;
  attendees: string[];
}

export interface Session extends NewSession {
  _id: string;
}

/** The latest campaigns, newest first. */
export async function campaigns(): Promise<Campaign[]> {
  return (await call<{ items: Campaign[] }>('/api/v1/campaigns')).items;
}

export function content(contentId: string): Promise<Content> {
  return call(`/api/v1/contents/${encodeURIComponent(contentId)}`);
}

/** Participation (参学率) of a campaign by grid, community or town. */
export async function campaignReport(campaignId: string, by: 'grid' | 'community' | 'town'): Promise<ReportRow[]> {
  return (await call<{ rows: ReportRow[] }>(`/api/v1/campaigns/${encodeURIComponent(campaignId)}/report?by=${by}`)).rows;
}

/** The 不掉队 list: the grid's members who have not taken part. */
export async function missingMembers(campaignId: string, gridId: string): Promise<Member[]> {
  const path = `/api/v1/campaigns/${encodeURIComponent(campaignId)}/missing?grid_id=${encodeURIComponent(gridId)}`;
  return (await call<{ members: Member[] }>(path)).members;
}

/** The grid's members who have taken part, with how. */
export async function participants(campaignId: string, gridId: string): Promise<Participant[]> {
  const path = `/api/v1/campaigns/${encodeURIComponent(campaignId)}/participants?grid_id=${encodeURIComponent(gridId)}`;
  return (await call<{ members: Participant[] }>(path)).members;
}

/** Record a meeting with who attended; the same key again records it once. */
export function recordSession(session: NewSession, idempotencyKey: string): Promise<Session> {
  return call('/api/v1/sessions', { method: 'POST', body: session, headers: { 'Idempotency-Key': idempotencyKey } });
}
