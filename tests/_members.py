"""Discovery shared by the cross-package tests: workspace members, their apps and verbs (a package added later is
covered without editing any test)."""

from __future__ import annotations

import dataclasses
import sys
import typing
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
PACKAGES = sorted(p for p in (ROOT / "packages").glob("*") if (p / "pyproject.toml").is_file())
NAMES = [p.name for p in PACKAGES]


def app_of(name: str):
    """The package's App (``<name>.cli.app``); raises (the test fails) when the package has none yet."""
    from tenfold_core.cli import find_app

    return find_app(name)


def preset_sections(member: Path, preset: str) -> dict:
    import yaml

    f = member / "configs" / f"{preset}.yaml"
    if not f.is_file():
        return {}
    data = yaml.safe_load(f.read_text()) or {}
    return data if isinstance(data, dict) else {}


def leaf_fields(cls: type, prefix: str = ""):
    """(dotted key, annotated type) of every leaf field of a config dataclass (class defaults only)."""
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        if isinstance(tp, type) and dataclasses.is_dataclass(tp):
            yield from leaf_fields(tp, prefix + f.name + ".")
        else:
            yield prefix + f.name, tp, f


def required_positionals(cls: type) -> list[str]:
    return [
        k
        for k, _, f in leaf_fields(cls)
        if f.metadata.get("positional")
        and f.default is dataclasses.MISSING
        and f.default_factory is dataclasses.MISSING  # type: ignore[misc]
    ]
