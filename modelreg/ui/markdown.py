"""A model card (markdown text) as HTML, in a tiny safe subset: headings, paragraphs, lists,
code blocks, inline code and links whose address is http(s). Everything is escaped first;
the few constructs are recognised in the escaped text, so no HTML in a card ever passes
through as HTML, and a ``javascript:`` link stays text."""

from __future__ import annotations

import re

from .html import Markup, esc

_HEADING = re.compile(r"(#{1,6})\s+(.*?)\s*#*\s*$")
_BULLET = re.compile(r"\s*[-*+]\s+(.*)")
_NUMBERED = re.compile(r"\s*[0-9]{1,9}[.)]\s+(.*)")
_CODE = re.compile(r"`([^`]+)`")
# in escaped text: [text](http://...) with no space, quote or angle bracket in the address
_LINK = re.compile(r"\[([^\]\n]+)\]\((https?://[^\s()<>\"']+)\)")


def _inline(text: str) -> str:
    escaped = str(esc(text))
    pieces = _CODE.split(escaped)  # odd pieces are code: no links inside them
    out = []
    for i, piece in enumerate(pieces):
        if i % 2:
            out.append(f"<code>{piece}</code>")
        else:
            out.append(
                _LINK.sub(
                    lambda m: f'<a href="{m.group(2)}" rel="nofollow">{m.group(1)}</a>', piece
                )
            )
    return "".join(out)


def render(text: str) -> Markup:
    lines = text.replace("\r\n", "\n").split("\n")
    out: list[str] = []
    para: list[str] = []
    items: list[str] = []
    list_tag = ""

    def flush() -> None:
        nonlocal list_tag
        if para:
            out.append(f"<p>{_inline(' '.join(para))}</p>")
            para.clear()
        if items:
            out.append(f"<{list_tag}>" + "".join(f"<li>{i}</li>" for i in items) + f"</{list_tag}>")
            items.clear()
            list_tag = ""

    i = 0
    while i < len(lines):
        line = lines[i]
        if line.strip().startswith("```"):
            flush()
            code = []
            i += 1
            while i < len(lines) and not lines[i].strip().startswith("```"):
                code.append(lines[i])
                i += 1
            out.append(f"<pre><code>{esc(chr(10).join(code))}</code></pre>")
            i += 1
            continue
        heading = _HEADING.match(line)
        bullet = _BULLET.fullmatch(line)
        numbered = _NUMBERED.fullmatch(line)
        if heading:
            flush()
            level = min(len(heading.group(1)) + 2, 6)  # the page's own headings come first
            out.append(f"<h{level}>{_inline(heading.group(2))}</h{level}>")
        elif bullet or numbered:
            tag = "ul" if bullet else "ol"
            if para or (items and tag != list_tag):
                flush()
            list_tag = tag
            items.append(_inline((bullet or numbered).group(1)))  # type: ignore[union-attr]
        elif not line.strip():
            flush()
        else:
            if items:
                flush()
            para.append(line.strip())
        i += 1
    flush()
    return Markup("\n".join(out))
