"""Start, check and stop the six FunMagic services as local processes against the local stack.

    python deploy/local/run_services.py up [--port-base 8000] [--run-dir .stack/services]
    python deploy/local/run_services.py down
    python deploy/local/run_services.py status

Reads the stack's environment (KAFKA_BOOTSTRAP_SERVERS, REDIS_URL, <SERVICE>_DATABASE_URL, S3_*), as
written by `deploy/local/stack.sh up` to `.stack/env`. Each service gets its own DATABASE_URL and
HTTP_PORT; logs go to `<run-dir>/<service>.log`. `up` returns once the gateway's /health/all is green.
Importable, so e2e tests start the same processes on other ports.

With no STRIPE_SECRET_KEY set, `up` also starts the fake Stripe server (tests/fakes/stripe_api.py) on
port base + 9, in Stripe's test mode: Buy → its Pay button → webhook → credited works on a laptop, and
the pricing page says that no money moves.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SERVICES = (
    "identity",
    "tasks",
    "credits",
    "storage",
    "providers",
    "gateway",
)  # gateway last: it checks the rest
PORT_OFFSETS = {"gateway": 0, "identity": 1, "tasks": 2, "credits": 3, "storage": 4, "providers": 5}
FAKE_STRIPE_OFFSET = 9
FAKE_STRIPE = "fake-stripe"
# Test-mode credentials of the local fake only (`sk_test_`: Stripe's own prefix for test keys).
FAKE_STRIPE_SECRET_KEY = "sk_test_local_fake_stripe"
FAKE_STRIPE_WEBHOOK_SECRET = "whsec_local_fake_stripe"


@dataclass
class ServiceProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def service_environment(name: str, base_env: dict[str, str], port_base: int) -> dict[str, str]:
    env = dict(base_env)
    env["HTTP_PORT"] = str(port_base + PORT_OFFSETS[name])
    env.setdefault("LOG_LEVEL", "INFO")
    identity_url = f"http://127.0.0.1:{port_base + PORT_OFFSETS['identity']}"
    env.setdefault("AUTH_JWKS_URL", f"{identity_url}/.well-known/jwks.json")
    env.setdefault("PUBLIC_API_URL", f"http://127.0.0.1:{port_base + PORT_OFFSETS['gateway']}")
    gateway_port = port_base + PORT_OFFSETS["gateway"]
    gateway_origin = f"http://127.0.0.1:{gateway_port}"
    # The apps are served by the gateway: mail links and the end of OAuth sign-ins lead there.
    env.setdefault("PUBLIC_APP_URL", gateway_origin)
    # Back from Stripe Checkout to the web app's pricing pages.
    env.setdefault("CHECKOUT_SUCCESS_URL", f"{gateway_origin}/pricing/success")
    env.setdefault("CHECKOUT_CANCEL_URL", f"{gateway_origin}/pricing/cancel")
    # The browser reaches the object store directly (presigned uploads, 3D downloads): its buckets answer
    # CORS for the gateway's origin, where the apps are served.
    env.setdefault("S3_CORS_ORIGINS", f"{gateway_origin},http://localhost:{gateway_port}")
    if name != "gateway":
        key = f"{name.upper()}_DATABASE_URL"
        if key not in base_env:
            raise SystemExit(f"{key} is not set: source .stack/env (make stack-up writes it)")
        env["DATABASE_URL"] = base_env[key]
    else:
        # Plain-http localhost: browsers drop Secure cookies there. Production keeps the default (true).
        env.setdefault("COOKIE_SECURE", "false")
        # The built apps (make web-build), served on the gateway's own origin (the admin app at /admin/);
        # their pages may load pictures and models from the object store and the CDN.
        env.setdefault("WEB_APP_DIR", str(REPO / "apps" / "web" / "dist"))
        env.setdefault("WEB_ADMIN_APP_DIR", str(REPO / "apps" / "admin" / "dist"))
        env.setdefault("WEB_CONTENT_ORIGINS", " ".join(_content_origins(base_env)))
    # Where the others listen (the gateway calls all of them; providers calls storage).
    for other in SERVICES[:-1]:
        if other != name:
            env[f"{other.upper()}_URL"] = f"http://127.0.0.1:{port_base + PORT_OFFSETS[other]}"
    return env


def _content_origins(env: dict[str, str]) -> list[str]:
    origins = []
    for name in ("S3_PUBLIC_ENDPOINT", "S3_ENDPOINT", "CDN_URL"):
        value = env.get(name, "")
        if value.startswith(("http://", "https://")):
            parts = value.split("/")
            origin = "/".join(parts[:3])
            if origin not in origins:
                origins.append(origin)
    return origins


def start_service(name: str, base_env: dict[str, str], port_base: int, run_dir: Path) -> ServiceProcess:
    run_dir.mkdir(parents=True, exist_ok=True)
    env = service_environment(name, base_env, port_base)
    log_path = run_dir / f"{name}.log"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", f"funmagic_{name}"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
    (run_dir / f"{name}.pid").write_text(str(process.pid))
    return ServiceProcess(name, int(env["HTTP_PORT"]), process, log_path)


def get_json(url: str, timeout: float = 3.0) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read() or b"{}")


def wait_until_healthy(service: ServiceProcess, path: str = "/health/all", timeout: float = 90.0) -> dict:
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        if service.process.poll() is not None:
            tail = service.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}:\n{tail}")
        try:
            status, body = get_json(service.url + path)
            if status == 200:
                return body
            last = body
        except (OSError, ValueError) as error:
            last = error
        time.sleep(0.2)
    raise TimeoutError(f"{service.name} not healthy at {path} after {timeout}s: {last}")


def start_all(base_env: dict[str, str], port_base: int, run_dir: Path) -> list[ServiceProcess]:
    started: list[ServiceProcess] = []
    try:
        for name in SERVICES:
            started.append(start_service(name, base_env, port_base, run_dir))
        for service in started:
            wait_until_healthy(service)
    except BaseException:
        stop_all(started)
        raise
    return started


def stop_service(service: ServiceProcess, timeout: float = 30.0) -> int:
    if service.process.poll() is None:
        service.process.send_signal(signal.SIGTERM)
        try:
            service.process.wait(timeout)
        except subprocess.TimeoutExpired:
            service.process.kill()
            service.process.wait()
    return service.process.returncode


def stop_all(services: list[ServiceProcess]) -> dict[str, int]:
    return {s.name: stop_service(s) for s in reversed(services)}


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except OSError:
        return False
    return True


def start_fake_stripe(port_base: int, run_dir: Path, timeout: float = 30.0) -> dict[str, str]:
    """Starts the fake Stripe server for `make run`; returns the credits service's Stripe settings."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log_path = run_dir / f"{FAKE_STRIPE}.log"
    log_path.write_bytes(b"")
    gateway = f"http://127.0.0.1:{port_base + PORT_OFFSETS['gateway']}"
    with log_path.open("ab") as log:
        process = subprocess.Popen(
            [
                sys.executable,
                str(REPO / "tests" / "fakes" / "stripe_api.py"),
                f"--port={port_base + FAKE_STRIPE_OFFSET}",
                f"--secret-key={FAKE_STRIPE_SECRET_KEY}",
                f"--webhook-url={gateway}/api/webhooks/stripe",
                f"--webhook-secret={FAKE_STRIPE_WEBHOOK_SECRET}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            start_new_session=True,
        )
    (run_dir / f"{FAKE_STRIPE}.pid").write_text(str(process.pid))
    deadline = time.monotonic() + timeout
    while "FAKE_STRIPE_URL=" not in (text := log_path.read_text(errors="replace")):
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"the fake Stripe server did not start:\n{text[-2000:]}")
        time.sleep(0.1)
    url = text.split("FAKE_STRIPE_URL=", 1)[1].split()[0]
    return {
        "STRIPE_API_BASE": url,
        "STRIPE_SECRET_KEY": FAKE_STRIPE_SECRET_KEY,
        "STRIPE_WEBHOOK_SECRET": FAKE_STRIPE_WEBHOOK_SECRET,
    }


