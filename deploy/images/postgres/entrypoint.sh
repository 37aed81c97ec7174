#!/usr/bin/env bash
# The postgres image's start, in short: on an empty $PGDATA, initdb with POSTGRES_USER/POSTGRES_PASSWORD,
# create POSTGRES_DB, run /docker-entrypoint-initdb.d/*.sh and *.sql against a server that listens on
# its unix socket only, stop it; then run the server (the command's arguments go to it) on every
# interface with password authentication.
set -euo pipefail

: "${POSTGRES_PASSWORD:?set POSTGRES_PASSWORD}"
export POSTGRES_USER="${POSTGRES_USER:-postgres}"
export POSTGRES_DB="${POSTGRES_DB:-$POSTGRES_USER}"
socket_dir=/var/run/postgresql

if [[ ! -s $PGDATA/PG_VERSION ]]; then
	echo "postgres-entrypoint: initialising $PGDATA"
	mkdir -p "$PGDATA"
	chmod 700 "$PGDATA"
	initdb --username="$POSTGRES_USER" --pwfile=<(printf '%s\n' "$POSTGRES_PASSWORD") \
		--auth-local=trust --auth-host=scram-sha-256 --encoding=UTF8 --locale=C.UTF-8 "$PGDATA" >/dev/null
	# Password logins from anywhere (the container's network decides who can reach it).
	printf 'host all all 0.0.0.0/0 scram-sha-256\nhost all all ::/0 scram-sha-256\n' >>"$PGDATA/pg_hba.conf"
	pg_ctl -D "$PGDATA" -o "-c listen_addresses='' -k $socket_dir" -w start >/dev/null
	if [[ $POSTGRES_DB != postgres ]]; then
		# From stdin: psql interpolates :"db" there, not in -c.
		psql -v ON_ERROR_STOP=1 -h "$socket_dir" -U "$POSTGRES_USER" -d postgres \
			--set=db="$POSTGRES_DB" <<<'CREATE DATABASE :"db"' >/dev/null
	fi
	for script in /docker-entrypoint-initdb.d/*; do
		case $script in
		*.sh) echo "postgres-entrypoint: running $script" && PGHOST=$socket_dir bash "$script" ;;
		*.sql) echo "postgres-entrypoint: running $script" \
			&& psql -v ON_ERROR_STOP=1 -h "$socket_dir" -U "$POSTGRES_USER" -d "$POSTGRES_DB" -f "$script" ;;
		*) ;;
		esac
	done
	pg_ctl -D "$PGDATA" -m fast -w stop >/dev/null
	echo "postgres-entrypoint: ready for the first start"
fi

[[ ${1:-postgres} == postgres ]] && shift || true
exec postgres -D "$PGDATA" -c listen_addresses='*' -k "$socket_dir" "$@"
