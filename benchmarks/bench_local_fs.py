"""What a file written through Hadoop's local file system costs, Hadoop's own against the kit's
(:mod:`medilake_lab.runtime.local_fs`), in one local Spark JVM, the two taking turns.

Two operations, each ``--files`` times per round:

* ``file``: ``FileSystem.create`` + write + close, as Spark writes a data file (LocalFileSystem:
  the file and its ``.crc``);
* ``commit``: ``FileContext.create`` + write + close + ``rename``, as Delta's log store writes a
  commit (a temporary file renamed into place).

CPU is the JVM's own (``/proc/<pid>/stat`` utime + stime) plus that of the processes it started
and waited for (cutime + cstime: Hadoop's ``chmod`` and ``readlink``), so a spawn's whole cost
counts. Needs `medilake_lab setup` to have built the jar (a JDK's ``javac``). Linux only.

    python benchmarks/bench_local_fs.py [--files 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile

from common import machine

from medilake_lab.runtime import local_fs

#: The child: a session as get_spark starts it, then the rounds; prints one JSON line per measurement.
CHILD = """
import json, os, sys, time
from medilake_lab.runtime.spark import get_spark
root, files, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
spark = get_spark(root + "/warehouse")
jvm, conf = spark._jvm, spark._jsc.hadoopConfiguration()
fs = jvm.org.apache.hadoop.fs
pid = jvm.java.lang.ProcessHandle.current().pid()
tick = os.sysconf("SC_CLK_TCK")

def cpu():  # (the JVM's own, its waited-for children's) CPU seconds
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / tick, (int(fields[13]) + int(fields[14])) / tick

def file_systems(name):
    own = jvm.org.apache.hadoop.conf.Configuration(conf)
    if name == "hadoop":
        own.set("fs.AbstractFileSystem.file.impl", "org.apache.hadoop.fs.local.LocalFs")
        system = fs.LocalFileSystem()
    else:
        system = jvm.medilake.hadoop.NioLocalFileSystem()
    system.initialize(jvm.java.net.URI("file:///"), own)
    context = fs.FileContext.getFileContext(jvm.java.net.URI("file:///"), own)
    return system, context

gateway = spark.sparkContext._gateway
no_create_opts = gateway.new_array(getattr(fs, "Options$CreateOpts"), 0)
no_rename_opts = gateway.new_array(getattr(fs, "Options$Rename"), 0)
for n in range(rounds):
    for name in ("hadoop", "kit"):
        system, context = file_systems(name)
        for operation in ("file", "commit"):
            folder = f"file://{root}/{name}-{n}/{operation}"
            system.mkdirs(fs.Path(folder))
            start, (own0, kids0) = time.perf_counter(), cpu()
            for i in range(files):
                if operation == "file":
                    out = system.create(fs.Path(f"{folder}/{i:05d}"))
                else:
                    out = context.create(fs.Path(f"{folder}/.{i:05d}.tmp"),
                                         jvm.java.util.EnumSet.of(fs.CreateFlag.CREATE), no_create_opts)
                out.write(1)
                out.close()
                if operation == "commit":
                    context.rename(fs.Path(f"{folder}/.{i:05d}.tmp"), fs.Path(f"{folder}/{i:05d}"), no_rename_opts)
            own1, kids1 = cpu()
            print(json.dumps({"fs": name, "op": operation, "wall": time.perf_counter() - start,
                              "jvm": own1 - own0, "spawned": kids1 - kids0}), flush=True)
spark.stop()
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=300, help="files per operation and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    if local_fs.installed() is None:
        print("no local file system jar: run `medilake_lab setup` on a machine with a JDK", file=sys.stderr)
        return 2
    with tempfile.TemporaryDirectory(prefix="bench-local-fs-") as root:
        out = subprocess.run([sys.executable, "-c", CHILD, root, str(args.files), str(args.rounds)],
                             capture_output=True, text=True, check=False)
    rows = [json.loads(line) for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode or not rows:
        print(out.stderr[-3000:], file=sys.stderr)
        return 1
    print(f"{machine()}; {args.files} files per operation, {args.rounds} rounds (medians)\n")
    print("| operation | file system | wall ms/file | JVM CPU ms/file | spawned processes' CPU ms/file |")
    print("|---|---|---|---|---|")
    for op in ("file", "commit"):
        for fs in ("hadoop", "kit"):
            mine = [r for r in rows if (r["op"], r["fs"]) == (op, fs)]
            cells = [1000 * statistics.median(r[key] for r in mine) / args.files for key in ("wall", "jvm", "spawned")]
            print(f"| {op} | {fs} | " + " | ".join(f"{c:.2f}" for c in cells) + " |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
