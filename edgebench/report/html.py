"""The report page: one static HTML file beside its PNG figures, rendered with Jinja2.

No stylesheet, font or script is fetched from anywhere: the directory can be opened from disk,
attached to a CI job or copied to a web server as it is. The one inline script only annotates
each image with ``data-loaded`` (for automated checks); the page works without it.
"""

from __future__ import annotations

import math
from datetime import datetime, timezone
from pathlib import Path

from jinja2 import Environment, StrictUndefined

import edgebench
from edgebench.report.build import ReportData
from edgebench.results.intervals import p50_interval

INDEX = "index.html"

_TEMPLATE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>edgebench report: run {{ data.run.id }}</title>
<style>
  body { font: 14px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; color: #1f2937; margin: 0;
         background: #f9fafb; }
  header { background: #111827; color: #f9fafb; padding: 20px 32px; }
  header h1 { margin: 0 0 4px; font-size: 22px; }
  header p { margin: 0; color: #d1d5db; }
  nav { background: #1f2937; padding: 8px 32px; position: sticky; top: 0; z-index: 1; }
  nav a { color: #e5e7eb; margin-right: 18px; text-decoration: none; font-size: 13px; }
  nav a:hover { text-decoration: underline; }
  main { max-width: 1320px; margin: 0 auto; padding: 8px 32px 40px; }
  section { background: #fff; border: 1px solid #e5e7eb; border-radius: 8px; padding: 8px 20px 16px;
            margin: 18px 0; }
  h2 { font-size: 18px; margin: 12px 0 6px; }
  .caption, .muted { color: #6b7280; font-size: 13px; }
  .cards { display: flex; gap: 12px; flex-wrap: wrap; margin: 10px 0; }
  .card { border: 1px solid #e5e7eb; border-radius: 8px; padding: 10px 16px; min-width: 140px; background: #f9fafb; }
  .card b { display: block; font-size: 24px; }
  .card.bad { border-color: #fca5a5; background: #fef2f2; }
  .card.caution { border-color: #fcd34d; background: #fffbeb; }
  .card.good { border-color: #86efac; background: #f0fdf4; }
  .alert { border-left: 4px solid #dc2626; background: #fef2f2; padding: 8px 12px; margin: 8px 0; }
  .alert.caution { border-color: #d97706; background: #fffbeb; }
  figure { margin: 12px 0; }
  figure img { max-width: 100%; height: auto; border: 1px solid #f3f4f6; }
  figcaption { color: #6b7280; font-size: 13px; }
  .table-wrap { overflow-x: auto; }
  table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
  th, td { padding: 4px 8px; border-bottom: 1px solid #e5e7eb; text-align: left; vertical-align: top; }
  th { background: #f3f4f6; position: sticky; top: 0; }
  td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
  td.nowrap { white-space: nowrap; }
  td.notes { min-width: 260px; }
  table.records tr.has-details td { border-bottom: none; }
  table.records tr.details td { padding-top: 0; }
  tr.warned td { background: #fffbeb; }
  tr.failed td { background: #fef2f2; }
  .warn { color: #b45309; font-weight: 600; white-space: nowrap; }
  .bad { color: #dc2626; font-weight: 600; }
  .good { color: #15803d; font-weight: 600; }
  ul.notes { margin: 0; padding-left: 16px; color: #92400e; }
  ul.notes li.error { color: #b91c1c; }
  table.env td:first-child { color: #6b7280; white-space: nowrap; }
  code { font-size: 12px; }
</style>
</head>
<body>
<header>
  <h1>edgebench report: run {{ data.run.id }}</h1>
  <p>{{ data.run.started_at[:19] | replace("T", " ") }} UTC on {{ values(data.rows, "board") }}
     &middot; {{ values(data.rows, "target") }} / {{ values(data.rows, "mode") }}
     {% if data.scope %}&middot; only the records of {{ data.scope }}{% endif %}
     {% if data.run.git_commit %}&middot; git {{ data.run.git_commit[:12] }}{% endif %}
     &middot; {{ data.run.status }}</p>
</header>
<nav>
  <a href="#summary">Summary</a><a href="#latency">Latency</a>
  {% if data.figures.resolution %}<a href="#resolution">Resolution</a>{% endif %}<a href="#speedup">Speedup</a>
  <a href="#energy">Power &amp; energy</a><a href="#history">History</a>
  {% if data.calibration.history.checks %}<a href="#calibration">A/A calibration</a>{% endif %}<a href="#records">Records</a>
  <a href="#environment">Environment</a>
</nav>
<main>

<section id="summary">
  <h2>Summary</h2>
  <div class="cards">
    <div class="card"><b>{{ data.rows | length }}</b>records</div>
    <div class="card {{ 'bad' if data.failed else 'good' }}"><b>{{ data.failed | length }}</b>failed</div>
    <div class="card {{ 'caution' if data.warned else 'good' }}"><b>{{ data.warned | length }}</b>with warnings</div>
    <div class="card {{ 'bad' if data.count('regression') else 'good' }}"><b>{{ data.count('regression') }}</b>regressions</div>
    <div class="card {{ 'good' if data.count('improvement') else '' }}"><b>{{ data.count('improvement') }}</b>improvements</div>
    <div class="card"><b>{{ data.count('new') }}</b>new keys</div>
  </div>
  <p class="caption">Regressions and improvements: each key's p50 against the previous run that measured it,
    judged as <code>edgebench regress</code> judges (beyond {{ pct0(data.threshold) }} and significant at alpha 0.01,
    run-to-run noise from up to 10 earlier runs).</p>
  {% for row in data.rows if row.step and row.step.outcome == "regression" %}
  <div class="alert">Regression: <b>{{ row.label }}</b>: {{ row.step.verdict.reason }}</div>
  {% endfor %}
  {% for row in data.failed %}
  <div class="alert">Failed: <b>{{ row.label }}</b>: {{ row.record.status }}{% if row.record.error %}: {{ row.record.error }}{% endif %}</div>
  {% endfor %}
  {% if data.warned %}
  <div class="alert caution"><span class="warn">&#9888;</span> {{ data.warned | length }} record(s) carry warnings:
    their numbers are shown with &#9888; and may not hold; the <a href="#records">records table</a> says why.</div>
  {% endif %}
</section>

<section id="latency">
  <h2>Latency distributions</h2>
  <p class="caption">Raw samples of each record, in milliseconds per call of one batch. Violins: the density
    between p0.5 and p99.5; boxes: the quartiles, with the median (its value beside it); whiskers: p1 and p99.
    &#9888; marks a record with warnings.</p>
  {% for figure in data.figures.latency %}
  <figure><img src="{{ figure.file }}" alt="{{ figure.title }}: latency distributions">
    {% if figure.note %}<figcaption>{{ figure.note }} See the <a href="#records">records</a>.</figcaption>{% endif %}</figure>
  {% else %}
  <p class="muted">No measured record has samples.</p>
  {% endfor %}
</section>

{% if data.figures.resolution %}
<section id="resolution">
  <h2>Latency and frames per second against input shape</h2>
  <p class="caption">Each series (a model and batch on one backend, precision, target, mode and device) at every
    input shape this run measured it at: p50 per call with its 95% interval (left) and frames per second,
    batch x 1000 / p50 (right). The x axis is the elements per item on a log scale, ticked with the input shape
    after the batch dim. <code>edgebench compare --resolution</code> gives the same as a table.</p>
  {% for figure in data.figures.resolution %}
  <figure><img src="{{ figure.file }}" alt="{{ figure.title }}">
    {% if figure.note %}<figcaption>{{ figure.note }} See the <a href="#records">records</a>.</figcaption>{% endif %}</figure>
  {% endfor %}
</section>
{% endif %}

<section id="speedup">
  <h2>Speedup{% if data.baseline_backend %} over {{ data.baseline_backend }}{% endif %}</h2>
  {% if data.pairs %}
  <p class="caption">Speedup = p50 of {{ data.baseline_backend }} / p50 of the row's backend, paired on the rest
    of the key (model, input shape, batch, precision, mode, device), with a 95% interval that counts the variation
    between each record's worker processes (as <code>edgebench compare</code>); a note says when a record is one
    process, whose interval covers sample noise only.</p>
  {% for figure in data.figures.speedup %}
  <figure><img src="{{ figure.file }}" alt="{{ figure.title }}"></figure>
  {% endfor %}
  <div class="table-wrap"><table>
    <tr><th>key</th><th>{{ data.baseline_backend }} p50 ms</th><th>p50 ms</th><th>speedup</th><th>95% interval</th>
        <th>energy ratio</th><th>notes and warnings</th></tr>
    {% for pair in data.pairs %}
    {% set flagged = pair.baseline.warnings or pair.contender.warnings or pair.notes %}
    <tr class="{{ 'warned' if flagged }}">
      <td>{{ label(pair.contender) }}</td>
      <td class="num">{{ ms(pair.baseline.latency_ms.p50) }}</td>
      <td class="num">{{ ms(pair.contender.latency_ms.p50) }}</td>
      <td class="num">{% if flagged %}<span class="warn">&#9888;</span> {% endif %}{{ ratio(pair.speedup) }}</td>
      <td class="num">[{{ "%.2f" | format(pair.speedup_ci[0]) }}, {{ "%.2f" | format(pair.speedup_ci[1]) }}]</td>
      <td class="num">{{ ratio(pair.energy_ratio) if pair.energy_ratio is not none else "-" }}</td>
      <td class="notes"><ul class="notes">
        {% for note in pair.notes %}<li>{{ note }}</li>{% endfor %}
        {% for warning in pair.baseline.warnings %}<li>{{ data.baseline_backend }}: {{ warning }}</li>{% endfor %}
        {% for warning in pair.contender.warnings %}<li>{{ pair.contender.backend }}: {{ warning }}</li>{% endfor %}
      </ul></td>
    </tr>
    {% endfor %}
  </table></div>
  {% if data.unpaired %}
  <details><summary class="muted">{{ data.unpaired | length }} record(s) without a partner</summary>
    <ul>{% for item in data.unpaired %}<li>{{ label(item.record) }} ({{ item.side }}): {{ item.reason }}</li>{% endfor %}</ul>
  </details>
  {% endif %}
  {% else %}
  <p class="muted">Nothing to compare: fewer than two backends measured in this run, or no records pair up.</p>
  {% endif %}
</section>

<section id="energy">
  <h2>Power and energy per mode</h2>
  {% if data.energy_rows %}
  <p class="caption">Average power over the timed loop (including idle) and energy per call of one batch,
    from the board's power source; one marker per power mode.</p>
  {% for figure in data.figures.energy %}
  <figure><img src="{{ figure.file }}" alt="{{ figure.title }}"></figure>
  {% endfor %}
  <div class="table-wrap"><table>
    <tr><th>key</th><th>mode</th><th>avg W</th><th>idle W</th><th>mJ per call</th><th>dynamic mJ</th>
        <th>source (readings)</th><th>warnings</th></tr>
    {% for row in data.energy_rows %}{% set energy = row.record.energy %}
    <tr class="{{ 'warned' if row.record.warnings }}">
      <td>{{ label(row.record, without=["mode"]) }}</td><td>{{ row.record.mode }}</td>
      <td class="num">{{ number(energy.get("avg_power_w")) }}</td><td class="num">{{ number(energy.get("idle_power_w")) }}</td>
      <td class="num">{% if row.record.warnings %}<span class="warn">&#9888;</span> {% endif %}{{ number(energy.get("mj_per_inference")) }}</td>
      <td class="num">{{ number(energy.get("dynamic_mj_per_inference")) }}</td>
      <td>{{ energy.get("source", "-") }} ({{ energy.get("samples", "-") }})</td>
      <td class="notes"><ul class="notes">{% for warning in row.record.warnings %}<li>{{ warning }}</li>{% endfor %}</ul></td>
    </tr>
    {% endfor %}
  </table></div>
  {% else %}
  <p class="muted">No record of this run measured energy (no readable power source, or <code>--no-power</code>).</p>
  {% endif %}
</section>

<section id="history">
  <h2>p50 history</h2>
  {% if data.figures.history %}
  <p class="caption">Each key's p50 in the last {{ data.history_runs }} runs that measured it; the shaded column is
    this run. A red triangle up marks a regression, a green triangle down an improvement, each against the
    run before. A purple star marks a change point, the first run of a new level found across the key's whole
    history (E-divisive with a t-test, p &le; 0.001, as <code>edgebench regress</code> reports them); a dotted
    line marks an environment change between two runs. The note under a figure says what changed.</p>
  {% for figure in data.figures.history %}
  <figure><img src="{{ figure.file }}" alt="{{ figure.title }}">
    {% if figure.note %}<figcaption>{{ figure.note }}</figcaption>{% endif %}</figure>
  {% endfor %}
  {% else %}
  <p class="muted">No earlier run measured these keys: the history starts with the next run.</p>
  {% endif %}
</section>

{% set aa = data.calibration %}
{% if aa.history.checks %}
<section id="calibration">
  <h2>A/A calibration</h2>
  <p class="caption">Keys measured paired against themselves by <code>edgebench regress --confirm</code>
    (<code>--aa-share</code>, a suite's <code>aa_share</code>): tonight's kept file as both sides, judged by the
    confirmation's own rule. Nothing changed, so each one called a regression is a false positive of that rule;
    these never fail the build. Rates with their 95% Clopper-Pearson interval.</p>
  <div class="cards">
    <div class="card {{ 'bad' if aa.tonight.regressions else '' }}"><b>{{ aa.tonight.regressions }} / {{ aa.tonight.checks }}</b>this run's checks called regression</div>
    <div class="card {{ 'bad' if aa.history.regressions else 'good' }}"><b>{{ pct1(aa.history.rate) }}</b>{{ aa.history.regressions }} of {{ aa.history.checks }} checks
      {% if aa.suite %}of suite {{ aa.suite }}{% else %}in the store{% endif %},
      [{{ pct1(aa.history.interval[0]) }}, {{ pct1(aa.history.interval[1]) }}]</div>
  </div>
  {% if aa.checks %}
  <div class="table-wrap"><table>
    <tr><th>key</th><th>A/A verdict</th><th>ratio</th><th>95% interval</th><th>p</th><th>confirmation run</th></tr>
    {% for check in aa.checks %}{% set look = check.look %}
    <tr><td>{{ label(check.record) }}</td>
      <td class="{{ 'bad' if look.outcome == 'regression' }}">{{ look.outcome }}</td>
      <td class="num">{{ "%.3f" | format(look.ratio.ratio) }}</td>
      <td class="num">[{{ "%.3f" | format(look.ratio.ci95[0]) }}, {{ "%.3f" | format(look.ratio.ci95[1]) }}]</td>
      <td class="num">{{ "%.2g" | format(look.p_value) }}</td><td>{{ check.record.run_id }}</td></tr>
    {% endfor %}
  </table></div>
  {% else %}
  <p class="muted">No A/A check was made of this run.</p>
  {% endif %}
</section>
{% endif %}

<section id="records">
  <h2>Records</h2>
  <p class="caption">Every record of the run: p50 with its 95% interval (worker processes counted; "samples" marks
    a record of one process, whose interval covers sample noise only), items/s at the p50, the speedup over
    the baseline backend and the verdict against the previous run. &#9888; marks numbers that come with warnings,
    listed under them with errors and the reasons for a verdict.</p>
  <div class="table-wrap"><table class="records">
    <tr><th>record</th><th>status</th><th>p50 ms</th><th>95% interval</th><th>p99 ms</th><th>items/s</th>
        <th>speedup</th><th>mJ per call</th><th>vs previous run</th></tr>
    {% for row in data.rows %}{% set r = row.record %}{% set step = row.step %}
    {% set kind = 'failed' if r.status != 'ok' else ('warned' if r.warnings else '') %}
    {% set explained = step and step.verdict and step.outcome != "unchanged" %}
    <tr class="{{ kind }}{{ ' has-details' if r.error or r.warnings or explained }}">
      <td>{{ row.label }}</td>
      <td class="{{ 'bad' if r.status != 'ok' }}">{{ r.status }}</td>
      {% if r.latency_ms %}
      <td class="num">{% if r.warnings %}<span class="warn" title="{{ r.warnings | length }} warning(s)">&#9888;</span> {% endif %}{{ ms(r.latency_ms.p50) }}</td>
      {% set ci = interval(r) %}
      <td class="num">[{{ ms(ci.low) }}, {{ ms(ci.high) }}]{% if ci.level == "samples" %} samples{% endif %}</td>
      <td class="num">{{ ms(r.latency_ms.p99) }}</td>
      {% else %}<td class="num">-</td><td class="num">-</td><td class="num">-</td>{% endif %}
      <td class="num">{{ number(r.throughput_ips) }}</td>
      <td class="num">{% if row.pair %}{{ ratio(row.pair.speedup) }}{% elif r.backend == data.baseline_backend %}baseline{% else %}-{% endif %}</td>
      <td class="num">{{ number((r.energy or {}).get("mj_per_inference")) }}</td>
      <td class="nowrap">{% if step %}
        <span class="{{ {'regression': 'bad', 'improvement': 'good'}.get(step.outcome, '') }}">{{ step.outcome }}</span>
        {% if step.previous %}<span class="muted">{{ pct(step.change) }}</span>{% endif %}
      {% else %}-{% endif %}</td>
    </tr>
    {% if r.error or r.warnings or explained %}
    <tr class="{{ kind }} details"><td colspan="9"><ul class="notes">
      {% if r.error %}<li class="error">{{ r.error }}</li>{% endif %}
      {% for warning in r.warnings %}<li>&#9888; {{ warning }}</li>{% endfor %}
      {% if explained %}<li class="{{ 'error' if step.outcome == 'regression' }}">{{ step.outcome }}: {{ step.verdict.reason }}</li>{% endif %}
    </ul></td></tr>
    {% endif %}
    {% endfor %}
  </table></div>
</section>

<section id="environment">
  <h2>Environment</h2>
  <div class="table-wrap"><table class="env">
    {% for name, value in data.environment %}<tr><td>{{ name }}</td><td>{{ value }}</td></tr>{% endfor %}
  </table></div>
</section>

<p class="muted">Made by edgebench {{ version }} at {{ generated }} UTC.</p>
</main>
<script>
  // For automated checks only: mark each image as loaded or not. The page works without this.
  addEventListener("load", () => {
    for (const img of document.images) img.dataset.loaded = String(img.complete && img.naturalWidth > 0);
  });
</script>
</body>
</html>
"""


def write_page(data: ReportData, out_dir: Path) -> Path:
    """Render ``index.html`` into ``out_dir`` (beside the figures ``build`` drew) and return its path."""
    environment = Environment(autoescape=True, undefined=StrictUndefined, trim_blocks=True, lstrip_blocks=True)
    page = environment.from_string(_TEMPLATE).render(
        data=data,
        label=data.label,
        values=lambda rows, name: " | ".join(dict.fromkeys(str(getattr(row.record, name) or "-") for row in rows)),
        ms=_milliseconds,
        interval=p50_interval,
        number=lambda value: "-" if value is None else f"{value:.3g}" if abs(value) < 100 else f"{value:.0f}",
        ratio=lambda value: f"{value:.2f}x",
        pct=lambda value: f"{value:+.1%}",
        pct0=lambda value: f"{value:.0%}",
        pct1=lambda value: f"{value:.1%}",
        version=edgebench.__version__,
        generated=datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M"),
    )
    path = out_dir / INDEX
    path.write_text(page, encoding="utf-8")
    return path


def _milliseconds(value: float) -> str:
    """Four significant digits, trailing zeros kept so a column of figures lines up: 14.10, 1.410, 1234."""
    decimals = max(0, 3 - math.floor(math.log10(abs(value)))) if value else 3
    return f"{value:.{decimals}f}"
