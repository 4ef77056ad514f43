import { describe, expect, it } from 'vitest';

import { workerLoads } from '@/domain/team';

describe("a grid head's workers", () => {
  const workers = [
    { id: 'w1', name: '王国' },
    { id: 'w2', name: '刘雪琳' },
    { id: 'w3', name: '吴文', on_duty: false },
  ];
  const open = [
    { case_id: 'a', assignee: { id: 'w2' }, urgent: true },
    { case_id: 'b', assignee: { id: 'w2' }, urgent: false },
    { case_id: 'c', assignee: { id: 'w1' }, urgent: false },
    { case_id: 'd', assignee: { id: 'lead-x' }, urgent: false },
    { case_id: 'e', assignee: null, urgent: false },
  ];

  it('counts open, overdue and urgent cases per worker, latest and busiest first, idle ones too', () => {
    expect(workerLoads(workers, open, [{ case_id: 'c' }])).toEqual([
      { id: 'w1', name: '王国', onDuty: true, open: 1, overdue: 1, urgent: 0 },
      { id: 'w2', name: '刘雪琳', onDuty: true, open: 2, overdue: 0, urgent: 1 },
      { id: 'w3', name: '吴文', onDuty: false, open: 0, overdue: 0, urgent: 0 },
    ]);
  });

  it('lists a worker of two grids once', () => {
    expect(workerLoads([...workers, { id: 'w1', name: '王国' }], [], [])).toHaveLength(3);
  });
});
