#!/bin/sh
# Container entry point of a Borderpost node.
#
# 1. Apply database migrations (`borderpost serve` refuses an unmigrated database).
# 2. Make sure an admin account exists; on a new node its password is written to
#    $BORDERPOST_DATA_DIR/bootstrap-admin.txt (mode 0600) and never printed.
# 3. Serve the HTTP API on all interfaces of the container. Extra arguments are passed to
#    `borderpost serve`, e.g. the TLS options:
#      --ssl-certfile /run/secrets/post.crt --ssl-keyfile /run/secrets/post.key
#
# Every setting comes from BORDERPOST_* environment variables (see README.md).
set -eu

borderpost db upgrade
borderpost bootstrap
exec borderpost serve --host 0.0.0.0 "$@"
