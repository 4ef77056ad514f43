import { afterEach, describe, expect, it, vi } from 'vitest';

import { ApiError, call, useTokenSource } from '@/api/client';
import { fileRequest } from '@/api/intake';

function answering(status: number, body: unknown) {
  const fetchMock = vi.fn(async (_path: string, _init: RequestInit) => new Response(JSON.stringify(body), { status }));
  vi.stubGlobal('fetch', fetchMock);
  return fetchMock;
}

function sent(fetchMock: ReturnType<typeof answering>) {
  const [path, init] = fetchMock.mock.calls[0]!;
  return { path, headers: init.headers as Record<string, string>, body: init.body as string };
}

afterEach(() => {
  vi.unstubAllGlobals();
  useTokenSource(async () => null);
});

describe('the API client', () => {
  it('sends the signed-in person’s token', async () => {
    useTokenSource(async () => 'token-1');
    const fetchMock = answering(200, { items: [] });
    await call('/api/v1/cases');
    expect(sent(fetchMock).headers.Authorization).toBe('Bearer token-1');
  });

  it('never sends a token from residents’ pages', async () => {
    useTokenSource(async () => 'token-1');
    const fetchMock = answering(201, { tracking_no: 'YT-1' });
    await fileRequest({ text: '路灯坏了', grid_id: 'g-1', phone: '13800000001' }, 'key-1');
    const { path, headers, body } = sent(fetchMock);
    expect(path).toBe('/api/v1/requests');
    expect(headers.Authorization).toBeUndefined();
    expect(headers['Idempotency-Key']).toBe('key-1');
    expect(JSON.parse(body)).toEqual({ channel: 'web', text: '路灯坏了', grid_id: 'g-1', reporter: { phone: '13800000001' } });
  });

  it('turns an error answer into words and keeps the code and fields', async () => {
    answering(403, { error: 'follow_up_token_refused', message: 'used', fields: { token: ['used'] } });
    const error = await call('/api/v1/follow-up/x', { method: 'POST', body: {} }).catch((e) => e);
    expect(error).toBeInstanceOf(ApiError);
    expect(error).toMatchObject({ status: 403, code: 'follow_up_token_refused', message: '没有权限查看或办理', fields: { token: ['used'] } });
  });

  it('says so when the network is down', async () => {
    vi.stubGlobal('fetch', vi.fn(async () => Promise.reject(new TypeError('Failed to fetch'))));
    await expect(call('/api/v1/cases')).rejects.toMatchObject({ status: 0, code: 'network' });
  });
});
