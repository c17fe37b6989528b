"""Identity templates -> rendered self-cognition records, in a jinja2 sandbox with strict undefined.

Public self-cognition files spell their placeholders three ways ({{NAME}} with a zh/en tag,
{{name}}, <NAME>); all are rewritten to `{{ name }}` / `{{ author }}` before rendering, so a
user can list any of them under `identity.templates`.

Templates come from whoever wrote the recipe, so rendering one is bounded: wall time, output
length, the size of every value a template builds, loop iterations and call depth (see curate.template_limits).
A template over a limit rejects its own record (reason `template_limit`); the build goes on. A
template that does not parse or names an unknown variable stops the build, naming its line.
"""
from __future__ import annotations

import re

from pydantic import ValidationError

from curate.raw_row import RawRow
from curate.shapes import PLACEHOLDER, _reason_for, row_to_record
from curate.template_limits import LIMITS, Budget, TemplateLimitError
from curate.template_sandbox import RenderError, render_source
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


def render_text(template: str, values: dict[str, str], where: str, budget: Budget | None = None) -> str:
    """One template text, its placeholders converted, rendered within `budget` (a fresh one if not
    given); raises TemplateLimitError or RenderError as curate.template_sandbox.render_source does."""
    budget = budget or Budget(LIMITS)
    return render_source(to_jinja(template), values, where, budget)


_NEEDS = ("name", "author")


def explicit_needs(raw: RawRow) -> list[str] | None:
    """A template's optional `needs` field: what a correct answer must state ("name", "author", both, or
    [] for a question that asks neither, such as "Can you write code?"), where the placeholders its
    answer holds do not say it."""
    needs = raw.row.get("needs") if isinstance(raw.row, dict) else None
    if needs is None:
        return None
    items = [p.strip() for p in needs.split(",") if p.strip()] if isinstance(needs, str) else needs
    if not isinstance(items, list) or any(item not in _NEEDS for item in items):
        raise RecipeError(f"{raw.file}:{raw.line}: field 'needs': want 'name', 'author' or both (a list or "
                          f"'name,author'), got {needs!r}")
    return sorted(set(items), key=_NEEDS.index)


def render_record(template: Record, identity: IdentityConfig, needs: list[str] | None = None) -> Record | Reject:
    """One template record with name and author filled in for its language, or the Reject saying
    why not: a limit, an empty question or answer, a placeholder left over."""
    lang = template.meta.lang or guess_lang(template)
    meta = template.meta.model_copy(update={"lang": lang, "kind": "identity", "needs": needs})
    where = f"{template.meta.source}:{template.meta.line}"
    values = {"name": getattr(identity.name, lang), "author": getattr(identity.author, lang)}

    def reject(reason: str, message: str, raw: dict) -> Reject:
        return Reject(source=meta.source, line=meta.line, index=meta.index, stage="render", reason=reason,
                      message=message, raw=raw, id=meta.id, kind="identity")

    budget = Budget(LIMITS)
    try:
        messages = [Message(role=m.role, content=render_text(m.content, values, where, budget),
                            tool_calls=m.tool_calls)
                    for m in template.messages]
    except TemplateLimitError as exc:
        return reject("template_limit", f"template over a render limit: {exc}", template.to_json_dict())
    if identity.system and messages[0].role != "system":
        messages.insert(0, Message(role="system", content=identity.system))
    drafted = Record.model_construct(messages=messages, tools=template.tools, meta=meta).to_json_dict()
    if any(m.role == "user" and not m.content.strip() for m in messages):
        return reject("empty_question", "the question rendered empty", drafted)
    if not messages[-1].content.strip() and not messages[-1].tool_calls:
        return reject("empty_answer", "the answer rendered empty", drafted)
    try:
        rendered = Record(messages=messages, tools=template.tools, meta=meta)
    except ValidationError as exc:
        return reject(*_reason_for(exc), drafted)
    if any(PLACEHOLDER.search(m.content) for m in rendered.messages):
        return reject("unrendered_placeholder", "a placeholder survived rendering", rendered.to_json_dict())
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
            out = Reject(source=out.meta.source, line=out.meta.line, index=out.meta.index, stage="render",
                         reason="language_not_wanted",
                         message=f"identity language '{out.meta.lang}' is not in identity.languages",
                         raw=out.to_json_dict(), id=out.meta.id, kind="identity")
        (rejects if isinstance(out, Reject) else records).append(out)
    return records, rejects
