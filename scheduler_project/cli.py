"""The developer entry point behind ``./tickwise``.

    ./tickwise run            the whole stack on this machine, a crashed process restarted
                              (Ctrl-C stops it all)
    ./tickwise test [ARGS]    the test suite (ARGS go to pytest)
    ./tickwise lint           the guard rails: import contracts, ruff, mypy
    ./tickwise servers start|stop|status
    ./tickwise web|beat|worker   one process of the stack (what docker-compose runs)

With no DATABASE_URL / REDIS_URL the embedded servers are used; a command that
started them stops them when it ends.
"""
from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from .embedded import ensure_servers, servers_status, stop_servers
from .embedded.state import state_dir

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable


def _servers_env() -> tuple[dict[str, str], tuple[str, ...]]:
    """Environment pointing at the servers, and the names of those this call started."""
    env = dict(os.environ)
    if env.get("DATABASE_URL") and env.get("REDIS_URL"):
        return env, ()
    servers = ensure_servers()
    env.setdefault("DATABASE_URL", servers.database_url)
    env.setdefault("REDIS_URL", servers.redis_url)
    return env, servers.started


def _manage(env: dict[str, str], *args: str) -> None:
    subprocess.run([PYTHON, "manage.py", *args], cwd=ROOT, env=env, check=True)


def web_command(bind: str, *, dev_server: bool = False) -> list[str]:
    """gunicorn (static files through whitenoise); Django's development server only when asked for."""
    if dev_server:
        return [PYTHON, "manage.py", "runserver", bind, "--noreload"]
    workers = os.environ.get("TICKWISE_WEB_WORKERS", "2")
    return [PYTHON, "-m", "gunicorn", "scheduler_project.wsgi:application", "--bind", bind, "--workers", workers,
            "--access-logfile", "-", "--graceful-timeout", "10",
            "--config", "python:scheduler_project.gunicorn_conf"]


def metrics_env(env: dict[str, str], *, wipe: bool) -> Path:
    """Point every process at one ``PROMETHEUS_MULTIPROC_DIR`` (set, or ``metrics/`` in the state folder).

    prometheus-client reads it at import, so it is set in the environment
    before a process starts; ``wipe`` deletes the counts of a previous stack.
    """
    path = Path(env.get("PROMETHEUS_MULTIPROC_DIR") or state_dir() / "metrics")
    path.mkdir(parents=True, exist_ok=True)
    if wipe:
        for stale in path.glob("*.db"):
            stale.unlink()
    env["PROMETHEUS_MULTIPROC_DIR"] = str(path)
    return path


def _quiet() -> list[str]:
    """With json logs, no start-up banner: it is printed, not logged, and would not parse as JSON."""
    return ["--quiet"] if os.environ.get("TICKWISE_LOG_FORMAT", "").strip() == "json" else []


def beat_command() -> list[str]:
    return [PYTHON, "-m", "celery", "-A", "scheduler_project", *_quiet(), "beat", "--loglevel", "INFO"]


def worker_command(name: str, concurrency: int = 1) -> list[str]:
    return [PYTHON, "-m", "celery", "-A", "scheduler_project", *_quiet(), "worker", "--loglevel", "INFO",
            "--concurrency", str(concurrency), "--hostname", f"{name}@%h",
            "--queues", os.environ.get("TICKWISE_QUEUE", "tickwise")]


def cmd_run(args: argparse.Namespace) -> int:
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _interrupt)  # explicit: a background shell job ignores SIGINT
    env, started = _servers_env()
    env.setdefault("DEBUG", "true")  # the local stack serves the admin's static files
    metrics_env(env, wipe=True)  # counters start from zero with the stack
    children: list[Child] = []
    try:
        _manage(env, "migrate", "--noinput", "-v", "0")
        _manage(env, "seed_demo")
        children = [Child("web", web_command(args.bind, dev_server=args.dev_server), env),
                    Child("beat", beat_command(), env),
                    Child("worker1", worker_command("worker1"), env), Child("worker2", worker_command("worker2"), env)]
        for child in children:
            child.start(time.monotonic())
        print(f"Tickwise is up: http://{args.bind}/admin/  (Ctrl-C stops everything)", flush=True)
        _supervise(children)
    except KeyboardInterrupt:
        pass
    finally:
        _terminate([child.process for child in children if child.process])
        if started:
            stop_servers(started)
            print(f"stopped embedded {', '.join(started)}", flush=True)
    return 0


