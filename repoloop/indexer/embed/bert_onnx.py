"""An ONNX graph of a BERT sentence encoder (mean pooling), built from the model's own safetensors.

Why: bulk embedding (indexing, the re-rank's chunks) through sentence-transformers runs PyTorch
eagerly, pads every batch to its longest text and quantizes nothing; all-MiniLM-L6-v2 on this
CPU does ~3x the chunks per CPU-second through ONNX Runtime's fused BERT kernels with int8 weights
(benchmarks/RESULTS.md, "Embedding throughput"). Nothing is downloaded and torch is not needed:
the graph is written here with `onnx.helper` from the tensors bert_numpy reads (same architecture
checks: BERT, absolute positions, GELU, mean pooling), once per model and code version, and cached
(repoloop.indexer.onnx_cache). The graph uses ONNX Runtime's CPU contrib ops (Attention,
SkipLayerNormalization, BiasGelu), so it is for ONNX Runtime only.

Inputs `input_ids` and `attention_mask` (int64, [batch, seq]); output `pooled` ([batch, dim], the
masked mean of the last layer, not normalised). Token type ids are always 0 for one text: the
type-0 row is folded into the position embeddings.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from repoloop.indexer.embed.bert_numpy import NumpyBert

GRAPH_VERSION = "2"  # bump when the graph below changes: it is part of the cache key
# MatMulNBits block: weights and activations quantized per 128 values (RESULTS: cosine to fp32 on 400
# vue chunks min 0.9927 / mean 0.9967 at 128, 0.9887 / 0.9967 at 32, and 128 is faster)
_BLOCK = 128
_MS = "com.microsoft"


def build(model_dir: str | Path, out: Path, *, int8: bool, block: int | None = None) -> None:
    """Write the encoder of `model_dir` to `out`: fp32, or int8 (weights per output channel,
    activations quantized per batch; the down projection per block of 128, where per-tensor scales
    measured cosine 0.90 against fp32 instead of > 0.99). Raises bert_numpy.Unsupported for a model this does not implement."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    bert = NumpyBert.load(model_dir, None)  # the architecture checks and the weights
    w = bert.w
    d, heads = bert.dim, bert.heads
    inits: list = []
    nodes: list = []

    def const(name: str, arr: np.ndarray) -> str:
        inits.append(numpy_helper.from_array(np.ascontiguousarray(arr), name))
        return name

    def node(op: str, ins: list[str], out_name: str, domain: str = "", **attrs: object) -> str:
        nodes.append(helper.make_node(op, ins, [out_name], name=out_name, domain=domain, **attrs))
        return out_name

    f32 = np.float32
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
    inner_dim = int(w["encoder.layer.0.intermediate.dense.weight"].shape[0])
    block = block or _BLOCK
    for i in range(bert.layers):
        p = f"encoder.layer.{i}."
        a = f"l{i}_"
        qkv_w = np.concatenate([w[p + f"attention.self.{n}.weight"].T for n in ("query", "key", "value")], axis=1)
        qkv_b = np.concatenate([w[p + f"attention.self.{n}.bias"] for n in ("query", "key", "value")])
        att = node("Attention", [x, const(a + "qkv_w", qkv_w.astype(f32)), const(a + "qkv_b", qkv_b.astype(f32)),
                                 "mask32"], a + "att", domain=_MS, num_heads=heads)
        proj = node("MatMul", [att, const(a + "o_w", w[p + "attention.output.dense.weight"].T.astype(f32))], a + "proj")
        x1 = node("SkipLayerNormalization", [proj, x, const(a + "ln1_g", w[p + "attention.output.LayerNorm.weight"]),
                                             const(a + "ln1_b", w[p + "attention.output.LayerNorm.bias"]),
                                             const(a + "o_b", w[p + "attention.output.dense.bias"])],
                  a + "x1", domain=_MS, epsilon=bert.eps)
        inner = node("MatMul", [x1, const(a + "i_w", w[p + "intermediate.dense.weight"].T.astype(f32))], a + "inner")
        act = node("BiasGelu", [inner, const(a + "i_b", w[p + "intermediate.dense.bias"])], a + "act", domain=_MS)
        if int8 and inner_dim % block == 0:  # the down projection reads GELU outputs: per-tensor activation scales lose too much there
            down = node("MatMulNBits", [act, *_int8_blocks(const, a + "out_w", w[p + "output.dense.weight"], block)],
                        a + "out", domain=_MS, K=inner_dim, N=d, bits=8, block_size=block, accuracy_level=4)
        else:
            down = node("MatMul", [act, const(a + "out_w", w[p + "output.dense.weight"].T.astype(f32))], a + "out")
        x = node("SkipLayerNormalization", [down, x1, const(a + "ln2_g", w[p + "output.LayerNorm.weight"]),
                                            const(a + "ln2_b", w[p + "output.LayerNorm.bias"]),
                                            const(a + "out_b", w[p + "output.dense.bias"])],
                 a + "x2", domain=_MS, epsilon=bert.eps)
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
                         extra_options={"DefaultTensorType": TensorProto.FLOAT})
    finally:
        fp32.unlink(missing_ok=True)


def _int8_blocks(const, name: str, weight: np.ndarray, block: int) -> list[str]:  # noqa: ANN001 - build's closure
    """MatMulNBits inputs for an (out, in) weight: symmetric int8 per block of _BLOCK inputs, stored
    with the default zero point 128, and the blocks' scales."""
    n, k = weight.shape
    blocks = weight.astype(np.float32).reshape(n, k // block, block)
    scale = np.abs(blocks).max(-1) / 127.0
    scale[scale == 0] = 1.0
    q = (np.clip(np.round(blocks / scale[..., None]), -127, 127) + 128).astype(np.uint8)
    return [const(name + "_q", q), const(name + "_s", scale.astype(np.float32).reshape(-1))]
