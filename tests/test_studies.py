"""The filler and robustness studies of generative removal, MS-SSIM, and ``maskscope study`` end to end."""

from __future__ import annotations

import json

import pytest
import torch
from skimage import data
from test_bench import PooledLinear, _imagenet_style_folder, shapes_dataset

from maskscope.cli.main import main
from maskscope.core.model.spec import ModelSpec
from maskscope.metrics.ms_ssim import ms_ssim
from maskscope.models import TinyCNN
from maskscope.studies.fillers import StudyObject, fill_objects, study_fillers, summarise_fillers
from maskscope.studies.robustness import (
    ROBUSTNESS,
    StudyVariant,
    protocol_variants,
    run_robustness_study,
    study_config,
    summarise_robustness,
)


@pytest.fixture(scope="module")
def photo() -> torch.Tensor:
    """scikit-image's chelsea, 1×3×224×224 in [0, 1]."""
    return torch.from_numpy(data.chelsea()[:224, 50:274]).permute(2, 0, 1)[None].float() / 255


def test_ms_ssim_is_one_for_identical_images_falls_with_noise_and_is_symmetric(photo):
    generator = torch.Generator().manual_seed(0)
    noise = torch.randn(photo.shape, generator=generator)
    light, heavy = (photo + 0.05 * noise).clamp(0, 1), (photo + 0.3 * noise).clamp(0, 1)
    assert ms_ssim(photo, photo).item() == pytest.approx(1.0, abs=1e-6)
    scores = [ms_ssim(photo, light).item(), ms_ssim(photo, heavy).item()]
    assert 1.0 > scores[0] > scores[1] > 0.0
    assert ms_ssim(heavy, photo).item() == pytest.approx(scores[1], abs=1e-6)
    batch = ms_ssim(torch.cat([photo, photo]), torch.cat([light, heavy]))
    assert batch.tolist() == pytest.approx(scores, abs=1e-6)


def test_ms_ssim_uses_the_scales_that_fit_and_refuses_too_many(photo):
    small = photo[..., :64, :64]
    assert ms_ssim(small, small).item() == pytest.approx(1.0, abs=1e-6)  # 3 scales: 64, 32, 16
    with pytest.raises(ValueError, match="at 5 scale"):
        ms_ssim(small, small, scales=5)
    with pytest.raises(ValueError, match="differ in shape"):
        ms_ssim(photo, small)


def test_filler_study_on_the_shapes_task_ranks_inpainting_below_the_photo_blur_and_mean(shapes_task):
    images, classes, masks = shapes_task.correctly_classified(20)
    objects = [StudyObject(f"shape{i}", image, mask, [int(cls)], "shape")
               for i, (image, cls, mask) in enumerate(zip(images, classes, masks))]
    fillers = study_fillers(["blur:10", "mean", "ns", "telea"], shapes_task.classifier.mean_colour)
    rows = fill_objects(shapes_task.classifier, objects, fillers, images_per_batch=8, progress=False)
    table = {entry["filler"]: entry for entry in summarise_fillers(rows)}
    assert list(table) == ["real", "blur:10", "mean", "ns", "telea"] and table["real"]["n"] == 20
    probability = {name: entry["probability"]["mean"] for name, entry in table.items()}
    for inpainter in ("ns", "telea"):
        assert probability[inpainter] < probability["real"] - 0.3, probability
        assert probability[inpainter] < min(probability["blur:10"], probability["mean"]), probability
    assert table["real"]["top1"]["mean"] == 1.0 and table["ns"]["top1"]["mean"] < 1.0
    assert table["real"]["ms_ssim"]["mean"] == pytest.approx(1.0, abs=1e-6)
    assert all(table[name]["ms_ssim"]["mean"] < 1.0 for name in fillers)


def test_robustness_study_compares_all_pairs_and_a_deterministic_map_is_perfectly_stable(shapes_task, tmp_path):
    dataset, _ = shapes_dataset(shapes_task, tmp_path / "data", 3)
    variants = [StudyVariant("centre", "centre"), StudyVariant("random", "random")]
    config = study_config("shapes", variants, model=ModelSpec("tiny-cnn"), images_per_batch=2)
    log = run_robustness_study(shapes_task.classifier, list(dataset), variants, config, tmp_path / "run", progress=False)
    assert len(log.records) == 3 * 2 * (5 + 1) and all(r["status"] == "ok" for r in log.records)
    scored = [r for r in log.records if r["metric"] == ROBUSTNESS]
    assert all(r["values"]["pairs"] == 10 for r in scored)
    rows = {row["variant"]: row for row in summarise_robustness(tmp_path / "run")}
    for metric in ("ssim", "hog_pearson", "spearman"):
        assert rows["centre"][metric]["mean"] == pytest.approx(1.0, abs=1e-5)
        assert rows["random"][metric]["mean"] < 0.5
    again = run_robustness_study(shapes_task.classifier, list(dataset), variants, config, tmp_path / "run",
                                 progress=False)
    assert len(again.records) == len(log.records)


