import sys
from pathlib import Path

# the worker tests import what they share (worker_support) by module name
sys.path.insert(0, str(Path(__file__).parent))
