// A grid head's view of their workers: how many open cases each holds and how many are late.
import type { CaseSummary, Person } from '@/api/routing';

export interface WorkerLoad {
  id: string;
  name: string;
  onDuty: boolean;
  open: number;
  overdue: number;
  urgent: number;
}

/** Every worker of the head's grids with their open, overdue and urgent cases; the busiest and latest first.
 * Cases held by someone not on the grids' rolls (a lead, a department) are left out. */
export function workerLoads(
  workers: (Person & { on_duty?: boolean })[],
  open: Pick<CaseSummary, 'case_id' | 'assignee' | 'urgent'>[],
  overdue: Pick<CaseSummary, 'case_id'>[],
): WorkerLoad[] {
  const late = new Set(overdue.map((item) => item.case_id));
  const loads = new Map<string, WorkerLoad>();
  for (const worker of workers) {
    if (!loads.has(worker.id)) {
      loads.set(worker.id, { id: worker.id, name: worker.name ?? worker.id, onDuty: worker.on_duty !== false, open: 0, overdue: 0, urgent: 0 });
    }
  }
  for (const item of open) {
    const load = item.assignee ? loads.get(item.assignee.id) : undefined;
    if (!load) continue;
    load.open += 1;
    if (late.has(item.case_id)) load.overdue += 1;
    if (item.urgent) load.urgent += 1;
  }
  return [...loads.values()].sort((a, b) => b.overdue - a.overdue || b.open - a.open || Number(b.onDuty) - Number(a.onDuty));
}
