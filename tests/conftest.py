import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))  # tests/_members.py (pytest runs with --import-mode=importlib)

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("MPLBACKEND", "Agg")
