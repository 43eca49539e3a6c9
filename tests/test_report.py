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
    assert rows()[0].find_elements(By.TAG_NAME, "td")[2].text.startswith(f"{means[0]:.4f}")
    mean_header.click()
    assert rows()[0].find_elements(By.TAG_NAME, "td")[2].text.startswith(f"{means[-1]:.4f}")

    lines = browser.find_elements(By.CSS_SELECTOR, "#curves svg polyline")
    assert len(lines) == len(METHODS) * len(METRICS)
    assert all(line.get_attribute("points").count(",") == 29 for line in lines)  # 29 points per curve

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
