#!/usr/bin/env bash
# Writes server.properties from the environment, formats the storage once, runs the broker in the
# foreground (SIGTERM → a controlled shutdown).
set -euo pipefail

config=/opt/kafka/config/server.properties
: "${CLUSTER_ID:?set CLUSTER_ID (22 characters of URL-safe base64, e.g. from kafka.tools.StorageTool random-uuid)}"

# The apache/kafka convention: strip KAFKA_, then ___ → -, __ → _, _ → ., lower case.
# KAFKA_HEAP_OPTS and KAFKA_OPTS are JVM settings, not broker properties.
{
	echo "# written by kafka-entrypoint from the KAFKA_* environment"
	while IFS='=' read -r name value; do
		[[ $name == KAFKA_* && $name != KAFKA_HEAP_OPTS && $name != KAFKA_OPTS ]] || continue
		key=${name#KAFKA_}
		key=${key//___/-}
		key=${key//__/@}
		key=${key//_/.}
		key=${key//@/_}
		echo "${key,,}=$value"
	done < <(env)
	grep -q '^KAFKA_LOG_DIRS=' < <(env) || echo "log.dirs=/var/lib/kafka/data"
} >"$config"

java_opts=(-Dlog4j2.configurationFile=/opt/kafka/config/log4j2.properties -Djava.awt.headless=true)
if ! ls /var/lib/kafka/data/meta.properties "${KAFKA_LOG_DIRS:-/var/lib/kafka/data}/meta.properties" >/dev/null 2>&1; then
	echo "kafka-entrypoint: formatting the storage for cluster $CLUSTER_ID"
	java -Xmx256m "${java_opts[@]}" -cp '/opt/kafka/libs/*' kafka.tools.StorageTool \
		format --ignore-formatted --cluster-id "$CLUSTER_ID" --config "$config"
fi
# shellcheck disable=SC2086 # the heap and JVM options are lists of words
exec java ${KAFKA_HEAP_OPTS} -XX:+UseG1GC -XX:MaxGCPauseMillis=20 -XX:+ExitOnOutOfMemoryError ${KAFKA_OPTS:-} \
	"${java_opts[@]}" -cp '/opt/kafka/libs/*' kafka.Kafka "$config"
