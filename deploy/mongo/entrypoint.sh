#!/bin/bash
# A replica set with authentication needs a key file; it comes from the environment.
set -euo pipefail
: "${MONGO_REPLICA_KEY:?set MONGO_REPLICA_KEY (e.g. openssl rand -base64 756)}"
printf '%s' "$MONGO_REPLICA_KEY" > /tmp/replica.key
chmod 400 /tmp/replica.key
chown mongodb:mongodb /tmp/replica.key
exec docker-entrypoint.sh mongod --replSet rs0 --bind_ip_all --keyFile /tmp/replica.key
