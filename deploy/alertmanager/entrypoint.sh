#!/bin/sh
# Alertmanager reads its oauth2 client secret from a file only (it expands no environment
# variables): write the file from the environment, readable by this user alone, and start
# Alertmanager without the variable. printf is a shell builtin: the secret is on no
# command line.
set -eu
: "${ALERTMANAGER_CLIENT_SECRET:?set ALERTMANAGER_CLIENT_SECRET}"
secrets_dir="${ALERTMANAGER_SECRETS_DIR:-/tmp/secrets}"
umask 077
mkdir -p "$secrets_dir"
printf '%s' "$ALERTMANAGER_CLIENT_SECRET" > "$secrets_dir/alertmanager-client-secret"
unset ALERTMANAGER_CLIENT_SECRET
exec alertmanager "$@"
