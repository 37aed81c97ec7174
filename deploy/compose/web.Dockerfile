# The web edge: nginx serving the built web app (apps/web) at / and the admin app (apps/admin) at
# /admin/, and passing the gateway's paths to it. Built by `make images` (deploy/images/build.sh)
# after `make web-build`, from the repository root, on the Debian base; with a registry,
# BASE_IMAGE=debian:bookworm-slim gives the same image:
#   make web-build && docker build -f deploy/compose/web.Dockerfile -t funmagic/web:dev .
# The apps are built on the host, where the project's Node.js and the committed npm locks are (Debian's
# Node.js is too old for Vite 8); the image only serves their dist/ folders.
ARG BASE_IMAGE=funmagic/base:bookworm
FROM ${BASE_IMAGE}
# nginx-light has gzip_static, which web.conf uses for the builds' .gz twins; gettext-base brings
# envsubst for the template; curl is the healthcheck's client.
RUN apt-get update \
    && apt-get install -y --no-install-recommends nginx-light gettext-base curl ca-certificates \
    && rm -rf /var/lib/apt/lists/* /etc/nginx/sites-enabled/* /var/www/html \
    && ln -sf /dev/stdout /var/log/nginx/access.log \
    && ln -sf /dev/stderr /var/log/nginx/error.log
# The template's variables are WEB_* only; nginx's own ($uri, $host, …) are left for nginx.
ENV WEB_CONTENT_ORIGINS=
COPY deploy/compose/nginx/web.conf /etc/nginx/templates/default.conf.template
COPY deploy/images/web/entrypoint.sh /usr/local/bin/web-entrypoint
COPY apps/web/dist/ /usr/share/nginx/html/
COPY apps/admin/dist/ /usr/share/nginx/html/admin/
EXPOSE 8080
# SIGQUIT: nginx's graceful stop, requests in flight finish.
STOPSIGNAL SIGQUIT
HEALTHCHECK --interval=10s --timeout=5s --retries=3 --start-period=10s \
    CMD ["curl", "-fsS", "-o", "/dev/null", "http://127.0.0.1:8080/nginx-health"]
ENTRYPOINT ["/usr/local/bin/web-entrypoint"]
