"""docker-compose.yml describes the same system for deployment: Redis with persistence, web, scalable workers.

No Docker engine runs here, so the file is read as data and checked against what the README promises.
"""

from __future__ import annotations

import re
import runpy
import shlex

import pytest
import yaml

from app import config

COMPOSE = yaml.safe_load((config.PROJECT_ROOT / "docker-compose.yml").read_text())
SERVICES = COMPOSE["services"]
DOCKERFILE = (config.PROJECT_ROOT / "Dockerfile").read_text()


def interpolate(value: str) -> str:
    """Resolve compose's ${VAR:-default} to the default and ${VAR:?error} to a sample value."""
    value = re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", value)
    return re.sub(r"\$\{(\w+):\?[^}]*\}", lambda m: f"sample-{m.group(1).lower()}", value)


def command(service: str) -> list[str]:
    cmd = SERVICES[service]["command"]
    return shlex.split(cmd) if isinstance(cmd, str) else cmd


def test_the_system_is_redis_web_and_worker():
    assert set(SERVICES) == {"redis", "web", "worker"}


def test_redis_is_the_official_image_persisting_to_a_volume_with_append_only_files():
    redis = SERVICES["redis"]
    # Official images have no owner prefix ("redis:7.4", not "someone/redis").
    assert re.fullmatch(r"redis:[\w.-]+", redis["image"])
    assert command("redis")[0] == "redis-server"
    assert " ".join(command("redis")).find("--appendonly yes") >= 0
    volume, _, mount = redis["volumes"][0].partition(":")
    assert mount == "/data" and volume in COMPOSE["volumes"]


def test_the_web_app_runs_under_gunicorn_with_the_one_server_configuration():
    web = SERVICES["web"]
    assert web["build"] == "."
    assert command("web") == ["gunicorn", "-c", "gunicorn.conf.py"]
    assert any(port.endswith(":8000") for port in web["ports"])


def test_the_server_configuration_serves_the_factory_with_threads_to_spare_beyond_the_streams():
    settings = runpy.run_path(str(config.PROJECT_ROOT / "gunicorn.conf.py"))
    assert settings["wsgi_app"] == "app:create_app()"
    assert settings["bind"] == ["0.0.0.0:8000"]
    assert settings["worker_class"] == "gthread"
    defaults = config.defaults()
    assert (settings["workers"], settings["threads"]) == (defaults["WEB_WORKERS"], defaults["WEB_THREADS"])
    # Live streams may take at most half the threads of a process: the rest serve pages and /healthz
    assert defaults["EVENT_STREAMS_PER_WORKER"] <= settings["threads"] // 2


def test_the_readme_starts_gunicorn_the_same_way():
    readme = (config.PROJECT_ROOT / "README.md").read_text()
    # Every gunicorn command line (the word followed by an option or an app), not prose about gunicorn
    commands = re.findall(r"gunicorn (?:-|')[^\n`]*", readme)
    assert commands and all("-c gunicorn.conf.py" in line for line in commands), commands


def test_the_worker_is_python_worker_py_and_can_be_scaled():
    worker = SERVICES["worker"]
    assert command("worker") == ["python", "worker.py"]
    assert worker["image"] == SERVICES["web"]["image"]
    # A fixed container name or a published port would make `--scale worker=4` fail.
    assert "container_name" not in worker and "ports" not in worker


@pytest.mark.parametrize("service", ["web", "worker"])
def test_web_and_worker_wait_for_a_healthy_redis(service):
    assert SERVICES[service]["depends_on"]["redis"]["condition"] == "service_healthy"
    assert SERVICES["redis"]["healthcheck"]["test"][-1] == "ping"


@pytest.mark.parametrize("service", ["web", "worker"])
def test_web_and_worker_share_a_valid_production_configuration(service):
    environment = {key: interpolate(str(value)) for key, value in SERVICES[service]["environment"].items()}
    # Every variable is one the app reads, under its conventional name
    assert set(environment) <= {*config._ENVIRONMENT, "FLASK_ENV"}
    assert environment["REDIS_URL"] == "redis://redis:6379/0"
    # And, once the operator has set the secrets, the app accepts it as a production configuration
    settings = config.load(environ=environment)
    assert settings["APP_ENV"] == "production"


@pytest.mark.parametrize("secret", ["SECRET_KEY", "DASHBOARD_PASSWORD"])
def test_compose_refuses_to_start_without_the_production_secrets(secret):
    # ${VAR:?message} makes `docker compose up` stop with the message when VAR is unset.
    assert SERVICES["web"]["environment"][secret].startswith(f"${{{secret}:?")


def test_the_image_runs_the_same_web_command_and_contains_app_and_worker():
    assert re.search(r"^FROM python:3\.1\d", DOCKERFILE, re.MULTILINE)
    assert "COPY app ./app" in DOCKERFILE and "COPY worker.py gunicorn.conf.py ./" in DOCKERFILE
    cmd = re.search(r"^CMD (.+)$", DOCKERFILE, re.MULTILINE).group(1)
    assert yaml.safe_load(cmd) == command("web")
