"""deploy/: the Grafana dashboard reads only metrics the server exports (and shows all of them),
its queries compute what their titles say, prometheus.yml scrapes /metrics, and the Dockerfile
installs the CPU torch first and serves as a non-root user."""

from __future__ import annotations

import copy
import importlib
import json
import re
import shlex
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from promql import PromQLError, families_in, metric_names, series_of

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
DATASOURCE = "${DS_PROMETHEUS}"

# The contract of GET /metrics (src/ladder/serve/metrics.py): family name -> type.
EXPORTED = {
    "ladder_requests_total": "counter",
    "ladder_request_duration_seconds": "histogram",
    "ladder_queue_duration_seconds": "histogram",
    "ladder_inference_duration_seconds": "histogram",
    "ladder_batch_size": "histogram",
    "ladder_inflight_requests": "gauge",
    "ladder_queue_depth": "gauge",
    "ladder_model_ready": "gauge",
    "ladder_model_load_duration_seconds": "gauge",
    "ladder_rejected_requests_total": "counter",
    "ladder_time_to_first_token_seconds": "histogram",
    "ladder_inter_token_latency_seconds": "histogram",
    "ladder_generated_tokens_total": "counter",
    "ladder_sequences_running": "gauge",
    "ladder_sequences_queued": "gauge",
}
EXPORTED_SERIES = series_of(EXPORTED)
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not on PATH (Debian package: prometheus)"
)


# ---------------------------------------------------------------- the dashboard, read as data


def load_dashboard() -> dict[str, Any]:
    return json.loads((DEPLOY / "grafana" / "ladder.json").read_text())


def panels_of(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """Every panel, including those inside collapsed rows; rows themselves hold no query."""
    found = []
    for panel in dashboard.get("panels", []):
        if panel.get("type") == "row":
            found.extend(panel.get("panels", []))
        else:
            found.append(panel)
    return found


def expressions(dashboard: dict[str, Any]) -> list[tuple[str, str]]:
    """(panel title, PromQL) for every target of every panel."""
    return [
        (panel["title"], target["expr"])
        for panel in panels_of(dashboard)
        for target in panel.get("targets", [])
        if "expr" in target
    ]


def unknown_metrics(dashboard: dict[str, Any], exported: set[str]) -> list[str]:
    """One line per query that reads a series not in `exported`, or reads none at all."""
    problems = []
    for title, expr in expressions(dashboard):
        names = metric_names(expr)
        if not names:
            problems.append(f"{title}: {expr!r} reads no metric")
        elif names - exported:
            problems.append(f"{title}: {sorted(names - exported)} are not exported")
    for variable in dashboard["templating"]["list"]:
        match = re.fullmatch(r"label_values\((\w+),\s*\w+\)", variable.get("definition", ""))
        if match and match.group(1) not in exported:
            problems.append(f"variable {variable['name']}: {match.group(1)} is not exported")
    return problems


def by_title(dashboard: dict[str, Any], title: str) -> list[str]:
    [panel] = [p for p in panels_of(dashboard) if p["title"] == title]
    return [target["expr"] for target in panel["targets"]]


def concrete(expr: str, interval: str = "1m") -> str:
    """The query as Grafana sends it: the model variable at "All" and a fixed rate interval."""
    return expr.replace("$__rate_interval", interval).replace("$model", ".*")


def test_the_dashboard_is_importable_with_a_prometheus_input():
    dashboard = load_dashboard()
    assert dashboard["__inputs"] == [
        {
            "name": "DS_PROMETHEUS",
            "label": "Prometheus",
            "description": dashboard["__inputs"][0]["description"],
            "type": "datasource",
            "pluginId": "prometheus",
            "pluginName": "Prometheus",
        }
    ]
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["uid"] and dashboard["title"] and dashboard["id"] is None


def test_every_panel_has_a_prometheus_target():
    panels = panels_of(load_dashboard())
    assert len(panels) >= 8
    for panel in panels:
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE}, panel["title"]
        targets = panel.get("targets", [])
        assert targets, f"{panel['title']} has no target"
        refs = [target["refId"] for target in targets]
        assert len(set(refs)) == len(refs), panel["title"]
        for target in targets:
            assert target["expr"].strip(), panel["title"]
            assert target["datasource"]["uid"] == DATASOURCE, panel["title"]


