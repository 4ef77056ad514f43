#!/bin/sh
# Run by the nginx image's entrypoint (/docker-entrypoint.d/) before nginx starts: what
# differs between deployments is read from the environment here, so one image serves
# every county, under compose and under Kubernetes.
#
# - $WANGGE_RUN_DIR/app-config.json: the web app's run-time settings (the realm staff sign
#   in at, the command centre's map tiles), as devstack/web.py serves them locally.
# - $WANGGE_RUN_DIR/nginx.conf, the config nginx runs: /etc/nginx/nginx.conf as it is,
#   or, where WANGGE_RESOLVER / WANGGE_SERVICE_DOMAIN are set (Kubernetes), with that DNS
#   server and every upstream's name qualified by that domain (nginx's resolver does not
#   use resolv.conf's search list, so a bare `intake` would not resolve there).
set -eu

: "${WANGGE_PUBLIC_URL:?set WANGGE_PUBLIC_URL}"
run_dir="${WANGGE_RUN_DIR:-/var/run/wangge}"
template="${WANGGE_NGINX_TEMPLATE:-/etc/nginx/nginx.conf}"
mkdir -p "$run_dir"

# A JSON string; a value with a control character (a stray newline) is refused.
json_string() {
  case "$1" in
    *[[:cntrl:]]*) echo "start.sh: $2 holds a control character" >&2; exit 1 ;;
  esac
  printf '"%s"' "$(printf '%s' "$1" | sed -e 's/\\/\\\\/g' -e 's/"/\\"/g')"
}

authority=$(json_string "$WANGGE_PUBLIC_URL/auth/realms/wangge" WANGGE_PUBLIC_URL)
settings="{\"oidc\": {\"authority\": $authority, \"client_id\": \"wangge-web\", \"scope\": \"openid profile wangge\"}"
if [ -n "${WANGGE_MAP_TILES:-}" ]; then
  tiles=$(json_string "$WANGGE_MAP_TILES" WANGGE_MAP_TILES)
  attribution=$(json_string "${WANGGE_MAP_ATTRIBUTION:-}" WANGGE_MAP_ATTRIBUTION)
  settings="$settings, \"map\": {\"tiles\": {\"url\": $tiles, \"attribution\": $attribution}}"
fi
printf '%s}\n' "$settings" > "$run_dir/app-config.json.new"
mv "$run_dir/app-config.json.new" "$run_dir/app-config.json"

# Names and addresses only: anything else would be written into nginx's config.
for value in "${WANGGE_RESOLVER:-}" "${WANGGE_SERVICE_DOMAIN:-}"; do
  case "$value" in
    *[!A-Za-z0-9.:-]*) echo "start.sh: WANGGE_RESOLVER and WANGGE_SERVICE_DOMAIN take a host name or address" >&2; exit 1 ;;
  esac
done
set --
[ -z "${WANGGE_RESOLVER:-}" ] || set -- "$@" -e "s/^\([[:space:]]*resolver[[:space:]][[:space:]]*\)[^[:space:];]*/\1$WANGGE_RESOLVER/"
[ -z "${WANGGE_SERVICE_DOMAIN:-}" ] || set -- "$@" -e "s/^\([[:space:]]*set[[:space:]][[:space:]]*[$][a-z]*[[:space:]][[:space:]]*[a-z0-9-]*\)\(:[0-9]*;\)/\1.$WANGGE_SERVICE_DOMAIN\2/"
if [ $# -gt 0 ]; then sed "$@" "$template"; else cat "$template"; fi > "$run_dir/nginx.conf.new"
mv "$run_dir/nginx.conf.new" "$run_dir/nginx.conf"