def _interrupt(signum, frame) -> None:
    raise KeyboardInterrupt


# A child that exits is started again after a pause that doubles from
# RESTART_FIRST up to RESTART_MAX, so a crash loop (a taken port, a database
# that is down) costs a line every half minute instead of a busy CPU; a child
# that stayed up RESTART_STABLE seconds crashed afresh and starts over at
# RESTART_FIRST. The same policy as supervisord's or systemd's.
RESTART_FIRST, RESTART_MAX, RESTART_STABLE = 1.0, 30.0, 60.0


def restart_delay(previous: float, uptime: float) -> float:
    """The pause before restarting a child that exited after ``uptime`` seconds (``previous``: the last pause)."""
    if not previous or uptime >= RESTART_STABLE:
        return RESTART_FIRST
    return min(previous * 2, RESTART_MAX)


@dataclass
class Child:
    """One process of the local stack, in its own process group, restarted when it exits."""

    name: str
    command: list[str]
    env: dict[str, str]
    process: subprocess.Popen | None = None
    started_at: float = 0.0
    delay: float = 0.0  # the last restart's pause
    restart_at: float | None = None  # set while waiting out the pause

    def start(self, now: float) -> None:
        self.process = subprocess.Popen(self.command, cwd=ROOT, env=self.env, start_new_session=True)
        self.started_at, self.restart_at = now, None
        print(f"{self.name} started (pid {self.process.pid})", flush=True)

    def check(self, now: float) -> None:
        """Notice an exit and schedule the restart; start it once its pause is over."""
        if self.restart_at is not None:
            if now >= self.restart_at:
                self.start(now)
            return
        assert self.process is not None
        code = self.process.poll()
        if code is None:
            return
        uptime = now - self.started_at
        self.delay = restart_delay(self.delay, uptime)
        self.restart_at = now + self.delay
        print(f"{self.name} (pid {self.process.pid}) exited with {_exit_reason(code)} after {uptime:.0f}s; "
              f"restarting in {self.delay:.0f}s", flush=True)


def _exit_reason(code: int) -> str:
    if code < 0:
        return f"signal {signal.Signals(-code).name}"
    return f"code {code}"


def _supervise(children: list[Child]) -> None:
    """Restart any child that exits, until Ctrl-C or SIGTERM/SIGHUP (a KeyboardInterrupt)."""
    while True:
        for child in children:
            child.check(time.monotonic())
        time.sleep(0.5)


