"""Run every `trains=True` verb of one package, in sequence, inside one DDP process pair.

    python tests/_ddp_launch.py PACKAGE OUT_DIR

Lightning's ddp launcher re-runs this script for rank 1, so both ranks walk the same verbs; the first fit starts the
pair and later fits reuse it (LOCAL_RANK is then set). Each rank prints one line per verb:
`TENFOLD-DDP rank=R verb=V status=...`. One Lightning import per rank for all of a package's verbs.
"""

import os
import sys
import traceback

from tenfold_core.cli import find_app


def main(package: str, out: str) -> int:
    rank = os.environ.get("LOCAL_RANK", "0")
    app = find_app(package)
    failed = 0
    for verb in app.training_verbs:
        argv = [
            verb, "--preset", "tiny", "--train.strategy", "ddp", "--train.devices", "2", "--train.accelerator", "cpu",
            "--train.out_dir", os.path.join(out, verb), "--train.progress_bar", "false",
        ]  # fmt: skip
        try:
            app.run(argv)
            status = "ok"
        except SystemExit as e:
            status, failed = f"exit-{e.code}", failed + 1
        except BaseException as e:
            last = traceback.format_exception_only(type(e), e)[-1].strip().replace("\n", " ")
            status, failed = f"error {last[:300]}", failed + 1
        print(f"TENFOLD-DDP rank={rank} verb={verb} status={status}", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2]))
