"""Reading YAML as plain data, refusing what a config file should never hold.

Every YAML text hybridkit reads (experiment configs, ``--set`` override values, dataset configs)
goes through :func:`load_yaml` / :func:`read_yaml`. On top of ``yaml.SafeLoader`` (which never
builds Python objects) they refuse, each with a :class:`~hybridkit._config.ConfigError` that says
what was found, where (line) and the fix:

* **alias bombs**: anchors and aliases are allowed, but the nodes they add by expansion are
  counted and limited (``MAX_ALIAS_NODES``); a recursive alias (``a: &x [*x]``) is refused.
  1 kB of nested aliases ("billion laughs") would otherwise expand to 10^9 values;
* **duplicate keys** (YAML lets the last one win silently), naming the key and both lines;
* **values JSON has no type for**: dates / timestamps, ``!!set``, ``!!binary``, ``!!omap``,
  ``!!pairs``, any ``!!python/...`` or custom tag, and mapping keys that are not strings
  (``1:``, ``on:``, ``null:``); numbers whose YAML 1.1 meaning surprises (``010`` is octal 8,
  ``1:30`` is base 60: 90);
* **deep nesting** beyond ``MAX_DEPTH`` levels (checked while composing, before Python's
  recursion limit is near);
* **empty documents** (an empty file, only comments) and **several documents** in one text;
* files that are not regular files (a directory, a FIFO that would block, ``/dev/zero``) or
  larger than ``MAX_BYTES``.

Numbers follow YAML 1.2 where 1.1 surprises: ``1e-3`` and ``1E5`` are floats (PyYAML reads
them as strings), as are ``1.0e5``. Booleans stay YAML 1.1 (``yes``/``no``/``on``/``off``), so
that ``viscosity: yes`` arrives as a bool and is refused by the typed configs
(:func:`hybridkit._config.from_dict`), not silently read as 1.0.
"""
from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any

import yaml
from yaml.events import StreamEndEvent
from yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode

from ._config import ConfigError

__all__ = ["load_yaml", "read_yaml", "MAX_DEPTH", "MAX_ALIAS_NODES", "MAX_BYTES"]

MAX_DEPTH = 64  # nesting levels (a config needs about 4)
MAX_ALIAS_NODES = 10_000  # values that aliases may add by expansion in one document
MAX_BYTES = 4 * 2**20  # size of a YAML file (an inline 2D field of 256 x 256 numbers is ~0.6 MB)

_T = "tag:yaml.org,2002:"
_PLAIN_TAGS = {_T + t for t in ("str", "int", "float", "bool", "null", "seq", "map", "merge")}
_MERGE = _T + "merge"
_QUOTE = "quote it to keep it as text"
# what each refused standard tag is, and what to write instead
_REFUSED_TAGS = {
    _T + "timestamp": ("a date / timestamp", f"{_QUOTE} (e.g. '2024-01-31')"),
    _T + "set": ("a !!set", "write a list instead: [a, b]"),
    _T + "binary": ("!!binary data", "store arrays in a file (HDF5 / .npy) and give its path as a string"),
    _T + "omap": ("an !!omap (ordered mapping)", "write a plain mapping {a: 1, b: 2}"),
    _T + "pairs": ("!!pairs", "write a plain mapping {a: 1, b: 2} or a list of lists"),
    _T + "value": ("a '=' value key", f"{_QUOTE}: '='"),
}
_EMPTY_FIX = "write a value: a config file holds a mapping of settings ('{}' for all defaults), an override null for none"
_OCTAL = re.compile(r"^[-+]?0[0-7_]+$")


class _Loader(yaml.SafeLoader):
    """SafeLoader with a nesting limit while composing and YAML 1.2 floats (``1e-3``)."""

    # floats: PyYAML's YAML 1.1 pattern needs a dot and a signed exponent, so ``1e-3`` would be
    # the string "1e-3"; this one also takes ``1e-3``, ``1E5``, ``1.0e5``, ``-.5`` (and keeps the
    # base-60 form so that it can be refused below rather than read as a string)
    yaml_implicit_resolvers = {k: [(tag, rx) for tag, rx in v if tag != _T + "float"]
                               for k, v in yaml.SafeLoader.yaml_implicit_resolvers.items()}

    def __init__(self, stream, max_depth: int):
        super().__init__(stream)
        self._depth = 0
        self._max_depth = max_depth

    def compose_node(self, parent, index):
        self._depth += 1
        try:
            if self._depth > self._max_depth:
                raise _Refused(f"more than {self._max_depth} levels of nesting", self.peek_event().start_mark,
                               f"flatten the structure (a hybridkit config needs about 4 levels)")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


