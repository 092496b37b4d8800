"""nerctl on Spark against `nerctl predict --file`, on this machine's cores, in one run.

    python benchmarks/spark.py --run runs/latest --sentences 100000

engtest repeated to --sentences texts is tagged three ways: `nerctl predict
--file` (the whole command, start-up included), and `nerctl.spark.tag` on a
standalone cluster of 127.0.0.1 (tests/spark_cluster.py: a master and two
one-core workers) with both workers, then with one (spark.cores.max=1), Parquet
in and out. The Spark rates are the job's once each executor has loaded the
model (a small job first), the throughput a long job runs at; the "_cold"
rates count from the session's start (executors register, Python workers start
and load the model). The cluster's own start-up is not counted (a cluster is
there before its jobs). Peak RSS is each executor Python process's VmHWM (the
daemon and its workers), sampled during the job.
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import threading
import time
from pathlib import Path

from _common import REPO, cpu_flags, cpu_model, engtest, measured, new_result, save_result

sys.path.insert(0, str(REPO / "tests"))


def texts_of(count: int) -> list[str]:
    from nerctl.data.formats.bio import read_bio

    base = [" ".join(s.words) for s in read_bio(engtest(), warn=lambda message: None)]
    return (base * (count // len(base) + 1))[:count]


def python_workers_peak(cluster, stop: threading.Event, peaks: dict[int, float]) -> None:
    """Until `stop`: the peak RSS (MiB) of every Python worker under the cluster's workers."""
    from spark_cluster import descendants

    while not stop.is_set():
        for worker in cluster.processes.values():
            for pid in descendants(worker.pid):
                try:
                    status = Path(f"/proc/{pid}/status").read_text()
                    if b"pyspark" not in Path(f"/proc/{pid}/cmdline").read_bytes():
                        continue
                except OSError:
                    continue
                hwm = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmHWM"))
                peaks[pid] = max(peaks.get(pid, 0.0), hwm / 1024)
        time.sleep(0.5)


def spark_job(cluster, run: str, parquet: Path, out: Path, cores: int, partitions: int) -> dict:
    """Tag the Parquet input on `cores` one-core executors into `out`: the wall time from the session's start
    (cold), the job's alone once every executor has loaded the model (warm: the throughput a long job
    runs at), and the workers' peak RSS."""
    from nerctl.spark import tag

    peaks: dict[int, float] = {}
    stop = threading.Event()
    sampler = threading.Thread(target=python_workers_peak, args=(cluster, stop, peaks), daemon=True)
    sampler.start()
    start = time.perf_counter()
    spark = cluster.session(cores=cores)
    try:
        warm_up = spark.read.parquet(str(parquet)).limit(50 * cores).repartition(4 * cores)
        tag(warm_up, "text", run=run).collect()  # each executor's Python worker loads the model
        warmed = time.perf_counter()
        frame = spark.read.parquet(str(parquet)).repartition(partitions)
        tag(frame, "text", run=run).write.parquet(str(out))
        end = time.perf_counter()
        tasks = {e["id"]: e["totalTasks"] for e in cluster.executors(spark) if e["id"] != "driver"}
    finally:
        spark.stop()
        stop.set()
        sampler.join()
    return {"wall_s": round(end - start, 3), "job_s": round(end - warmed, 3), "executors": len(tasks), "tasks_per_executor": tasks,
            "python_worker_peak_rss_mib": sorted(round(v, 1) for v in peaks.values())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--run", default="runs/latest")
    parser.add_argument("--sentences", type=int, default=100_000)
    parser.add_argument("--partitions", type=int, default=16)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    args = parser.parse_args()

    import pandas as pd

    from nerctl.artifacts.rundir import resolve_run
    from nerctl.inference.engines import available, choose_engine
    from spark_cluster import StandaloneCluster

    run = resolve_run(args.run)
    texts = texts_of(args.sentences)
    with tempfile.TemporaryDirectory(prefix="nerctl-spark-bench-") as scratch:
        scratch = Path(scratch)
        (scratch / "texts.txt").write_text("\n".join(texts) + "\n")
        pd.DataFrame({"text": texts}).to_parquet(scratch / "texts.parquet")
        predict = measured([sys.executable, "-m", "nerctl", "predict", "--run", str(run.path), "--file",
                            str(scratch / "texts.txt"), "--output", str(scratch / "predict.jsonl")])
        print(f"predict --file: {predict}", flush=True)
        with StandaloneCluster(scratch / "cluster", workers=2) as cluster:
            two = spark_job(cluster, str(run.path), scratch / "texts.parquet", scratch / "out2", 2, args.partitions)
            print(f"2 workers: {two}", flush=True)
            one = spark_job(cluster, str(run.path), scratch / "texts.parquet", scratch / "out1", 1, args.partitions)
            print(f"1 worker: {one}", flush=True)
    rate = {"predict_file": round(args.sentences / predict["wall_s"], 1),  # the whole command
            **{name: round(args.sentences / r["job_s"], 1) for name, r in (("spark_2_workers", two),
                                                                            ("spark_1_worker", one))},
            **{f"{name}_cold": round(args.sentences / r["wall_s"], 1) for name, r in (("spark_2_workers", two),
                                                                                       ("spark_1_worker", one))}}
    result = new_result(
        cpu=cpu_model(), cpu_flags=cpu_flags(), sentences=args.sentences, partitions=args.partitions,
        run=str(run.path), engine=choose_engine("auto", "auto", available(run)).to_dict(),
        command=f"python benchmarks/spark.py --run RUN --sentences {args.sentences} --partitions {args.partitions}",
        predict_file=predict, spark_2_workers=two, spark_1_worker=one, sentences_per_s=rate,
        ratios={"spark_2_workers_over_predict_file": round(rate["spark_2_workers"] / rate["predict_file"], 3),
                "spark_2_over_1_workers": round(rate["spark_2_workers"] / rate["spark_1_worker"], 3)})
    print(f"sentences/s: {rate}; ratios: {result['ratios']}")
    print(f"wrote {save_result(result, args.out, '-spark')}")


if __name__ == "__main__":
    main()
