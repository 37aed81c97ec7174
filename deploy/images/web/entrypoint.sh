#!/bin/sh
# Renders the site from its template with the WEB_* variables only (as the official nginx image's
# NGINX_ENVSUBST_FILTER=^WEB_ does), then runs nginx in the foreground.
set -eu
variables=$(env | sed -n 's/^\(WEB_[A-Za-z0-9_]*\)=.*/${\1}/p' | tr '\n' ' ')
envsubst "$variables" </etc/nginx/templates/default.conf.template >/etc/nginx/conf.d/default.conf
nginx -t -q
exec nginx -g 'daemon off;'
