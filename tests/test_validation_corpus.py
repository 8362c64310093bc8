"A corpus of bad files: each gives one DataValidationError naming the problem, and the CLI never shows a trace."
import numpy as np
import pandas as pd
import pytest

from conftest import cli
from sixstack.data.tables import DataValidationError, make_frame
from sixstack.data.validation import validate


def _write(path, df): df.to_csv(path, index=False); return path


def _text(path, text): path.write_text(text); return path


def _bytes(path, data): path.write_bytes(data); return path


def _good(): return make_frame(120, seed=5)


CORPUS = {
    "missing_column": (lambda p: _write(p, _good().drop(columns="Friends_circle_size")), "missing column 'Friends_circle_size'"),
    "wrong_type": (lambda p: _write(p, _good().astype({"Post_frequency": object}).assign(Post_frequency="often")),
                   "column 'Post_frequency' fails type: not a number in 120 rows"),
    "out_of_range": (lambda p: _write(p, _good().assign(Going_outside=lambda d: d["Going_outside"].where(d.index != 7, 12))),
                     "column 'Going_outside' fails in_range(0, 7) in 1 row (row 7: 12.0)"),
    "negative": (lambda p: _write(p, _good().assign(Time_spent_Alone=-1.0)), "column 'Time_spent_Alone' fails in_range(0, 11)"),
    "unknown_category": (lambda p: _write(p, _good().assign(Stage_fear=lambda d: d["Stage_fear"].where(d.index != 3, "Sometimes"))),
                         "column 'Stage_fear' fails isin(['No', 'Yes']) in 1 row (row 3: 'Sometimes')"),
    "unknown_label": (lambda p: _write(p, _good().assign(Personality=lambda d: d["Personality"].where(d.index > 1, "Ambivert"))),
                      "column 'Personality' fails isin(['Extrovert', 'Introvert']) in 2 rows"),
    "missing_label": (lambda p: _write(p, _good().assign(Personality=lambda d: d["Personality"].where(d.index != 4))),
                      "column 'Personality' fails not_nullable"),
    "duplicate_ids": (lambda p: _write(p, _good().assign(id=lambda d: d["id"].where(d.index != 9, 8))), "column 'id' fails field_uniqueness in 2 rows"),
    "empty_file": (lambda p: _text(p, ""), "the file is empty"),
    "header_only": (lambda p: _text(p, ",".join(_good().columns) + "\n"), "no data rows"),
    "not_a_csv": (lambda p: _bytes(p, np.random.default_rng(0).bytes(4096)), "not a readable CSV"),
    "json_not_csv": (lambda p: _text(p, '{"a": 1}\n{"a": 2}\n'), "missing column 'Time_spent_Alone'"),
    "missing_file": (lambda p: p, "no such file"),
}


@pytest.mark.parametrize("case", sorted(CORPUS))
def test_bad_file_raises_one_clear_error(case, tmp_path):
    make, expected = CORPUS[case]
    path = make(tmp_path / f"{case}.csv")
    with pytest.raises(DataValidationError) as e: validate(path)
    assert expected in str(e.value), str(e.value)
    assert str(path.name) in str(e.value)


def test_every_problem_is_listed_at_once(tmp_path):
    df = _good().drop(columns="Going_outside").assign(Stage_fear="Perhaps", Personality="Ambivert")
    df.loc[0, "Post_frequency"] = 99
    with pytest.raises(DataValidationError) as e: validate(_write(tmp_path / "bad.csv", df))
    assert len(e.value.problems) == 4, e.value.problems


def test_bad_test_file_is_reported_with_train_file(tmp_path, sample):
    bad = _write(tmp_path / "t.csv", pd.read_csv(sample["test"]).assign(Drained_after_socializing="maybe"))
    ok = validate(sample["train"], sample["test"], sample["external"])
    assert ok.drift is not None and "match_p" in ok.train
    with pytest.raises(DataValidationError, match="test \\(t.csv\\): column 'Drained_after_socializing' fails isin"):
        validate(sample["train"], bad)


@pytest.mark.parametrize("case", ["out_of_range", "not_a_csv", "missing_file"])
def test_cli_validate_exits_nonzero_without_traceback(case, tmp_path):
    make, expected = CORPUS[case]
    r = cli("validate", make(tmp_path / f"{case}.csv"))
    assert r.returncode == 1
    assert expected in r.stderr and "Traceback" not in r.stderr + r.stdout


def test_cli_validate_good_file_and_report(tmp_path, sample):
    r = cli("validate", sample["train"], "--test", sample["test"], "--report", tmp_path / "rep.html")
    assert r.returncode == 0, r.stderr
    assert "OK: 600 training rows" in r.stdout and (tmp_path / "rep.html").stat().st_size > 10_000