def _terminate(children: list[subprocess.Popen], grace: float = 15.0) -> None:
    for child in children:
        if child.poll() is None:
            os.killpg(child.pid, signal.SIGTERM)
    deadline = time.monotonic() + grace
    for child in children:
        try:
            child.wait(timeout=max(0.1, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


def cmd_test(args: argparse.Namespace) -> int:
    own_redis = "REDIS_URL" not in os.environ
    env, started = _servers_env()
    if own_redis:
        # Database 1 keeps test queues apart from a local stack's on database 0.
        env["REDIS_URL"] = env["REDIS_URL"].rsplit("/", 1)[0] + "/1"
    # Two test runs on one machine must not share a database or a queue.
    env.setdefault("TICKWISE_TEST_DATABASE", f"test_tickwise_{os.getpid()}")
    env.setdefault("TICKWISE_QUEUE", f"tickwise-test-{os.getpid()}")
    try:
        return subprocess.run([PYTHON, "-m", "pytest", *args.pytest_args], cwd=ROOT, env=env).returncode
    finally:
        if started:
            stop_servers(started)


# The guard rails, in the order a failure is cheapest to read; all run, any failure fails.
LINTERS = (
    ("import contracts", ["lint-imports"]),
    ("ruff", ["ruff", "check"]),
    ("mypy", ["mypy"]),
)


def cmd_lint(args: argparse.Namespace) -> int:
    """Run every linter; non-zero when any finds something.

    mypy's Django plugin reads the settings, which only parse these URLs:
    placeholders do when none are set (nothing connects to them).
    """
    env = dict(os.environ)
    env.setdefault("DATABASE_URL", "postgres://lint@127.0.0.1:1/lint")
    env.setdefault("REDIS_URL", "redis://127.0.0.1:1/0")
    bin_dir = Path(PYTHON).parent
    failed = []
    for name, (program, *rest) in LINTERS:
        print(f"== {name}", flush=True)
        if subprocess.run([str(bin_dir / program), *rest], cwd=ROOT, env=env).returncode:
            failed.append(name)
    if failed:
        print(f"lint failed: {', '.join(failed)}", flush=True)
    return 1 if failed else 0


def cmd_servers(args: argparse.Namespace) -> int:
    if args.action == "start":
        servers = ensure_servers()
        print(f"DATABASE_URL={servers.database_url}\nREDIS_URL={servers.redis_url}")
    elif args.action == "stop":
        stop_servers()
    for name, running in servers_status().items():
        print(f"{name}: {'running' if running else 'stopped'}")
    return 0


def cmd_process(args: argparse.Namespace) -> int:
    """Replace this process with one stack process (docker-compose services use this)."""
    env, _ = _servers_env()
    metrics_env(env, wipe=False)  # the other processes of this node count into the same files
    if args.command == "web":
        if args.migrate:
            _manage(env, "migrate", "--noinput")
        command = web_command(args.bind, dev_server=args.dev_server)
    elif args.command == "beat":
        command = beat_command()
    else:
        command = worker_command(args.name, args.concurrency)
    os.chdir(ROOT)
    os.execve(command[0], command, env)


def parser() -> argparse.ArgumentParser:
    root = argparse.ArgumentParser(prog="tickwise", description=__doc__,
                                   formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = root.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="the whole stack on this machine")
    run.add_argument("--bind", default="127.0.0.1:8000")
    run.add_argument("--dev-server", action="store_true", help="Django's runserver instead of gunicorn")
    run.set_defaults(handler=cmd_run)
    test = sub.add_parser("test", help="the test suite; extra arguments go to pytest")
    test.add_argument("pytest_args", nargs=argparse.REMAINDER)
    test.set_defaults(handler=cmd_test)
    sub.add_parser("lint", help="import contracts, ruff and mypy").set_defaults(handler=cmd_lint)
    servers = sub.add_parser("servers", help="the embedded PostgreSQL and Redis")
    servers.add_argument("action", choices=["start", "stop", "status"])
    servers.set_defaults(handler=cmd_servers)
    web = sub.add_parser("web", help="the Django web process")
    web.add_argument("--bind", default="127.0.0.1:8000")
    web.add_argument("--migrate", action="store_true", help="apply migrations first")
    web.add_argument("--dev-server", action="store_true", help="Django's runserver instead of gunicorn")
    sub.add_parser("beat", help="one beat process")
    worker = sub.add_parser("worker", help="one Celery worker node")
    worker.add_argument("--name", default="worker")
    worker.add_argument("--concurrency", type=int, default=1)
    for name in ("web", "beat", "worker"):
        sub.choices[name].set_defaults(handler=cmd_process)
    return root


def main(argv: list[str] | None = None) -> int:
    root = parser()
    args, unknown = root.parse_known_args(argv)
    if args.command == "test":
        args.pytest_args = unknown + args.pytest_args  # e.g. ./tickwise test -q -k dst
    elif unknown:
        root.error(f"unrecognized arguments: {' '.join(unknown)}")
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())
