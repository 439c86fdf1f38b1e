// An Entra ID-shaped OAuth 2.0 token server for mailroom's end-to-end tests.
//
// This is the certified `oidc-provider` library configured the way Entra ID behaves for the
// client-credentials flow that Exchange Online SMTP needs (see /work/shared/reference/testbed.md):
//   POST /<tenant>/oauth2/v2.0/token   grant_type=client_credentials, scope=<exchange>/.default
//   POST /introspect                   RFC 7662, used by Dovecot to validate XOAUTH2 bearer tokens
//                                      and by graph_server.js to validate Graph bearer tokens
// Tokens for Microsoft Graph (scope https://graph.microsoft.com/.default, the Graph transport)
// come from the same app clients; they carry `roles` = OIDC_GRAPH_ROLES (Mail.Send: the app
// permission with admin consent; "none" stands for consent not granted) and `aud` = Graph.
// Access tokens are opaque. Each app client's tokens carry `email` = its primary mailbox, which
// graph_server.js checks (an application access policy). SMTP does not use it: the testbed's
// Dovecot asks here only whether a token is active and whose app it is, and checks the app's
// mailbox grants (Exchange's side) itself (mailbox_grant_check.sh), so one token serves every
// mailbox its app was granted, and "token valid but no mailbox permission" becomes a 535.
//
// Configuration: environment variables, or `--name=value` arguments that override them
// (`--client-id=x` sets OIDC_CLIENT_ID). All of them:
//   OIDC_HOST (127.0.0.1)  OIDC_PORT (0 = any free port; the chosen one is printed and written
//   to OIDC_PORT_FILE)  OIDC_TENANT  OIDC_TOKEN_TTL (seconds, 3600)
//   OIDC_CLIENT_ID / OIDC_CLIENT_SECRET / OIDC_MAILBOX                 the good app (client_secret_post)
//   OIDC_OTHER_CLIENT_ID / OIDC_OTHER_CLIENT_SECRET / OIDC_OTHER_MAILBOX  an app granted another mailbox
//   OIDC_INTROSPECT_CLIENT_ID / OIDC_INTROSPECT_CLIENT_SECRET          the MTA's introspection client
//   OIDC_CERT_CLIENT_ID / OIDC_CERT_CLIENT_CERT (PEM file)             optional: certificate credential
//                                                                      (private_key_jwt), mailbox = OIDC_MAILBOX
//   OIDC_TOKEN_LOG   file that gets one line per token-endpoint request (count them with `wc -l`)
//   OIDC_TOKEN_OUTAGE_FILE   optional: while this file exists, the token endpoint answers as Entra
//                    does in an outage (503 temporarily_unavailable, AADSTS90033); the rest of the
//                    server (token introspection, which the MTA needs) keeps working
//   OIDC_CLIENT_SECRET_FILE  optional: when this file exists, its content is the good app's secret
//                    from the next token request on (a secret rotated or revoked in the tenant:
//                    the old one is refused with AADSTS7000215, tokens already issued stay valid)
//   OIDC_GRAPH_ROLES   roles of Graph tokens, comma-separated (Mail.Send); "none" for no roles claim
//   OIDC_TLS_HOST / OIDC_TLS_CERT / OIDC_TLS_KEY (PEM files)        optional: also serve the same
//                    endpoints over HTTPS on OIDC_TLS_HOST, at the same port (for clients on other
//                    network hosts, which require https: Entra is https-only)
//
// Output: one line per token and introspection request on stdout, e.g.
//   2025-01-01T00:00:00.000Z token client_id=app status=200 result=ok expires_in=3600
// Secrets, assertions and tokens are never logged.
//
// It is ESM (oidc-provider 9 is ESM-only); package.json says "type": "module".

import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as http from 'node:http';
import * as https from 'node:https';

import Provider, { errors } from 'oidc-provider';

// ---------------------------------------------------------------- configuration

for (const arg of process.argv.slice(2)) {
  const m = /^--([a-z0-9-]+)=(.*)$/s.exec(arg);
  if (!m) {
    console.error(`oidc_server: unexpected argument ${JSON.stringify(arg)} (use --name=value)`);
    process.exit(2);
  }
  process.env[`OIDC_${m[1].toUpperCase().replace(/-/g, '_')}`] = m[2];
}

