"""How the HTML report of a large run behaves in headless Chromium: 1,000 photos × 7 methods.

    python benchmarks/speed/report_responsiveness.py [--photos 1000] [--out benchmarks/results/speed/report_responsiveness.json]

Builds a run of that size (random per-map values for four metrics, one small thumbnail file
per map), writes its page with ``maskscope.report``, opens it from disk and times, in the
browser: the page load, sorting the gallery by the disagreement of two methods, filtering by
a class, and five "show more" clicks; it also counts how many thumbnails the browser fetched
(lazy loading: only those near the view). Needs ``chromium`` and ``chromedriver``.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

from PIL import Image

from maskscope.report.collect import Cell, ImageEntry, RunData
from maskscope.report.page import page_data, render

# run as a file, a script has only its own folder on the path: the checkout's root goes last, for
# `benchmarks.*`, so that PYTHONPATH still picks the maskscope that runs
sys.path.append(str(Path(__file__).resolve().parents[2]))

from benchmarks.common.records import machine, write_record

METHODS = ["mp", "rise", "gradcam", "integrated_gradients", "gradient", "centre", "random"]
METRICS = ["deletion:rise-batch", "insertion:rise-batch", "deletion:igos", "insertion:igos"]
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync", "--window-size=1400,1000"]


def build_page(folder: Path, photos: int) -> tuple[Path, float]:
    rng = random.Random(0)
    thumbnail = Image.new("RGB", (160, 160), (200, 80, 40))
    images = []
    for index in range(photos):
        entry = ImageEntry(f"n{index:05d}", f"class_{index % 100}")
        for method in METHODS:
            path = folder / "thumbs" / method / f"{entry.name}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            thumbnail.save(path)
            entry.cells[method] = Cell({metric: rng.random() for metric in METRICS})
        images.append(entry)
    run = RunData("bench", f"bench: synthetic {photos}×{len(METHODS)}", METHODS, METRICS, [], {}, images, [], {}, [])
    started = time.perf_counter()
    data = page_data(run, folder, progress=False)
    for image in data["images"]:  # the thumbnails made above, as a run with maps would have them
        for method, cell in image["c"].items():
            cell["t"] = f"thumbs/{method}/{image['n']}.jpg"
    page = folder / "report.html"
    page.write_text(render(data))
    return page, time.perf_counter() - started


def time_in_browser(page: Path) -> dict:
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    options = webdriver.ChromeOptions()
    options.binary_location = "/usr/bin/chromium"
    for flag in FLAGS + [f"--user-data-dir={tempfile.mkdtemp()}"]:
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service("/usr/bin/chromedriver"), options=options)
    timings = {}
    try:
        started = time.perf_counter()
        driver.get(page.resolve().as_uri())
        timings["load_s"] = time.perf_counter() - started
        timings["thumbnails_fetched_after_load"] = driver.execute_script(
            "return [...document.images].filter(i => i.complete && i.naturalWidth > 0).length")
        timings["img_elements_after_load"] = len(driver.find_elements(By.CSS_SELECTOR, "#gallery img"))
        actions = {
            "sort_by_disagreement_s": lambda: Select(driver.find_element(By.ID, "f-sort")).select_by_value("difference"),
            "filter_one_class_s": lambda: Select(driver.find_element(By.ID, "f-class")).select_by_value("class_7"),
            "all_classes_again_s": lambda: Select(driver.find_element(By.ID, "f-class")).select_by_value(""),
            "five_show_more_clicks_s": lambda: [driver.find_element(By.ID, "g-more").click() for _ in range(5)],
        }
        for name, action in actions.items():
            started = time.perf_counter()
            action()
            driver.execute_script("return document.body.offsetHeight")  # wait for layout
            timings[name] = time.perf_counter() - started
        timings["rows_after_clicks"] = len(driver.find_elements(By.CSS_SELECTOR, "#gallery tbody tr"))
    finally:
        driver.quit()
    return {key: round(value, 3) if isinstance(value, float) else value for key, value in timings.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "results" / "speed" / "report_responsiveness.json")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        page, seconds = build_page(Path(folder), args.photos)
        record = {"photos": args.photos, "methods": len(METHODS), "page_bytes": page.stat().st_size,
                  "page_write_s": round(seconds, 3), **time_in_browser(page), "load_average_1min": os.getloadavg()[0],
                  "machine": machine()}
    write_record(args.out, record)


if __name__ == "__main__":
    main()
