"""`repoloop index --cluster ADDRESS|local`: parse and embed on a Ray cluster (optional extra
`repoloop[cluster]`).

What stays on the driver (this process): the walk, reading each file to be parsed (so workers need
no checkout: the bytes travel in the batch), the content-hash check that passes unchanged files
without shipping them, and the one SQLite writer (a batch of files per transaction, exactly as a
local run: `pipeline._Run` with its parse source swapped). A kill of the driver therefore leaves
the index as a killed local run does: each file fully old or fully new, and the next run (local or
cluster) does only what is left.

What fans out:
- parsing + chunking + tokenizing: one Ray task per batch of files (`BATCH_FILES` files or
  `BATCH_BYTES` bytes, whichever is first), biggest files first, a bounded number of batches in
  flight (memory on the driver and in the object store stays bounded). Each task runs
  `pipeline.parse_bytes`, the very code a local worker runs after its read, and returns the same
  records plus its parser fingerprint: a node with another repoloop or grammar version is refused
  with one line, never mixed into the index.
- embedding: plain Ray actors, one per CPU of the cluster (or one per GPU where it has GPUs), each
  loading the model once (the same ONNX encoder as a local run on a CPU; sentence-transformers on
  the GPU). Plain actors rather than Ray Data `map_batches`: the texts to embed come from SQLite
  on the driver after the content-hash/vector-store check (`embed.phase.embed_missing`, so only
  texts with no vector anywhere, team cache included, are sent), and every vector goes back to the
  driver, which upserts it into Chroma batch by batch, so a kill loses at most one round; Ray Data
  would add a dataset layer, its own scheduler and its own memory accounting to what is a
  round-robin over a handful of actors.

Faults: a parse task whose node dies is retried by Ray on another node (`max_retries`); an
embedding actor that dies has its texts re-sent to the actors still alive (new actors are started
if none is left). A failure Ray cannot recover from ends the run with one line; what was stored
stays, and the next run parses and embeds only the rest.
"""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from repoloop.errors import RepoloopError
from repoloop.indexer import walk as walk_mod
from repoloop.indexer.config import ClusterConfig, EmbedConfig
from repoloop.indexer.lock import IndexLock
from repoloop.indexer.pipeline import (
    IndexReport,
    _Result,
    _Run,
    _Task,
    parse_bytes,
    parser_fingerprint,
    read_task,
)
from repoloop.indexer.store import DB_NAME, FileWrite, IndexStore, index_dir_for, prepare_index_dir

BATCH_FILES = ClusterConfig.batch_files  # files per parse task by default (ClusterConfig.batch_files)
BATCH_BYTES = 4 << 20  # ... or this many source bytes
EMBED_SUB = ClusterConfig.embed_sub  # texts per actor call by default (ClusterConfig.embed_sub)
_ACTOR_START_S = 180.0  # how long the first new embedding actor may take to come up
_ACTOR_GRACE_S = 60.0  # ... and the others after it


@dataclass
class ClusterStats:
    address: str
    nodes: int = 0
    cpus: float = 0.0
    gpus: float = 0.0
    connect_s: float = 0.0
    batches: int = 0
    files_shipped: int = 0
    bytes_shipped: int = 0
    files_by_node: dict[str, int] = field(default_factory=dict)
    chunks_by_node: dict[str, int] = field(default_factory=dict)
    embed_actors: int = 0
    actors_lost: int = 0
    actor_device: str = ""

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["connect_s"] = round(self.connect_s, 3)
        return d


def _ray() -> Any:
    try:
        import ray
    except ImportError as e:
        raise RepoloopError("--cluster needs Ray: pip install 'repoloop[cluster]'") from e
    return ray


