"""LLM architectures, from their published ``config.json``, and what serving them costs.

A :class:`ModelSpec` is a dense decoder-only transformer described as its Hugging Face config
describes it: layers, hidden size, attention and key-value heads (grouped-query attention when there
are fewer KV heads), head size, MLP width (gated SwiGLU or plain), vocabulary and context length.
Parameters, weight bytes, KV-cache bytes per token and FLOPs per token are derived from those fields,
so any model described the same way works (``ModelSpec(...)`` or a mapping of its fields). The
catalogue's sources are in :data:`MODEL_SOURCES`.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Literal, get_args

from gpu_alloc_env.errors import ConfigError, check_int, replace_checked, resolve_spec

Dtype = Literal["bf16", "fp8"]
DTYPES: tuple[str, ...] = get_args(Dtype)
BYTES_PER_ELEMENT: dict[str, float] = {"bf16": 2.0, "fp8": 1.0}
"""Bytes per weight or KV-cache element of each dtype."""


@dataclass(frozen=True)
class ModelSpec:
    """A dense decoder-only transformer, by its architecture."""

    name: str
    num_layers: int
    """``num_hidden_layers``."""
    hidden_size: int
    num_attention_heads: int
    num_kv_heads: int
    """``num_key_value_heads`` (equal to the attention heads without grouped-query attention)."""
    intermediate_size: int
    """MLP width (one branch of a gated MLP)."""
    vocab_size: int
    max_context_tokens: int
    """``max_position_embeddings``: the longest sequence the model accepts."""
    head_dim: int = 0
    """Size of one attention head; 0 means ``hidden_size // num_attention_heads``."""
    gated_mlp: bool = True
    """SwiGLU (gate, up and down projections) or a plain two-matrix MLP."""
    tied_embeddings: bool = False
    """Whether the output projection shares the input embedding's weights."""

    def __post_init__(self) -> None:
        owner = f"ModelSpec({self.name!r})"
        if not isinstance(self.name, str) or not self.name:
            raise ConfigError(f"ModelSpec.name must be a non-empty string, got {self.name!r}")
        for name in (
            "num_layers",
            "hidden_size",
            "num_attention_heads",
            "num_kv_heads",
            "intermediate_size",
            "vocab_size",
            "max_context_tokens",
        ):
            object.__setattr__(self, name, check_int(owner, name, getattr(self, name), minimum=1))
        object.__setattr__(self, "head_dim", check_int(owner, "head_dim", self.head_dim, minimum=0))
        if self.head_dim == 0:
            if self.hidden_size % self.num_attention_heads:
                raise ConfigError(
                    f"{owner}: hidden_size={self.hidden_size} is not a multiple of "
                    f"num_attention_heads={self.num_attention_heads}; give head_dim explicitly"
                )
            object.__setattr__(self, "head_dim", self.hidden_size // self.num_attention_heads)
        if self.num_attention_heads % self.num_kv_heads:
            raise ConfigError(
                f"{owner}: num_attention_heads={self.num_attention_heads} is not a multiple of "
                f"num_kv_heads={self.num_kv_heads}; grouped-query attention shares each KV head among "
                "a whole number of query heads"
            )
        for flag in ("gated_mlp", "tied_embeddings"):
            if not isinstance(getattr(self, flag), bool):
                raise ConfigError(f"{owner}.{flag} must be True or False, got {getattr(self, flag)!r}")

    # ------------------------------------------------------------------ derived sizes
    @property
    def layer_params(self) -> int:
        """Weights of one transformer layer (attention and MLP projections; norms neglected)."""
        attention = self.hidden_size * self.head_dim * (2 * self.num_attention_heads + 2 * self.num_kv_heads)
        mlp = (3 if self.gated_mlp else 2) * self.hidden_size * self.intermediate_size
        return attention + mlp

    @property
    def embedding_params(self) -> int:
        """Weights of the input embedding."""
        return self.vocab_size * self.hidden_size

    @property
    def params(self) -> int:
        """All weights: layers, embedding and (unless tied) the output projection."""
        head = 0 if self.tied_embeddings else self.embedding_params
        return self.num_layers * self.layer_params + self.embedding_params + head

    @property
    def matmul_params(self) -> int:
        """Weights that take part in a matrix product for every token: those of the layers."""
        return self.num_layers * self.layer_params

    def weight_bytes(self, dtype: str) -> float:
        """Bytes of all weights stored in ``dtype``."""
        return self.params * BYTES_PER_ELEMENT[dtype]

    def iteration_read_bytes(self, dtype: str) -> float:
        """Bytes of weights one engine iteration reads: the layers' and the output projection's.

        The input embedding is gathered only at the rows of the batch's tokens, a negligible read; a
        tied output projection is the embedding matrix, read in full to compute logits.
        """
        return (self.matmul_params + self.embedding_params) * BYTES_PER_ELEMENT[dtype]

    def kv_bytes_per_token(self, dtype: str) -> float:
        """KV-cache bytes of one token: keys and values of every layer and KV head."""
        return 2.0 * self.num_layers * self.num_kv_heads * self.head_dim * BYTES_PER_ELEMENT[dtype]

    def linear_flops_per_token(self) -> float:
        """FLOPs of the layers' matrix products for one token (two per weight)."""
        return 2.0 * self.matmul_params

    def head_flops_per_sample(self) -> float:
        """FLOPs of the output projection for one sampled token: the logits over the vocabulary.

        Engines compute logits only where they sample (the last position of each sequence in the
        batch), not for every prompt token.
        """
        return 2.0 * self.vocab_size * self.hidden_size

    def attention_flops_per_pair(self) -> float:
        """FLOPs of attention between one query token and one key token, over all layers and heads.

        Scores and the weighted sum of values: two multiply-adds per head dimension.
        """
        return 4.0 * self.num_layers * self.num_attention_heads * self.head_dim

    def check_tensor_parallel(self, degree: int) -> None:
        """Raise ``ConfigError`` unless the heads split evenly over ``degree`` GPUs."""
        if self.num_attention_heads % degree:
            choices = [d for d in (1, 2, 4, 8) if self.num_attention_heads % d == 0]
            raise ConfigError(
                f"model {self.name!r} has {self.num_attention_heads} attention heads, which "
                f"tensor_parallel={degree} does not divide; use one of {choices}"
            )
        if self.num_kv_heads % degree and degree % self.num_kv_heads:
            raise ConfigError(
                f"model {self.name!r} has {self.num_kv_heads} KV heads: tensor_parallel={degree} must "
                "divide them, or be a multiple of them (each GPU then holds a copy of one KV head)"
            )

    def kv_heads_per_gpu(self, degree: int) -> int:
        """KV heads each of ``degree`` GPUs holds (replicated when there are fewer heads than GPUs)."""
        return max(self.num_kv_heads // degree, 1)

    def replace(self, **overrides: Any) -> ModelSpec:
        """A copy with some fields changed (validated; unknown fields are an error).

        When this model's head size is the derived one (``hidden_size // num_attention_heads``), a
        change of either without a ``head_dim`` derives it again; an explicit head size is kept.
        """
        changed = dict(overrides)
        derived = self.head_dim * self.num_attention_heads == self.hidden_size
        reshaped = any(
            name in changed and changed[name] != getattr(self, name)
            for name in ("hidden_size", "num_attention_heads")
        )
        if "head_dim" not in changed and derived and reshaped:
            changed["head_dim"] = 0
        return replace_checked(self, changed)

    def to_dict(self) -> dict[str, Any]:
        """Plain-data form."""
        return dataclasses.asdict(self)


MODELS: dict[str, ModelSpec] = {
    spec.name: spec
    for spec in (
        ModelSpec("llama-3.1-8b", 32, 4096, 32, 8, 14336, 128256, 131072),
        ModelSpec("qwen2.5-14b", 48, 5120, 40, 8, 13824, 152064, 32768),
        ModelSpec("qwen2.5-32b", 64, 5120, 40, 8, 27648, 152064, 32768),
        ModelSpec("llama-3.3-70b", 80, 8192, 64, 8, 28672, 128256, 131072),
        ModelSpec("llama-2-7b", 32, 4096, 32, 32, 11008, 32000, 4096),
        ModelSpec("llama-2-70b", 80, 8192, 64, 8, 28672, 32000, 4096),
        ModelSpec("mistral-7b", 32, 4096, 32, 8, 14336, 32000, 32768),
        ModelSpec("mistral-nemo-12b", 40, 5120, 32, 8, 14336, 131072, 131072, head_dim=128),
        ModelSpec("qwen-72b", 80, 8192, 64, 64, 24576, 151936, 32768),
        ModelSpec(
            "bloom-176b", 70, 14336, 112, 112, 57344, 250880, 2048, gated_mlp=False, tied_embeddings=True
        ),
    )
}
"""The catalogue of models, by name."""

MODEL_SOURCES: dict[str, str] = {
    "llama-3.1-8b": "meta-llama/Llama-3.1-8B-Instruct, config.json",
    "qwen2.5-14b": "Qwen/Qwen2.5-14B-Instruct, config.json",
    "qwen2.5-32b": "Qwen/Qwen2.5-32B-Instruct, config.json",
    "llama-3.3-70b": "meta-llama/Llama-3.3-70B-Instruct, config.json",
    "llama-2-7b": "meta-llama/Llama-2-7b-hf, config.json (also the shape columns of Vidur's profile)",
    "llama-2-70b": "meta-llama/Llama-2-70b-hf, config.json (the model of the splitwise-sim profile)",
    "mistral-7b": "mistralai/Mistral-7B-v0.1, config.json",
    "mistral-nemo-12b": "mistralai/Mistral-Nemo-Instruct-2407, config.json (head_dim 128)",
    "qwen-72b": "Qwen/Qwen-72B, config.json (MLP width 24,576 per branch; also Vidur's profile)",
    "bloom-176b": "bigscience/bloom, config.json (GELU MLP of 4 x hidden, tied embeddings)",
}
"""Where each catalogue model's architecture comes from."""


def resolve_model(model: str | ModelSpec | Any) -> ModelSpec:
    """A catalogue name, a :class:`ModelSpec` or a mapping of its fields, as a :class:`ModelSpec`."""
    hint = (
        ": name, num_layers, hidden_size, num_attention_heads, num_kv_heads, intermediate_size, "
        "vocab_size, max_context_tokens"
    )
    return resolve_spec(model, MODELS, ModelSpec, "model", "model", hint)
