"""The HTML report: what it collects from a real bench run and an explain folder, and how it
behaves in headless Chromium (rows, curves and images render; sorting and filtering work)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

from maskscope.cli.main import main
from maskscope.core.explanation import Explanation
from maskscope.report.collect import collect
from maskscope.report.page import page_data
from tests.test_bench import PooledLinear, _imagenet_style_folder

METHODS = ("centre", "random", "gradient")
METRICS = ("deletion:rise-batch",)


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory) -> Path:
    """A real ``maskscope bench`` run (tiny model, 6 photos and one unreadable file), report included."""
    root = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    torch.jit.script(PooledLinear(7).eval()).save(str(root / "tiny.pt"))
    _imagenet_style_folder(root / "data", 6)
    (root / "data" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")
    with (root / "data" / "labels.csv").open("a") as labels:
        labels.write("broken.png,6,s6,class_6\n")
    assert main(["bench", "--data", str(root / "data"), "--model", str(root / "tiny.pt"), "--methods",
                 ",".join(METHODS), "--metrics", ",".join(METRICS), "--out", str(root / "run"), "--quiet"]) == 0
    return root / "run"


def test_bench_writes_a_report_with_every_record(bench_run):
    page = bench_run / "report" / "report.html"
    data = _page_json(page)
    assert len(data["images"]) == 7 and data["methods"] == list(METHODS)
    assert len(data["summary"]) == len(METHODS) * len(METRICS)
    assert set(data["curves"]) == set(METRICS) and set(data["curves"]["deletion:rise-batch"]) == set(METHODS)
    scored = [im for im in data["images"] if im["n"] != "broken"]
    for image in scored:
        for method in METHODS:
            cell = image["c"][method]
            assert set(cell["v"]) == set(METRICS) and cell["s"] == "ok"
            assert (page.parent / cell["t"]).is_file() and cell["k"]  # a thumbnail and its scaling caption
    broken = next(im for im in data["images"] if im["n"] == "broken")
    assert broken["c"]["centre"]["s"] == "failed" and "cannot read" in broken["c"]["centre"]["r"]
    assert {p["image"] for p in data["problems"]} == {"broken"} and len(data["problems"]) == len(METHODS) * len(METRICS)
    assert data["config"]["versions"]["torch"]


def test_a_run_without_its_maps_shows_the_values_only(bench_run, tmp_path):
    for name in ("records.jsonl", "config.json"):
        shutil.copy(bench_run / name, tmp_path / name)
    run = collect(tmp_path)
    assert any("no cached maps" in note for note in run.notes)
    data = page_data(run, tmp_path / "report", progress=False)
    cell = next(im for im in data["images"] if im["n"] == "c0")["c"]["gradient"]
    assert "t" not in cell and set(cell["v"]) == set(METRICS)


def test_an_explain_folder_report_shows_the_overlays_and_scores(tmp_path):
    saliency = torch.rand(2, 16, 16)
    for method in ("mp", "rise"):
        Explanation(saliency=saliency, targets=[[1], [2]], method=method, target_names=[["cat"], ["dog"]],
                    scores_before=torch.tensor([0.9, 0.7]), scores_after=torch.tensor([0.2, 0.1]),
                    names=["a", "b"]).save(tmp_path / "out" / method, images=list(torch.rand(2, 3, 16, 16)))
    assert main(["report", str(tmp_path / "out"), "--quiet"]) == 0
    page = tmp_path / "out" / "report" / "report.html"
    data = _page_json(page)
    assert data["methods"] == ["mp", "rise"] and [im["n"] for im in data["images"]] == ["a", "b"]
    cell = data["images"][0]["c"]["rise"]
    assert cell["v"]["score_before"] == 0.9 and cell["v"]["score_after"] == 0.2
    assert (page.parent / cell["t"]).is_file() and (page.parent / cell["f"]).name == "a.png"
    assert {(row["method"], row["metric"]) for row in data["summary"]} >= {("mp", "score_before")}


def test_a_pixel_level_map_is_clipped_by_what_its_record_says(tmp_path):
    """The report colours a map by the record's ``pixel_level`` (set by the method that made it), not by its name."""
    saliency = torch.rand(1, 16, 16) * 0.01
    saliency[0, 0, 0] = 100.0
    for folder, pixel_level in (("pixels", True), ("regions", False)):
        Explanation(saliency=saliency, targets=[[1]], method="gradient", names=["a"],
                    pixel_level=pixel_level).save(tmp_path / "out" / folder)
        assert Explanation.load(tmp_path / "out" / folder).pixel_level is pixel_level
    for folder, caption in (("pixels", "99th percentile"), ("regions", "own range")):
        assert main(["report", str(tmp_path / "out" / folder), "--quiet"]) == 0
        cell = _page_json(tmp_path / "out" / folder / "report" / "report.html")["images"][0]["c"]["gradient"]
        assert caption in cell["k"]


