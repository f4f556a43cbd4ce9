"""spark-submit entry point: a spec's DP releases for one partition (`anonymize release`).

    spark-submit --py-files dist/pipelines-<version>.zip jobs/release.py \
        conf/pipelines/<spec>.yaml --partition 2026-11-25 [--release NAME]

Exit 6 when the budget would be exceeded (nothing computed); an already released
partition is republished, never charged again (``--re-release`` to draw anew).
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["release", *sys.argv[1:]]))
