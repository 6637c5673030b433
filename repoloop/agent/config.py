"""What one agent run is told: a `RunConfig` made of one frozen config per part it drives.

The CLI builds these once, from its flags and the user's environment variables (REPOLOOP_MODEL,
REPOLOOP_PRICES, REPOLOOP_SANDBOX_IMAGE, OPENAI_*, and retrieval's REPOLOOP_DENSE_STORE and
REPOLOOP_TOKENIZER); nothing below the CLI reads the environment for them. Frozen, so that a run cannot change what it was asked to do: what it decides on the way (the
sandbox kind that auto-selection found, say) lives on the `Agent`, not here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from repoloop.agent.llm import LLMConfig

if TYPE_CHECKING:
    from repoloop.retrieval.api import RetrievalOptions


@dataclass(frozen=True)
class ModelConfig:
    """The endpoint, the model, and how tool calls travel (`tool_mode`, repoloop.agent.protocol)."""

    name: str
    plan_model: str | None = None  # the model that writes the plan (default: `name`)
    base_url: str | None = None
    api_key: str | None = None
    stream: bool = False
    timeout: float = 120.0  # seconds per model request attempt, as a whole (connect to last byte)
    retries: int = 4
    backoff: float = 1.0
    prices: str | None = None  # a price table: JSON text or a path to it (repoloop.agent.llm.PriceTable)
    tool_mode: str = "auto"  # native | text | auto
    max_output_tokens: int | None = None  # per reply, sent as max_tokens when set
    context_limit: int = 128_000  # the model's window, tokens: compaction keeps the conversation under it

    def client(self) -> LLMConfig:
        """The part the HTTP client needs."""
        return LLMConfig(model=self.name, base_url=self.base_url, api_key=self.api_key, timeout=self.timeout,
                         max_retries=self.retries, backoff=self.backoff, stream=self.stream,
                         max_output_tokens=self.max_output_tokens)


@dataclass(frozen=True)
class RetrievalConfig:
    """Which index the run reads and how much of it the model is shown."""

    index_dir: Path | None = None
    lexical_only: bool = False
    # Dense re-rank of retrieved files where the index has no vectors (repoloop.retrieval.rerank): the
    # top candidates' chunks are embedded at query time, seconds once per new file on a CPU (an agent
    # step waits longer for its model), for +13.6 file Acc@1 on SWE-bench dev (RESULTS.md).
    rerank: bool = True
    # How the retriever ranks (dense store, tokenizer), read by the CLI from the user's environment;
    # None: the defaults. `lexical_only` and `rerank` above are set on it.
    options: RetrievalOptions | None = None
    context_budget: int = 6_000  # tokens of retrieved code given with the task
    failure_budget: int = 2_000  # tokens of retrieved code after each failed verification
    map_budget: int = 1_024


@dataclass(frozen=True)
class SandboxConfig:
    """Where commands run and for how long."""

    kind: str | None = None  # bwrap | docker | local; None: docker if an engine answers, else bwrap
    image: str | None = None  # docker: the image commands run in (None: the backend's default)
    command_timeout: float = 120.0  # seconds, a run_command call
    verify_timeout: float = 900.0  # seconds, one run of the test command


@dataclass(frozen=True)
class BudgetConfig:
    """When the run stops without finishing: its budgets, and how much repetition it tolerates."""

    max_steps: int = 30
    max_tokens: int | None = None  # total tokens (prompt + completion) over the run
    max_cost: float | None = None  # USD
    repeat_limit: int = 3  # identical failing tool calls (or empty or identical replies) before giving up
    stall_limit: int = 5  # the same action (or no usable action) this many replies in a row: give up


@dataclass(frozen=True)
class RunConfig:
    """One run: the task, the repository, and one config per part."""

    task: str
    repo: Path
    model: ModelConfig
    retrieval: RetrievalConfig = field(default_factory=RetrievalConfig)
    sandbox: SandboxConfig = field(default_factory=SandboxConfig)
    budget: BudgetConfig = field(default_factory=BudgetConfig)
    test_cmd: str | None = None  # None: detected from the repository (repoloop.agent.verify)
    approve_plan: bool = False  # a person approves, rejects or edits the plan (Reporter.approve_plan)
    apply: bool = False  # a verified diff is also applied to the user's working tree
