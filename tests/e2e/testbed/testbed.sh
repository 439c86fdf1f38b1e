#!/usr/bin/env bash
# The Exchange-like test environment for mailroom, on loopback (see README.md beside this file and
# /work/shared/reference/testbed.md for the recipe it follows).
#
#   testbed.sh start  DIR            generate certificates and configs in DIR, start everything, wait
#                                    until every service answers, write DIR/testbed.env
#   testbed.sh stop   DIR            stop whatever start (or sink) started in DIR, even half-started
#   testbed.sh status DIR            say what is running; exit 0 only if all of it is
#   testbed.sh svc-stop  DIR oidc|dovecot|postfix|graph   stop one service (outage tests)
#   testbed.sh svc-start DIR oidc|dovecot|postfix|graph   start it again with the same config and port
#   testbed.sh sink   DIR PORT [smtp-sink options...]
#                                    start Postfix's smtp-sink (fault injection, no TLS) on
#                                    127.0.0.1:PORT (0 = pick a free one); prints "PORT PID"
#   testbed.sh token-count DIR       number of token-endpoint requests so far
#   testbed.sh quota-fault DIR on|off
#                                    whether quota[+-.]*@ recipients get Exchange's 554 5.2.0 (on
#                                    at start; off: "the cause was fixed", they are delivered)
#   testbed.sh quota-fault-mailbox DIR MAILBOX on|off
#                                    on: everything MAILBOX (the SASL login) submits gets Exchange's
#                                    554 5.2.0 SubmissionQuotaExceeded (at RCPT TO, like quota-fault),
#                                    the mailbox's daily quota being spent; off (the state at start):
#                                    it sends again. Other mailboxes are not affected. Applies to
#                                    SMTP sessions opened afterwards (Exchange: at once).
#   testbed.sh grant DIR MAILBOX on|off [CLIENT_ID]
#                                    Add-MailboxPermission / Remove-MailboxPermission -AccessRights
#                                    FullAccess for an app (default: CLIENT_ID of testbed.env): on,
#                                    its tokens may name MAILBOX as the XOAUTH2 user, which may send
#                                    as itself; off: 535 for that mailbox (next AUTH on)
#   testbed.sh send-as DIR ADDRESS MAILBOX on|off
#                                    Add-RecipientPermission -AccessRights SendAs: MAILBOX (its SASL
#                                    login) may use ADDRESS (or @domain) as envelope sender
#   testbed.sh oidc-config DIR [CLIENT_SECRET=V] [TOKEN_TTL=SECONDS] [TOKEN_ENDPOINT=down|up]
#                                    CLIENT_SECRET: the tenant rotates the good app's secret (the
#                                    old one is refused from the next request on; issued tokens
#                                    stay valid). TOKEN_TTL: restart the token server issuing
#                                    tokens of that lifetime (same port; issued tokens are lost).
#                                    TOKEN_ENDPOINT=down: Entra's outage answer (503, AADSTS90033)
#                                    to token requests until up (introspection keeps working)
#   testbed.sh smtp-auth DIR on|off [MAILBOX]
#                                    off: SMTP AUTH is disabled for MAILBOX (default: MAILBOX of
#                                    testbed.env), as Set-CASMailbox -SmtpClientAuthenticationDisabled
#                                    $true does in Exchange Online: its submissions get Exchange's
#                                    "535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication
#                                    is disabled for the Mailbox..." (Postfix answers it to MAIL FROM
#                                    after the XOAUTH2 exchange: its failed-AUTH reply is fixed as
#                                    "535 5.7.8 Error: authentication failed: ..."). on (the state at
#                                    start): submissions go through again. Graph is not affected.
#                                    Applies to SMTP sessions opened afterwards.
#   testbed.sh submission DIR on|off
#                                    off: the trusted submission listener (SMTP_PORT) is taken out of
#                                    the running Postfix (connection refused: the SMTP endpoint is
#                                    unreachable) while the plaintext listener, and so the Graph
#                                    endpoint's delivery, keeps working; on: it listens again
#   testbed.sh postconf DIR NAME=VALUE...
#                                    change main.cf settings of the running Postfix and reload it
#                                    (e.g. a policy service that counts what the MTA accepts)
#   testbed.sh proxy  DIR allow|deny|auth|tls [PORT]
#                                    start tinyproxy (an HTTP proxy doing CONNECT) on 127.0.0.1:PORT
#                                    (0 or none = a free one): allow = CONNECT to any port; deny =
#                                    CONNECT only to port 443, so the testbed's SMTP and token ports
#                                    get 403; auth = any port after Basic authentication, with the
#                                    credentials in DIR/proxy/PORT.credentials ("user:password",
#                                    mode 0600); tls = an https:// proxy: stunnel on PORT with the
#                                    trusted server certificate, in front of an allowing tinyproxy.
#                                    Prints "PORT PID". DIR/proxy/PORT.log has a line
#                                    "Request (file descriptor N): CONNECT HOST:PORT HTTP/1.1" for
#                                    every CONNECT it was asked for.
#
# DIR must be short (unix socket paths are limited to 108 bytes: use `mktemp -d /tmp/mr.XXXXXX`)
# and traversable by the postfix user; start makes it mode 755. Root is required (Postfix).
#
# Tunables (environment of `start`): TESTBED_TOKEN_TTL (3600 s), TESTBED_AUTH_FAILURE_DELAY
# (Dovecot's delay before answering a failed AUTH; 0 s here, Dovecot's default is 2 s),
# TESTBED_WAIT (seconds to wait for each service, 20), TESTBED_POOL_MAILBOXES (the mailboxes granted
# to the good app besides MAILBOX: comma-separated, default alerts@, guests@, pool1@ and pool2@
# example.test; "none" for none).
# Opt-in, for peers on other network hosts (e.g. network namespaces, tests/e2e/multihost):
# TESTBED_LISTEN_ADDRESS=ADDR (an IPv4 address of this host) makes the submission listeners, the
# plaintext listener and the token server listen on ADDR too (the token server over HTTPS there,
# same port, with the trusted server certificate) and puts IP:ADDR in the server certificates;
# TESTBED_LISTEN_NAME=NAME adds DNS:NAME to them (the env file's LISTEN_* keys then use NAME);
# TESTBED_LISTEN_NETWORK=CIDR lets clients from that network use the plaintext listener.
# Everything on 127.0.0.1 stays as it is.

set -Eeuo pipefail

# The real location of this script: under Bazel it is reached through a runfiles symlink, and
# node resolves node_modules from the real path of oidc_server.js, i.e. beside the source files.
HERE="$(dirname "$(readlink -f "${BASH_SOURCE[0]}")")"

MAILBOX_DOMAIN=example.test
# The recipient rule that answers as Exchange does when the mailbox's daily quota is exceeded.
QUOTA_FAULT_RULE='/^quota([+.-][^@]*)?@/     554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception (testbed)'
# Exchange's answer to a mailbox (or tenant) with SMTP AUTH disabled (smtp-auth off).
SMTP_AUTH_DISABLED_REPLY='535 5.7.139 Authentication unsuccessful, SmtpClientAuthentication is disabled for the Mailbox. Visit https://aka.ms/smtp_auth_disabled for more information. (testbed)'
WAIT_SECONDS="${TESTBED_WAIT:-20}"
DEFAULT_POOL_MAILBOXES="alerts@$MAILBOX_DOMAIN,guests@$MAILBOX_DOMAIN,pool1@$MAILBOX_DOMAIN,pool2@$MAILBOX_DOMAIN"
# Exchange's answer when a mailbox's daily sending quota is spent (quota-fault-mailbox on).
QUOTA_EXCEEDED_REPLY='554 5.2.0 STOREDRV.Submission.Exception:SubmissionQuotaExceededException; Failed to process message due to a permanent exception (testbed)'

log() { printf 'testbed: %s\n' "$*" >&2; }

