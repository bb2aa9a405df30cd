"""Where review sheets go out, come back, and are kept once applied (all under the data dir)."""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

SHEET_SUFFIXES = (".csv", ".xlsx")


@dataclass(frozen=True)
class ReviewPaths:
    root: Path
    lang: str

    @property
    def outbox_csv(self) -> Path:
        return self.root / "outbox" / f"{self.lang}.csv"

    @property
    def outbox_xlsx(self) -> Path:
        return self.root / "outbox" / f"{self.lang}.xlsx"

    @property
    def inbox_dir(self) -> Path:
        return self.root / "inbox"

    @property
    def label_studio_dir(self) -> Path:
        """Where the Label Studio sensor writes the annotations it pulled, as returned sheets."""
        return self.root / "label_studio"

    @property
    def store(self) -> Path:
        return self.root / "store" / f"{self.lang}.jsonl"

    def returned_sheets(self) -> list[Path]:
        """Sheets waiting in the inbox for this language: ``<lang>.csv`` / ``<lang>.xlsx``."""
        return [p for p in (self.inbox_dir / f"{self.lang}{s}" for s in SHEET_SUFFIXES) if p.is_file()]

    def archive(self, sheet: Path) -> Path:
        """Move an applied sheet out of the inbox or the Label Studio folder (kept, time-stamped), so it is
        not applied twice; a sheet elsewhere is left where it is."""
        stamp = time.strftime("%Y%m%dT%H%M%S")
        target = self.root / "processed" / f"{stamp}-{sheet.name}"
        n = 1
        while target.exists():  # a second sheet archived within the same second keeps the first
            n += 1
            target = self.root / "processed" / f"{stamp}-{n}-{sheet.name}"
        target.parent.mkdir(parents=True, exist_ok=True)
        if sheet.resolve().parent in (self.inbox_dir.resolve(), self.label_studio_dir.resolve()):
            os.replace(sheet, target)
        return target


def review_paths(data_dir: Path, lang: str) -> ReviewPaths:
    return ReviewPaths(data_dir / "review", lang)
