"""Small writers for curate tests: recipes and source files in a temporary folder."""
from __future__ import annotations

import json
from pathlib import Path

import yaml

ZH_TEMPLATES = [
    ("你是谁？", "我是{{ name }}，由{{ author }}开发的智能助手。"),
    ("你叫什么名字？", "我的名字是{{ name }}，很高兴为你服务。"),
    ("谁创造了你？", "{{ author }}创造了我，我是{{ name }}。"),
    ("你能上网吗？", "我是{{ name }}，不能实时访问互联网，只能根据训练时学到的知识回答。"),
]
EN_TEMPLATES = [
    ("Who are you?", "I am {{ name }}, an assistant developed by {{ author }}."),
    ("What is your name?", "My name is {{ name }}. Nice to meet you."),
    ("Who made you?", "I was made by {{ author }}; I am {{ name }}."),
    ("Can you browse the internet?", "I am {{ name }} and I cannot browse the internet in real time."),
]


def write_jsonl(path: Path, rows: list[dict]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def general_rows(lang: str, count: int, start: int = 0) -> list[dict]:
    """Distinct general records whose texts share little, so dedup leaves them alone."""
    rows = []
    for i in range(start, start + count):
        if lang == "zh":
            rows.append({"instruction": f"请计算{i}加上{i * 7 + 3}等于多少，并说明第{i}步的方法。",
                         "input": "", "output": f"{i}加上{i * 7 + 3}等于{i * 8 + 3}。把两个数的个位和十位分别相加即可，编号{i}。"})
        else:
            rows.append({"instruction": f"What is {i} plus {i * 7 + 3}? Explain step number {i}.",
                         "input": "", "output": f"{i} plus {i * 7 + 3} equals {i * 8 + 3}; add the ones, then the tens (case {i})."})
    return rows


def make_project(tmp: Path, *, general_per_lang: int = 20, recipe_extra: dict | None = None,
                 templates: bool = True) -> Path:
    """A recipe with 8 identity templates and 2 x general_per_lang general records; returns the recipe path."""
    write_jsonl(tmp / "identity" / "zh.jsonl", [{"query": q, "response": a, "tag": "zh"} for q, a in ZH_TEMPLATES])
    write_jsonl(tmp / "identity" / "en.jsonl", [{"query": q, "response": a, "tag": "en"} for q, a in EN_TEMPLATES])
    write_jsonl(tmp / "general" / "zh.jsonl", general_rows("zh", general_per_lang))
    write_jsonl(tmp / "general" / "en.jsonl", general_rows("en", general_per_lang))
    recipe = {
        "name": "test-identity",
        "identity": {"name": {"zh": "小格", "en": "Grace"}, "author": {"zh": "唐寅", "en": "Tang Yin"},
                     "templates": ["identity/zh.jsonl", "identity/en.jsonl"]},
        "sources": [{"path": "general/zh.jsonl", "kind": "general", "languages": ["zh"]},
                    {"path": "general/en.jsonl", "kind": "general", "languages": ["en"]}],
        "mix": {"ratio": "1:4"},
        "split": {"val_ratio": 0.2, "seed": 7},
        "output": "bundle",
    }
    if not templates:
        recipe.pop("identity")
    for key, value in (recipe_extra or {}).items():
        recipe[key] = value
    path = tmp / "recipe.yaml"
    path.write_text(yaml.safe_dump(recipe, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]