usage() {
  sed -n '2,/^$/s/^# \{0,1\}//p' "${BASH_SOURCE[0]}" >&2
  exit 2
}

# ------------------------------------------------------------------------------------------------
# helpers

# Print the tail of each log that exists, for "fails loudly".
show_logs() {
  local f
  for f in "$@"; do
    if [[ -s "$f" ]]; then
      printf '\n----- %s (last 40 lines) -----\n' "$f" >&2
      tail -n 40 "$f" >&2
    fi
  done
}

# wait_until DESCRIPTION COMMAND...: poll every 0.1 s until COMMAND succeeds or WAIT_SECONDS
# of wall time pass (a deadline, not a count: one probe can itself take seconds). COMMAND
# returns 2 to say "the process has died": no point waiting any longer.
wait_until() {
  local what="$1" deadline=$((SECONDS + WAIT_SECONDS)) rc
  shift
  while ((SECONDS < deadline)); do
    if "$@" 2>/dev/null; then return 0; else rc=$?; fi
    if ((rc == 2)); then
      log "gave up waiting for ${what}: its process has exited"
      return 1
    fi
    sleep 0.1
  done
  log "timed out after ${WAIT_SECONDS}s waiting for ${what}"
  return 1
}

tcp_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# A port nobody listens on, in FREE_PORT (not echoed: a $(...) subshell would lose PICKED_PORTS).
# Chosen below Linux's ephemeral range (32768+) so that the kernel never hands it out as the
# source port of some outgoing connection meanwhile.
declare -a PICKED_PORTS=()
free_port() {
  local port i
  for ((i = 0; i < 200; i++)); do
    port=$((20000 + RANDOM % 12000))
    [[ " ${PICKED_PORTS[*]-} " == *" $port "* ]] && continue
    if [[ -z "$(ss -Htln "sport = :$port")" ]]; then
      PICKED_PORTS+=("$port")
      FREE_PORT="$port"
      return 0
    fi
  done
  log "no free port found"
  return 1
}

# running PID: the process exists and is not a zombie. Daemons started here end up as children
# of pid 1, which may reap them late; `kill -0` alone would call a zombie alive.
running() {
  local state
  state="$(awk '{ print $3 }' "/proc/$1/stat" 2>/dev/null)" || return 1
  [[ -n "$state" && "$state" != Z ]]
}

# wait_gone TENTHS PID...: waits up to TENTHS tenths of a second until none of the PIDs runs.
wait_gone() {
  local tenths="$1" i pid alive
  shift
  for ((i = 0; i < tenths; i++)); do
    alive=0
    for pid in "$@"; do
      if running "$pid"; then alive=1; fi
    done
    ((alive)) || return 0
    sleep 0.1
  done
}

# pid_alive PIDFILE [EXPECTED-EXE-SUBSTRING]: the pid in the file is running (and is what we
# started, not a recycled pid: checked against /proc/PID/exe when a name is given).
pid_alive() {
  local pidfile="$1" expect="${2:-}" pid exe
  [[ -s "$pidfile" ]] || return 1
  pid="$(tr -dc 0-9 <"$pidfile")"
  [[ -n "$pid" ]] && running "$pid" || return 1
  if [[ -n "$expect" ]]; then
    exe="$(readlink "/proc/$pid/exe" 2>/dev/null || true)"
    [[ "$exe" == *"$expect"* ]] || return 1
  fi
}

# stop_pidfile PIDFILE EXE-SUBSTRING: TERM, wait up to 5 s, then KILL. Quiet if not running.
stop_pidfile() {
  local pidfile="$1" expect="$2" pid i
  pid_alive "$pidfile" "$expect" || { rm -f "$pidfile"; return 0; }
  pid="$(tr -dc 0-9 <"$pidfile")"
  kill -TERM "$pid" 2>/dev/null || true
  for ((i = 0; i < 50; i++)); do
    running "$pid" || break
    sleep 0.1
  done
  if running "$pid"; then
    log "pid $pid did not stop on TERM; killing it"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$pidfile"
}

# Values go into a KEY=value file that both shells and the C++ tests read: keep them plain.
env_line() {
  [[ "$2" =~ ^[A-Za-z0-9_./:@+=,-]*$ ]] || { log "unsafe value for $1"; return 1; }
  printf '%s=%s\n' "$1" "$2"
}

set_paths() {
  DIR="$(readlink -f "$1")"
  PKI="$DIR/pki"
  OIDC="$DIR/oidc"
  GRAPH="$DIR/graph" # the Microsoft Graph-shaped sendMail endpoint (graph_server.js)
  DC="$DIR/dovecot"
  DC_RUN="$DC/run" # Dovecot's base_dir: its sockets live here
  PF="$DIR/postfix"
  PF_ETC="$PF/etc"
  MAIL="$DIR/mail"
  MAILDIR="$MAIL/inbox" # every recipient's mail lands in this one Maildir (static:inbox/)
  ENV_FILE="$DIR/testbed.env"
  CONF_FILE="$DIR/.testbed.conf" # internal: ports and secrets, for svc-start and the env file
}

# Defines TENANT, CLIENT_ID, ..., SMTP_PORT, SMTP_UNTRUSTED_PORT, SMTP_PLAIN_PORT, OIDC_PORT
# (see make_conf).
# shellcheck disable=SC2153
load_conf() {
  [[ -s "$CONF_FILE" ]] || { log "$DIR has no testbed (run: testbed.sh start $DIR)"; exit 1; }
  # shellcheck disable=SC1090
  source "$CONF_FILE"
}

# ------------------------------------------------------------------------------------------------
# generation (start only)

