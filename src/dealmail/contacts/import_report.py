"""What a CSV import reports: row counts by outcome and the first invalid rows."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

INVALID_ROWS_KEPT = 1_000


@dataclass
class ImportReport:
    """Counts: rows = invalid + merged_duplicates + created + updated + skipped_consent +
    skipped_suppressed. `withdrawn` (customers unsubscribed because the file says so) is part
    of skipped_consent."""

    files: list[str]
    dry_run: bool
    tags: list[str]
    rows: int = 0
    created: int = 0
    updated: int = 0
    merged_duplicates: int = 0
    invalid: int = 0
    skipped_consent: int = 0
    skipped_suppressed: int = 0
    withdrawn: int = 0
    invalid_rows: list[dict[str, Any]] = field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def add_invalid(self, file: str, line: int, reason: str) -> None:
        self.invalid += 1
        if len(self.invalid_rows) < INVALID_ROWS_KEPT:
            self.invalid_rows.append({"file": file, "line": line, "reason": reason})


Progress = Callable[[int], None]
