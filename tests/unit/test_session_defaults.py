"""Session defaults that need no Spark: local mode's shuffle partitions."""

from __future__ import annotations

import os

import pytest

from pipelines.session import local_shuffle_partitions


@pytest.mark.parametrize(("master", "expected"), [
    ("local", 2),
    ("local[1]", 2),
    ("local[2]", 4),
    ("local[3, 4]", 6),  # local[N, maxFailures]: N cores
    ("local[*]", 2 * (os.cpu_count() or 1)),
    ("spark://127.0.0.1:7077", None),
    ("yarn", None),
    ("k8s://https://api:6443", None),
    ("local-cluster[2,1,1024]", None),  # several executor JVMs: a cluster's default
])  # fmt: skip
def test_local_masters_get_twice_their_cores_as_shuffle_partitions_and_clusters_none(
    master, expected
):
    assert local_shuffle_partitions(master) == expected
