#!/usr/bin/env bash
# Smoke test of the testbed itself: start it in a fresh directory, drive it with curl and openssl
# the way mailroom will (client credentials, STARTTLS, AUTH XOAUTH2), check each behaviour the
# end-to-end tests rely on, stop it. Prints one PASS/FAIL line per check; exits 1 if any failed.
#
#   bash tests/e2e/testbed/smoke_test.sh        (as root, from any directory)

set -Eeuo pipefail

HERE="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"
TESTBED="$HERE/testbed.sh"

DIR="$(mktemp -d /tmp/mr.XXXXXX)" # short: Dovecot's unix sockets live under it
chmod 755 "$DIR"                  # Postfix runs as user postfix and must reach into it
FAILED=0
FINISHED=0
# Always stop what was started; keep the directory (logs, configs) only when something failed.
# shellcheck disable=SC2317 # called by the EXIT trap
cleanup() {
  bash "$TESTBED" stop "$DIR" || true
  if [[ $FINISHED == 1 && $FAILED == 0 ]]; then
    rm -rf "$DIR"
  else
    echo "testbed files kept in $DIR"
  fi
}
trap cleanup EXIT

pass() { printf 'PASS  %s\n' "$1"; }
fail() {
  printf 'FAIL  %s\n' "$1"
  [[ $# -gt 1 ]] && printf '%s\n' "$2" | sed 's/^/      | /'
  FAILED=1
}

# json_field FIELD < JSON: print one top-level field ('' if absent or not JSON).
json_field() {
  node -e '
    let s = ""; process.stdin.on("data", (d) => (s += d)).on("end", () => {
      try { const v = JSON.parse(s)[process.argv[1]]; console.log(v === undefined ? "" : v); }
      catch { console.log(""); }
    });' "$1"
}

START=$EPOCHREALTIME
bash "$TESTBED" start "$DIR"
echo "testbed started in $(awk -v a="$START" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s in $DIR"
# shellcheck disable=SC1091
source "$DIR/testbed.env"

# get_token CLIENT_ID CLIENT_SECRET [SCOPE]: the token endpoint's JSON body, HTTP status appended
# as a last line.
get_token() {
  curl -sS --max-time 10 -w '\n%{http_code}' "$TOKEN_URL" \
    -d grant_type=client_credentials -d "client_id=$1" --data-urlencode "client_secret=$2" \
    --data-urlencode "scope=${3:-$SCOPE}"
}

# send_mail PORT FROM TOKEN MSGFILE [CAFILE] [USER]: curl's SMTP submission as XOAUTH2 user USER
# (default $MAILBOX); its exit code is returned, its transcript (server replies and errors) left
# in $SEND_LOG.
SEND_LOG="$DIR/smoke-send.log"
send_mail() {
  local rc=0
  curl -sS -v --max-time 20 --url "smtp://127.0.0.1:$1" --ssl-reqd --cacert "${5:-$CA_FILE}" \
    --mail-from "$2" --mail-rcpt guest@example.test \
    --oauth2-bearer "$3" --login-options AUTH=XOAUTH2 --sasl-ir -u "${6:-$MAILBOX}:" -T "$4" \
    >"$SEND_LOG" 2>&1 || rc=$?
  return $rc
}
replies() { grep -E '^< [2-5][0-9]{2}[ -]|^curl: |certificate' "$SEND_LOG" | grep -v '^< 250-' || true; }

make_message() { # make_message FILE FROM MESSAGE-ID
  printf 'From: %s\r\nTo: guest@example.test\r\nSubject: testbed smoke\r\nMessage-ID: <%s>\r\n\r\nhello from the smoke test\r\n' \
    "$2" "$3" >"$1"
}

# ---------------------------------------------------------------- token endpoint

resp="$(get_token "$CLIENT_ID" "$CLIENT_SECRET")"
TOKEN="$(head -n -1 <<<"$resp" | json_field access_token)"
if [[ "$(tail -n 1 <<<"$resp")" == 200 && -n "$TOKEN" ]] &&
  [[ "$(head -n -1 <<<"$resp" | json_field expires_in)" == "$TOKEN_TTL" ]]; then
  pass "token endpoint issues a token (client_secret_post, scope $SCOPE)"
else
  fail "token endpoint issues a token" "$resp"
fi

resp="$(get_token "$CLIENT_ID" "$CLIENT_SECRET" https://outlook.office.com/.default)"
if [[ "$(tail -n 1 <<<"$resp")" == 200 ]]; then
  pass "scope https://outlook.office.com/.default is accepted too"
else
  fail "scope https://outlook.office.com/.default is accepted too" "$resp"
fi

resp="$(get_token "$CLIENT_ID" "wrong-$CLIENT_SECRET")"
if [[ "$(tail -n 1 <<<"$resp")" == 401 && "$(head -n -1 <<<"$resp" | json_field error)" == invalid_client ]]; then
  pass "wrong client secret -> 401 invalid_client"
else
  fail "wrong client secret -> 401 invalid_client" "$resp"
fi

resp="$(curl -sS -w '\n%{http_code}' "$TOKEN_URL_BASE/not-our-tenant/oauth2/v2.0/token" \
  -d grant_type=client_credentials -d "client_id=$CLIENT_ID" --data-urlencode "client_secret=$CLIENT_SECRET" \
  --data-urlencode "scope=$SCOPE")"
if [[ "$(tail -n 1 <<<"$resp")" == 400 && "$resp" == *AADSTS90002* ]]; then
  pass "unknown tenant -> 400 AADSTS90002"
else
  fail "unknown tenant -> 400 AADSTS90002" "$resp"
fi

# Certificate credential: a client assertion as Entra wants it (PS256, x5t#S256, aud = token URL).
ASSERTION="$(node -e '
  const crypto = require("crypto"), fs = require("fs");
  const [cert, key, clientId, aud] = process.argv.slice(1);
  const x509 = new crypto.X509Certificate(fs.readFileSync(cert));
  const b64 = (o) => Buffer.from(JSON.stringify(o)).toString("base64url");
  const now = Math.floor(Date.now() / 1000);
  const input = b64({ alg: "PS256", typ: "JWT",
      "x5t#S256": crypto.createHash("sha256").update(x509.raw).digest("base64url") }) + "." +
    b64({ aud, iss: clientId, sub: clientId, jti: crypto.randomUUID(), nbf: now, iat: now, exp: now + 600 });
  const sig = crypto.sign("sha256", Buffer.from(input), { key: fs.readFileSync(key),
      padding: crypto.constants.RSA_PKCS1_PSS_PADDING, saltLength: 32 });
  console.log(input + "." + sig.toString("base64url"));
' "$CERT_CLIENT_CERT" "$CERT_CLIENT_KEY" "$CERT_CLIENT_ID" "$TOKEN_URL")"
resp="$(curl -sS -w '\n%{http_code}' "$TOKEN_URL" -d grant_type=client_credentials -d "client_id=$CERT_CLIENT_ID" \
  --data-urlencode "scope=$SCOPE" \
  -d client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer -d "client_assertion=$ASSERTION")"
CERT_TOKEN="$(head -n -1 <<<"$resp" | json_field access_token)"
if [[ "$(tail -n 1 <<<"$resp")" == 200 && -n "$CERT_TOKEN" ]]; then
  pass "certificate credential (private_key_jwt, PS256) gets a token"
else
  fail "certificate credential (private_key_jwt, PS256) gets a token" "$resp"
fi

if [[ "$(wc -l <"$OIDC_LOG")" == 5 ]] && ! grep -qF "$CLIENT_SECRET" "$OIDC_LOG" "$OIDC_STDOUT"; then
  pass "token log has one line per token request (5) and no secret"
else
  fail "token log has one line per token request (5) and no secret" "$(cat "$OIDC_LOG")"
fi

# ---------------------------------------------------------------- submission

MSG_ID="smoke-$RANDOM$RANDOM@example.test"
make_message "$DIR/msg.eml" "$MAILBOX" "$MSG_ID"
if send_mail "$SMTP_PORT" "$MAILBOX" "$TOKEN" "$DIR/msg.eml"; then
  pass "STARTTLS + AUTH XOAUTH2 + send accepted ($(grep -o '^< 250 2.0.0 Ok: queued.*' "$SEND_LOG" | tr -d '\r' | cut -c3-))"
else
  fail "STARTTLS + AUTH XOAUTH2 + send accepted" "$(replies)"
fi

delivered=""
for _ in $(seq 1 100); do # delivery is asynchronous (queue manager -> virtual agent)
  delivered="$(grep -lsF "Message-ID: <$MSG_ID>" "$MAILDIR"/new/* | xargs -r grep -l '^Delivered-To: guest@example.test' || true)"
  [[ -n "$delivered" ]] && break
  sleep 0.1
done
if [[ -n "$delivered" ]]; then
  pass "message delivered to the Maildir (Delivered-To: guest@example.test)"
else
  fail "message delivered to the Maildir" "$(tail -n 5 "$POSTFIX_LOG")"
fi

make_message "$DIR/msg-cert.eml" "$MAILBOX" "smoke-cert-$RANDOM@example.test"
if [[ -n "$CERT_TOKEN" ]] && send_mail "$SMTP_PORT" "$MAILBOX" "$CERT_TOKEN" "$DIR/msg-cert.eml"; then
  pass "the certificate client's token sends too"
else
  fail "the certificate client's token sends too" "$(replies)"
fi

# Another app's token (valid, but for other@example.test) presented for $MAILBOX. curl 7.88 gives
# up after the server's "334 <base64 JSON>" challenge without sending the empty line that would
# produce the final 535, so also speak the dialogue by hand to see the 535 itself.
OTHER_TOKEN="$(get_token "$OTHER_CLIENT_ID" "$OTHER_CLIENT_SECRET" | head -n -1 | json_field access_token)"
rc=0
send_mail "$SMTP_PORT" "$MAILBOX" "$OTHER_TOKEN" "$DIR/msg.eml" || rc=$?
IR="$(printf 'user=%s\001auth=Bearer %s\001\001' "$MAILBOX" "$OTHER_TOKEN" | base64 -w0)"
dialogue="$(printf 'EHLO smoke\r\nAUTH XOAUTH2 %s\r\n\r\nQUIT\r\n' "$IR" |
  timeout 20 openssl s_client -starttls smtp -connect "127.0.0.1:$SMTP_PORT" -CAfile "$CA_FILE" \
    -verify_return_error -quiet 2>/dev/null | tr -d '\r' || true)"
if [[ $rc == 67 ]] && grep -q '^334 ' <<<"$dialogue" && grep -q '^535 ' <<<"$dialogue"; then
  pass "other mailbox's token -> 334 challenge, then $(grep '^535 ' <<<"$dialogue") (curl: exit 67 login denied)"
else
  fail "other mailbox's token -> 535" "curl exit $rc; $(replies)"$'\n'"$dialogue"
fi

make_message "$DIR/msg-other.eml" "other@example.test" "smoke-from-$RANDOM@example.test"
rc=0
send_mail "$SMTP_PORT" other@example.test "$TOKEN" "$DIR/msg-other.eml" || rc=$?
if [[ $rc != 0 ]] && grep -qE '^< 55[03] ' "$SEND_LOG"; then
  pass "From another mailbox -> $(grep -oE '^< 55[03] .*' "$SEND_LOG" | tr -d '\r' | cut -c3-)"
else
  fail "From another mailbox -> 553/550" "curl exit $rc; $(replies)"
fi

# ---------------------------------------------------------------- the mailbox pool

# send_as_mailbox MAILBOX FROM TOKEN: submit as XOAUTH2 user MAILBOX with envelope sender FROM.
send_as_mailbox() {
  make_message "$DIR/msg-pool.eml" "$2" "smoke-pool-$RANDOM$RANDOM@example.test"
  send_mail "$SMTP_PORT" "$2" "$3" "$DIR/msg-pool.eml" "$CA_FILE" "$1"
}
POOL_A="${POOL_MAILBOXES%%,*}"
POOL_B="$(cut -d, -f2 <<<"$POOL_MAILBOXES")"
if [[ -n "$POOL_A" && "$POOL_B" != "$POOL_A" ]] && send_as_mailbox "$POOL_A" "$POOL_A" "$TOKEN"; then
  pass "a pool mailbox granted to the app ($POOL_A) is the XOAUTH2 user and sender with the app's token"
else
  fail "a pool mailbox granted to the app sends with the app's token" "POOL_MAILBOXES=$POOL_MAILBOXES; $(replies)"
fi
rc=0
send_as_mailbox "$POOL_A" "$POOL_A" "$OTHER_TOKEN" || rc=$?
if [[ $rc == 67 ]]; then
  pass "the other app's token for $POOL_A (not granted to it) -> login denied"
else
  fail "the other app's token for $POOL_A -> login denied" "curl exit $rc; $(replies)"
fi
bash "$TESTBED" grant "$DIR" "$POOL_B" off
rc=0
send_as_mailbox "$POOL_B" "$POOL_B" "$TOKEN" || rc=$?
bash "$TESTBED" grant "$DIR" "$POOL_B" on
if [[ $rc == 67 ]] && send_as_mailbox "$POOL_B" "$POOL_B" "$TOKEN"; then
  pass "grant $POOL_B off -> login denied (Remove-MailboxPermission); on -> it sends again"
else
  fail "grant off -> login denied; on -> sends" "curl exit $rc; $(replies)"
fi
rc=0
send_as_mailbox "$POOL_A" "sendas-$RANDOM@example.test" "$TOKEN" || rc=$?
bash "$TESTBED" send-as "$DIR" smoke-alias@example.test "$POOL_A" on
if [[ $rc != 0 ]] && send_as_mailbox "$POOL_A" smoke-alias@example.test "$TOKEN"; then
  pass "$POOL_A sends as an address it was given Send As on, and not as another"
else
  fail "Send As for a pool mailbox" "curl exit $rc; $(replies)"
fi
bash "$TESTBED" quota-fault-mailbox "$DIR" "$POOL_B" on
rc=0
send_as_mailbox "$POOL_B" "$POOL_B" "$TOKEN" || rc=$?
quota_reply="$(grep -oE '^< 554 5\.2\.0 .*' "$SEND_LOG" | tr -d '\r' | cut -c3- || true)"
if [[ $rc != 0 && -n "$quota_reply" ]] && send_as_mailbox "$POOL_A" "$POOL_A" "$TOKEN"; then
  bash "$TESTBED" quota-fault-mailbox "$DIR" "$POOL_B" off
  if send_as_mailbox "$POOL_B" "$POOL_B" "$TOKEN"; then
    pass "quota-fault-mailbox $POOL_B on -> $quota_reply for it alone ($POOL_A sends); off -> it sends"
  else
    fail "quota-fault-mailbox off -> the mailbox sends again" "$(replies)"
  fi
else
  fail "quota-fault-mailbox on -> 554 5.2.0 for that mailbox only" "curl exit $rc; $(replies)"
fi

rc=0
curl -sS -v --max-time 10 --url "smtp://127.0.0.1:$SMTP_PORT" --ssl-reqd --cacert "$CA_FILE" \
  --mail-from "$MAILBOX" --mail-rcpt guest@example.test -T "$DIR/msg.eml" >"$SEND_LOG" 2>&1 || rc=$?
if [[ $rc != 0 ]] && grep -q '^< 530 5.7.57' "$SEND_LOG"; then
  pass "MAIL FROM without AUTH -> 530 5.7.57"
else
  fail "MAIL FROM without AUTH -> 530 5.7.57" "curl exit $rc; $(replies)"
fi

rc=0
send_mail "$SMTP_UNTRUSTED_PORT" "$MAILBOX" "$TOKEN" "$DIR/msg.eml" || rc=$?
if [[ $rc == 60 ]]; then
  pass "untrusted chain on port $SMTP_UNTRUSTED_PORT -> curl exit 60 ($(grep -o 'SSL certificate problem: .*' "$SEND_LOG" | head -n 1))"
else
  fail "untrusted chain -> certificate verification failure" "curl exit $rc; $(replies)"
fi

# The plaintext listener (SMTP_PLAIN_PORT: for measuring the MTA alone, bench/delivery.sh):
# no STARTTLS or AUTH offered, mail from loopback accepted and delivered to the same Maildir.
PLAIN_ID="smoke-plain-$RANDOM$RANDOM@example.test"
make_message "$DIR/msg-plain.eml" "$MAILBOX" "$PLAIN_ID"
rc=0
curl -sS -v --max-time 10 --url "smtp://127.0.0.1:${SMTP_PLAIN_PORT:-0}" --mail-from "$MAILBOX" \
  --mail-rcpt plain@example.test -T "$DIR/msg-plain.eml" >"$SEND_LOG" 2>&1 || rc=$?
delivered=""
if [[ $rc == 0 ]]; then
  for _ in $(seq 1 100); do
    delivered="$(grep -lsF "Message-ID: <$PLAIN_ID>" "$MAILDIR"/new/* | xargs -r grep -l '^Delivered-To: plain@example.test' || true)"
    [[ -n "$delivered" ]] && break
    sleep 0.1
  done
fi
if [[ -n "$delivered" ]] && ! grep -qE '^< 250-(STARTTLS|AUTH)' "$SEND_LOG"; then
  pass "plaintext listener on port $SMTP_PLAIN_PORT: no STARTTLS/AUTH offered, loopback mail delivered"
else
  fail "plaintext listener on port ${SMTP_PLAIN_PORT:-(none)} delivers without TLS/AUTH" "curl exit $rc; $(replies)"
fi

# ---------------------------------------------------------------- lifecycle

sink="$(bash "$TESTBED" sink "$DIR" 0 -Q MAIL)"
sink_port="${sink%% *}"
rc=0
curl -sS -v --max-time 10 --url "smtp://127.0.0.1:$sink_port" --mail-from "$MAILBOX" \
  --mail-rcpt guest@example.test -T "$DIR/msg.eml" >"$SEND_LOG" 2>&1 || rc=$?
if [[ $rc != 0 ]] && grep -q '^< 421' "$SEND_LOG"; then
  pass "smtp-sink fault injection (-Q MAIL -> 421) on port $sink_port"
else
  fail "smtp-sink fault injection (-Q MAIL -> 421)" "curl exit $rc; $(replies)"
fi

pids=("$OIDC_PID" "$DOVECOT_PID" "$POSTFIX_PID" "${sink#* }")
bash "$TESTBED" stop "$DIR"
alive=""
for pid in "${pids[@]}"; do
  # A zombie awaiting its reaper (pid 1 here reaps late) is not running: look at the state.
  state="$(awk '{ print $3 }' "/proc/$pid/stat" 2>/dev/null || true)"
  if [[ -n "$state" && "$state" != Z ]]; then alive+=" $pid($state)"; fi
done
if [[ -z "$alive" ]] && ! bash "$TESTBED" status "$DIR" >/dev/null; then
  pass "stop ends every process it started"
else
  fail "stop ends every process it started" "still running:$alive"
fi

FINISHED=1
if [[ $FAILED == 0 ]]; then
  echo "smoke test: all checks passed"
else
  echo "smoke test: FAILED"
fi
exit $FAILED
