import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router';

import { useSession } from '@/stores/session';

// Paths are what SMS messages, QR codes and bookmarks carry: keep them stable.
const routes: RouteRecordRaw[] = [
  { path: '/', name: 'home', component: () => import('@/pages/HomePage.vue'), meta: { title: '网格' } },
  { path: '/report/:gridId?', name: 'report', component: () => import('@/pages/resident/ReportPage.vue'), props: true, meta: { title: '反映问题' } },
  { path: '/track/:trackingNo?', name: 'track', component: () => import('@/pages/resident/TrackPage.vue'), props: true, meta: { title: '查询进度' } },
  { path: '/follow-up/:token', name: 'follow-up', component: () => import('@/pages/resident/FollowUpPage.vue'), props: true, meta: { title: '办理回访' } },
  { path: '/staff', redirect: '/staff/cases' },
  { path: '/staff/callback', name: 'callback', component: () => import('@/pages/staff/SignInCallback.vue'), meta: { title: '登录' } },
  { path: '/staff/cases', name: 'my-cases', component: () => import('@/pages/staff/MyCasesPage.vue'), meta: { staff: true, title: '我的案件' } },
  { path: '/staff/cases/:caseId', name: 'case', component: () => import('@/pages/staff/CasePage.vue'), props: true, meta: { staff: true, title: '案件' } },
  {
    path: '/staff/centre',
    component: () => import('@/pages/centre/CentreLayout.vue'),
    meta: { staff: true, title: '指挥中心' },
    children: [
      { path: '', redirect: '/staff/centre/queue' },
      { path: 'queue', name: 'centre-queue', component: () => import('@/pages/centre/QueuePage.vue'), meta: { title: '派遣队列' } },
      { path: 'attention', name: 'centre-attention', component: () => import('@/pages/centre/AttentionPage.vue'), meta: { title: '超时与上报' } },
      { path: 'indicators', name: 'centre-indicators', component: () => import('@/pages/centre/IndicatorsPage.vue'), meta: { title: '考核指标' } },
      { path: 'map', name: 'centre-map', component: () => import('@/pages/centre/MapPage.vue'), meta: { title: '全县地图' } },
      { path: 'study', name: 'centre-study', component: () => import('@/pages/centre/StudyPage.vue'), meta: { title: '学习参学率' } },
    ],
  },
  { path: '/staff/study', name: 'study', component: () => import('@/pages/staff/StudyPage.vue'), meta: { staff: true, title: '网格学习' } },
  { path: '/staff/team', name: 'team', component: () => import('@/pages/staff/TeamPage.vue'), meta: { staff: true, title: '网格员工作量' } },
  { path: '/staff/grids/:gridId/qr', name: 'grid-qr', component: () => import('@/pages/staff/GridQrPage.vue'), props: true, meta: { staff: true, title: '网格二维码' } },
  { path: '/:unknown(.*)*', name: 'not-found', component: () => import('@/pages/NotFoundPage.vue'), meta: { title: '页面不存在' } },
];

export const router = createRouter({ history: createWebHistory(), routes });

router.beforeEach(async (to) => {
  if (!to.meta.staff) return true;
  const session = useSession();
  await session.restore();
  if (session.signedIn) return true;
  await session.signIn(to.fullPath);
  return false;
});

router.afterEach((to) => {
  document.title = `${String(to.meta.title ?? '网格')} · 网格`;
});
