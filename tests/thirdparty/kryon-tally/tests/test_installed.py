"""What installing the distribution must give: the entry point, and the
package it names coming from that same distribution."""

import importlib.metadata
from pathlib import Path

import kryon_tally


def test_entry_point_is_registered() -> None:
    (ep,) = [ep for ep in importlib.metadata.entry_points(group="kryon.engines") if ep.name == "tally"]
    assert ep.value == "kryon_tally.plugin"
    assert ep.dist is not None and ep.dist.name == "kryon-tally"


def test_package_comes_from_the_distribution() -> None:
    dist = importlib.metadata.distribution("kryon-tally")
    installed = {Path(str(dist.locate_file(f))).resolve() for f in dist.files or ()}
    assert Path(kryon_tally.__file__).resolve() in installed
    assert dist.version == kryon_tally.__version__
