"""FastAPI's native OpenTelemetry hooks, switched off: dealmail configures no OpenTelemetry."""

from __future__ import annotations

import inspect
from typing import Any

from fastapi import FastAPI

# Recent FastAPI versions look up the global OpenTelemetry providers on every request, even when
# none is configured (~11 us per app, and the device API is an app mounted inside another: a
# tenth of a validate's server time). Older versions have no such hooks and no such argument.
TELEMETRY_OFF: dict[str, Any] = (
    {"telemetry": {"tracing": False, "metrics": False, "logs": False, "operation_spans": False}}
    if "telemetry" in inspect.signature(FastAPI.__init__).parameters
    else {}
)
