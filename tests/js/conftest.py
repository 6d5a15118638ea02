import sys
from pathlib import Path

# the JS tests import what they share (js_budget) by module name
sys.path.insert(0, str(Path(__file__).parent))
