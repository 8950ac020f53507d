"""Exact token accounting over token-id lists: pure functions, no framework.

Rules (the ones every backend's numbers must follow):

- **input tokens** of a prompt = its non-padding positions (the attention mask's
  ones), special tokens such as BOS included: that is what the model processed.
  The attention mask, not the pad id, is the truth: many tokenizers use EOS as
  the pad token, and a prompt may legitimately contain it.
- **output tokens** of a sequence = generated tokens up to and including the
  first *stop* id — exactly the ids the backend stops on, no more: a token the
  tokenizer calls EOS but the generation config does not is generated, timed
  and paid for, so it counts, and so does everything after it. Padding that a
  batched ``generate`` appends after a sequence has stopped is not counted.
  A row without a stop id ran to the batch's full width and counts whole
  (pass `pad_token_id` only for a backend that pads rows which stopped for
  another reason; trailing pad tokens are then stripped).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any


def count_input_tokens(attention_mask: Sequence[Sequence[int]]) -> list[int]:
    """Non-padding prompt tokens per row of a (left- or right-) padded batch."""
    return [sum(1 for m in row if m) for row in attention_mask]


def count_output_tokens(
    token_ids: Sequence[int], stop_token_ids: Collection[int], pad_token_id: int | None = None
) -> int:
    """Generated tokens of one sequence (prompt excluded), counted up to and including the first stop id."""
    for position, token in enumerate(token_ids):
        if token in stop_token_ids:
            return position + 1
    end = len(token_ids)
    if pad_token_id is not None:
        while end > 0 and token_ids[end - 1] == pad_token_id:
            end -= 1
    return end


def count_output_tokens_batch(
    generated: Sequence[Sequence[int]], stop_token_ids: Collection[int], pad_token_id: int | None = None
) -> list[int]:
    """`count_output_tokens` for every row of a batch of generated continuations."""
    return [count_output_tokens(row, stop_token_ids, pad_token_id) for row in generated]


def count_text_tokens(tokenizer: Any, text: str) -> int:
    """Tokens of `text` under a Hugging Face-style tokenizer (``encode``), special tokens excluded."""
    return len(tokenizer.encode(text, add_special_tokens=False))


def truncate_text(tokenizer: Any, text: str, max_tokens: int) -> str:
    """`text` cut to at most `max_tokens` tokens (unchanged when it already fits)."""
    ids = tokenizer.encode(text, add_special_tokens=False)
    return text if len(ids) <= max_tokens else str(tokenizer.decode(ids[:max_tokens]))
