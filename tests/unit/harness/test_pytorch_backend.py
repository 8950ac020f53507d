"""The PyTorch backend on the tiny random Llama (CPU): loading, pre-tokenisation, exact counts in real batches."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from fixtures.tiny_model import TINY_NON_EMBEDDING_PARAMS
from llenergymeasure.harness.backends import create_backend
from llenergymeasure.harness.backends.base import Prompt
from llenergymeasure.harness.backends.pytorch import PyTorchBackend
from llenergymeasure.harness.params import ParameterCounts, counts_from_model_dir
from llenergymeasure.schemas.config.experiment import ExperimentConfig

TEXTS = [
    "The energy efficiency of language model inference",
    "Warmup runs",
    "A power timeline records instantaneous power, temperature and clocks every hundred milliseconds, on every GPU.",
    "Du Fu",
    "Throughput is the number of output tokens divided by the duration of the measured window.",
    "Numbers like 0 1 2 3",
    "Write a short story about a lighthouse keeper",
    "idle",
]


@pytest.fixture(scope="module")
def backend(tiny_model_dir: Path) -> PyTorchBackend:
    cfg = ExperimentConfig(model=str(tiny_model_dir), precision="bf16", pytorch={"batch_size": 4})
    b = create_backend(cfg, [])
    assert isinstance(b, PyTorchBackend)
    b.load()
    return b


def test_loads_on_cpu_in_fp32_and_says_so(backend: PyTorchBackend) -> None:
    assert backend.device == "cpu"
    assert backend.effective_precision == "fp32"
    assert backend.model.dtype == torch.float32
    assert any("fp32" in n and "bf16" in n for n in backend.reproducibility_notes())
    assert backend.tokenizer.padding_side == "left"
    mem = backend.memory_stats()
    assert mem is not None
    assert (mem.device, mem.peak_allocated_mb) == ("cpu", None)
    assert {"torch", "transformers"} <= set(backend.versions())


def test_parameter_counts_match_the_hand_count_and_include_the_output_projection(
    backend: PyTorchBackend, tiny_model_dir: Path
) -> None:
    counts = backend.parameter_counts()
    assert counts is not None
    vocab = backend.model.config.vocab_size
    assert (counts.body, counts.output_projection) == (TINY_NON_EMBEDDING_PARAMS, vocab * 64)  # lm_head: vocab × 64
    # the same numbers from config.json alone (what vLLM and TensorRT-LLM runs use)
    assert counts_from_model_dir(tiny_model_dir) == ParameterCounts(
        TINY_NON_EMBEDDING_PARAMS, vocab * 64, "config.json"
    )


def test_prepare_tokenises_and_cuts_to_the_exact_cap(backend: PyTorchBackend) -> None:
    long_text = " ".join(["energy"] * 200)
    (p,) = backend.prepare([Prompt(long_text, 8, max_input_tokens=17)])
    assert p.token_ids is not None
    assert len(p.token_ids) == 17
    assert p.token_ids[0] == backend.tokenizer.bos_token_id  # special tokens count as input
    assert backend.count_tokens(backend.truncate(long_text, 10)) == 10


def test_batched_generate_counts_exactly_with_early_eos(backend: PyTorchBackend) -> None:
    model, tok = backend.model, backend.tokenizer
    prompts = backend.prepare([Prompt(t, max_new_tokens=12, max_input_tokens=24) for t in TEXTS])
    lengths = [len(p.token_ids or ()) for p in prompts]
    assert len(set(lengths[:4])) > 1  # the first batch really is padded

    # make an early EOS happen: declare the 3rd token greedy decoding produces for prompt 0 an EOS too
    first = backend.generate(prompts[:1])
    assert first.outputs[0].output_tokens == 12
    with torch.inference_mode():
        ids = torch.tensor([list(prompts[0].token_ids or ())])
        greedy = model.generate(input_ids=ids, max_new_tokens=3, do_sample=False, pad_token_id=tok.pad_token_id)
    stop_token = int(greedy[0, -1])
    original_eos = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = [tok.eos_token_id, stop_token]
    try:
        batch = backend.generate(prompts)
        # independent count: pad the same ids ourselves, call generate, cut each row at its first EOS position
        expected_out: list[int] = []
        for start in (0, 4):
            rows = [list(p.token_ids or ()) for p in prompts[start : start + 4]]
            padded = tok.pad({"input_ids": rows}, padding=True, return_tensors="pt")
            with torch.inference_mode():
                seqs = model.generate(**padded, max_new_tokens=12, do_sample=False, pad_token_id=tok.pad_token_id)
            for row in seqs[:, padded["input_ids"].shape[1] :]:
                hits = torch.isin(row, torch.tensor([tok.eos_token_id, stop_token])).nonzero()
                expected_out.append(int(hits[0, 0]) + 1 if len(hits) else row.shape[0])
    finally:
        model.generation_config.eos_token_id = original_eos

    assert [o.input_tokens for o in batch.outputs] == lengths
    assert [o.output_tokens for o in batch.outputs] == expected_out
    assert expected_out[0] <= 3  # the early EOS really happened (the stop token may occur before position 3)
    assert max(expected_out[:4]) > expected_out[0]  # ... and that row was padded while others went on
    assert batch.granularity == "batch"
    assert all(o.latency_s > 0 for o in batch.outputs)


def test_synthetic_lengths_are_exact(backend: PyTorchBackend) -> None:
    prompts = backend.prepare([Prompt(" ".join(["watt"] * 80), 6, min_new_tokens=6, max_input_tokens=32)] * 4)
    out = backend.generate(prompts)
    assert [(o.input_tokens, o.output_tokens) for o in out.outputs] == [(32, 6)] * 4


def test_generation_kwargs_follow_the_decoder(tiny_model_dir: Path) -> None:
    cfg = ExperimentConfig(
        model=str(tiny_model_dir),
        decoder={
            "do_sample": True,
            "temperature": 0.7,
            "top_k": 20,
            "top_p": 0.9,
            "min_p": 0.05,
            "repetition_penalty": 1.1,
        },
    )
    b = PyTorchBackend(cfg, None, [])
    b._pad_id = 0
    kwargs = b.generation_kwargs(Prompt("x", 16, min_new_tokens=4))
    assert kwargs == {
        "max_new_tokens": 16,
        "min_new_tokens": 4,
        "pad_token_id": 0,
        "do_sample": True,
        "temperature": 0.7,
        "top_k": 20,
        "top_p": 0.9,
        "min_p": 0.05,
        "repetition_penalty": 1.1,
    }
    greedy = PyTorchBackend(ExperimentConfig(model=str(tiny_model_dir)), None, [])
    assert "temperature" not in greedy.generation_kwargs(Prompt("x", 16))


def test_preflight_lists_missing_optional_packages(tiny_model_dir: Path) -> None:
    cfg = ExperimentConfig(model=str(tiny_model_dir), pytorch={"load_in_4bit": True}, lora={"adapter": "a/b"})
    failures = PyTorchBackend(cfg, cfg.pytorch, []).preflight()
    messages = " | ".join(f.message for f in failures)
    assert "needs a GPU" in messages
    assert "peft" in messages  # not installed here


class _StopConfig:
    eos_token_id = 6  # the generation config stops on 6 only


class _ScriptedModel:
    """A causal LM stand-in whose ``generate`` appends fixed continuations (padding rows that stopped with 0)."""

    device = "cpu"
    generation_config = _StopConfig()

    def __init__(self, continuations: list[list[int]]) -> None:
        self.continuations = continuations

    def generate(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, **kwargs: object) -> torch.Tensor:
        return torch.cat([input_ids, torch.tensor(self.continuations)], dim=1)


class _Tokenizer:
    eos_token_id = 5  # the tokenizer's EOS differs from the generation config's


def test_output_tokens_count_up_to_the_generation_configs_stop_not_the_tokenizers_eos() -> None:
    cfg = ExperimentConfig(model="m", pytorch={"batch_size": 2})
    backend = PyTorchBackend(cfg, cfg.pytorch, [])
    backend._torch = torch
    # row 1: 7, tokenizer-EOS 5 (generate goes on), 8, stop 6, then padding → 4 tokens generated and paid for
    # row 2: never hits 6, runs to the batch's full width of 5 tokens (10 and 0 are real tokens here, not padding)
    backend.model = _ScriptedModel([[7, 5, 8, 6, 0], [7, 8, 9, 10, 0]])
    backend.tokenizer = _Tokenizer()
    prompts = [Prompt("a", 5, token_ids=(1, 20)), Prompt("b", 5, token_ids=(1, 21, 22))]
    batch = backend.generate(prompts)
    assert [o.output_tokens for o in batch.outputs] == [4, 5]
    assert [o.input_tokens for o in batch.outputs] == [2, 3]
    assert backend.stop_token_ids() == frozenset({6})


def test_a_passthrough_dtype_is_what_effective_precision_reports(tiny_model_dir: Path) -> None:
    cfg = ExperimentConfig(model=str(tiny_model_dir), precision="fp32", passthrough_kwargs={"dtype": "bfloat16"})
    b = create_backend(cfg, [])
    b.load()
    assert b.model.dtype == torch.bfloat16  # type: ignore[attr-defined]
    assert b.effective_precision == "bf16"
    assert any("loaded in bf16" in n for n in b.reproducibility_notes())