def test_panels_have_unique_ids_and_do_not_overlap():
    panels = panels_of(load_dashboard())
    assert len({panel["id"] for panel in panels}) == len(panels)
    cells: dict[tuple[int, int], str] = {}
    for panel in panels:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]
        for x in range(grid["x"], grid["x"] + grid["w"]):
            for y in range(grid["y"], grid["y"] + grid["h"]):
                assert (x, y) not in cells, f"{panel['title']} overlaps {cells[(x, y)]}"
                cells[(x, y)] = panel["title"]


def test_every_query_is_filtered_by_the_model_variable():
    dashboard = load_dashboard()
    [variable] = [v for v in dashboard["templating"]["list"] if v["name"] == "model"]
    assert variable["type"] == "query" and variable["datasource"]["uid"] == DATASOURCE
    assert variable["multi"] and variable["includeAll"] and variable["allValue"] == ".*"
    for title, expr in expressions(dashboard):
        selectors = re.findall(r"\{[^}]*\}", expr)
        assert selectors, title
        assert all('model=~"$model"' in selector for selector in selectors), (title, expr)


def test_the_dashboard_shows_every_exported_family_and_the_latency_quantiles():
    dashboard = load_dashboard()
    read = set().union(*(metric_names(expr) for _, expr in expressions(dashboard)))
    for family, kind in EXPORTED.items():
        assert read & series_of({family: kind}), f"no panel shows {family}"
    latency = " ".join(expr for _, expr in expressions(dashboard))
    for quantile in ("0.5", "0.95", "0.99"):
        pattern = rf"histogram_quantile\({quantile}, .*rate\(ladder_request_duration_seconds_bucket"
        assert re.search(pattern, latency), f"no p{quantile} latency query"
    assert any('code!~"2.."' in expr for expr in by_title(dashboard, "Error rate (non-2xx share)"))
    assert any("by (reason)" in expr for expr in by_title(dashboard, "Rejected requests by reason"))


# ---------------------------------------------------------------- PromQL tokenizer and names


@pytest.mark.parametrize(
    ("expr", "names"),
    [
        ("up", {"up"}),
        (
            'sum by (model, le) (rate(a_bucket{model=~"$model", le!="x"}[$__rate_interval]))',
            {"a_bucket"},
        ),
        ("histogram_quantile(0.95, sum without (instance) (rate(b[5m:30s] offset 1h)))", {"b"}),
        ('label_replace(c, "dst", "$1", "src", "(.*)") + on (job) group_left (x) d', {"c", "d"}),
        ("sum(rate(e[${__rate_interval}])) by (code) / ignoring(code) group_left f", {"e", "f"}),
        (
            "topk(5, g) > bool 1e-3 or vector(0) and h unless Inf # a comment: not_a_metric",
            {"g", "h"},
        ),
        ('count_values("version", i) * 0x1F - .5 @ start() + {__name__="j", k="l"}', {"i", "j"}),
        ("ns:requests:rate5m", {"ns:requests:rate5m"}),
    ],
)
def test_metric_names_keeps_only_metrics(expr, names):
    assert metric_names(expr) == names