_Loader.add_implicit_resolver(
    _T + "float",
    re.compile(r"""^(?:[-+]?[0-9][0-9_]*\.[0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?\.[0-9][0-9_]*(?:[eE][-+]?[0-9]+)?
                    |[-+]?[0-9][0-9_]*[eE][-+]?[0-9]+
                    |[-+]?[0-9][0-9_]*(?::[0-5]?[0-9])+\.[0-9_]*
                    |[-+]?\.(?:inf|Inf|INF)
                    |\.(?:nan|NaN|NAN))$""", re.X),
    list("-+0123456789."))


class _Refused(Exception):
    """A refusal found inside the loader; turned into a ConfigError with the source's name."""

    def __init__(self, what: str, mark, fix: str, *, invalid: bool = False):
        super().__init__(what)
        self.what, self.mark, self.fix, self.invalid = what, mark, fix, invalid


def load_yaml(text: str | bytes, *, where: str = "the YAML text", max_depth: int = MAX_DEPTH,
              max_alias_nodes: int = MAX_ALIAS_NODES) -> Any:
    """Parse one YAML document into plain data: dicts with string keys, lists, str, int, float,
    bool, None.

    Args:
        text: the YAML text (bytes are decoded as UTF-8).
        where: what the text is, for messages (a file name, ``"override 'cycles=2'"``).
        max_depth: nesting levels allowed.
        max_alias_nodes: values that aliases may add by expansion.

    Returns:
        the document's value (not necessarily a mapping).

    Raises:
        ConfigError: invalid YAML, or anything listed in the module docstring; the message says
            what was found, on which line, and the fix.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as e:
            raise ConfigError(f"{where} is not valid YAML: {e}. Fix: save it as UTF-8 text.") from None
    loader = None
    try:
        loader = _Loader(text, max_depth)  # its reader refuses unprintable characters at once
        loader.name = where  # PyYAML's own messages name the source as this
        node = _single_node(loader, where)
        _check_node(node, max_depth, max_alias_nodes)
        return loader.construct_document(node)
    except _Refused as e:
        line = f" (line {e.mark.line + 1}, column {e.mark.column + 1})" if e.mark is not None else ""
        verb = "is not valid YAML:" if e.invalid else "holds"
        raise ConfigError(f"{where} {verb} {e.what}{line}. Fix: {e.fix}.") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{where} is not valid YAML: {_one_line(e)}. Fix: correct the YAML syntax at the "
                          "line shown (see configs/*.yaml for examples).") from None
    finally:
        if loader is not None:
            loader.dispose()


def read_yaml(path: str | os.PathLike, *, max_bytes: int = MAX_BYTES, **limits) -> Any:
    """:func:`load_yaml` of the file at ``path``.

    Raises:
        FileNotFoundError: no file at ``path``.
        ConfigError: ``path`` is not a regular file (a directory, a FIFO, a device such as
            ``/dev/zero``), is larger than ``max_bytes``, is not UTF-8, or :func:`load_yaml` refuses it.
    """
    path = Path(path)
    info = os.stat(path)  # follows symlinks: a link to /dev/zero is a device; raises FileNotFoundError
    if not stat.S_ISREG(info.st_mode):
        raise ConfigError(f"Expected a YAML file at {path}, found {file_kind(info.st_mode)}. Fix: give the path "
                          "of a regular .yaml file.")
    if info.st_size > max_bytes:
        raise ConfigError(f"Expected a YAML config of at most {max_bytes:,} bytes, {path} has {info.st_size:,}. "
                          "Fix: keep large arrays in a data file, not in the config.")
    with open(path, "rb") as fh:
        data = fh.read(max_bytes + 1)  # the file may have grown since stat
    if len(data) > max_bytes:
        raise ConfigError(f"Expected a YAML config of at most {max_bytes:,} bytes, {path} is larger. "
                          "Fix: keep large arrays in a data file, not in the config.")
    return load_yaml(data, where=str(path), **limits)


def _single_node(loader: _Loader, where: str) -> Node:
    """The one document's root node; empty and multi-document streams are refused."""
    loader.get_event()  # StreamStartEvent
    if loader.check_event(StreamEndEvent):
        raise _Refused("no YAML document (it is empty or only comments)", None,
                       _EMPTY_FIX)
    node = loader.compose_document()
    if isinstance(node, ScalarNode) and node.tag == _T + "null" and node.value == "" and not node.style:
        raise _Refused("an empty YAML document (a '---' with nothing after it)", node.start_mark,
                       _EMPTY_FIX)
    if not loader.check_event(StreamEndEvent):
        raise _Refused("more than one YAML document (a second '---')", loader.peek_event().start_mark,
                       "keep one document per file; merge the settings into one mapping")
    return node


