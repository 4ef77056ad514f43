// Settings that differ per deployment (the identity provider above all) are read at
// run time from /app-config.json, so one build serves every county and every test.
export interface AppConfig {
  oidc: { authority: string; client_id: string; scope: string };
  /** The command centre's map draws no base map unless a county names its licensed tile service here. */
  map?: { tiles?: { url: string; attribution?: string; max_zoom?: number } };
}

let loaded: Promise<AppConfig> | null = null;

export function appConfig(): Promise<AppConfig> {
  loaded ??= fetch('/app-config.json', { headers: { Accept: 'application/json' } }).then(async (response) => {
    if (!response.ok) throw new Error(`/app-config.json: HTTP ${response.status}`);
    return (await response.json()) as AppConfig;
  });
  return loaded;
}
