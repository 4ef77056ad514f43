import { defineStore } from 'pinia';

import { myGrids, type MyGrid } from '@/api/routing';

/** The grids the signed-in worker heads or works in (routing's registry), read once per
 * visit, and the one they chose to work on when they have several. */
export const useMyGrids = defineStore('my-grids', {
  state: () => ({ grids: null as MyGrid[] | null, chosenId: '' }),
  getters: {
    chosen: (state): MyGrid | null => state.grids?.find((grid) => grid.grid_id === state.chosenId) ?? state.grids?.[0] ?? null,
    headed: (state): MyGrid[] => (state.grids ?? []).filter((grid) => grid.role === 'grid_head'),
  },
  actions: {
    async load(): Promise<MyGrid[]> {
      this.grids ??= (await myGrids()).items;
      return this.grids;
    },
    choose(gridId: string): void {
      this.chosenId = gridId;
    },
  },
});
