"""The metric names the shipped PromQL uses: the Grafana dashboard's panel queries
(``deploy/grafana/liveclass.json``) and the Prometheus rules (``deploy/prometheus/alerts.yml``).

Pure functions, no Prometheus needed, so that tests can hold these names to the documented
metrics table (``tests/unit/test_alert_rules.py``) and to a live ``/metrics`` scrape.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml

#: Series that Prometheus makes for each target itself: never in a ``/metrics`` scrape.
SCRAPE_SERIES = frozenset({"up"})
#: The series a histogram ``x`` exposes are ``x_bucket``, ``x_sum`` and ``x_count``.
HISTOGRAM_SUFFIXES = ("_bucket", "_sum", "_count")

# PromQL lexemes that hold no metric name: string literals (label values, regexes), comments,
# label matchers ({job="x"}) and label lists (by (...), on (...), ...). Grafana variables ($job,
# ${job}, $__rate_interval) are removed first. A selector by {__name__="..."} names one.
_NAME_MATCHER = re.compile(r'__name__\s*=\s*"([^"]*)"')
_VARIABLE = re.compile(r"\$\{[^}]*\}|\$\w+")
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"|\'(?:[^\'\\]|\\.)*\'|`[^`]*`')
_COMMENT = re.compile(r"#[^\n]*")
_MATCHERS = re.compile(r"\{[^{}]*\}")
_LABEL_LIST = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\([^()]*\)")
_IDENTIFIER = re.compile(r"(?<![\w:])[A-Za-z_:][\w:]*")
_OURS = re.compile(r"^(?:liveclass_\w+|process_\w+)$")


def referenced_metrics(text: str) -> set[str]:
    """The metric names a PromQL expression (or several, concatenated) selects.

    Args:
        text: PromQL; Grafana's ``$variables`` may appear in it.

    Returns:
        The ``liveclass_*``, ``process_*`` and ``up`` names used, a histogram's
        ``_bucket``/``_sum``/``_count`` series under the histogram's own name
        (``liveclass_delivery_seconds_bucket`` -> ``liveclass_delivery_seconds``). Names of other
        exporters, functions, keywords and label names are left out.
    """
    text = _VARIABLE.sub(" ", text)
    found = _NAME_MATCHER.findall(text)
    text = _STRING.sub('""', text)
    text = _LABEL_LIST.sub(" ", _MATCHERS.sub(" ", _COMMENT.sub(" ", text)))
    names: set[str] = set()
    for name in found + _IDENTIFIER.findall(text):
        if name in SCRAPE_SERIES:
            names.add(name)
        elif _OURS.match(name):
            names.add(_histogram_base(name))
    return names


def _histogram_base(name: str) -> str:
    for suffix in HISTOGRAM_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def dashboard_exprs(path: Path | str) -> list[str]:
    """Every panel query (``targets[].expr``) of a Grafana dashboard JSON file, in panel order,
    panels inside collapsed rows included. Template variable queries are not PromQL and are left
    out."""
    dashboard = json.loads(Path(path).read_text(encoding="utf-8"))
    return [
        target["expr"]
        for panel in dashboard_panels(dashboard)
        for target in panel.get("targets", [])
        if target.get("expr")
    ]


def dashboard_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The dashboard's panels, rows excluded, with the panels of collapsed rows (which Grafana
    keeps inside the row) in their place."""
    panels: list[dict[str, Any]] = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            panels.extend(panel.get("panels", []))
        else:
            panels.append(panel)
    return panels


def rule_exprs(path: Path | str) -> list[str]:
    """Every rule's ``expr`` (alerting and recording) of a Prometheus rule file, in file order.

    Raises:
        yaml.YAMLError: the file is not YAML.
        KeyError: a group without ``rules`` or a rule without ``expr``.
    """
    document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    return [str(rule["expr"]) for group in document["groups"] for rule in group["rules"]]
