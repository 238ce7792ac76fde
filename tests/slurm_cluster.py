"""A real one-node SLURM cluster for tests, started from the Debian packages and stopped after.

Usage (the packages come from ``.ci/install_slurm.sh``: ``apt-get install -y slurm-wlm munge``)::

    from slurm_cluster import ClusterUnavailable, single_node_cluster

    try:
        with single_node_cluster(tmp_path) as cluster:
            for key, value in cluster.env.items():   # or: with cluster.exported(): ...
                monkeypatch.setenv(key, value)
            job_id = cluster.sbatch("--wrap", "hostname")
            ...
    except ClusterUnavailable as exc:               # one line: why it could not start
        pytest.skip(str(exc))

``single_node_cluster(workdir)`` first checks what it needs (root, the binaries, the ``munge``
user, a free lock) and raises :class:`ClusterUnavailable` with a one-line reason if the cluster
cannot be started; it never yields a cluster that does not work. Then it

* reuses a running munged if ``munge -n | unmunge`` already succeeds; otherwise creates
  ``/run/munge`` (and a munge key if there is none), starts ``munged`` as the ``munge`` user and
  waits until ``munge -n | unmunge`` says Success;
* writes ``workdir/slurm.conf`` for this machine (node = ``hostname -s``, CPUs = nproc,
  RealMemory 90 % of MemTotal, ``proctrack/linuxproc``, ``task/none``, no accounting, free
  TCP ports so a stale daemon elsewhere cannot collide) with pid files, spool, state and logs
  in ``workdir``;
* starts ``slurmctld`` then ``slurmd`` in the foreground (``-D``, as children of this process)
  with ``SLURM_CONF`` pointing at that file (nothing is written to ``/etc/slurm``), and waits
  until ``sinfo`` shows the node ``idle`` (30 s);
* yields a :class:`Cluster`. On exit it cancels the jobs left in the queue, stops slurmd and
  slurmctld (SIGTERM, then SIGKILL after 10 s), kills job step daemons (``slurmstepd``) that
  these daemons started and that outlived them, stops munged if it started it, and removes
  what it created outside ``workdir`` (``/run/munge``, a munge key). munged itself logs to
  ``/var/log/munge`` and keeps its seed in ``/var/lib/munge``, the package's own folders.

Client commands (``sbatch``, ``sinfo``, ``squeue``, ``scancel``, and submitit, which calls
them) reach this cluster only with ``cluster.env`` in their environment: a test sets those
variables with ``monkeypatch.setenv`` or inside ``with cluster.exported():``. Clusters are
serialised across processes by a lock file (pytest-xdist workers take turns), and one process
runs one cluster at a time; using the context manager twice in a row is fine.
"""

from __future__ import annotations

import contextlib
import fcntl
import grp
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Cluster", "ClusterUnavailable", "single_node_cluster"]

INSTALL_HINT = "apt-get install slurm-wlm munge"
#: Binaries the cluster needs; the daemons live in /usr/sbin, which a non-login PATH may lack.
REQUIRED = ("munged", "munge", "unmunge", "slurmctld", "slurmd", "sinfo", "sbatch", "squeue",
            "scancel", "srun")
SEARCH_PATH = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/usr/bin", "/sbin"])
MUNGE_KEY = Path("/etc/munge/munge.key")
MUNGE_RUN_DIR = Path("/run/munge")
MUNGE_DIRS = (Path("/etc/munge"), Path("/var/log/munge"), Path("/var/lib/munge"))
LOCK_FILE = Path(tempfile.gettempdir()) / "damdp-lite-slurm-cluster.lock"
LOCK_WAIT_S = 300.0
IDLE_TIMEOUT_S = 30.0
MUNGE_TIMEOUT_S = 10.0
STOP_WAIT_S = 10.0
PARTITION = "debug"
#: Unix sockets (slurmd's spool holds one per job step) must fit in sun_path (108 bytes).
MAX_SPOOL_PATH = 70

_active_in_process = False


class ClusterUnavailable(RuntimeError):
    """The cluster cannot be started here; ``str(exc)`` is one line saying why."""

    def __init__(self, reason: str) -> None:
        super().__init__(" ".join(str(reason).split()))


