"""The codec's environment variables, in one table: each is read, typed and checked here.

A bad value raises ConfigurationError naming the variable (``EMMM_MAX_PIXELS=0`` coded every
image at 1x1; ``abc`` was a traceback); an empty variable means its default. This module
imports nothing heavy, so the site checks every variable at start-up (``check``) without
loading torch. What each variable means: docs/codec-api.md, "Environment".
"""

from __future__ import annotations

import math
import os
import re
import sys
from collections.abc import Callable, Collection
from dataclasses import dataclass

from .errors import CodecError


class ConfigurationError(CodecError):
    """An environment variable of the codec has a value it cannot use."""


@dataclass(frozen=True)
class Variable:
    name: str
    default: int | float | str | None
    minimum: float | None = None
    maximum: float | None = None
    above: float | None = None  # exclusive lower bound
    pattern: str | None = None  # a str variable's allowed values (a regular expression)
    expected: str = ""  # how a str variable's value looks, for the message
    integer: bool = True  # for numbers: a whole number
    choices: Callable[[], Collection[str]] | None = None  # a str variable's allowed values, when they are a list


def _whole(name: str, default: int | None, minimum: int, maximum: int | None = None) -> Variable:
    return Variable(name, default, minimum=minimum, maximum=maximum)


def _real(name: str, default: float, *, minimum: float | None = None, above: float | None = None,
          maximum: float | None = None) -> Variable:
    return Variable(name, default, minimum=minimum, above=above, maximum=maximum, integer=False)


#: The models codec/models/registry.py registers, for checking EMMM_DEFAULT_MODEL before it is
#: imported (it loads torch; the site checks this table at start-up without). Once it is
#: imported, its own list is used (a model registered at run time included).
BUILTIN_MODELS = ("sd-vae-ft-mse", "taef2", "taesd")


def _model_names() -> Collection[str]:
    registry = sys.modules.get("codec.models.registry")
    return registry.available_models() if registry is not None else BUILTIN_MODELS


VARIABLES: dict[str, Variable] = {v.name: v for v in (
    Variable("EMMM_DEFAULT_MODEL", "taef2", choices=_model_names, expected="a registered model name"),
    _whole("EMMM_MAX_PIXELS", 512 * 512, 1),
    _whole("EMMM_MAX_INPUT_PIXELS", 50_000_000, 1),
    _whole("EMMM_TORCH_THREADS", None, 1),
    Variable("EMMM_VAE_FORMAT", "v2", pattern=r"v1|v2", expected="v1 or v2"),
    Variable("EMMM_DEVICE", "cpu", pattern=r"[a-z]+(:\d+)?", expected="a torch device such as cpu, cuda, cuda:<n> or mps"),
    _whole("EMMM_STEP_UNITS", 4467, 1, 65535),
    _whole("EMMM_REFINE_STEPS", 8, 0, 100),
    _whole("EMMM_REFINE_MAX_PIXELS", 1024 * 1024, 0),
    _whole("EMMM_V2_STEP_UNITS", 110, 1, 65535),
    _real("EMMM_V2_TARGET_DB", 2.75, above=0),
    _whole("EMMM_V2_PLAIN_STEPS", 1, 0, 100),
    _whole("EMMM_V2_QA_STEPS", 2, 0, 100),
    _whole("EMMM_V2_BUDGET_PLAIN_STEPS", 0, 0, 100),
    _whole("EMMM_V2_BUDGET_QA_STEPS", 3, 0, 100),
    _real("EMMM_V2_BB_FIRST", 0.03, above=0),
    _real("EMMM_V2_CEILING_DB", 40.0, above=0),
    _whole("EMMM_V2_FLOOR_CHECKS", 0, 0, 100),
    _real("EMMM_V2_RATE_WEIGHT", 0.01, minimum=0),
    _real("EMMM_V2_FLOOR_DB", 0.3, minimum=0),
    _real("EMMM_V2_DEADZONE", 0.0, minimum=0, maximum=0.5),
    _real("EMMM_V2_BUDGET_DEADZONE", 0.1, minimum=0, maximum=0.5),
    _real("EMMM_V2_SECOND_SIZE", 0.9, above=0, maximum=1),
    Variable("EMMM_OFFLINE", "0", pattern=r"(?i)1|0|true|false|yes|no|on|off", expected="1 or 0 (true/false, yes/no, on/off)"),
)}


def value(name: str) -> int | float | str | None:
    """The variable's value from the environment (its default when unset or empty), checked."""
    variable = VARIABLES[name]
    raw = os.environ.get(name, "").strip()
    if not raw:
        return variable.default
    if variable.choices is not None:
        names = sorted(variable.choices())
        if raw not in names:
            raise ConfigurationError(f"{name}={raw!r}: expected {variable.expected} ({', '.join(names)})")
        return raw
    if variable.pattern is not None:
        if not re.fullmatch(variable.pattern, raw):
            raise ConfigurationError(f"{name}={raw!r}: expected {variable.expected}")
        return raw
    try:
        number = int(raw) if variable.integer else float(raw)
    except ValueError:
        number = None
    low = variable.minimum if variable.minimum is not None else variable.above
    if (number is None or not math.isfinite(number)
            or (variable.minimum is not None and number < variable.minimum)
            or (variable.above is not None and number <= variable.above)
            or (variable.maximum is not None and number > variable.maximum)):
        kind = "a whole number" if variable.integer else "a number"
        bounds = ("" if low is None else f" {'from' if variable.minimum is not None else 'above'} {low:g}") + (
            "" if variable.maximum is None else f" to {variable.maximum:g}")
        raise ConfigurationError(f"{name}={raw!r}: expected {kind}{bounds}")
    return number


def switch(name: str) -> bool:
    """A 1/0 (true/false, yes/no, on/off) variable's value, checked."""
    return str(value(name)).lower() in {"1", "true", "yes", "on"}


def check() -> None:
    """Read every variable of the table: ConfigurationError for the first bad one."""
    for name in VARIABLES:
        value(name)