def _cmd_up(args: argparse.Namespace) -> int:
    running = [n for n in SERVICES if _read_pid(args.run_dir, n) and _pid_alive(_read_pid(args.run_dir, n))]
    if running:
        print(f"[services] already running: {', '.join(running)} (run `down` first)")
        return 0
    started_at = time.monotonic()
    base_env = dict(os.environ)
    if not base_env.get("STRIPE_SECRET_KEY"):
        base_env.update(start_fake_stripe(args.port_base, args.run_dir))
        fake = base_env["STRIPE_API_BASE"]
        print(f"[services] payments: TEST MODE, fake Stripe at {fake} (no money moves)")
    services = start_all(base_env, args.port_base, args.run_dir)
    _, health = get_json(services[-1].url + "/health/all")
    elapsed = time.monotonic() - started_at
    print(f"[services] all six up in {elapsed:.1f}s; gateway /health/all: {health['status']}")
    for name, check in health["checks"].items():
        detail = " ".join(f"{k}={'ok' if v else 'FAIL'}" for k, v in check.get("detail", {}).items())
        print(
            f"  {name:10} {'ok' if check['ok'] else 'FAIL':4} {check.get('latency_ms', '-'):>7} ms  {detail}"
        )
    print(f"[services] gateway: {services[-1].url}  logs: {args.run_dir}/<service>.log")
    return 0


