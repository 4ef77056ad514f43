import { describe, expect, it } from 'vitest';

import type { GridFeature, GridSummary, QueuedCase, ScorecardRow } from '@/api/routing';
import {
  byTrouble, colourFor, communitiesOf, countsOfMap, dispatchFormFor, dispatchOrder, gridsOfMap, isDispatcher, namedRows, townsOf, waitReasonWords,
} from '@/domain/centre';

function grid(id: string, town: string, community: string, lon: number, lat: number): GridSummary {
  return { grid_id: id, name: id, town_id: town, town: `${town}镇`, community_id: community, community: `${community}社区`, centroid: { lon, lat } };
}

const GRIDS = [grid('g1', 't1', 'c1', 118, 25), grid('g2', 't1', 'c1', 118.2, 25.2), grid('g3', 't1', 'c2', 119, 26), grid('g4', 't2', 'c3', 117, 24)];

type Queued = Pick<QueuedCase, 'subclass' | 'grid_id' | 'classification'>;
const doubtful: Queued = {
  subclass: 'garbage', grid_id: 'g1',
  classification: {
    model: 'm', subclass: 'garbage', probability: 0.4, threshold: 0.91, confident: false,
    candidates: [{ subclass: 'garbage', major: 'city', name: '垃圾', probability: 0.4 }, { subclass: 'road_damage', major: 'city', name: '道路', probability: 0.3 }],
  },
};

describe('who dispatches', () => {
  it('is the command centre and town leads', () => {
    expect(isDispatcher(['town_lead'])).toBe(true);
    expect(isDispatcher(['county_center'])).toBe(true);
    expect(isDispatcher(['grid_worker', 'grid_head'])).toBe(false);
  });

  it('names why a case waits', () => {
    expect(waitReasonWords('unlocated')).toBe('待分拨网格');
  });
});

describe('a dispatch order', () => {
  it('starts from the case own grid and class', () => {
    expect(dispatchFormFor(doubtful)).toMatchObject({ subclass: 'garbage', gridId: 'g1', target: 'grid' });
  });

  it('sends the class a person confirmed for a doubtful case, with the grid, worker and note', () => {
    const form = { ...dispatchFormFor(doubtful), workerId: 'w1', note: ' 请尽快 ' };
    expect(dispatchOrder(form, doubtful)).toEqual({ order: { subclass: 'garbage', grid_id: 'g1', worker_id: 'w1', note: '请尽快' } });
  });

  it('leaves out an unchanged class the classifier was sure of', () => {
    const sure = { ...doubtful, classification: { ...doubtful.classification!, confident: true } };
    expect(dispatchOrder(dispatchFormFor(sure), sure)).toEqual({ order: { grid_id: 'g1' } });
  });

  it('sends a corrected class to a department, and says what is missing', () => {
    const form = { ...dispatchFormFor(doubtful), subclass: 'road_damage', target: 'department' as const };
    expect(dispatchOrder(form, doubtful)).toEqual({ problem: '请选择派遣到的部门' });
    expect(dispatchOrder({ ...form, departmentId: 'transport' }, doubtful)).toEqual({ order: { subclass: 'road_damage', department_id: 'transport' } });
    expect(dispatchOrder({ ...form, target: 'grid', gridId: '' }, doubtful)).toEqual({ problem: '请选择派遣到的网格' });
  });
});

describe('counting by area', () => {
  const feature = (id: string, open: number, overdue: number): GridFeature => {
    const { grid_id, name, town_id, town, community_id, community, centroid } = GRIDS.find((grid) => grid.grid_id === id)!;
    return { type: 'Feature', id, geometry: null, properties: { grid_id, name, town_id, town, community_id, community, centroid, open, overdue } };
  };
  const features = [feature('g1', 2, 1), feature('g2', 0, 0), feature('g3', 1, 0), feature('g4', 4, 3)];
  const counts = countsOfMap(features, []);

  it('adds the map grids open and overdue cases up by community and town', () => {
    expect(counts.grids.get('g1')).toEqual({ open: 2, overdue: 1 });
    expect(counts.communities.get('c1')).toEqual({ open: 2, overdue: 1 });
    expect(counts.communities.get('c2')).toEqual({ open: 1, overdue: 0 });
    expect(counts.towns.get('t1')).toEqual({ open: 3, overdue: 1 });
    expect(counts.towns.get('t2')).toEqual({ open: 4, overdue: 3 });
  });

  it('counts a towns cases in no grid yet for the town, not for any community or grid', () => {
    const withUnplaced = countsOfMap(features, [{ town_id: 't1', open: 2, overdue: 1 }, { town_id: 't3', open: 1, overdue: 0 }]);
    expect(withUnplaced.towns.get('t1')).toEqual({ open: 5, overdue: 2 });
    expect(withUnplaced.towns.get('t2')).toEqual({ open: 4, overdue: 3 });
    expect(withUnplaced.towns.get('t3')).toEqual({ open: 1, overdue: 0 });
    expect(withUnplaced.communities).toEqual(counts.communities);
    expect(withUnplaced.grids).toEqual(counts.grids);
  });

  it('lists the map grids as the registry does, for the pickers', () => {
    expect(gridsOfMap(features)).toEqual(GRIDS);
  });

  it('colours overdue red, open amber, none green', () => {
    expect(colourFor({ open: 2, overdue: 1 })).toBe('#c81a1a');
    expect(colourFor({ open: 1, overdue: 0 })).toBe('#d48806');
    expect(colourFor({ open: 0, overdue: 0 })).toBe('#2e8b57');
  });

  it('puts the worst areas first', () => {
    const areas = [{ id: 'x', counts: { open: 5, overdue: 0 } }, { id: 'y', counts: { open: 1, overdue: 1 } }, { id: 'z', counts: { open: 9, overdue: 0 } }];
    expect(byTrouble(areas).map((area) => area.id)).toEqual(['y', 'z', 'x']);
  });
});

describe('towns and communities', () => {
  it('places each in the middle of its grids', () => {
    expect(townsOf(GRIDS).map((town) => town.id)).toEqual(['t1', 't2']);
    const [c1] = communitiesOf(GRIDS, 't1');
    expect(c1.name).toBe('c1社区');
    expect(c1.centroid!.lon).toBeCloseTo(118.1);
    expect(c1.centroid!.lat).toBeCloseTo(25.1);
  });
});

describe('the scorecard by level', () => {
  const row = (ids: Partial<ScorecardRow>, received: number): ScorecardRow => ({
    ...ids, received, closed: 0, closed_on_time_rate: null, satisfaction_rate: null, accurate_dispatch_rate: null,
  });

  it('names towns, communities with their town and grids with their community, busiest first', () => {
    expect(namedRows([row({ town_id: 't2' }, 1), row({ town_id: 't1' }, 5)], GRIDS, 'town').map((r) => r.name)).toEqual(['t1镇', 't2镇']);
    expect(namedRows([row({ community_id: 'c2' }, 2), row({ community_id: 'c3' }, 3)], GRIDS, 'community').map((r) => r.name))
      .toEqual(['t2镇 · c3社区', 't1镇 · c2社区']);
    const grids = namedRows([row({ grid_id: 'g1' }, 0), row({ grid_id: 'g4' }, 0)], GRIDS, 'grid');
    expect(grids.map((r) => [r.id, r.name])).toEqual([['g1', 'c1社区 · g1'], ['g4', 'c3社区 · g4']]);
  });

  it('keeps the id of a row the registry does not name', () => {
    expect(namedRows([row({ grid_id: 'gone' }, 1)], GRIDS, 'grid')[0].name).toBe('gone');
  });
});
