"""Shared benchmark machinery: config trees, server processes, a lean HTTP client, /proc readings.

Everything runs on 127.0.0.1, on ports the kernel picks free, under one temp dir; every process
started here is tracked and killed (its whole process group) when the benchmark ends, however it ends.
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import datetime
import json
import multiprocessing
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
from array import array
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from fidesmail.core import yamlio  # noqa: E402
from fidesmail.sealing import envelope, keys, sealed_file  # noqa: E402
from fidesmail.web import auth  # noqa: E402

PY = sys.executable
SECRET = "bench-signing-key"
HOST = "127.0.0.1"
CLK_TCK = os.sysconf("SC_CLK_TCK")
PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024


# --- processes --------------------------------------------------------------------------------

_OWNER = os.getpid()
_PROCS: list[subprocess.Popen] = []


def spawn(argv: list[str], env: dict, log_path: Path, cwd: Path = ROOT) -> subprocess.Popen:
    """Start a process in its own session (so its workers die with it); output to a log file."""
    log = open(log_path, "ab")  # noqa: SIM115 - kept open for the child's lifetime
    proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=log,
                            stderr=subprocess.STDOUT, start_new_session=True)
    log.close()
    _PROCS.append(proc)
    return proc


def stop(proc: subprocess.Popen, grace: float = 8.0) -> None:
    """SIGTERM the process group, SIGKILL what is left after `grace` seconds."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(grace)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)  # stragglers of the group (workers), if any
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(2)
    if proc in _PROCS:
        _PROCS.remove(proc)


def stop_all() -> None:
    if os.getpid() != _OWNER:
        return
    for proc in list(_PROCS):
        stop(proc, grace=3.0)


def _on_signal(signum, frame):
    raise SystemExit(128 + signum)


atexit.register(stop_all)
for _sig in (signal.SIGTERM, signal.SIGHUP):
    signal.signal(_sig, _on_signal)


def free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def base_env(**extra) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FIDESMAIL_", "FLASK_", "WEB_CONCURRENCY"))}
    env.update({"WEB_CONCURRENCY": "2", "FIDESMAIL_THREADS": "4", "FIDESMAIL_HOST": HOST,
                "FIDESMAIL_SECRET_KEY": SECRET, "PYTHONDONTWRITEBYTECODE": "1",
                # The benchmarks send one verification code to one address again and again: the limit (5 an
                # hour) would refuse the sixth. Off, as before it existed; bench/limits.py measures it.
                "FIDESMAIL_VERIFICATION_LIMIT": "0"})
    env.update({k: str(v) for k, v in extra.items()})
    return env


def token() -> str:
    return auth.create_token([SECRET], auth.SCOPES, 24 * 3600)


# --- config trees -----------------------------------------------------------------------------

def config_key(i: int) -> str:
    return f"cfg_{i:05d}"


def config_doc(i: int, domain: str | None = None) -> dict:
    return {"key": config_key(i), "name": f"Config {i:05d}", "service_type": "mailgun",
            "details": {"domain": domain or f"mg{i}.example.com", "is_eu_domain": i % 2 == 1,
                        "api_version": "v3"}}


def make_tree(base: Path, count: int, *, domain: str | None = None, api_key: str | None = None) -> dict:
    """A config tree of `count` configs with one sealed Mailgun key each, and its instance dir."""
    config, instance = base / "config", base / "instance"
    (config / "email").mkdir(parents=True)
    instance.mkdir(mode=0o700)
    pair = keys.generate_keypair()
    keyring = instance / "seal.key"
    keyring.write_bytes(keys.dump_keyring([pair]))
    keyring.chmod(0o600)
    (config / "seal.pub").write_bytes(keys.dump_public_key(pair.public_key))
    entries = {}
    for i in range(count):
        doc = config_doc(i, domain)
        (config / "email" / f"{doc['key']}.yaml").write_bytes(yamlio.dump(doc))
        entries[doc["key"]] = {"mailgun_api_key": envelope.seal(pair.public_key, doc["key"], "mailgun_api_key",
                                                              api_key or f"key-{i:05d}")}
    (config / "secrets.sealed.yaml").write_bytes(sealed_file.dump(sealed_file.SealedFile(entries)))
    return {"config": config, "instance": instance, "count": count}


def server_env(tree: dict, port: int, **extra) -> dict:
    return base_env(FIDESMAIL_CONFIG_DIR=tree["config"], FIDESMAIL_INSTANCE_DIR=tree["instance"],
                    FIDESMAIL_PORT=port, **extra)


# --- a lean HTTP/1.1 keep-alive client ----------------------------------------------------------

class HTTPError(RuntimeError):
    pass


