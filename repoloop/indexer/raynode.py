"""Ray on the loopback address: `python -m repoloop.indexer.raynode start ...` is `ray start ...`
that keeps 127.0.0.1 as given.

Ray (2.60) rewrites a loopback `--node-ip-address`, `--address` or `ray.init(address=...)` host to
the machine's primary address (`services.resolve_ip_for_localhost`), so a "127.0.0.1" cluster
would advertise, and connect through, e.g. 192.0.2.x. For a cluster of several nodes on one machine
(tests, benchmarks, a laptop) that must never leave loopback, this module turns that rewrite off for
loopback hosts only; every other address is resolved as Ray does. With it, every Ray process here
binds and advertises 127.0.0.1 (checked by tests/test_cluster.py).

Real clusters (nodes on several machines) use plain `ray start` and `--cluster HOST:PORT`.
"""

from __future__ import annotations

import sys

LOOPBACK = "127.0.0.1"


def is_loopback(host: str | None) -> bool:
    return (host or "").strip("[]").lower() in ("127.0.0.1", "localhost", "::1")


def keep_loopback() -> None:
    """Make Ray keep a loopback host as it is (idempotent; call before `ray.init` or the CLI)."""
    import ray._private.services as services

    if getattr(services.resolve_ip_for_localhost, "_repoloop_loopback", False):
        return
    original = services.resolve_ip_for_localhost

    def resolve(host: str) -> str:
        return LOOPBACK if host and is_loopback(host) else original(host)

    resolve._repoloop_loopback = True  # type: ignore[attr-defined]
    services.resolve_ip_for_localhost = resolve


def main(argv: list[str] | None = None) -> None:
    keep_loopback()
    from ray.scripts.scripts import main as ray_main

    sys.argv = ["ray", *(sys.argv[1:] if argv is None else argv)]
    ray_main()


if __name__ == "__main__":
    main()
