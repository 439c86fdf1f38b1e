// A Microsoft Graph-shaped sendMail endpoint for mailroom's end-to-end tests.
//
// It answers `POST /v1.0/users/{id | userPrincipalName}/sendMail` with a MIME message as Microsoft
// documents it ("Send Outlook messages in MIME format"; "Microsoft Graph error responses";
// "Microsoft Graph service-specific throttling limits"):
//   - the body is the whole MIME message, base64-encoded, with Content-Type: text/plain;
//   - 202 Accepted with an empty body when the message is taken;
//   - errors as {"error": {"code": "...", "message": "...", "innerError": {...}}};
//   - per app and mailbox at most GRAPH_CONCURRENCY (4) requests at once and GRAPH_WINDOW_LIMIT
//     (10,000) requests per GRAPH_WINDOW_SECONDS (600): beyond either, 429 ApplicationThrottled
//     with Retry-After.
// Honest token checks, as Dovecot does for SMTP: the bearer token is introspected at the testbed's
// oidc-provider (RFC 7662); it must be active, for Graph's audience (https://graph.microsoft.com)
// and carry the Mail.Send role; its `email` claim (the mailbox the app was granted) stands for an
// application access policy: a token for another mailbox gets Graph's RAOP refusal.
//   401 InvalidAuthenticationToken   no token, an inactive/unknown one, or one for another audience
//   403 ErrorAccessDenied            no Mail.Send role ("Access is denied. Check credentials...")
//   403 ErrorAccessDenied [RAOP]     the mailbox is not the one the app was granted
//   404 ErrorInvalidUser             a mailbox that does not exist (GRAPH_MAILBOXES)
//   404 MailboxNotEnabledForRESTAPI  a mailbox listed in GRAPH_REST_DISABLED
//   403 ErrorSendAsDenied            From: is not the mailbox
//   400 ErrorMimeContentInvalidBase64String / ErrorMimeContentInvalid   a bad body
// Accepted messages are delivered into the testbed's MTA over SMTP (the plaintext loopback
// listener of its Postfix), envelope sender the mailbox, recipients from To/Cc/Bcc, the Bcc
// header removed (as Exchange does), so the e2e tests read the real message in the Maildir.
//
// Fault injection: while GRAPH_FAULT_FILE exists, its JSON {"status", "code", "message",
// "retry_after"} is the answer to every sendMail (after the token check), e.g. a 503 or a 500.
//
// Configuration: environment variables, or --name=value arguments (--port=0 sets GRAPH_PORT):
//   GRAPH_HOST (127.0.0.1)  GRAPH_PORT (0: any free port; printed and written to GRAPH_PORT_FILE)
//   GRAPH_TLS_CERT / GRAPH_TLS_KEY (PEM files; required: Graph is https-only)
//   GRAPH_INTROSPECTION_URL  GRAPH_INTROSPECT_CLIENT_ID / GRAPH_INTROSPECT_CLIENT_SECRET
//   GRAPH_SMTP_HOST (127.0.0.1) / GRAPH_SMTP_PORT   where accepted mail goes
//   GRAPH_MAILBOXES (comma list; empty: any)  GRAPH_REST_DISABLED (comma list)
//   GRAPH_CONCURRENCY (4)  GRAPH_WINDOW_LIMIT (10000)  GRAPH_WINDOW_SECONDS (600)
//   GRAPH_DELAY_MS (0: extra time each accepted request takes, for concurrency tests)
//   GRAPH_FAULT_FILE  GRAPH_LOG (one line per request, also on stdout)
// Output: one line per request, e.g.
//   2025-01-01T00:00:00.000Z sendmail mailbox=noreply@example.test status=202 code=- recipients=1 message_id=<...>
// Tokens are never logged.

import * as fs from 'node:fs';
import * as https from 'node:https';
import * as net from 'node:net';

for (const arg of process.argv.slice(2)) {
  const m = /^--([a-z0-9-]+)=(.*)$/s.exec(arg);
  if (!m) {
    console.error(`graph_server: unexpected argument ${JSON.stringify(arg)} (use --name=value)`);
    process.exit(2);
  }
  process.env[`GRAPH_${m[1].toUpperCase().replace(/-/g, '_')}`] = m[2];
}

function env(name, fallback) {
  const value = process.env[name];
  if (value !== undefined && value !== '') return value;
  if (fallback !== undefined) return fallback;
  console.error(`graph_server: ${name} must be set`);
  process.exit(2);
}

