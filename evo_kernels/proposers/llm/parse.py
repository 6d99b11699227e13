"""Turn a model's answer into a candidate source: a whole module in a fenced block, or SEARCH/REPLACE
edits to the parent. Answers are untrusted text; anything that does not yield a module defining
`ModelNew` raises `Unusable` with the reason (recorded as `proposal_error`).

Parsing is lenient where models are sloppy (a missing language tag, an unclosed fence at the end of
a complete answer, trailing whitespace or a shifted indent in a SEARCH block, reasoning in <think>
tags) and strict where guessing would change the code (a SEARCH text that is not in the parent).
Syntax errors are not caught here: such code goes to evaluation and comes back as compile_error,
like anyone else's.
"""
from __future__ import annotations

import re

_THINK = re.compile(r"<think>.*?(</think>|$)", re.S | re.I)
_EDIT = re.compile(r"^<{5,9} ?SEARCH[^\n]*\n(.*?)^={5,9}[ \t]*\n(.*?)^>{5,9} ?REPLACE[^\n]*$", re.S | re.M)
_FENCE = re.compile(r"^[ \t]*```[ \t]*([\w+-]*)[^\n]*\n(.*?)^[ \t]*```[ \t]*$", re.S | re.M)
_OPEN_FENCE = re.compile(r"^[ \t]*```[ \t]*(python|py|python3)?[ \t]*\n(.*)\Z", re.S | re.M)
_MODELNEW = re.compile(r"^class\s+ModelNew\b", re.M)
_CODE_LANGS = {"", "python", "py", "python3"}


class Unusable(ValueError):
    """The answer holds no usable code; the message is the reason."""


def extract_source(answer: str, parent_source: str, truncated: bool = False) -> tuple[str, str]:
    """(source, form): form is "edit" (SEARCH/REPLACE applied to the parent) or "module"."""
    text = _THINK.sub("", answer or "").replace("\r\n", "\n")
    if not text.strip():
        raise Unusable("the answer is empty")
    edits = _EDIT.findall(text)
    if edits:
        source = apply_edits(parent_source, edits)
        if source.strip() == parent_source.strip():
            raise Unusable("the edits leave the parent unchanged")
        return _finish(source), "edit"
    blocks = [code for lang, code in _FENCE.findall(text) if lang.lower() in _CODE_LANGS]
    tail = _OPEN_FENCE.findall(_FENCE.sub("", text))
    if tail:  # an opening fence never closed: a complete answer missing its last ```, or a cut-off one
        if truncated:
            raise Unusable("the answer was cut off (max_tokens) before its code block ended")
        blocks.append(tail[-1][1])
    if not blocks and _MODELNEW.search(text):  # bare code, no fences
        blocks = [text]
    with_model = [b for b in blocks if _MODELNEW.search(b)]
    if with_model:
        return _finish(with_model[-1]), "module"
    if blocks:
        raise Unusable("the answer's code does not define `class ModelNew`")
    if truncated:
        raise Unusable("the answer was cut off (max_tokens) before any code")
    raise Unusable("no ```python block and no SEARCH/REPLACE edit in the answer")


def apply_edits(source: str, edits: list[tuple[str, str]]) -> str:
    """Apply (search, replace) pairs in order; each must be found in the source as edited so far."""
    for i, (search, replace) in enumerate(edits, 1):
        if not search.strip():  # an empty SEARCH adds the code at the end
            source = source.rstrip("\n") + "\n\n" + replace
            continue
        found = _replace_once(source, search, replace)
        if found is None:
            first = search.strip().splitlines()[0][:80]
            raise Unusable(f"edit {i} of {len(edits)}: its SEARCH text is not in the parent "
                           f"(first line: {first!r})")
        source = found
    return source


def _replace_once(source: str, search: str, replace: str) -> str | None:
    """The first occurrence: exact; else line by line ignoring trailing spaces; else ignoring a
    constant indentation shift, which is then applied to the replacement too."""
    if search in source:
        return source.replace(search, replace, 1)
    lines, want = source.split("\n"), search.rstrip("\n").split("\n")
    for strip in (str.rstrip, str.strip):
        wanted = [strip(w) for w in want]
        for start in range(len(lines) - len(want) + 1):
            window = lines[start:start + len(want)]
            if [strip(w) for w in window] != wanted:
                continue
            new = replace.rstrip("\n").split("\n")
            if strip is str.strip:
                shift = _indent(window) - _indent(want)
                new = [(" " * shift + ln) if shift > 0 else ln[min(-shift, _lead(ln)):] for ln in new]
            return "\n".join(lines[:start] + new + lines[start + len(want):])
    return None


def _lead(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _indent(lines: list[str]) -> int:
    return min((_lead(ln) for ln in lines if ln.strip()), default=0)


def _finish(source: str) -> str:
    return source.strip("\n") + "\n"
