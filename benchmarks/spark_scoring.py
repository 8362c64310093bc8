"""Scoring a file on Apache Spark (local mode, this machine's cores) vs `sixstack predict`, same model, same rows.

Both read the same CSV and produce labels and probabilities; the table gives wall times (median of --repeats) and
whether the answers agree. Needs the spark extra (pyspark) and Java. Uses the registry's production model of the
store in MLFLOW_TRACKING_URI (run `make run` first, or point it at any store with a production version).

    .venv/bin/python benchmarks/spark_scoring.py [--rows 100000] [--model models:/six_stack_ensemble@production]
"""
import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--model", default=f"models:/{os.environ.get('MODEL_REGISTRY_NAME', 'six_stack_ensemble')}@production")
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    from sixstack.data.tables import FEATURES, make_frame
    tmp = Path(tempfile.mkdtemp(prefix="sixstack-spark-bench-"))
    make_frame(a.rows, seed=7).drop(columns="Personality").to_csv(tmp / "rows.csv", index=False)
    exe = Path(sys.executable).with_name("sixstack")
    ours = []
    for _ in range(a.repeats):
        t = time.perf_counter()
        subprocess.run([str(exe), "predict", "--model-uri", a.model, "--input", tmp / "rows.csv", "--output", tmp / "ours.csv"],
                       check=True, capture_output=True)
        ours.append(time.perf_counter() - t)
    os.environ["PYSPARK_PYTHON"] = sys.executable
    t0 = time.perf_counter()
    from pyspark.sql import SparkSession
    from sixstack.tracking.models import spark_schema, spark_udf
    spark = SparkSession.builder.master(f"local[{os.cpu_count()}]").config("spark.ui.enabled", "false").getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    predict = spark_udf(spark, a.model)
    setup = time.perf_counter() - t0
    schema = spark_schema()
    theirs = []
    for i in range(a.repeats):
        t = time.perf_counter()
        table = spark.read.csv(str(tmp / "rows.csv"), header=True, schema=schema)
        (table.withColumn("p", predict(*FEATURES)).select("id", "p.label", "p.probability")
         .write.mode("overwrite").csv(str(tmp / f"spark-{i}"), header=True))
        theirs.append(time.perf_counter() - t)
    spark.stop()
    got = pd.concat(pd.read_csv(f) for f in sorted((tmp / "spark-0").glob("part-*.csv"))).set_index("id").sort_index()
    want = pd.read_csv(tmp / "ours.csv").set_index("id").sort_index()
    agree = (got["label"] == want.iloc[:, 0]).mean()
    gap = float(np.abs(got["probability"].to_numpy() - want["probability"].to_numpy()).max())
    print(f"\nscoring {a.rows:,} rows from CSV to CSV, {os.cpu_count()} cores, {a.model}\n")
    print("| scorer | seconds (median) | rows/s |\n|---|---|---|")
    print(f"| sixstack predict (one process, chunks of 50,000; includes loading the model) | {statistics.median(ours):.1f} | {a.rows / statistics.median(ours):,.0f} |")
    print(f"| Spark local mode, spark_udf (session and UDF ready: {setup:.1f} s once) | {statistics.median(theirs):.1f} | {a.rows / statistics.median(theirs):,.0f} |")
    print(f"\nsame labels: {agree:.2%}; largest probability difference {gap:.1e}")


if __name__ == "__main__":
    main()