const HOST = env('GRAPH_HOST', '127.0.0.1');
const PORT = Number(env('GRAPH_PORT', '0'));
const PORT_FILE = env('GRAPH_PORT_FILE', '');
const INTROSPECTION_URL = env('GRAPH_INTROSPECTION_URL');
const INTROSPECT_AUTH = Buffer.from(
  `${encodeURIComponent(env('GRAPH_INTROSPECT_CLIENT_ID'))}:${encodeURIComponent(env('GRAPH_INTROSPECT_CLIENT_SECRET'))}`,
).toString('base64');
const SMTP_HOST = env('GRAPH_SMTP_HOST', '127.0.0.1');
const SMTP_PORT = Number(env('GRAPH_SMTP_PORT'));
const list = (name) => env(name, '').split(',').map((s) => s.trim().toLowerCase()).filter(Boolean);
const MAILBOXES = list('GRAPH_MAILBOXES');
const REST_DISABLED = list('GRAPH_REST_DISABLED');
const CONCURRENCY = Number(env('GRAPH_CONCURRENCY', '4'));
const WINDOW_LIMIT = Number(env('GRAPH_WINDOW_LIMIT', '10000'));
const WINDOW_MS = Number(env('GRAPH_WINDOW_SECONDS', '600')) * 1000;
const DELAY_MS = Number(env('GRAPH_DELAY_MS', '0'));
const FAULT_FILE = env('GRAPH_FAULT_FILE', '');
const LOG = env('GRAPH_LOG', '');
const GRAPH_AUDIENCE = 'https://graph.microsoft.com';
const MAX_BODY = 4 * 1024 * 1024; // Graph's limit on a request body (base64 of the MIME message)

const logFd = LOG ? fs.openSync(LOG, 'a') : null;
function logLine(fields) {
  const text = `${new Date().toISOString()} sendmail ${Object.entries(fields)
    .map(([k, v]) => `${k}=${v === undefined || v === '' ? '-' : String(v).replace(/\s+/g, '_')}`)
    .join(' ')}\n`;
  process.stdout.write(text);
  if (logFd !== null) fs.writeSync(logFd, text);
}

// ---------------------------------------------------------------- Graph's answers

function sendError(res, status, code, message, headers = {}) {
  const body = JSON.stringify({
    error: {
      code,
      message,
      innerError: { date: new Date().toISOString().replace(/\.\d+Z$/, ''), 'request-id': crypto.randomUUID(), 'client-request-id': crypto.randomUUID() },
    },
  });
  res.writeHead(status, { 'Content-Type': 'application/json', 'Content-Length': Buffer.byteLength(body), ...headers });
  res.end(body);
}

// ---------------------------------------------------------------- token introspection

async function introspect(token) {
  const response = await fetch(INTROSPECTION_URL, {
    method: 'POST',
    headers: { Authorization: `Basic ${INTROSPECT_AUTH}`, 'Content-Type': 'application/x-www-form-urlencoded' },
    body: new URLSearchParams({ token }).toString(),
  });
  if (!response.ok) throw new Error(`introspection answered ${response.status}`);
  return response.json();
}

function audiences(claims) {
  const aud = claims.aud;
  return Array.isArray(aud) ? aud : aud ? [aud] : [];
}

// ---------------------------------------------------------------- limits per mailbox

const inFlight = new Map(); // mailbox -> requests being processed
const recent = new Map(); // mailbox -> times (ms) of recent requests
let violations = 0; // requests refused for a limit: the count the tests read (GET /testbed/stats)

function admit(mailbox) {
  const now = Date.now();
  const times = (recent.get(mailbox) ?? []).filter((t) => t > now - WINDOW_MS);
  recent.set(mailbox, times);
  if ((inFlight.get(mailbox) ?? 0) >= CONCURRENCY) {
    return { retryAfter: 1, message: 'Application is over its MailboxConcurrency limit.' };
  }
  if (times.length >= WINDOW_LIMIT) {
    return { retryAfter: Math.max(1, Math.ceil((times[0] + WINDOW_MS - now) / 1000)), message: 'Application is over its MailboxRequests limit.' };
  }
  times.push(now);
  inFlight.set(mailbox, (inFlight.get(mailbox) ?? 0) + 1);
  return null;
}

function release(mailbox) {
  inFlight.set(mailbox, Math.max(0, (inFlight.get(mailbox) ?? 1) - 1));
}

// ---------------------------------------------------------------- MIME

// The header section unfolded into [name, value] pairs, and where the body starts.
function parseHeaders(mime) {
  const end = mime.search(/\r?\n\r?\n/);
  const head = end < 0 ? mime : mime.slice(0, end);
  const headers = [];
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line) && headers.length > 0) {
      headers[headers.length - 1][1] += ` ${line.trim()}`;
    } else {
      const colon = line.indexOf(':');
      if (colon > 0) headers.push([line.slice(0, colon).trim().toLowerCase(), line.slice(colon + 1).trim()]);
    }
  }
  return headers;
}

