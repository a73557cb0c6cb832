"""The outbox measured (issue 14, "Speed"), each row beside its floor, in one run:

- 202 accept: `POST /api/v1/email/send` with `Prefer: respond-async` (the message stored durably, the
  answer 202) at 1 client (p50) and 8 client processes (accepts/s), beside GET one config on the same
  server (rounds interleaved), while the test Mailgun is down (nothing drains meanwhile);
- drain: N messages queued while the test Mailgun is down, then the time from its coming back to its
  last accepted post, beside the same N posts made directly (requests.Session, the same form) by as
  many client processes as the service has posters (workers x FIDESMAIL_OUTBOX_CONCURRENCY).

On SQLite (one `python app.py`, 2 workers) and, with --postgres, on 3 replicas sharing one PostgreSQL
(tests/pg.py starts a throwaway one). Run: `python bench/outbox.py [--quick|--smoke] [--postgres]`;
bench/run.py imports `measure` and `rows`.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import secrets
import shutil
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import lib  # noqa: E402
import send as send_bench  # noqa: E402
from send import met, ms, table  # noqa: E402

PROFILES = {
    "full": {"rounds": 4, "per_round": 500, "seconds": 3.0, "drain": 10000},
    "quick": {"rounds": 2, "per_round": 200, "seconds": 1.5, "drain": 2000},
    "smoke": {"rounds": 1, "per_round": 20, "seconds": 0.5, "drain": 80},
}
WORKERS, POSTERS, CLIENTS = 2, 4, 8
ASYNC_BODY = {**send_bench.SEND_BODY}
HEADER = ["measure", "outbox", "floor", "ratio", "goal", "met"]


def _fake_call(fake_port: int, what: str) -> dict:
    method = "GET" if what == "stats" else "POST"
    request = urllib.request.Request(f"http://{lib.HOST}:{fake_port}/fake/{what}", method=method, data=None)
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.loads(answer.read())


def _async_request(port: int, bearer: str) -> bytes:
    body = lib.dumps(ASYNC_BODY)
    return (f"POST /api/v1/email/send HTTP/1.1\r\nHost: {lib.HOST}:{port}\r\nAuthorization: Bearer {bearer}\r\n"
            f"Prefer: respond-async\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            ).encode() + body


def _spread(ports: list[int], make_raw, expect: int = 200):
    """A client factory for lib.throughput: each client process talks to one of the servers."""
    def factory():
        port = ports[secrets.randbelow(len(ports))]
        return lib.checked(lib.RawClient(port), make_raw(port), expect=expect)
    return factory


def _count_worker(conn, factory, count: int) -> None:
    try:
        call = factory()
        for _ in range(count):
            call()
        conn.send(("ok", count))
    except BaseException as exc:
        conn.send(("error", f"{type(exc).__name__}: {exc}"))
    finally:
        conn.close()


def fixed_count(factory, clients: int, total: int) -> float:
    """Seconds for `clients` processes to make `total` calls between them."""
    ctx = multiprocessing.get_context("fork")
    shares = [total // clients + (1 if n < total % clients else 0) for n in range(clients)]
    pipes, procs = [], []
    started = time.perf_counter()
    for share in shares:
        parent, child = ctx.Pipe(duplex=False)
        proc = ctx.Process(target=_count_worker, args=(child, factory, share), daemon=True)
        proc.start()
        child.close()
        pipes.append(parent)
        procs.append(proc)
    for pipe in pipes:
        kind, value = pipe.recv()
        if kind != "ok":
            raise RuntimeError(f"client failed: {value}")
    elapsed = time.perf_counter() - started
    for proc in procs:
        proc.join(5)
    return elapsed


class Setup:
    """The test Mailgun (its own process), a tree with one config, and fidesmail: 1 server or 3 replicas."""

    def __init__(self, tmp: Path, name: str, replicas: int = 1, database_url: str | None = None,
                 backoff: float = 0.01):
        self.tmp = tmp / name
        self.tmp.mkdir()
        self.fake_port = lib.free_port()
        self.fake = lib.spawn([lib.PY, str(lib.ROOT / "tests" / "mailgun_fake.py"), "--port", str(self.fake_port),
                               "--domain", f"{send_bench.DOMAIN}={send_bench.API_KEY}"], lib.base_env(),
                              self.tmp / "fake.log")
        lib.wait_port(self.fake_port, self.fake)
        self.fake_url = f"http://{lib.HOST}:{self.fake_port}"
        self.tree = lib.make_tree(self.tmp / "tree", 1, domain=send_bench.DOMAIN, api_key=send_bench.API_KEY)
        for name in ("records.key", "content.key"):  # replicas of one database share both
            (self.tree["instance"] / name).write_bytes(secrets.token_hex(32).encode())
            (self.tree["instance"] / name).chmod(0o600)
        self.ports, self.servers = [], []
        for n in range(replicas):
            instance = self.tree["instance"]
            if n:  # replicas share the keyring and the records and content keys, each in its own instance dir
                instance = self.tmp / f"instance-{n}"
                shutil.copytree(self.tree["instance"], instance)
            port = lib.free_port()
            extra = {"FIDESMAIL_DATABASE_URL": database_url} if database_url else {}
            env = lib.server_env({**self.tree, "instance": instance}, port, FIDESMAIL_MAILGUN_BASE_URL=self.fake_url,
                                 FIDESMAIL_MAILGUN_RETRIES=0, WEB_CONCURRENCY=WORKERS,
                                 FIDESMAIL_OUTBOX_CONCURRENCY=POSTERS, FIDESMAIL_OUTBOX_BACKOFF=backoff,
                                 FIDESMAIL_OUTBOX_MAX_BACKOFF=backoff * 5, **extra)
            proc, _ = lib.start_server([lib.PY, "app.py"], env, self.tmp / f"fidesmail-{n}.log", port)
            self.servers.append(proc)
            self.ports.append(port)
        self.bearer = lib.token()

    def fake_says(self, what: str) -> dict:
        return _fake_call(self.fake_port, what)

    def outbox(self) -> dict:
        status, body = lib.fetch(self.ports[0], "/health")
        return json.loads(body)["outbox"]

    def stop(self) -> None:
        for proc in self.servers:
            lib.stop(proc)
        lib.stop(self.fake)


def measure_accept(setup: Setup, profile: dict) -> dict:
    """202 accepts vs GET one config, the Mailgun down: p50 at 1 client, req/s at 8 client processes."""
    setup.fake_says("down")
    one = lib.get_request(setup.ports[0], "/api/v1/email/config/" + lib.config_key(0), setup.bearer)
    for port in setup.ports:
        lib.touch_workers(port, "/api/v1/email/config/" + lib.config_key(0), setup.bearer)
    accept_call = lib.checked(lib.RawClient(setup.ports[0]), _async_request(setup.ports[0], setup.bearer),
                              expect=202)
    get_call = lib.checked(lib.RawClient(setup.ports[0]), one)
    accepts, gets = [], []
    for _ in range(profile["rounds"]):
        accepts.extend(lib.latencies(accept_call, profile["per_round"], warmup=10))
        gets.extend(lib.latencies(get_call, profile["per_round"], warmup=10))
    bearer = setup.bearer
    rps_accept = lib.throughput(_spread(setup.ports, lambda port: _async_request(port, bearer), 202), CLIENTS,
                                profile["seconds"])
    rps_get = lib.throughput(_spread(setup.ports, lambda port: lib.get_request(
        port, "/api/v1/email/config/" + lib.config_key(0), bearer)), CLIENTS, profile["seconds"])
    return {"accept_p50": lib.pct(accepts, 50), "get_p50": lib.pct(gets, 50), "accept_rps": rps_accept,
            "get_rps": rps_get}


def measure_drain(setup: Setup, total: int) -> dict:
    """N queued while the Mailgun is down, drained once it is back; beside N direct posts, same concurrency."""
    setup.fake_says("down")
    bearer = setup.bearer
    fixed_count(_spread(setup.ports, lambda port: _async_request(port, bearer), 202), CLIENTS, total)
    deadline = time.monotonic() + 60
    while setup.outbox()["sending"] and time.monotonic() < deadline:  # the probes in flight settle
        time.sleep(0.05)
    before = setup.fake_says("stats")["accepted"]
    back = time.time()
    setup.fake_says("up")
    deadline = time.monotonic() + max(30, total / 20)
    while (stats := setup.fake_says("stats"))["accepted"] - before < total:
        if time.monotonic() > deadline:
            raise RuntimeError(f"only {stats['accepted'] - before} of {total} drained")
        time.sleep(0.05)
    drained = stats["last_accepted_at"] - back
    posters = len(setup.ports) * WORKERS * POSTERS
    request = send_bench._direct_request(setup.fake_url, setup.tree["config"])
    direct = fixed_count(send_bench._direct_factory(request), posters, total)
    return {"total": total, "drain": drained, "direct": direct, "posters": posters}


def measure(tmp: Path, profile: dict, postgres: bool = False) -> dict:
    """Every row: SQLite always, 3 replicas on PostgreSQL when asked (and PostgreSQL can be had)."""
    tmp = Path(tmp)
    results = {}
    setups = [("sqlite", 1, None)]
    pg_server = None
    if postgres:
        sys.path.insert(0, str(lib.ROOT))
        from tests import pg

        bin_dir = pg.find_bin_dir()
        if bin_dir is None:
            print(f"[bench] no PostgreSQL rows: {pg.missing_reason()}", file=sys.stderr)
        else:
            pg_server = pg.PostgresServer(bin_dir).start()
            setups.append(("postgresql", 3, pg_server))
    try:
        for name, replicas, server in setups:
            for phase in ("accept", "drain"):
                url = server.url(server.create_database()) if server is not None else None
                # Accepting: probes as rare as in production (a 30 s backoff); draining: the first at once.
                setup = Setup(tmp, f"{name}-{phase}", replicas, url, backoff=30.0 if phase == "accept" else 0.01)
                try:
                    if phase == "accept":
                        results[(name, phase)] = measure_accept(setup, profile)
                    else:
                        results[(name, phase)] = measure_drain(setup, profile["drain"])
                finally:
                    setup.stop()
    finally:
        if pg_server is not None:
            pg_server.stop()
    return results


def rows(results: dict) -> list[list[str]]:
    out = []
    labels = (("sqlite", "SQLite, 1 service x 2 workers"), ("postgresql", "PostgreSQL, 3 replicas x 2 workers"))
    for name, label in labels:
        if (name, "accept") not in results:
            continue
        accept, drain = results[(name, "accept")], results[(name, "drain")]
        out += [
            [f"202 accept p50, 1 client ({label}) vs GET one config", ms(accept["accept_p50"]), ms(accept["get_p50"]),
             f"{accept['accept_p50'] / accept['get_p50']:.2f}x", "", ""],
            [f"202 accepts/s, 8 clients ({label}) vs GET one config", f"{accept['accept_rps']:,.0f}/s",
             f"{accept['get_rps']:,.0f}/s", f"{accept['get_rps'] / accept['accept_rps']:.2f}x", ">= 1,000/s",
             met(accept["accept_rps"] >= 1000)],
            [f"drain {drain['total']:,} queued to the loopback fake ({label}) vs as many direct posts, "
             f"{drain['posters']} at a time", f"{drain['drain']:.2f} s", f"{drain['direct']:.2f} s",
             f"{drain['drain'] / drain['direct']:.2f}x", "<= 1.25x", met(drain["drain"] / drain["direct"] <= 1.25)],
        ]
    return out


NOTE = ("Accepts are measured with the test Mailgun down (the queue only grows); the drain starts when it comes "
        "back (the service's gate backoff is set to 10-50 ms for the run, so the first probe comes at once) and ends "
        "at its last accepted post. The direct floor posts the same form with requests.Session from as many client "
        "processes as the service has posters.")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="fewer requests, 2,000 to drain")
    parser.add_argument("--smoke", action="store_true", help="the smallest run (to check it works)")
    parser.add_argument("--postgres", action="store_true", help="also 3 replicas on a throwaway PostgreSQL")
    args = parser.parse_args(argv)
    profile = PROFILES["smoke" if args.smoke else "quick" if args.quick else "full"]
    with tempfile.TemporaryDirectory(prefix="fidesmail-bench-outbox-") as tmp:
        try:
            results = measure(Path(tmp), profile, postgres=args.postgres)
        except BaseException:
            for log in sorted(Path(tmp).rglob("*.log")):
                tail = log.read_text(errors="replace").splitlines()[-10:]
                print(f"--- {log.name} (last lines)\n" + "\n".join(tail), file=sys.stderr)
            raise
        finally:
            lib.stop_all()
    print(table(HEADER, rows(results)))
    print()
    print(NOTE)
    return 0


if __name__ == "__main__":
    sys.exit(main())
