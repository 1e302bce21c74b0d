"""Reading a liveclass process's ``/metrics`` in tests (Prometheus text, parsed by
prometheus_client's own parser)."""

from __future__ import annotations

import urllib.request
from typing import Any

from prometheus_client.parser import text_string_to_metric_families


def scrape(url: str) -> dict[str, Any]:
    """``/metrics`` as {family name as exposed: family}; counters under their ``_total`` name."""
    with urllib.request.urlopen(f"{url}/metrics", timeout=5) as response:
        text = response.read().decode()
    families = {}
    for family in text_string_to_metric_families(text):
        name = family.name + "_total" if family.type == "counter" else family.name
        families[name] = family
    return families


def value(families: dict[str, Any], name: str, **labels: str) -> float:
    """A counter's or gauge's value (summed over the samples matching ``labels``); a histogram's
    observation count."""
    family = families[name]
    wanted = {
        "counter": name,
        "gauge": name,
        "histogram": name + "_count",
    }[family.type]
    return sum(
        s.value
        for s in family.samples
        if s.name == wanted and all(s.labels.get(k) == v for k, v in labels.items())
    )
