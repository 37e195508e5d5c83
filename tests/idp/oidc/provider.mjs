// A real OpenID Provider for stepup's OIDC tests: the certified `oidc-provider` package,
// configured for the tests and served on a loopback port.
//
//   node provider.mjs <port>            (or STEPUP_OIDC_PORT=<port>)
//
// Environment:
//   STEPUP_OIDC_REDIRECT_URI   the relying party's callback (default http://127.0.0.1:9/oidc/callback)
//   STEPUP_OIDC_CLIENT_JWKS    path to a JSON JWKS with the public key of the private_key_jwt client
//   STEPUP_OIDC_WATCH_STDIN=1  exit when stdin closes (the test process died without stopping us)
//   STEPUP_OIDC_RESOURCES=1    resource indicators (RFC 8707) for the step-up API tests: JWT access
//                              tokens (RFC 9068) carrying acr, amr and auth_time for
//                              https://api.stepup.test and https://other.stepup.test, opaque ones
//                              for https://opaque.stepup.test, introspection (RFC 7662) for the
//                              resource server client stepup-api / stepup-api-secret
//   STEPUP_OIDC_SIGNING_JWK    path to a private JWK (RS256, with its kid) to sign with instead of a
//                              generated key, so tests can make tokens the provider would not
//
// Clients (all confidential, PKCE S256 required):
//   stepup-rp             client_secret_basic, require_auth_time
//   stepup-rp-plain       client_secret_basic, auth_time only when the request asks for it
//   stepup-rp-jwt         private_key_jwt, require_auth_time
//
// Accounts: alice / alice-password and mallory / mallory-password. Mallory has set her e-mail
// to alice's address, so an RP that matched on e-mail would confuse them.
//
// The login form lives at /interaction/<uid>: POST /interaction/<uid>/login with `login`,
// `password` and optionally `otp` (123456 raises the session's acr to urn:stepup:mfa);
// GET /interaction/<uid>/abort answers the RP with access_denied.

import { generateKeyPairSync } from 'node:crypto';
import { readFileSync } from 'node:fs';
import http from 'node:http';
import Provider, { errors, interactionPolicy } from 'oidc-provider';

const port = Number(process.argv[2] ?? process.env.STEPUP_OIDC_PORT);
if (!Number.isInteger(port) || port <= 0) {
  console.error('usage: node provider.mjs <port>');
  process.exit(2);
}
const issuer = `http://127.0.0.1:${port}`;
const redirectUri = process.env.STEPUP_OIDC_REDIRECT_URI ?? 'http://127.0.0.1:9/oidc/callback';
const clientJwks = process.env.STEPUP_OIDC_CLIENT_JWKS
  ? JSON.parse(readFileSync(process.env.STEPUP_OIDC_CLIENT_JWKS, 'utf8'))
  : undefined;

const ACR_PASSWORD = 'urn:stepup:pwd';
const ACR_MFA = 'urn:stepup:mfa';

