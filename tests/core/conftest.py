import sys
from pathlib import Path

# the core tests import their test double engine by module name
sys.path.insert(0, str(Path(__file__).parent))
