"""Read a YAML config file within fixed limits, so that no input can hang, crash or exhaust the host.

The limits (documented in the user guide):

- the path must name a regular file (a FIFO, device, socket or directory is refused before it is
  opened for reading: a FIFO would block and ``/dev/zero`` never ends), at most `MAX_CONFIG_BYTES`;
  the read itself is bounded, so a file that grows, or a ``/proc`` file that reports size 0, cannot
  be read past the cap;
- nesting at most `MAX_DEPTH` levels, checked while the parser builds the node tree (deeper input
  would exhaust the interpreter's stack);
- at most `MAX_NODES` values once every alias is expanded, and no alias that contains itself:
  a 600-byte "billion laughs" file would otherwise expand to 10⁹ values in the first walk over it.

The limits are checked on the parser's event stream (libyaml's parser where PyYAML has it, else
the pure-Python one with the checks built into composing), before any tree is built. Only then is
the document turned into Python data (``yaml.SafeLoader``'s constructors: a tag that
would build objects is an error, never executed). The same pass finds what the constructors let
through silently: a key repeated in one mapping (the last one would win), keys that are not
non-empty strings. Every problem is a `ConfigIssue` with its line.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from llenergymeasure.errors import ConfigError, ConfigIssue

#: largest config file read, in bytes (a study of hundreds of experiments is a few tens of KiB)
MAX_CONFIG_BYTES = 256 * 1024
#: deepest nesting of mappings and lists in a config file (levels)
MAX_DEPTH = 32
#: most values (mapping keys, mapping values, list items, scalars) once aliases are expanded (count)
MAX_NODES = 20_000

_STR_TAG = "tag:yaml.org,2002:str"
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _LimitExceeded(Exception):
    def __init__(self, message: str, fix: str, line: int | None) -> None:
        super().__init__(message)
        self.issue = ConfigIssue("<yaml>", message, fix, line)


@dataclass
class ParsedYaml:
    """A parsed document, a dotted-key → line index, and the problems found while parsing."""

    data: Any
    lines: dict[str, int] = field(default_factory=dict)
    issues: list[ConfigIssue] = field(default_factory=list)


def _file_issue(message: str, fix: str) -> ConfigIssue:
    return ConfigIssue("<file>", message, fix)


def read_config_bytes(path: str | Path, *, max_bytes: int = MAX_CONFIG_BYTES, what: str = "YAML file") -> bytes:
    """The bytes of `path`, refusing anything but a regular file of at most `max_bytes`."""
    src = str(path)
    try:
        st = os.stat(path)
    except (OSError, ValueError) as e:
        raise ConfigError(_stat_problem(e), source=src, issues=[_file_issue(_stat_problem(e), _stat_fix(e))]) from None
    if stat.S_ISDIR(st.st_mode):
        raise ConfigError(
            f"is a directory, not a {what}",
            source=src,
            issues=[_file_issue(f"expected a {what}", f"pass a file inside it, e.g. {Path(path) / 'study.yaml'}")],
        )
    if not stat.S_ISREG(st.st_mode):
        kind = _special_kind(st.st_mode)
        raise ConfigError(
            f"is a {kind}, not a regular file",
            source=src,
            issues=[_file_issue(f"a {kind} is never read (it could block or never end)", f"pass a {what}")],
        )
    if st.st_size > max_bytes:
        raise ConfigError("file too large", source=src, issues=[_too_large(st.st_size, max_bytes, what)])
    try:
        # O_NONBLOCK: if the path was swapped for a FIFO since the stat, opening it still returns at once
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    except OSError as e:
        raise ConfigError(_stat_problem(e), source=src, issues=[_file_issue(_stat_problem(e), _stat_fix(e))]) from None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise ConfigError("not a regular file", source=src, issues=[_file_issue("changed while opened", "retry")])
        with os.fdopen(fd, "rb", closefd=False) as fh:
            data = fh.read(max_bytes + 1)
    except OSError as e:
        why = e.strerror or type(e).__name__
        raise ConfigError(
            f"cannot read the file: {why}",
            source=src,
            issues=[_file_issue(f"reading failed ({why})", f"pass a readable {what}, not a system or special file")],
        ) from None
    finally:
        os.close(fd)
    if len(data) > max_bytes:
        raise ConfigError("file too large", source=src, issues=[_too_large(None, max_bytes, what)])
    return data


def _too_large(size: int | None, max_bytes: int, what: str) -> ConfigIssue:
    got = f"{size} bytes" if size is not None else "more bytes"
    return _file_issue(f"{got} than the limit of {max_bytes} bytes for a {what}", f"pass a {what} under the limit")


def _special_kind(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "FIFO (named pipe)"
    if stat.S_ISCHR(mode):
        return "character device"
    if stat.S_ISBLK(mode):
        return "block device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _stat_problem(e: Exception) -> str:
    if isinstance(e, ValueError):
        return "the path contains a NUL byte"
    if isinstance(e, OSError) and e.errno == errno.ENOENT:
        return "file not found"
    if isinstance(e, OSError) and e.errno == errno.ENAMETOOLONG:
        return "the path (or one of its parts) is too long"
    if isinstance(e, OSError) and e.errno in {errno.EACCES, errno.EPERM}:
        return "permission denied"
    return f"cannot open the file: {getattr(e, 'strerror', None) or type(e).__name__}"


def _stat_fix(e: Exception) -> str:
    if isinstance(e, OSError) and e.errno in {errno.EACCES, errno.EPERM}:
        return "make the file readable, or copy it somewhere you can read"
    return "check the path"


class _BoundedLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that stops composing at `MAX_DEPTH` levels and `MAX_NODES` nodes."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0
        self._composed = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node | None:
        self._depth += 1
        self._composed += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _LimitExceeded(
                    f"nested deeper than {MAX_DEPTH} levels",
                    "flatten the structure; a config needs a few levels only",
                    self._line(),
                )
            if self._composed > MAX_NODES:
                raise _LimitExceeded(
                    f"more than {MAX_NODES} values", "split the file; a config needs far fewer values", self._line()
                )
            node: yaml.Node | None = super().compose_node(parent, index)
            return node
        finally:
            self._depth -= 1

    def _line(self) -> int | None:
        event = self.peek_event()  # type: ignore[no-untyped-call]
        return event.start_mark.line + 1 if event is not None and event.start_mark is not None else None


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def check_expansion(root: yaml.Node, max_nodes: int = MAX_NODES, max_depth: int = MAX_DEPTH) -> None:
    """Refuse a node graph that contains itself, or whose alias expansion is too big or too deep.

    Iterative, memoised by node identity: the cost is the number of distinct nodes, whatever the
    expansion (so an alias bomb is measured, not expanded).
    """
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    visiting: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        nid = id(node)
        if finished:
            kids = _children(node)
            size[nid] = 1 + sum(size[id(k)] for k in kids)
            depth[nid] = 1 + max((depth[id(k)] for k in kids), default=0)
            visiting.discard(nid)
            line = node.start_mark.line + 1
            if size[nid] > max_nodes:
                raise _LimitExceeded(
                    f"aliases expand to {size[nid]}+ values, more than the limit of {max_nodes}",
                    "use fewer or smaller aliases (*name) — each one copies its anchor's content",
                    line,
                )
            if depth[nid] > max_depth:
                raise _LimitExceeded(
                    f"aliases nest deeper than {max_depth} levels", "use fewer nested aliases (*name)", line
                )
            continue
        if nid in size:
            continue
        if nid in visiting:
            raise _LimitExceeded(
                "an alias refers to the anchor that contains it (a recursive structure)",
                "remove the alias (*name) inside its own anchor (&name)",
                node.start_mark.line + 1,
            )
        visiting.add(nid)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node))


def _key_name(node: yaml.Node) -> str:
    return str(node.value) if isinstance(node, yaml.ScalarNode) else f"<{type(node).__name__[:-4].lower()}>"


def index_and_check(root: yaml.Node) -> tuple[dict[str, int], list[ConfigIssue]]:
    """Dotted-key → 1-based line index, and the key problems of every mapping (each mapping checked once)."""
    index: dict[str, int] = {}
    issues: list[ConfigIssue] = []
    checked: set[int] = set()
    stack: list[tuple[yaml.Node, str]] = [(root, "")]
    while stack:
        node, prefix = stack.pop()
        if isinstance(node, yaml.MappingNode):
            first_seen = id(node) not in checked
            checked.add(id(node))
            seen: dict[tuple[str, str], int] = {}
            for key_node, value_node in node.value:
                name = _key_name(key_node)
                key = f"{prefix}.{name}" if prefix else name
                line = key_node.start_mark.line + 1
                index.setdefault(key, line)
                if first_seen:
                    issues.extend(_key_issues(key_node, key, line, seen))
                stack.append((value_node, key))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                index.setdefault(f"{prefix}[{i}]", item.start_mark.line + 1)
                stack.append((item, f"{prefix}[{i}]"))
    issues.sort(key=lambda i: i.line or 0)
    return index, issues


def _key_issues(key_node: yaml.Node, key: str, line: int, seen: dict[tuple[str, str], int]) -> list[ConfigIssue]:
    if key_node.tag == _MERGE_TAG:
        return []
    if not isinstance(key_node, yaml.ScalarNode):
        return [ConfigIssue(key, "a list or mapping is used as a field name", "write a plain name before ':'", line)]
    if key_node.tag != _STR_TAG:
        return [
            ConfigIssue(
                key,
                f"field name {key_node.value!r} is not a string (YAML reads it as {key_node.tag.rsplit(':', 1)[-1]})",
                f"quote it ('\"{key_node.value}\": ...') or remove it",
                line,
            )
        ]
    if not str(key_node.value).strip():
        return [ConfigIssue(key or "<empty>", "empty field name", "write the field's name before ':'", line)]
    ident = (key_node.tag, str(key_node.value))
    if ident in seen:
        return [
            ConfigIssue(
                key,
                f"duplicate key (first at line {seen[ident]}); the values would silently replace each other",
                "keep one of the two",
                line,
            )
        ]
    seen[ident] = line
    return []


#: libyaml's parser when PyYAML was built with it (about ten times faster); else the pure-Python one
_FAST_LOADER: type[Any] | None = getattr(yaml, "CSafeLoader", None) if yaml.__with_libyaml__ else None


def _event_line(event: yaml.Event) -> int | None:
    return event.start_mark.line + 1 if event.start_mark is not None else None


def _check_events(text: str) -> None:
    """Walk the parser's events (no tree, no recursion) and stop at the depth or size limit."""
    assert _FAST_LOADER is not None
    parser = _FAST_LOADER(text)
    depth = count = 0
    try:
        while (event := parser.get_event()) is not None:
            if isinstance(event, (yaml.MappingStartEvent, yaml.SequenceStartEvent)):
                depth += 1
                if depth > MAX_DEPTH:
                    raise _LimitExceeded(
                        f"nested deeper than {MAX_DEPTH} levels",
                        "flatten the structure; a config needs a few levels only",
                        _event_line(event),
                    )
            elif isinstance(event, (yaml.MappingEndEvent, yaml.SequenceEndEvent)):
                depth -= 1
            if isinstance(event, yaml.NodeEvent):
                count += 1
                if count > MAX_NODES:
                    raise _LimitExceeded(
                        f"more than {MAX_NODES} values",
                        "split the file; a config needs far fewer values",
                        _event_line(event),
                    )
    finally:
        parser.dispose()


