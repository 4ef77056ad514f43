import { mount } from '@vue/test-utils';
import { describe, expect, it } from 'vitest';

import LoadState from '@/components/LoadState.vue';

describe('LoadState', () => {
  it('shows loading, then the error with a retry, then empty, then the content', async () => {
    const wrapper = mount(LoadState, { props: { loading: true, error: null }, slots: { default: '<p class="content">内容</p>' } });
    expect(wrapper.find('[role="status"]').text()).toContain('加载中');

    await wrapper.setProps({ loading: false, error: '网络连接失败' });
    expect(wrapper.find('[role="alert"]').text()).toContain('网络连接失败');
    await wrapper.find('button').trigger('click');
    expect(wrapper.emitted('retry')).toHaveLength(1);

    await wrapper.setProps({ error: null, empty: true, emptyText: '没有待办案件' });
    expect(wrapper.text()).toContain('没有待办案件');

    await wrapper.setProps({ empty: false });
    expect(wrapper.find('.content').exists()).toBe(true);
  });
});