def connect(address: str, *, num_cpus: int | None = None) -> tuple[Any, ClusterStats]:
    """Join the cluster at `address` (host:port, `ray://...`, `auto`) or start one in this process
    (`local`). A loopback address keeps every connection on 127.0.0.1 (repoloop.indexer.raynode)."""
    ray = _ray()
    from repoloop.indexer.raynode import LOOPBACK, is_loopback, keep_loopback

    keep_loopback()
    _messages_to_stderr()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # Ray reads it itself: no usage report sent
    stats = ClusterStats(address=address)
    t = time.perf_counter()
    _reachable(address)
    # Ray puts the driver's working directory first on every worker's sys.path: run from a
    # repository with a package of the same name as one of ours (a checkout of repoloop itself),
    # workers would import that instead. From the directory our own package lives in, they import us.
    cwd = os.getcwd()
    os.chdir(Path(__file__).resolve().parents[2])
    try:
        if address == "local":
            ray.init(address="local", num_cpus=num_cpus, include_dashboard=False, _node_ip_address=LOOPBACK,
                     object_store_memory=256 << 20, logging_level="WARNING", log_to_driver=False,
                     configure_logging=False)
        else:
            host = address.split("://", 1)[-1].rsplit(":", 1)[0]
            ray.init(address=address, _node_ip_address=LOOPBACK if is_loopback(host) else None,
                     logging_level="WARNING", log_to_driver=False, configure_logging=False)
    except RepoloopError:
        raise
    except Exception as e:  # noqa: BLE001 - an unreachable cluster is the user's setup error
        raise RepoloopError(f"cannot join the Ray cluster at {address}: {_one_line(e)}") from e
    finally:
        os.chdir(cwd)
    stats.connect_s = time.perf_counter() - t
    res = ray.cluster_resources()
    stats.cpus, stats.gpus = float(res.get("CPU", 0)), float(res.get("GPU", 0))
    stats.nodes = sum(1 for n in ray.nodes() if n.get("Alive"))
    return ray, stats


def _reachable(address: str, deadline_s: float = 10.0) -> None:
    """Fail in seconds, with one line, when nothing listens at a HOST:PORT address (ray.init would
    retry for many minutes)."""
    import socket

    if address in ("local", "auto") or "://" in address or ":" not in address:
        return
    host, _, port = address.rpartition(":")
    try:
        port_n = int(port)
    except ValueError:
        raise RepoloopError(f"--cluster {address}: expected HOST:PORT, ray://HOST:PORT, auto or local") from None
    end = time.monotonic() + deadline_s
    while True:
        try:
            with socket.create_connection((host.strip("[]"), port_n), timeout=3):
                return
        except OSError as e:
            if time.monotonic() > end:
                raise RepoloopError(f"cannot join the Ray cluster at {address}: nothing answers there ({e})"
                                    " - start one (`ray start --head`) or name another") from None
            time.sleep(0.5)


def _messages_to_stderr() -> None:
    """Ray prints the cluster's notices ("Task ... failed, will be retried") on the driver's stdout;
    `repoloop index --json` owns stdout, so they go to stderr."""
    import ray._private.worker as ray_worker

    print_to = ray_worker.print_to_stdstream
    if getattr(print_to, "_repoloop", False):
        return

    def to_stderr(data: dict, ignore_prefix: bool) -> None:
        print_to({**data, "is_err": True}, ignore_prefix)

    to_stderr._repoloop = True  # type: ignore[attr-defined]
    ray_worker.print_to_stdstream = to_stderr


def _one_line(e: BaseException) -> str:
    cause = getattr(e, "cause", None)  # a RayTaskError: the worker's own exception says more
    if isinstance(cause, BaseException) and cause is not e:
        return _one_line(cause)
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0] if text else ''}"[:300]


# -- the worker side ------------------------------------------------------------------------------
@cache
def _worker_fingerprint() -> str:
    return parser_fingerprint()


def _warm() -> str:
    """A Ray task run once per node before the first batch: starts a worker process there and
    imports the parser (grammars, queries), so no node joins the run seconds late."""
    import ray

    _worker_fingerprint()
    return ray.get_runtime_context().get_node_id()


