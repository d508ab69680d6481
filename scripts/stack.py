"""Start and stop the service's processes (web, worker, beat, Flower) for the demo and the
benchmark, with local sinks standing in for the providers."""

import contextlib
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def free_port(preferred: int) -> int:
    import socket

    for port in (preferred, 0):
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return sock.getsockname()[1]
    raise RuntimeError("no free port")


def persistent_secret(data_dir: Path) -> str:
    path = data_dir / "secret_key"
    if not path.exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        path.write_text(secrets.token_urlsafe(48))
        path.chmod(0o600)
    return path.read_text().strip()


class Stack:
    def __init__(self, env: dict[str, str], log_dir: Path):
        # Every process writes its metrics here, so /metrics shows the workers' too;
        # a fresh folder each start, as prometheus_client's multiprocess mode wants.
        metrics_dir = log_dir.parent / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        self.env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(metrics_dir), **env}
        self.log_dir = log_dir
        self.processes: list[tuple[str, subprocess.Popen]] = []
        log_dir.mkdir(parents=True, exist_ok=True)

    def manage(self, *args: str) -> str:
        result = subprocess.run(
            [str(BIN / "python"), "manage.py", *args],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise RuntimeError(f"manage.py {' '.join(args)} failed:\n{result.stderr}")
        return result.stdout

    def start(self, name: str, *command: str) -> None:
        log = open(self.log_dir / f"{name}.log", "ab")  # noqa: SIM115 - lives with the process
        process = subprocess.Popen(
            list(command),
            cwd=ROOT,
            env=self.env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((name, process))

    def start_web(self, port: int, workers: int = 2) -> None:
        self.start(
            "web",
            str(BIN / "gunicorn"),
            "notifications_project.wsgi",
            "--config",
            "python:notifications_project.gunicorn_conf",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            str(workers),
            "--threads",
            "4",
        )

    def start_worker(
        self, concurrency: int = 2, events: bool = False, name: str = "worker", queues: str = ""
    ):
        command = [
            str(BIN / "celery"),
            "-A",
            "notifications_project",
            "worker",
            "--loglevel",
            "WARNING",
            "--concurrency",
            str(concurrency),
            "--hostname",
            f"{name}@%h",
        ]
        self.start(name, *command, *(["-E"] if events else []), *(["-Q", queues] if queues else []))

    def start_beat(self) -> None:
        self.start(
            "beat",
            str(BIN / "celery"),
            "-A",
            "notifications_project",
            "beat",
            "--loglevel",
            "WARNING",
            "--schedule",
            str(self.log_dir / "beat-schedule"),
        )

    def start_flower(self, port: int, auth: str) -> None:
        self.start(
            "flower",
            str(BIN / "celery"),
            "-A",
            "notifications_project",
            "flower",
            f"--port={port}",
            "--address=127.0.0.1",
            f"--basic-auth={auth}",
        )

    def wait_ready(self, base_url: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for name, process in self.processes:
                if process.poll() is not None:
                    raise RuntimeError(f"{name} exited; see {self.log_dir / (name + '.log')}")
            with contextlib.suppress(httpx.HTTPError):  # not listening yet
                if httpx.get(f"{base_url}/readyz", timeout=2).status_code == 200:
                    return
            time.sleep(0.3)
        raise RuntimeError(f"the service did not become ready; logs in {self.log_dir}")

    def stop(self) -> None:
        for _name, process in reversed(self.processes):
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _name, process in self.processes:
            try:
                process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