function env(name, fallback) {
  const value = process.env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback !== undefined) return fallback;
  console.error(`oidc_server: ${name} must be set`);
  process.exit(2);
}

const HOST = env('OIDC_HOST', '127.0.0.1');
const PORT = Number(env('OIDC_PORT', '0'));
const TENANT = env('OIDC_TENANT', '00000000-0000-4000-8000-000000000001');
const TOKEN_TTL = Number(env('OIDC_TOKEN_TTL', '3600'));
const TOKEN_LOG = env('OIDC_TOKEN_LOG', '');
const PORT_FILE = env('OIDC_PORT_FILE', '');
const TLS_HOST = env('OIDC_TLS_HOST', '');

// Exchange Online's resource, under both names: Microsoft documents outlook.office365.com, the
// seed product sends outlook.office.com. Entra issues the same kind of token for either.
// Microsoft Graph is a third resource of the same tenant (the Graph transport's tokens).
const GRAPH_RESOURCE = 'https://graph.microsoft.com';
const RESOURCES = ['https://outlook.office365.com', 'https://outlook.office.com', GRAPH_RESOURCE];
const GRAPH_ROLES = env('OIDC_GRAPH_ROLES', 'Mail.Send') === 'none' ? []
  : env('OIDC_GRAPH_ROLES', 'Mail.Send').split(',').map((r) => r.trim()).filter(Boolean);
const SCOPES = RESOURCES.map((r) => `${r}/.default`);

const TOKEN_PATH = `/${TENANT}/oauth2/v2.0/token`;
const INTROSPECT_PATH = '/introspect';

const appClient = (id, secret) => ({
  client_id: id,
  client_secret: secret,
  token_endpoint_auth_method: 'client_secret_post',
  grant_types: ['client_credentials'],
  response_types: [],
  redirect_uris: [],
  scope: SCOPES.join(' '),
});

const mailboxOf = new Map(); // client_id -> the mailbox its tokens grant
const clients = [];

clients.push(appClient(env('OIDC_CLIENT_ID'), env('OIDC_CLIENT_SECRET')));
mailboxOf.set(env('OIDC_CLIENT_ID'), env('OIDC_MAILBOX'));

if (process.env.OIDC_OTHER_CLIENT_ID) {
  clients.push(appClient(env('OIDC_OTHER_CLIENT_ID'), env('OIDC_OTHER_CLIENT_SECRET')));
  mailboxOf.set(env('OIDC_OTHER_CLIENT_ID'), env('OIDC_OTHER_MAILBOX'));
}

const INTROSPECT_CLIENT_ID = env('OIDC_INTROSPECT_CLIENT_ID');
clients.push({
  client_id: INTROSPECT_CLIENT_ID,
  client_secret: env('OIDC_INTROSPECT_CLIENT_SECRET'),
  token_endpoint_auth_method: 'client_secret_basic', // Dovecot sends user:pass from the URL as Basic
  grant_types: [],
  response_types: [],
  redirect_uris: [],
});

// Certificate credential (Entra "certificate-credentials"): the client signs a JWT (PS256 or RS256)
// with its private key; we hold its certificate. Entra picks the key by the `x5t#S256` / `x5t`
// header; oidc-provider picks by `kid` when one is present, so the key is registered under every
// kid a client might plausibly send (none, x5t, x5t#S256, hex SHA-1 as the Azure portal shows it).
const certThumbprints = { s256: null, s1: null };
if (process.env.OIDC_CERT_CLIENT_ID) {
  const x509 = new crypto.X509Certificate(fs.readFileSync(env('OIDC_CERT_CLIENT_CERT')));
  const jwk = x509.publicKey.export({ format: 'jwk' });
  if (jwk.kty !== 'RSA') {
    console.error('oidc_server: OIDC_CERT_CLIENT_CERT must hold an RSA key (Entra signs PS256/RS256)');
    process.exit(2);
  }
  certThumbprints.s256 = crypto.createHash('sha256').update(x509.raw).digest('base64url');
  certThumbprints.s1 = crypto.createHash('sha1').update(x509.raw).digest('base64url');
  const hexS1 = crypto.createHash('sha1').update(x509.raw).digest('hex').toUpperCase();
  const keys = [undefined, certThumbprints.s1, certThumbprints.s256, hexS1]
    .map((kid) => ({ ...jwk, use: 'sig', ...(kid ? { kid } : {}) }));
  clients.push({
    client_id: env('OIDC_CERT_CLIENT_ID'),
    token_endpoint_auth_method: 'private_key_jwt',
    grant_types: ['client_credentials'],
    response_types: [],
    redirect_uris: [],
    scope: SCOPES.join(' '),
    jwks: { keys },
  });
  mailboxOf.set(env('OIDC_CERT_CLIENT_ID'), env('OIDC_MAILBOX'));
}