def parse_yaml(text: str) -> ParsedYaml:
    """Parse `text` within the limits; raise `ConfigError` (no source) when it cannot be parsed at all."""
    try:
        if _FAST_LOADER is not None:
            _check_events(text)
            loader = _FAST_LOADER(text)
        else:
            loader = _BoundedLoader(text)
    except _LimitExceeded as e:
        raise ConfigError("the YAML is too large or too deep", issues=[e.issue]) from None
    except yaml.YAMLError as e:  # the reader refuses control characters before anything is parsed
        raise ConfigError("invalid YAML", issues=[yaml_issue(e, text)]) from None
    try:
        try:
            root = loader.get_single_node()
            if root is None:
                return ParsedYaml(None)
            check_expansion(root)
            lines, issues = index_and_check(root)
            try:
                data = loader.construct_document(root)
            except yaml.YAMLError:
                if not issues:
                    raise
                # e.g. "found unhashable key": the key issues already say where and why
                raise ConfigError("invalid YAML keys", issues=issues) from None
            except (ValueError, OverflowError) as e:  # a number too long to convert (over 4300 digits)
                raise ConfigError(
                    "invalid YAML",
                    issues=[ConfigIssue("<yaml>", f"a value cannot be read: {e}".split(";")[0], "shorten the number")],
                ) from None
        except _LimitExceeded as e:
            raise ConfigError("the YAML is too large or too deep", issues=[e.issue]) from None
        except yaml.YAMLError as e:
            raise ConfigError("invalid YAML", issues=[yaml_issue(e, text)]) from None
    finally:
        loader.dispose()
    return ParsedYaml(data, lines, issues)


