"""A seeded corpus of malformed requests for every endpoint and content type the service reads.

Each item is (method, path, headers with bytes values, body bytes). Nothing here is valid on purpose except by accident; the service
must answer every one with a status below 500.
"""
import json
import random

from sixstack.data.tables import FEATURES

RECORD = {"Time_spent_Alone": 3.0, "Stage_fear": "No", "Social_event_attendance": 6.0, "Going_outside": 2.0,
          "Drained_after_socializing": "No", "Friends_circle_size": 10.0, "Post_frequency": 5.0}
NASTY_KEYS = ["", "\u0000", "\x00\x01", "a" * 300, "Time_spent_Alone\u0000", "__proto__", "é\u202e", "\ud7ff"]
ENDPOINTS = ["/predict", "/predict/batch", "/invocations", "/feedback", "/reload"]


def _scalar(rng: random.Random):
    return rng.choice([
        None, True, False, 0, -1, 1.5, 1e308, -1e308, 2 ** 63, -(2 ** 63) - 1, "1" + "0" * 400, "", "No", "Yes",
        "\u0000", "x" * 1000, [], {}, [[]], {"a": None}, float("nan"), float("inf"), "NaN",
    ])


def _value(rng: random.Random, depth: int = 0):
    if depth > 3 or rng.random() < 0.5: return _scalar(rng)
    if rng.random() < 0.5: return [_value(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    return {rng.choice(NASTY_KEYS + FEATURES): _value(rng, depth + 1) for _ in range(rng.randint(0, 4))}


def _record(rng: random.Random):
    r = dict(RECORD)
    for _ in range(rng.randint(1, 3)):
        op = rng.random()
        if op < 0.4: r[rng.choice(FEATURES)] = _value(rng)
        elif op < 0.6: r.pop(rng.choice(FEATURES), None)
        else: r[rng.choice(NASTY_KEYS)] = _value(rng)
    return r


def _json(doc) -> bytes:
    s = json.dumps(doc, allow_nan=True)
    return s.replace('"1' + "0" * 400 + '"', "1" + "0" * 400).encode()  # a bare 401-digit integer


def _invocation(rng: random.Random):
    recs = [_record(rng) for _ in range(rng.randint(1, 3))]
    shapes = [
        {"dataframe_records": recs}, {"instances": recs}, {"inputs": recs},
        {"inputs": {k: [r.get(k) for r in recs] for k in FEATURES}},
        {"dataframe_split": {"columns": list(RECORD), "data": [list(r.values())[:7] for r in recs]}},
        {"dataframe_split": {"columns": [[]], "data": [[1]]}},
        {"dataframe_split": {"columns": [None, 1, {}], "data": [[1, 2, 3]]}},
        {"dataframe_split": {"columns": list(RECORD), "data": "x"}},
        {"dataframe_split": [], "params": []},
        {"inputs": {"": [], "\u0000": []}},
        {"inputs": {k: 5 for k in FEATURES}},
        {"dataframe_records": recs, "instances": recs},
        {"instances": [[1, 2, 3]]},
        {"inputs": [_value(rng) for _ in range(3)]},
    ]
    return rng.choice(shapes)


def _v2(rng: random.Random):
    "An Open Inference Protocol infer request with one thing wrong (or more), in its tensors or around them."
    rows = rng.randint(1, 3)
    kind = lambda k: "BYTES" if k in ("Stage_fear", "Drained_after_socializing") else "FP64"
    names = FEATURES if rng.random() < 0.8 else rng.sample(FEATURES + NASTY_KEYS, 6)
    ins = [{"name": k, "datatype": kind(k), "shape": [rows], "data": [RECORD.get(k)] * rows} for k in names]
    for t in rng.sample(ins, rng.randint(1, 2)):
        op = rng.random()
        if op < 0.3: t["data"] = [_value(rng) for _ in range(rows)]
        elif op < 0.45: t["data"] = _value(rng)
        elif op < 0.6: t["datatype"] = rng.choice(["FP32", "INT32", "BOOL", "", None, 5])
        elif op < 0.75: t["shape"] = rng.choice([[1, 1], [-1], [], [1, 2], "1", [2 ** 40], [True], [rows + 1]])
        elif op < 0.85: t["parameters"] = rng.choice([{"binary_data_size": rng.choice([-1, 0, 4, 10 ** 9, "x", None])}, [], "x"])
        else: t.pop(rng.choice(list(t)))
    doc = {"inputs": ins}
    for key, p in (("outputs", 0.15), ("parameters", 0.15), ("id", 0.1)):
        if rng.random() < p: doc[key] = _value(rng)
    return doc if rng.random() < 0.9 else _value(rng)


def corpus(n: int = 400, seed: int = 27, model: str = "m"):
    "`n` malformed requests (plus a fixed set of known offenders), reproducibly; `model` is the name in /v2 paths."
    rng = random.Random(seed)
    fixed = [
        ("/predict", b'{"Time_spent_Alone": 1' + b"0" * 400 + b"}"),
        ("/predict", _json(RECORD | {"Time_spent_Alone": "1" + "0" * 400})),
        ("/invocations", b'{"dataframe_split": {"columns": [[]], "data": [[1]]}}'),
        ("/predict", _json(RECORD | {"\u0000": 1})),
        ("/feedback", _json({"feedback": [{"request_id": "\u0000", "label": "Introvert"}]})),
        ("/feedback", _json({"feedback": [{"request_id": "x" * 100_000, "label": "Introvert"}]})),
        ("/predict", b"\xff\xfe\x00{"), ("/predict", b""), ("/predict/batch", b"[" * 5000 + b"]" * 5000),
        ("/predict", _json(RECORD | {"padding": "x" * 70_000})), ("/invocations", b"[" + b"0," * 200_000 + b"0]"),
        ("/invocations", b"NaN"), ("/predict", b'"\\ud800"'), ("/predict/batch", b'{"records": [1e999]}'),
    ]
    out = [("POST", p, {"content-type": b"application/json"}, b) for p, b in fixed]
    for _ in range(n):
        path = rng.choice(ENDPOINTS + [f"/v2/models/{model}/infer"])
        kind = rng.random()
        if path == "/invocations": doc = _invocation(rng)
        elif path.startswith("/v2"): doc = _v2(rng)
        elif path == "/predict/batch": doc = rng.choice([{"records": [_record(rng) for _ in range(3)]}, [_record(rng)], _value(rng)])
        elif path == "/feedback": doc = {"feedback": [{"request_id": _value(rng), "label": _value(rng)} for _ in range(2)]}
        else: doc = _record(rng) if kind < 0.8 else _value(rng)
        body = _json(doc)
        if rng.random() < 0.1: body = body[: rng.randint(0, len(body))]  # cut short
        if rng.random() < 0.05: body = bytes(rng.randrange(256) for _ in range(rng.randint(1, 64)))  # noise
        ctype = rng.choice(["application/json", "application/json", "text/plain", "text/csv", "application/x-www-form-urlencoded",
                            "application/json; charset=latin-1", ""])
        headers = {"content-type": ctype} if ctype else {}
        if path in ("/feedback", "/reload") and rng.random() < 0.5:
            headers["authorization"] = rng.choice(["Bearer", "Bearer \u00e9x", "Basic x", "Bearer " + "x" * 5000])
        if rng.random() < 0.05: headers["x-subject-id"] = rng.choice(["", "x" * 10_000, "é"])
        if path.startswith("/v2") and rng.random() < 0.3:  # Triton's binary extension: where the JSON ends
            headers["inference-header-content-length"] = rng.choice(["0", "-5", "x", str(len(body)), str(len(body) // 2), "9" * 30])
            body += bytes(rng.randrange(256) for _ in range(rng.randint(0, 64)))
        out.append(("POST", path, {k: v.encode() for k, v in headers.items()}, body))  # header values as UTF-8 bytes
    return out
