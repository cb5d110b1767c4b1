#!/bin/sh
# certbot deploy hook: after each issue or renewal of the zone certificate, copy it where inkwired
# reads it (tls.cert_file, tls.key_file) and tell inkwired to reload it.
#
#   install -D -m 0755 deploy/certbot/inkwire-deploy-hook.sh /usr/local/lib/inkwire/certbot-deploy-hook
#   certbot certonly --dns-cloudflare --dns-cloudflare-credentials /root/.secrets/cloudflare.ini \
#     -d tunnels.example.com -d '*.tunnels.example.com' \
#     --deploy-hook /usr/local/lib/inkwire/certbot-deploy-hook
#
# certbot keeps the hook with the certificate and runs it after the first issue and every renewal,
# with RENEWED_LINEAGE set (for example /etc/letsencrypt/live/tunnels.example.com); run it by hand
# with that variable to test it. Settings, from the environment or edited here:
#   INKWIRE_ZONE      only act for this lineage (its directory name); empty = any lineage
#   INKWIRE_TLS_DIR   where the files go [/etc/inkwire/tls]: fullchain.pem and privkey.pem
#   INKWIRE_TLS_GROUP the group that may read the key [inkwire]; for the Docker image use 10001
#   INKWIRE_RELOAD    the reload command [systemctl reload inkwired]; for Docker Compose e.g.
#                     "docker compose -f /opt/inkwire/deploy/docker/docker-compose.yml kill -s SIGHUP inkwired"
# The edge also notices the new files by itself (edge.cert_check_seconds); the reload makes it
# immediate. Each file is written beside its target and renamed over it, the key first, so that
# inkwired never reads half a file.
set -eu

zone=${INKWIRE_ZONE:-}
dest=${INKWIRE_TLS_DIR:-/etc/inkwire/tls}
group=${INKWIRE_TLS_GROUP:-inkwire}
reload=${INKWIRE_RELOAD:-systemctl reload inkwired}

lineage=${RENEWED_LINEAGE:?"RENEWED_LINEAGE is not set: certbot runs this as a deploy hook"}
if [ -n "$zone" ] && [ "$(basename -- "$lineage")" != "$zone" ]; then
  exit 0
fi
for f in fullchain.pem privkey.pem; do
  [ -s "$lineage/$f" ] || { echo "inkwire-deploy-hook: $lineage/$f is missing" >&2; exit 1; }
done

umask 077
mkdir -p -- "$dest"
key_tmp=$(mktemp "$dest/.privkey.pem.XXXXXX")
cert_tmp=$(mktemp "$dest/.fullchain.pem.XXXXXX")
trap 'rm -f -- "$key_tmp" "$cert_tmp"' EXIT
cat -- "$lineage/privkey.pem" >"$key_tmp"
chgrp -- "$group" "$key_tmp"
chmod 0640 -- "$key_tmp"
cat -- "$lineage/fullchain.pem" >"$cert_tmp"
chmod 0644 -- "$cert_tmp"
mv -f -- "$key_tmp" "$dest/privkey.pem"
mv -f -- "$cert_tmp" "$dest/fullchain.pem"
trap - EXIT

echo "inkwire-deploy-hook: installed $(basename -- "$lineage") into $dest"
if ! sh -c "$reload"; then
  # The files are in place (a running edge picks them up within edge.cert_check_seconds); the
  # failure is reported so that certbot's log shows it.
  echo "inkwire-deploy-hook: '$reload' failed" >&2
  exit 1
fi
