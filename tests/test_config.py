"""Configuration comes from the environment, read in one place, with safe development defaults."""

from __future__ import annotations

import pytest

from app import config, create_app

PRODUCTION_ENV = {
    "APP_ENV": "production",
    "SECRET_KEY": "a-real-secret",
    "DASHBOARD_USERNAME": "ops",
    "DASHBOARD_PASSWORD": "s3cret",
}


def test_an_empty_environment_gives_working_development_defaults():
    # Given no environment at all
    # When the settings are loaded
    settings = config.load(environ={})
    # Then they describe a local development setup
    assert settings["APP_ENV"] == "development"
    assert settings["REDIS_URL"] == "redis://127.0.0.1:6379/0"
    assert settings["PORT"] == 5000
    assert settings["SECRET_KEY"]
    assert 0 < settings["REDIS_SOCKET_TIMEOUT"] <= 5


@pytest.mark.parametrize(
    ("variable", "raw", "key", "expected"),
    [
        ("REDIS_URL", "redis://cache:6380/2", "REDIS_URL", "redis://cache:6380/2"),
        ("SECRET_KEY", "xyz", "SECRET_KEY", "xyz"),
        ("PORT", "8080", "PORT", 8080),
        ("REDIS_SOCKET_TIMEOUT", "0.5", "REDIS_SOCKET_TIMEOUT", 0.5),
        ("APP_ENV", "development", "APP_ENV", "development"),
        ("FLASK_ENV", "development", "APP_ENV", "development"),
        ("DASHBOARD_USERNAME", "ops", "DASHBOARD_USERNAME", "ops"),
        ("VAR_DIR", "/tmp/x", "VAR_DIR", "/tmp/x"),
    ],
)
def test_each_variable_overrides_its_default_parsed_to_its_type(variable, raw, key, expected):
    # Given one variable in the environment
    # When the settings are loaded
    settings = config.load(environ={variable: raw})
    # Then the setting has the variable's value, with the setting's type
    assert settings[key] == expected


def test_empty_variables_are_ignored_rather_than_blanking_a_setting():
    assert config.load(environ={"REDIS_URL": "", "PORT": " "})["PORT"] == 5000


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"PORT": "http"}, "PORT='http' is not a valid int"),
        ({"PORT": "70000"}, "PORT must be between"),
        ({"REDIS_SOCKET_TIMEOUT": "-1"}, "REDIS_SOCKET_TIMEOUT must be a positive"),
        ({"APP_ENV": "staging"}, "APP_ENV must be"),
    ],
)
def test_unreadable_values_are_refused_with_the_variable_named(environ, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ=environ)


@pytest.mark.parametrize(
    ("missing", "override"),
    [
        ("SECRET_KEY", {"SECRET_KEY": ""}),
        ("SECRET_KEY", {"SECRET_KEY": config.DEV_SECRET_KEY}),
        ("DASHBOARD_USERNAME", {"DASHBOARD_USERNAME": ""}),
        ("DASHBOARD_PASSWORD", {"DASHBOARD_PASSWORD": ""}),
    ],
)
def test_production_refuses_to_start_without_its_secrets(missing, override):
    # Given a production environment lacking one secret (or using the development one)
    environ = {**PRODUCTION_ENV, **override}
    # When the app is created, Then it refuses and names what is missing
    with pytest.raises(config.ConfigError, match=missing):
        config.load(environ=environ)


def test_production_starts_when_every_secret_is_set(monkeypatch):
    # Given a complete production environment
    for variable, value in PRODUCTION_ENV.items():
        monkeypatch.setenv(variable, value)
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    # When the app is created (nothing connects to Redis yet)
    app = create_app()
    # Then it runs with the environment's settings
    assert (app.config["APP_ENV"], app.config["SECRET_KEY"]) == ("production", "a-real-secret")
    assert app.config["REDIS_URL"] == "redis://127.0.0.1:1/0"


def test_create_app_refuses_production_without_secret_key(monkeypatch):
    monkeypatch.delenv("SECRET_KEY", raising=False)
    monkeypatch.setenv("APP_ENV", "production")
    with pytest.raises(config.ConfigError, match="SECRET_KEY"):
        create_app()


