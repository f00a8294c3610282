"""Run malformed-input cases of one package in this one process (one torch/Lightning import for all of them).

    python tests/_fuzz_driver.py PACKAGE CASES.json LIMIT_S

Each case is ``app.main(argv)``; prints ``TENFOLD-FUZZ {json}`` with the exit code, whether an exception escaped
(a traceback for a user), stderr, and whether the case ran past LIMIT_S (SIGALRM stops it: a hang).
"""

import contextlib
import importlib
import io
import json
import signal
import sys
import traceback

from tenfold_core.cli import find_app


class _Timeout(BaseException):
    pass


def _alarm(signum, frame):
    raise _Timeout()


def main(package: str, spec: str, limit: int) -> int:
    app = find_app(package)
    # the heavy imports first, outside the per-case alarm: an import interrupted half-way breaks every later case
    for mod in ("tenfold_core.train", f"{package}.train", f"{package}.evaluate"):
        with contextlib.suppress(Exception):
            importlib.import_module(mod)
    cases = json.loads(open(spec, encoding="utf-8").read())
    signal.signal(signal.SIGALRM, _alarm)
    for case in cases:
        err, out = io.StringIO(), io.StringIO()
        code, raised, timeout = None, None, False
        signal.alarm(limit)
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
                try:
                    r = app.main(case["argv"])
                    code = r if isinstance(r, int) else 0
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
        except _Timeout:
            timeout = True
        except BaseException as e:
            raised = traceback.format_exception_only(type(e), e)[-1].strip()[:500]
        finally:
            signal.alarm(0)
        text = err.getvalue()
        lines = [ln for ln in text.strip().splitlines() if ln.strip()]
        result = {**case, "code": code, "raised": raised, "timeout": timeout, "stderr": text[-2000:],
                  "last_line": lines[-1] if lines else ""}  # fmt: skip
        print("TENFOLD-FUZZ " + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3])))
