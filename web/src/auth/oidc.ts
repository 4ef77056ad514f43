// Staff sign in at the county's OpenID Connect provider (authorization code + PKCE;
// the local provider under `make run`, Keycloak in production). The app keeps the
// tokens in sessionStorage: closing the browser tab signs the person out of the app.
import { User, UserManager, WebStorageStateStore } from 'oidc-client-ts';

import { appConfig } from '@/config';

export const CALLBACK_PATH = '/staff/callback';

let manager: Promise<UserManager> | null = null;

export function userManager(): Promise<UserManager> {
  manager ??= appConfig().then(({ oidc }) => {
    const origin = window.location.origin;
    return new UserManager({
      authority: oidc.authority,
      client_id: oidc.client_id,
      scope: oidc.scope,
      redirect_uri: `${origin}${CALLBACK_PATH}`,
      post_logout_redirect_uri: `${origin}/`,
      response_type: 'code',
      userStore: new WebStorageStateStore({ store: window.sessionStorage }),
      // no hidden iframe: the access token lasts an hour, a shift signs in again
      automaticSilentRenew: false,
      loadUserInfo: false,
    });
  });
  return manager;
}

export interface StaffProfile {
  id: string;
  name: string;
  roles: string[];
}

export function profileOf(user: User): StaffProfile {
  const claims = user.profile as Record<string, unknown>;
  return {
    id: String(claims.sub),
    name: typeof claims.name === 'string' ? claims.name : String(claims.sub),
    roles: Array.isArray(claims.roles) ? claims.roles.map(String) : [],
  };
}
