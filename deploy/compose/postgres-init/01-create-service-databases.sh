#!/usr/bin/env bash
# Creates one login role and one database per FunMagic service: funmagic_<service>, owned by its
# role, closed to every other role (no service reads another service's database).
#
# The postgres image runs this once, on the first start with an empty data volume. To add a
# database to an existing volume, run the same statements by hand with psql (see README.md).
# Passwords come from the container's environment (<SERVICE>_DB_PASSWORD, set from .env).
set -eo pipefail

create_service_database() {
	local service="$1" password="$2"
	if [[ -z "$password" ]]; then
		echo "create_service_database: no password for $service (set ${service^^}_DB_PASSWORD)" >&2
		exit 1
	fi
	# psql variables (:"name" quotes an identifier, :'name' a literal) keep the password out of
	# the SQL text and safe whatever characters it holds.
	psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
		--set=role="funmagic_${service}" --set=password="$password" <<-'SQL'
		CREATE ROLE :"role" LOGIN PASSWORD :'password';
		CREATE DATABASE :"role" OWNER :"role";
		REVOKE ALL ON DATABASE :"role" FROM PUBLIC;
	SQL
	echo "created database funmagic_${service} owned by role funmagic_${service}"
}

create_service_database identity "$IDENTITY_DB_PASSWORD"
create_service_database tasks "$TASKS_DB_PASSWORD"
create_service_database credits "$CREDITS_DB_PASSWORD"
create_service_database storage "$STORAGE_DB_PASSWORD"
create_service_database providers "$PROVIDERS_DB_PASSWORD"
