#!/usr/bin/env bash
# Creates what `goldsignals postgres start` creates in host mode: the owner
# role, the read-only reader role, the group role goldsignals_readonly (the
# signals migrations grant it SELECT) and the databases goldsignals, mlflow and
# airflow, all owned by the owner role.
#
# The postgres image runs the scripts in /docker-entrypoint-initdb.d once, as
# the superuser POSTGRES_USER, when it starts on an empty data volume; changing
# .env later does not change the roles (ALTER ROLE ... PASSWORD by hand, or
# remove the volume). psql reads the names and passwords from the environment
# with \getenv and quotes them itself (:"name" as an identifier, :'name' as a
# literal), so they never appear on a command line and a quote in a password
# cannot end the statement.
set -eo pipefail

for name in GOLDSIGNALS_DB_USER GOLDSIGNALS_DB_PASSWORD \
    GOLDSIGNALS_DB_READER_USER GOLDSIGNALS_DB_READER_PASSWORD; do
    if [ -z "${!name}" ]; then
        echo "init-goldsignals.sh: $name is empty; set it in .env" >&2
        exit 1
    fi
done

psql --no-psqlrc --set ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres <<'SQL'
\getenv owner GOLDSIGNALS_DB_USER
\getenv owner_password GOLDSIGNALS_DB_PASSWORD
\getenv reader GOLDSIGNALS_DB_READER_USER
\getenv reader_password GOLDSIGNALS_DB_READER_PASSWORD
CREATE ROLE :"owner" LOGIN PASSWORD :'owner_password';
CREATE ROLE :"reader" LOGIN PASSWORD :'reader_password';
CREATE ROLE goldsignals_readonly NOLOGIN;
GRANT goldsignals_readonly TO :"reader";
CREATE DATABASE goldsignals OWNER :"owner";
CREATE DATABASE mlflow OWNER :"owner";
CREATE DATABASE airflow OWNER :"owner";
SQL
echo "init-goldsignals.sh: roles and databases goldsignals, mlflow, airflow created"
