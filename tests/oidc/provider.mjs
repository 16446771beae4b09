// A real OpenID provider for the SSO tests: node-oidc-provider (a certified OP implementation),
// with a sign-in page of our own instead of its development pages (those load web fonts from the
// internet, which tests must never reach).
//
//   node provider.mjs --port 0 --accounts accounts.json --client-id ephemera \
//        --client-secret s3cret --redirect-uri http://127.0.0.1:8000/oidc/callback/
//
// Prints one JSON line {"issuer": ...} once it listens. A new RSA signing key on every start:
// restarting it is how a test rotates the provider's keys.
//
// accounts.json (re-read on every request, so a test can change groups or disable someone):
//   {"alice": {"password": "pw", "email": "alice@example.com", "name": "Alice",
//              "groups": ["payments-oncall"], "disabled": false}}
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';
import { parseArgs } from 'node:util';

import Provider, { interactionPolicy } from 'oidc-provider';

const { values: args } = parseArgs({
  options: {
    port: { type: 'string', default: '0' },
    accounts: { type: 'string' },
    'client-id': { type: 'string', default: 'ephemera' },
    'client-secret': { type: 'string' },
    'redirect-uri': { type: 'string', multiple: true },
  },
});

const accounts = () => JSON.parse(readFileSync(args.accounts, 'utf8'));

const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: 'jwk' }), kid: randomBytes(8).toString('hex'), use: 'sig', alg: 'RS256' };

const escape = (s) => String(s).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(title, body) {
  return `<!doctype html><html><head><meta charset="utf-8"><title>${escape(title)}</title></head>`
    + `<body><main><h1>${escape(title)}</h1>${body}</main></body></html>`;
}

function readForm(req) {
  return new Promise((resolve, reject) => {
    let data = '';
    req.setEncoding('utf8');
    req.on('data', (chunk) => { data += chunk; if (data.length > 10000) reject(new Error('too big')); });
    req.on('end', () => resolve(Object.fromEntries(new URLSearchParams(data))));
    req.on('error', reject);
  });
}

// A disabled account's provider session no longer counts: the login prompt is due again, so a
// prompt=none request answers login_required (what real providers do for a disabled user).
const policy = interactionPolicy.base();
policy.get('login').checks.add(new interactionPolicy.Check('account_disabled', 'the account is disabled', 'login_required', (ctx) => {
  const id = ctx.oidc.session?.accountId;
  return Boolean(id && accounts()[id]?.disabled);
}));

function start(issuer, server) {
  const provider = new Provider(issuer, {
    clients: [{
      client_id: args['client-id'],
      client_secret: args['client-secret'],
      redirect_uris: args['redirect-uri'],
      grant_types: ['authorization_code'],
      response_types: ['code'],
      token_endpoint_auth_method: 'client_secret_post',
      id_token_signed_response_alg: 'RS256',
    }],
    jwks: { keys: [signingKey] },
    cookies: { keys: [randomBytes(16).toString('hex')] },
    claims: {
      openid: ['sub', 'auth_time'],
      email: ['email', 'email_verified'],
      profile: ['name', 'preferred_username'],
      groups: ['groups'],
    },
    scopes: ['openid', 'email', 'profile', 'groups'],
    pkce: { required: () => true },
    features: { devInteractions: { enabled: false } },
    interactions: { policy, url: (ctx, interaction) => `/interaction/${interaction.uid}` },
    // Everything a signed-in user of this test IdP has asked for is granted (no consent page).
    async loadExistingGrant(ctx) {
      const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId, accountId: ctx.oidc.session.accountId });
      grant.addOIDCScope('openid email profile groups');
      await grant.save();
      return grant;
    },
    async findAccount(ctx, id) {
      const account = accounts()[id];
      if (!account) return undefined;  // a disabled one is refused by the policy check above
      return {
        accountId: id,
        async claims() {
          return {
            sub: id, email: account.email, email_verified: true, name: account.name,
            preferred_username: id, groups: account.groups || [],
          };
        },
      };
    },
    ttl: { Session: 3600, Interaction: 600, Grant: 3600, AccessToken: 600, AuthorizationCode: 60, IdToken: 600 },
  });
  provider.proxy = false;
  const callback = provider.callback();

  server.on('request', async (req, res) => {
    const match = req.url.match(/^\/interaction\/([\w-]+)(\/login)?$/);
    if (!match) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'GET') {
        const failed = new URL(req.url, issuer).searchParams.get('failed');
        res.setHeader('content-type', 'text/html; charset=utf-8');
        return res.end(page('Sign in to the test IdP', `${failed ? '<p role="alert">Wrong login or password.</p>' : ''}
          <form method="post" action="/interaction/${details.uid}/login">
            <label>Login <input name="login" autocomplete="username"></label>
            <label>Password <input name="password" type="password" autocomplete="current-password"></label>
            <button type="submit">Sign in</button></form>`));
      }
      const form = await readForm(req);
      const account = accounts()[form.login];
      if (!account || account.disabled || account.password !== form.password) {
        res.statusCode = 303;
        res.setHeader('location', `/interaction/${details.uid}?failed=1`);
        return res.end();
      }
      return await provider.interactionFinished(req, res, { login: { accountId: form.login } }, { mergeWithLastSubmission: false });
    } catch (err) {
      res.statusCode = 400;
      res.setHeader('content-type', 'text/plain');
      return res.end(`interaction failed: ${err.message}`);
    }
  });
}

const server = createServer();
server.listen(Number(args.port), '127.0.0.1', () => {
  const issuer = `http://127.0.0.1:${server.address().port}`;
  start(issuer, server);
  process.stdout.write(`${JSON.stringify({ issuer, kid: signingKey.kid })}\n`);
});
