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


class Pool:
    """Run one slow job per selected package, ``workers`` at a time, started when the first test asks for any of them
    (the machine has 2 cores: two single-threaded jobs keep both busy). ``selected`` comes from the session items, so
    ``-k funet`` runs only funet's job."""

    def __init__(self, job, workers: int = 2):
        self.job, self.workers, self.futures, self.executor = job, workers, {}, None

    def result(self, request, name: str):
        if self.executor is None:
            from concurrent.futures import ThreadPoolExecutor

            fn = request.node.originalname
            wanted = [it.callspec.params.get("name") for it in request.session.items
                      if getattr(it, "originalname", None) == fn and hasattr(it, "callspec")]  # fmt: skip
            self.executor = ThreadPoolExecutor(self.workers)
            for n in dict.fromkeys(w for w in wanted if w):
                self.futures[n] = self.executor.submit(self.job, n)
        if name not in self.futures:
            self.futures[name] = self.executor.submit(self.job, name)
        return self.futures[name].result()
