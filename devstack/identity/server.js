// The local OpenID Connect provider (panva's oidc-provider) for `make run` and the
// tests; production uses Keycloak. Everything it knows comes from the Python side
// (devstack/identity.py):
//
//   IDENTITY_ISSUER          e.g. http://127.0.0.1:8090 (it listens on that port, on 127.0.0.1)
//   IDENTITY_USERS_FILE      {"users": [{"id", "name", "roles": [...]}]}
//   IDENTITY_CLIENTS_FILE    {"clients": [oidc-provider client metadata + "access_token_claims"]}
//   IDENTITY_KEY_FILE        the signing key (a private JWKS); made here on first start
//   IDENTITY_DEMO_PASSWORD   every demo user's password
//   IDENTITY_AUDIENCE        the services' audience (default wangge-api)
//   IDENTITY_ACCESS_TOKEN_TTL  seconds (default 3600)
//
// Access tokens for the services are JWTs (resource indicators, accessTokenFormat
// 'jwt') carrying the user's `roles` and `name`, or a client's `roles` and `source`.
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';

import Provider, { errors } from 'oidc-provider';

const RESOURCE = 'urn:wangge:api';
const RESOURCE_SCOPE = 'wangge';
const SIGNING_ALG = 'RS256'; // Keycloak's default too, so services see the same header in both