// ---------------------------------------------------------------- logging

const tokenLog = TOKEN_LOG ? fs.openSync(TOKEN_LOG, 'a') : null;

function logLine(kind, fields, toTokenLog) {
  const text = `${new Date().toISOString()} ${kind} ${Object.entries(fields)
    .filter(([, v]) => v !== undefined && v !== '')
    .map(([k, v]) => `${k}=${String(v).replace(/\s+/g, '_')}`)
    .join(' ')}\n`;
  process.stdout.write(text);
  if (toTokenLog && tokenLog !== null) fs.writeSync(tokenLog, text);
}

// Which client a request claimed to be, without ever touching the secret or assertion value.
function claimedClientId(ctx) {
  if (ctx.oidc?.client?.clientId) return ctx.oidc.client.clientId;
  const params = ctx.oidc?.params ?? ctx.request.body ?? {};
  if (params.client_id) return params.client_id;
  if (params.client_assertion) {
    try {
      return JSON.parse(Buffer.from(params.client_assertion.split('.')[1], 'base64url')).sub;
    } catch { /* malformed assertion: fall through */ }
  }
  const auth = ctx.headers.authorization;
  if (auth?.startsWith('Basic ')) {
    return decodeURIComponent(Buffer.from(auth.slice(6), 'base64').toString().split(':')[0]);
  }
  return '-';
}

function authMethod(ctx) {
  const params = ctx.oidc?.params ?? {};
  if (params.client_assertion) return 'private_key_jwt';
  if (params.client_secret) return 'client_secret_post';
  if (ctx.headers.authorization) return 'client_secret_basic';
  return 'none';
}

// ---------------------------------------------------------------- the provider

