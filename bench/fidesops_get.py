"""fidesops 1.8.2 beside fidesmail for the same GET of one email config (issue 17's "for scale" row).

Opt-in, as the fidesops end-to-end test is: it needs Python 3.9, PostgreSQL's binaries and
redis-server, and builds (or reuses) fidesops' venv in ~/.cache/fidesmail-e2e
(integrations/fidesops/tests/fidesops_stack.py). fidesops runs as its CLI runs it (its FastAPI app
under uvicorn, one process, on a throwaway PostgreSQL and Redis), with one Mailgun email config made
through its own API; fidesmail runs as `python app.py` with one config. Both are asked
`GET /api/v1/email/config/{key}` with a bearer token over a raw keep-alive socket, one client,
rounds interleaved; the p50s and their ratio are printed.

Run: `python bench/fidesops_get.py [--quick]`.
"""

from __future__ import annotations

import argparse
import secrets
import sys
import tempfile
from pathlib import Path

import requests

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "integrations" / "fidesops" / "tests"))

import fidesops_stack as stack  # noqa: E402
import lib  # noqa: E402

KEY = "bench_mailgun"
PROFILES = {"full": {"rounds": 6, "per_round": 300}, "quick": {"rounds": 2, "per_round": 100}}


def _fidesops_config(fidesops, bearer: str) -> None:
    answer = requests.post(fidesops.url + "/email/config", timeout=30, headers={"Authorization": f"Bearer {bearer}"},
                           json={"key": KEY, "name": "Bench Mailgun", "service_type": "mailgun",
                                 "details": {"domain": "mg.bench.example.com", "api_version": "v3",
                                             "is_eu_domain": False}})
    answer.raise_for_status()


def measure(tmp: Path, profile: dict) -> dict:
    venv, _ = stack.fidesops_venv()
    tree = lib.make_tree(tmp / "fidesmail-tree", 1)
    port = lib.free_port()
    server, _ = lib.start_server([lib.PY, "app.py"], lib.server_env(tree, port), tmp / "fidesmail.log", port)
    try:
        password = "bench-" + secrets.token_hex(8)
        with stack.postgres() as db, stack.redis(password) as redis_port:
            fidesops = stack.Fidesops(venv, tmp / "fidesops", db, redis_port, password, {})
            try:
                fidesops.start()
                root = fidesops.token()
                _fidesops_config(fidesops, root)
                calls = {
                    "fidesops": lib.checked(lib.RawClient(fidesops.port), lib.get_request(
                        fidesops.port, f"/api/v1/email/config/{KEY}", root)),
                    "fidesmail": lib.checked(lib.RawClient(port), lib.get_request(
                        port, f"/api/v1/email/config/{lib.config_key(0)}", lib.token())),
                }
                samples = {name: [] for name in calls}
                for _ in range(profile["rounds"]):
                    for name, call in calls.items():
                        samples[name].extend(lib.latencies(call, profile["per_round"], warmup=20))
            finally:
                fidesops.stop()
    finally:
        lib.stop(server)
    return {name: lib.pct(values, 50) for name, values in samples.items()}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="fidesmail-bench-fidesops-") as tmp:
        try:
            result = measure(Path(tmp), PROFILES["quick" if args.quick else "full"])
        except stack.Missing as missing:
            print(f"fidesops cannot be run here: {missing}", file=sys.stderr)
            return 2
        finally:
            lib.stop_all()
    ratio = result["fidesops"] / result["fidesmail"]
    print("| GET one email config, p50, 1 client | fidesops 1.8.2 | fidesmail | fidesops / fidesmail | goal |")
    print("|---|---|---|---|---|")
    print(f"| one config, a bearer token each | {result['fidesops'] * 1000:.2f} ms "
          f"| {result['fidesmail'] * 1000:.2f} ms | {ratio:.1f}x slower | >= 4x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
