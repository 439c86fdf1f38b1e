#!/usr/bin/env bash
# Exchange Online's XOAUTH2 check for the testbed's Dovecot: the bearer token must be valid AND
# the app it was issued to must have been granted the mailbox named as the XOAUTH2 user.
#
# Dovecot runs this as a checkpassword passdb for the xoauth2 mechanism (the mechanism verifies
# the token as the "password" of user=): username and token arrive on fd 3 as
# "user\0token\0...". Dovecot's own oauth2 passdb cannot do this: it compares the user with ONE
# attribute of the introspection answer, and its introspection_url does not expand %u (measured
# on Dovecot 2.3.19: the URL is taken literally, and a '%' in it panics the auth process).
#
# As in Exchange, a client-credentials token is not per mailbox: the token server says only
# whether the token is active and which app (client_id) it belongs to; the grants are Exchange's
# side (Add-MailboxPermission -AccessRights FullAccess for the app's service principal), kept
# here in GRANTS_FILE, one "client_id mailbox" per line. A token that is valid but whose app has
# no grant for the mailbox is refused like a bad token (Exchange: 535 5.7.3 Authentication
# unsuccessful).
#
# Environment (set by the wrapper testbed.sh writes): INTROSPECTION_URL, INTROSPECT_CLIENT_ID,
# INTROSPECT_CLIENT_SECRET, GRANTS_FILE. Exit status, as checkpassword wants: exec the reply
# program ("$@") on success, 1 refused, 111 temporary failure (the token server is down).
set -uo pipefail

IFS= read -r -d '' user <&3 || exit 2
IFS= read -r -d '' token <&3 || exit 2

# Answers are compact JSON from oidc-provider; jq reads the two fields that matter.
answer="$(curl -sS --max-time 5 -u "$INTROSPECT_CLIENT_ID:$INTROSPECT_CLIENT_SECRET" \
  --data-urlencode "token=$token" "$INTROSPECTION_URL")" || exit 111
active="$(jq -r '.active // false' <<<"$answer" 2>/dev/null)" || exit 111
[[ "$active" == true ]] || exit 1
client_id="$(jq -r '.client_id // empty' <<<"$answer")"
[[ -n "$client_id" ]] || exit 1

# Mailbox addresses are case-insensitive, as in Exchange.
if awk -v c="$client_id" -v m="${user,,}" '$1 == c && tolower($2) == m { found = 1 } END { exit !found }' \
  "$GRANTS_FILE"; then
  export USER="$user"
  exec "$@"
fi
echo "mailbox_grant_check: app $client_id has no grant for mailbox $user" >&2
exit 1