def test_protocol_variants_follow_the_paper_and_refuse_unknown_families():
    variants = {v.name: v for v in protocol_variants()}
    assert list(variants) == ["sp", "sp-g", "lime-50", "lime-150", "lime-g-50", "lime-g-150", "mp", "mp-g"]
    assert variants["sp"].values == (5, 17, 29, 41, 53) and variants["sp"].params == {"stride": 3, "filler": "mean"}
    assert variants["sp-g"].params["filler"] == "inpaint" and variants["lime-g-150"].params["segments"] == 150
    assert variants["lime-50"].params["samples"] == 500 and variants["mp"].params["init"] == "uniform"
    assert variants["mp-g"].values == (0, 1, 2, 3, 4) and variants["mp-g"].params["steps"] == 300
    with pytest.raises(ValueError, match="unknown method family"):
        protocol_variants(["sp", "gradcam"])


def test_study_robustness_command_runs_resumes_and_writes_its_table(tmp_path, capsys):
    torch.manual_seed(0)
    torch.jit.script(PooledLinear(1000).eval()).save(str(tmp_path / "tiny.pt"))
    _imagenet_style_folder(tmp_path / "data", 3)
    out = tmp_path / "run"
    args = ["study", "robustness", "--data", str(tmp_path / "data"), "--model", str(tmp_path / "tiny.pt"),
            "--methods", "sp,sp-g,lime,mp", "--patch-sizes", "29,53", "--stride", "32", "--samples", "16",
            "--segments", "10", "--steps", "2", "--seeds", "0,1,2", "--limit", "2", "--out", str(out), "--quiet"]
    assert main(args) == 0
    table = capsys.readouterr().out
    assert all(f"| {name} |" in table for name in ("sp", "sp-g", "lime-10", "mp"))
    records = (out / "records.jsonl").read_text().splitlines()
    assert len(records) == 2 * ((2 + 1) * 2 + (3 + 1) * 2)
    summary = json.loads((out / "robustness.json").read_text())
    assert summary["config"]["params"]["sp"]["stride"] == 32 and summary["images"] == ["c0", "c1"]
    assert all(row["n"] == 2 and row["ssim"] is not None for row in summary["summary"])
    [pair] = summary["paired_differences"]  # lime-g did not run: sp-g against sp only
    rows = {row["variant"]: row for row in summary["summary"]}
    assert (pair["variant"], pair["baseline"], pair["n"]) == ("sp-g", "sp", 2)
    assert pair["ssim"]["mean"] == pytest.approx(rows["sp-g"]["ssim"]["mean"] - rows["sp"]["ssim"]["mean"], abs=1e-6)
    assert "| sp-g − sp |" in (out / "robustness.md").read_text()
    assert main(args) == 0
    assert (out / "records.jsonl").read_text().splitlines() == records
    changed = [a if a != "32" else "16" for a in args]
    assert main(changed) == 2
    assert "different configuration (params differ)" in capsys.readouterr().err


def test_study_fillers_command_on_coco128(shared_data, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("MASKSCOPE_DATA", str(shared_data))
    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(TinyCNN(1000, width=4).eval()), str(tmp_path / "tiny.pt"))
    base = ["study", "fillers", "--model", str(tmp_path / "tiny.pt"), "--out", str(tmp_path / "out"), "--quiet"]
    assert main([*base, "--fillers", "blur:10,ns,noise", "--all-objects", "--limit", "3"]) == 0
    result = json.loads((tmp_path / "out" / "filler_study.json").read_text())
    assert [entry["filler"] for entry in result["summary"]] == ["real", "blur:10", "ns", "noise"]
    assert len(result["objects"]) == 3 and result["selection"]["kept"] == 3
    assert all(0.05 <= row["area"] <= 0.5 for row in result["objects"])
    real = result["summary"][0]["ms_ssim"]["mean"]
    assert real == pytest.approx(1.0, abs=1e-6) and result["summary"][2]["ms_ssim"]["mean"] < 1.0
    assert "| ns |" in (tmp_path / "out" / "filler_study.md").read_text()
    capsys.readouterr()
    assert main([*base, "--fillers", "blur,sparkles"]) == 2
    assert "unknown filler 'sparkles'" in capsys.readouterr().err
