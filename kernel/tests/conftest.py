"""The tests import the notebook checks of kernel/ (check_figures, notebook_text) as modules."""
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
