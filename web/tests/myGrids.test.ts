import { createPinia, setActivePinia } from 'pinia';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

import { useMyGrids } from '@/stores/myGrids';

const GRIDS = [
  { grid_id: 'g1', name: '第一网格', town_id: 't', town: '镇', community_id: 'c', community: '社区', centroid: null, role: 'grid_worker', on_duty: true },
  { grid_id: 'g2', name: '第二网格', town_id: 't', town: '镇', community_id: 'c', community: '社区', centroid: null, role: 'grid_head', on_duty: null },
];

describe("the worker's grids", () => {
  let fetchMock: ReturnType<typeof vi.fn>;

  beforeEach(() => {
    setActivePinia(createPinia());
    fetchMock = vi.fn(async () => new Response(JSON.stringify({ subject: 'w', version: 3, items: GRIDS }), { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
  });
  afterEach(() => vi.unstubAllGlobals());

  it('are read from routing once per visit', async () => {
    const store = useMyGrids();
    await store.load();
    await store.load();
    expect(fetchMock).toHaveBeenCalledTimes(1);
    expect(fetchMock.mock.calls[0][0]).toBe('/api/v1/me/grids');
    expect(store.headed.map((grid) => grid.grid_id)).toEqual(['g2']);
  });

  it('start on the first grid and keep the one chosen', async () => {
    const store = useMyGrids();
    expect(store.chosen).toBeNull();
    await store.load();
    expect(store.chosen?.grid_id).toBe('g1');
    store.choose('g2');
    expect(store.chosen?.grid_id).toBe('g2');
    store.choose('gone');
    expect(store.chosen?.grid_id).toBe('g1');
  });
});
