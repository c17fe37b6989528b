"""Identity templates -> rendered self-cognition records, in a jinja2 sandbox with strict undefined.

Public self-cognition files spell their placeholders three ways ({{NAME}} with a zh/en tag,
{{name}}, <NAME>); all are rewritten to `{{ name }}` / `{{ author }}` before rendering, so a
user can list any of them under `identity.templates`.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from jinja2 import StrictUndefined, TemplateError
from jinja2.sandbox import SandboxedEnvironment

from curate.shapes import PLACEHOLDER, row_to_record
from curate.sources import RawRow
from schemas.manifest import Reject
from schemas.recipe import IdentityConfig, RecipeError
from schemas.record import Message, Record

_CJK = r"[\u3000-\u303f\u3400-\u9fff\uff00-\uffef]"
_LEGACY = [
    (re.compile(r"\{\{\s*(?:NAME|name)\s*\}\}"), "{{ name }}"),
    (re.compile(r"\{\{\s*(?:AUTHOR|AUTHOER|author)\s*\}\}"), "{{ author }}"),
    (re.compile(r"<NAME>"), "{{ name }}"),
    (re.compile(r"<AUTHOR>"), "{{ author }}"),
]
_SPACE_BEFORE = re.compile(rf"(?<={_CJK}) (?=\{{\{{ (?:name|author) \}}\}})")
_SPACE_AFTER = re.compile(rf"(\{{\{{ (?:name|author) \}}\}}) (?={_CJK})")
_HAN = re.compile(r"[\u3400-\u9fff]")

ENV = SandboxedEnvironment(undefined=StrictUndefined, autoescape=False, keep_trailing_newline=True)


@dataclass
class RenderError(Exception):
    where: str
    message: str

    def __str__(self) -> str:
        return f"{self.where}: {self.message}"


def to_jinja(text: str) -> str:
    """Rewrite the public placeholder spellings to `{{ name }}`/`{{ author }}`.

    `我是 <NAME>，` loses the spaces that only stood there to set the Latin placeholder apart.
    """
    for pattern, replacement in _LEGACY:
        text = pattern.sub(replacement, text)
    return _SPACE_AFTER.sub(r"\1", _SPACE_BEFORE.sub("", text))


def guess_lang(record: Record) -> str:
    """A template without a tag is zh if its question has Han characters, else en."""
    text = "".join(m.content for m in record.messages if m.role == "user")
    return "zh" if _HAN.search(text) else "en"


def render_text(template: str, values: dict[str, str], where: str) -> str:
    try:
        return ENV.from_string(to_jinja(template)).render(**values)
    except TemplateError as exc:
        line = getattr(exc, "lineno", None)
        at = f" (template line {line})" if line else ""
        raise RenderError(where, f"template error{at}: {exc.message or exc}") from None


_NEEDS = ("name", "author")


def explicit_needs(raw: RawRow) -> list[str] | None:
    """A template's optional `needs` field: what a correct answer must state ("name", "author" or both),
    for questions whose answer's placeholders do not say it (e.g. "Are you ChatGPT?")."""
    needs = raw.row.get("needs") if isinstance(raw.row, dict) else None
    if needs is None:
        return None
    items = [p.strip() for p in needs.split(",")] if isinstance(needs, str) else needs
    if not isinstance(items, list) or not items or any(item not in _NEEDS for item in items):
        raise RecipeError(f"{raw.file}:{raw.line}: field 'needs': want 'name', 'author' or both (a list or "
                          f"'name,author'), got {needs!r}")
    return sorted(set(items), key=_NEEDS.index)


def render_record(template: Record, identity: IdentityConfig, needs: list[str] | None = None) -> Record | Reject:
    """One template record with name and author filled in for its language."""
    lang = template.meta.lang or guess_lang(template)
    where = f"{template.meta.source}:{template.meta.line}"
    values = {"name": getattr(identity.name, lang), "author": getattr(identity.author, lang)}
    messages = [Message(role=m.role, content=render_text(m.content, values, where)) for m in template.messages]
    if identity.system and messages[0].role != "system":
        messages.insert(0, Message(role="system", content=identity.system))
    meta = template.meta.model_copy(update={"lang": lang, "kind": "identity", "needs": needs})
    rendered = Record(messages=messages, tools=template.tools, meta=meta)
    if any(PLACEHOLDER.search(m.content) for m in rendered.messages):
        return Reject(source=meta.source, line=meta.line, stage="render", reason="unrendered_placeholder",
                      message="a placeholder survived rendering", raw=rendered.to_json_dict(),
                      id=meta.id, kind="identity")
    if not rendered.messages[-1].content.strip():
        return Reject(source=meta.source, line=meta.line, stage="render", reason="empty_answer",
                      message="the answer rendered empty", raw=rendered.to_json_dict(), id=meta.id,
                      kind="identity")
    return rendered


def render_identity(rows: list[RawRow], identity: IdentityConfig) -> tuple[list[Record], list[Reject]]:
    """Validate template rows, render each for its language, keep the languages the recipe asks for."""
    records: list[Record] = []
    rejects: list[Reject] = []
    for raw in rows:
        raw = raw.parsed()
        parsed = row_to_record(raw, kind="identity", check_placeholders=False)
        if isinstance(parsed, Reject):
            rejects.append(parsed)
            continue
        try:
            out = render_record(parsed, identity, explicit_needs(raw))
        except RenderError as exc:
            raise RecipeError(str(exc)) from None
        if isinstance(out, Record) and out.meta.lang not in identity.languages:
            out = Reject(source=out.meta.source, line=out.meta.line, stage="render", reason="language_not_wanted",
                         message=f"identity language '{out.meta.lang}' is not in identity.languages",
                         raw=out.to_json_dict(), id=out.meta.id, kind="identity")
        (rejects if isinstance(out, Reject) else records).append(out)
    return records, rejects