#: an alias and the method it runs, each at settings that take a tiny model milliseconds
NAMED = {"lime": ["--param", "samples=20", "--param", "segments=8"], "sp": ["--param", "window=40", "--param", "stride=40"]}


def test_an_explain_folder_keeps_each_alias_apart(tmp_path):
    """lime and lime-g (sp and sp-g) run the same method with two fillers: the records keep the
    name asked for and the report shows four methods of 3 photos each, never one pooled of 6."""
    from maskscope.models import TinyCNN

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(TinyCNN(10, width=4).eval()), str(tmp_path / "tiny.pt"))
    _imagenet_style_folder(tmp_path / "photos", 3)
    for base, params in NAMED.items():
        for name in (base, f"{base}-g"):
            assert main(["explain", str(tmp_path / "photos"), "--model", str(tmp_path / "tiny.pt"), "--method", name,
                         "--out", str(tmp_path / "out" / name), "--quiet", *params]) == 0
    record = json.loads((tmp_path / "out" / "lime-g" / "c0.json").read_text())
    assert (record["asked_as"], record["method"], record["params"]["filler"]) == ("lime-g", "lime", "inpaint")
    assert Explanation.load(tmp_path / "out" / "sp-g").asked_as == "sp-g"
    run = collect(tmp_path / "out")
    assert run.methods == ["lime", "lime-g", "sp", "sp-g"]
    assert [entry.name for entry in run.images] == ["c0", "c1", "c2"]  # a row per photo, not per folder
    assert all(set(entry.cells) == set(run.methods) for entry in run.images)
    rows = {(row["method"], row["metric"]): row["n"] for row in run.summary}
    assert rows == {(method, metric): 3 for method in run.methods for metric in ("score_before", "seconds")}
    assert run.config["runs"] == {"lime": "lime", "lime-g": "lime", "sp": "sliding_patch", "sp-g": "sliding_patch"}
    assert run.config["methods"]["sp-g"]["filler"] == "inpaint" and run.config["methods"]["sp"]["filler"] == "mean"

    # records written before asked_as was kept: the alias their parameters match, else the filler beside the name
    for path in (tmp_path / "out").rglob("*.json"):
        old = json.loads(path.read_text())
        del old["asked_as"]
        if path.parent.name == "lime":
            old["params"]["filler"] = "blur:5"
        path.write_text(json.dumps(old))
    assert collect(tmp_path / "out").methods == ["lime filler=blur:5", "lime-g", "sliding_patch", "sp-g"]


def test_methods_explained_into_one_folder_share_a_row_per_photo(tmp_path):
    """Three methods' runs into one --out: the second and third save as ``c0_sp-g`` and so on
    beside the first's ``c0``, and the report still shows one row per photo."""
    from maskscope.models import TinyCNN

    torch.manual_seed(0)
    torch.jit.save(torch.jit.script(TinyCNN(10, width=4).eval()), str(tmp_path / "tiny.pt"))
    _imagenet_style_folder(tmp_path / "photos", 3)
    for name in ("sp", "sp-g", "gradient"):
        assert main(["explain", str(tmp_path / "photos"), "--model", str(tmp_path / "tiny.pt"), "--method", name,
                     "--out", str(tmp_path / "out"), "--quiet", *(NAMED["sp"] if name != "gradient" else [])]) == 0
    assert (tmp_path / "out" / "c0_sp-g.json").is_file() and (tmp_path / "out" / "c0_gradient.json").is_file()
    run = collect(tmp_path / "out")
    assert run.methods == ["gradient", "sp", "sp-g"]
    assert [entry.name for entry in run.images] == ["c0", "c1", "c2"]
    assert all(set(entry.cells) == set(run.methods) for entry in run.images)


def test_every_metric_says_which_way_is_better(bench_run):
    data = _page_json(bench_run / "report" / "report.html")
    assert {row["better"] for row in data["summary"]} == {"lower is better"}  # deletion's AUC
    assert data["better"]["deletion:rise-batch"] == "lower is better"
    run = collect(bench_run)
    from maskscope.report.collect import better

    assert better("insertion:rise") == better("pointing") == better("segmentation acc") == "higher is better"
    assert better("segmentation mae") == better("weak_localisation:mean@α*") == "lower is better"
    assert run.summary and all(row["better"] for row in run.summary)


def test_report_of_a_folder_that_is_no_run_is_a_one_line_error(tmp_path, capsys):
    assert main(["report", str(tmp_path)]) == 2
    assert "not a bench run" in capsys.readouterr().err


def _page_json(page: Path) -> dict:
    text = page.read_text()
    opening = '<script id="report-data" type="application/json">'
    start = text.index(opening) + len(opening)
    return json.loads(text[start: text.index("</script>", start)])


# ---------------------------------------------------------------- the page in a real browser

CHROMIUM_FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync")