@pytest.mark.parametrize(
    ("expr", "message"),
    [
        ("sum(rate(a[5m])", "unclosed '('"),
        ("rate(a[5m]))", "unbalanced ')'"),
        ('a{model="x}', "unterminated string"),
        ("a{model='x'", "unclosed '{'"),
        ("rate(a[5m)]", "unbalanced ')'"),
        ("histogram_quantil(0.9, a)", "unknown PromQL function 'histogram_quantil'"),
        ("a + $", "'$' that starts no Grafana variable"),
    ],
)
def test_metric_names_rejects_broken_expressions(expr, message):
    with pytest.raises(PromQLError, match=re.escape(message)):
        metric_names(expr)


def test_the_dashboard_reads_only_exported_metrics():
    assert unknown_metrics(load_dashboard(), EXPORTED_SERIES) == []


def test_a_misspelt_metric_or_variable_source_is_caught():
    dashboard = load_dashboard()
    broken = copy.deepcopy(dashboard)
    target = panels_of(broken)[0]["targets"][0]
    target["expr"] = target["expr"].replace("ladder_model_ready", "ladder_model_readiness")
    broken["templating"]["list"][0]["definition"] = "label_values(ladder_models, model)"
    problems = unknown_metrics(broken, EXPORTED_SERIES)
    assert len(problems) == 2
    assert "['ladder_model_readiness'] are not exported" in problems[0]
    assert "variable model: ladder_models is not exported" in problems[1]


def test_families_and_series_of_an_exposition():
    text = (
        "# HELP a_total A.\n# TYPE a_total counter\na_total 1.0\n"
        '# TYPE h histogram\nh_bucket{le="+Inf"} 0\n# TYPE a_created gauge\n'
    )
    families = families_in(text)
    assert families == {"a_total": "counter", "h": "histogram", "a_created": "gauge"}
    assert series_of(families) == {"a_total", "h_bucket", "h_sum", "h_count", "a_created"}


def real_exposition() -> str:
    """The text exposition of ladder.serve.metrics, nothing observed yet (skip while absent)."""
    try:
        module = importlib.import_module("ladder.serve.metrics")
    except ModuleNotFoundError as error:
        if error.name in ("ladder.serve", "ladder.serve.metrics"):
            pytest.skip("ladder.serve.metrics does not exist yet")
        raise
    from prometheus_client import REGISTRY, CollectorRegistry, generate_latest

    candidates = []
    factory = getattr(module, "ServeMetrics", None)
    if factory is not None:
        metrics = factory()
        if hasattr(metrics, "add_model"):
            metrics.add_model("probe")  # labelled series exist from here on
        candidates.append(getattr(metrics, "registry", None))
    candidates += [value for value in vars(module).values() if isinstance(value, CollectorRegistry)]
    candidates.append(REGISTRY)
    for registry in candidates:
        if isinstance(registry, CollectorRegistry):
            text = generate_latest(registry).decode()
            if "# TYPE ladder_" in text:
                return text
    pytest.fail("ladder.serve.metrics: found no registry holding ladder_* metrics")


def test_the_dashboard_reads_only_what_the_metrics_module_exports():
    families = families_in(real_exposition())
    missing = {name: kind for name, kind in EXPORTED.items() if families.get(name) != kind}
    assert not missing, f"ladder.serve.metrics lacks (or mistypes) {missing}"
    assert unknown_metrics(load_dashboard(), series_of(families)) == []


@needs_promtool
def test_the_metrics_module_passes_promtool_lint():
    done = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=real_exposition(), capture_output=True, text=True
    )
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_every_dashboard_query_parses_with_promtool(tmp_path):
    rules = [
        {"record": f"dashboard:query{i}", "expr": concrete(expr)}
        for i, (_, expr) in enumerate(expressions(load_dashboard()))
    ]
    path = tmp_path / "rules.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    done = subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"SUCCESS: {len(rules)} rules found" in done.stdout


def _series(name: str, labels: dict[str, str], per_step: float) -> dict[str, str]:
    """An input series for `promtool test rules`: a counter growing by `per_step` every 15 s."""
    selector = ", ".join(f'{key}="{value}"' for key, value in labels.items())
    return {"series": f"{name}{{{selector}}}", "values": f"0+{per_step}x40"}


