// A real OpenID Provider for stepup's OIDC tests: the certified `oidc-provider` package,
// configured for the tests and served on a loopback port.
//
//   node provider.mjs <port>            (or STEPUP_OIDC_PORT=<port>)
//
// Environment:
//   STEPUP_OIDC_REDIRECT_URI   the relying party's callback (default http://127.0.0.1:9/oidc/callback)
//   STEPUP_OIDC_CLIENT_JWKS    path to a JSON JWKS with the public key of the private_key_jwt client
//   STEPUP_OIDC_WATCH_STDIN=1  exit when stdin closes (the test process died without stopping us)
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
import Provider from 'oidc-provider';

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
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: 'test-key-1', use: 'sig', alg: 'RS256' };

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
  features: { devInteractions: { enabled: false } },
  interactions: { url: (ctx, interaction) => `/interaction/${interaction.uid}` },
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
    return provider.interactionFinished(req, res, {
      login: {
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
