"""The compose stack cannot run here (no Docker engine), so it is checked as a compose
file would be: it parses, its services run commands that exist in this project, the
files it mounts exist, and the dashboard only queries metrics the service exports."""

import json
import re
import shlex
from pathlib import Path

import yaml
from prometheus_client import REGISTRY

ROOT = Path(__file__).resolve().parent.parent
COMPOSE = ROOT / "compose"
SUFFIXES = {"counter": ("_total",), "histogram": ("_bucket", "_sum", "_count"), "gauge": ("",)}


def load():
    return yaml.safe_load((COMPOSE / "docker-compose.yml").read_text())


def test_compose_file_has_the_stack_and_its_services_run_real_commands():
    services = load()["services"]
    expected = {
        "postgres",
        "redis",
        "web",
        "worker",
        "beat",
        "flower",
        "prometheus",
        "grafana",
        "jaeger",
    }
    assert expected <= set(services)
    procfile = (ROOT / "Procfile").read_text()
    for name in ("web", "worker", "beat", "flower", "escalation", "migrate"):
        command = shlex.split(services[name]["command"])
        assert services[name]["build"]["dockerfile"] == "compose/Dockerfile"
        if command[0] == "celery":
            assert command[1:3] == ["-A", "notifications_project"] and command[3] in procfile
        elif command[0] == "gunicorn":
            assert command[1] == "notifications_project.wsgi"
            assert (ROOT / "notifications_project" / "gunicorn_conf.py").exists()
        else:
            assert command[:2] == ["python", "manage.py"] and command[2] == "migrate"
    assert (COMPOSE / "Dockerfile").exists()
    assert "OTEL_EXPORTER_OTLP_ENDPOINT" in services["web"]["environment"]


def test_mounted_configuration_files_exist_and_parse():
    services = load()["services"]
    for name in ("prometheus", "grafana"):
        for volume in services[name]["volumes"]:
            source = volume.split(":")[0]
            assert (COMPOSE / source).exists(), source
    scrape = yaml.safe_load((COMPOSE / "prometheus" / "prometheus.yml").read_text())
    assert scrape["scrape_configs"][0]["static_configs"][0]["targets"] == ["web:8000"]
    datasource = yaml.safe_load(
        (COMPOSE / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"


def exported_names() -> set[str]:
    names = set()
    for family in REGISTRY.collect():
        for suffix in SUFFIXES.get(family.type, ("",)):
            names.add(family.name + suffix)
        names.update(sample.name for sample in family.samples)
    return names


def test_dashboard_queries_only_metrics_the_service_exports():
    dashboard = json.loads((COMPOSE / "grafana/dashboards/notifications.json").read_text())
    expressions = [t["expr"] for panel in dashboard["panels"] for t in panel["targets"]]
    used = {name for expr in expressions for name in re.findall(r"\bnotification_[a-z_]+", expr)}
    exported = exported_names()
    assert used, "the dashboard queries nothing?"
    assert used <= exported, sorted(used - exported)
    titles = " ".join(p["title"].lower() for p in dashboard["panels"])
    for topic in ("per second", "failure", "latency", "queue depth", "circuit", "escalation"):
        assert topic in titles