function setting(name, fallback) {
  const value = process.env[name] ?? fallback;
  if (value === undefined || value === '') {
    console.error(`identity: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const issuer = setting('IDENTITY_ISSUER');
const audience = setting('IDENTITY_AUDIENCE', 'wangge-api');
const accessTokenTTL = Number(setting('IDENTITY_ACCESS_TOKEN_TTL', '3600'));
const demoPassword = setting('IDENTITY_DEMO_PASSWORD');
const usersFile = setting('IDENTITY_USERS_FILE');
const clientsFile = setting('IDENTITY_CLIENTS_FILE');
const keyFile = setting('IDENTITY_KEY_FILE');
const port = Number(new URL(issuer).port || 80);

function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

function thumbprint(jwk) {
  // RFC 7638: the required members in lexicographic order
  const canonical = JSON.stringify({ e: jwk.e, kty: jwk.kty, n: jwk.n });
  return crypto.createHash('sha256').update(canonical).digest('base64url');
}

// Made once and kept (mode 0600, never committed), so tokens and the services'
// cached JWKS stay valid across restarts.
function signingKeys(file) {
  if (!fs.existsSync(file)) {
    const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
    const jwk = privateKey.export({ format: 'jwk' });
    const jwks = { keys: [{ ...jwk, kid: thumbprint(jwk), use: 'sig', alg: SIGNING_ALG }] };
    fs.mkdirSync(path.dirname(file), { recursive: true });
    try {
      fs.writeFileSync(file, JSON.stringify(jwks), { mode: 0o600, flag: 'wx' });
    } catch (error) {
      if (error.code !== 'EEXIST') throw error; // another process made it first: use theirs
    }
  }
  return readJson(file);
}

const users = new Map(readJson(usersFile).users.map((user) => [user.id, user]));

// Our own per-client claims stay out of the metadata oidc-provider validates.
const clientClaims = new Map();
const clients = readJson(clientsFile).clients.map(({ access_token_claims: claims, ...metadata }) => {
  clientClaims.set(metadata.client_id, claims || {});
  return metadata;
});

function samePassword(given, expected) {
  const digest = (value) => crypto.createHash('sha256').update(String(value)).digest();
  return crypto.timingSafeEqual(digest(given), digest(expected));
}

// No adapter: sessions, grants and codes live in memory (oidc-provider warns so in the
// log) and a restart signs everyone out, which is all a local provider needs.
const configuration = {
  clients,
  jwks: signingKeys(keyFile),
  cookies: { keys: [crypto.randomBytes(32).toString('base64url')] },
  claims: { openid: ['sub'], profile: ['name', 'roles'] },
  // the web app shows who is signed in from the ID token alone
  conformIdTokenClaims: false,
  scopes: ['openid', 'offline_access', 'profile'],
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    rpInitiatedLogout: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: async () => RESOURCE,
      // a code exchanged without `resource` still yields the API token, not a userinfo one
      useGrantedResource: async () => true,
      getResourceServerInfo: async (ctx, resourceIndicator) => {
        if (resourceIndicator !== RESOURCE) throw new errors.InvalidTarget();
        return {
          scope: RESOURCE_SCOPE,
          audience,
          accessTokenFormat: 'jwt',
          accessTokenTTL,
          jwt: { sign: { alg: SIGNING_ALG } },
        };
      },
    },
  },
  pkce: { required: (ctx, client) => client.clientAuthMethod === 'none' },
  // every client is the platform's own: none asks the user for consent
  loadExistingGrant: async (ctx) => {
    const { client, session } = ctx.oidc;
    const grantId = ctx.oidc.result?.consent?.grantId || session.grantIdFor(client.clientId);
    if (grantId) {
      const grant = await ctx.oidc.provider.Grant.find(grantId);
      if (grant) return grant;
    }
    const grant = new ctx.oidc.provider.Grant({ clientId: client.clientId, accountId: session.accountId });
    grant.addOIDCScope('openid profile');
    grant.addOIDCClaims(['sub', 'name', 'roles']);
    grant.addResourceScope(RESOURCE, RESOURCE_SCOPE);
    await grant.save();
    return grant;
  },
  issueRefreshToken: async (ctx, client, code) => client.grantTypeAllowed('refresh_token') && code.kind === 'AuthorizationCode',
  findAccount: async (ctx, id) => {
    const user = users.get(id);
    if (!user) return undefined;
    return {
      accountId: id,
      claims: async () => ({ sub: id, name: user.name, roles: user.roles }),
    };
  },
  extraTokenClaims: async (ctx, token) => {
    if (token.kind === 'ClientCredentials') {
      return clientClaims.get(token.clientId);
    }
    const user = token.accountId && users.get(token.accountId);
    if (!user) return undefined;
    return user.name ? { roles: user.roles, name: user.name } : { roles: user.roles };
  },
  clientBasedCORS: (ctx, origin, client) => client.redirectUris.some((uri) => URL.parse(uri)?.origin === origin),
  ttl: {
    AccessToken: accessTokenTTL,
    ClientCredentials: accessTokenTTL,
    AuthorizationCode: 60,
    IdToken: 3600,
    Interaction: 3600,
    Grant: 14 * 24 * 3600,
    Session: 14 * 24 * 3600,
    RefreshToken: 14 * 24 * 3600,
  },
  renderError: async (ctx, out) => {
    ctx.type = 'html';
    ctx.body = page('出错了 Error', `<p role="alert">${escape(out.error)}: ${escape(out.error_description || '')}</p>`);
  },
};

const provider = new Provider(issuer, configuration);

// Keycloak-style redirect URIs ending in `*` (e.g. http://localhost:5173/*) match
// any URI under them, so the web app's dev servers need no exact list.
for (const method of ['redirectUriAllowed', 'postLogoutRedirectUriAllowed']) {
  const exact = provider.Client.prototype[method];
  const registered = method === 'redirectUriAllowed' ? 'redirectUris' : 'postLogoutRedirectUris';
  provider.Client.prototype[method] = function allowed(value) {
    return exact.call(this, value) || (this[registered] || [])
      .some((uri) => uri.endsWith('*') && value.startsWith(uri.slice(0, -1)));
  };
}

function escape(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title, body) {
  return `<!doctype html><html lang="zh-CN"><head><meta charset="utf-8"><title>${escape(title)}</title>`
    + '<meta name="viewport" content="width=device-width, initial-scale=1"></head>'
    + `<body style="font-family: sans-serif; max-width: 22em; margin: 4em auto"><h1>${escape(title)}</h1>${body}</body></html>`;
}

function loginPage(uid, login = '', error = '') {
  return page('网格登录 Sign in', `${error ? `<p role="alert" style="color: #b00">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login" autocomplete="off">
  <p><label>用户 User id<br><input name="login" value="${escape(login)}" required autofocus></label></p>
  <p><label>密码 Password<br><input name="password" type="password" required></label></p>
  <p><button type="submit">登录 Sign in</button></p>
</form>`);
}

async function formBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16 * 1024) throw new errors.InvalidRequest('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

// The interaction pages: a login form, and first-party consent given without asking.
provider.use(async (ctx, next) => {
  const match = /^\/interaction\/([\w-]+)(\/login)?$/.exec(ctx.path);
  if (!match) return next();
  const [, uid, login] = match;
  const details = await provider.interactionDetails(ctx.req, ctx.res);
  if (details.uid !== uid) throw new errors.InvalidRequest('interaction mismatch');
  ctx.set('Cache-Control', 'no-store');

  if (details.prompt.name === 'consent') {
    const grant = details.grantId
      ? await provider.Grant.find(details.grantId)
      : new provider.Grant({ accountId: details.session.accountId, clientId: details.params.client_id });
    const { missingOIDCScope, missingOIDCClaims, missingResourceScopes } = details.prompt.details;
    if (missingOIDCScope) grant.addOIDCScope(missingOIDCScope.join(' '));
    if (missingOIDCClaims) grant.addOIDCClaims(missingOIDCClaims);
    for (const [resource, scopes] of Object.entries(missingResourceScopes || {})) {
      grant.addResourceScope(resource, scopes.join(' '));
    }
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId: await grant.save() } }, { mergeWithLastSubmission: true });
    ctx.status = 303;
    return ctx.redirect(returnTo);
  }

  if (ctx.method === 'GET' && !login) {
    ctx.type = 'html';
    ctx.body = loginPage(uid, details.params.login_hint || '');
    return undefined;
  }
  if (ctx.method !== 'POST' || !login) {
    ctx.status = 405;
    return undefined;
  }
  const form = await formBody(ctx.req);
  const accountId = form.get('login') || '';
  if (!users.has(accountId) || !samePassword(form.get('password') || '', demoPassword)) {
    ctx.status = 401;
    ctx.type = 'html';
    ctx.body = loginPage(uid, accountId, '用户或密码不对 Unknown user or wrong password');
    return undefined;
  }
  const returnTo = await provider.interactionResult(ctx.req, ctx.res, { login: { accountId } }, { mergeWithLastSubmission: false });
  ctx.status = 303;
  return ctx.redirect(returnTo);
});

provider.listen(port, '127.0.0.1', () => {
  console.log(`identity: ${issuer} (${users.size} users, ${clients.length} clients)`);
});

// Everything is in memory: nothing to flush, and open keep-alive connections need not delay a stop.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
