#!/usr/bin/env bash
# Builds every FunMagic image with nothing pulled from an image registry (`make images`):
#   funmagic/base:bookworm       Debian bookworm, minbase, made by debootstrap and `docker import`
#   funmagic/service:$TAG        the six services (deploy/compose/Dockerfile)
#   funmagic/web:$TAG            nginx with the built web and admin apps (deploy/compose/web.Dockerfile)
#   funmagic/postgres:$TAG  funmagic/redis:$TAG  funmagic/kafka:$TAG  funmagic/s3:$TAG   the infrastructure
# Everything comes from the package registries: Debian packages, PyPI wheels, Maven jars.
#
#   deploy/images/build.sh [image …]     # all images by default; e.g. `build.sh service` after a code change
#
# Settings (environment): FUNMAGIC_VERSION [dev] the tag; DEBIAN_MIRROR [the host's apt source];
# PIP_CERT [/etc/ssl/certs/ca-certificates.crt] the CA bundle pip trusts inside a build;
# FUNMAGIC_REBUILD_BASE=1 makes a new base even when one exists.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
repo="$(cd "$here/../.." && pwd)"
tag="${FUNMAGIC_VERSION:-dev}"
base_image="funmagic/base:bookworm"
work="$here/.build"
export DOCKER_BUILDKIT=0 # the classic builder: these Dockerfiles need nothing else, and it runs on every engine

log() { printf '[images] %s\n' "$*" >&2; }
die() {
	log "error: $*"
	exit 1
}
since() { echo "$(($(date +%s) - $1)) s"; }

debian_mirror() {
	if [[ -n ${DEBIAN_MIRROR:-} ]]; then
		echo "$DEBIAN_MIRROR"
		return
	fi
	# The mirror this machine's apt already uses (deb822 or one-line format).
	local uri
	uri=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
	[[ -n $uri ]] || uri=$(awk '$1 == "deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[[ -n $uri ]] || die "no Debian mirror found in /etc/apt; set DEBIAN_MIRROR"
	echo "$uri"
}

build_base() {
	if [[ -z ${FUNMAGIC_REBUILD_BASE:-} ]] && docker image inspect "$base_image" >/dev/null 2>&1; then
		log "base: $base_image exists (FUNMAGIC_REBUILD_BASE=1 to make it again)"
		return
	fi
	command -v debootstrap >/dev/null || die "debootstrap is missing (make images installs it with apt-get)"
	local t0 rootfs mirror
	t0=$(date +%s)
	mirror=$(debian_mirror)
	rootfs="$work/rootfs"
	rm -rf "$rootfs"
	log "base: debootstrap --variant=minbase bookworm…"
	debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$work/debootstrap.log" 2>&1 \
		|| { tail -20 "$work/debootstrap.log" >&2; die "debootstrap failed (log: $work/debootstrap.log)"; }
	# What a container never needs: the package lists (each image runs apt-get update itself), docs, man
	# pages, locales but the C one.
	rm -rf "$rootfs"/var/lib/apt/lists/* "$rootfs"/usr/share/doc/* "$rootfs"/usr/share/man/* \
		"$rootfs"/var/cache/apt/*.bin "$rootfs"/var/log/*.log
	# Packages whose scripts register man pages with update-alternatives (Java) need the folder.
	mkdir -p "$rootfs/usr/share/man/man1"
	# Keep images small: no recommends, no docs from any later install.
	printf 'APT::Install-Recommends "false";\nAPT::Install-Suggests "false";\n' >"$rootfs/etc/apt/apt.conf.d/90funmagic"
	printf 'path-exclude /usr/share/doc/*\npath-exclude /usr/share/man/*\npath-exclude /usr/share/info/*\n' \
		>"$rootfs/etc/dpkg/dpkg.cfg.d/90funmagic-nodoc"
	tar -C "$rootfs" -c . | docker import -c 'CMD ["/bin/bash"]' -c 'ENV DEBIAN_FRONTEND=noninteractive' \
		- "$base_image" >/dev/null
	rm -rf "$rootfs"
	log "base: $base_image built ($(since "$t0"))"
}

# The CA bundle pip trusts inside a build: the host's, so a proxy's CA that only the host trusts works.
# Kept in the git-ignored .build/ folder; the images' final stages never hold it.
stage_ca_bundle() {
	local bundle="${PIP_CERT:-/etc/ssl/certs/ca-certificates.crt}"
	[[ -f $bundle ]] || die "no CA bundle at $bundle (set PIP_CERT)"
	cp "$bundle" "$work/ca.crt"
	cp "$bundle" "$here/s3/ca.crt"
}

build() {
	local name="$1" context="$2" dockerfile="$3" t0
	t0=$(date +%s)
	log "$name: building funmagic/$name:$tag…"
	docker build --build-arg "BASE_IMAGE=$base_image" -f "$dockerfile" -t "funmagic/$name:$tag" "$context" \
		>"$work/$name.log" 2>&1 || { tail -30 "$work/$name.log" >&2; die "$name: build failed (log: $work/$name.log)"; }
	log "$name: funmagic/$name:$tag built ($(since "$t0"))"
}

kafka_jars() {
	# The broker's jars, resolved by Maven exactly as the native stack resolves them.
	local lib
	lib=$("$repo/deploy/local/stack.sh" kafka-jars) || die "could not resolve the Kafka jars"
	rm -rf "$here/kafka/libs"
	mkdir -p "$here/kafka/libs"
	cp "$lib"/*.jar "$here/kafka/libs/"
}

web_dist() {
	[[ -f $repo/apps/web/dist/index.html && -f $repo/apps/admin/dist/index.html ]] \
		|| die "apps/web/dist or apps/admin/dist is missing: run \`make web-build\` first (make images does)"
}

main() {
	local images=("$@") t0 image
	((${#images[@]})) || images=(service web postgres redis kafka s3)
	command -v docker >/dev/null || die "docker is missing (make images installs docker.io)"
	docker info >/dev/null 2>&1 || die "the Docker engine does not answer (make docker starts dockerd)"
	mkdir -p "$work"
	t0=$(date +%s)
	build_base
	stage_ca_bundle
	for image in "${images[@]}"; do
		case $image in
		service) build service "$repo" "$repo/deploy/compose/Dockerfile" ;;
		web) web_dist && build web "$repo" "$repo/deploy/compose/web.Dockerfile" ;;
		kafka) kafka_jars && build kafka "$here/kafka" "$here/kafka/Dockerfile" ;;
		postgres | redis | s3) build "$image" "$here/$image" "$here/$image/Dockerfile" ;;
		*) die "unknown image $image (service, web, postgres, redis, kafka or s3)" ;;
		esac
	done
	log "done in $(since "$t0"): $(docker images --format '{{.Repository}}:{{.Tag}} {{.Size}}' 'funmagic/*' | tr '\n' ' ')"
}

main "$@"
