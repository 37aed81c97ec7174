#!/usr/bin/env bash
# Makes sure this machine can build and run the images (`make docker`, a step of `make images`):
#   - Debian's docker.io (the engine, dockerd) and debootstrap, installed with apt-get when missing;
#   - a running engine: dockerd started in the background when nothing answers (log: .stack/dockerd.log);
#   - Docker Compose v5, built from its Go module (no binary download is reachable here) into
#     ~/.docker/cli-plugins/docker-compose, once.
# Idempotent: what is there is left alone.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
compose_version="${FUNMAGIC_COMPOSE_VERSION:-v5.6.0}"
plugin_dir="${DOCKER_CONFIG:-$HOME/.docker}/cli-plugins"
log_dir="${FUNMAGIC_STACK_DIR:-$repo/.stack}"

log() { printf '[docker] %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}

ensure_packages() {
	local missing=()
	command -v dockerd >/dev/null || missing+=(docker.io)
	command -v debootstrap >/dev/null || missing+=(debootstrap)
	((${#missing[@]})) || return 0
	[[ $(id -u) == 0 ]] || die "installing ${missing[*]} needs root (apt-get)"
	log "installing ${missing[*]} with apt-get…"
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >"$log_dir/apt-docker.log" 2>&1 \
		|| { apt-get update -q >>"$log_dir/apt-docker.log" 2>&1 \
			&& DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}" >>"$log_dir/apt-docker.log" 2>&1; } \
		|| { tail -20 "$log_dir/apt-docker.log" >&2; die "apt-get could not install ${missing[*]}"; }
}

ensure_engine() {
	docker info >/dev/null 2>&1 && return 0
	[[ $(id -u) == 0 ]] || die "the Docker engine does not answer, and starting dockerd needs root"
	log "starting dockerd (log: $log_dir/dockerd.log)…"
	nohup dockerd >"$log_dir/dockerd.log" 2>&1 &
	local deadline=$((SECONDS + 60))
	until docker info >/dev/null 2>&1; do
		((SECONDS < deadline)) || { tail -20 "$log_dir/dockerd.log" >&2; die "dockerd did not answer within 60 s"; }
		sleep 0.5
	done
	log "dockerd answers ($(docker info --format '{{.ServerVersion}}, storage {{.Driver}}'))"
}

ensure_compose() {
	if docker compose version >/dev/null 2>&1; then
		return 0
	fi
	command -v go >/dev/null || die "Go is needed once to build Docker Compose from its module"
	local t0=$SECONDS src dir
	log "building Docker Compose $compose_version from its Go module (once, about 2 minutes)…"
	src=$(mktemp -d)
	# `go install module@version` refuses this module (its go.mod has exclude directives), so the source
	# is downloaded and built as the main module.
	dir=$(cd "$src" && GOFLAGS=-mod=mod go mod download -json "github.com/docker/compose/v5@$compose_version" \
		| python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])') || die "go mod download failed"
	cp -r "$dir" "$src/compose" && chmod -R u+w "$src/compose"
	mkdir -p "$plugin_dir"
	(cd "$src/compose" && go build -trimpath \
		-ldflags "-s -w -X github.com/docker/compose/v5/internal.Version=$compose_version" \
		-o "$plugin_dir/docker-compose" ./cmd) >"$log_dir/compose-build.log" 2>&1 \
		|| { tail -20 "$log_dir/compose-build.log" >&2; die "building Docker Compose failed"; }
	rm -rf "$src"
	docker compose version >/dev/null || die "docker does not find the compose plugin in $plugin_dir"
	log "$(docker compose version) built in $((SECONDS - t0)) s"
}

mkdir -p "$log_dir"
ensure_packages
ensure_engine
ensure_compose