function addresses(value) {
  return (value.match(/[^\s<>,"():;]+@[^\s<>,"():;]+/g) ?? []).map((a) => a.toLowerCase());
}

// The message without its Bcc header (folded lines included).
function withoutBcc(mime) {
  const end = mime.search(/\r?\n\r?\n/);
  const head = mime.slice(0, end);
  const kept = [];
  let dropping = false;
  for (const line of head.split(/\r\n/)) {
    if (/^[ \t]/.test(line)) {
      if (!dropping) kept.push(line);
      continue;
    }
    dropping = /^bcc:/i.test(line);
    if (!dropping) kept.push(line);
  }
  return `${kept.join('\r\n')}${mime.slice(end)}`;
}

// ---------------------------------------------------------------- delivery into the MTA

// One SMTP transaction with the testbed's Postfix (plaintext loopback listener).
function deliver(from, recipients, mime) {
  return new Promise((resolve, reject) => {
    const socket = net.createConnection({ host: SMTP_HOST, port: SMTP_PORT });
    const data = `${mime.replace(/\r?\n/g, '\r\n').replace(/^\./gm, '..')}${mime.endsWith('\n') ? '' : '\r\n'}.\r\n`;
    const commands = ['EHLO graph.testbed', `MAIL FROM:<${from}>`, ...recipients.map((r) => `RCPT TO:<${r}>`), 'DATA', data, 'QUIT'];
    let buffer = '';
    let step = -1; // -1: waiting for the greeting
    let accepted = 0;
    socket.setTimeout(30000, () => socket.destroy(new Error('SMTP timeout')));
    socket.on('error', reject);
    socket.on('data', (chunk) => {
      buffer += chunk.toString('latin1');
      let newline;
      while ((newline = buffer.indexOf('\n')) >= 0) {
        const line = buffer.slice(0, newline).replace(/\r$/, '');
        buffer = buffer.slice(newline + 1);
        if (/^\d{3}-/.test(line)) continue; // multi-line reply: wait for its last line
        const code = Number(line.slice(0, 3));
        const command = commands[step] ?? '';
        if (command.startsWith('RCPT')) {
          if (code < 300) accepted += 1;
        } else if (command === 'QUIT') {
          socket.end();
          resolve();
          return;
        } else if (code >= 400 && !(command === 'DATA' && code === 354)) {
          socket.destroy();
          reject(new Error(`the MTA answered ${line} to ${command.split(':')[0] || 'the greeting'}`));
          return;
        }
        if (command === 'DATA' && accepted === 0) {
          socket.destroy();
          reject(new Error('the MTA refused every recipient'));
          return;
        }
        step += 1;
        socket.write(`${commands[step]}${commands[step].endsWith('\r\n') ? '' : '\r\n'}`);
      }
    });
  });
}

// ---------------------------------------------------------------- the endpoint

const SEND_MAIL = /^\/v1\.0\/users\/([^/]+)\/sendMail$/i;

