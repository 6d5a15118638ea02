import sys
from pathlib import Path

# the compiled-caller tests import what they share (ccall_support) by module name
sys.path.insert(0, str(Path(__file__).parent))
