"""The report page as a jinja2 template, kept in a module so it ships with the package (no package-data)."""

REPORT_TEMPLATE = r'''<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'; img-src data:">
<title>curatune report – {{ s.bundle.name if s.bundle else "source file" }}</title>
<style>
:root { --ink:#1f2328; --muted:#667080; --line:#e3e6ea; --bg:#f6f7f9; --card:#fff; --warn:#fff4e0; --warnline:#e0a030; --ok:#2f7d4a; --bad:#c0392b; }
* { box-sizing: border-box; }
body { margin:0; background:var(--bg); color:var(--ink); font:14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, "Noto Sans", "Noto Sans CJK SC", sans-serif; }
header { background:#22303f; color:#fff; padding:18px 28px; }
header h1 { margin:0 0 4px; font-size:20px; font-weight:600; }
header .meta { color:#c5d0dc; font-size:12.5px; }
header code { color:#fff; }
main { max-width:1180px; margin:0 auto; padding:18px 28px 40px; }
section { background:var(--card); border:1px solid var(--line); border-radius:8px; padding:14px 18px 16px; margin:14px 0; }
h2 { font-size:16px; margin:0 0 10px; padding-bottom:6px; border-bottom:1px solid var(--line); }
h3 { font-size:13.5px; margin:14px 0 6px; color:#333; }
.cards { display:grid; grid-template-columns:repeat(auto-fill, minmax(130px, 1fr)); gap:10px; }
.card { border:1px solid var(--line); border-radius:6px; padding:8px 10px; background:#fbfcfd; }
.card .label { color:var(--muted); font-size:11.5px; text-transform:uppercase; letter-spacing:.03em; }
.card .value { font-size:20px; font-weight:600; }
table { border-collapse:collapse; font-size:13px; margin:4px 0 8px; }
th, td { padding:4px 10px; border-bottom:1px solid var(--line); text-align:right; vertical-align:top; }
th { background:#f1f3f5; font-weight:600; color:#333; }
td.l, th.l { text-align:left; }
tbody tr:nth-child(even) { background:#fafbfc; }
.warnings { background:var(--warn); border:1px solid var(--warnline); }
.warnings li { margin:3px 0; }
.warnings code { font-size:11.5px; color:#8a5a00; }
.allgood { color:var(--ok); font-weight:600; margin:0; }
.nowarnings { border-left:4px solid var(--ok); }
.bad { color:var(--bad); font-weight:600; }
.good { color:var(--ok); font-weight:600; }
.muted { color:var(--muted); }
.grid2 { display:grid; grid-template-columns:repeat(auto-fit, minmax(500px, 1fr)); gap:8px 18px; }
pre { white-space:pre-wrap; word-break:break-word; background:#f6f8fa; border:1px solid var(--line); border-radius:4px; padding:6px 8px; margin:4px 0; font:12px/1.4 ui-monospace, "DejaVu Sans Mono", Menlo, Consolas, monospace; max-height:220px; overflow:auto; }
.example { border-left:3px solid #c9d3de; padding-left:10px; margin:8px 0 12px; }
.example .head { font-size:12px; color:var(--muted); }
.cluster { display:grid; grid-template-columns:1fr 1fr; gap:12px; border-top:1px solid var(--line); padding-top:8px; margin-top:8px; }
.cluster h4 { margin:0 0 4px; font-size:12.5px; }
.kept pre { border-color:#9fd0ae; background:#f3fbf5; }
.removed pre { border-color:#e7b3ab; background:#fdf5f4; }
footer { color:var(--muted); font-size:12px; text-align:center; padding:10px; }
</style>
</head>
<body>
<header>
  {% if s.bundle %}
  <h1>{{ s.bundle.name }}{% if s.bundle.version %} · {{ s.bundle.version }}{% endif %}</h1>
  <div class="meta">bundle id <code>{{ s.bundle.id[:16] }}</code> · built with curatune {{ s.bundle.curatune_version }} · seed {{ s.bundle.seed }} · manifest schema {{ s.bundle.schema_version }}</div>
  {% else %}
  <h1>Source file report</h1>
  <div class="meta">records as curatune reads them, before filters, dedup and mixing</div>
  {% endif %}
</header>
<main>

<section class="{{ 'warnings' if s.warnings else 'nowarnings' }}" id="warnings">
  <h2>Warnings</h2>
  {% if s.warnings %}
  <ul>
    {% for w in s.warnings %}<li><code>{{ w.code }}</code> {{ w.message }}</li>{% endfor %}
  </ul>
  {% else %}
  <p class="allgood">No warnings.</p>
  {% endif %}
</section>

<section id="overview">
  <h2>Overview</h2>
  <div class="cards">
    {% for key in ["read", "kept", "rejected", "train", "val", "mixed_out", "sampled_out"] if key in s.counts %}
    <div class="card"><div class="label">{{ key | replace("_", " ") }}</div><div class="value">{{ fig("counts", key) }}</div></div>
    {% endfor %}
  </div>
</section>

<section id="identity">
  <h2>Identity coverage</h2>
  {% set ident = s.identity %}
  {% if ident.configured %}
  <p>{{ fig("identity", "records") }} identity records kept ({{ fig("identity", "rendered") }} rendered from {{ fig("identity", "templates") }} templates).
    Empty answers: {{ fig("identity", "empty_answers") }}; answers repeated in more than one record: {{ fig("identity", "repeated_answers", "distinct") }}.</p>
  {% if ident.system %}<p>System prompt: <code>{{ ident.system }}</code></p>{% endif %}
  <table>
    <thead><tr><th class="l">language</th><th>identity records</th><th class="l">name</th><th>records carrying name</th><th>answers stating the name</th><th class="l">author</th><th>records carrying author</th><th>answers stating the author</th></tr></thead>
    <tbody>
    {% for lang in (ident.name.keys() | list + ident.by_language.keys() | list + ident.languages) | unique | sort %}
      {% set row = ident.stating.get(lang) %}
      <tr><td class="l">{{ lang }}</td><td>{{ fig("identity", "by_language", lang) if lang in ident.by_language else "0" }}</td>
        <td class="l">{{ ident.name.get(lang, "—") }}</td><td>{{ fig("identity", "carrying", "name." ~ lang) if ("name." ~ lang) in ident.carrying else "—" }}</td>
        <td>{% if row and row.name is not none %}{{ fig("identity", "stating", lang, "name") }} ({{ pct(row.name, row.records) }}){% else %}—{% endif %}</td>
        <td class="l">{{ ident.author.get(lang, "—") }}</td><td>{{ fig("identity", "carrying", "author." ~ lang) if ("author." ~ lang) in ident.carrying else "—" }}</td>
        <td>{% if row and row.author is not none %}{{ fig("identity", "stating", lang, "author") }} ({{ pct(row.author, row.records) }}){% else %}—{% endif %}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  <p class="muted">"Carrying" counts records holding that exact spelling; "stating" counts the answers of each language that give the name (or author) in any configured spelling.</p>
  <p>By split: {% for split, n in ident.by_split.items() %}{{ split }} {{ fig("identity", "by_split", split) }}{% if not loop.last %}, {% endif %}{% else %}none{% endfor %}.</p>
  {% if ident.name %}
  {% for key, title in [("name_asked_not_stated", "Name questions answered without the name"), ("name_asked_author_only", "Name questions answered with the author but not the name")] %}
  <h3>{{ title }}: {{ fig("identity", key, "records") }}</h3>
  {% if ident[key].examples %}
  <table><thead><tr><th class="l">record</th><th class="l">question</th><th class="l">answer</th></tr></thead><tbody>
  {% for e in ident[key].examples %}<tr><td class="l">{{ e.id }}</td><td class="l">{{ e.question }}</td><td class="l">{{ e.answer }}</td></tr>{% endfor %}
  </tbody></table>
  {% endif %}
  {% endfor %}
  {% endif %}
  {% if ident.repeated_answers.top %}
  <h3>Repeated identity answers</h3>
  <table><thead><tr><th class="l">answer</th><th>records</th></tr></thead><tbody>
  {% for r in ident.repeated_answers.top %}<tr><td class="l">{{ r.answer }}</td><td>{{ fmt(r.records) }}</td></tr>{% endfor %}
  </tbody></table>
  {% endif %}
  {% else %}
  <p class="muted">No identity settings in this {{ "bundle" if s.bundle else "file" }}; {{ fig("identity", "records") }} records are marked as identity.</p>
  {% endif %}
</section>

<section id="ratio">
  <h2>Domain : general ratio</h2>
  <p>Requested <b>{{ s.ratio.requested or "—" }}</b>, achieved
    <b>1:{{ fig("ratio", "achieved_general_per_domain") }}</b>
    ({{ fig("ratio", "domain") }} domain + identity, {{ fig("ratio", "general") }} general) —
    {% if s.ratio.in_band %}<span class="good">inside</span>{% else %}<span class="bad">outside</span>{% endif %}
    the allowed band 1:{{ "%g" | format(s.ratio.band[0]) }} … 1:{{ "%g" | format(s.ratio.band[1]) }}.</p>
  {{ charts.ratio }}
  <p class="muted">General records per domain record; identity records count as domain.</p>
</section>

<section id="records">
  <h2>Records</h2>
  <div class="grid2">
    <div>
      <h3>By kind and split</h3>
      <table>
        <thead><tr><th class="l">kind</th>{% for split in s.records.by_split %}<th>{{ split }}</th>{% endfor %}<th>total</th><th>share</th></tr></thead>
        <tbody>
        {% for kind, per in s.records.by_kind_split.items() %}
          <tr><td class="l">{{ kind }}</td>{% for split in s.records.by_split %}<td>{{ fig("records", "by_kind_split", kind, split) }}</td>{% endfor %}<td>{{ fig("records", "by_kind", kind) }}</td><td>{{ pct(s.records.by_kind[kind], s.records.total) }}</td></tr>
        {% endfor %}
          <tr><th class="l">all</th>{% for split in s.records.by_split %}<th>{{ fig("records", "by_split", split) }}</th>{% endfor %}<th>{{ fig("records", "total") }}</th><th></th></tr>
        </tbody>
      </table>
      <h3>Turns per record (user turns)</h3>
      <p>mean {{ fig("turns", "mean") }}, max {{ fig("turns", "max") }}</p>
      <table>
        <thead><tr><th>turns</th>{% for t, n in s.turns.distribution[:12] %}<th>{{ t }}</th>{% endfor %}{% if s.turns.distribution | length > 12 %}<th>more</th>{% endif %}</tr></thead>
        <tbody><tr><td>records</td>{% for t, n in s.turns.distribution[:12] %}<td>{{ fmt(n) }}</td>{% endfor %}{% if s.turns.distribution | length > 12 %}<td>{{ fmt(s.turns.distribution[12:] | sum(attribute=1)) }}</td>{% endif %}</tr></tbody>
      </table>
    </div>
    <div>
      <h3>Language shares</h3>
      {{ charts.languages }}
      <table>
        <thead><tr><th class="l">language</th><th>records</th></tr></thead>
        <tbody>{% for lang in s.records.by_language %}<tr><td class="l">{{ lang }}</td><td>{{ fig("records", "by_language", lang) }}</td></tr>{% endfor %}</tbody>
      </table>
    </div>
  </div>
  {% if s.sources %}
  <h3>Sources (from the manifest)</h3>
  <table>
    <thead><tr><th class="l">source</th><th class="l">kind</th><th>rows</th><th>sampled out</th><th>rejected</th><th>mixed out</th><th>kept</th><th class="l">note</th></tr></thead>
    <tbody>
    {% for src in s.sources %}
      <tr><td class="l">{{ src.path }}</td><td class="l">{{ src.kind }}</td><td>{{ fig("sources", loop.index0, "rows") }}</td><td>{{ fig("sources", loop.index0, "sampled_out") }}</td><td>{{ fig("sources", loop.index0, "rejected") }}</td><td>{{ fig("sources", loop.index0, "mixed_out") }}</td><td>{{ fig("sources", loop.index0, "kept") }}</td><td class="l muted">{{ src.note or "" }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  {% endif %}
  <h3>Kept records per source (from the split files)</h3>
  <table>
    <thead><tr><th class="l">source</th><th class="l">kinds</th>{% for split in s.records.by_split %}<th>{{ split }}</th>{% endfor %}<th>total</th></tr></thead>
    <tbody>
    {% for name, per in s.records.by_source.items() %}
      <tr><td class="l">{{ name }}</td><td class="l">{{ per.kinds | join(", ") }}</td>{% for split in s.records.by_split %}<td>{{ fig("records", "by_source", name, split) }}</td>{% endfor %}<td>{{ fig("records", "by_source", name, "total") }}</td></tr>
    {% endfor %}
    </tbody>
  </table>
</section>

<section id="lengths">
  <h2>Lengths</h2>
  {% for unit in ["chars", "tokens"] if s.lengths[unit] %}
  <h3>Whole conversation, {{ unit }}{% if unit == "tokens" %} ({{ s.lengths.tokenizer }}){% endif %}</h3>
  <table>
    <thead><tr><th class="l">group</th><th>p0</th><th>p50</th><th>p90</th><th>p99</th><th>max</th></tr></thead>
    <tbody>
      <tr><td class="l"><b>all</b></td>{% for p in ["p0", "p50", "p90", "p99", "max"] %}<td>{{ fig("lengths", unit, "all", p) }}</td>{% endfor %}</tr>
      {% for group in ["by_kind", "by_split"] %}{% for name in s.lengths[unit][group] %}
      <tr><td class="l">{{ group[3:] }} = {{ name }}</td>{% for p in ["p0", "p50", "p90", "p99", "max"] %}<td>{{ fig("lengths", unit, group, name, p) }}</td>{% endfor %}</tr>
      {% endfor %}{% endfor %}
    </tbody>
  </table>
  <div class="grid2">{% for chart in charts.histograms[unit] %}<div>{{ chart }}</div>{% endfor %}</div>
  {% endfor %}
  {% if not s.lengths.chars %}<p class="muted">No records.</p>{% endif %}
</section>

<section id="rejects">
  <h2>Rejects</h2>
  <p>{{ fig("rejects", "total") }} records rejected by the filters{% if s.rejects.mixed_out %}, {{ fig("rejects", "mixed_out") }} left out by the mix to hold the ratio{% endif %}; duplicates removed: {{ fig("duplicates", "exact") }} exact, {{ fig("duplicates", "near") }} near. Every one of them is in rejects.jsonl with its reason.</p>
  <div class="grid2">
    <div>
      <h3>By stage</h3>
      <table>
        <thead><tr><th class="l">stage</th><th>in</th><th>out</th><th>rejected</th><th class="l">reasons</th></tr></thead>
        <tbody>
        {% for stage in s.rejects.stage_order %}
          <tr><td class="l">{{ stage }}</td><td>{{ fig("rejects", "by_stage", stage, "in") }}</td><td>{{ fig("rejects", "by_stage", stage, "out") }}</td><td>{{ fig("rejects", "by_stage", stage, "rejected") }}</td>
            <td class="l">{% for reason in s.rejects.by_stage[stage].reasons %}{{ reason }} {{ fig("rejects", "by_stage", stage, "reasons", reason) }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
        {% endfor %}
        </tbody>
      </table>
    </div>
    <div>
      <h3>By reason (including the mix)</h3>
      {{ charts.reasons }}
    </div>
  </div>
  {% set lang_drops = s.rejects.get("language_by_source") or {} %}
  {% if lang_drops %}
  <h3>Dropped by the language filter, per source</h3>
  <table>
    <thead><tr><th class="l">source</th><th>dropped</th><th class="l">reasons</th><th class="l">languages detected</th></tr></thead>
    <tbody>
    {% for src, d in lang_drops.items() %}
      <tr><td class="l">{{ src }}</td><td>{{ fig("rejects", "language_by_source", src, "rejected") }}</td>
        <td class="l">{% for r, n in d.reasons.items() %}{{ r }} {{ fmt(n) }}{% if not loop.last %}, {% endif %}{% endfor %}</td>
        <td class="l">{% for l, n in d.languages.items() %}{{ l }} {{ fmt(n) }}{% if not loop.last %}, {% endif %}{% endfor %}</td></tr>
    {% endfor %}
    </tbody>
  </table>
  {% for src, items in (ex.get("language_by_source") or {}).items() %}
    <h3>{{ src }} <span class="muted">(first {{ items | length }} of {{ fmt(lang_drops[src].rejected if src in lang_drops else items | length) }} dropped by language)</span></h3>
    {% for e in items %}
    <div class="example">
      <div class="head">{{ e.reason }}{% if e.line %} · line {{ e.line }}{% endif %}{% if e.id %} · id {{ e.id }}{% endif %} — {{ e.message }}</div>
      <pre>{{ e.raw }}</pre>
    </div>
    {% endfor %}
  {% endfor %}
  {% endif %}
  {% if ex.rejects %}
  <h3>Examples (first few per reason, raw as read, truncated)</h3>
  {% for reason, items in ex.rejects.items() %}
    <h3>{{ reason }} <span class="muted">({{ fmt(s.rejects.by_reason.get(reason)) }})</span></h3>
    {% for e in items %}
    <div class="example">
      <div class="head">{{ e.stage }} · {{ e.source }}{% if e.line %}:{{ e.line }}{% endif %}{% if e.id %} · id {{ e.id }}{% endif %} — {{ e.message }}</div>
      <pre>{{ e.raw }}</pre>
    </div>
    {% endfor %}
  {% endfor %}
  {% endif %}
</section>

<section id="near-duplicates">
  <h2>Largest near-duplicate clusters</h2>
  <p>{{ fig("duplicates", "near_clusters") }} kept records have near duplicates removed.</p>
  {% for c in ex.clusters %}
  <div class="cluster">
    <div class="kept"><h4>kept: {{ c.kept.id }}{% if c.kept.split %} ({{ c.kept.split }}){% endif %}</h4><pre>{{ c.kept.text }}</pre></div>
    <div class="removed"><h4>removed: {{ fmt(c.removed_total) }}{% if c.removed_total > c.removed | length %} (showing {{ c.removed | length }}){% endif %}</h4>
      {% for e in c.removed %}<div class="head muted">{{ e.id }}</div><pre>{{ e.raw }}</pre>{% endfor %}
    </div>
  </div>
  {% else %}
  <p class="muted">No near duplicates were removed.</p>
  {% endfor %}
</section>

<section id="repeated">
  <h2>Answers repeated across questions</h2>
  {% if s.repeated_answers %}
  <table><thead><tr><th class="l">answer</th><th>different questions</th><th>records</th></tr></thead><tbody>
  {% for r in s.repeated_answers %}<tr><td class="l">{{ r.answer }}</td><td>{{ fmt(r.questions) }}</td><td>{{ fmt(r.records) }}</td></tr>{% endfor %}
  </tbody></table>
  {% else %}
  <p class="muted">No answer is given to 5 or more different questions.</p>
  {% endif %}
</section>

</main>
<footer>curatune data report · generated from the bundle files alone; figures match manifest.json</footer>
</body>
</html>
'''
