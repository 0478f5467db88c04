"""``run_demo`` end to end on a tiny configuration: files written, metrics complete and consistent."""

from __future__ import annotations

import json
from dataclasses import asdict, replace

import pytest
import torch

from flash_semicrf.cli import main
from flash_semicrf.demo import DemoConfig, format_report, run_demo
from flash_semicrf.demo.data import LONGEST_REGION
from flash_semicrf.demo.run import _batches, _example_index, _gold

METRIC_KEYS = {
    "boundary_precision",
    "boundary_recall",
    "boundary_f1",
    "segment_accuracy",
    "position_accuracy",
    "train_seconds",
}


def _tiny(tmp_path, **changes) -> DemoConfig:
    cfg = DemoConfig(
        train_size=6,
        test_size=5,
        seq_len=90,
        epochs=1,
        batch_size=4,
        hidden=8,
        out=str(tmp_path / "out"),
        progress=False,
    )
    return replace(cfg, **changes)


def test_defaults_cover_every_region() -> None:
    cfg = DemoConfig()
    assert cfg.max_duration == LONGEST_REGION and cfg.device == "auto"


def test_run_demo_writes_figure_and_metrics(tmp_path) -> None:
    cfg = _tiny(tmp_path)
    threads = torch.get_num_threads()
    result = run_demo(cfg)
    assert torch.get_num_threads() == threads  # restored after the CPU run

    png = tmp_path / "out" / "demo.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved == json.loads(json.dumps(result))
    assert saved["config"] == asdict(cfg)
    # device "auto": the GPU where there is one (the GPU script runs this file there too).
    assert saved["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    for model in ("semi_crf", "softmax"):
        assert set(saved[model]) == METRIC_KEYS
        for key in METRIC_KEYS - {"train_seconds"}:
            assert 0.0 <= saved[model][key] <= 1.0
        assert saved[model]["train_seconds"] > 0
    assert saved["test_boundaries"] == saved["test_regions"] - cfg.test_size
    assert 0 <= saved["example_sequence"] < cfg.test_size

    report = format_report(result)
    assert "boundary F1" in report and "semi-CRF" in report and "softmax" in report
    assert f"{result['semi_crf']['boundary_f1']:.3f}" in report
    assert f"{result['softmax']['boundary_f1']:.3f}" in report


def test_run_demo_is_deterministic_and_short_k_works(tmp_path) -> None:
    # K below the longest region: regions are split into several same-label segments.
    cfg = _tiny(tmp_path, max_duration=9, seed=3)
    a, b = run_demo(cfg), run_demo(cfg)
    for model in ("semi_crf", "softmax"):
        for key in METRIC_KEYS - {"train_seconds"}:
            assert a[model][key] == b[model][key]


@pytest.mark.parametrize(
    ("changes", "match"),
    [
        ({"seq_len": 19}, "seq_len"),
        ({"train_size": 0}, "train_size"),
        ({"batch_size": 0}, "batch_size"),
        ({"max_duration": 0}, "max_duration"),
    ],
)
def test_bad_config(tmp_path, changes, match) -> None:
    with pytest.raises(ValueError, match=match):
        run_demo(_tiny(tmp_path, **changes))


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-CUDA message")
def test_cuda_without_cuda(tmp_path) -> None:
    with pytest.raises(ValueError, match="CUDA is not available"):
        run_demo(_tiny(tmp_path, device="cuda"))


def test_batches_cover_the_data_once(tmp_path) -> None:
    from flash_semicrf.demo.data import make_gene_dataset

    data = make_gene_dataset(7, max_len=60, min_len=30, seed=0)
    seen = []
    for x, lengths, labels in _batches(data, 3, torch.Generator().manual_seed(0)):
        t = int(lengths.max())
        assert x.shape[1] == t and labels.shape[1] == t  # trimmed to the batch's longest
        seen.extend(lengths.tolist())
    assert sorted(seen) == sorted(data.lengths.tolist())
    gold = _gold(data)
    assert [len(g) for g in gold] == data.lengths.tolist()
    assert 0 <= _example_index(gold) < 7


def test_command_line(tmp_path, capsys) -> None:
    out = tmp_path / "cli"
    argv = ["demo", "--train-size", "4", "--test-size", "3", "--seq-len", "60", "--epochs", "1"]
    argv += ["--batch-size", "4", "-K", "20", "--seed", "1", "--out", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr()
    assert "boundary F1" in text.out and "wrote" in text.out
    assert "train semi-CRF" in text.err  # the progress bar
    assert (out / "demo.png").is_file() and (out / "metrics.json").is_file()


def test_default_config_needs_no_torch() -> None:
    # The command line builds its parser from these defaults before torch is imported.
    from flash_semicrf.demo import config

    assert config.DemoConfig is DemoConfig
    assert "torch" not in vars(config)


def test_default_output_folder_is_ignored_by_git() -> None:
    import shutil
    import subprocess
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    if shutil.which("git") is None or not (root / ".git").exists():
        pytest.skip("not a git checkout")
    out = DemoConfig().out
    # check-ignore exits 0 when the path is ignored (the folder need not exist).
    done = subprocess.run(
        ["git", "-C", str(root), "check-ignore", "-q", f"{out}/demo.png"], check=False
    )
    assert done.returncode == 0, f"{out}/ (the demo's default output) is not in .gitignore"


def test_figure_says_boundary_f1_and_where_the_axis_ends(tmp_path, monkeypatch) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    from flash_semicrf.demo.run import _figure

    texts: list[str] = []

    def capture(fig, path, **kwargs) -> None:
        for ax in fig.axes:
            texts.extend([ax.get_ylabel(), ax.get_xlabel()])

    monkeypatch.setattr(Figure, "savefig", capture)
    L = 37
    gold = [0] * 10 + [1] * 20 + [0] * 7
    _figure(
        tmp_path / "f.png",
        gold,
        {"semi-CRF": gold, "softmax": [0] * L},
        torch.rand(L),
        {"semi-CRF": 0.9, "softmax": 0.25},
    )
    joined = "\n".join(texts)
    assert "boundary F1 0.90" in joined and "boundary F1 0.25" in joined
    assert f"0 to {L - 1}" in joined and f"length is {L}" in joined
    assert "boundary F1" in format_report(
        {
            "test_boundaries": 1,
            "test_regions": 2,
            "device": "cpu",
            "semi_crf": dict.fromkeys(METRIC_KEYS, 0.5),
            "softmax": dict.fromkeys(METRIC_KEYS, 0.5),
        }
    )
