import { call } from './client';

export interface Person {
  id: string;
  name?: string;
  role?: string;
}

export interface CaseSummary {
  case_id: string;
  tracking_no: string;
  status: string;
  level: string;
  grid_id: string | null;
  grid_name: string | null;
  town_id?: string | null;
  category: string;
  category_name?: string | null;
  subclass?: string | null;
  subclass_name?: string | null;
  major?: string | null;
  major_name?: string | null;
  complexity: string;
  urgent: boolean;
  triage?: boolean;
  awaiting_dispatch?: boolean;
  return_count?: number;
  assignee: Person | null;
  reporter_count: number;
  text: string;
  opened_at: string;
  status_at: string;
  first_response_due: string | null;
  resolution_due: string | null;
}

export interface TimelineEntry {
  kind: string;
  at: string;
  by?: string;
  role?: string;
  from?: string | null;
  to?: string;
  note?: string | null;
  step?: string;
  from_level?: string;
  to_level?: string;
  clock?: string;
}

export interface StepEntry {
  step: string;
  at: string;
  by: string;
  note: string;
}

export interface Candidate {
  subclass: string;
  major: string;
  name: string;
  probability: number;
}

export interface Classification {
  model: string | null;
  subclass: string;
  probability: number;
  candidates: Candidate[];
  threshold: number;
  confident: boolean;
}

export type WaitReason = 'low_confidence' | 'unlocated' | 'returned';

export interface DispatchState {
  reason: WaitReason;
  queue: 'town' | 'county';
  town_id: string | null;
  since: string;
  return_reason: string | null;
}

export type ReturnReason = 'wrong_grid' | 'wrong_department' | 'wrong_class' | 'other';

export interface ReturnRecord {
  reason: ReturnReason;
  note: string;
  at: string;
  by?: string;
  role?: string;
  assignee?: Person | null;
  grid_id?: string | null;
}

export interface CaseDetail extends CaseSummary {
  address: string | null;
  classification?: Classification | null;
  dispatch?: DispatchState | null;
  returns?: ReturnRecord[];
  department?: { id: string; name: string } | null;
  reporters: { tracking_no: string | null; name: string | null; phone: string | null; at: string | null }[];
  five_steps: StepEntry[];
  timeline: TimelineEntry[];
  follow_up: { solved: boolean; satisfaction: number; note: string | null; at: string } | null;
  version: number;
}

export interface GridDetail {
  grid_id: string;
  name: string;
  town: string;
  community: string;
}

export interface FollowUpAnswer {
  tracking_no: string;
  status: string;
  follow_up: { solved: boolean; satisfaction: number; note: string | null; at: string };
}

export function workerCases(workerId: string): Promise<{ items: CaseSummary[]; total: number }> {
  return call(`/api/v1/workers/${encodeURIComponent(workerId)}/cases`);
}

export function caseDetail(caseId: string): Promise<CaseDetail> {
  return call(`/api/v1/cases/${encodeURIComponent(caseId)}`);
}

export type CaseAction = 'acknowledge' | 'resolve' | 'notes' | 'escalate' | 'steps' | 'return';

export function actOnCase(caseId: string, action: CaseAction, body: Record<string, unknown>): Promise<CaseDetail> {
  return call(`/api/v1/cases/${encodeURIComponent(caseId)}/${action}`, { method: 'POST', body });
}

export function gridDetail(gridId: string): Promise<GridDetail> {
  return call(`/api/v1/grids/${encodeURIComponent(gridId)}`);
}

export function answerFollowUp(token: string, answer: { solved: boolean; satisfaction: number; note?: string }): Promise<FollowUpAnswer> {
  return call(`/api/v1/follow-up/${encodeURIComponent(token)}`, { method: 'POST', body: answer, anonymous: true });
}
