"""An ONNX graph of a BERT sentence encoder (mean pooling), built from the model's own safetensors.

Why: bulk embedding (indexing, the re-rank's chunks) through sentence-transformers runs PyTorch
eagerly, pads every batch to its longest text and quantizes nothing; all-MiniLM-L6-v2 on this
CPU does ~3x the chunks per second through ONNX Runtime's BERT kernels with int8 weights
(benchmarks/RESULTS.md, "Embedding throughput"). Nothing is downloaded and torch is not needed:
the graph is written here with `onnx.helper` from the tensors bert_numpy reads (same architecture
checks: BERT, absolute positions, GELU, mean pooling), once per model and code version, and cached
(repoloop.indexer.embed.onnx_encoder). The graph uses ONNX Runtime's CPU contrib ops (Attention,
BiasGelu), so it is for ONNX Runtime only.

int8: every projection runs as DynamicQuantizeMatMul (int8 weights per output channel, activations
per tensor), except the few feed-forward channels whose GELU outputs are outliers (one channel per
layer reaches ~4x the others): quantized per tensor they would set the step for all 1,536, so the
`OUTLIER_CHANNELS` largest of each layer stay in fp32, in a small side projection added back.
They are found by running the numpy encoder once over seeded sequences of the model's own
vocabulary at build time (no data needed; RESULTS: cosine to fp32 >= 0.99 on every text sampled).
The residual + LayerNorm pairs stay separate ops and the session disables ONNX Runtime's
SkipLayerNormFusion: its fused kernel is ~5x slower than Add + LayerNormalization here.

Inputs `input_ids` and `attention_mask` (int64, [batch, seq]); output `pooled` ([batch, dim], the
masked mean of the last layer, not normalised). Token type ids are always 0 for one text: the
type-0 row is folded into the position embeddings.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np

from repoloop.indexer.embed.bert_numpy import NumpyBert

GRAPH_VERSION = "4"  # bump when the graph below changes: it is part of the cache key
OUTLIER_CHANNELS = 64  # feed-forward channels per layer kept in fp32 in the int8 graph
_CALIBRATION_TEXTS, _CALIBRATION_WORDS, _CALIBRATION_SEED = 32, 100, 0
_FP32 = "fp32_"  # name prefix of the nodes quantize_dynamic must leave alone
_MS = "com.microsoft"
DISABLED_OPTIMIZERS = ["SkipLayerNormFusion"]  # for the session: see the module docstring


def build(model_dir: str | Path, out: Path, *, int8: bool) -> None:
    """Write the encoder of `model_dir` to `out`, fp32 or int8. Raises bert_numpy.Unsupported for a
    model this does not implement."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    bert = NumpyBert.load(model_dir, None)  # the architecture checks and the weights
    w = bert.w
    d, heads = bert.dim, bert.heads
    inits: list = []
    nodes: list = []
    peaks = _ffn_peaks(bert, Path(model_dir)) if int8 else None
    f32 = np.float32

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, ins: list[str], out_name: str, domain: str = "", **attrs: object) -> str:
        nodes.append(helper.make_node(op, ins, [out_name], name=out_name, domain=domain, **attrs))
        return out_name

    def add_norm(x: str, bias: np.ndarray, skip: str, name: str, norm: str) -> str:
        """LayerNorm(x + bias + skip), the residual step after a projection."""
        biased = node("Add", [x, const(name + "_b", bias.astype(np.float32))], name + "_biased")
        summed = node("Add", [biased, skip], name + "_sum")
        return node("LayerNormalization", [summed, const(name + "_g", w[norm + ".weight"]),
                                           const(name + "_beta", w[norm + ".bias"])], name, axis=-1, epsilon=bert.eps)

    def ffn(x: str, p: str, a: str, keep: np.ndarray | None) -> str:
        """GELU(x Wi + bi) Wo without its bias; the `keep` channels (if any) in an fp32 side path."""
        wi, bi = w[p + "intermediate.dense.weight"], w[p + "intermediate.dense.bias"]
        wo = w[p + "output.dense.weight"]
        rest = np.arange(wi.shape[0]) if keep is None else np.setdiff1d(np.arange(wi.shape[0]), keep)
        inner = node("MatMul", [x, const(a + "i_w", wi[rest].T.astype(f32))], a + "inner")
        act = node("BiasGelu", [inner, const(a + "i_b", bi[rest])], a + "act", domain=_MS)
        down = node("MatMul", [act, const(a + "o2_w", wo[:, rest].T.astype(f32))], a + "down")
        if keep is None:
            return down
        inner_k = node("MatMul", [x, const(a + "ik_w", wi[keep].T.astype(f32))], a + _FP32 + "inner")
        act_k = node("BiasGelu", [inner_k, const(a + "ik_b", bi[keep])], a + "act_k", domain=_MS)
        down_k = node("MatMul", [act_k, const(a + "o2k_w", wo[:, keep].T.astype(f32))], a + _FP32 + "down")
        return node("Add", [down, down_k], a + "ffn")

    const("word", w["embeddings.word_embeddings.weight"].astype(f32))
    const("pos", (w["embeddings.position_embeddings.weight"] + w["embeddings.token_type_embeddings.weight"][0]).astype(f32))
    const("zero1", np.array([0], dtype=np.int64))
    const("one1", np.array([1], dtype=np.int64))
    const("axis1", np.array([1], dtype=np.int64))
    node("Shape", ["input_ids"], "shape")
    node("Gather", ["shape", "one1"], "seqlen", axis=0)
    node("Slice", ["pos", "zero1", "seqlen", "zero1"], "pos_s")
    node("Gather", ["word", "input_ids"], "tok_emb", axis=0)
    node("Add", ["tok_emb", "pos_s"], "emb")
    x = node("LayerNormalization", ["emb", const("ln0_g", w["embeddings.LayerNorm.weight"]),
                                    const("ln0_b", w["embeddings.LayerNorm.bias"])], "h0", axis=-1, epsilon=bert.eps)
    node("Cast", ["attention_mask"], "mask32", to=TensorProto.INT32)
    for i in range(bert.layers):
        p = f"encoder.layer.{i}."
        a = f"l{i}_"
        qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"].T for n in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
        att = node("Attention", [x, const(a + "qkv_w", qkv_w.astype(f32)), const(a + "qkv_b", qkv_b.astype(f32)),
                                 "mask32"], a + "att", domain=_MS, num_heads=heads)
        proj = node("MatMul", [att, const(a + "o_w", w[p + "attention.output.dense.weight"].T.astype(f32))], a + "proj")
        x1 = add_norm(proj, w[p + "attention.output.dense.bias"], x, a + "x1", p + "attention.output.LayerNorm")
        keep = None if peaks is None else np.sort(np.argsort(peaks[i])[::-1][:OUTLIER_CHANNELS])
        x = add_norm(ffn(x1, p, a, keep), w[p + "output.dense.bias"], x1, a + "x2", p + "output.LayerNorm")
    # masked mean over the sequence
    node("Cast", ["attention_mask"], "maskf", to=TensorProto.FLOAT)
    node("Unsqueeze", ["maskf", const("axis2", np.array([2], dtype=np.int64))], "mask3")
    node("Mul", [x, "mask3"], "masked")
    node("ReduceSum", ["masked", "axis1"], "summed", keepdims=0)
    node("ReduceSum", ["maskf", "axis1"], "count", keepdims=1)
    node("Max", ["count", const("tiny", np.array([1e-9], dtype=f32))], "count_c")
    node("Div", ["summed", "count_c"], "pooled")

    graph = helper.make_graph(
        nodes, "sentence_encoder",
        [helper.make_tensor_value_info("input_ids", TensorProto.INT64, ["batch", "seq"]),
         helper.make_tensor_value_info("attention_mask", TensorProto.INT64, ["batch", "seq"])],
        [helper.make_tensor_value_info("pooled", TensorProto.FLOAT, ["batch", d])],
        initializer=inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid(_MS, 1)],
                              producer_name="repoloop")
    model.ir_version = 8
    out.parent.mkdir(parents=True, exist_ok=True)
    if not int8:
        onnx.save(model, str(out))
        return
    from onnxruntime.quantization import QuantType, quantize_dynamic

    fp32 = out.with_name(out.name + ".fp32.tmp")
    onnx.save(model, str(fp32))
    try:
        quantize_dynamic(str(fp32), str(out), weight_type=QuantType.QInt8, per_channel=True,
                         op_types_to_quantize=["MatMul", "Attention"],
                         nodes_to_exclude=[n.name for n in model.graph.node if _FP32 in n.name],
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})
    finally:
        fp32.unlink(missing_ok=True)


