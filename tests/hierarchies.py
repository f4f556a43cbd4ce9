"""A small generalization hierarchy the k-anonymity tests share (no Spark import)."""

from __future__ import annotations

from pipelines.kanon.hierarchy import Hierarchy

# Three levels: city -> region -> *.
CITY_ROWS = [
    ["berlin", "north", "*"], ["hamburg", "north", "*"], ["kiel", "north", "*"],
    ["munich", "south", "*"], ["stuttgart", "south", "*"], ["ulm", "south", "*"],
]  # fmt: skip
CITIES = Hierarchy.from_rows("city", CITY_ROWS)
