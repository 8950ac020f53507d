"""Exact token accounting on padded batches with early EOS, against counts known by construction."""

from __future__ import annotations

import random

import pytest

from llenergymeasure.harness.tokens import count_input_tokens, count_output_tokens, count_output_tokens_batch

EOS, PAD, OTHER_EOS = 2, 0, 3


def build_batch(
    rows: list[tuple[int, int, bool]], pad: int, eos: int, seed: int = 0, junk_after_eos: bool = True
) -> tuple[list[list[int]], list[list[int]], list[list[int]]]:
    """A left-padded prompt batch and its generated continuations, from (prompt_len, tokens_before_eos, eos?).

    Prompt tokens are drawn from ids that include `eos` and `pad` themselves (a prompt may contain them: only
    the mask says what is padding). Generated rows are right-filled to a common length, with pad tokens or
    junk after EOS (what batched generate leaves there). As in a real batched generate, a row without EOS
    runs to the common length (GEN_WIDTH).
    """
    rng = random.Random(seed)
    width = max(r[0] for r in rows)
    gen_width = GEN_WIDTH
    prompts, masks, generated = [], [], []
    for prompt_len, before_eos, has_eos in rows:
        body = [rng.choice([pad, eos, *range(10, 60)]) for _ in range(prompt_len)]
        prompts.append([pad] * (width - prompt_len) + body)
        masks.append([0] * (width - prompt_len) + [1] * prompt_len)
        gen = [rng.randrange(10, 60) for _ in range(before_eos)] + ([eos] if has_eos else [])
        while len(gen) < gen_width:
            gen.append(rng.choice([pad, eos, rng.randrange(10, 60)]) if junk_after_eos else pad)
        generated.append(gen)
    return prompts, masks, generated


GEN_WIDTH = 14
ROWS = [(5, 3, True), (12, 0, True), (1, GEN_WIDTH, False), (9, 11, True), (3, GEN_WIDTH, False)]


@pytest.mark.parametrize(("pad", "eos"), [(PAD, EOS), (EOS, EOS)], ids=["pad!=eos", "pad==eos"])
def test_padded_batch_with_early_eos(pad: int, eos: int) -> None:
    _, masks, generated = build_batch(ROWS, pad=pad, eos=eos)
    assert count_input_tokens(masks) == [5, 12, 1, 9, 3]
    # up to and including the first EOS; rows without EOS: everything generated
    assert count_output_tokens_batch(generated, {eos}, pad) == [4, 1, 14, 12, 14]


def test_nothing_after_the_first_eos_counts_even_if_it_is_more_text() -> None:
    assert count_output_tokens([11, 12, EOS, 13, 14, EOS, 15], {EOS}, PAD) == 3


def test_any_of_several_eos_ids_ends_the_sequence() -> None:
    assert count_output_tokens([11, OTHER_EOS, 12, EOS], {EOS, OTHER_EOS}, PAD) == 2


def test_generated_pad_tokens_before_eos_are_not_trailing_padding() -> None:
    # a model may emit the pad id as a real token; only a trailing run without EOS is padding
    assert count_output_tokens([11, PAD, 12, EOS, PAD, PAD], {EOS}, PAD) == 4
    assert count_output_tokens([11, PAD, 12, PAD, PAD], {EOS}, PAD) == 3


def test_edge_cases() -> None:
    assert count_output_tokens([], {EOS}, PAD) == 0
    assert count_output_tokens([EOS], {EOS}, PAD) == 1
    assert count_output_tokens([PAD, PAD], {EOS}, PAD) == 0
    assert count_output_tokens([11, 12], {EOS}, None) == 2
    assert count_input_tokens([[0, 0, 0], [1, 1, 1]]) == [0, 3]
