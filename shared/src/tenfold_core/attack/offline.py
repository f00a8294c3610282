"""Offline preparation for the attack stack: cache folders, a local nltk stop-word corpus, TextAttack's marker.

Stock TextAttack 0.3.11 runs six ``nltk.download`` calls (and ``stanza.download``) on its first import unless the file
``post_install_check_3`` exists in its cache folder, and it reads nltk's English stop words at import. Before
TextAttack is imported, :func:`prepare_offline` creates that marker in the folder TextAttack will use and writes our own
stop-word list as an nltk ``corpora/stopwords/english`` file in a folder appended to ``nltk.data.path`` (a real nltk
data folder, when present, keeps priority). Nothing here touches the network.

``TA_CACHE_DIR`` is left as the user set it: when it is set, TextAttack also points ``HF_HOME``, ``XDG_CACHE_HOME`` and
the TF-Hub cache at it; :func:`import_textattack` restores those variables (and ``TOKENIZERS_PARALLELISM``) afterwards.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

from tenfold_core.attack.stopwords import STOPWORDS

TA_MARKER = "post_install_check_3"
_ENV_TOUCHED_BY_TEXTATTACK = (
    "TFHUB_CACHE_DIR",
    "PYTORCH_TRANSFORMERS_CACHE",
    "HF_HOME",
    "XDG_CACHE_HOME",
    "TOKENIZERS_PARALLELISM",
)
_prepared: dict[str, Path] | None = None


def _writable_dir(path: Path) -> bool:
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".probe-{os.getpid()}"
        probe.write_text("")
        probe.unlink()
        return True
    except OSError:
        return False


def cache_dir() -> Path:
    """Tenfold's cache folder: ``$TENFOLD_CACHE_DIR``, else ``$XDG_CACHE_HOME/tenfold``, else ``~/.cache/tenfold``
    (a per-user temporary folder when none of these is writable)."""
    env = os.environ.get("TENFOLD_CACHE_DIR")
    if env:
        p = Path(env).expanduser()
    else:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        p = Path(base) / "tenfold"
    if _writable_dir(p):
        return p
    fallback = (
        Path(tempfile.gettempdir()) / f"tenfold-cache-{os.getuid() if hasattr(os, 'getuid') else 'user'}"
    )
    fallback.mkdir(parents=True, exist_ok=True)
    return fallback


def textattack_cache_dir() -> Path:
    """The folder TextAttack will use: ``$TA_CACHE_DIR`` or ``~/.cache/textattack``."""
    return Path(os.environ.get("TA_CACHE_DIR") or os.path.expanduser("~/.cache/textattack"))


def write_nltk_stopwords(nltk_dir: Path) -> Path:
    """Write our stop-word list as ``<nltk_dir>/corpora/stopwords/english`` (idempotent, atomic)."""
    target = nltk_dir / "corpora" / "stopwords" / "english"
    text = "\n".join(sorted(STOPWORDS)) + "\n"
    if not target.is_file() or target.read_text(encoding="utf-8") != text:
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-english.")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, target)
    return target


def prepare_offline() -> dict[str, Path]:
    """Prepare every local resource TextAttack reads at import (idempotent; no network). Returns the folders used."""
    global _prepared
    if _prepared is not None:
        return _prepared
    root = cache_dir()
    nltk_dir = root / "nltk_data"
    write_nltk_stopwords(nltk_dir)
    import sys

    nltk = sys.modules.get("nltk")  # importing nltk costs seconds: only patch it when it is already loaded
    if nltk is not None and hasattr(nltk, "data") and str(nltk_dir) not in nltk.data.path:
        nltk.data.path.append(str(nltk_dir))
    # nltk reads NLTK_DATA when it is imported later (and subprocesses inherit it); appended, so real data wins
    paths = [p for p in os.environ.get("NLTK_DATA", "").split(os.pathsep) if p]
    if str(nltk_dir) not in paths:
        os.environ["NLTK_DATA"] = os.pathsep.join([*paths, str(nltk_dir)])
    ta_dir = textattack_cache_dir()
    if not _writable_dir(ta_dir):  # e.g. a read-only home: give TextAttack a folder of ours
        ta_dir = root / "textattack"
        ta_dir.mkdir(parents=True, exist_ok=True)
        os.environ["TA_CACHE_DIR"] = str(ta_dir)
    (ta_dir / TA_MARKER).touch(exist_ok=True)
    _prepared = {"cache": root, "nltk_data": nltk_dir, "textattack": ta_dir}
    return _prepared


def textattack_available() -> bool:
    """Whether TextAttack is installed (does not import it)."""
    import importlib.util

    return importlib.util.find_spec("textattack") is not None


def import_textattack():
    """Import TextAttack offline (after :func:`prepare_offline`), restoring the environment variables it overwrites.

    Raises ``ImportError`` with an install hint when it is missing.
    """
    import sys

    if "textattack" in sys.modules:
        return sys.modules["textattack"]
    if not textattack_available():
        raise ImportError("TextAttack is not installed: pip install 'tenfold-core[attack]'")
    prepare_offline()
    saved = {k: os.environ.get(k) for k in _ENV_TOUCHED_BY_TEXTATTACK}
    import warnings

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import textattack
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    return textattack
