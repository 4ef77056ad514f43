import { defineStore } from 'pinia';

import { allGrids, departments, taxonomy, type Department, type GridSummary, type Taxonomy } from '@/api/routing';

/** The grids, the taxonomy and the departments, read once per visit to the command centre: they change with a new registry edition only. */
export const useRegistry = defineStore('registry', {
  state: () => ({ grids: null as GridSummary[] | null, taxonomy: null as Taxonomy | null, departments: null as Department[] | null }),
  actions: {
    async loadGrids(): Promise<GridSummary[]> {
      this.grids ??= await allGrids();
      return this.grids;
    },
    async loadTaxonomy(): Promise<Taxonomy> {
      this.taxonomy ??= await taxonomy();
      return this.taxonomy;
    },
    async loadDepartments(): Promise<Department[]> {
      this.departments ??= (await departments()).items;
      return this.departments;
    },
  },
});
