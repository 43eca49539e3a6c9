"""benchmarks/speed/gpu_check.py, run on the CPU against the CPU: the same seed gives the same maps,
the record holds every method asked for, a changed map is reported, and its host-traffic
counter sees scalar reads, cross-device copies and data-dependent ops."""

from __future__ import annotations

import copy
import json
import warnings

import pytest
import torch
from torch import nn

from benchmarks.speed import gpu_check
from maskscope import Classifier
from maskscope.core.model.view import ClassifierView
from maskscope.data.registry import data_root

METHODS = ["gradient", "mp"]
#: MP's 300 steps scaled to 3
STEPS_SCALE = 0.01


def tiny_factory():
    """A classifier factory (device, precision) -> the same small untrained CNN on 64×64 crops."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 8, 3, padding=1), nn.ReLU(),
                          nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(8, 5))

    def make(device: str, precision: str) -> Classifier:
        return Classifier(copy.deepcopy(model).to(device), mean=(0.5,) * 3, std=(0.5,) * 3,
                          view=ClassifierView(resize=72, crop=64), precision=precision)

    return make


def two_photos(make) -> tuple[list[str], torch.Tensor]:
    """Two imagenet-samples photos where the shared data is at hand, else two random images."""
    if (data_root() / "imagenet-samples").is_dir():
        from benchmarks.common.photos import imagenet_photos

        return imagenet_photos(make("cpu", "float32"), 2)
    return ["noise_0", "noise_1"], torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))


def check(tmp_path, **settings) -> "gpu_check.Check":
    make = tiny_factory()
    names, images = two_photos(make)
    settings = {"out": tmp_path / "gpu_check.json", "steps_scale": STEPS_SCALE, **settings}
    return gpu_check.Check(make, images, names, METHODS, torch.device("cpu"), ("float32",), model="tiny", **settings)


def test_cpu_against_cpu_gives_the_same_maps_and_a_record_of_every_method(tmp_path):
    record = check(tmp_path).run()
    written = json.loads((tmp_path / "gpu_check.json").read_text())
    assert sorted(written["methods"]) == METHODS
    assert written["methods"]["mp"]["params"] == {"steps": 3}
    for name in METHODS:
        entry = record["methods"][name]
        assert "error" not in entry, entry.get("traceback")
        agreement = entry["float32"]["against_cpu_float32"]
        assert agreement["spearman"]["per_photo"] == [1.0, 1.0]
        assert agreement["max_abs_diff"]["max"] == 0.0
        assert entry["float32"]["seconds_per_photo"] > 0 and entry["cpu"]["seconds_per_photo"] > 0
        traffic = entry["host_traffic"]
        assert traffic["model_on_device"] and traffic["cuda_syncs"] is None
        assert traffic["to_device"]["total"] == traffic["to_host"]["total"] == 0  # one device: nothing to copy
    goals = record["methods"]["mp"]["float32"]["against_cpu_float32"]["goals_met"]
    assert goals["photos"] == 2 and goals["same_per_photo"]
    assert "goals_met" not in record["methods"]["gradient"]["float32"]["against_cpu_float32"]


def test_a_saved_cpu_reference_is_read_back_and_must_match_the_settings(tmp_path):
    maps = tmp_path / "maps"
    reference = check(tmp_path, cpu_only=True, maps=maps, out=tmp_path / "cpu.json").run()
    assert "float32" not in reference["methods"]["mp"]  # the reference alone
    assert len(list((maps / "mp").glob("*.npy"))) == 2
    saved = json.loads((tmp_path / "cpu.json").read_text())
    record = check(tmp_path, reference=saved, maps=maps).run()
    for name in METHODS:
        assert record["methods"][name]["float32"]["against_cpu_float32"]["spearman"]["per_photo"] == [1.0, 1.0]
    with pytest.raises(SystemExit, match="seed"):
        check(tmp_path, reference=saved, maps=maps, seed=1).run()
    del saved["methods"]["mp"]
    with pytest.raises(SystemExit, match="no CPU run of mp"):
        check(tmp_path, reference=saved, maps=maps).run()


def test_a_compiled_copy_runs_its_module_compiled_and_gives_the_same_maps():
    make = tiny_factory()
    classifier = make("cpu", "float32")
    images = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    fast = gpu_check.compiled(classifier, "default", backend="eager")  # dynamo's tracing, no code generation
    assert isinstance(fast.torch_engine.model, torch._dynamo.eval_frame.OptimizedModule)
    assert not isinstance(classifier.torch_engine.model, torch._dynamo.eval_frame.OptimizedModule)
    eager = gpu_check.run_method(classifier, "gradient", images, {})
    traced = gpu_check.run_method(fast, "gradient", images, {})
    assert torch.equal(eager.maps, traced.maps)


def test_a_map_that_differs_is_reported():
    generator = torch.Generator().manual_seed(0)
    maps = torch.rand(3, 16, 16, generator=generator)
    reference = gpu_check.MethodRun(maps, [True, True, False], 1.0)
    changed = maps.clone()
    changed[1] = 1 - changed[1]  # ranks reversed: Spearman −1
    changed[2, 0, 0] += 0.25  # one pixel moved
    candidate = gpu_check.MethodRun(changed, [True, False, False], 0.5)
    report = gpu_check.compare_runs(reference, candidate)
    rho = report["spearman"]["per_photo"]
    assert rho[0] == 1.0 and rho[1] == pytest.approx(-1.0) and rho[2] < 1.0
    assert report["spearman"]["min"] < 1.0
    assert report["max_abs_diff"]["per_photo"][0] == 0.0
    assert report["max_abs_diff"]["per_photo"][2] == pytest.approx(0.25)
    assert report["goals_met"] == {"reference": 2, "device": 1, "both": 1, "photos": 3, "same_per_photo": False}


def test_equal_constant_maps_agree_and_a_constant_map_against_another_does_not():
    flat = torch.zeros(2, 8, 8)
    other = flat.clone()
    other[1] = 1.0
    assert gpu_check.map_spearman(flat, other).tolist() == [1.0, 0.0]


def test_host_traffic_counts_scalar_reads_copies_and_data_dependent_ops():
    x = torch.arange(6.0)
    with gpu_check.HostTraffic("cpu") as traffic:
        for _ in range(3):
            x.sum().item()
        bool(x.max() > 2)
        x.to("meta")
        x[x > 2]
        x[x > 4] = 0.0
        torch.nonzero(x)
        x[torch.tensor([0, 1])]  # indexing by positions waits for nothing
    record = traffic.record()
    assert record["scalar_reads"]["total"] == 4
    assert record["to_device"]["total"] == 1 and record["to_host"]["total"] == 0
    assert record["data_dependent"]["total"] == 3
    assert all(place.endswith(tuple("0123456789")) for place in record["scalar_reads"]["where"])


def test_on_a_gpu_reads_of_tensors_kept_on_the_host_are_not_counted():
    x = torch.arange(6.0)
    with gpu_check.HostTraffic("cuda") as traffic:  # no CUDA needed: the tensors stay on the CPU
        x.sum().item()
        x[x > 2]
    record = traffic.record()
    assert record["scalar_reads"]["total"] == record["data_dependent"]["total"] == 0


def test_sync_warnings_are_counted_by_their_message():
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        warnings.warn(f"{gpu_check.SYNC_WARNING}", UserWarning)
        warnings.warn("something else", UserWarning)
        warnings.warn(f"{gpu_check.SYNC_WARNING}", UserWarning)
    assert gpu_check.count_sync_warnings(caught) == 2


def test_steps_scale_scales_steps_and_samples_only():
    assert gpu_check.scaled_params("mp", 0.1) == {"steps": 30}
    assert gpu_check.scaled_params("rise", 0.1) == {"samples": 400}
    assert gpu_check.scaled_params("gradient", 0.1) == {}
    assert gpu_check.scaled_params("mp", 1.0) == {}
    assert "explainer" not in gpu_check.default_methods() and "mp" in gpu_check.default_methods()
