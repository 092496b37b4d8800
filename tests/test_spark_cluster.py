"""nerctl on a real Spark standalone cluster of 127.0.0.1 (a master and two one-core workers): engtest-sized
input tagged on both workers with every record predict's, nothing listening beyond loopback, and a worker
killed mid-job costing no record."""
import os
import threading
import time

import pytest

from conftest import SHARED_DATA
from test_spark import predict_records

pytestmark = pytest.mark.spark


@pytest.fixture(scope="module")
def engtest_texts() -> list[str]:
    from nerctl.data.formats.bio import read_bio

    path = SHARED_DATA / "engtest.bio"
    if not path.is_file():
        pytest.skip(f"the MIT Movie mirror is not at {SHARED_DATA}")
    return [" ".join(s.words) for s in read_bio(path, warn=lambda message: None)]


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    from spark_cluster import StandaloneCluster

    with StandaloneCluster(tmp_path_factory.mktemp("spark"), workers=2) as running:
        yield running


@pytest.fixture(scope="module")
def driver(cluster):
    spark = cluster.session(**{"spark.task.maxFailures": "4"})
    yield spark
    spark.stop()


@pytest.fixture(scope="module")
def expected(trained_run, engtest_texts) -> list[list[dict]]:
    return [r["entities"] for r in predict_records(trained_run, engtest_texts)]


def tag_ids(driver, run, texts, partitions: int):
    from nerctl.spark import tag

    frame = driver.createDataFrame(list(enumerate(texts)), "id int, text string").repartition(partitions)
    return tag(frame, "text", run=run)


def test_engtest_on_two_workers_equals_predict_and_everything_listens_on_loopback(cluster, driver, trained_run,
                                                                                  engtest_texts, expected):
    from spark_cluster import descendants, listening_addresses

    rows = tag_ids(driver, trained_run, engtest_texts, 8).collect()
    assert len(engtest_texts) == 2443 and len(rows) == len(engtest_texts)
    by_id = {r["id"]: [e.asDict() for e in r["entities"]] for r in rows}
    assert [by_id[i] for i in range(len(engtest_texts))] == expected
    assert sum(map(len, expected)) > 1000  # the fixture run tags entities: equality is not of empty lists
    tasks = {e["id"]: e["totalTasks"] for e in cluster.executors(driver) if e["id"] != "driver"}
    assert len(tasks) == 2 and all(n > 0 for n in tasks.values()), tasks  # both workers ran tasks
    jvms = [p.pid for p in cluster.processes.values()] + [pid for p in cluster.processes.values()
                                                           for pid in descendants(p.pid)]
    driver_jvm = [pid for pid in descendants(os.getpid()) if b"java" in open(f"/proc/{pid}/cmdline", "rb").read()]
    addresses = listening_addresses(jvms + driver_jvm)
    assert addresses == {"127.0.0.1"}, addresses


def test_a_worker_killed_mid_job_costs_no_record(cluster, driver, trained_run, engtest_texts, expected):
    """SIGKILL one worker and its executor while the job runs: Spark runs the lost tasks again on the other
    worker, and every text comes back exactly once, tagged as predict tags it."""
    texts = engtest_texts * 3
    result: dict = {}
    job = threading.Thread(target=lambda: result.update(rows=tag_ids(driver, trained_run, texts, 24).collect()))
    job.start()
    tracker = driver.sparkContext.statusTracker()

    def tasks_done() -> int:
        stages = [tracker.getStageInfo(s) for s in tracker.getActiveStageIds()]
        return max((s.numCompletedTasks for s in stages if s), default=0)

    deadline = time.time() + 300
    while tasks_done() < 2 and job.is_alive() and time.time() < deadline:
        time.sleep(0.2)
    assert job.is_alive(), "the job ended before a worker could be killed"
    cluster.kill_worker("worker2")
    job.join(600)
    assert not job.is_alive() and "rows" in result
    ids = [r["id"] for r in result["rows"]]
    assert sorted(ids) == list(range(len(texts)))  # every record, exactly once
    by_id = {r["id"]: [e.asDict() for e in r["entities"]] for r in result["rows"]}
    assert [by_id[i] for i in range(len(texts))] == expected * 3
    lost = [e for e in cluster.executors(driver) if e["id"] != "driver" and not e["isActive"]]
    assert len(lost) == 1 and "worker lost" in lost[0].get("removeReason", ""), lost
