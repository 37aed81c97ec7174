#!/usr/bin/env bash
# Runs `docker compose` over the whole FunMagic stack: infra.yml first, then one file per service,
# web.yml (the nginx edge) last.
#   make images && deploy/compose/all.sh up -d  # build the images (no registry needed), start everything
#   deploy/compose/all.sh ps                   # state and health of every container
#   deploy/compose/all.sh logs -f tasks        # follow one service
#   deploy/compose/all.sh up -d --scale tasks=3 --no-recreate
#   deploy/compose/all.sh down                 # stop (volumes are kept; add -v to drop the data)
# Works from any directory. The env file is deploy/compose/.env unless FUNMAGIC_ENV_FILE names another.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
env_file="${FUNMAGIC_ENV_FILE:-$here/.env}"

if [[ ! -f "$env_file" ]]; then
	echo "all.sh: $env_file not found; copy $here/.env.example to it and fill in the secrets" >&2
	exit 2
fi

compose_files=(infra.yml identity.yml tasks.yml credits.yml storage.yml providers.yml gateway.yml web.yml)
# S3_SERVER=minio (in the environment or the env file) runs MinIO instead of SeaweedFS.
s3_server="${S3_SERVER:-$(sed -n 's/^S3_SERVER=//p' "$env_file" | tail -1)}"
case ${s3_server:-seaweedfs} in
seaweedfs) ;;
minio) compose_files+=(s3-minio.yml) ;;
*)
	echo "all.sh: S3_SERVER=$s3_server: use seaweedfs (the default) or minio" >&2
	exit 2
	;;
esac
args=()
for file in "${compose_files[@]}"; do
	args+=(-f "$here/$file")
done

# The env file is the one source of settings: compose would let a variable of the calling shell win over
# it, and a shell that sourced the native stack's env (S3_ENDPOINT=http://127.0.0.1:8333, …) would hand
# the containers addresses they cannot reach. Only what docker itself needs is passed on.
passed=(PATH="$PATH" HOME="$HOME")
while IFS='=' read -r name _; do
	case $name in DOCKER_* | COMPOSE_* | BUILDKIT_*) passed+=("$name=${!name}") ;; esac
done < <(env)
exec env -i "${passed[@]}" docker compose --project-directory "$here" --env-file "$env_file" "${args[@]}" "$@"
