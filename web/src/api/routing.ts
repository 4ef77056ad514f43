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
  category: string;
  complexity: string;
  urgent: boolean;
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

export interface CaseDetail extends CaseSummary {
  address: string | null;
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

export type CaseAction = 'acknowledge' | 'resolve' | 'notes' | 'escalate' | 'steps';

export function actOnCase(caseId: string, action: CaseAction, body: Record<string, unknown>): Promise<CaseDetail> {
  return call(`/api/v1/cases/${encodeURIComponent(caseId)}/${action}`, { method: 'POST', body });
}

export function gridDetail(gridId: string): Promise<GridDetail> {
  return call(`/api/v1/grids/${encodeURIComponent(gridId)}`);
}

export function answerFollowUp(token: string, answer: { solved: boolean; satisfaction: number; note?: string }): Promise<FollowUpAnswer> {
  return call(`/api/v1/follow-up/${encodeURIComponent(token)}`, { method: 'POST', body: answer, anonymous: true });
}