def _parse_batch(items: list[tuple[str, int, float, str, bytes]]) -> tuple[str, str, list[_Result]]:
    """A Ray task: parse files shipped with the batch; (node id, parser fingerprint, results)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    return node, _worker_fingerprint(), [parse_bytes(*it) for it in items]


class _EmbedActor:
    """One loaded model (a Ray actor): texts in, unit float32 vectors out. `settings`: the driver's
    `SentenceTransformerEmbedder` fields (model, length, backend, precision, threads, and the ONNX
    cache dir where the user named one; else each node's own default under its home)."""

    def __init__(self, settings: dict[str, Any], device: str) -> None:
        import ray

        from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder

        self.node = ray.get_runtime_context().get_node_id()
        self.device = device
        if device == "cuda":
            os.environ.setdefault("HF_HUB_OFFLINE", "1")  # read by the Hugging Face libraries: no downloads
            from sentence_transformers import SentenceTransformer

            path = SentenceTransformerEmbedder(**settings)._path()
            self.st = SentenceTransformer(path, device="cuda")
            if settings.get("max_tokens"):
                self.st.max_seq_length = settings["max_tokens"]
        else:
            self.st = None
            self.e = SentenceTransformerEmbedder(**settings)

    def ready(self) -> str:
        return self.node

    def embed(self, texts: list[str]) -> tuple[str, Any]:
        import numpy as np

        if self.st is not None:
            vecs = self.st.encode(texts, batch_size=256, normalize_embeddings=True, show_progress_bar=False,
                                  convert_to_numpy=True)
        else:
            vecs = self.e.embed(texts)
        return self.node, np.asarray(vecs, dtype=np.float32)


class RayEmbedder:
    """The `Embedder` protocol over a pool of `_EmbedActor`s, each running `base`'s model as `base`
    is set up (one ONNX thread each): `embed` splits its texts into calls of `sub` texts, spreads
    them over the actors, and re-sends a call whose actor died."""

    def __init__(self, ray: Any, base: Any, stats: ClusterStats, *, sub: int = EMBED_SUB, log: Any = None) -> None:
        self.ray, self.name, self.stats = ray, base.name, stats
        self.settings: dict[str, Any] = {"model": base.model, "max_tokens": base.max_tokens, "backend": base.backend,
                                         "precision": base.precision, "threads": 1, "cache_dir": base.cache_dir}
        self.log = log or (lambda **_: None)
        self.actors: list[Any] = []
        self._dim: int | None = None
        self.device = "cuda" if stats.gpus >= 1 else "cpu"
        self.sub = sub

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = len(self.embed(["dimension probe"])[0])
        return self._dim

    def pool_size(self) -> int:
        """One actor per CPU (per GPU) of the nodes alive now. The cluster's totals, not what is free
        this instant: the parse workers' leases are still being returned when the embedding starts."""
        key = "GPU" if self.device == "cuda" else "CPU"
        n = sum(int(node.get("Resources", {}).get(key, 0)) for node in self.ray.nodes() if node.get("Alive"))
        return max(1, n)

    def _start(self) -> None:
        ray = self.ray
        n = self.pool_size()
        opts: dict[str, Any] = {"num_cpus": 1, "max_restarts": 0, "scheduling_strategy": "SPREAD"}
        if self.device == "cuda":
            opts["num_gpus"] = 1
        cls = ray.remote(**opts)(_EmbedActor)
        actors = [cls.remote(self.settings, self.device) for _ in range(n)]
        refs = {a.ready.remote(): a for a in actors}
        # The first actor may take long (a model to load, a node busy); once one is up, the others
        # get a short grace: an actor with no room (CPUs taken by another job) is not waited for.
        ready, not_ready = ray.wait(list(refs), num_returns=1, timeout=_ACTOR_START_S)
        if ready and not_ready:
            more, not_ready = ray.wait(not_ready, num_returns=len(not_ready), timeout=_ACTOR_GRACE_S)
            ready += more
        alive = []
        for r in ready:
            try:
                ray.get(r)
                alive.append(refs[r])
            except Exception:  # noqa: BLE001 - an actor that died starting is left out
                self.stats.actors_lost += 1
        for r in not_ready:  # no room for it (a node went away meanwhile): give the slot back
            ray.kill(refs[r])
        if not alive:
            raise RepoloopError("cluster: no embedding actor could start; the chunks embedded so far are kept"
                                " (the next run embeds only the rest)")
        self.actors = alive
        self.stats.embed_actors += len(alive)
        self.stats.actor_device = self.device

    def embed(self, texts: list[str]) -> list[list[float]]:
        if not texts:
            return []
        ray = self.ray
        from ray.exceptions import RayActorError

        if not self.actors:
            self._start()
        subs = [texts[i : i + self.sub] for i in range(0, len(texts), self.sub)]
        out: list[Any] = [None] * len(subs)
        pending: dict[Any, tuple[int, Any]] = {}
        queue = list(range(len(subs)))
        turn = 0
        while queue or pending:
            while queue:
                if not self.actors:
                    if pending:
                        break  # let the calls in flight finish (or fail) first
                    self._start()
                i = queue.pop(0)
                a = self.actors[turn % len(self.actors)]
                turn += 1
                pending[a.embed.remote(subs[i])] = (i, a)
            if not pending:
                continue
            ready, _ = ray.wait(list(pending), num_returns=1)
            for ref in ready:
                i, a = pending.pop(ref)
                try:
                    node, arr = ray.get(ref)
                except RayActorError as e:
                    if a in self.actors:
                        self.actors.remove(a)
                        self.stats.actors_lost += 1
                        self.log(event="actor_lost")
                    if self.stats.actors_lost > 3 * self.stats.embed_actors + 3:  # they die whatever they are sent
                        raise RepoloopError(f"cluster: embedding actors keep dying ({self.stats.actors_lost} lost,"
                                            f" last: {_one_line(e)}); the chunks embedded so far are kept") from e
                    queue.append(i)
                    continue
                except Exception as e:  # noqa: BLE001 - a model error: one line, not a traceback
                    raise RepoloopError(f"cluster: embedding failed on a worker: {_one_line(e)}") from e
                out[i] = arr
                self.log(event="embedded", node=node, chunks=len(arr))
                self.stats.chunks_by_node[node] = self.stats.chunks_by_node.get(node, 0) + len(arr)
        vecs: list[list[float]] = []
        for arr in out:
            vecs.extend(arr.tolist())
        if vecs and self._dim is None:
            self._dim = len(vecs[0])
        return vecs

    def close(self) -> None:
        for a in self.actors:
            try:
                self.ray.kill(a)
            except Exception:  # noqa: BLE001, S110 - already gone
                pass
        self.actors = []


# -- the driver side ------------------------------------------------------------------------------
class _ClusterRun(_Run):
    """A `pipeline._Run` whose parse results come from Ray tasks and whose embedder is a Ray actor
    pool; walk, store, graph and the embedding bookkeeping are the local run's own code."""

    def __init__(self, *args: Any, ray: Any, stats: ClusterStats, cluster: ClusterConfig, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.ray, self.stats, self.cluster = ray, stats, cluster
        self.trace = cluster.trace
        # SPREAD: batches go round the nodes (the default packs the driver's node first, and a remote
        # node whose worker process is still starting would get nothing on a small repository).
        self._remote = ray.remote(max_retries=5, scheduling_strategy="SPREAD")(_parse_batch)
        self.batch_files = cluster.batch_files

    def _log(self, **event: Any) -> None:
        if self.trace:
            with open(self.trace, "a") as f:
                f.write(json.dumps({"t": time.time(), **event}) + "\n")

    def _warm_nodes(self) -> None:
        from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

        ray = self.ray
        warm = ray.remote(num_cpus=1)(_warm)
        refs = [warm.options(scheduling_strategy=NodeAffinitySchedulingStrategy(n["NodeID"], soft=True)).remote()
                for n in ray.nodes() if n.get("Alive") and n.get("Resources", {}).get("CPU", 0) >= 1]
        ray.wait(refs, num_returns=len(refs), timeout=120)  # a node that is slower joins later anyway

    def _results(self, tasks: list[_Task]) -> Iterator[_Result]:
        if tasks:
            self._warm_nodes()
        in_flight: dict[Any, int] = {}
        limit = max(2, 2 * int(self.stats.cpus or 1))
        batch: list[tuple[str, int, float, str, bytes]] = []
        size = 0
        for t in sorted(tasks, key=lambda t: -t.size):
            res, data = read_task(t)  # as a local worker reads it
            if data is None:  # vanished, a skip, or touched but not changed: nothing to ship
                yield res
                continue
            batch.append((t.path, t.size, t.mtime, res.hash, data))
            size += len(data)
            if len(batch) >= self.batch_files or size >= BATCH_BYTES:
                in_flight[self._remote.remote(batch)] = len(batch)
                self.stats.batches += 1
                self.stats.files_shipped += len(batch)
                self.stats.bytes_shipped += size
                batch, size = [], 0
                while len(in_flight) >= limit:
                    yield from self._collect(in_flight)
        if batch:
            in_flight[self._remote.remote(batch)] = len(batch)
            self.stats.batches += 1
            self.stats.files_shipped += len(batch)
            self.stats.bytes_shipped += size
        while in_flight:
            yield from self._collect(in_flight)

    def _collect(self, in_flight: dict[Any, int]) -> Iterator[_Result]:
        ray = self.ray
        ready, _ = ray.wait(list(in_flight), num_returns=1)
        ref = ready[0]
        n = in_flight.pop(ref)
        try:
            node, fingerprint, results = ray.get(ref)
        except Exception as e:  # noqa: BLE001 - out of retries: one line; what was stored stays
            for other in in_flight:
                try:
                    ray.cancel(other, force=True)
                except Exception:  # noqa: BLE001, S110 - finished or gone meanwhile
                    pass
            in_flight.clear()
            raise RepoloopError(f"cluster: a parse batch of {n} files failed after Ray's retries"
                                f" ({_one_line(e)}); the files stored so far are kept: run again to finish"
                                ) from e
        if fingerprint != self.fingerprint:
            raise RepoloopError(f"cluster: node {node[:12]} parses with another repoloop or grammar version"
                                f" (parser fingerprint {fingerprint[:10]} here {self.fingerprint[:10]});"
                                " install the same repoloop[cluster] on every node")
        self.stats.files_by_node[node] = self.stats.files_by_node.get(node, 0) + len(results)
        self._log(event="batch", node=node, files=len(results))
        yield from results

    def _flush(self, batch: list[FileWrite]) -> float:
        s = super()._flush(batch)
        if batch:
            self._log(event="stored", files=len(batch))
        return s

    def _embed(self) -> None:
        from repoloop.indexer.embed.embedders import SentenceTransformerEmbedder, embedder_from_config
        from repoloop.indexer.embed.phase import BATCH, embed_missing

        base = self.embedder or embedder_from_config(self.embed_config)
        if not isinstance(base, SentenceTransformerEmbedder):  # an HTTP endpoint: nothing to fan out
            self.report.embedded = embed_missing(self.store, self.idx, embedder=base, config=self.embed_config)
            return
        pool = RayEmbedder(self.ray, base, self.stats, sub=self.cluster.embed_sub, log=self._log)
        try:
            # Rounds big enough for two calls per actor at once: the driver's upserts overlap the encoding.
            rounds = max(BATCH, pool.sub) * 2 * pool.pool_size()
            self.report.embedded = embed_missing(self.store, self.idx, embedder=pool, batch=rounds,
                                                 progress=self.progress._p is not None, config=self.embed_config)
        finally:
            pool.close()


def index_repo_cluster(
    repo: Path,
    address: str,
    index_dir: Path | None = None,
    *,
    embed: bool = True,
    progress: bool = False,
    max_file_size: int = walk_mod.DEFAULT_MAX_FILE_SIZE,
    wait: bool = False,
    jobs: int | None = None,
    cluster: ClusterConfig | None = None,
    embed_config: EmbedConfig | None = None,
) -> tuple[IndexReport, ClusterStats]:
    """`index_repo` with parsing and embedding on the Ray cluster at `address` (or `local`: an
    in-process Ray over `jobs` CPUs), its work cut as `cluster` says and embedded as `embed_config`
    says (both read at the caller's edge). Returns the same report as a local run, and the cluster's."""
    repo = Path(repo).expanduser().resolve()
    if not repo.is_dir():
        raise RepoloopError(f"{repo}: not a directory")
    if max_file_size <= 0:
        raise RepoloopError(f"--max-file-size must be positive, not {max_file_size}")
    idx = index_dir_for(repo, index_dir).resolve()
    prepare_index_dir(idx)
    with IndexLock(idx, wait=wait):
        ray, stats = connect(address, num_cpus=jobs)
        try:
            store = IndexStore(idx / DB_NAME)
            try:
                run = _ClusterRun(repo, idx, store, max(1, int(stats.cpus)), max_file_size, progress, None,
                                  ray=ray, stats=stats, cluster=cluster or ClusterConfig(address=address),
                                  embed_config=embed_config)
                report = run.run(embed)
            finally:
                store.close()
        finally:
            ray.shutdown()
    stats.files_by_node = dict(Counter(stats.files_by_node))
    return report, stats