def test_test_config_wins_over_the_environment(monkeypatch):
    # Given a REDIS_URL in the environment
    monkeypatch.setenv("REDIS_URL", "redis://from-env:6379/0")
    # When the app is created with a test_config
    app = create_app({"REDIS_URL": "redis://from-test:6379/0"})
    # Then the test_config's value is used
    assert app.config["REDIS_URL"] == "redis://from-test:6379/0"


def test_the_web_app_reads_the_environment_only_through_the_config_module():
    # Given the web app's modules (the launcher only passes the environment on to its children)
    modules = [
        path for path in (config.PROJECT_ROOT / "app").glob("*.py") if path.name not in ("config.py", "launcher.py")
    ]
    modules += list((config.PROJECT_ROOT / "app" / "web").rglob("*.py"))
    # Then none of them reads os.environ itself
    assert [path.name for path in modules if "os.environ" in path.read_text() or "getenv" in path.read_text()] == []


@pytest.mark.parametrize(
    ("variable", "raw", "key", "expected"),
    [
        ("API_TOKENS", " token-a-0123456789abcdef , token-b-0123456789abcdef,", "API_TOKENS",
         ("token-a-0123456789abcdef", "token-b-0123456789abcdef")),
        ("METRICS_PUBLIC", "true", "METRICS_PUBLIC", True),
        ("METRICS_PUBLIC", "0", "METRICS_PUBLIC", False),
        ("SUBMIT_RATE_LIMIT", "10/5s", "SUBMIT_RATE_LIMIT", "10/5s"),
        ("MAX_QUEUED_TASKS", "500", "MAX_QUEUED_TASKS", 500),
        ("PROXY_COUNT", "1", "PROXY_COUNT", 1),
        ("WEB_THREADS", "16", "WEB_THREADS", 16),
        ("EVENT_STREAM_MAX_SECONDS", "30", "EVENT_STREAM_MAX_SECONDS", 30.0),
    ],
)
def test_each_security_variable_is_read_with_its_type(variable, raw, key, expected):
    assert config.load(environ={variable: raw})[key] == expected


def test_production_bounds_submits_unless_told_otherwise_and_development_does_not():
    assert config.load(environ={})["SUBMIT_RATE_LIMIT"] is None
    assert config.load(environ={})["MAX_QUEUED_TASKS"] == 0
    production = config.load(environ=PRODUCTION_ENV)
    assert (production["SUBMIT_RATE_LIMIT"], production["MAX_QUEUED_TASKS"]) == ("60/m", 10_000)
    assert config.load(environ={**PRODUCTION_ENV, "SUBMIT_RATE_LIMIT": "off"})["SUBMIT_RATE_LIMIT"] == "off"


def test_the_pages_take_the_dashboard_credentials_unless_their_own_are_set():
    assert config.page_credentials(config.load(environ=PRODUCTION_ENV)) == ("ops", "s3cret")
    own = config.load(environ={**PRODUCTION_ENV, "APP_USERNAME": "user", "APP_PASSWORD": "pw"})
    assert config.page_credentials(own) == ("user", "pw")


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ({"APP_USERNAME": "user"}, "set both APP_USERNAME and APP_PASSWORD"),
        ({"APP_PASSWORD": "pw"}, "set both APP_USERNAME and APP_PASSWORD"),
        ({"API_TOKENS": "short"}, "at least 16 characters"),
        ({"METRICS_TOKEN": "short"}, "METRICS_TOKEN must be at least 16"),
    ],
)
def test_production_refuses_half_set_credentials_and_guessable_tokens(override, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ={**PRODUCTION_ENV, **override})


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"EVENT_STREAMS_PER_WORKER": "5"}, "EVENT_STREAMS_PER_WORKER must be between 0 and half of WEB_THREADS"),
        ({"WEB_THREADS": "4", "EVENT_STREAMS_PER_WORKER": "3"}, "half of WEB_THREADS"),
        ({"WEB_THREADS": "1"}, "WEB_THREADS at least 2"),
        ({"SUBMIT_RATE_LIMIT": "lots"}, "SUBMIT_RATE_LIMIT"),
        ({"METRICS_PUBLIC": "maybe"}, "METRICS_PUBLIC='maybe' is not a valid boolean"),
        ({"MAX_QUEUED_TASKS": "-1"}, "MAX_QUEUED_TASKS"),
    ],
)
def test_server_and_rate_settings_that_cannot_work_are_refused(environ, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ=environ)
