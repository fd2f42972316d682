"""Sandboxed Jinja for owner templates: strict about unknown names, lenient about empty data.

A misspelt field (`{{ frist_name }}`) is an error naming the field and the line; a known field
that is empty for this customer (no first name on file) renders empty, so
`{{ first_name | default("there") }}` falls back as the owner expects.
"""

from __future__ import annotations

import difflib
import re
import sys
from collections.abc import Iterable, Mapping
from types import TracebackType
from typing import Any

from jinja2 import (
    StrictUndefined,
    Template,
    TemplateError,
    TemplateSyntaxError,
    Undefined,
    UndefinedError,
    meta,
    nodes,
)
from jinja2.exceptions import SecurityError
from jinja2.sandbox import ImmutableSandboxedEnvironment

from dealmail.errors import InvalidInput

JINJA_RE = re.compile(r"\{\{.*?\}\}|\{%.*?%\}|\{#.*?#\}", re.DOTALL)


class Missing(Undefined):
    """A known field with no value for this customer: renders empty, `default()` replaces it."""

    __slots__ = ()


def missing(name: str) -> Missing:
    return Missing(name=name)


def _environment(*, html: bool) -> ImmutableSandboxedEnvironment:
    # Immutable: a template cannot change the dicts (deal, coupon) shared by every message.
    env = ImmutableSandboxedEnvironment(
        undefined=StrictUndefined,
        autoescape=html,
        keep_trailing_newline=True,
        auto_reload=False,
    )
    # Owner templates load nothing: no include, import or extends can reach the file system.
    env.loader = None
    return env


HTML_ENV = _environment(html=True)
TEXT_ENV = _environment(html=False)


class TemplateProblem(InvalidInput):
    code = "template_error"


def _where(label: str, line: int | None) -> str:
    return f"{label} line {line}" if line else label


def _line_in_traceback(tb: TracebackType | None, filename: str) -> int | None:
    line = None
    while tb is not None:
        if tb.tb_frame.f_code.co_filename == filename:
            line = tb.tb_lineno
        tb = tb.tb_next
    return line


def _suggest(name: str, known: Iterable[str]) -> str:
    close = difflib.get_close_matches(name, list(known), n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _name_lines(ast: nodes.Template, name: str) -> int | None:
    for node in ast.find_all(nodes.Name):
        if node.name == name and node.ctx == "load":
            return int(node.lineno)
    return None


def compile_template(
    source: str, label: str, known_fields: Iterable[str], *, html: bool = True
) -> Template:
    """Compile owner text; unknown top-level names and syntax errors name the field and line."""
    env = HTML_ENV if html else TEXT_ENV
    known = set(known_fields) | set(env.globals)  # range, dict, namespace... stay usable
    try:
        ast = env.parse(source, name=label)
    except TemplateSyntaxError as exc:
        raise TemplateProblem(
            f"{_where(label, exc.lineno)}: {exc.message}", detail={"line": exc.lineno}
        ) from None
    for node in ast.find_all((nodes.Include, nodes.Import, nodes.FromImport, nodes.Extends)):
        raise TemplateProblem(
            f"{_where(label, node.lineno)}: templates cannot include, import or extend files",
            code="template_unsafe",
            detail={"line": node.lineno},
        )
    unknown = sorted(meta.find_undeclared_variables(ast) - known)
    if unknown:
        name = unknown[0]
        line = _name_lines(ast, name)
        raise TemplateProblem(
            f"{_where(label, line)}: unknown field {name!r}{_suggest(name, known)}",
            code="unknown_field",
            detail={"field": name, "line": line},
        )
    code = env.compile(source, name=label, filename=label)
    return env.template_class.from_code(env, code, env.make_globals(None))


def render(template: Template, context: Mapping[str, Any]) -> str:
    """Render; a missing attribute or a sandbox refusal names the line in the owner's text."""
    try:
        return template.render(context)
    except SecurityError as exc:
        line = _line_in_traceback(sys.exc_info()[2], template.name or "")
        raise TemplateProblem(
            f"{_where(template.name or 'template', line)}: not allowed in a template ({exc})",
            code="template_unsafe",
            detail={"line": line},
        ) from None
    except UndefinedError as exc:
        line = _line_in_traceback(sys.exc_info()[2], template.name or "")
        raise TemplateProblem(
            f"{_where(template.name or 'template', line)}: {_explain(exc, context)}",
            code="unknown_field",
            detail={"line": line},
        ) from None
    except (TemplateError, ArithmeticError, TypeError, ValueError, LookupError) as exc:
        line = _line_in_traceback(sys.exc_info()[2], template.name or "")
        raise TemplateProblem(
            f"{_where(template.name or 'template', line)}: {exc}", detail={"line": line}
        ) from None


_NO_ATTRIBUTE_RE = re.compile(r"^'dict object' has no attribute '([^']+)'$")


def _explain(exc: UndefinedError, context: Mapping[str, Any]) -> str:
    """ "'dict object' has no attribute 'shortcode'" → which field, and the likely intent."""
    message = exc.message or "undefined field"
    match = _NO_ATTRIBUTE_RE.match(message)
    if match is None:
        return message
    name = match.group(1)
    groups = [key for key, value in context.items() if isinstance(value, dict)]
    known = {f"{group}.{sub}" for group in groups for sub in context[group]}
    close = difflib.get_close_matches(name, [k.split(".", 1)[1] for k in known], n=1)
    owner = next(
        (k.split(".", 1)[0] for k in sorted(known) if close and k.endswith(f".{close[0]}")), None
    )
    hint = f" (did you mean '{owner}.{close[0]}'?)" if close and owner else ""
    return f"unknown field '{name}'{hint}"


def protect(source: str, *, in_markup: bool) -> tuple[str, list[str]]:
    """Swap Jinja constructs for inert placeholders before an HTML or Markdown tool sees them.

    In markup, a construct inside a tag becomes `dmjx<N>x` (a bare word) and one between tags an
    HTML comment, which parsers keep in place even between table rows.
    """
    saved: list[str] = []
    pieces: list[str] = []
    position = 0
    for match in JINJA_RE.finditer(source):
        before = source[position : match.start()]
        pieces.append(before)
        index = len(saved)
        saved.append(match.group(0))
        token = f"dmjx{index}x"
        if in_markup and not _inside_tag(source, match.start()):
            token = f"<!--{token}-->"
        pieces.append(token)
        position = match.end()
    pieces.append(source[position:])
    return "".join(pieces), saved


RAW_TEXT_ELEMENTS = ("title", "textarea", "style", "script")


def _inside_tag(source: str, index: int) -> bool:
    """Inside a tag, or inside an element whose text is not parsed (where comments show)."""
    if source.rfind("<", 0, index) > source.rfind(">", 0, index):
        return True
    lowered = source[:index].lower()
    return any(lowered.rfind(f"<{name}") > lowered.rfind(f"</{name}") for name in RAW_TEXT_ELEMENTS)


_RESTORE_RE = re.compile(r'<!--dmjx(\d+)x-->|dmjx(\d+)x(?:="")?')


def restore(text: str, saved: list[str]) -> str:
    def _put_back(match: re.Match[str]) -> str:
        return saved[int(match.group(1) or match.group(2))]

    return _RESTORE_RE.sub(_put_back, text)
