import { createPinia, setActivePinia } from 'pinia';
import { User } from 'oidc-client-ts';
import { beforeEach, describe, expect, it, vi } from 'vitest';

import { call } from '@/api/client';
import { useSession } from '@/stores/session';

function signedInUser(expiresInSeconds: number) {
  return new User({
    access_token: 'access-1',
    token_type: 'Bearer',
    profile: { sub: 'w-zc-nanmen-02-1', name: '余雪华', roles: ['grid_worker'], iss: 'http://idp', aud: 'wangge-web', exp: 0, iat: 0 },
    expires_at: Math.floor(Date.now() / 1000) + expiresInSeconds,
  });
}

describe('the session store', () => {
  beforeEach(() => setActivePinia(createPinia()));

  it('knows the signed-in worker and hands their token to the API client', async () => {
    const session = useSession();
    session.adopt(signedInUser(3600));
    expect(session.signedIn).toBe(true);
    expect(session.profile).toEqual({ id: 'w-zc-nanmen-02-1', name: '余雪华', roles: ['grid_worker'] });
    const fetchMock = vi.fn(async () => new Response('{}', { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    await call('/api/v1/cases');
    expect((fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1].headers).toMatchObject({ Authorization: 'Bearer access-1' });
    vi.unstubAllGlobals();
  });

  it('treats an expired login as signed out and sends no stale token', async () => {
    const session = useSession();
    session.adopt(signedInUser(-10));
    expect(session.signedIn).toBe(false);
    const fetchMock = vi.fn(async () => new Response('{}', { status: 200 }));
    vi.stubGlobal('fetch', fetchMock);
    await call('/api/v1/cases');
    expect((fetchMock.mock.calls[0] as unknown as [string, RequestInit])[1].headers).not.toHaveProperty('Authorization');
    vi.unstubAllGlobals();
  });
});
