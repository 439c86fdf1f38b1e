// The nodemailer peer of bench/delivery.sh: sends COUNT copies of one rendered message through
// nodemailer's pooled SMTP transport (STARTTLS required, AUTH XOAUTH2 with one access token
// fetched up front by the caller) and prints one line of key=value pairs.
//
// Everything comes from the environment, so that the token never appears in a command line:
//   SMTP_HOST SMTP_PORT CA_FILE MAILBOX BENCH_TOKEN BENCH_TO BENCH_COUNT BENCH_MESSAGE
//   BENCH_CONNECTIONS (3) BENCH_COMPOSE (0)
//
// BENCH_COMPOSE=0: the message is handed over raw (the bytes mailroom sent, with a Message-ID
// of its own per copy): nodemailer then does only what mailroom's delivery does — submit
// already-rendered bytes — and its MIME composer's cost is not counted against it.
// BENCH_COMPOSE=1: nodemailer composes each message itself from the same content mailroom's
// sender renders (Chinese display names and subject, text + HTML), as an application using it
// would; bytes= reports the size of one composed message.
import fs from 'node:fs';
import nodemailer from 'nodemailer';
import MailComposer from 'nodemailer/lib/mail-composer';

function need(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`nodemailer_send: ${name} is not set`);
    process.exit(2);
  }
  return value;
}

const count = Number(need('BENCH_COUNT'));
const to = need('BENCH_TO');
const mailbox = need('MAILBOX');
const template = fs.readFileSync(need('BENCH_MESSAGE'), 'latin1');
if (!/^Message-ID: <[^>]*>/im.test(template)) {
  console.error('nodemailer_send: the message has no Message-ID header');
  process.exit(2);
}

const transport = nodemailer.createTransport({
  pool: true,
  maxConnections: Number(process.env.BENCH_CONNECTIONS || 3),
  // The default (100) reconnects, with a new TLS handshake and AUTH, every 100 messages;
  // mailroom keeps a connection for up to 10 minutes. Infinity gives the peer the same.
  maxMessages: Infinity,
  host: need('SMTP_HOST'),
  port: Number(need('SMTP_PORT')),
  secure: false,
  requireTLS: true, // STARTTLS or nothing, as mailroom: a token never goes in plaintext
  tls: { ca: fs.readFileSync(need('CA_FILE')) },
  auth: { type: 'OAuth2', user: mailbox, accessToken: need('BENCH_TOKEN') },
});

const started = process.hrtime.bigint();
let failed = 0;
let firstError = '';
const compose = process.env.BENCH_COMPOSE === '1';
// tests/e2e/tools/mail_sender_main.cc's message n, for nodemailer to compose.
const content = (n) => ({
  from: { name: 'mailroom 通知', address: mailbox },
  to: { name: '訪客 王小明', address: to },
  subject: `訪客帳號即將到期 — 王小明 #${n}`,
  text: `您好，這是第 ${n} 封測試郵件。\nMessage number ${n}.\n`,
  html: `<p>您好，這是第 <b>${n}</b> 封測試郵件。</p>`,
  messageId: `<nodemailer.${n}.${started}@bench>`,
});
const sends = [];
for (let n = 0; n < count; n++) {
  const mail = compose
    ? content(n)
    : {
        envelope: { from: mailbox, to: [to] },
        raw: Buffer.from(
          template.replace(/^Message-ID: <[^>]*>/im, `Message-ID: <nodemailer.${n}.${started}@bench>`),
          'latin1',
        ),
      };
  sends.push(
    transport.sendMail(mail).catch((err) => {
      failed++;
      if (!firstError) firstError = String(err && err.message);
    }),
  );
}
await Promise.all(sends);
const seconds = Number(process.hrtime.bigint() - started) / 1e9;
transport.close();
// The size of what was sent (measured after the clock stopped).
let bytes = Buffer.byteLength(template, 'latin1');
if (compose) {
  bytes = await new Promise((resolve, reject) =>
    new MailComposer(content(Math.floor(count / 2))).compile().build((err, message) =>
      err ? reject(err) : resolve(message.length),
    ),
  );
}
console.log(
  `sent=${count - failed} failed=${failed} seconds=${seconds.toFixed(3)} ` +
    `per_s=${((count - failed) / seconds).toFixed(1)} bytes=${bytes}` +
    (firstError ? ` first_error=${JSON.stringify(firstError)}` : ''),
);
process.exit(failed === 0 ? 0 : 1);
