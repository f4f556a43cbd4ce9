"""spark-submit entry point: anonymize one partition. Same arguments as `anonymize run`.

    spark-submit --py-files dist/pipelines-<version>.zip jobs/anonymize.py \
        conf/pipelines/demo.yaml --partition 2026-11-25

The session comes from spark-submit (master, resources, --properties-file
conf/spark/<profile>.conf); nothing here hard-codes a master.
"""

import sys

from pipelines.cli import main

if __name__ == "__main__":
    sys.exit(main(["run", *sys.argv[1:]]))