class RawClient:
    """Prebuilt request bytes over one keep-alive socket: little client-side cost per request."""

    def __init__(self, port: int, host: str = HOST, timeout: float = 30.0):
        self.address = (host, port)
        self.timeout = timeout
        self.sock: socket.socket | None = None
        self.buf = b""

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
        self.sock, self.buf = None, b""

    def connect(self) -> None:
        self.close()
        sock = socket.create_connection(self.address, timeout=self.timeout)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.sock = sock

    def request(self, raw: bytes) -> tuple[int, bytes]:
        """Send one prebuilt request; reconnect once if the server had closed an idle connection."""
        for attempt in (1, 2):
            if self.sock is None:
                self.connect()
            try:
                self.sock.sendall(raw)
                return self._read()
            except (ConnectionError, HTTPError):
                self.close()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def _read(self) -> tuple[int, bytes]:
        sock, buf = self.sock, self.buf
        while True:
            end = buf.find(b"\r\n\r\n")
            if end >= 0:
                break
            chunk = sock.recv(65536)
            if not chunk:
                raise HTTPError("connection closed before an answer")
            buf += chunk
        head = buf[:end].decode("latin-1")
        lines = head.split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        length, close = None, False
        for line in lines[1:]:
            name, _, value = line.partition(":")
            name = name.strip().lower()
            if name == "content-length":
                length = int(value)
            elif name == "connection" and value.strip().lower() == "close":
                close = True
        if length is None:
            length = 0 if status in (204, 304) else None
        if length is None:
            raise HTTPError("no Content-Length in the answer")
        need = end + 4 + length
        while len(buf) < need:
            chunk = sock.recv(max(65536, need - len(buf)))
            if not chunk:
                raise HTTPError("connection closed mid-answer")
            buf += chunk
        body, self.buf = buf[end + 4:need], buf[need:]
        if close:
            self.close()
        return status, body


def get_request(port: int, path: str, bearer: str | None = None) -> bytes:
    auth_line = f"Authorization: Bearer {bearer}\r\n" if bearer else ""
    return f"GET {path} HTTP/1.1\r\nHost: {HOST}:{port}\r\n{auth_line}\r\n".encode()


def fetch(port: int, path: str, bearer: str | None = None, timeout: float = 10.0) -> tuple[int, bytes]:
    """One request on a fresh connection (lands on whichever worker accepts it)."""
    client = RawClient(port, timeout=timeout)
    try:
        return client.request(get_request(port, path, bearer))
    finally:
        client.close()


