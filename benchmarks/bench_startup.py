"""CPU cost of a local Spark session's fixed part: start the JVM with the Delta jars, do a little
Delta work, stop — under alternative start-up settings, measured as CPU seconds of the whole
process tree (benchmarks/cpu_time.py), which a busy machine disturbs far less than wall time.

Variants (each a set of builder settings over the kit's ``LOCAL_CONF``):

* ``jars``: the Delta jars as ``spark.jars`` (served by the driver and fetched into a class loader);
* ``classpath``: the same jars on ``spark.driver.extraClassPath`` (local mode: the driver is the
  executor, so the system class path reaches both);
* ``classpath+c1``: as ``classpath``, the JIT limited to its quick tier (``-XX:TieredStopAtLevel=1``);
* ``classpath+serialgc``: as ``classpath``, the serial garbage collector;
* ``kit``: as ``get_spark`` starts a local session since session 16: the driver class path of
  :func:`medilake_lab.runtime.jars.driver_class_path` (the kit's local file system jar and the Delta
  jars), its classes named for ``file:`` paths, and Spark's and Delta's classes mapped from the
  class-data archive ``setup`` wrote for that class path (:mod:`medilake_lab.runtime.class_archive`).
  Its session-14 form, ``jars+archive`` (the Delta jars as ``spark.jars``), would no longer map
  the archive, which is written for the class path above.

Every variant but ``kit`` starts without the archive, and every variant but
``classpath+serialgc`` with the kit's garbage collector (``config.collector_option``: Parallel since
eb5acaa, G1 before; the figures in benchmarks/RESULTS.md "Spark start-up" are G1's).

Usage::

    python benchmarks/bench_startup.py [--runs 3] [--variants jars classpath] [--rows 200000]
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile

from cpu_time import tree_time

from medilake_lab.runtime.class_archive import build_archive, java_options

VARIANTS = {
    "jars": {},
    "classpath": {"classpath": "1"},
    "classpath+c1": {"classpath": "1", "jvm": "-XX:TieredStopAtLevel=1"},
    "classpath+serialgc": {"classpath": "1", "jvm": "-XX:+UseSerialGC"},
    "kit": {"classpath": "kit", "jvm": "archive"},
}

#: The child: a session started as get_spark() starts one, with the variant's settings, then a
#: small Delta round (write, MERGE, aggregate, history) like a test's or a notebook's first cells.
CHILD = """
import os
import sys
from pyspark.sql import SparkSession, functions as F
from medilake_lab.runtime import config
from medilake_lab.runtime import local_fs
from medilake_lab.runtime.jars import driver_class_path, require_jars
from medilake_lab.runtime.spark import LOCAL_CONF, WAREHOUSE_CONF
warehouse, rows, classpath, jvm = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
jars = [str(j) for j in require_jars()]
conf = dict(LOCAL_CONF)
if classpath == "kit":
    conf["spark.driver.extraClassPath"] = ":".join(map(str, driver_class_path()))
    conf.update(local_fs.spark_conf(driver_class_path()))
elif classpath == "1":
    conf["spark.driver.extraClassPath"] = ":".join(jars)
else:
    conf["spark.jars"] = ",".join(jars)
# as get_spark adds it, unless the environment or the variant chooses one
variant_env = {**os.environ, "JAVA_TOOL_OPTIONS": os.environ.get("JAVA_TOOL_OPTIONS", "") + " " + jvm}
collector = config.collector_option(variant_env)
conf["spark.driver.extraJavaOptions"] = " ".join(filter(None, (collector, conf["spark.driver.extraJavaOptions"], jvm)))
builder = SparkSession.builder.master("local[2]").appName("bench-startup")
for key, value in {**conf, "spark.sql.warehouse.dir": warehouse, WAREHOUSE_CONF: warehouse}.items():
    builder = builder.config(key, value)
spark = builder.getOrCreate()
df = spark.range(rows).select(F.col("id").alias("k"), (F.col("id") % 97).alias("v"))
df.write.format("delta").save(warehouse + "/t")
spark.sql(f"CREATE TABLE t USING DELTA LOCATION '{warehouse}/t'")
df.where("k % 10 = 0").withColumn("v", F.col("v") + 1).createOrReplaceTempView("s")
spark.sql("MERGE INTO t USING s ON t.k = s.k WHEN MATCHED THEN UPDATE SET * WHEN NOT MATCHED THEN INSERT *")
assert spark.table("t").groupBy("v").count().count() == 98
spark.sql("DESCRIBE HISTORY t").collect()
spark.stop()
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--variants", nargs="+", choices=list(VARIANTS), default=list(VARIANTS))
    args = parser.parse_args(argv)
    if "kit" in args.variants:
        build_archive()
    cpu: dict[str, list[float]] = {v: [] for v in args.variants}
    wall: dict[str, list[float]] = {v: [] for v in args.variants}
    for run in range(args.runs):
        for name in args.variants:  # interleaved, so a busy spell hits every variant alike
            settings = VARIANTS[name]
            with tempfile.TemporaryDirectory(prefix="bench-startup-") as tmp:
                took = tree_time([sys.executable, "-c", CHILD, tmp, str(args.rows),
                                  settings.get("classpath", "0"),
                                  java_options() if settings.get("jvm") == "archive" else settings.get("jvm", "")])
            if took.code:
                raise RuntimeError(f"variant {name} exited {took.code}")
            cpu[name].append(took.cpu)
            wall[name].append(took.wall)
            print(f"run {run + 1} {name}: cpu {took.cpu:.1f} s, wall {took.wall:.1f} s", flush=True)
    print("\n| variant | median CPU s | median wall s | runs |\n|---|---|---|---|")
    for name in args.variants:
        print(f"| {name} | {statistics.median(cpu[name]):.1f} | {statistics.median(wall[name]):.1f} | {args.runs} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
