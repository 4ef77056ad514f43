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
  /** where the resident said it is, if they gave it */
  location?: Centroid | null;
  five_steps: StepEntry[];
  timeline: TimelineEntry[];
  follow_up: { solved: boolean; satisfaction: number; note: string | null; at: string } | null;
  version: number;
}

export interface Centroid {
  lon: number;
  lat: number;
}

export interface GridSummary {
  grid_id: string;
  name: string;
  town_id: string;
  town: string;
  community_id: string;
  community: string;
  centroid: Centroid | null;
}

export interface GridDetail extends GridSummary {
  head?: Person;
  workers?: (Person & { on_duty?: boolean })[];
  /** a GeoJSON polygon (WGS-84) */
  area?: { type: 'Polygon'; coordinates: number[][][] } | null;
}

export interface Page<T> {
  items: T[];
  total: number;
  page: number;
  per_page: number;
}

export interface QueuedCase extends CaseSummary {
  classification: Classification | null;
  dispatch: DispatchState;
  last_return: ReturnRecord | null;
}

export interface Subclass {
  code: string;
  name: string;
  department: string;
}

export interface Taxonomy {
  version: number;
  /** department code → name */
  departments: Record<string, string>;
  majors: { code: string; name: string; subclasses: Subclass[] }[];
}

/** 派遣 / 改派: a grid (and, optionally, which of its workers) or a department; the class if it was wrong. */
export interface DispatchOrder {
  subclass?: string;
  grid_id?: string;
  worker_id?: string;
  department_id?: string;
  note?: string;
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

type Query = Record<string, string | number | boolean | undefined>;

function withQuery(path: string, query: Query): string {
  const params = new URLSearchParams();
  for (const [key, value] of Object.entries(query)) if (value !== undefined && value !== '') params.set(key, String(value));
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export function listCases(query: Query): Promise<Page<CaseSummary>> {
  return call(withQuery('/api/v1/cases', query));
}

// A case may be in any of these and still be someone's to do.
const OPEN_CASE_STATUSES = ['received', 'assigned', 'acknowledged', 'in_progress', 'escalated', 'reopened', 'returned'];
const PER_PAGE = 500;
const MOST_PAGES = 20;

/** Every open case of the caller's area (narrowed by ``query``): one listing per open status, page by page. */
export async function openCases(query: Query = {}): Promise<CaseSummary[]> {
  const lists = await Promise.all(OPEN_CASE_STATUSES.map((status) => allPages((page) => listCases({ ...query, status, page, per_page: PER_PAGE }))));
  return lists.flat();
}

/** The caller's overdue open cases (narrowed by ``query``). */
export function overdueCases(query: Query = {}): Promise<CaseSummary[]> {
  return allPages((page) => listCases({ ...query, overdue: true, page, per_page: PER_PAGE }));
}

async function allPages<T>(fetchPage: (page: number) => Promise<Page<T>>): Promise<T[]> {
  const items: T[] = [];
  for (let page = 1; page <= MOST_PAGES; page += 1) {
    const answer = await fetchPage(page);
    items.push(...answer.items);
    if (page * answer.per_page >= answer.total) break;
  }
  return items;
}

export function dispatchQueue(query: Query = {}): Promise<Page<QueuedCase>> {
  return call(withQuery('/api/v1/dispatch-queue', { per_page: PER_PAGE, ...query }));
}

export function dispatchCase(caseId: string, order: DispatchOrder): Promise<CaseDetail> {
  return call(`/api/v1/cases/${encodeURIComponent(caseId)}/dispatch`, { method: 'POST', body: order });
}

export function placeCase(caseId: string, placement: { grid_id: string; note?: string }): Promise<CaseDetail> {
  return call(`/api/v1/cases/${encodeURIComponent(caseId)}/place`, { method: 'POST', body: placement });
}

/** Every grid of the registry in force (1,429 in the demo county: three pages). */
export function allGrids(): Promise<GridSummary[]> {
  return allPages((page) => call<Page<GridSummary>>(withQuery('/api/v1/grids', { page, per_page: PER_PAGE })));
}

export function taxonomy(): Promise<Taxonomy> {
  return call('/api/v1/taxonomy');
}

/** A GeoJSON polygon (WGS-84). */
export interface Polygon {
  type: 'Polygon';
  coordinates: number[][][];
}

export interface MapGridProperties {
  grid_id: string;
  name: string;
  town_id: string;
  town: string | null;
  community_id: string;
  community: string | null;
  centroid: Centroid | null;
  /** open cases the caller may read */
  open: number;
  /** of those, past a deadline */
  overdue: number;
}

export interface GridFeature {
  type: 'Feature';
  id: string;
  geometry: Polygon | null;
  properties: MapGridProperties;
}

/** A town's open cases in none of its grids yet. */
export interface UnplacedTownCounts {
  town_id: string;
  open: number;
  overdue: number;
}

export interface GridMap {
  type: 'FeatureCollection';
  version: number | null;
  features: GridFeature[];
  /** per town, its cases in no grid yet (they count for the town, on no grid) */
  unplaced_by_town: UnplacedTownCounts[];
}

/** Every grid of the caller's area with its area and its open and overdue cases, in one answer. */
export function gridMap(): Promise<GridMap> {
  return call('/api/v1/map/grids');
}

export interface MyGrid extends GridSummary {
  role: 'grid_head' | 'grid_worker';
  on_duty: boolean | null;
}

/** The grids the signed-in staff member heads or works in. */
export function myGrids(): Promise<{ subject: string; version: number | null; items: MyGrid[] }> {
  return call('/api/v1/me/grids');
}

export interface Department {
  department_id: string;
  name: string;
  categories: string[];
  contact: Person | null;
}

/** The registry's departments: the ones a case can be dispatched to. */
export function departments(): Promise<{ version: number | null; items: Department[] }> {
  return call('/api/v1/departments');
}

export interface ScorecardRow {
  town_id?: string;
  community_id?: string;
  grid_id?: string;
  received: number;
  closed: number;
  closed_on_time_rate: number | null;
  satisfaction_rate: number | null;
  accurate_dispatch_rate: number | null;
}

export interface Scorecard {
  by: string;
  from: string;
  to: string;
  rows: ScorecardRow[];
  notes: string[];
}

/** The scorecard (考核指标) of the current period by town, community or grid. */
export function indicators(by: 'town' | 'community' | 'grid', period: 'week' | 'month' | 'quarter'): Promise<Scorecard> {
  return call(withQuery('/api/v1/indicators', { by, period }));
}
