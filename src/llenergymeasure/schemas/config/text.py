"""Checks on user-supplied text that becomes a path or a directory name (model, dataset, study name).

Such text reaches the file system on the host, in a container and in directory names, where a NUL
byte, a lone surrogate (text that is not valid Unicode, e.g. an undecodable command-line byte) or an
over-long name raises deep inside the standard library. They are refused when the config is
validated, with the field named.
"""

from __future__ import annotations

import unicodedata

#: longest path accepted (bytes, UTF-8), Linux's PATH_MAX
MAX_PATH_BYTES = 4096
#: longest single path component accepted (bytes, UTF-8), Linux's NAME_MAX
MAX_COMPONENT_BYTES = 255
#: longest study name (characters): it becomes part of a directory name
MAX_NAME_CHARS = 100


def text_problem(value: str) -> str | None:
    """Why `value` cannot be used as a name or path (NUL, lone surrogate, control character), else None."""
    if value.isprintable():  # the common case, checked in C: no control character, no surrogate
        return None
    if "\x00" in value:
        return "contains a NUL byte"
    for ch in value:
        category = unicodedata.category(ch)
        if category == "Cs":
            return f"contains U+{ord(ch):04X}, a lone surrogate (not valid Unicode text)"
        if category == "Cc":
            return f"contains the control character U+{ord(ch):04X}"
    return None


def path_problem(value: str) -> str | None:
    """Why `value` cannot be a file-system path or hub id, else None."""
    problem = text_problem(value)
    if problem is not None:
        return problem
    if len(value) * 4 <= MAX_COMPONENT_BYTES:  # no UTF-8 character takes more than 4 bytes
        return None
    if len(value.encode()) > MAX_PATH_BYTES:
        return f"is longer than {MAX_PATH_BYTES} bytes"
    if any(len(part.encode()) > MAX_COMPONENT_BYTES for part in value.split("/")):
        return f"has a part (between '/') longer than {MAX_COMPONENT_BYTES} bytes"
    return None


def check_path(value: str, what: str) -> str:
    """`value` unchanged, or ValueError with the problem and the fix (for pydantic validators)."""
    problem = path_problem(value)
    if problem is not None:
        raise ValueError(f"{what} {problem}; fix: write a plain path or hub id")
    return value
