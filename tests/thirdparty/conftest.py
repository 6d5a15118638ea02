"""The kryon-tally distribution's own tests (kryon-tally/tests) need the
engine installed, since the contract finds engines through entry points:
test_thirdparty_engine.py runs them in-process (with a temporary
dist-info) and in a fresh virtual environment; they are not collected
from here directly."""

collect_ignore = ["kryon-tally"]