def _read_pid(run_dir: Path, name: str) -> int | None:
    path = run_dir / f"{name}.pid"
    return int(path.read_text()) if path.exists() else None


def _cmd_down(args: argparse.Namespace) -> int:
    running = [n for n in SERVICES if (pid := _read_pid(args.run_dir, n)) and _pid_alive(pid)]
    if running and args.quiet:
        print(f"[services] stopping the dev services first ({', '.join(running)}): they share the topics")
    for name in (*reversed(SERVICES), FAKE_STRIPE):
        pid = _read_pid(args.run_dir, name)
        if pid and _pid_alive(pid):
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + 30
            while _pid_alive(pid) and time.monotonic() < deadline:
                time.sleep(0.1)
            if _pid_alive(pid):
                os.kill(pid, signal.SIGKILL)
            if not args.quiet:
                print(f"[services] {name} stopped")
        (args.run_dir / f"{name}.pid").unlink(missing_ok=True)
    return 0


def _cmd_status(args: argparse.Namespace) -> int:
    for name in (*SERVICES, FAKE_STRIPE):
        pid = _read_pid(args.run_dir, name)
        state = "running" if pid and _pid_alive(pid) else "stopped"
        print(f"{name:11} {state}")
    return 0


def _cmd_command(args: argparse.Namespace) -> int:
    """Run a service's CLI command with that service's environment (its own database)."""
    if not args.arguments:
        raise SystemExit("usage: run_services.py command <service> <command> [args...]")
    service, *rest = args.arguments
    if service not in SERVICES:
        raise SystemExit(f"unknown service {service!r}; one of {', '.join(SERVICES)}")
    env = service_environment(service, dict(os.environ), args.port_base)
    return subprocess.run([sys.executable, "-m", f"funmagic_{service}", *rest], env=env, cwd=REPO).returncode


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["up", "down", "status", "command"])
    parser.add_argument("--quiet", action="store_true", help="for `down`: print only when something runs")
    parser.add_argument(
        "arguments", nargs=argparse.REMAINDER, help="for `command`: <service> <command> [args]"
    )
    parser.add_argument("--port-base", type=int, default=int(os.environ.get("FUNMAGIC_PORT_BASE", "8000")))
    parser.add_argument(
        "--run-dir",
        type=Path,
        default=Path(os.environ.get("FUNMAGIC_STACK_DIR", REPO / ".stack")) / "services",
    )
    args = parser.parse_args()
    commands = {"up": _cmd_up, "down": _cmd_down, "status": _cmd_status, "command": _cmd_command}
    return commands[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