function providerConfiguration() {
  const { privateKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
  return {
    clients,
    // Signing keys for anything the provider signs (nothing, in this flow); ephemeral per run.
    jwks: { keys: [{ ...privateKey.export({ format: 'jwk' }), use: 'sig', kid: 'testbed' }] },
    cookies: { keys: [crypto.randomBytes(32).toString('hex')] },
    routes: { token: TOKEN_PATH, introspection: INTROSPECT_PATH },
    scopes: SCOPES,
    claims: {},
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt'],
    enabledJWA: { clientAuthSigningAlgValues: ['PS256', 'RS256'] },
    clockTolerance: 5,
    ttl: { ClientCredentials: TOKEN_TTL },
    features: {
      clientCredentials: { enabled: true },
      introspection: {
        enabled: true,
        // Only the MTA may introspect, as only Exchange validates Exchange tokens.
        allowedPolicy: (ctx, client) => client.clientId === INTROSPECT_CLIENT_ID,
      },
      devInteractions: { enabled: false },
      revocation: { enabled: false },
      resourceIndicators: {
        enabled: true,
        // Entra derives the resource from `<resource>/.default` in the scope.
        defaultResource: (ctx) => {
          const requested = ctx.oidc.params.scope;
          if (!requested) {
            throw new errors.InvalidRequest("the request body must contain the 'scope' parameter");
          }
          const scope = requested.split(' ').find((s) => SCOPES.includes(s));
          if (!scope) {
            throw new errors.InvalidScope('the provided scope is not valid for this resource', requested);
          }
          return scope.slice(0, -'/.default'.length);
        },
        useGrantedResource: () => true,
        getResourceServerInfo: (ctx, resource) => {
          if (!RESOURCES.includes(resource)) {
            throw new errors.InvalidTarget(`resource ${resource} is not known in this tenant`);
          }
          return {
            scope: `${resource}/.default`,
            accessTokenFormat: 'opaque',
            accessTokenTTL: TOKEN_TTL,
          };
        },
      },
    },
    // A Graph token's roles are the app permissions granted with admin consent (Mail.Send).
    extraTokenClaims: (ctx, token) => {
      if (!mailboxOf.has(token.clientId)) return undefined;
      const claims = { email: mailboxOf.get(token.clientId) };
      const graph = String(ctx.oidc?.params?.scope ?? '').split(' ').includes(`${GRAPH_RESOURCE}/.default`);
      if (graph && GRAPH_ROLES.length > 0) claims.roles = GRAPH_ROLES;
      return claims;
    },
    // Entra's own checks on a certificate assertion: RSA signature, and the certificate named in
    // the header (x5t#S256, or the older x5t) must be the registered one.
    assertJwtClientAuthClaimsAndHeader: (ctx, claims, header) => {
      if (header['x5t#S256'] === undefined && header.x5t === undefined) {
        throw new errors.InvalidClientAuth('client_assertion header must name the certificate (x5t#S256 or x5t)');
      }
      if ((header['x5t#S256'] !== undefined && header['x5t#S256'] !== certThumbprints.s256)
          || (header.x5t !== undefined && header.x5t !== certThumbprints.s1)) {
        throw new errors.InvalidClientAuth('client_assertion certificate thumbprint does not match a registered certificate');
      }
    },
  };
}

// The good app's secret as the tenant holds it now (see OIDC_CLIENT_SECRET_FILE).
let currentAppSecret = env('OIDC_CLIENT_SECRET');
async function followSecretFile(provider) {
  const file = process.env.OIDC_CLIENT_SECRET_FILE;
  if (!file || !fs.existsSync(file)) return;
  const secret = fs.readFileSync(file, 'utf8').trim();
  if (!secret || secret === currentAppSecret) return;
  const client = await provider.Client.find(env('OIDC_CLIENT_ID'));
  client.clientSecret = secret; // static clients are cached instances: this is the tenant's change
  currentAppSecret = secret;
  console.log('oidc_server: the app secret was rotated');
}

function installMiddleware(provider) {
  provider.use(async (ctx, next) => {
    if (ctx.path === TOKEN_PATH) await followSecretFile(provider);
    if (ctx.path === TOKEN_PATH && process.env.OIDC_TOKEN_OUTAGE_FILE
        && fs.existsSync(process.env.OIDC_TOKEN_OUTAGE_FILE)) {
      ctx.status = 503;
      ctx.body = {
        error: 'temporarily_unavailable',
        error_description: 'AADSTS90033: A transient error has occurred. Please try again.',
        error_codes: [90033],
        timestamp: new Date().toISOString().replace('T', ' ').replace(/\..*$/, 'Z'),
        trace_id: crypto.randomUUID(),
        correlation_id: crypto.randomUUID(),
      };
      logLine('token', { status: 503, result: 'outage' }, true);
      return;
    }
    const tokenShaped = /^\/([^/]+)\/oauth2\/v2\.0\/token$/.exec(ctx.path);
    // A wrong tenant gets Entra's answer (AADSTS90002) rather than a bare 404, so the product's
    // wrong-tenant diagnosis can be exercised against this server too.
    if (tokenShaped && tokenShaped[1] !== TENANT) {
      ctx.status = 400;
      ctx.body = {
        error: 'invalid_request',
        error_description: `AADSTS90002: Tenant '${tokenShaped[1]}' not found.`,
        error_codes: [90002],
        timestamp: new Date().toISOString().replace('T', ' ').replace(/\..*$/, 'Z'),
        trace_id: crypto.randomUUID(),
        correlation_id: crypto.randomUUID(),
      };
      logLine('token', { tenant: tokenShaped[1], status: 400, result: 'unknown_tenant' }, true);
      return;
    }

    await next();

    if (ctx.path === TOKEN_PATH) {
      const body = ctx.body && typeof ctx.body === 'object' ? ctx.body : {};
      if (ctx.status === 200 && body.access_token) {
        body.ext_expires_in = body.expires_in; // Entra sends both
      }
      // Entra tells an unknown client from a wrong secret with AADSTS codes; oidc-provider
      // answers both with a bare "invalid_client". Add Entra's codes from the real reason.
      if (body.error === 'invalid_client') {
        const detail = String(ctx.state.testbedDetail ?? '');
        const entra = /not found/i.test(detail) ? [700016, `Application with identifier '${claimedClientId(ctx)}' was not found in the directory.`]
          : /secret/i.test(detail) ? [7000215, 'Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID.']
          : /assertion|thumbprint|signature|jwt/i.test(detail) ? [700027, 'Client assertion failed signature validation.']
          : undefined;
        if (entra) {
          body.error_description = `AADSTS${entra[0]}: ${entra[1]}`;
          body.error_codes = [entra[0]];
          body.timestamp = new Date().toISOString().replace('T', ' ').replace(/\..*$/, 'Z');
          body.trace_id = crypto.randomUUID();
          body.correlation_id = crypto.randomUUID();
        }
      }
      logLine('token', {
        client_id: claimedClientId(ctx),
        auth: authMethod(ctx),
        scope: ctx.oidc?.params?.scope,
        status: ctx.status,
        result: body.access_token ? 'ok' : (body.error ?? 'error'),
        expires_in: body.expires_in,
        error_description: body.access_token ? undefined : body.error_description,
        detail: ctx.state.testbedDetail,
      }, true);
    } else if (ctx.path === INTROSPECT_PATH) {
      const body = ctx.body && typeof ctx.body === 'object' ? ctx.body : {};
      logLine('introspect', {
        caller: claimedClientId(ctx),
        status: ctx.status,
        active: body.active,
        token_client_id: body.client_id,
        email: body.email,
        error: body.error,
      }, false);
    }
  });
}

// ---------------------------------------------------------------- start

// Listen first: with port 0 the issuer URL (which contains the port) is only known afterwards.
const server = http.createServer();
server.listen(PORT, HOST, () => {
  const { port } = server.address();
  const origin = `http://${HOST}:${port}`;
  const provider = new Provider(`${origin}/${TENANT}/v2.0`, providerConfiguration());
  installMiddleware(provider);
  // oidc-provider answers every client-authentication failure with a generic "invalid_client";
  // keep the real reason (client not found, invalid secret, bad assertion...) for the log line.
  provider.on('grant.error', (ctx, err) => {
    ctx.state.testbedDetail = err.error_detail;
  });
  provider.on('server_error', (ctx, err) => console.error('oidc_server: server_error', err));
  server.on('request', provider.callback());

  const ready = () => {
    if (PORT_FILE) {
      fs.writeFileSync(`${PORT_FILE}.tmp`, `${port}\n`);
      fs.renameSync(`${PORT_FILE}.tmp`, PORT_FILE); // atomic: readers never see a partial file
    }
    console.log(`listening port=${port} token_url=${origin}${TOKEN_PATH} introspection_url=${origin}${INTROSPECT_PATH}`);
  };
  if (!TLS_HOST) {
    ready();
    return;
  }
  // The same provider over HTTPS on a second address, same port (the port file is written
  // only once both listen).
  const tlsServer = https.createServer({
    cert: fs.readFileSync(env('OIDC_TLS_CERT')),
    key: fs.readFileSync(env('OIDC_TLS_KEY')),
  }, provider.callback());
  tlsServer.on('error', (err) => {
    console.error(`oidc_server: cannot serve https on ${TLS_HOST}:${port}: ${err.message}`);
    process.exit(1);
  });
  tlsServer.listen(port, TLS_HOST, () => {
    console.log(`listening https host=${TLS_HOST} port=${port}`);
    ready();
  });
});

// Nothing to flush (tokens live in memory; the token log is written synchronously): exit at once.
for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