@pytest.fixture()
def browser(tmp_path):
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed (pip install -e '.[test]')")
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver_path = shutil.which("chromedriver")
    if not chromium or not driver_path:
        pytest.skip("headless Chromium is not installed (apt-get install chromium chromium-driver)")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS + (f"--user-data-dir={tmp_path / 'profile'}", "--window-size=1400,1000"):
        options.add_argument(flag)
    from selenium.webdriver.chrome.service import Service

    driver = webdriver.Chrome(service=Service(driver_path), options=options)
    yield driver
    driver.quit()


def test_the_page_renders_and_sorting_and_filtering_change_what_is_shown(bench_run, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    data = _page_json(bench_run / "report" / "report.html")
    browser.get((bench_run / "report" / "report.html").resolve().as_uri())
    rows = lambda: browser.find_elements(By.CSS_SELECTOR, "#summary tbody tr")  # noqa: E731
    assert len(rows()) == len(data["summary"])
    mean_header = browser.find_element(By.CSS_SELECTOR, "#summary th[data-key=mean]")
    means = sorted(row["mean"] for row in data["summary"])
    mean_header.click()
    assert rows()[0].find_elements(By.TAG_NAME, "td")[3].text.startswith(f"{means[0]:.4f}")
    mean_header.click()
    assert rows()[0].find_elements(By.TAG_NAME, "td")[3].text.startswith(f"{means[-1]:.4f}")
    assert rows()[0].find_elements(By.TAG_NAME, "td")[2].text == "lower is better"  # deletion, beside its metric
    assert "which way is better" in browser.find_element(By.CSS_SELECTOR, "#summary thead").text
    caption = browser.find_element(By.CSS_SELECTOR, "#curves figcaption").text
    assert caption == "deletion:rise-batch: AUC, lower is better"
    assert "(lower is better)" in Select(browser.find_element(By.ID, "f-metric")).first_selected_option.text

    lines = browser.find_elements(By.CSS_SELECTOR, "#curves svg polyline")
    assert len(lines) == len(METHODS) * len(METRICS)
    assert all(line.get_attribute("points").count(",") == 29 for line in lines)  # 29 points per curve
    colour = "return getComputedStyle(arguments[0])[arguments[1]]"
    for line in lines:  # each legend key, text and swatch, is drawn in its curve's colour, and the colours differ
        method = line.get_attribute("data-method")
        stroke = browser.execute_script(colour, line, "stroke")
        key = browser.find_element(By.CSS_SELECTOR, f"#curves text.key[data-method={method}]")
        swatch = browser.find_element(By.CSS_SELECTOR, f"#curves line.swatch[data-method={method}]")
        assert browser.execute_script(colour, key, "fill") == browser.execute_script(colour, swatch, "stroke") == stroke
        assert method in key.text
    assert len({browser.execute_script(colour, line, "stroke") for line in lines}) == len(METHODS)

    gallery = lambda: browser.find_elements(By.CSS_SELECTOR, "#gallery tbody tr")  # noqa: E731
    assert len(gallery()) == 7
    images = browser.find_elements(By.CSS_SELECTOR, "#gallery img")
    assert len(images) == 6 * len(METHODS)
    for image in images:  # lazy images load once scrolled into view
        browser.execute_script("arguments[0].scrollIntoView()", image)
    WebDriverWait(browser, 20).until(lambda b: all(b.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", image) for image in images))

    label = next(im["l"] for im in data["images"] if im["n"] == "c3")
    Select(browser.find_element(By.ID, "f-class")).select_by_value(label)
    expected = sorted(im["n"] for im in data["images"] if im["l"] == label)
    assert sorted(row.get_attribute("data-image") for row in gallery()) == expected
    Select(browser.find_element(By.ID, "f-class")).select_by_value("")

    browser.find_element(By.CSS_SELECTOR, "#f-methods input[data-method=random]").click()
    assert [th.text for th in browser.find_elements(By.CSS_SELECTOR, "#gallery thead th")] == ["photo", "centre", "gradient"]

    metric = "deletion:rise-batch"
    Select(browser.find_element(By.ID, "f-metric")).select_by_value(metric)
    Select(browser.find_element(By.ID, "f-sort")).select_by_value("difference")
    Select(browser.find_element(By.ID, "f-a")).select_by_value("centre")
    Select(browser.find_element(By.ID, "f-b")).select_by_value("gradient")
    scored = [im for im in data["images"] if im["c"]["centre"]["v"]]
    gap = lambda im: abs(im["c"]["centre"]["v"][metric] - im["c"]["gradient"]["v"][metric])  # noqa: E731
    assert gallery()[0].get_attribute("data-image") == max(scored, key=gap)["n"]
    Select(browser.find_element(By.ID, "f-order")).select_by_value("asc")
    assert gallery()[0].get_attribute("data-image") == min(scored, key=gap)["n"]
    problems = browser.find_elements(By.CSS_SELECTOR, "#problems tbody tr")
    assert len(problems) == len(METHODS) * len(METRICS) and "broken" in problems[0].text
