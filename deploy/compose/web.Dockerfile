# The web edge: nginx serving the built web app (apps/web) at / and the admin app (apps/admin) at /admin/,
# and passing the gateway's paths to it.
# Build context: the repository root (see web.yml, and dockerignore.suggested for what it leaves out).
#   docker build -f deploy/compose/web.Dockerfile -t funmagic/web:dev .
ARG NODE_IMAGE=node:20-bookworm-slim
ARG NGINX_IMAGE=nginx:1.27-bookworm

# --- build: npm ci from the committed locks, then `npm run build` (vue-tsc, then vite) into dist/ ---
# The admin app shares the web app's API layer and scripts (its `@shared` alias is ../web/src), so both
# are built in one stage, side by side as in the repository.
FROM ${NODE_IMAGE} AS build
WORKDIR /src/apps/web
# The manifests, the locks and npm's settings alone first: the dependency layer is rebuilt only when
# they change.
COPY apps/web/package.json apps/web/package-lock.json apps/web/.npmrc ./
COPY apps/admin/package.json apps/admin/package-lock.json apps/admin/.npmrc /src/apps/admin/
RUN npm ci --no-audit --no-fund && npm ci --prefix /src/apps/admin --no-audit --no-fund
# The rest of the apps (node_modules and dist are left out by .dockerignore).
COPY apps/web/ ./
COPY apps/admin/ /src/apps/admin/
RUN npm run build && npm run build --prefix /src/apps/admin

# --- runtime: the official nginx image, as it runs by default (master as root, workers as nginx) ---
FROM ${NGINX_IMAGE}
# The image's entrypoint runs envsubst on /etc/nginx/templates/*.template into /etc/nginx/conf.d/ at
# start. Only WEB_* variables are replaced, never nginx's own ($uri, $host, …); WEB_CONTENT_ORIGINS is
# empty unless the container is given one (web.yml does).
ENV NGINX_ENVSUBST_FILTER=^WEB_ \
    WEB_CONTENT_ORIGINS=
# Neither the stock server (port 80, the welcome page) nor its pages are wanted.
RUN rm -f /etc/nginx/conf.d/default.conf /usr/share/nginx/html/*
COPY deploy/compose/nginx/web.conf /etc/nginx/templates/default.conf.template
COPY --from=build /src/apps/web/dist/ /usr/share/nginx/html/
COPY --from=build /src/apps/admin/dist/ /usr/share/nginx/html/admin/
EXPOSE 8080