# Every step is chained with && on purpose: this runs in a subshell under `||`, where bash
# ignores set -e.
make_pki() {
  mkdir -p "$PKI"
  (
    cd "$PKI" || exit 1
    # root CA + server certificate (SAN localhost and 127.0.0.1); $1 = file prefix, $2 = CA name
    issue() {
      openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout "$1-ca.key" -out "$1-ca.pem" \
        -subj "/O=mailroom testbed/CN=$2" \
        -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" &&
        openssl req -newkey rsa:2048 -nodes -keyout "$1-server.key" -out "$1-server.csr" \
          -subj "/O=mailroom testbed/CN=localhost" &&
        printf 'subjectAltName=DNS:localhost,IP:127.0.0.1%s\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' \
          "${LISTEN_NAME:+,DNS:$LISTEN_NAME}${LISTEN_ADDRESS:+,IP:$LISTEN_ADDRESS}" >"$1-server.ext" &&
        openssl x509 -req -in "$1-server.csr" -CA "$1-ca.pem" -CAkey "$1-ca.key" -CAcreateserial \
          -days 30 -extfile "$1-server.ext" -out "$1-server.pem"
    }
    # RSA key generation dominates start-up time: run the three in parallel.
    issue trusted "mailroom testbed root CA" &
    p1=$!
    # A second root nobody is told to trust: the PKIX / "unknown ca" case.
    issue untrusted "untrusted testbed root CA" &
    p2=$!
    # The certificate credential of the private_key_jwt client (Entra signs with RSA: PS256/RS256).
    openssl req -x509 -newkey rsa:2048 -nodes -days 30 -keyout cert-client.key -out cert-client.pem \
      -subj "/O=mailroom testbed/CN=mailroom certificate client" &
    p3=$!
    wait $p1 && wait $p2 && wait $p3 && rm -f ./*.csr ./*.ext ./*.srl && chmod 600 ./*.key
  ) 2>"$DIR/pki.log" || { show_logs "$DIR/pki.log"; return 1; }
}

make_conf() {
  local smtp_port smtp_untrusted_port smtp_plain_port
  free_port && smtp_port=$FREE_PORT
  free_port && smtp_untrusted_port=$FREE_PORT
  free_port && smtp_plain_port=$FREE_PORT
  {
    env_line TENANT "$(cat /proc/sys/kernel/random/uuid)"
    env_line CLIENT_ID "$(cat /proc/sys/kernel/random/uuid)"
    env_line CLIENT_SECRET "$(openssl rand -hex 20)"
    env_line MAILBOX "noreply@$MAILBOX_DOMAIN"
    env_line OTHER_CLIENT_ID "$(cat /proc/sys/kernel/random/uuid)"
    env_line OTHER_CLIENT_SECRET "$(openssl rand -hex 20)"
    env_line OTHER_MAILBOX "other@$MAILBOX_DOMAIN"
    local pool="${TESTBED_POOL_MAILBOXES-$DEFAULT_POOL_MAILBOXES}"
    [[ "$pool" == none ]] && pool=""
    env_line POOL_MAILBOXES "$pool"
    env_line CERT_CLIENT_ID "$(cat /proc/sys/kernel/random/uuid)"
    env_line INTROSPECT_CLIENT_ID dovecot-introspection
    env_line INTROSPECT_CLIENT_SECRET "$(openssl rand -hex 20)"
    env_line TOKEN_TTL "${TESTBED_TOKEN_TTL:-3600}"
    env_line AUTH_FAILURE_DELAY "${TESTBED_AUTH_FAILURE_DELAY:-0}"
    env_line SMTP_PORT "$smtp_port"
    env_line SMTP_UNTRUSTED_PORT "$smtp_untrusted_port"
    env_line SMTP_PLAIN_PORT "$smtp_plain_port"
    env_line OIDC_PORT 0 # chosen by the server at first start, then kept for restarts
    env_line GRAPH_PORT 0 # likewise
    # Opt-in second address (see the header); empty: loopback only, as before.
    env_line LISTEN_ADDRESS "${TESTBED_LISTEN_ADDRESS:-}"
    env_line LISTEN_NAME "${TESTBED_LISTEN_NAME:-}"
    env_line LISTEN_NETWORK "${TESTBED_LISTEN_NETWORK:-}"
  } >"$CONF_FILE"
  local pool="${TESTBED_POOL_MAILBOXES-$DEFAULT_POOL_MAILBOXES}"
  if [[ "$pool" != none && -n "$pool" && ! "$pool" =~ ^[^[:space:]@,]+@[^[:space:]@,]+(,[^[:space:]@,]+@[^[:space:]@,]+)*$ ]]; then
    log "TESTBED_POOL_MAILBOXES must be comma-separated mailbox addresses (or none)"
    return 1
  fi
  if [[ -n "${TESTBED_LISTEN_ADDRESS:-}" && ! "$TESTBED_LISTEN_ADDRESS" =~ ^[0-9]+\.[0-9]+\.[0-9]+\.[0-9]+$ ]]; then
    log "TESTBED_LISTEN_ADDRESS must be an IPv4 address"
    return 1
  fi
  chmod 600 "$CONF_FILE"
}

# shellcheck disable=SC2153 # MAILBOX etc. come from load_conf
write_dovecot_conf() {
  mkdir -p "$DC_RUN" "$DC/state"
  chmod 755 "$DC" "$DC_RUN"
  # Exchange's mailbox permissions (Add-MailboxPermission ... FullAccess for the app's service
  # principal), one "client_id mailbox" a line: the good app (and its certificate credential)
  # may use MAILBOX and the pool mailboxes, the other app only OTHER_MAILBOX.
  local mailbox
  {
    for mailbox in "$MAILBOX" ${POOL_MAILBOXES//,/ }; do
      printf '%s %s\n%s %s\n' "$CLIENT_ID" "$mailbox" "$CERT_CLIENT_ID" "$mailbox"
    done
    printf '%s %s\n' "$OTHER_CLIENT_ID" "$OTHER_MAILBOX"
  } >"$DC/mailbox_grants"
  # The passdb (mailbox_grant_check.sh) asks the token server whether the bearer token is active
  # and whose app it is, then whether that app was granted the `user=` mailbox (else: 535). Run
  # by Dovecot's auth process (user dovecot) through this wrapper, which holds the introspection
  # client's secret: readable by root and group dovecot only.
  cat >"$DC/grant_check" <<EOF
#!/bin/sh
export INTROSPECTION_URL='http://127.0.0.1:${OIDC_PORT}/introspect'
export INTROSPECT_CLIENT_ID='${INTROSPECT_CLIENT_ID}' INTROSPECT_CLIENT_SECRET='${INTROSPECT_CLIENT_SECRET}'
export GRANTS_FILE='$DC/mailbox_grants'
exec '$DC/mailbox_grant_check.sh' "\$@"
EOF
  # A copy beside it: Dovecot's auth process (user dovecot) may not reach the checkout (a clone
  # in a 0700 directory, e.g. mktemp -d).
  cp "$HERE/mailbox_grant_check.sh" "$DC/mailbox_grant_check.sh"
  chgrp dovecot "$DC/grant_check" "$DC/mailbox_grants" "$DC/mailbox_grant_check.sh"
  chmod 750 "$DC/grant_check" "$DC/mailbox_grant_check.sh"
  chmod 644 "$DC/mailbox_grants"
  cat >"$DC/dovecot.conf" <<EOF
# Private Dovecot instance: only its auth service, used by Postfix for SASL. No mail protocols.
instance_name = mailroom-testbed-$(basename "$DIR")
protocols =
base_dir = $DC_RUN
state_dir = $DC/state
log_path = $DC/dovecot.log
info_log_path = $DC/dovecot.log
ssl = no
# Exchange advertises XOAUTH2 only; advertising OAUTHBEARER too makes curl 7.88 pick that.
auth_mechanisms = xoauth2
auth_verbose = yes
auth_failure_delay = ${AUTH_FAILURE_DELAY}
# XOAUTH2 hands the bearer token to the passdb as the password of user=.
passdb {
  driver = checkpassword
  mechanisms = xoauth2
  args = $DC/grant_check
}
userdb {
  driver = static
  args = uid=mail gid=mail home=$MAIL/%u
}
service auth {
  unix_listener auth-postfix {
    mode = 0666
  }
}
EOF
}

# shellcheck disable=SC2153 # SMTP_PORT etc. come from load_conf
write_postfix_conf() {
  mkdir -p "$PF_ETC" "$PF/queue" "$PF/data" "$MAILDIR"
  chown -R 8:8 "$MAIL" # the virtual delivery agent writes as uid/gid 8 (mail)
  chmod 755 "$PF" "$PF_ETC"

  cat >"$PF_ETC/main.cf" <<EOF
# Private Postfix instance: Exchange-like submission on loopback, delivery to a local Maildir.
compatibility_level = 3.6
queue_directory = $PF/queue
data_directory = $PF/data
# Without maillog_file_prefixes Postfix refuses maillog_file and exits without a word.
maillog_file = $PF/postfix.log
maillog_file_prefixes = $DIR
inet_interfaces = 127.0.0.1${LISTEN_ADDRESS:+, $LISTEN_ADDRESS}
inet_protocols = ipv4
myhostname = smtp.testbed.localhost
mydestination =
alias_maps =
alias_database =
relayhost =
biff = no
append_dot_mydomain = no
smtpd_banner = \$myhostname ESMTP mailroom testbed
# Exchange Online offers neither VRFY nor ETRN.
disable_vrfy_command = yes
smtpd_discard_ehlo_keywords = silent-discard, etrn
# Delivery: nothing leaves this machine. Every recipient, whatever its domain (guests have
# real-world addresses), goes to one Maildir; the virtual agent adds "Delivered-To: <recipient>",
# which is how tests find a recipient's messages.
virtual_mailbox_domains = static:all
default_transport = error:5.7.1 the testbed delivers nothing outside
virtual_mailbox_base = $MAIL
virtual_mailbox_maps = static:inbox/
virtual_minimum_uid = 8
virtual_uid_maps = static:8
virtual_gid_maps = static:8
# Exchange Online advertises SIZE 157286400.
message_size_limit = 157286400
virtual_mailbox_limit = 0
mailbox_size_limit = 0

# Submission, as smtp.office365.com:587: STARTTLS required before anything else, AUTH only
# after TLS, via Dovecot (which offers XOAUTH2 only).
smtpd_tls_security_level = encrypt
smtpd_tls_auth_only = yes
smtpd_tls_loglevel = 1
smtpd_tls_received_header = yes
smtpd_sasl_auth_enable = yes
smtpd_sasl_type = dovecot
smtpd_sasl_path = $DC_RUN/auth-postfix
# Reject at the command that is wrong (MAIL FROM for Send-As), as Exchange does.
smtpd_delay_reject = no
# Send-As: a mailbox may be the sender as itself and as the addresses it was given Send As on
# (testbed.sh send-as); any other gets 553 5.7.1 ... not owned by user (Exchange: 550 5.7.60).
# Unauthenticated MAIL FROM gets Exchange's 530 5.7.57.
smtpd_sender_login_maps = texthash:$PF_ETC/sender_login
# SMTP AUTH disabled for a mailbox (testbed.sh smtp-auth): its SASL login is refused at MAIL FROM
# with Exchange's 535 5.7.139.
smtpd_sender_restrictions = check_sasl_access texthash:$PF_ETC/smtp_auth_disabled, reject_authenticated_sender_login_mismatch, permit_sasl_authenticated, check_client_access static:{530 5.7.57 Client not authenticated to send mail}
smtpd_relay_restrictions = permit_sasl_authenticated, reject
# Fault injection by recipient name: reject[+-.]*@ -> 550, tempfail[+-.]*@ -> 451,
# quota[+-.]*@ -> Exchange's 554 5.2.0 (the mailbox's daily sending quota is exceeded); and
# the same 5.2.0 for every recipient of a mailbox (SASL login) whose quota is spent
# (testbed.sh quota-fault-mailbox).
smtpd_recipient_restrictions = check_sasl_access texthash:$PF_ETC/quota_exceeded_mailboxes, check_recipient_access regexp:$PF_ETC/recipient_access
EOF

  # A map, not static: — static: would let every sender through.
  local mailbox
  for mailbox in "$MAILBOX" "$OTHER_MAILBOX" ${POOL_MAILBOXES//,/ }; do
    printf '%s %s\n' "$mailbox" "$mailbox"
  done >"$PF_ETC/sender_login"

  : >"$PF_ETC/smtp_auth_disabled" # SMTP AUTH enabled for every mailbox at start
  : >"$PF_ETC/quota_exceeded_mailboxes" # and no mailbox's quota spent

  cat >"$PF_ETC/recipient_access" <<EOF
/^reject([+.-][^@]*)?@/    550 5.1.1 mailbox unavailable (testbed)
/^tempfail([+.-][^@]*)?@/  451 4.3.0 temporary failure, try again later (testbed)
$QUOTA_FAULT_RULE
EOF

  # Debian's master.cf with its internal services, minus chroot (our paths are outside any
  # chroot), and with the port-25 listener replaced by the two submission listeners and the
  # plaintext one.
  # The plaintext listener (SMTP_PLAIN_PORT) is for measuring the MTA itself (bench/delivery.sh
  # runs Postfix's smtp-source at it as the ceiling): no TLS, no AUTH, relay allowed from
  # loopback only; same delivery (the Maildir) and the same reject@/tempfail@ recipients.
  # It leaves the submission listeners exactly as they were. (Empty in a testbed directory
  # made before it existed: then there is none.)
  awk -v trusted="127.0.0.1:$SMTP_PORT" -v untrusted="127.0.0.1:$SMTP_UNTRUSTED_PORT" \
    -v plain="${SMTP_PLAIN_PORT:+127.0.0.1:$SMTP_PLAIN_PORT}" -v pki="$PKI" \
    -v also="${LISTEN_ADDRESS:-}" -v alsonet="${LISTEN_NETWORK:+,$LISTEN_NETWORK}" '
    function on(addr, hostport) { sub(/^[^:]*/, addr, hostport); return hostport }
    function listener(addr, name, prefix) {
      print addr " inet n - n - - smtpd"
      print "  -o syslog_name=postfix/" name
      print "  -o smtpd_tls_cert_file=" pki "/" prefix "-server.pem"
      print "  -o smtpd_tls_key_file=" pki "/" prefix "-server.key"
    }
    function plain_listener(addr) {
      print addr " inet n - n - - smtpd"
      print "  -o syslog_name=postfix/plain"
      print "  -o smtpd_tls_security_level=none"
      print "  -o smtpd_sasl_auth_enable=no"
      print "  -o mynetworks=127.0.0.0/8" alsonet
      print "  -o smtpd_sender_restrictions="
      print "  -o smtpd_relay_restrictions=permit_mynetworks,reject"
    }
    /^#/ || /^[ \t]*$/ { print; next }
    /^[ \t]/ { if (!skipping) print; next }          # continuation of the previous entry
    $1 == "smtp" && $2 == "inet" {
      listener(trusted, "submission", "trusted")
      listener(untrusted, "submission-untrusted", "untrusted")
      if (plain != "") plain_listener(plain)
      if (also != "") {                                # TESTBED_LISTEN_ADDRESS: the same there
        listener(on(also, trusted), "submission", "trusted")
        listener(on(also, untrusted), "submission-untrusted", "untrusted")
        if (plain != "") plain_listener(on(also, plain))
      }
      skipping = 1; next
    }
    { skipping = 0; $5 = "n"; print }
  ' /etc/postfix/master.cf >"$PF_ETC/master.cf"
}