def _ffn_peaks(bert: NumpyBert, model_dir: Path) -> np.ndarray:
    """Each feed-forward channel's largest GELU output over seeded code-like sequences of the
    model's own vocabulary (whole words, one in three a punctuation mark, some numbers): a fixed
    input that needs no data and finds the channels code drives to outliers (RESULTS: on 2,000 real
    chunks, cosine to fp32 min 0.9920 with 64 channels kept; plain word sequences found fewer
    of them, min 0.9901)."""
    vocab = json.loads((model_dir / "tokenizer.json").read_text(encoding="utf-8"))["model"]["vocab"]
    words = sorted(t for t in vocab if t.isascii() and t.isprintable() and not t.startswith(("[", "##")))
    marks = [t for t in words if len(t) == 1 and not t.isalnum()]
    rng = random.Random(_CALIBRATION_SEED)

    def token() -> str:
        r = rng.random()
        return rng.choice(marks) if r < 0.35 else str(rng.randrange(100)) if r < 0.45 else rng.choice(words)

    texts = [" ".join(token() for _ in range(_CALIBRATION_WORDS)) for _ in range(_CALIBRATION_TEXTS)]
    return np.max(np.stack([bert.ffn_peaks(texts[j:j + 16]) for j in range(0, len(texts), 16)]), 0)
