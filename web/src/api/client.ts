// One way to call the platform: JSON in and out, the bearer token when signed in, and
// every failure turned into an ApiError whose message a person can read.

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly fields: Record<string, unknown> = {},
  ) {
    super(message);
    this.name = 'ApiError';
  }
}

type TokenSource = () => Promise<string | null>;
let tokenSource: TokenSource = async () => null;

/** The auth module registers how to get the current access token. */
export function useTokenSource(source: TokenSource): void {
  tokenSource = source;
}

const WORDS_BY_STATUS: Record<number, string> = {
  400: '填写的内容有误，请检查后再试',
  401: '登录已失效，请重新登录',
  403: '没有权限查看或办理',
  404: '没有找到',
  409: '情况已有变化，请刷新后再试',
  429: '提交太频繁，请稍后再试',
  503: '服务暂时不可用，请稍后再试',
};

export function wordsFor(status: number): string {
  return WORDS_BY_STATUS[status] ?? (status >= 500 ? '服务出错了，请稍后再试' : `请求失败（${status}）`);
}

export interface CallOptions {
  method?: string;
  body?: unknown;
  headers?: Record<string, string>;
  /** residents' pages never send a token, even on a device where staff signed in */
  anonymous?: boolean;
}

export async function call<T>(path: string, options: CallOptions = {}): Promise<T> {
  const headers: Record<string, string> = { Accept: 'application/json', ...options.headers };
  if (options.body !== undefined) headers['Content-Type'] = 'application/json';
  const token = options.anonymous ? null : await tokenSource();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(path, {
      method: options.method ?? 'GET',
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
    });
  } catch {
    throw new ApiError(0, 'network', '网络连接失败，请检查网络后重试');
  }
  const text = await response.text();
  let payload: unknown = null;
  try {
    payload = text ? JSON.parse(text) : null;
  } catch {
    payload = null;
  }
  if (!response.ok) {
    const error = (payload ?? {}) as { error?: string; fields?: Record<string, unknown> };
    throw new ApiError(response.status, error.error ?? 'http_error', wordsFor(response.status), error.fields ?? {});
  }
  return payload as T;
}
