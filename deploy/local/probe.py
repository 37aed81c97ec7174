"""Health probes (and small provisioning helpers) for the local dev stack.

Each probe sends one REAL request and exits 0 only when it succeeds:

    kafka      Metadata request (aiokafka admin client): >= 1 broker and an active controller.
    postgres   SELECT 1 over TCP with the configured user and password.
    redis      PING.
    s3         ListBuckets with the configured access/secret key (botocore).

Options shared by the probes:
    --wait SECONDS   keep retrying (short poll interval) until success or the deadline
    --pid PID        give up at once if that process has exited (used by stack.sh while it
                     waits for a server it just started)

Helpers used by stack.sh:
    pg-ensure   create/update the login role and the databases (idempotent)
    s3-buckets  create the three buckets (idempotent)
    s3-anon     check anonymous reads: public bucket readable, private bucket refused

Connection settings come from the same variables the stack writes to its env file
(KAFKA_BOOTSTRAP_SERVERS, POSTGRES_URL, REDIS_URL, S3_ENDPOINT, S3_ACCESS_KEY, S3_SECRET_KEY,
S3_REGION, S3_BUCKET_PUBLIC/PRIVATE/ADMIN), so after `source "$(deploy/local/stack.sh env)"`
you can run e.g. `python deploy/local/probe.py kafka` yourself.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable

DATABASE_VARS = (
    "IDENTITY_DATABASE_URL",
    "TASKS_DATABASE_URL",
    "CREDITS_DATABASE_URL",
    "STORAGE_DATABASE_URL",
    "PROVIDERS_DATABASE_URL",
)


class Fatal(Exception):
    """An error that retrying will not fix."""


def env(name: str, default: str | None = None) -> str:
    value = os.environ.get(name, default)
    if value is None:
        raise Fatal(f"environment variable {name} is not set")
    return value


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie still answers kill(0); treat it as dead.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return True


def retry(check: Callable[[], str], wait: float, pid: int | None, what: str) -> int:
    """Run check() until it returns (success) or the deadline passes."""
    deadline = time.monotonic() + wait
    last: BaseException | None = None
    interval = 0.1
    while True:
        try:
            detail = check()
            print(f"{what}: ok ({detail})" if detail else f"{what}: ok")
            return 0
        except (Fatal, ImportError) as e:  # retrying will not fix these
            print(f"{what}: {e!r}", file=sys.stderr)
            return 2
        except Exception as e:
            last = e
        if pid is not None and not pid_alive(pid):
            print(f"{what}: process {pid} exited; last error: {last!r}", file=sys.stderr)
            return 3
        if time.monotonic() >= deadline:
            print(f"{what}: not answering after {wait:g}s; last error: {last!r}", file=sys.stderr)
            return 1
        time.sleep(interval)
        interval = min(interval * 1.5, 0.5)


# --------------------------------------------------------------------------------------- kafka


def kafka_check() -> str:
    from aiokafka.admin import AIOKafkaAdminClient

    async def run() -> str:
        admin = AIOKafkaAdminClient(
            bootstrap_servers=env("KAFKA_BOOTSTRAP_SERVERS"),
            request_timeout_ms=5000,
            client_id="funmagic-stack-probe",
        )
        try:
            await admin.start()  # bootstrap = a MetadataRequest
            meta = await admin.describe_cluster()  # a second, explicit MetadataRequest
        finally:
            await admin.close()
        brokers = meta.get("brokers") or []
        controller = meta.get("controller_id", -1)
        if not brokers:
            raise RuntimeError("metadata lists no brokers")
        if controller is None or controller < 0:
            raise RuntimeError("metadata has no active controller")
        return f"{len(brokers)} broker(s), controller {controller}, cluster {meta.get('cluster_id')}"

    return asyncio.run(run())


# ------------------------------------------------------------------------------------ postgres


def with_database(url: str, dbname: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + dbname))


def server_url(url: str) -> str:
    """POSTGRES_URL names no database; libpq would then pick one named like the user."""
    parts = urllib.parse.urlsplit(url)
    return url if parts.path not in ("", "/") else with_database(url, "postgres")


def postgres_check() -> str:
    import psycopg

    with psycopg.connect(server_url(env("POSTGRES_URL")), connect_timeout=3) as conn:
        (one,) = conn.execute("SELECT 1").fetchone()
        version = conn.execute("SHOW server_version").fetchone()[0]
    if one != 1:
        raise RuntimeError(f"SELECT 1 returned {one!r}")
    return f"PostgreSQL {version}"


def pg_ensure(admin_url: str | None) -> int:
    """Create the login role (admin_url given) and the databases, idempotently.

    With --admin-url (our own cluster: a superuser over the Unix socket) the role is created or
    updated (LOGIN CREATEDB, password). Without it (a reused server) we connect as the configured
    user: if that user may create databases the missing ones are created, otherwise we only
    verify that every database accepts a connection.
    """
    import psycopg
    from psycopg import sql

    url = env("POSTGRES_URL")
    parts = urllib.parse.urlsplit(url)
    user = urllib.parse.unquote(parts.username or "")
    password = urllib.parse.unquote(parts.password or "")
    databases = ["funmagic"] + [urllib.parse.urlsplit(env(v)).path.lstrip("/") for v in DATABASE_VARS]

    if admin_url:
        conn = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
        owner = user
    else:
        try:
            conn = psycopg.connect(server_url(url), autocommit=True, connect_timeout=5)
        except psycopg.OperationalError as e:
            print(f"postgres: cannot connect as {user!r}: {e}", file=sys.stderr)
            return 1
        owner = None
    created: list[str] = []
    with conn:
        if admin_url:
            exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (user,)).fetchone()
            verb = "ALTER" if exists else "CREATE"
            conn.execute(
                sql.SQL("{} ROLE {} LOGIN CREATEDB PASSWORD {}").format(
                    sql.SQL(verb), sql.Identifier(user), sql.Literal(password)
                )
            )
            if not exists:
                created.append(f"role {user}")
        can_create = conn.execute(
            "SELECT rolsuper OR rolcreatedb FROM pg_roles WHERE rolname = current_user"
        ).fetchone()[0]
        have = {r[0] for r in conn.execute("SELECT datname FROM pg_database")}
        missing = [d for d in databases if d not in have]
        for d in missing:
            if not can_create:
                break
            stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(d))
            if owner:
                stmt += sql.SQL(" OWNER {}").format(sql.Identifier(owner))
            try:
                conn.execute(stmt)
                created.append(d)
            except psycopg.errors.DuplicateDatabase:
                pass
    if missing and not can_create:
        print(
            f"postgres: {user!r} may not create databases and these are missing: " + ", ".join(missing),
            file=sys.stderr,
        )
        return 1
    # Verify: every database answers SELECT 1 as the configured user.
    for d in databases:
        with psycopg.connect(with_database(url, d), connect_timeout=5) as c:
            c.execute("SELECT 1").fetchone()
    print("postgres: " + (f"created {', '.join(created)}" if created else "role and databases present"))
    return 0


# --------------------------------------------------------------------------------------- redis


def redis_check() -> str:
    import redis

    client = redis.Redis.from_url(
        env("REDIS_URL"), socket_connect_timeout=2, socket_timeout=3, retry_on_timeout=False
    )
    try:
        if client.ping() is not True:
            raise RuntimeError("PING did not answer PONG")
        version = client.info("server").get("redis_version")
    finally:
        client.close()
    return f"PONG, Redis {version}"


# ------------------------------------------------------------------------------------------ s3


def s3_client():
    import botocore.config
    import botocore.session

    session = botocore.session.get_session()
    return session.create_client(
        "s3",
        endpoint_url=env("S3_ENDPOINT"),
        aws_access_key_id=env("S3_ACCESS_KEY"),
        aws_secret_access_key=env("S3_SECRET_KEY"),
        region_name=env("S3_REGION", "us-east-1"),
        config=botocore.config.Config(
            connect_timeout=2,
            read_timeout=5,
            retries={"max_attempts": 1},
            s3={"addressing_style": "path"},
        ),
    )


def buckets() -> list[str]:
    return [
        env("S3_BUCKET_PUBLIC", "funmagic-public"),
        env("S3_BUCKET_PRIVATE", "funmagic-private"),
        env("S3_BUCKET_ADMIN", "funmagic-admin"),
    ]


def s3_check() -> str:
    names = [b["Name"] for b in s3_client().list_buckets().get("Buckets", [])]
    return f"ListBuckets: {len(names)} bucket(s)"


def s3_buckets() -> str:
    client = s3_client()
    have = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    created = []
    for name in buckets():
        if name in have:
            continue
        try:
            client.create_bucket(Bucket=name)
        except client.exceptions.BucketAlreadyOwnedByYou:
            continue
        created.append(name)
    have = {b["Name"] for b in client.list_buckets().get("Buckets", [])}
    if missing := [n for n in buckets() if n not in have]:
        raise RuntimeError(f"buckets still missing after create: {missing}")
    return f"created {', '.join(created)}" if created else "buckets present"


def s3_anon() -> int:
    """Anonymous GET: an object in the public bucket is served, one in the private bucket is not."""
    client = s3_client()
    public, private, _ = buckets()
    key = f"_probe/anon-{os.getpid()}.txt"
    results = {}
    for bucket in (public, private):
        client.put_object(Bucket=bucket, Key=key, Body=b"probe", ContentType="text/plain")
        url = f"{env('S3_ENDPOINT').rstrip('/')}/{bucket}/{key}"
        try:
            with urllib.request.urlopen(url, timeout=5) as r:
                results[bucket] = r.status
        except urllib.error.HTTPError as e:
            results[bucket] = e.code
        finally:
            client.delete_object(Bucket=bucket, Key=key)
    ok = results[public] == 200 and results[private] in (401, 403)
    print(
        f"s3-anon: anonymous GET {public} -> {results[public]}, {private} -> {results[private]}"
        + (" (ok)" if ok else " (WRONG)")
    )
    return 0 if ok else 1


# ---------------------------------------------------------------------------------------- main

CHECKS: dict[str, Callable[[], str]] = {
    "kafka": kafka_check,
    "postgres": postgres_check,
    "redis": redis_check,
    "s3": s3_check,
    "s3-buckets": s3_buckets,
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("what", choices=[*CHECKS, "pg-ensure", "s3-anon"])
    parser.add_argument("--wait", type=float, default=0.0, help="retry for up to this many seconds")
    parser.add_argument("--pid", type=int, help="stop waiting if this process exits")
    parser.add_argument("--admin-url", help="pg-ensure: superuser connection (creates the role)")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    # aiokafka logs every refused connection at ERROR while we poll; keep quiet unless asked.
    logging.basicConfig(level=logging.DEBUG if args.verbose else logging.CRITICAL)
    try:
        if args.what == "pg-ensure":
            return pg_ensure(args.admin_url)
        if args.what == "s3-anon":
            return s3_anon()
        return retry(CHECKS[args.what], args.wait, args.pid, args.what)
    except Fatal as e:
        print(f"{args.what}: {e}", file=sys.stderr)
        return 2
    except Exception as e:
        print(f"{args.what}: failed: {e!r}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