async function readBody(req) {
  const chunks = [];
  let size = 0;
  for await (const chunk of req) {
    size += chunk.length;
    if (size > MAX_BODY) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('latin1');
}

async function handle(req, res) {
  const url = new URL(req.url, 'https://graph.testbed');
  if (req.method === 'GET' && url.pathname === '/testbed/stats') {
    const body = JSON.stringify({ violations });
    res.writeHead(200, { 'Content-Type': 'application/json' });
    res.end(body);
    return;
  }
  const match = SEND_MAIL.exec(url.pathname);
  if (!match) {
    sendError(res, 400, 'BadRequest', `Resource not found for the segment '${url.pathname.split('/').pop()}'.`);
    return;
  }
  if (req.method !== 'POST') {
    sendError(res, 405, 'Request_BadRequest', 'Specified HTTP method is not allowed for the request target.');
    return;
  }
  const mailbox = decodeURIComponent(match[1]).toLowerCase();
  const log = { mailbox, status: 0, code: '', recipients: 0, message_id: '' };
  try {
    await sendMail(req, res, mailbox, log);
  } catch (err) {
    log.status = 500;
    log.code = 'generalException';
    sendError(res, 500, 'generalException', 'An unknown error has occurred.');
    console.error(`graph_server: ${err.stack ?? err}`);
  }
  logLine(log);
}

async function sendMail(req, res, mailbox, log) {
  const fail = (status, code, message, headers) => {
    log.status = status;
    log.code = code;
    sendError(res, status, code, message, headers);
  };
  const auth = req.headers.authorization ?? '';
  if (!/^Bearer \S+$/i.test(auth)) {
    fail(401, 'InvalidAuthenticationToken', 'Access token is empty.');
    return;
  }
  const claims = await introspect(auth.slice(7).trim());
  if (claims.active !== true) {
    fail(401, 'InvalidAuthenticationToken', 'Access token has expired or is not yet valid.');
    return;
  }
  if (!audiences(claims).includes(GRAPH_AUDIENCE)) {
    fail(401, 'InvalidAuthenticationToken', 'Access token validation failure. Invalid audience.');
    return;
  }
  const roles = Array.isArray(claims.roles) ? claims.roles : [];
  if (!roles.includes('Mail.Send')) {
    fail(403, 'ErrorAccessDenied', 'Access is denied. Check credentials and try again.');
    return;
  }
  if (MAILBOXES.length > 0 && !MAILBOXES.includes(mailbox)) {
    fail(404, 'ErrorInvalidUser', `The requested user '${mailbox}' is invalid.`);
    return;
  }
  if (REST_DISABLED.includes(mailbox)) {
    fail(404, 'MailboxNotEnabledForRESTAPI', 'The mailbox is either inactive, soft-deleted, or is hosted on-premise.');
    return;
  }
  if (String(claims.email ?? '').toLowerCase() !== mailbox) {
    fail(403, 'ErrorAccessDenied', 'Access to OData is disabled: [RAOP] : Blocked by tenant configured AppOnly AccessPolicy settings.');
    return;
  }
  const refused = admit(mailbox);
  if (refused) {
    violations += 1;
    fail(429, 'ApplicationThrottled', refused.message, { 'Retry-After': String(refused.retryAfter) });
    return;
  }
  try {
    if (FAULT_FILE && fs.existsSync(FAULT_FILE)) {
      const fault = JSON.parse(fs.readFileSync(FAULT_FILE, 'utf8'));
      fail(fault.status, fault.code, fault.message ?? '', fault.retry_after !== undefined ? { 'Retry-After': String(fault.retry_after) } : {});
      return;
    }
    if (!/^text\/plain\b/i.test(req.headers['content-type'] ?? '')) {
      fail(415, 'ErrorInvalidRequest', 'Content-Type must be text/plain for a MIME message.');
      return;
    }
    const body = await readBody(req);
    if (body === null) {
      fail(413, 'ErrorMessageSizeExceeded', 'The message exceeds the maximum supported size.');
      return;
    }
    const text = body.replace(/\s+/g, '');
    if (text === '' || !/^[A-Za-z0-9+/]*={0,2}$/.test(text) || text.length % 4 !== 0) {
      fail(400, 'ErrorMimeContentInvalidBase64String', 'Invalid base64 string for MIME content.');
      return;
    }
    const mime = Buffer.from(text, 'base64').toString('latin1');
    const headers = parseHeaders(mime);
    const get = (name) => headers.filter(([n]) => n === name).map(([, v]) => v);
    const from = addresses(get('from').join(','));
    if (from.length !== 1) {
      fail(400, 'ErrorMimeContentInvalid', 'The MIME content is invalid: no From header.');
      return;
    }
    if (from[0] !== mailbox) {
      fail(403, 'ErrorSendAsDenied', 'The user account which was used to submit this request does not have the right to send mail on behalf of the specified sending account.');
      return;
    }
    const recipients = [...new Set(['to', 'cc', 'bcc'].flatMap((n) => addresses(get(n).join(','))))];
    if (recipients.length === 0) {
      fail(400, 'ErrorInvalidRecipients', 'At least one recipient is not valid., Recipient is missing.');
      return;
    }
    log.recipients = recipients.length;
    log.message_id = (get('message-id')[0] ?? '').replace(/\s+/g, '');
    if (DELAY_MS > 0) await new Promise((r) => setTimeout(r, DELAY_MS));
    await deliver(mailbox, recipients, withoutBcc(mime));
    log.status = 202;
    res.writeHead(202, { 'Content-Length': 0 });
    res.end();
  } finally {
    release(mailbox);
  }
}

// ---------------------------------------------------------------- start

const server = https.createServer({ cert: fs.readFileSync(env('GRAPH_TLS_CERT')), key: fs.readFileSync(env('GRAPH_TLS_KEY')) }, (req, res) => {
  handle(req, res);
});
server.listen(PORT, HOST, () => {
  const { port } = server.address();
  if (PORT_FILE) {
    fs.writeFileSync(`${PORT_FILE}.tmp`, `${port}\n`);
    fs.renameSync(`${PORT_FILE}.tmp`, PORT_FILE);
  }
  console.log(`listening port=${port} send_mail_url=https://${HOST}:${port}/v1.0/users/{mailbox}/sendMail`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => process.exit(0));
}
