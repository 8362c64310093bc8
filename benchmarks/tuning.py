"""Tuning wall time: one worker on all cores vs two workers sharing the study, on the same trial budget.

Each configuration tunes a fresh study per stack on the same rows (the embedded generator), through an Optuna
storage, the way `sixstack tune --workers N` does: N processes, each with its own sampler seed and the cores
shared among them (1 worker: 2 threads; 2 workers: 1 thread each), the budget counted across workers under the
storage's lock. Repeated with alternating order; medians and the ratio are printed, with the trials each run
finished (they must equal the budget) and the best CV accuracy found.

    .venv/bin/python benchmarks/tuning.py [--stacks C,E] [--rows 2320] [--trials 10] [--repeats 3] [--storage URL]

The default storage is a temporary SQLite file (its lock is a file lock); pass the stack's
`SIXSTACK_OPTUNA_STORAGE` to measure on PostgreSQL.
"""
import argparse
import multiprocessing as mp
import os
import statistics
import tempfile
import time
import uuid


def worker(stack, rows, trials, storage, name, profile, worker_index, n_jobs, seed):
    "One worker process: join the stack's study and run trials until the budget is spent."
    import warnings
    warnings.filterwarnings("ignore")
    from threadpoolctl import threadpool_limits
    from sixstack.config import get_profile
    from sixstack.data.tables import LABEL, make_frame
    from sixstack.training.features import Recipe, encode_labels, make_folds
    from sixstack.training.tuning import tune_stack
    X = make_frame(rows, seed=seed).drop(columns="id"); y = encode_labels(X[LABEL])
    prof = get_profile(profile)
    with threadpool_limits(n_jobs):
        tune_stack(stack, X, y, make_folds(y, prof["tune_folds"], seed), trials, Recipe(n_jobs=n_jobs, seed=seed, prof=prof),
                   storage=storage, study_name=name, progress=False, worker=worker_index)


def run(n_workers, a, storage):
    "Wall seconds of `n_workers` processes tuning each stack; the studies' finished trials and best values."
    cores = os.cpu_count() or 1
    out = {"seconds": 0.0, "trials": [], "best": []}
    ctx = mp.get_context("spawn")
    for stack in a.stacks.split(","):
        name = f"bench-{stack}-{uuid.uuid4().hex[:8]}"
        t0 = time.perf_counter()
        procs = [ctx.Process(target=worker, args=(stack, a.rows, a.trials, storage, name, a.profile, k,
                                                   max(1, cores // n_workers), a.seed)) for k in range(n_workers)]
        for p in procs: p.start()
        for p in procs: p.join()
        out["seconds"] += time.perf_counter() - t0
        assert all(p.exitcode == 0 for p in procs), [p.exitcode for p in procs]
        import optuna
        study = optuna.load_study(study_name=name, storage=storage)
        out["trials"].append(sum(t.state.name in ("COMPLETE", "PRUNED") for t in study.trials))
        out["best"].append(study.best_value)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--stacks", default="C,E")
    ap.add_argument("--rows", type=int, default=2320)
    ap.add_argument("--trials", type=int, default=10, help="each study's budget")
    ap.add_argument("--profile", default="default", help="folds and trees per trial")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--storage", default=None, help="Optuna storage URL (default: a temporary SQLite file)")
    ap.add_argument("--seed", type=int, default=42)
    a = ap.parse_args()
    import optuna
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = a.storage or f"sqlite:///{tempfile.mkdtemp(prefix='sixstack-bench-tuning-')}/optuna.db"
    results = {1: [], 2: []}
    for r in range(a.repeats):
        for n in ((1, 2) if r % 2 == 0 else (2, 1)):  # alternate the order: drift of the machine hits both
            res = run(n, a, storage); results[n].append(res)
            print(f"  repeat {r + 1}, {n} worker(s): {res['seconds']:.1f}s, trials {res['trials']}, "
                  f"best {[round(b, 4) for b in res['best']]}", flush=True)
    med = {n: statistics.median(x["seconds"] for x in results[n]) for n in results}
    print(f"\nstacks {a.stacks}, {a.rows} rows, profile {a.profile}, {a.trials} trials per study, {os.cpu_count()} cores, "
          f"{a.repeats} repeats, storage {'SQLite' if storage.startswith('sqlite') else storage.split(':')[0]}\n")
    print("| workers | threads each | median wall | trials per study | best CV accuracy (median) | vs 1 worker |")
    print("|---|---|---|---|---|---|")
    cores = os.cpu_count() or 1
    for n in (1, 2):
        trials = sorted({t for x in results[n] for t in x["trials"]})
        best = statistics.median(b for x in results[n] for b in x["best"])
        print(f"| {n} | {max(1, cores // n)} | {med[n]:.1f} s | {trials} | {best:.4f} | {med[1] / med[n]:.2f}x |")


if __name__ == "__main__":
    main()
