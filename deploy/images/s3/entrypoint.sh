#!/usr/bin/env bash
# Writes SeaweedFS's identities from the environment and runs `weed server` with the S3 API on :9000.
#   S3_ACCESS_KEY, S3_SECRET_KEY   the storage service's keys (it creates its buckets at start)
#   S3_BUCKET_PUBLIC [funmagic-public]   the one bucket anyone may read (the CDN's origin)
set -euo pipefail
: "${S3_ACCESS_KEY:?set S3_ACCESS_KEY}" "${S3_SECRET_KEY:?set S3_SECRET_KEY}"
public="${S3_BUCKET_PUBLIC:-funmagic-public}"
identities=/etc/seaweedfs/identities.json
umask 077
cat >"$identities" <<JSON
{
  "identities": [
    {
      "name": "funmagic-storage",
      "credentials": [{"accessKey": "${S3_ACCESS_KEY}", "secretKey": "${S3_SECRET_KEY}"}],
      "actions": ["Admin", "Read", "Write", "List", "Tagging"]
    },
    {"name": "anonymous", "actions": ["Read:${public}"]}
  ]
}
JSON
# The flags are the native stack's (deploy/local/stack.sh): small sparse volumes, no stop pause, no
# telemetry, a fast leader election on restart, the Iceberg and Lance side ports off, small objects kept
# in the filer's store.
exec weed -logtostderr=true server -dir=/data -ip.bind=0.0.0.0 \
	-master.volumeSizeLimitMB=64 -volume.max=0 -volume.preStopSeconds=0 -master.telemetry=false \
	-master.electionTimeout=1s -filer.saveToFilerLimit=65536 \
	-s3 -s3.port=9000 -s3.config="$identities" -s3.port.iceberg=0 -s3.port.lance=0 "$@"