# The pid in a pid file, or nothing (a service stopped for an outage test has none).
pid_of() { tr -dc 0-9 2>/dev/null <"$1" || true; }

write_env_file() {
  local token_base="http://127.0.0.1:$OIDC_PORT"
  {
    echo "# mailroom testbed in $DIR (written by testbed.sh start; KEY=value, no quoting)"
    env_line TESTBED_DIR "$DIR"
    env_line TOKEN_URL_BASE "$token_base"
    env_line TENANT "$TENANT"
    env_line TOKEN_URL "$token_base/$TENANT/oauth2/v2.0/token"
    env_line SCOPE "https://outlook.office365.com/.default"
    env_line CLIENT_ID "$CLIENT_ID"
    env_line CLIENT_SECRET "$CLIENT_SECRET"
    env_line MAILBOX "$MAILBOX"
    env_line OTHER_CLIENT_ID "$OTHER_CLIENT_ID"
    env_line OTHER_CLIENT_SECRET "$OTHER_CLIENT_SECRET"
    env_line OTHER_MAILBOX "$OTHER_MAILBOX"
    env_line POOL_MAILBOXES "${POOL_MAILBOXES:-}"
    env_line MAILBOX_GRANTS "$DC/mailbox_grants"
    env_line CERT_CLIENT_ID "$CERT_CLIENT_ID"
    env_line CERT_CLIENT_CERT "$PKI/cert-client.pem"
    env_line CERT_CLIENT_KEY "$PKI/cert-client.key"
    env_line TOKEN_TTL "$TOKEN_TTL"
    env_line SMTP_HOST 127.0.0.1
    env_line SMTP_PORT "$SMTP_PORT"
    env_line SMTP_UNTRUSTED_PORT "$SMTP_UNTRUSTED_PORT"
    env_line SMTP_PLAIN_PORT "${SMTP_PLAIN_PORT:-}"
    env_line CA_FILE "$PKI/trusted-ca.pem"
    env_line UNTRUSTED_CA_FILE "$PKI/untrusted-ca.pem"
    env_line MAILDIR "$MAILDIR"
    env_line OIDC_PORT "$OIDC_PORT"
    env_line OIDC_LOG "$OIDC/token.log"
    env_line OIDC_STDOUT "$OIDC/server.log"
    env_line OIDC_PID "$(pid_of "$OIDC/pid")"
    env_line DOVECOT_CONF "$DC/dovecot.conf"
    env_line DOVECOT_LOG "$DC/dovecot.log"
    env_line DOVECOT_PID "$(pid_of "$DC_RUN/master.pid")"
    env_line POSTFIX_CONFIG_DIR "$PF_ETC"
    env_line POSTFIX_LOG "$PF/postfix.log"
    env_line POSTFIX_PID "$(pid_of "$PF/queue/pid/master.pid")"
    env_line GRAPH_URL_BASE "https://127.0.0.1:$GRAPH_PORT"
    env_line GRAPH_SCOPE "https://graph.microsoft.com/.default"
    env_line GRAPH_LOG "$GRAPH/requests.log"
    env_line GRAPH_FAULT_FILE "$GRAPH/fault"
    env_line GRAPH_PID "$(pid_of "$GRAPH/pid")"
    if [[ -n "${LISTEN_ADDRESS:-}" ]]; then # TESTBED_LISTEN_ADDRESS: how other hosts reach it
      local remote="${LISTEN_NAME:-$LISTEN_ADDRESS}"
      env_line LISTEN_ADDRESS "$LISTEN_ADDRESS"
      env_line LISTEN_HOST "$remote"
      env_line LISTEN_TOKEN_URL_BASE "https://$remote:$OIDC_PORT"
      env_line LISTEN_TOKEN_URL "https://$remote:$OIDC_PORT/$TENANT/oauth2/v2.0/token"
    fi
  } >"$ENV_FILE.tmp"
  chmod 644 "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

# ------------------------------------------------------------------------------------------------
# services (each start waits until the service answers; each stop is quiet if it isn't running)

check_node_modules() {
  if [[ ! -d "$HERE/node_modules/oidc-provider" ]]; then
    log "node_modules is missing in $HERE"
    log "run:  (cd $HERE && npm ci)"
    return 1
  fi
}

start_oidc() {
  check_node_modules
  mkdir -p "$OIDC"
  pid_alive "$OIDC/pid" node && { log "oidc already running"; return 0; }
  rm -f "$OIDC/port"
  # Not setsid: if the test runner kills the caller's process group (a timeout), this goes too.
  OIDC_HOST=127.0.0.1 OIDC_PORT="$OIDC_PORT" OIDC_PORT_FILE="$OIDC/port" OIDC_TENANT="$TENANT" \
    OIDC_TLS_HOST="${LISTEN_ADDRESS:-}" OIDC_TLS_CERT="$PKI/trusted-server.pem" OIDC_TLS_KEY="$PKI/trusted-server.key" \
    OIDC_TOKEN_TTL="$TOKEN_TTL" OIDC_TOKEN_LOG="$OIDC/token.log" OIDC_CLIENT_SECRET_FILE="$OIDC/client_secret" OIDC_TOKEN_OUTAGE_FILE="$OIDC/token_outage" \
    OIDC_CLIENT_ID="$CLIENT_ID" OIDC_CLIENT_SECRET="$CLIENT_SECRET" OIDC_MAILBOX="$MAILBOX" \
    OIDC_OTHER_CLIENT_ID="$OTHER_CLIENT_ID" OIDC_OTHER_CLIENT_SECRET="$OTHER_CLIENT_SECRET" \
    OIDC_OTHER_MAILBOX="$OTHER_MAILBOX" \
    OIDC_INTROSPECT_CLIENT_ID="$INTROSPECT_CLIENT_ID" OIDC_INTROSPECT_CLIENT_SECRET="$INTROSPECT_CLIENT_SECRET" \
    OIDC_CERT_CLIENT_ID="$CERT_CLIENT_ID" OIDC_CERT_CLIENT_CERT="$PKI/cert-client.pem" \
    node "$HERE/oidc_server.js" </dev/null >>"$OIDC/server.log" 2>&1 &
  echo $! >"$OIDC/pid"
  oidc_ready() {
    pid_alive "$OIDC/pid" || return 2
    [[ -s "$OIDC/port" ]]
  }
  if ! wait_until "the token server" oidc_ready; then
    show_logs "$OIDC/server.log"
    return 1
  fi
  if [[ "$OIDC_PORT" == 0 ]]; then # first start: remember the port for restarts and Dovecot
    OIDC_PORT="$(tr -dc 0-9 <"$OIDC/port")"
    sed -i "s/^OIDC_PORT=.*/OIDC_PORT=$OIDC_PORT/" "$CONF_FILE"
  fi
  wait_until "the token server port $OIDC_PORT" tcp_open "$OIDC_PORT" || { show_logs "$OIDC/server.log"; return 1; }
}

stop_oidc() { stop_pidfile "$OIDC/pid" node; }

# The Graph-shaped endpoint: HTTPS with the trusted certificate, tokens checked by introspection
# at the token server (as Dovecot does), accepted mail handed to Postfix's plaintext listener.
start_graph() {
  mkdir -p "$GRAPH"
  pid_alive "$GRAPH/pid" node && { log "graph already running"; return 0; }
  rm -f "$GRAPH/port"
  GRAPH_HOST=127.0.0.1 GRAPH_PORT="$GRAPH_PORT" GRAPH_PORT_FILE="$GRAPH/port" \
    GRAPH_TLS_CERT="$PKI/trusted-server.pem" GRAPH_TLS_KEY="$PKI/trusted-server.key" \
    GRAPH_INTROSPECTION_URL="http://127.0.0.1:$OIDC_PORT/introspect" \
    GRAPH_INTROSPECT_CLIENT_ID="$INTROSPECT_CLIENT_ID" GRAPH_INTROSPECT_CLIENT_SECRET="$INTROSPECT_CLIENT_SECRET" \
    GRAPH_SMTP_PORT="$SMTP_PLAIN_PORT" GRAPH_MAILBOXES="$MAILBOX,$OTHER_MAILBOX" \
    GRAPH_CONCURRENCY="${TESTBED_GRAPH_CONCURRENCY:-4}" GRAPH_WINDOW_LIMIT="${TESTBED_GRAPH_WINDOW_LIMIT:-10000}" \
    GRAPH_DELAY_MS="${TESTBED_GRAPH_DELAY_MS:-0}" GRAPH_FAULT_FILE="$GRAPH/fault" GRAPH_LOG="$GRAPH/requests.log" \
    node "$HERE/graph_server.js" </dev/null >>"$GRAPH/server.log" 2>&1 &
  echo $! >"$GRAPH/pid"
  graph_ready() {
    pid_alive "$GRAPH/pid" || return 2
    [[ -s "$GRAPH/port" ]]
  }
  if ! wait_until "the Graph endpoint" graph_ready; then
    show_logs "$GRAPH/server.log"
    return 1
  fi
  if [[ "$GRAPH_PORT" == 0 ]]; then
    GRAPH_PORT="$(tr -dc 0-9 <"$GRAPH/port")"
    sed -i "s/^GRAPH_PORT=.*/GRAPH_PORT=$GRAPH_PORT/" "$CONF_FILE"
  fi
  wait_until "the Graph endpoint port $GRAPH_PORT" tcp_open "$GRAPH_PORT" || { show_logs "$GRAPH/server.log"; return 1; }
}

stop_graph() { stop_pidfile "$GRAPH/pid" node; }

start_dovecot() {
  pid_alive "$DC_RUN/master.pid" dovecot && { log "dovecot already running"; return 0; }
  # All output to the log: a daemon holding the caller's stdout would hang `$(testbed.sh ...)`.
  if ! dovecot -c "$DC/dovecot.conf" </dev/null >>"$DC/dovecot.log" 2>&1; then
    show_logs "$DC/dovecot.log"
    return 1
  fi
  # Dovecot's master creates and listens on the socket itself; once it exists, it accepts.
  dovecot_ready() { [[ -S "$DC_RUN/auth-postfix" ]] && pid_alive "$DC_RUN/master.pid" dovecot; }
  wait_until "Dovecot's auth socket" dovecot_ready || { show_logs "$DC/dovecot.log"; return 1; }
}

# Dovecot's master exits on TERM but leaves children that still have clients (auth, while a
# Postfix smtpd is connected to it) running: an outage must be a real one, so end them too.
stop_dovecot() {
  local children=() c
  if pid_alive "$DC_RUN/master.pid" dovecot; then
    mapfile -t children < <(pgrep -P "$(pid_of "$DC_RUN/master.pid")" || true)
  fi
  stop_pidfile "$DC_RUN/master.pid" dovecot
  for c in "${children[@]}"; do
    if running "$c" && [[ "$(readlink "/proc/$c/exe" 2>/dev/null)" == *dovecot* ]]; then
      kill -TERM "$c" 2>/dev/null || true
    fi
  done
  wait_gone 30 "${children[@]}"
}

# (Not `postfix status`: that writes "not running" lines into the mail log.)
postfix_running() { pid_alive "$PF/queue/pid/master.pid" /master; }

# The listener greets, offers STARTTLS, and after TLS (verified against our CA) offers
# AUTH XOAUTH2 — which Postfix only does once it has reached Dovecot.
# (Output captured first: `curl | grep -q` fails under pipefail when grep exits early.)
smtp_ready() {
  local port="$1" ca="$2" out
  postfix_running || return 2
  out="$(curl -sv --max-time 2 --ssl-reqd --cacert "$ca" "smtp://127.0.0.1:$port/" -X NOOP 2>&1)" || return 1
  [[ "$out" == *$'\n< 250-AUTH XOAUTH2'* ]]
}

# The plaintext listener greets and accepts a command without TLS (and offers neither STARTTLS
# nor AUTH, which is what makes it the MTA-only path).
plain_ready() {
  local out
  postfix_running || return 2
  out="$(curl -sv --max-time 2 "smtp://127.0.0.1:$1/" -X NOOP 2>&1)" || return 1
  [[ "$out" == *$'\n< 220 '* && "$out" != *STARTTLS* && "$out" != *'250-AUTH'* ]]
}

# The queue and data directories, with the owners and modes Postfix's own postfix-files lists.
# `postfix set-permissions` (the recipe's step) does this too, but it and the checks of
# `postfix start` fork about a thousand small processes: 2-3 s of a 4 s start-up here. With the
# directories right, the quick-start marker (what `postfix quick-stop` leaves behind) makes
# `postfix start` skip those checks.
make_postfix_dirs() {
  local files=/etc/postfix/postfix-files path owner group mode
  if [[ ! -r "$files" ]]; then # unusual layout: let Postfix do it, slowly
    postfix -c "$PF_ETC" set-permissions
    return
  fi
  while IFS=: read -r path type owner group mode _; do
    [[ "$type" == d && "$path" =~ ^\$(queue|data)_directory ]] || continue
    path="${path/\$queue_directory/$PF/queue}"
    path="${path/\$data_directory/$PF/data}"
    owner="${owner/\$mail_owner/postfix}"
    group="${group/\$setgid_group/postdrop}"
    mkdir -p "$path"
    if [[ "$group" == - ]]; then chown "$owner" "$path"; else chown "$owner:$group" "$path"; fi
    chmod "$mode" "$path"
  done <"$files"
  touch "$PF/queue/quick-start"
}

start_postfix() {
  if postfix_running; then log "postfix already running"; return 0; fi
  make_postfix_dirs >>"$PF/postfix-cmd.log" 2>&1 || { show_logs "$PF/postfix-cmd.log"; return 1; }
  if ! postfix -c "$PF_ETC" start </dev/null >>"$PF/postfix-cmd.log" 2>&1; then
    show_logs "$PF/postfix-cmd.log" "$PF/postfix.log"
    return 1
  fi
  if ! wait_until "Postfix on port $SMTP_PORT" smtp_ready "$SMTP_PORT" "$PKI/trusted-ca.pem" ||
    ! wait_until "Postfix on port $SMTP_UNTRUSTED_PORT" smtp_ready "$SMTP_UNTRUSTED_PORT" "$PKI/untrusted-ca.pem" ||
    { [[ -n "${SMTP_PLAIN_PORT:-}" ]] && ! wait_until "Postfix on port $SMTP_PLAIN_PORT (plaintext)" plain_ready "$SMTP_PLAIN_PORT"; }; then
    show_logs "$PF/postfix-cmd.log" "$PF/postfix.log" "$DC/dovecot.log"
    return 1
  fi
}

stop_postfix() {
  [[ -d "$PF_ETC" ]] || return 0
  if postfix_running; then
    postfix -c "$PF_ETC" stop >>"$PF/postfix-cmd.log" 2>&1 || true
  fi
  # `postfix stop` returns before the master has gone; wait for it (and kill it if it hangs).
  stop_pidfile "$PF/queue/pid/master.pid" /master
}

stop_sinks() {
  local f
  for f in "$DIR"/sink/*.pid; do
    [[ -e "$f" ]] && stop_pidfile "$f" smtp-sink
  done
  return 0
}

stop_proxies() {
  local f
  for f in "$DIR"/proxy/*.stunnel; do
    [[ -e "$f" ]] && stop_pidfile "$f" stunnel
  done
  for f in "$DIR"/proxy/*.pid; do
    [[ -e "$f" ]] && stop_pidfile "$f" tinyproxy
  done
  return 0
}

# ------------------------------------------------------------------------------------------------
# subcommands

on_start_error() {
  log "start failed (line $1); stopping what was started"
  cmd_stop "$DIR" >&2 || true
  exit 1
}

cmd_start() {
  [[ "$(id -u)" == 0 ]] || { log "must run as root (Postfix)"; exit 1; }
  local c
  for c in postfix dovecot openssl curl node ss; do
    command -v "$c" >/dev/null || { log "$c is not installed"; exit 1; }
  done
  check_node_modules || exit 1
  mkdir -p "$1"
  set_paths "$1"
  # Dovecot's sockets live in $DC_RUN; the longest path must fit in sun_path (108 bytes).
  if ((${#DC_RUN} + 30 > 108)); then
    log "$DIR is too long for unix sockets; use a short one, e.g. \$(mktemp -d /tmp/mr.XXXXXX)"
    exit 1
  fi
  if [[ -e "$CONF_FILE" ]]; then
    log "$DIR already holds a testbed (stop it, or use a fresh directory)"
    exit 1
  fi
  chmod 755 "$DIR" # Postfix (user postfix) and the virtual agent (uid 8) must traverse it

  local started=$SECONDS
  # Whatever fails from here on: show why, undo what was started, exit non-zero.
  trap 'on_start_error $LINENO' ERR

  make_conf
  load_conf
  make_pki
  start_oidc
  load_conf # OIDC_PORT is known now
  write_dovecot_conf
  write_postfix_conf
  start_dovecot
  start_postfix
  start_graph
  load_conf # GRAPH_PORT is known now
  write_env_file
  trap - ERR
  log "up in $((SECONDS - started))s: token endpoint :$OIDC_PORT, SMTP :$SMTP_PORT (untrusted :$SMTP_UNTRUSTED_PORT, plaintext :${SMTP_PLAIN_PORT:-none}); env in $ENV_FILE"
}

cmd_stop() {
  set_paths "$1"
  [[ -d "$DIR" ]] || return 0
  stop_proxies
  stop_sinks
  stop_graph
  stop_postfix
  stop_dovecot
  stop_oidc
}

cmd_status() {
  set_paths "$1"
  load_conf
  local ok=0
  report() { printf '%-9s %s\n' "$1" "$2"; }
  if pid_alive "$OIDC/pid" node; then report oidc "running pid $(cat "$OIDC/pid") port $OIDC_PORT"; else report oidc stopped; ok=1; fi
  if pid_alive "$DC_RUN/master.pid" dovecot; then report dovecot "running pid $(cat "$DC_RUN/master.pid")"; else report dovecot stopped; ok=1; fi
  if pid_alive "$GRAPH/pid" node; then report graph "running pid $(cat "$GRAPH/pid") port $GRAPH_PORT"; else report graph stopped; ok=1; fi
  if postfix_running; then report postfix "running ports $SMTP_PORT $SMTP_UNTRUSTED_PORT${SMTP_PLAIN_PORT:+ $SMTP_PLAIN_PORT}"; else report postfix stopped; ok=1; fi
  local f
  for f in "$DIR"/sink/*.pid; do
    [[ -e "$f" ]] || continue
    if pid_alive "$f" smtp-sink; then report sink "running port $(basename "$f" .pid) pid $(cat "$f")"; else report sink "stopped port $(basename "$f" .pid)"; fi
  done
  for f in "$DIR"/proxy/*.pid; do
    [[ -e "$f" ]] || continue
    if pid_alive "$f" tinyproxy; then report proxy "running port $(basename "$f" .pid) pid $(cat "$f")"; else report proxy "stopped port $(basename "$f" .pid)"; fi
  done
  for f in "$DIR"/proxy/*.stunnel; do
    [[ -e "$f" ]] || continue
    if pid_alive "$f" stunnel; then report proxy "running port $(basename "$f" .stunnel) (TLS) pid $(cat "$f")"; else report proxy "stopped port $(basename "$f" .stunnel) (TLS)"; fi
  done
  return $ok
}

cmd_svc() {
  local action="$1" svc="$3"
  set_paths "$2"
  load_conf
  case "$svc" in
    oidc | dovecot | postfix | graph) "${action}_${svc}" ;;
    *) usage ;;
  esac
  [[ "$action" == start && -s "$ENV_FILE" ]] && write_env_file # new pids
  return 0
}

cmd_quota_fault() {
  set_paths "$1"
  load_conf
  sed -i '/^\/\^quota/d' "$PF_ETC/recipient_access"
  case "$2" in
    on) printf '%s\n' "$QUOTA_FAULT_RULE" >>"$PF_ETC/recipient_access" ;;
    off) ;;
    *) usage ;;
  esac
  # New smtpd processes read the table again.
  postfix -c "$PF_ETC" reload >>"$PF/postfix-cmd.log" 2>&1
}

require_mailbox() {
  [[ "$1" =~ ^[^[:space:]@]+@[^[:space:]@]+$ ]] || { log "not a mailbox: $1"; usage; }
}

# set_table_line FILE KEY [VALUE]: the line of FILE whose first field is KEY becomes "KEY VALUE",
# or goes without VALUE.
set_table_line() {
  awk -v k="$2" '$1 != k' "$1" >"$1.new"
  if [[ $# -ge 3 ]]; then printf '%s %s\n' "$2" "$3" >>"$1.new"; fi
  mv "$1.new" "$1"
}

# Reloads Postfix so that its smtpd processes read the access tables again, and returns once the
# idle ones, which would still take new sessions with the old tables, have exited (reload is
# asynchronous). A process serving an open session keeps its tables until the session ends; after
# 5 s the wait ends anyway.
reload_smtpd_tables() {
  local master old=()
  master="$(pid_of "$PF/queue/pid/master.pid")"
  [[ -n "$master" ]] && mapfile -t old < <(pgrep -P "$master" -x smtpd || true)
  postfix -c "$PF_ETC" reload >>"$PF/postfix-cmd.log" 2>&1
  wait_gone 50 "${old[@]}"
}

# set_mailbox_reply TABLE MAILBOX on|off REPLY: whether Postfix answers REPLY to MAILBOX (the
# SASL login) through TABLE, a check_sasl_access map, in sessions opened afterwards.
set_mailbox_reply() {
  require_mailbox "$2"
  case "$3" in
    on) set_table_line "$1" "$2" "$4" ;;
    off) set_table_line "$1" "$2" ;;
    *) usage ;;
  esac
  reload_smtpd_tables
}

cmd_smtp_auth() {
  set_paths "$1"
  load_conf
  # SMTP AUTH off for the mailbox: Exchange's 5.7.139 reply on.
  local reply
  case "$2" in on) reply=off ;; off) reply=on ;; *) usage ;; esac
  set_mailbox_reply "$PF_ETC/smtp_auth_disabled" "${3:-$MAILBOX}" "$reply" "$SMTP_AUTH_DISABLED_REPLY"
}

cmd_quota_fault_mailbox() {
  set_paths "$1"
  load_conf
  set_mailbox_reply "$PF_ETC/quota_exceeded_mailboxes" "$2" "$3" "$QUOTA_EXCEEDED_REPLY"
}

# add_sender_login ADDRESS LOGIN / remove_sender_login ADDRESS LOGIN: LOGIN in (or out of) the
# comma list of logins that may use ADDRESS as sender (smtpd_sender_login_maps).
sender_logins() { awk -v a="$1" '$1 == a { print $2 }' "$PF_ETC/sender_login"; }
add_sender_login() {
  local logins
  logins="$(sender_logins "$1")"
  [[ ",$logins," == *",$2,"* ]] && return 0
  set_table_line "$PF_ETC/sender_login" "$1" "${logins:+$logins,}$2"
}
remove_sender_login() {
  local logins
  logins="$(sender_logins "$1" | tr ',' '\n' | grep -vxF "$2" | paste -sd, - || true)"
  if [[ -n "$logins" ]]; then
    set_table_line "$PF_ETC/sender_login" "$1" "$logins"
  else
    set_table_line "$PF_ETC/sender_login" "$1"
  fi
}

# The grants file is read by every AUTH (Dovecot caches nothing): only Send As needs a reload.
cmd_grant() {
  set_paths "$1"
  load_conf
  local mailbox="$2" client="${4:-$CLIENT_ID}" grants="$DC/mailbox_grants"
  require_mailbox "$mailbox"
  case "$3" in on | off) ;; *) usage ;; esac
  awk -v c="$client" -v m="$mailbox" '!($1 == c && $2 == m)' "$grants" >"$grants.new"
  [[ "$3" == on ]] && printf '%s %s\n' "$client" "$mailbox" >>"$grants.new"
  chgrp dovecot "$grants.new" && chmod 644 "$grants.new" && mv "$grants.new" "$grants"
  if [[ "$3" == on ]]; then # a mailbox may always send as itself
    add_sender_login "$mailbox" "$mailbox"
    postfix -c "$PF_ETC" reload >>"$PF/postfix-cmd.log" 2>&1
  fi
}

cmd_send_as() {
  set_paths "$1"
  load_conf
  [[ "$2" =~ ^[^[:space:]@]*@[^[:space:]@]+$ ]] || { log "send-as: not an address or @domain: $2"; usage; }
  require_mailbox "$3"
  case "$4" in
    on) add_sender_login "$2" "$3" ;;
    off) remove_sender_login "$2" "$3" ;;
    *) usage ;;
  esac
  postfix -c "$PF_ETC" reload >>"$PF/postfix-cmd.log" 2>&1
}

cmd_submission() {
  set_paths "$1"
  load_conf
  case "$2" in
    off)
      [[ -f "$PF_ETC/master.cf.on" ]] || cp "$PF_ETC/master.cf" "$PF_ETC/master.cf.on"
      postconf -c "$PF_ETC" -M# "127.0.0.1:$SMTP_PORT/inet" >>"$PF/postfix-cmd.log" 2>&1
      ;;
    on) if [[ -f "$PF_ETC/master.cf.on" ]]; then mv "$PF_ETC/master.cf.on" "$PF_ETC/master.cf"; fi ;;
    *) usage ;;
  esac
  # The master opens or closes the listener on reload.
  postfix -c "$PF_ETC" reload >>"$PF/postfix-cmd.log" 2>&1
}

cmd_oidc_config() {
  set_paths "$1"
  load_conf
  shift
  local pair key value restart=0
  for pair in "$@"; do
    key="${pair%%=*}"
    value="${pair#*=}"
    case "$key" in
      CLIENT_SECRET)
        (umask 077 && printf '%s\n' "$value" >"$OIDC/client_secret.tmp") && mv "$OIDC/client_secret.tmp" "$OIDC/client_secret" ;;
      TOKEN_TTL) restart=1 ;;
      TOKEN_ENDPOINT)
        case "$value" in
          down) : >"$OIDC/token_outage" ;;
          up) rm -f "$OIDC/token_outage" ;;
          *) usage ;;
        esac
        continue ;;
      *) log "oidc-config: unknown setting $key (CLIENT_SECRET, TOKEN_TTL, TOKEN_ENDPOINT)"; exit 2 ;;
    esac
    env_line "$key" "$value" >/dev/null || exit 2
    sed -i "s|^$key=.*|$key=$value|" "$CONF_FILE"
  done
  load_conf
  if ((restart)); then
    stop_oidc
    start_oidc
  fi
  write_env_file
}

cmd_sink() {
  set_paths "$1"
  local port="$2"
  shift 2
  command -v smtp-sink >/dev/null || { log "smtp-sink is not installed (Debian package postfix)"; exit 1; }
  mkdir -p "$DIR/sink"
  if [[ "$port" == 0 || "$port" == auto ]]; then
    free_port
    port=$FREE_PORT
  fi
  local user=()
  # smtp-sink insists on dropping root privileges after binding.
  [[ "$(id -u)" == 0 && " $* " != *" -u "* ]] && user=(-u postfix)
  smtp-sink "${user[@]}" "$@" "127.0.0.1:$port" 64 </dev/null >>"$DIR/sink/$port.log" 2>&1 &
  echo $! >"$DIR/sink/$port.pid"
  sink_ready() {
    pid_alive "$DIR/sink/$port.pid" || return 2
    tcp_open "$port"
  }
  if ! wait_until "smtp-sink on port $port" sink_ready; then
    show_logs "$DIR/sink/$port.log"
    rm -f "$DIR/sink/$port.pid"
    exit 1
  fi
  echo "$port $(cat "$DIR/sink/$port.pid")"
}

# An HTTP proxy between mailroom and the testbed, as sites that reach Exchange Online only
# through one have (the seed's fix for "connect timed out"). tinyproxy logs each CONNECT at
# LogLevel Connect; it drops root for its own user, so its log file is that user's.
cmd_proxy() {
  set_paths "$1"
  local mode="$2" port="${3:-0}" user password tls_port=""
  command -v tinyproxy >/dev/null || { log "tinyproxy is not installed (Debian package tinyproxy)"; exit 1; }
  case "$mode" in allow | deny | auth | tls) ;; *) usage ;; esac
  mkdir -p "$DIR/proxy"
  if [[ "$port" == 0 || "$port" == auto ]]; then
    free_port
    port=$FREE_PORT
  fi
  if [[ "$mode" == tls ]]; then # tinyproxy behind, on a port of its own; TLS on $port
    command -v stunnel >/dev/null || { log "stunnel is not installed (Debian package stunnel4)"; exit 1; }
    tls_port="$port"
    free_port
    port=$FREE_PORT
  fi
  local base="$DIR/proxy/$port"
  {
    echo "# tinyproxy for the mailroom testbed: mode $mode"
    echo "User tinyproxy"
    echo "Group tinyproxy"
    echo "Listen 127.0.0.1"
    echo "Port $port"
    echo "Timeout 60"
    echo "MaxClients 50"
    echo "Allow 127.0.0.1"
    echo "DisableViaHeader Yes"
    echo "LogFile \"$base.log\""
    echo "LogLevel Connect"
    # Without ConnectPort lines every port may be tunnelled to; with one, only those listed.
    [[ "$mode" == deny ]] && echo "ConnectPort 443"
    if [[ "$mode" == auth ]]; then
      user=mailroom-proxy
      password="$(openssl rand -hex 12)"
      echo "BasicAuth $user $password"
      (umask 077 && printf '%s:%s\n' "$user" "$password" >"$base.credentials")
    fi
  } >"$base.conf"
  chmod 600 "$base.conf"
  : >"$base.log"
  chown tinyproxy "$base.log" 2>/dev/null || true
  # -d: stay in the foreground, so that the pid recorded is tinyproxy's own.
  tinyproxy -d -c "$base.conf" </dev/null >>"$base.out" 2>&1 &
  echo $! >"$base.pid"
  proxy_ready() {
    pid_alive "$base.pid" tinyproxy || return 2
    tcp_open "$port"
  }
  if ! wait_until "tinyproxy on port $port" proxy_ready; then
    show_logs "$base.out" "$base.log"
    rm -f "$base.pid"
    exit 1
  fi
  [[ -z "$tls_port" ]] && { echo "$port $(cat "$base.pid")"; return 0; }
  # The https:// proxy: TLS with the testbed's trusted server certificate (localhost,
  # 127.0.0.1), then the same CONNECT dialogue. Its log is the tinyproxy's behind it.
  local front="$DIR/proxy/$tls_port"
  ln -sf "$base.log" "$front.log"
  {
    echo "foreground = yes"
    echo "pid ="
    echo "output = $front.stunnel.log"
    echo "[https-proxy]"
    echo "accept = 127.0.0.1:$tls_port"
    echo "connect = 127.0.0.1:$port"
    echo "cert = $PKI/trusted-server.pem"
    echo "key = $PKI/trusted-server.key"
  } >"$front.stunnel.conf"
  stunnel "$front.stunnel.conf" </dev/null >>"$front.out" 2>&1 &
  echo $! >"$front.stunnel"
  tls_ready() {
    pid_alive "$front.stunnel" stunnel || return 2
    tcp_open "$tls_port"
  }
  if ! wait_until "stunnel on port $tls_port" tls_ready; then
    show_logs "$front.out" "$front.stunnel.log"
    rm -f "$front.stunnel"
    exit 1
  fi
  echo "$tls_port $(cat "$front.stunnel")"
}

cmd_token_count() {
  set_paths "$1"
  if [[ -f "$OIDC/token.log" ]]; then wc -l <"$OIDC/token.log"; else echo 0; fi
}

cmd_postconf() {
  set_paths "$1"
  load_conf
  postconf -c "$PF_ETC" -e "${@:2}" >>"$PF/postfix-cmd.log" 2>&1 &&
    postfix -c "$PF_ETC" reload >>"$PF/postfix-cmd.log" 2>&1 ||
    { show_logs "$PF/postfix-cmd.log"; return 1; }
}

main() {
  [[ $# -ge 2 ]] || usage
  case "$1" in
    start) [[ $# -eq 2 ]] || usage; cmd_start "$2" ;;
    stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
    status) [[ $# -eq 2 ]] || usage; cmd_status "$2" ;;
    svc-start | svc-stop) [[ $# -eq 3 ]] || usage; cmd_svc "${1#svc-}" "$2" "$3" ;;
    oidc-config) [[ $# -ge 3 ]] || usage; shift; cmd_oidc_config "$@" ;;
    quota-fault) [[ $# -eq 3 ]] || usage; cmd_quota_fault "$2" "$3" ;;
    smtp-auth) [[ $# -ge 3 && $# -le 4 ]] || usage; cmd_smtp_auth "${@:2}" ;;
    quota-fault-mailbox) [[ $# -eq 4 ]] || usage; cmd_quota_fault_mailbox "${@:2}" ;;
    grant) [[ $# -ge 4 && $# -le 5 ]] || usage; cmd_grant "${@:2}" ;;
    send-as) [[ $# -eq 5 ]] || usage; cmd_send_as "${@:2}" ;;
    submission) [[ $# -eq 3 ]] || usage; cmd_submission "$2" "$3" ;;
    sink) [[ $# -ge 3 ]] || usage; cmd_sink "${@:2}" ;;
    token-count) [[ $# -eq 2 ]] || usage; cmd_token_count "$2" ;;
    postconf) [[ $# -ge 3 ]] || usage; cmd_postconf "${@:2}" ;;
    proxy) [[ $# -ge 3 && $# -le 4 ]] || usage; cmd_proxy "${@:2}" ;;
    *) usage ;;
  esac
}

main "$@"
