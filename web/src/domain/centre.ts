// The command centre's rules: who dispatches, why a case waits, what a dispatch
// sends, and how open and overdue cases add up by town, community and grid.
import type {
  Centroid, DispatchOrder, GridFeature, GridSummary, QueuedCase, ScorecardRow, UnplacedTownCounts, WaitReason,
} from '@/api/routing';

// Routing's cases.dispatch permission: the command centre everywhere, a town lead in their town.
const DISPATCHER_ROLES = ['county_center', 'county_admin', 'town_lead'];

export function isDispatcher(roles: string[]): boolean {
  return roles.some((role) => DISPATCHER_ROLES.includes(role));
}

export const WAIT_REASONS: { reason: WaitReason; words: string }[] = [
  { reason: 'low_confidence', words: '分类存疑' },
  { reason: 'unlocated', words: '待分拨网格' },
  { reason: 'returned', words: '退单' },
];

export function waitReasonWords(reason: string): string {
  return WAIT_REASONS.find((entry) => entry.reason === reason)?.words ?? reason;
}

/** "98%" for a probability. */
export function percent(probability: number): string {
  return `${Math.round(probability * 100)}%`;
}

export interface DispatchForm {
  subclass: string;
  target: 'grid' | 'department';
  gridId: string;
  workerId: string;
  departmentId: string;
  note: string;
}

/** The form a dispatcher opens on a queued case: its own grid and class already chosen. */
export function dispatchFormFor(item: Pick<QueuedCase, 'subclass' | 'grid_id' | 'classification'>): DispatchForm {
  return {
    subclass: item.subclass ?? item.classification?.candidates[0]?.subclass ?? '',
    target: 'grid',
    gridId: item.grid_id ?? '',
    workerId: '',
    departmentId: '',
    note: '',
  };
}

/** What to send, or the words saying what is missing. The class goes along when the
 * dispatcher changed it or the classifier was not sure: either way a person decided it. */
export function dispatchOrder(
  form: DispatchForm,
  item: Pick<QueuedCase, 'subclass' | 'classification'>,
): { order: DispatchOrder } | { problem: string } {
  if (!form.subclass) return { problem: '请选择分类' };
  const order: DispatchOrder = {};
  const doubtful = item.classification ? !item.classification.confident : false;
  if (form.subclass !== item.subclass || doubtful) order.subclass = form.subclass;
  if (form.target === 'grid') {
    if (!form.gridId) return { problem: '请选择派遣到的网格' };
    order.grid_id = form.gridId;
    if (form.workerId) order.worker_id = form.workerId;
  } else {
    if (!form.departmentId) return { problem: '请选择派遣到的部门' };
    order.department_id = form.departmentId;
  }
  const note = form.note.trim();
  if (note) order.note = note;
  return { order };
}

export interface Counts {
  open: number;
  overdue: number;
}

export interface AreaCounts {
  towns: Map<string, Counts>;
  communities: Map<string, Counts>;
  grids: Map<string, Counts>;
}

/** The map's grids as the registry lists them, for picking town → community → grid. */
export function gridsOfMap(features: GridFeature[]): GridSummary[] {
  return features.map(({ properties: grid }) => ({
    grid_id: grid.grid_id, name: grid.name, town_id: grid.town_id, town: grid.town ?? grid.town_id,
    community_id: grid.community_id, community: grid.community ?? grid.community_id, centroid: grid.centroid,
  }));
}

/** Each grid's open and overdue cases (from routing's map), added up by community and town;
 * a town's cases in no grid yet count for the town too. */
export function countsOfMap(features: GridFeature[], unplacedByTown: UnplacedTownCounts[]): AreaCounts {
  const counts: AreaCounts = { towns: new Map(), communities: new Map(), grids: new Map() };
  const add = (table: Map<string, Counts>, key: string, grid: Counts) => {
    const entry = table.get(key) ?? { open: 0, overdue: 0 };
    table.set(key, { open: entry.open + grid.open, overdue: entry.overdue + grid.overdue });
  };
  for (const { properties: grid } of features) {
    add(counts.grids, grid.grid_id, grid);
    add(counts.communities, grid.community_id, grid);
    add(counts.towns, grid.town_id, grid);
  }
  for (const town of unplacedByTown) add(counts.towns, town.town_id, town);
  return counts;
}

export const NO_CASES: Counts = { open: 0, overdue: 0 };

/** Red with anything overdue, amber with open cases, green with none. */
export function colourFor(counts: Counts): string {
  if (counts.overdue > 0) return '#c81a1a';
  if (counts.open > 0) return '#d48806';
  return '#2e8b57';
}

export interface Area {
  id: string;
  name: string;
  centroid: Centroid | null;
}

function middle(points: Centroid[]): Centroid | null {
  if (points.length === 0) return null;
  return {
    lon: points.reduce((sum, point) => sum + point.lon, 0) / points.length,
    lat: points.reduce((sum, point) => sum + point.lat, 0) / points.length,
  };
}

function areasOf(grids: GridSummary[], key: (grid: GridSummary) => [string, string]): Area[] {
  const groups = new Map<string, { name: string; points: Centroid[] }>();
  for (const grid of grids) {
    const [id, name] = key(grid);
    const group = groups.get(id) ?? { name, points: [] };
    if (grid.centroid) group.points.push(grid.centroid);
    groups.set(id, group);
  }
  return [...groups].map(([id, group]) => ({ id, name: group.name, centroid: middle(group.points) }));
}

/** The county's towns, each in the middle of its grids. */
export function townsOf(grids: GridSummary[]): Area[] {
  return areasOf(grids, (grid) => [grid.town_id, grid.town]);
}

/** A town's communities (and villages), each in the middle of its grids. */
export function communitiesOf(grids: GridSummary[], townId: string): Area[] {
  return areasOf(grids.filter((grid) => grid.town_id === townId), (grid) => [grid.community_id, grid.community]);
}

/** Worst first: most overdue, then most open. */
export function byTrouble<T extends { counts: Counts }>(areas: T[]): T[] {
  return [...areas].sort((a, b) => b.counts.overdue - a.counts.overdue || b.counts.open - a.counts.open);
}

export type ScorecardLevel = 'town' | 'community' | 'grid';

/** Each scorecard row named as people say it (a community with its town, a grid with its community),
 * busiest first; a row the registry does not name keeps its id. */
export function namedRows<T extends ScorecardRow>(rows: T[], grids: GridSummary[], level: ScorecardLevel): (T & { id: string; name: string })[] {
  const names = new Map<string, string>();
  for (const grid of grids) {
    if (level === 'town') names.set(grid.town_id, grid.town);
    else if (level === 'community') names.set(grid.community_id, `${grid.town} · ${grid.community}`);
    else names.set(grid.grid_id, `${grid.community} · ${grid.name}`);
  }
  const idOf = (row: ScorecardRow) => (level === 'town' ? row.town_id : level === 'community' ? row.community_id : row.grid_id) ?? '';
  return rows
    .map((row) => ({ ...row, id: idOf(row), name: names.get(idOf(row)) ?? idOf(row) }))
    .sort((a, b) => b.received - a.received || a.name.localeCompare(b.name, 'zh-CN'));
}
