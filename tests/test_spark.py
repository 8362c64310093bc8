"""Batch scoring on Apache Spark (local mode): the registry's production model through `mlflow.pyfunc.spark_udf`,
vetted first, gives the labels and probabilities `sixstack predict` gives on the same file; an ungated version is
refused before any executor could unpickle it."""
import sys

import numpy as np
import pandas as pd
import pytest

from conftest import cli, train_model

NAME = "six_stack_ensemble"  # the README's example names the default registered model


def test_spark_udf_scores_like_sixstack_predict(settings, tmp_path, monkeypatch):
    from dataclasses import replace
    from pyspark.sql import SparkSession
    from sixstack.data.tables import FEATURES, make_frame
    from sixstack.tracking.models import ModelRefused, spark_udf
    from sixstack.training.registry import promote, register
    monkeypatch.setenv("MODEL_REGISTRY_NAME", NAME)
    settings = replace(settings, registry_name=NAME)
    data = make_frame(1400, seed=61)
    data.iloc[1000:].to_csv(tmp_path / "holdout.csv", index=False)
    uri, _ = train_model(settings, data.iloc[:1000])
    assert promote(register(uri, settings), settings, tmp_path / "holdout.csv")["promoted"]
    rows = make_frame(3000, seed=62).drop(columns="Personality")
    assert rows[FEATURES].isna().any().all()  # every feature is missing somewhere
    rows.to_csv(tmp_path / "score.csv", index=False)
    r = cli("predict", "--model-uri", f"models:/{NAME}@production", "--input", tmp_path / "score.csv", "--output", tmp_path / "want.csv")
    assert r.returncode == 0, r.stderr[-2000:]
    want = pd.read_csv(tmp_path / "want.csv").set_index("id")

    monkeypatch.setenv("PYSPARK_PYTHON", sys.executable)  # the executors' Python: this environment (local mode)
    spark = (SparkSession.builder.master("local[2]").appName("sixstack-test").config("spark.ui.enabled", "false")
             .config("spark.sql.shuffle.partitions", "2").getOrCreate())
    try:  # the README's four lines, as written, on rows.csv
        from test_readme import _block
        code = _block("On Apache Spark"); assert '"rows.csv"' in code  # (Spark's JVM reads paths from its own folder)
        code = code.replace('"rows.csv"', repr(str(tmp_path / "score.csv")))
        ns = {"spark": spark}; exec(compile(code, "README.md: On Apache Spark", "exec"), ns)
        got = ns["scored"].toPandas().astype({"id": int}).set_index("id").loc[want.index]
        assert len(got) == len(want) == 3000
        assert (got["label"] == want["Personality"]).all()
        np.testing.assert_allclose(got["probability"].to_numpy(), want["probability"].to_numpy(), rtol=0, atol=1e-9)
        ungated = register(uri, settings)  # registered, never through the gate
        with pytest.raises(ModelRefused, match="gate did not pass"): spark_udf(spark, f"models:/{NAME}/{ungated}", settings)
    finally: spark.stop()
