"""The monitoring files are checked, not just written: the alert rules and the example scrape
config through ``promtool`` (its unit tests fire each alert on a fault and keep it quiet on a
healthy series), the Grafana dashboard's shape and every query's PromQL, and both held to the
runbook and the metrics table of docs/operations.md: every metric they name is documented, and
every alert's ``runbook_url`` lands on a heading there.

promtool is required (Debian's `prometheus` package has it): without it these tests fail rather
than skip, so that a CI image without it does not pass silently."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.prometheus_rules import (
    SCRAPE_SERIES,
    dashboard_exprs,
    dashboard_panels,
    referenced_metrics,
    rule_exprs,
)

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS = ROOT / "deploy" / "prometheus"
ALERTS = PROMETHEUS / "alerts.yml"
ALERTS_TEST = PROMETHEUS / "alerts_test.yml"
SCRAPE_CONFIG = PROMETHEUS / "prometheus.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "liveclass.json"
OPERATIONS = ROOT / "docs" / "operations.md"
RUNBOOK_PREFIX = "docs/operations.md#"
ROWS = ["Signaling", "Rooms", "Redis", "Whiteboard", "SFU", "Process"]
SEVERITIES = {"critical", "warning"}
#: What the dashboard's template variables stand for when its queries are checked as PromQL.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$job": "liveclass.*", "$instance": ".+"}


def promtool(*args: str, cwd: Path = PROMETHEUS) -> str:
    """Run promtool; fail the test with its output when it exits non-zero."""
    path = shutil.which("promtool") or "/usr/local/bin/promtool"
    if not Path(path).is_file():
        pytest.fail(
            "promtool not found on PATH or at /usr/local/bin/promtool: install it (Debian: "
            "apt-get install prometheus; or Prometheus's release tarball) to check the alert rules"
        )
    done = subprocess.run(
        [path, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"promtool {' '.join(args)} failed:\n{output}"
    return output


def alert_rules() -> list[dict[str, Any]]:
    document = yaml.safe_load(ALERTS.read_text(encoding="utf-8"))
    return [rule for group in document["groups"] for rule in group["rules"] if "alert" in rule]


def dashboard() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    return loaded


def operations_section(title: str) -> str:
    """The text of the ``## <title>`` section of docs/operations.md, up to the next ``## ``."""
    text = OPERATIONS.read_text(encoding="utf-8")
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## |\Z)", text, re.M | re.S)
    assert match, f"docs/operations.md has no '## {title}' section"
    return match.group(1)


def documented_metrics() -> set[str]:
    """The metric names of the "## Metrics" table: the backticked names in each row's first
    cell (``| `liveclass_rooms` | gauge | ...``)."""
    names: set[str] = set()
    for line in operations_section("Metrics").splitlines():
        if line.startswith("| `"):
            first_cell = line.split("|")[1]
            names.update(re.findall(r"`([a-z_:][a-z0-9_:]*)`", first_cell))
    return names


