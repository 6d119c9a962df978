"""The shipped Grafana dashboard and Prometheus alert rules query only series ``/metrics`` has.

Both files are parsed, every PromQL expression in them (panel targets, template variables,
alert rules) is reduced to the metric names it reads, and each must be one the real endpoint
exposes, scraped here from the real services. A renamed metric fails this test, not an
operator's dashboard months later.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import yaml
from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "deploy" / "grafana" / "orchestrator.json"
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
#: series Prometheus makes itself for every target
PROMETHEUS_OWN = frozenset({"up"})
#: PromQL keywords that are not followed by a parenthesis
KEYWORDS = frozenset({"or", "and", "unless", "bool", "offset", "inf", "nan"})
#: the alerts the issue asks for, by name
REQUIRED_ALERTS = {
    "OrchestratorJobFailing",
    "OrchestratorJobMissedRuns",
    "OrchestratorNoBeatLeader",
    "OrchestratorPgCronLauncherDown",
}


def metric_names(expr: str) -> set[str]:
    """The metric names a PromQL expression reads (Grafana's ``$variables`` and
    ``label_values(EXPR, label)`` allowed)."""
    text = re.sub(r"label_values\((.*),\s*\w+\)", r"\1", expr)
    text = re.sub(r"\$\w+", "x", text)
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # range selectors
    text = re.sub(r"\b(?:by|on|without|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = re.findall(r"(?<![\w.$])([a-zA-Z_:][a-zA-Z0-9_:]*)\b(?!\s*\()", text)
    return {name for name in names if name.lower() not in KEYWORDS}


def dashboard_exprs() -> list[str]:
    board = json.loads(DASHBOARD.read_text())
    exprs = [
        target["expr"]
        for panel in board["panels"]
        for target in panel.get("targets", [])
        if "expr" in target
    ]
    for variable in board["templating"]["list"]:
        query = variable.get("query")
        if isinstance(query, dict):
            exprs.append(query["query"])
    return exprs


def alert_rules() -> list[dict]:
    groups = yaml.safe_load(ALERTS.read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def exposed_names() -> set[str]:
    """Every series name the real ``/metrics`` declares, with the sample names of each type."""
    response = Client().get("/metrics")
    assert response.status_code == 200
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("_sum", "_count"),
    }
    names = set()
    for family in text_string_to_metric_families(response.content.decode()):
        names.add(family.name)
        names.update(family.name + suffix for suffix in suffixes.get(family.type, ()))
        names.update(sample.name for sample in family.samples)
    return names


def test_metric_names__reads_names_not_functions_labels_or_variables() -> None:
    """The extractor keeps metric names and drops functions, label lists, matchers, ranges,
    keywords, numbers and Grafana variables."""
    expr = (
        'histogram_quantile(0.95, sum by (job, le) (rate(a_bucket{job=~"$job", x="or b"}[1h])))'
        " or on (job) b_total > bool 1 unless vector(0) and label_values(c_info, engine)"
    )
    assert metric_names(expr) == {"a_bucket", "b_total", "c_info"}


def test_alert_rules__shape_and_the_alerts_operators_need() -> None:
    """Every rule has a name, an expression, a severity and a summary; the four alerts the
    issue names are there."""
    rules = alert_rules()
    assert {rule["alert"] for rule in rules} >= REQUIRED_ALERTS
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_dashboard__panels_have_ids_places_and_queries() -> None:
    """Panel ids are unique, every panel has a grid position, and every non-row panel has at
    least one PromQL target on the dashboard's data source variable."""
    board = json.loads(DASHBOARD.read_text())
    ids = [panel["id"] for panel in board["panels"]]
    assert len(ids) == len(set(ids))
    for panel in board["panels"]:
        assert {"x", "y", "w", "h"} <= panel["gridPos"].keys()
        if panel["type"] != "row":
            assert panel["targets"], panel["title"]
            assert all(t["datasource"]["uid"] == "${datasource}" for t in panel["targets"])


@pytest.mark.django_db
def test_monitoring__every_queried_metric_is_exposed_by_the_real_endpoint(settings) -> None:
    """Each metric name in the dashboard and the alert rules is declared by a scrape of the
    real ``/metrics`` (Prometheus' own ``up`` aside)."""
    settings.ORCHESTRATOR_METRICS_PING_MS = 50
    exposed = exposed_names()
    sources = {"dashboard": dashboard_exprs(), "alerts": [rule["expr"] for rule in alert_rules()]}
    queried = {
        source: {name for expr in exprs for name in metric_names(expr)}
        for source, exprs in sources.items()
    }
    assert len(queried["dashboard"]) >= 15
    assert len(queried["alerts"]) >= 8
    missing = {
        source: sorted(names - exposed - PROMETHEUS_OWN) for source, names in queried.items()
    }
    assert missing == {"dashboard": [], "alerts": []}, "queried but not exposed by /metrics"
