"""The report's one template engine: Jinja2 over the package's templates, every value HTML-escaped."""

from __future__ import annotations

import math
from functools import cache
from pathlib import Path
from typing import Any

import jinja2

TEMPLATES = Path(__file__).resolve().parent
REPORT_NAME = "report.html"  # in a build folder and in a fine-tune run's folder


def _percent(value: float | None, digits: int = 1) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}%}"


def _db(value: float | None) -> str:
    if value is None or math.isnan(value):
        return "—"
    if math.isinf(value):
        return "exact" if value > 0 else "-inf dB"
    shown = f"{value:.1f}"
    return ("0.0" if shown == "-0.0" else shown) + " dB"


@cache
def environment() -> jinja2.Environment:
    """Autoescaping on for every template, whatever its suffix: file, class and layer names are user text."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["percent"] = _percent
    env.filters["db"] = _db
    return env


def render(template: str, **context: Any) -> str:
    return environment().get_template(template).render(**context)
