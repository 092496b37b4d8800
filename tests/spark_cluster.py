"""A real Spark standalone cluster on 127.0.0.1: a master and N one-core workers, started from pyspark's own
launcher (`bin/spark-class`; the pip package ships no start-*.sh), for the tests and the benchmark.

Every process binds and advertises 127.0.0.1 only: the RPC endpoints by --host and spark.driver.*, the web
UIs (which have no host setting) by SPARK_LOCAL_IP, the master's REST submission server is off. Scratch
files stay in the cluster's folder (a SIGKILLed executor leaves its blocks behind).
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from conftest import free_ports

HOST = "127.0.0.1"


def get_json(url: str):
    with urllib.request.urlopen(url, timeout=5) as answer:
        return json.loads(answer.read().decode())


def wait_for(check, timeout: float, what: str):
    deadline, last = time.time() + timeout, None
    while time.time() < deadline:
        try:
            if check():
                return
        except OSError as err:  # not listening yet
            last = err
        time.sleep(0.25)
    raise TimeoutError(f"timed out waiting for {what} ({last!r})")


def children(pid: int) -> list[int]:
    found = []
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                if int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1]) == pid:
                    found.append(int(proc.name))
            except (OSError, IndexError, ValueError):
                continue
    return found


class StandaloneCluster:
    """`with StandaloneCluster(folder, workers=2) as cluster: cluster.session()` (a driver on it)."""

    def __init__(self, folder: Path, workers: int = 2, memory: str = "1g"):
        import pyspark

        self.folder, self.count, self.memory = Path(folder), workers, memory
        self.spark_home = Path(pyspark.__file__).parent
        for name in ("conf", "local", "tmp"):
            (self.folder / name).mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ,
                    "SPARK_HOME": str(self.spark_home), "SPARK_LOCAL_IP": HOST, "SPARK_LOCAL_HOSTNAME": HOST,
                    "SPARK_MASTER_OPTS": "-Dspark.master.rest.enabled=false", "SPARK_DAEMON_MEMORY": "256m",
                    "SPARK_CONF_DIR": str(self.folder / "conf"), "SPARK_LOCAL_DIRS": str(self.folder / "local"),
                    "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable,
                    "JDK_JAVA_OPTIONS": f"-Djava.io.tmpdir={self.folder / 'tmp'} -XX:-UsePerfData"}
        self.port, self.ui = free_ports(2)
        self.processes: dict[str, subprocess.Popen] = {}
        self.worker_ui: dict[str, int] = {}

    @property
    def url(self) -> str:
        return f"spark://{HOST}:{self.port}"

    def _spawn(self, name: str, *args: str) -> subprocess.Popen:
        log = open(self.folder / f"{name}.log", "wb")
        process = subprocess.Popen([str(self.spark_home / "bin" / "spark-class"), *args], env=self.env, stdout=log,
                                   stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)
        self.processes[name] = process
        return process

    def master(self) -> dict:
        return get_json(f"http://{HOST}:{self.ui}/json")

    def alive_workers(self) -> int:
        return sum(w["state"] == "ALIVE" for w in self.master()["workers"])

    def __enter__(self) -> "StandaloneCluster":
        try:
            self._spawn("master", "org.apache.spark.deploy.master.Master", "--host", HOST, "--port", str(self.port),
                        "--webui-port", str(self.ui))
            wait_for(lambda: self.master()["status"] == "ALIVE", 120, "the Spark master")
            for index in range(self.count):
                self.start_worker(f"worker{index + 1}")
            wait_for(lambda: self.alive_workers() >= self.count, 120, "the Spark workers")
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start_worker(self, name: str) -> None:
        port, self.worker_ui[name] = free_ports(2)
        (self.folder / f"work-{name}").mkdir(exist_ok=True)
        self._spawn(name, "org.apache.spark.deploy.worker.Worker", self.url, "--host", HOST, "--port",
                    str(port), "--webui-port", str(self.worker_ui[name]), "--cores", "1", "--memory",
                    self.memory, "--work-dir", str(self.folder / f"work-{name}"))

    def session(self, cores: int | None = None, **conf: str):
        """A driver on this cluster, bound to 127.0.0.1, its UI (and REST API) on a free port; it waits for
        every worker's executor before the first job."""
        from pyspark.sql import SparkSession

        os.environ.update({k: self.env[k] for k in ("SPARK_LOCAL_IP", "SPARK_LOCAL_HOSTNAME", "PYSPARK_PYTHON",
                                                   "PYSPARK_DRIVER_PYTHON", "SPARK_LOCAL_DIRS")})
        builder = (SparkSession.builder.master(self.url).appName("nerctl-test")
                   .config("spark.driver.host", HOST).config("spark.driver.bindAddress", HOST)
                   .config("spark.ui.port", str(free_ports()[0])).config("spark.ui.showConsoleProgress", "false")
                   .config("spark.executor.cores", "1").config("spark.cores.max", str(cores or self.count))
                   .config("spark.executor.memory", "512m")
                   .config("spark.scheduler.minRegisteredResourcesRatio", "1.0")
                   .config("spark.scheduler.maxRegisteredResourcesWaitingTime", "120s"))
        for key, value in conf.items():
            builder = builder.config(key, value)
        return builder.getOrCreate()

    def executors(self, spark) -> list[dict]:
        """Every executor of the session's application, dead ones too (the driver's REST API)."""
        sc = spark.sparkContext
        return get_json(f"{sc.uiWebUrl}/api/v1/applications/{sc.applicationId}/allexecutors")

    def kill_worker(self, name: str) -> None:
        """SIGKILL a worker and its executor JVM, as a machine lost mid-job."""
        process = self.processes[name]
        for child in children(process.pid):
            os.kill(child, signal.SIGKILL)
        os.kill(process.pid, signal.SIGKILL)
        process.wait()

    def stop(self) -> None:
        for process in reversed(list(self.processes.values())):
            if process.poll() is None:
                try:
                    os.killpg(process.pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
        for process in self.processes.values():
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def descendants(pid: int) -> list[int]:
    found, todo = [], [pid]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def listening_addresses(pids) -> set[str]:
    """The addresses the TCP sockets of `pids` listen on ("127.0.0.1", "0.0.0.0", "::", ...), IPv4 in IPv6
    (Java's sockets) written as IPv4."""
    import ipaddress

    inodes = set()
    for pid in pids:
        try:
            for fd in Path(f"/proc/{pid}/fd").iterdir():
                target = os.readlink(fd) if fd.is_symlink() else ""
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:  # gone meanwhile
            continue
    found = set()
    for table, width in (("/proc/net/tcp", 4), ("/proc/net/tcp6", 16)):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[3] == "0A" and fields[9] in inodes:  # LISTEN
                raw = bytes.fromhex(fields[1].split(":")[0])
                # the kernel writes each 32-bit word in host (little-endian) order
                packed = b"".join(raw[i:i + 4][::-1] for i in range(0, width, 4))
                address = ipaddress.ip_address(packed)
                found.add(str(getattr(address, "ipv4_mapped", None) or address))  # Java's ::ffff:127.0.0.1
    return found