const accounts = {
  alice: { password: 'alice-password', email: 'alice@example.com' },
  mallory: { password: 'mallory-password', email: 'alice@example.com' },
};

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = process.env.STEPUP_OIDC_SIGNING_JWK
  ? { use: 'sig', alg: 'RS256', ...JSON.parse(readFileSync(process.env.STEPUP_OIDC_SIGNING_JWK, 'utf8')) }
  : { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', use: 'sig', alg: 'RS256' };

const withResources = process.env.STEPUP_OIDC_RESOURCES === '1';
const RESOURCES = {
  'https://api.stepup.test': 'jwt',
  'https://other.stepup.test': 'jwt',
  'https://opaque.stepup.test': 'opaque',
};
const API_SCOPE = 'api:write';

// With resources on, an authorization request whose acr_values the session's acr does not
// meet asks the user to sign in again (the authorization server's side of RFC 9470 section 4).
const policy = interactionPolicy.base();
if (withResources) {
  policy.get('login').checks.add(new interactionPolicy.Check(
    'acr_values_unmet',
    'the requested authentication context is not met',
    (ctx) => {
      const requested = ctx.oidc.params.acr_values?.split(' ') ?? [];
      if (requested.length && !requested.includes(ctx.oidc.session.acr)) {
        return interactionPolicy.Check.REQUEST_PROMPT;
      }
      return interactionPolicy.Check.NO_NEED_TO_PROMPT;
    },
  ));
}

const common = {
  redirect_uris: [redirectUri],
  grant_types: ['authorization_code'],
  response_types: ['code'],
};
const clients = [
  {
    ...common,
    client_id: 'stepup-rp',
    client_secret: 'stepup-rp-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    require_auth_time: true,
  },
  {
    ...common,
    client_id: 'stepup-rp-plain',
    client_secret: 'stepup-rp-plain-secret',
    token_endpoint_auth_method: 'client_secret_basic',
  },
];
if (withResources) {
  clients.push({
    client_id: 'stepup-api',
    client_secret: 'stepup-api-secret',
    token_endpoint_auth_method: 'client_secret_basic',
    redirect_uris: [],
    grant_types: [],
    response_types: [],
  });
}
if (clientJwks) {
  clients.push({
    ...common,
    client_id: 'stepup-rp-jwt',
    token_endpoint_auth_method: 'private_key_jwt',
    token_endpoint_auth_signing_alg: 'RS256',
    jwks: clientJwks,
    require_auth_time: true,
  });
}

const provider = new Provider(issuer, {
  clients,
  jwks: { keys: [signingKey] },
  cookies: { keys: ['stepup-test-cookie-key-0123456789'] },
  pkce: { required: () => true },
  acrValues: [ACR_PASSWORD, ACR_MFA],
  claims: {
    openid: ['sub'],
    email: ['email', 'email_verified'],
    acr: null,
    amr: null,
    auth_time: null,
    sid: null,
  },
  features: {
    devInteractions: { enabled: false },
    ...(withResources ? {
      introspection: { enabled: true },
      resourceIndicators: {
        enabled: true,
        defaultResource: () => undefined,
        useGrantedResource: () => true,
        getResourceServerInfo(ctx, resource) {
          const format = RESOURCES[resource];
          if (!format) throw new errors.InvalidTarget();
          return {
            scope: API_SCOPE,
            audience: resource,
            accessTokenTTL: 600,
            accessTokenFormat: format,
            ...(format === 'jwt' ? { jwt: { sign: { alg: 'RS256' } } } : {}),
          };
        },
      },
    } : {}),
  },
  // RFC 9470 section 6.1: the access token says how and when the user authenticated.
  async extraTokenClaims(ctx) {
    const code = ctx.oidc.entities.AuthorizationCode;
    if (!withResources || !code) return undefined;
    return { acr: code.acr, amr: code.amr, auth_time: code.authTime };
  },
  interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
  async findAccount(ctx, sub) {
    const account = accounts[sub];
    if (!account) return undefined;
    return {
      accountId: sub,
      async claims() {
        return { sub, email: account.email, email_verified: true };
      },
    };
  },
  // First-party test clients: grant the requested OIDC scopes without a consent screen.
  async loadExistingGrant(ctx) {
    const grantId = ctx.oidc.result?.consent?.grantId
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({
      clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId,
    });
    grant.addOIDCScope('openid email');
    if (withResources) {
      for (const resource of Object.keys(RESOURCES)) grant.addResourceScope(resource, API_SCOPE);
    }
    await grant.save();
    return grant;
  },
});

function escapeHtml(value) {
  return String(value).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, message) {
  return `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Sign in</title></head>
<body>
<h1>Sign in</h1>
${message ? `<p class="error">${escapeHtml(message)}</p>` : ''}
<form method="post" action="/interaction/${escapeHtml(uid)}/login">
  <input name="login" autocomplete="username">
  <input name="password" type="password" autocomplete="current-password">
  <input name="otp" autocomplete="one-time-code">
  <button type="submit">Sign in</button>
</form>
<a href="/interaction/${escapeHtml(uid)}/abort">Cancel</a>
</body></html>`;
}

async function readForm(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > 16384) throw new Error('form too large');
    chunks.push(chunk);
  }
  return new URLSearchParams(Buffer.concat(chunks).toString('utf8'));
}

function send(res, status, body) {
  res.statusCode = status;
  res.setHeader('Content-Type', 'text/html; charset=utf-8');
  res.setHeader('Cache-Control', 'no-store');
  res.end(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  if (details.uid !== uid) return send(res, 400, 'interaction mismatch');
  if (action === 'abort') {
    return provider.interactionFinished(req, res, {
      error: 'access_denied',
      error_description: 'End-User aborted interaction',
    }, { mergeWithLastSubmission: false });
  }
  if (action === 'login' && req.method === 'POST') {
    const form = await readForm(req);
    const login = form.get('login') ?? '';
    const account = Object.hasOwn(accounts, login) ? accounts[login] : undefined;
    if (!account || form.get('password') !== account.password) {
      return send(res, 200, loginPage(uid, 'Invalid login or password.'));
    }
    const mfa = form.get('otp') === '123456';
    // Test-only, with resources on: `age` backdates the login by that many seconds.
    const age = withResources ? Math.max(0, Number.parseInt(form.get('age') ?? '0', 10) || 0) : 0;
    return provider.interactionFinished(req, res, {
      login: {
        ...(withResources ? { ts: Math.floor(Date.now() / 1000) - age } : {}),
        accountId: login,
        acr: mfa ? ACR_MFA : ACR_PASSWORD,
        amr: mfa ? ['pwd', 'otp'] : ['pwd'],
      },
    }, { mergeWithLastSubmission: false });
  }
  if (action === undefined && req.method === 'GET' && details.prompt.name === 'login') {
    return send(res, 200, loginPage(uid));
  }
  return send(res, 400, `unexpected interaction: ${escapeHtml(details.prompt.name)}`);
}

const handleOidc = provider.callback();
const server = http.createServer((req, res) => {
  const { pathname } = new URL(req.url, issuer);
  const match = pathname.match(/^\/interaction\/([A-Za-z0-9_-]+)(?:\/(login|abort))?$/);
  if (!match) return handleOidc(req, res);
  return interaction(req, res, match[1], match[2]).catch((err) => {
    if (!res.headersSent) send(res, 400, escapeHtml(err.message));
  });
});

server.listen(port, '127.0.0.1', () => {
  console.log(`oidc-provider listening on ${issuer}`);
});

function stop() {
  server.close(() => process.exit(0));
  server.closeAllConnections();
}
for (const signal of ['SIGTERM', 'SIGINT']) process.on(signal, stop);
if (process.env.STEPUP_OIDC_WATCH_STDIN === '1') {
  process.stdin.on('end', stop);
  process.stdin.on('error', stop);
  process.stdin.resume();
}