@needs_promtool
def test_the_dashboard_queries_compute_what_their_titles_say(tmp_path):
    """Model a: 3 ok and 1 failed request per second; model b: 1 ok, none failed; a's
    latencies all in the (0.25, 0.5] bucket; b's batches hold 4 rows each."""
    dashboard = load_dashboard()
    [error_share] = by_title(dashboard, "Error rate (non-2xx share)")
    [request_rate] = by_title(dashboard, "Request rate")
    p50 = by_title(dashboard, "Request latency")[0]
    mean_batch = by_title(dashboard, "Batch size (mean, p95)")[0]
    requests = "ladder_requests_total"
    series = [
        _series(requests, {"model": "a", "protocol": "rest", "code": "200"}, 45),
        _series(requests, {"model": "a", "protocol": "rest", "code": "503"}, 15),
        _series(requests, {"model": "b", "protocol": "grpc", "code": "200"}, 15),
        _series("ladder_batch_size_sum", {"model": "b"}, 60),
        _series("ladder_batch_size_count", {"model": "b"}, 15),
    ]
    for le, per_step in (("0.25", 0), ("0.5", 60), ("+Inf", 60)):
        labels = {"model": "a", "protocol": "rest", "le": le}
        series.append(_series("ladder_request_duration_seconds_bucket", labels, per_step))

    def expect(expr: str, samples: list[tuple[str, float]]) -> dict[str, Any]:
        return {
            "expr": concrete(expr),
            "eval_time": "5m",
            "exp_samples": [{"labels": labels, "value": value} for labels, value in samples],
        }

    case = {
        "interval": "15s",
        "input_series": series,
        "promql_expr_test": [
            expect(error_share, [('{model="a"}', 0.25), ('{model="b"}', 0.0)]),
            expect(
                request_rate,
                [('{model="a", protocol="rest"}', 4.0), ('{model="b", protocol="grpc"}', 1.0)],
            ),
            expect(p50, [('{model="a"}', 0.375)]),
            expect(mean_batch, [('{model="b"}', 4.0)]),
        ],
    }
    path = tmp_path / "dashboard_test.yml"
    path.write_text(yaml.safe_dump({"rule_files": [], "tests": [case]}))
    done = subprocess.run([PROMTOOL, "test", "rules", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


# ---------------------------------------------------------------- prometheus.yml


def test_prometheus_scrapes_ladder_metrics_every_5_seconds():
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    [job] = [job for job in config["scrape_configs"] if job["job_name"] == "ladder"]
    assert job["scrape_interval"] == "5s"
    assert job.get("metrics_path", "/metrics") == "/metrics"
    targets = [target for group in job["static_configs"] for target in group["targets"]]
    assert targets == ["localhost:8000"]


@needs_promtool
def test_promtool_accepts_the_prometheus_config():
    path = DEPLOY / "prometheus.yml"
    done = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


@needs_promtool
def test_promtool_rejects_a_broken_config(tmp_path):
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["scrape_configs"][0]["scrape_timeout"] = "10s"  # longer than the 5 s interval
    path = tmp_path / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    done = subprocess.run([PROMTOOL, "check", "config", str(path)], capture_output=True, text=True)
    assert done.returncode != 0
    assert "scrape timeout greater than scrape interval" in done.stdout + done.stderr


# ---------------------------------------------------------------- Dockerfile


def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) per Dockerfile instruction, continuation lines joined."""
    joined = re.sub(r"\\\n", " ", text)
    found = []
    for line in joined.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            found.append((keyword.upper(), " ".join(rest.split())))
    return found


def command_words(arguments: str) -> list[str]:
    """The words of an exec-form (JSON) or shell-form ENTRYPOINT/CMD."""
    return json.loads(arguments) if arguments.startswith("[") else shlex.split(arguments)


def dockerfile_problems(text: str) -> list[str]:
    """What the Dockerfile gets wrong, one line each (empty when it is right)."""
    steps = instructions(text)
    keywords = [keyword for keyword, _ in steps]
    problems = []
    if not steps or steps[0][0] != "FROM" or not re.fullmatch(r"python:3\.\d+-slim", steps[0][1]):
        problems.append("the first instruction must be FROM python:3.X-slim")
    runs = [(i, args) for i, (keyword, args) in enumerate(steps) if keyword == "RUN"]
    torch = (
        "pip install --no-cache-dir torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"
    )
    torch_at = [i for i, args in runs if torch in args]
    package_at = [i for i, args in runs if re.search(r"pip install --no-cache-dir \.(\s|$)", args)]
    if not torch_at or not package_at or torch_at[0] > package_at[0]:
        problems.append("torch==2.13.0 (CPU index) must be installed before `pip install .`")
    users = [args for keyword, args in steps if keyword == "USER"]
    if not users or users[-1].split(":")[0] in ("root", "0"):
        problems.append("the image must end as a non-root USER")
    elif package_at and keywords.index("USER") < package_at[-1]:
        problems.append("USER must come after the installs")
    exposed = {port for keyword, args in steps if keyword == "EXPOSE" for port in args.split()}
    if not {"8000", "8001"} <= exposed:
        problems.append("EXPOSE 8000 8001")
    command = [
        word
        for keyword, args in steps
        if keyword in ("ENTRYPOINT", "CMD")
        for word in command_words(args)
    ]
    serve = " ".join(command)
    if not serve.startswith("ladder serve") or "--host 0.0.0.0" not in serve:
        problems.append("ENTRYPOINT/CMD must run `ladder serve ... --host 0.0.0.0`")
    if "/models" not in serve:
        problems.append("the served artifacts must come from /models")
    checks = [args for keyword, args in steps if keyword == "HEALTHCHECK"]
    if not checks or "/v2/health/ready" not in checks[-1]:
        problems.append("HEALTHCHECK must probe /v2/health/ready")
    return problems


def test_the_dockerfile_installs_cpu_torch_first_and_serves_as_non_root():
    assert dockerfile_problems((DEPLOY / "Dockerfile").read_text()) == []


@pytest.mark.parametrize(
    ("old", "new", "problem"),
    [
        ("FROM python:3.11-slim", "FROM python:3.11", "FROM python:3.X-slim"),
        ("USER ladder", "USER root", "non-root USER"),
        ("EXPOSE 8000 8001", "EXPOSE 8000", "EXPOSE 8000 8001"),
        ('"--host", "0.0.0.0", ', "", "--host 0.0.0.0"),
        ("/v2/health/ready", "/v2/health/live", "/v2/health/ready"),
        ("--index-url https://download.pytorch.org/whl/cpu", "", "before `pip install .`"),
    ],
)
def test_the_dockerfile_check_catches_mistakes(old, new, problem):
    text = (DEPLOY / "Dockerfile").read_text()
    assert old in text
    problems = dockerfile_problems(text.replace(old, new))
    assert len(problems) == 1 and problem in problems[0], problems


def test_the_dockerfile_copies_what_the_build_needs_and_pins_the_makefiles_torch():
    steps = instructions((DEPLOY / "Dockerfile").read_text())
    copied = {word for keyword, args in steps if keyword == "COPY" for word in args.split()[:-1]}
    pyproject = (ROOT / "pyproject.toml").read_text()
    readme = re.search(r'^readme = "(.+)"', pyproject, re.MULTILINE)
    assert {"pyproject.toml", "src"} <= copied
    assert readme is None or readme.group(1) in copied  # setuptools reads it to build
    pin = re.search(r"^TORCH\s*:?=\s*(\S+)", (ROOT / "Makefile").read_text(), re.MULTILINE)
    assert pin is None or pin.group(1) == "torch==2.13.0"