@dataclass
class Cluster:
    """A running one-node cluster, as yielded by :func:`single_node_cluster`.

    Attributes: ``env`` (variables a client must have: ``SLURM_CONF``, and a ``PATH`` with
    the SLURM binaries), ``partition`` (the default partition's name), ``cpus`` (CPUs of the
    node), ``node`` (its name, ``hostname -s``), ``conf`` (the slurm.conf), ``workdir``.
    """

    env: dict[str, str]
    partition: str
    cpus: int
    node: str
    conf: Path
    workdir: Path
    _client_env: dict[str, str] = field(repr=False, default_factory=dict)

    def run(self, *argv: str, timeout: float = 30.0) -> subprocess.CompletedProcess:
        """Run a SLURM client command against this cluster; raise with its stderr if it fails."""
        proc = subprocess.run(list(argv), env=self._client_env, capture_output=True, text=True,
                              timeout=timeout)
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} failed ({proc.returncode}): "
                               f"{(proc.stderr or proc.stdout).strip()}")
        return proc

    def sbatch(self, *args: str) -> str:
        """Submit with ``sbatch --parsable ARGS``; returns the job id."""
        out = self.run("sbatch", "--parsable", f"--partition={self.partition}", *args).stdout
        return out.strip().split(";")[0]

    def squeue(self, all_states: bool = False) -> list[tuple[str, str]]:
        """(job_id, state) of the jobs in the queue, one row per array task (``12_0``).

        By default squeue's own selection (pending, running, completing...); ``all_states``
        adds finished jobs still remembered by slurmctld (``MinJobAge``, 60 s here).
        """
        argv = ["squeue", "-h", "-r", "-o", "%i|%T"] + (["--states=all"] if all_states else [])
        rows = self.run(*argv).stdout.splitlines()
        return [tuple(row.split("|", 1)) for row in rows if "|" in row]  # type: ignore[misc]

    def state(self, job_id: str) -> str | None:
        """The job's state (e.g. ``COMPLETED``) while slurmctld remembers it, else None."""
        return dict(self.squeue(all_states=True)).get(str(job_id))

    def scancel(self, job_id: str) -> None:
        """Cancel a job (or ``12_0``, an array task)."""
        self.run("scancel", str(job_id))

    def wait_gone(self, job_id: str, timeout: float = 30.0) -> str | None:
        """Wait until the job has left the (default) queue; return its final state if known."""
        deadline = time.monotonic() + timeout
        job_id = str(job_id)
        while time.monotonic() < deadline:
            if job_id not in dict(self.squeue()):
                return self.state(job_id)
            time.sleep(0.25)
        raise TimeoutError(f"job {job_id} still in the queue after {timeout:.0f} s: "
                           f"{self.squeue()}")

    @contextlib.contextmanager
    def exported(self) -> Iterator[None]:
        """Set ``self.env`` in ``os.environ`` for the block (for code such as submitit that
        calls sbatch itself), restoring the previous values after."""
        saved = {key: os.environ.get(key) for key in self.env}
        os.environ.update(self.env)
        try:
            yield
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


# --------------------------------------------------------------------------- helpers


