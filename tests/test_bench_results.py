"""Benchmark result files, and docs/benchmarks.md's Latest table generated from them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ikn.benchmarks import results
from ikn.cli import main

ROOT = Path(__file__).resolve().parent.parent
DOC = ROOT / "docs" / "benchmarks.md"
COMMITTED = ROOT / "docs" / "bench-results"


def test_the_latest_table_is_the_committed_result_files() -> None:
    found = results.load(COMMITTED)
    assert {"ingest", "booking", "edge"} <= {r.bench for r in found}
    text = DOC.read_text(encoding="utf-8")
    assert results.rewrite(text, found) == text, "run `ikn bench report` and commit the doc"


def test_results_writes_the_printed_line_with_its_command(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    main(["bench", "attendance-rules", "--people", "30", "--days", "1", "--results", str(tmp_path)])
    printed = json.loads(capsys.readouterr().out)
    written = json.loads((tmp_path / "attendance-rules.json").read_text())
    assert written["figures"] == printed
    assert written["bench"] == "attendance-rules"
    assert written["command"] == "ikn bench attendance-rules --people 30 --days 1"
    assert written["finished"].endswith("Z")


def test_results_takes_a_file_name(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "more" / "rules-small.json"
    main(["bench", "attendance-rules", "--people", "10", "--days", "1", "--results", str(target)])
    capsys.readouterr()
    assert results.load(target.parent)[0].name == "rules-small"


def _result(directory: Path, name: str, figures: dict[str, object]) -> None:
    doc = {"bench": name, "command": f"ikn bench {name}", "finished": "2026-12-07T00:00:00Z"}
    (directory / f"{name}.json").write_text(json.dumps({**doc, "figures": figures}))


def test_report_rewrites_the_table_and_check_fails_when_it_differs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    runs = tmp_path / "runs"
    runs.mkdir()
    _result(runs, "ingest", {"readings_per_s": 151492, "ratio": 0.86, "count_ok": True})
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# B\n\n{results.BEGIN}\nold\n{results.END}\n\nhistory\n")
    report = ["bench", "report", "--results-dir", str(runs), "--doc", str(doc)]
    with pytest.raises(SystemExit) as stale:
        main([*report, "--check"])
    assert stale.value.code == 1
    assert "Latest table" in capsys.readouterr().err
    main(report)
    text = doc.read_text()
    assert "| [ingest](bench-results/ingest.json) | `ikn bench ingest` |" in text
    assert "readings_per_s 151,492, count_ok yes, ratio 0.86 |" in text
    assert text.endswith(f"{results.END}\n\nhistory\n") and "old" not in text
    main([*report, "--check"])
    _result(runs, "ingest", {"readings_per_s": 151493, "ratio": 0.86, "count_ok": True})
    with pytest.raises(SystemExit):
        main([*report, "--check"])


def test_report_names_what_is_missing(tmp_path: Path) -> None:
    (tmp_path / "bad.json").write_text('{"figures": {}}')
    with pytest.raises(results.ReportError, match=r"bad\.json: not a result file"):
        results.load(tmp_path)
    with pytest.raises(results.ReportError, match="needs the lines"):
        results.rewrite("no markers", [])