def github_anchor(heading: str) -> str:
    """The fragment GitHub gives a Markdown heading: lower case, punctuation but ``-`` and ``_``
    dropped, spaces to ``-``."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def heading_anchors() -> set[str]:
    text = OPERATIONS.read_text(encoding="utf-8")
    return {github_anchor(h) for h in re.findall(r"^#{1,6} (.+)$", text, re.M)}


# --- promtool ---------------------------------------------------------------------------------


def test_alert_rules_pass_promtool_check() -> None:
    assert "SUCCESS" in promtool("check", "rules", ALERTS.name)


def test_each_alert_fires_on_its_fault_and_stays_quiet_on_healthy_series() -> None:
    assert "SUCCESS" in promtool("test", "rules", ALERTS_TEST.name)


def test_every_alert_has_a_firing_and_a_quiet_unit_test() -> None:
    document = yaml.safe_load(ALERTS_TEST.read_text(encoding="utf-8"))
    assert document["rule_files"] == [ALERTS.name]
    checks = [c for test in document["tests"] for c in test.get("alert_rule_test", [])]
    fired = {c["alertname"] for c in checks if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in checks if not c.get("exp_alerts")}
    names = {rule["alert"] for rule in alert_rules()}
    assert names - fired == set(), "alerts no unit test makes fire"
    assert names - quiet == set(), "alerts no unit test expects to stay quiet"


def test_example_scrape_config_is_valid_and_loads_the_rules() -> None:
    promtool("check", "config", SCRAPE_CONFIG.name)
    config = yaml.safe_load(SCRAPE_CONFIG.read_text(encoding="utf-8"))
    assert config["rule_files"] == [ALERTS.name]
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"liveclass", "liveclass-sfu"}, "alerts.yml and the dashboard use these jobs"


# --- the dashboard ----------------------------------------------------------------------------


def test_dashboard_takes_its_prometheus_at_import_and_filters_by_job_and_instance() -> None:
    board = dashboard()
    assert board["schemaVersion"] == 39
    assert [i["name"] for i in board["__inputs"]] == ["DS_PROMETHEUS"]
    variables = {v["name"]: v for v in board["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == "${DS_PROMETHEUS}"
    for name in ("job", "instance"):
        assert variables[name]["type"] == "query"
        assert variables[name]["datasource"]["uid"] == "${datasource}"


def test_dashboard_has_a_row_per_part_of_the_system() -> None:
    rows = [p["title"] for p in dashboard()["panels"] if p["type"] == "row"]
    assert rows == ROWS


def test_every_dashboard_panel_has_a_datasource_and_a_query() -> None:
    panels = dashboard_panels(dashboard())
    assert len(panels) > 30
    for panel in panels:
        title = panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, title
        assert panel["targets"], f"{title}: no target"
        for target in panel["targets"]:
            assert target["datasource"] == panel["datasource"], title
            assert target["expr"].strip(), f"{title}: empty query"
            assert '$job"' in target["expr"] and '$instance"' in target["expr"], (
                f"{title}: {target['expr']} ignores the job/instance variables"
            )


def test_dashboard_panels_have_unique_ids_and_do_not_overlap() -> None:
    panels = dashboard()["panels"]
    ids = [p["id"] for p in panels]
    assert len(ids) == len(set(ids))
    taken: set[tuple[int, int]] = set()
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"{panel['title']} overlaps another panel"
        taken |= cells


def test_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    """promtool parses each query as a recording rule, the Grafana variables filled in."""
    rules = []
    for number, expr in enumerate(dashboard_exprs(DASHBOARD)):
        for variable, value in GRAFANA_VARIABLES.items():
            expr = expr.replace(variable, value)
        assert "$" not in expr, f"a Grafana variable this test does not fill in: {expr}"
        rules.append({"record": f"dashboard:query:{number}", "expr": expr})
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    promtool("check", "rules", path.name, cwd=tmp_path)


# --- held to docs/operations.md ---------------------------------------------------------------


@pytest.mark.parametrize("source", ["dashboard", "alerts"])
def test_every_metric_used_is_in_the_documented_table(source: str) -> None:
    exprs = dashboard_exprs(DASHBOARD) if source == "dashboard" else rule_exprs(ALERTS)
    used = set().union(*map(referenced_metrics, exprs)) - SCRAPE_SERIES
    assert used, "no metric found in the queries"
    missing = used - documented_metrics()
    assert not missing, f"used by the {source} but not in docs/operations.md, Metrics: {missing}"


def test_every_alert_has_a_duration_a_severity_a_summary_and_a_runbook() -> None:
    anchors = heading_anchors()
    for rule in alert_rules():
        name = rule["alert"]
        assert "for" in rule, f"{name}: no 'for'"
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert rule["annotations"]["summary"].strip(), name
        url = rule["annotations"]["runbook_url"]
        assert url == RUNBOOK_PREFIX + github_anchor(name), f"{name}: runbook_url {url}"
        assert url.removeprefix(RUNBOOK_PREFIX) in anchors, (
            f"{name}: docs/operations.md has no heading '### {name}'"
        )


# --- tests/prometheus_rules.py ----------------------------------------------------------------


def test_referenced_metrics_names_histograms_by_their_base_name() -> None:
    expr = (
        'histogram_quantile(0.99, sum by (le) (rate(liveclass_delivery_seconds_bucket{job=~"$job"}'
        "[$__rate_interval]))) / sum(rate(liveclass_batch_commands_sum[5m]))"
        " / sum(rate(liveclass_batch_commands_count[5m]))"
    )
    assert referenced_metrics(expr) == {"liveclass_delivery_seconds", "liveclass_batch_commands"}


def test_referenced_metrics_ignores_label_values_label_names_and_other_exporters() -> None:
    expr = (
        'up{job=~"liveclass.*", instance!="liveclass_x"} == 0 and on (liveclass_label) '
        "node_load1 > process_cpu_seconds_total # liveclass_in_a_comment"
    )
    assert referenced_metrics(expr) == {"up", "process_cpu_seconds_total"}
    assert referenced_metrics('{__name__="liveclass_rooms"}') == {"liveclass_rooms"}