def yaml_issue(e: yaml.YAMLError, text: str) -> ConfigIssue:
    mark = getattr(e, "problem_mark", None)
    line = mark.line + 1 if mark is not None else None
    if isinstance(e, yaml.reader.ReaderError):
        line = text.count("\n", 0, e.position) + 1
        return ConfigIssue(
            "<yaml>",
            f"character {e.character!r} is not allowed in YAML",
            'remove it, or write it as an escape inside a double-quoted string (e.g. "\\t")',
            line,
        )
    problem = getattr(e, "problem", None) or str(e).splitlines()[0]
    if "nesting depth" in str(problem):  # libyaml's own limit, met while scanning ahead
        return ConfigIssue(
            "<yaml>",
            f"nested deeper than {MAX_DEPTH} levels",
            "flatten the structure; a config needs a few levels only",
            line,
        )
    if "escape" in str(problem):
        fix = "write a valid escape; \\uD800-\\uDFFF (surrogates) and unknown escapes are not text"
        return ConfigIssue("<yaml>", str(problem), fix, line)
    if isinstance(e, yaml.constructor.ConstructorError) and "tag" in str(problem):
        return ConfigIssue(
            "<yaml>", f"{problem} (tags that build objects are never executed)", "remove the '!!' tag", line
        )
    if "expected a single document" in str(getattr(e, "context", "") or ""):
        return ConfigIssue("<yaml>", "more than one YAML document ('---')", "keep one document per file", line)
    return ConfigIssue("<yaml>", str(problem), "fix the YAML syntax at that line (indentation, ':' or quotes)", line)


def read_yaml(path: str | Path) -> ParsedYaml:
    """Read and parse a YAML file within the limits (`ConfigError` naming the file otherwise)."""
    src = str(path)
    data = read_config_bytes(path)
    if b"\x00" in data:
        raise ConfigError(
            "not a text file (binary content)",
            source=src,
            issues=[_file_issue("contains NUL bytes", "pass a UTF-8 YAML file")],
        )
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ConfigError(
            "not valid UTF-8 text",
            source=src,
            issues=[_file_issue(f"invalid byte at offset {e.start}", "save the file as UTF-8")],
        ) from None
    try:
        return parse_yaml(text)
    except ConfigError as e:
        e.source = src
        raise
