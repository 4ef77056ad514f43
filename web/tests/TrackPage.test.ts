import { flushPromises, mount } from '@vue/test-utils';
import { beforeEach, describe, expect, it, vi } from 'vitest';
import { createMemoryHistory, createRouter } from 'vue-router';

import { ApiError } from '@/api/client';
import type { RequestView } from '@/api/intake';
import TrackPage from '@/pages/resident/TrackPage.vue';

// intake's answer to the page, and the numbers the page asked for
const intake = vi.hoisted(() => ({ answer: async (): Promise<unknown> => null, asked: [] as string[] }));
vi.mock('@/api/intake', () => ({
  trackRequest: (trackingNo: string) => {
    intake.asked.push(trackingNo);
    return intake.answer();
  },
}));

const AT = '2026-11-29T02:00:00+00:00';

function view(overrides: Partial<RequestView>): RequestView {
  return {
    tracking_no: 'YT-20261129-7KQ4-M9XD', status: 'assigned', status_words: '已分派到网格办理', received_at: AT,
    category: 'street_lighting', category_name: '路灯', grid_name: '南门社区第二网格', text: '路灯不亮', result: null,
    history: [{ status: 'received', at: AT, words: '已受理' }, { status: 'assigned', at: AT, words: '已分派到网格办理' }],
    ...overrides,
  };
}

async function track(trackingNo: string) {
  const router = createRouter({ history: createMemoryHistory(), routes: [{ path: '/:any(.*)*', component: { template: '<div />' } }] });
  const wrapper = mount(TrackPage, { props: { trackingNo }, global: { plugins: [router] } });
  await flushPromises();
  return wrapper;
}

describe('the tracking page', () => {
  beforeEach(() => {
    intake.asked = [];
  });

  it('shows where the request stands, its history newest first, and no result before one is given', async () => {
    intake.answer = async () => view({});
    const wrapper = await track('YT-20261129-7KQ4-M9XD');
    expect(intake.asked).toEqual(['YT-20261129-7KQ4-M9XD']);
    expect(wrapper.get('[data-testid="status-words"]').text()).toBe('已分派到网格办理');
    expect(wrapper.findAll('[data-testid="timeline"] strong').map((entry) => entry.text())).toEqual(['已分派到网格办理', '已受理']);
    expect(wrapper.find('[data-testid="result"]').exists()).toBe(false);
  });

  it('shows the result once resolved', async () => {
    intake.answer = async () => view({ status: 'resolved', status_words: '已办结，等待回访', result: '已更换灯泡，恢复照明' });
    const wrapper = await track('YT-20261129-7KQ4-M9XD');
    expect(wrapper.get('[data-testid="result"]').text()).toContain('已更换灯泡，恢复照明');
    expect(wrapper.text()).toContain('您会收到回访短信');
  });

  it('says so in words when the number is unknown', async () => {
    intake.answer = async () => {
      throw new ApiError(404, 'not_found', 'No such request.');
    };
    const wrapper = await track('YT-20261129-0000-0000');
    expect(wrapper.get('[role="alert"]').text()).toContain('没有找到这个编号');
  });
});