def _check_node(root: Node, max_depth: int, max_alias_nodes: int) -> None:
    """Tags, keys, numbers, depth and alias expansion of a composed document, without recursion.

    Aliases make the node graph a DAG (or a cycle): the expanded size of each node is counted
    once per node (memoised), so that the check costs as much as the text, not its expansion.
    """
    size: dict[int, int] = {}  # id(node) -> number of values after expansion
    depth: dict[int, int] = {}
    distinct = 0
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        key = id(node)
        children = _children(node)
        if done:
            size[key] = 1 + sum(size[id(c)] for c in children)
            depth[key] = 1 + max((depth[id(c)] for c in children), default=0)
            continue
        if key in size:
            continue
        if key in depth:  # started but not finished: we are inside it again
            raise _Refused("a recursive alias (a value that contains itself)", node.start_mark,
                           "replace the alias by a copy of the value it names")
        depth[key] = -1  # mark as started
        distinct += 1
        _check_one(node)
        stack.append((node, True))
        stack.extend((c, False) for c in children)
    if size[id(root)] - distinct > max_alias_nodes:
        raise _Refused(f"aliases that expand to {size[id(root)]:,} values from {distinct:,} written ones (at most "
                       f"{max_alias_nodes:,} may come from aliases)", root.start_mark,
                       "write the values out instead of nesting aliases of aliases")
    if depth[id(root)] > max_depth:
        raise _Refused(f"{depth[id(root)]} levels of nesting once aliases are expanded (at most {max_depth})",
                       root.start_mark, "flatten the structure")


def _children(node: Node) -> list[Node]:
    if isinstance(node, SequenceNode):
        return node.value
    if isinstance(node, MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_one(node: Node) -> None:
    """One node's own tag, keys and number syntax (its children are checked as nodes)."""
    tag = node.tag
    if tag in _REFUSED_TAGS:
        what, fix = _REFUSED_TAGS[tag]
        shown = f" ({node.value})" if isinstance(node, ScalarNode) else ""
        raise _Refused(f"{what}{shown}, which JSON has no type for",
                       node.start_mark, fix)
    if tag not in _PLAIN_TAGS:
        raise _Refused(f"could not determine a constructor for the tag {tag!r} (hybridkit reads YAML as plain "
                       "data and constructs or executes nothing)", node.start_mark,
                       "remove the tag and write plain values (numbers, strings, lists, mappings)", invalid=True)
    if isinstance(node, ScalarNode) and tag in (_T + "int", _T + "float"):
        if ":" in node.value:
            raise _Refused(f"{node.value!r}, which YAML 1.1 reads as a base-60 number", node.start_mark,
                           f"write the number in decimal, or {_QUOTE}")
        if tag == _T + "int" and _OCTAL.match(node.value):
            raise _Refused(f"{node.value!r}, which YAML 1.1 reads as the octal number {int(node.value.replace('_', ''), 8)}",
                           node.start_mark, f"drop the leading zero, or {_QUOTE}")
    if isinstance(node, MappingNode):
        seen: dict[str, Node] = {}
        for k, _ in node.value:
            if k.tag == _MERGE:
                continue
            if not isinstance(k, ScalarNode) or k.tag != _T + "str":
                shown = k.value if isinstance(k, ScalarNode) else f"a {type(k).__name__[:-4].lower()}"
                kind = {_T + "int": "an integer", _T + "float": "a number", _T + "bool": "a boolean",
                        _T + "null": "null"}.get(k.tag, "not a string")
                raise _Refused(f"the mapping key {shown!r}, which YAML reads as {kind}; keys must be strings",
                               k.start_mark, f"quote the key ('{shown}': ...)")
            if k.value in seen:
                raise _Refused(f"the key {k.value!r} twice in one mapping (first on line "
                               f"{seen[k.value].start_mark.line + 1}; YAML would keep the last one silently)", k.start_mark,
                               "keep one of them")
            seen[k.value] = k


def file_kind(mode: int) -> str:
    """What a ``st_mode`` that is not a regular file is, in words ("a directory", "a FIFO (named pipe)")."""
    for test, name in ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "something that is not a regular file"


def _one_line(error: yaml.YAMLError) -> str:
    """PyYAML's multi-line message (problem, context, a snippet of the text) as one line."""
    return " ".join(line.strip() for line in str(error).splitlines() if line.strip() and not line.strip() == "^")