def wait_healthy(port: int, proc: subprocess.Popen, timeout: float = 60.0, poll: float = 0.005) -> float:
    """Seconds until /health answers 200 (polled every `poll` s); raises if the process dies first."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode} before /health answered")
        try:
            status, _ = fetch(port, "/health", timeout=5)
            if status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(poll)
    raise RuntimeError(f"/health did not answer 200 within {timeout:g} s")


def start_server(argv: list[str], env: dict, log_path: Path, port: int) -> tuple[subprocess.Popen, float]:
    """Start a server and return it with the seconds from process start to the first 200 on /health."""
    started = time.monotonic()
    proc = spawn(argv, env, log_path)
    wait_healthy(port, proc)
    return proc, time.monotonic() - started


def wait_port(port: int, proc: subprocess.Popen, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"process exited with {proc.returncode}")
        with contextlib.suppress(OSError), socket.create_connection((HOST, port), timeout=1):
            return
        time.sleep(0.01)
    raise RuntimeError(f"nothing listens on {port} after {timeout:g} s")


def touch_workers(port: int, path: str, bearer: str | None, connections: int = 16) -> None:
    """Requests on fresh connections, so that every worker has served (and started its watcher)."""
    for _ in range(connections):
        status, body = fetch(port, path, bearer)
        if status != 200:
            raise HTTPError(f"{path}: {status} {body[:200]!r}")


# --- load ------------------------------------------------------------------------------------

def latencies(call, count: int, warmup: int = 20) -> array:
    """Seconds per call, `count` calls one after another (after `warmup` unmeasured ones)."""
    for _ in range(warmup):
        call()
    out = array("d")
    clock = time.perf_counter
    for _ in range(count):
        t0 = clock()
        call()
        out.append(clock() - t0)
    return out


def _load_worker(conn, factory, start_at: float, end_at: float) -> None:
    try:
        call = factory()
        call()
        while time.time() < start_at:
            time.sleep(0.001)
        done = 0
        cpu = time.process_time()
        while time.time() < end_at:
            call()
            done += 1
        conn.send(("ok", (done, time.process_time() - cpu)))
    except BaseException as exc:  # reported to the parent, which raises
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


CLIENT_CPU: list[float] = []  # share of the machine's CPU the load clients used, per throughput() run


def throughput(factory, clients: int, seconds: float) -> float:
    """Requests per second from `clients` client processes in a closed loop for `seconds`.

    `factory()` runs in each client process and returns the zero-argument call to repeat (each
    client has its own connection). Processes, not threads, so the client's GIL is not the limit;
    the CPU they used is appended to CLIENT_CPU (as a share of all cores), to show they were not it.
    """
    ctx = multiprocessing.get_context("fork")
    start_at = time.time() + 0.3 + 0.02 * clients
    end_at = start_at + seconds
    pipes, procs = [], []
    try:
        for _ in range(clients):
            parent, child = ctx.Pipe(duplex=False)
            proc = ctx.Process(target=_load_worker, args=(child, factory, start_at, end_at), daemon=True)
            proc.start()
            child.close()
            pipes.append(parent)
            procs.append(proc)
        total, cpu = 0, 0.0
        for pipe in pipes:
            if not pipe.poll(seconds + 60):
                raise RuntimeError("a load client did not report")
            kind, value = pipe.recv()
            if kind != "ok":
                raise RuntimeError(f"load client failed: {value}")
            total += value[0]
            cpu += value[1]
        CLIENT_CPU.append(cpu / (seconds * (os.cpu_count() or 1)))
        return total / seconds
    finally:
        for proc in procs:
            proc.join(5)
            if proc.is_alive():
                proc.kill()
                proc.join()


def pct(values, q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    index = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[index]


def checked(client: RawClient, raw: bytes, expect: int = 200):
    def call():
        status, body = client.request(raw)
        if status != expect:
            raise HTTPError(f"{status}: {body[:300]!r}")
        return body
    return call


# --- /proc -----------------------------------------------------------------------------------

def children(pid: int) -> list[int]:
    kids = []
    with contextlib.suppress(OSError):
        for task in os.listdir(f"/proc/{pid}/task"):
            with contextlib.suppress(OSError), open(f"/proc/{pid}/task/{task}/children") as fh:
                kids.extend(int(x) for x in fh.read().split())
    return kids


def tree_pids(pid: int) -> list[int]:
    pids, todo = [], [pid]
    while todo:
        current = todo.pop()
        pids.append(current)
        todo.extend(children(current))
    return pids


def cpu_ns(pid: int) -> int | None:
    """Nanoseconds on a CPU so far, summed over every thread of `pid` and of its children (gunicorn's workers),
    from /proc/*/task/*/schedstat; None where the kernel does not keep it. Unlike a latency it does not count
    waiting for a CPU, so it still tells a 10 us step on a busy machine."""
    total, seen = 0, False
    for proc in (pid, *children(pid)):
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{proc}/task"):
                with contextlib.suppress(OSError, ValueError, IndexError), \
                        open(f"/proc/{proc}/task/{task}/schedstat") as fh:
                    total += int(fh.read().split()[0])
                    seen = True
    return total if seen else None


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as fh:
            for line in fh:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def cpu_seconds(pid: int) -> float:
    with open(f"/proc/{pid}/stat") as fh:
        fields = fh.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLK_TCK  # utime, stime


def tree_cpu(pid: int) -> float:
    total = 0.0
    for p in tree_pids(pid):
        with contextlib.suppress(OSError):
            total += cpu_seconds(p)
    return total


def memory(pid: int) -> dict:
    """RSS of each worker (MB), and RSS / PSS summed over the process tree (MB)."""
    workers = children(pid)
    return {
        "worker_rss": max((rss_kb(w) for w in workers), default=0) / 1024,
        "worker_pss": max((pss_kb(w) for w in workers), default=0) / 1024,
        "master_rss": rss_kb(pid) / 1024,
        "tree_rss": sum(rss_kb(p) for p in tree_pids(pid)) / 1024,
        "tree_pss": sum(pss_kb(p) for p in tree_pids(pid)) / 1024,
        "workers": len(workers),
    }


def machine() -> dict:
    model = platform.processor() or "unknown"
    with contextlib.suppress(OSError), open("/proc/cpuinfo") as fh:
        for line in fh:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    mem_gb = 0.0
    with contextlib.suppress(OSError), open("/proc/meminfo") as fh:
        for line in fh:
            if line.startswith("MemTotal:"):
                mem_gb = int(line.split()[1]) / 1024 / 1024
    return {
        "cpu": model,
        "cores": os.cpu_count(),
        "memory": f"{mem_gb:.0f} GiB",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "date": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M UTC"),
    }


def dumps(obj) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


def standalone(argv, description: str, profiles: dict, measure, report, name: str) -> int:
    """A bench module run on its own: --quick or --smoke picks the profile, `measure(tmp, profile)` runs in a
    temp dir with every process stopped after, and `report(result)` is printed."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--quick", action="store_true", help="fewer requests")
    parser.add_argument("--smoke", action="store_true", help="the smallest run (to check it works)")
    args = parser.parse_args(argv)
    profile = profiles["smoke" if args.smoke else "quick" if args.quick else "full"]
    with tempfile.TemporaryDirectory(prefix=f"fidesmail-bench-{name}-") as tmp:
        try:
            result = measure(Path(tmp), profile)
        finally:
            stop_all()
    print(report(result))
    return 0