def _tail(path: Path, lines: int = 1) -> str:
    try:
        text = [ln for ln in path.read_text(errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "(no log)"
    return " | ".join(text[-lines:]) or "(empty log)"


def _munge_status() -> tuple[bool, str]:
    """Whether ``munge -n | unmunge`` succeeds, and a one-line account of what it said."""
    try:
        cred = subprocess.run(["munge", "-n"], capture_output=True, timeout=10)
        if cred.returncode != 0:
            return False, cred.stderr.decode(errors="replace").strip() or "munge -n failed"
        out = subprocess.run(["unmunge"], input=cred.stdout, capture_output=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return False, str(exc)
    text = out.stdout.decode(errors="replace") + out.stderr.decode(errors="replace")
    status = next((ln.split(":", 1)[1].strip() for ln in text.splitlines()
                   if ln.startswith("STATUS:")), text.strip())
    return out.returncode == 0 and status.startswith("Success"), status


def _free_ports(n: int) -> list[int]:
    socks = []
    try:
        for _ in range(n):
            s = socket.socket()
            s.bind(("", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def _memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise ClusterUnavailable("cannot read MemTotal from /proc/meminfo")


def _stop(proc: subprocess.Popen | None, wait: float = STOP_WAIT_S) -> None:
    """SIGTERM a child we started, SIGKILL it if it is still there after `wait` s."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(wait)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(wait)


def _strays(conf: Path) -> list[int]:
    """PIDs of job step daemons (slurmstepd) started by our slurmd, which tell themselves
    apart by ``SLURM_CONF=conf`` in their environment, and of all their descendants (the
    jobs' processes): what to kill if they outlive slurmd."""
    marker = f"SLURM_CONF={conf}".encode()
    children: dict[int, list[int]] = {}
    stepds = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
            children.setdefault(ppid, []).append(int(entry.name))
            if (entry / "comm").read_text().strip() == "slurmstepd" and \
                    marker in (entry / "environ").read_bytes().split(b"\0"):
                stepds.append(int(entry.name))
        except (OSError, ValueError, IndexError):
            continue
    found, todo = [], list(stepds)
    while todo:
        pid = todo.pop()
        if pid not in found and pid != os.getpid():
            found.append(pid)
            todo.extend(children.get(pid, []))
    return found


def _preflight() -> dict[str, str]:
    """Everything checked before touching the machine; returns the binaries' paths."""
    if not hasattr(os, "geteuid") or not Path("/proc/meminfo").exists():
        raise ClusterUnavailable("not Linux")
    if os.geteuid() != 0:
        raise ClusterUnavailable("not root (the daemons need root)")
    paths = {}
    for name in REQUIRED:
        found = shutil.which(name, path=SEARCH_PATH)
        if found is None:
            raise ClusterUnavailable(f"{name} not installed ({INSTALL_HINT})")
        paths[name] = found
    for who, lookup in (("user", pwd.getpwnam), ("group", grp.getgrnam)):
        try:
            lookup("munge")
        except KeyError:
            raise ClusterUnavailable(f"no munge {who} ({INSTALL_HINT})") from None
    if not os.access(paths["slurmd"], os.X_OK):
        raise ClusterUnavailable(f"{paths['slurmd']} is not executable")
    return paths


@contextlib.contextmanager
def _lock() -> Iterator[None]:
    """One cluster on the machine at a time (xdist workers, parallel sessions)."""
    fd = os.open(LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o666)
    try:
        deadline = time.monotonic() + LOCK_WAIT_S
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise ClusterUnavailable(
                        f"another test cluster held {LOCK_FILE} for {LOCK_WAIT_S:.0f} s"
                    ) from None
                time.sleep(0.5)
        yield
    finally:
        os.close(fd)  # releases the lock


class _Undo:
    """What was changed outside workdir, undone in reverse order on exit."""

    def __init__(self) -> None:
        self.steps: list[tuple[str, object]] = []

    def add(self, what: str, fn, *args) -> None:
        self.steps.append((what, (fn, args)))

    def run(self) -> list[str]:
        errors = []
        for what, (fn, args) in reversed(self.steps):  # type: ignore[misc]
            try:
                fn(*args)
            except Exception as exc:  # noqa: BLE001 - report, keep undoing the rest
                errors.append(f"{what}: {exc}")
        self.steps.clear()
        return errors


def _start_munged(paths: dict[str, str], workdir: Path, undo: _Undo) -> subprocess.Popen | None:
    """Reuse a working munged, else start one; returns the process if we started it."""
    ok, status = _munge_status()
    if ok:
        return None
    munge = pwd.getpwnam("munge")
    uid, gid = munge.pw_uid, munge.pw_gid
    for d in MUNGE_DIRS:
        if not d.is_dir():
            raise ClusterUnavailable(f"{d} missing (reinstall munge: {INSTALL_HINT})")
        st = d.stat()
        if (st.st_uid, st.st_gid) != (uid, gid):
            os.chown(d, uid, gid)
            undo.add(f"chown {d}", os.chown, d, st.st_uid, st.st_gid)
    if not MUNGE_RUN_DIR.exists():
        MUNGE_RUN_DIR.mkdir(mode=0o755)
        undo.add(f"remove {MUNGE_RUN_DIR}", shutil.rmtree, MUNGE_RUN_DIR)
    os.chown(MUNGE_RUN_DIR, uid, gid)
    os.chmod(MUNGE_RUN_DIR, 0o755)
    if not MUNGE_KEY.exists():
        mungekey = shutil.which("mungekey", path=SEARCH_PATH)
        if mungekey:  # munge >= 0.5.14
            cmd = [mungekey, "--create", f"--keyfile={MUNGE_KEY}"]
        else:  # older packages; same as their create-munge-key
            cmd = ["dd", "if=/dev/urandom", f"of={MUNGE_KEY}", "bs=1", "count=1024"]
        made = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
        if made.returncode != 0 or not MUNGE_KEY.exists():
            raise ClusterUnavailable(f"could not create {MUNGE_KEY}: {made.stderr.strip()}")
        undo.add(f"remove {MUNGE_KEY}", MUNGE_KEY.unlink)
        os.chown(MUNGE_KEY, uid, gid)
        os.chmod(MUNGE_KEY, 0o600)
    pid_file = MUNGE_RUN_DIR / "munged.pid"
    if pid_file.exists():
        with contextlib.suppress(ValueError, OSError):
            pid = int(pid_file.read_text().split()[0])
            if Path(f"/proc/{pid}").exists():
                raise ClusterUnavailable(f"munged (pid {pid}, not ours) is running but did not "
                                         f"authenticate: {status}")
    out = open(workdir / "munged.out", "wb")  # noqa: SIM115 - closed when munged exits
    try:
        # --force: step over a stale socket left by a munged that was killed.
        proc = subprocess.Popen([paths["munged"], "--foreground", "--force"], user=uid,
                                group=gid, extra_groups=[], stdout=out, stderr=out,
                                stdin=subprocess.DEVNULL, start_new_session=True, cwd="/")
    finally:
        out.close()
    deadline = time.monotonic() + MUNGE_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ClusterUnavailable(f"munged exited ({proc.returncode}): "
                                     f"{_tail(workdir / 'munged.out')}")
        ok, status = _munge_status()
        if ok:
            return proc
        time.sleep(0.2)
    _stop(proc)
    raise ClusterUnavailable(f"munge did not authenticate within {MUNGE_TIMEOUT_S:.0f} s: "
                             f"{status}")


def _write_conf(workdir: Path, node: str, cpus: int, memory_mb: int) -> tuple[Path, Path]:
    """slurm.conf in workdir; returns it and the (short) slurmd spool folder."""
    spool = workdir / "spool"
    if len(str(spool)) > MAX_SPOOL_PATH:  # keep step sockets under the sun_path limit
        spool = Path(tempfile.mkdtemp(prefix="slurmd-"))
    state = workdir / "state"
    logs = workdir / "log"
    for d in (spool, state, logs):  # fresh state: no node drained or job left by a last run
        shutil.rmtree(d, ignore_errors=True)
        d.mkdir(parents=True)
    ctld_port, slurmd_port = _free_ports(2)
    conf = workdir / "slurm.conf"
    conf.write_text(f"""\
# Generated by tests/slurm_cluster.py: a one-node test cluster, nothing persistent.
ClusterName=damdptest
SlurmctldHost={node}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={slurmd_port}
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
SwitchType=switch/none
ReturnToService=2
MinJobAge=60
KillWait=5
InactiveLimit=0
SlurmctldTimeout=30
SlurmdTimeout=30
MailProg=/bin/true
StateSaveLocation={state}
SlurmdSpoolDir={spool}
SlurmctldPidFile={workdir / "slurmctld.pid"}
SlurmdPidFile={workdir / "slurmd.pid"}
SlurmctldLogFile={logs / "slurmctld.log"}
SlurmdLogFile={logs / "slurmd.log"}
SlurmctldDebug=info
SlurmdDebug=info
NodeName={node} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP
""")
    return conf, spool


@contextlib.contextmanager
def single_node_cluster(workdir: Path) -> Iterator[Cluster]:
    """Start a one-node SLURM cluster with its files in `workdir`; stop it on exit.

    Raises :class:`ClusterUnavailable` (one-line reason) if it cannot be started.
    """
    global _active_in_process
    paths = _preflight()
    if _active_in_process:
        raise ClusterUnavailable("a single_node_cluster is already running in this process")
    workdir = Path(workdir).resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    node = socket.gethostname().split(".")[0]
    cpus = len(os.sched_getaffinity(0))
    memory_mb = max(int(_memory_mb() * 0.9), 64)
    undo = _Undo()
    daemons: dict[str, subprocess.Popen] = {}
    cluster = None
    _active_in_process = True
    try:
        with _lock():
            try:
                try:
                    munged = _start_munged(paths, workdir, undo)
                    if munged is not None:
                        daemons["munged"] = munged
                    cluster = _start_slurm(paths, workdir, node, cpus, memory_mb, undo, daemons)
                except (OSError, subprocess.SubprocessError) as exc:
                    raise ClusterUnavailable(f"could not start the cluster: {exc}") from exc
                yield cluster
            finally:
                if cluster is not None:
                    _cancel_all(cluster)
                _shutdown(daemons, workdir / "slurm.conf", undo)
    finally:
        _active_in_process = False


def _start_slurm(paths: dict[str, str], workdir: Path, node: str, cpus: int, memory_mb: int,
                 undo: _Undo, daemons: dict[str, subprocess.Popen]) -> Cluster:
    conf, spool = _write_conf(workdir, node, cpus, memory_mb)
    if spool != workdir / "spool":
        undo.add(f"remove {spool}", shutil.rmtree, spool, True)
    bindir = os.pathsep.join(sorted({str(Path(p).parent) for p in paths.values()}))
    env = {"SLURM_CONF": str(conf), "PATH": os.pathsep.join([bindir, os.environ.get("PATH", "")])}
    # Clients and daemons must not think they run inside some other job's allocation.
    base = {k: v for k, v in os.environ.items() if not k.startswith(("SLURM_", "SBATCH_"))}
    client_env = {**base, **env}
    cluster = Cluster(env=env, partition=PARTITION, cpus=cpus, node=node, conf=conf,
                      workdir=workdir, _client_env=client_env)
    for name in ("slurmctld", "slurmd"):
        with open(workdir / f"{name}.out", "wb") as out:
            daemons[name] = subprocess.Popen(
                [paths[name], "-D", "-f", str(conf)], env=client_env, stdout=out, stderr=out,
                stdin=subprocess.DEVNULL, start_new_session=True, cwd=workdir)
    _wait_idle(cluster, daemons, workdir)
    return cluster


def _wait_idle(cluster: Cluster, daemons: dict[str, subprocess.Popen], workdir: Path) -> None:
    deadline = time.monotonic() + IDLE_TIMEOUT_S
    seen = ""
    while time.monotonic() < deadline:
        for name, proc in daemons.items():
            if proc.poll() is not None:
                log = workdir / "log" / f"{name}.log"
                why = _tail(log) if log.exists() else _tail(workdir / f"{name}.out")
                raise ClusterUnavailable(f"{name} exited ({proc.returncode}): {why}")
        try:
            seen = cluster.run("sinfo", "-h", "-o", "%t", timeout=10).stdout.strip()
        except (RuntimeError, subprocess.TimeoutExpired) as exc:
            seen = str(exc)
        if seen == "idle":
            return
        time.sleep(0.25)
    with contextlib.suppress(Exception):  # the node's state with slurmctld's reason
        seen = cluster.run("sinfo", "-h", "-N", "-o", "%t %E", timeout=10).stdout.strip()
    errors = [ln for log in ("slurmctld", "slurmd")
              for ln in _tail(workdir / "log" / f"{log}.log", 50).split(" | ")
              if "error" in ln and "pmix" not in ln.lower() and "mpi" not in ln.lower()]
    raise ClusterUnavailable(f"node did not become idle within {IDLE_TIMEOUT_S:.0f} s: "
                             f"sinfo says {seen or '(nothing)'!r}"
                             + (f"; last error: {errors[-1]}" if errors else ""))


def _cancel_all(cluster: Cluster) -> None:
    """Cancel what the test left in the queue and give it a few seconds to go."""
    with contextlib.suppress(Exception):
        jobs = [job for job, _ in cluster.squeue()]
        if not jobs:
            return
        cluster.run("scancel", *{job.split("_")[0] for job in jobs})
        deadline = time.monotonic() + 10
        while cluster.squeue() and time.monotonic() < deadline:
            time.sleep(0.25)


def _shutdown(daemons: dict[str, subprocess.Popen], conf: Path, undo: _Undo) -> None:
    """Stop what we started (slurmd, slurmctld, their left-over steps, munged), then undo."""
    _stop(daemons.pop("slurmd", None))
    _stop(daemons.pop("slurmctld", None))
    for pid in _strays(conf):  # job steps (and their processes) that outlived our slurmd
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _stop(daemons.pop("munged", None))
    errors = undo.run()
    if errors:
        message = "single_node_cluster could not restore: " + "; ".join(errors)
        if sys.exc_info()[0] is not None:  # do not mask the test's own failure
            warnings.warn(message, RuntimeWarning, stacklevel=2)
        else:
            raise RuntimeError(message)
