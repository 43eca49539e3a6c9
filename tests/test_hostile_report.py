"""The report of a hostile run: names that are HTML, script, template placeholders or URLs.

A run's folder, photo, class, method and parameter names are whatever its maker chose, and a
report is made to be shared, so each payload below is put in every place a run can hold text;
the page is loaded in headless Chromium and must show every name as text, hold no element or
attribute that its own script did not make, link only to files of the run, and load the
thumbnails of photos whose names hold ``#``, ``?`` or ``%``. The escaping and URL functions are
also tested on their own, and the refusals of ``maskscope report`` (a page it did not write, a
bad record) are one-line errors.
"""

from __future__ import annotations

import csv
import html
import json
import re
from pathlib import Path
from urllib.parse import unquote, urlparse

import numpy as np
import pytest
import torch

from maskscope.cli.main import main
from maskscope.core.explanation import Explanation
from maskscope.errors import MaskscopeValueError
from maskscope.report import write_report
from maskscope.report.escaping import URL_PATTERN, file_segments, file_url, html_text, script_json
from maskscope.report.page import MARKER, render
from tests.test_bench import PooledLinear, _write_png
from tests.test_report import _page_json, browser  # noqa: F401  (browser: the headless Chromium fixture)

PWN = "document.body.setAttribute('data-pwned','{}')"
PAYLOADS = (
    "{{data}}", "{{title}}", "{{script}}", "{{style}}", "{{csp}}",
    f"</script><script>{PWN.format('script')}</script>",
    f"<img src=x onerror={PWN.format('img')}>",
    f"\"><svg onload={PWN.format('svg')}>",
    f"'><b id=pwned onclick={PWN.format('b')}>b</b>",
    "<!--", "]]>", "&amp;&lt;&#60;",
    f"javascript:{PWN.format('js')}",
    "data:text/html,<b id=pwned>x</b>",
    "a#b", "a?b=1&c=2", "100% %zz %2e%2e", "quote\" and 'single'", "line\u2028separator\u2029paragraph",
    "constructor", "__proto__", "ünïcødé 猫 🐱",
)
#: the payloads that can be file names (no ``/``)
FILE_NAMES = tuple(payload for payload in PAYLOADS if "/" not in payload)
FOLDER = "{{data}}<img src=x onerror=" + PWN.format("folder").replace("/", "") + "> #?%'\""
ALLOWED_TAGS = {"html", "head", "meta", "title", "style", "body", "header", "h1", "h2", "p", "ul", "li", "nav", "a",
                "section", "table", "thead", "tbody", "tr", "th", "td", "div", "fieldset", "legend", "span", "label",
                "select", "option", "input", "button", "pre", "script", "figure", "figcaption", "svg", "path", "text",
                "polyline", "line", "b", "img"}


# ---------------------------------------------------------------- the escaping functions alone

@pytest.mark.parametrize("payload", PAYLOADS)
def test_html_text_escapes_every_markup_character(payload):
    escaped = html_text(payload)
    assert not set("<>\"'") & set(escaped) and html.unescape(escaped) == payload


@pytest.mark.parametrize("payload", PAYLOADS)
def test_script_json_cannot_close_its_element_and_reads_back(payload):
    text = script_json({"name": payload, payload: [payload]})
    assert not set("<>&\u2028\u2029") & set(text)
    assert json.loads(text) == {"name": payload, payload: [payload]}


@pytest.mark.parametrize("name", FILE_NAMES)
def test_file_url_is_a_percent_encoded_relative_path_to_the_file(tmp_path, name):
    target = tmp_path / "run" / "thumbs" / f"{name}.jpg"
    target.parent.mkdir(parents=True)
    target.write_bytes(b"")
    url = file_url(target, tmp_path / "run", (tmp_path / "run",))
    assert url is not None and URL_PATTERN.fullmatch(url) and url.startswith("./thumbs/")
    assert not re.match(r"[a-z][a-z0-9+.-]*:", url, re.I)  # no scheme, whatever the name
    assert (tmp_path / "run" / unquote(url)).resolve() == target.resolve()


def test_file_url_reaches_up_only_inside_the_run_and_never_outside(tmp_path):
    run = tmp_path / "run"
    (run / "report").mkdir(parents=True)
    overlay = run / "javascript:alert(1).png"
    overlay.write_bytes(b"")
    assert file_url(overlay, run / "report", (run / "report", run)) == "../javascript%3Aalert%281%29.png"
    assert file_url(overlay, run, (run,)) == "./javascript%3Aalert%281%29.png"
    outside = tmp_path / "secret.png"
    outside.write_bytes(b"")
    assert file_url(outside, run / "report", (run / "report", run)) is None
    assert file_url(run / "report" / ".." / ".." / "secret.png", run / "report", (run,)) is None
    (run / "link.png").symlink_to(outside)
    assert file_url(run / "link.png", run / "report", (run,)) is None  # a link out of the run is no file of it


@pytest.mark.parametrize("name", ["..", "../x", "a/../../b", "./.", "a\\..\\b", "a\0b", "x" * 300, "", "a//b"])
def test_file_segments_keep_every_file_inside_its_folder(tmp_path, name):
    segments = file_segments(name)
    assert all(segment not in ("", ".", "..") and "/" not in segment and "\\" not in segment for segment in segments)
    assert all(len(segment.encode()) <= 180 for segment in segments)
    assert tmp_path.joinpath(*segments).resolve().is_relative_to(tmp_path)


def test_the_template_is_filled_in_one_pass(tmp_path):
    data = {"title": "{{data}}{{script}}{{title}}", "kind": "bench", "methods": ["{{style}}"], "metrics": [],
            "summary": [], "curves": {}, "problems": [], "config": {"x": "{{csp}}</script>"}, "notes": [], "images": []}
    page = render(data)
    assert page.count("<script") == 2 and page.count("</script>") == 2 and page.count("<style>") == 1
    assert "<h1>{{data}}{{script}}{{title}}</h1>" in page  # the title's placeholders are left as text
    assert _page_json_of(page) == data
    assert page.count("Content-Security-Policy") == 1 and MARKER in page[:300]


def _page_json_of(text: str) -> dict:
    opening = '<script id="report-data" type="application/json">'
    start = text.index(opening) + len(opening)
    return json.loads(text[start: text.index("</script>", start)])


# ---------------------------------------------------------------- runs holding every payload

def _explain_run(root: Path) -> Path:
    """An explain folder named ``FOLDER``: a photo per file-name payload, classes and parameters from every payload."""
    run = root / FOLDER
    count = len(FILE_NAMES)
    torch.manual_seed(0)
    Explanation(saliency=torch.rand(count, 16, 16), targets=[[1]] * count, method="gradcam",
                target_names=[[PAYLOADS[k % len(PAYLOADS)]] for k in range(count)],
                scores_before=torch.rand(count), scores_after=torch.rand(count), names=list(FILE_NAMES),
                params={f"p{k}": payload for k, payload in enumerate(PAYLOADS)},
                ).save(run, images=list(torch.rand(count, 3, 16, 16)))
    return run


@pytest.fixture(scope="module")
def explain_run(tmp_path_factory) -> Path:
    run = _explain_run(tmp_path_factory.mktemp("explain"))
    assert main(["report", str(run), "--quiet"]) == 0
    return run


@pytest.fixture(scope="module")
def bench_run(tmp_path_factory) -> Path:
    """A real ``maskscope bench`` run of photos named by the payloads, in folders named by one, report included."""
    root = tmp_path_factory.mktemp("bench")
    torch.manual_seed(0)
    torch.jit.script(PooledLinear(4).eval()).save(str(root / "tiny.pt"))
    data = root / "photos" / FOLDER
    data.mkdir(parents=True)
    from maskscope.data.synthetic import make_shapes

    shapes = make_shapes(len(FILE_NAMES), seed=3)
    with (data / "labels.csv").open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file", "class_index", "synset", "name"])
        for k, name in enumerate(FILE_NAMES):
            _write_png(data / f"{name}.png", shapes.images[k])
            writer.writerow([f"{name}.png", k % 4, f"s{k}", PAYLOADS[k]])
    out = root / "runs" / FOLDER
    assert main(["bench", "--data", str(data), "--model", str(root / "tiny.pt"), "--methods", "centre,gradient",
                 "--metrics", "deletion:rise-batch", "--out", str(out), "--quiet"]) == 0
    return out


METHODS = ("gradient", f"<img src=x onerror={PWN.format('method')}>", "constructor", "{{data}}")


@pytest.fixture(scope="module")
def records_run(tmp_path_factory) -> Path:
    """A bench run written record by record: every payload as image, class, method, metric, reason and dataset."""
    run = tmp_path_factory.mktemp("records") / "run"
    run.mkdir()
    images = PAYLOADS + ("../../escape", "a/../../b", "sub/x#y?z")
    records = []
    for k, image in enumerate(images):
        for method in METHODS:
            base = {"image": image, "method": method, "metric": "deletion:" + PAYLOADS[k % len(PAYLOADS)], "target": 0,
                    "target_name": PAYLOADS[-1 - k % len(PAYLOADS)]}
            if k % 5 == 4:
                records.append({**base, "status": "failed", "reason": PAYLOADS[k % len(PAYLOADS)]})
            else:
                records.append({**base, "status": "ok", "values": {"auc": k / 30, "fractions": [0.0, 1.0],
                                                                    "scores": [1.0, 0.0]}})
            path = run / "maps" / method / f"{image}.npy"
            if path.resolve().is_relative_to((run / "maps").resolve()):
                path.parent.mkdir(parents=True, exist_ok=True)
                np.save(path, np.random.default_rng(k).random((8, 8)).astype(np.float32))
    (run / "records.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    (run / "config.json").write_text(json.dumps({"dataset": FOLDER, "methods": list(METHODS), "params": PAYLOADS}))
    assert main(["report", str(run), "--quiet"]) == 0
    return run


def test_thumbnails_of_any_name_are_written_inside_the_report_folder(records_run):
    report = (records_run / "report").resolve()
    written = [path.resolve() for path in records_run.rglob("*") if path.is_file()]
    assert all(path.is_relative_to(report) or path.is_relative_to(records_run.resolve() / "maps")
               or path.parent == records_run.resolve() for path in written)
    data = _page_json(records_run / "report" / "report.html")
    sources = [cell["t"] for image in data["images"] for cell in image["c"].values() if "t" in cell]
    assert len(sources) >= len(PAYLOADS) and all(URL_PATTERN.fullmatch(source) for source in sources)


# ---------------------------------------------------------------- the pages in headless Chromium

FACTS = """
const all = [...document.querySelectorAll('*')];
return {
  pwned: document.querySelectorAll('[data-pwned], #pwned').length,
  handlers: all.flatMap((e) => [...e.attributes].filter((a) => a.name.startsWith('on')).map((a) => e.tagName + ' ' + a.name)),
  tags: [...new Set(all.map((e) => e.tagName.toLowerCase()))],
  scripts: document.scripts.length,
  strays: all.filter((e) => (e.tagName === 'svg' && !e.closest('#curves'))
    || (e.tagName === 'IMG' && !e.closest('#gallery tbody'))
    || (e.tagName === 'B' && !e.parentElement?.matches('td.photo'))).length,
  links: [...document.querySelectorAll('[href], [src], [action], [formaction]')].map((e) => [e.tagName,
    e.getAttribute('href') ?? e.getAttribute('src') ?? e.getAttribute('action') ?? e.getAttribute('formaction'),
    e.href || e.src || '']),
  h1: document.querySelector('h1')?.textContent, h1children: document.querySelector('h1')?.children.length,
  title: document.title,
  rows: [...document.querySelectorAll('#gallery tbody tr')].map((r) => [r.getAttribute('data-image'),
    r.querySelector('td.photo b')?.textContent, r.querySelector('td.photo div')?.textContent]),
  classes: [...document.querySelectorAll('#f-class option')].map((o) => o.textContent),
  methods: [...document.querySelectorAll('#gallery thead th')].map((th) => th.textContent).slice(1),
  problems: document.querySelector('#problems tbody')?.textContent,
  config: document.getElementById('config')?.textContent,
};
"""


def _inert_page_facts(browser, page: Path, run: Path) -> dict:  # noqa: F811
    """Load ``page`` and check what every hostile page must hold; returns the DOM facts for more checks."""
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(page.resolve().as_uri())
    images = browser.find_elements(By.CSS_SELECTOR, "#gallery img")
    for image in images:  # lazy images load once scrolled into view
        browser.execute_script("arguments[0].scrollIntoView()", image)
    WebDriverWait(browser, 20).until(lambda b: all(b.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", image) for image in images))
    facts = browser.execute_script(FACTS)
    assert (facts["pwned"], facts["handlers"], facts["strays"]) == (0, [], 0)  # nothing injected ran or was made
    assert set(facts["tags"]) - ALLOWED_TAGS == set() and facts["scripts"] == 2 and facts["h1children"] == 0
    for tag, written, absolute in facts["links"]:
        if written.startswith("#s-"):
            continue  # the page's own table of contents
        assert URL_PATTERN.fullmatch(written), (tag, written)
        address = urlparse(absolute)
        assert address.scheme == "file" and not address.query and not address.fragment
        assert Path(unquote(address.path)).resolve().is_relative_to(run.resolve()), written
        assert Path(unquote(address.path)).is_file(), written
    return facts


def test_an_explain_folder_of_hostile_names_shows_them_as_text(explain_run, browser):  # noqa: F811
    facts = _inert_page_facts(browser, explain_run / "report" / "report.html", explain_run)
    assert facts["h1"] == f"explain: {FOLDER}" and facts["title"].startswith(f"explain: {FOLDER}")
    assert sorted(row[0] for row in facts["rows"]) == sorted(FILE_NAMES)
    assert all(row[0] == row[1] for row in facts["rows"])  # the data attribute and the text are the name itself
    classes = {PAYLOADS[k % len(PAYLOADS)] for k in range(len(FILE_NAMES))}
    assert set(facts["classes"][1:]) == classes and {row[2] for row in facts["rows"]} == classes
    assert json.loads(facts["config"])["methods"]["gradcam"] == {f"p{k}": p for k, p in enumerate(PAYLOADS)}
    overlays = [link for link in facts["links"] if link[0] == "A" and not link[1].startswith("#")]
    assert len(overlays) == len(FILE_NAMES)  # each thumbnail links to its overlay, a file of the run


def test_a_bench_run_of_hostile_photo_and_folder_names_shows_them_as_text(bench_run, browser):  # noqa: F811
    facts = _inert_page_facts(browser, bench_run / "report" / "report.html", bench_run)
    assert facts["h1"] == f"bench: {bench_run.parent.parent / 'photos' / FOLDER}"
    assert sorted(row[0] for row in facts["rows"]) == sorted(FILE_NAMES)
    images = [link for link in facts["links"] if link[0] == "IMG"]
    assert len(images) == 2 * len(FILE_NAMES)  # every thumbnail, names with #, ? and % included, loaded
    assert {"a%23b.jpg", "a%3Fb%3D1%26c%3D2.jpg", "100%25%20%25zz%20%252e%252e.jpg"} <= {
        link[1].rsplit("/", 1)[1] for link in images}


def test_records_of_hostile_images_methods_and_reasons_show_them_as_text(records_run, browser):  # noqa: F811
    facts = _inert_page_facts(browser, records_run / "report" / "report.html", records_run)
    assert facts["h1"] == f"bench: {FOLDER}"
    assert set(PAYLOADS) <= {row[0] for row in facts["rows"]} and all(row[0] == row[1] for row in facts["rows"])
    assert set(PAYLOADS) <= set(facts["classes"][1:])
    assert facts["methods"] == list(METHODS)
    assert all(PAYLOADS[k] in facts["problems"] for k in range(4, len(PAYLOADS), 5))


def test_the_policy_blocks_what_escaping_would_miss(records_run, browser):  # noqa: F811
    """A page whose body gained an inline handler and an inline script (as an escaping bug would do)."""
    page = records_run / "report" / "report.html"
    probe = page.with_name("probe.html")
    injected = f"<body><img src=x onerror=\"{PWN.format('handler')}\"><script>{PWN.format('inline')}</script>"
    probe.write_text(page.read_text().replace("<body>", injected, 1))
    browser.get(probe.resolve().as_uri())
    assert browser.execute_script("return document.body.getAttribute('data-pwned')") is None
    assert browser.execute_script("return document.querySelectorAll('#gallery tbody tr').length") > 0  # own script ran
    probe.unlink()


BAD_URLS = ("javascript:alert(1)", "JaVaScRiPt:alert(1)", "data:image/png;base64,AA==", "https://example.org/x.jpg",
            "//example.org/x.jpg", "/etc/hostname", "thumbs/x.jpg#y", " ./x.jpg", "./x.jpg?y", "./a b.jpg", "./x.jpg\n")


def test_the_page_script_refuses_a_link_that_is_no_relative_file(tmp_path, browser):  # noqa: F811
    """The page's own check, behind the Python one: data whose ``t``/``f`` is no relative file path gives no link."""
    urls = BAD_URLS + ("./thumbs/m/fine%23.jpg",)  # the last one is a file of the run: it is shown
    images = [{"n": f"x{k}", "l": "", "c": {"m": {"v": {"m": 0.5}, "s": "ok", "t": url, "f": url}}}
              for k, url in enumerate(urls)]
    data = {"title": "t", "kind": "bench", "methods": ["m"], "metrics": ["m"], "summary": [], "curves": {},
            "problems": [], "config": {}, "notes": [], "images": images}
    (tmp_path / "report.html").write_text(render(data))
    browser.get((tmp_path / "report.html").as_uri())
    assert browser.execute_script("return document.querySelectorAll('#gallery tbody tr').length") == len(urls)
    shown = browser.execute_script("return [...document.querySelectorAll('#gallery [src], #gallery [href]')]"
                                   ".map((e) => e.getAttribute('src') || e.getAttribute('href'))")
    assert shown == [urls[-1], urls[-1]]


# ---------------------------------------------------------------- what maskscope report refuses

def test_report_out_never_replaces_a_page_it_did_not_write(explain_run, tmp_path, capsys):
    mine = tmp_path / "site" / "report.html"
    mine.parent.mkdir()
    mine.write_text("<html>my own page</html>")
    assert main(["report", str(explain_run), "--out", str(mine.parent), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "not written by maskscope report" in error and str(mine) in error
    assert mine.read_text() == "<html>my own page</html>" and not (mine.parent / "thumbs").exists()
    with pytest.raises(MaskscopeValueError):
        write_report(explain_run, mine.parent, progress=False)


def test_report_out_replaces_a_page_maskscope_wrote(explain_run, tmp_path):
    out = tmp_path / "out"
    first = write_report(explain_run, out, progress=False)
    first.write_text(first.read_text().replace("maskscope report</p>", "maskscope report</p><p>old</p>", 1))
    assert write_report(explain_run, out, progress=False) == first and "<p>old</p>" not in first.read_text()
    assert sorted(path.name for path in out.iterdir()) == ["report.html", "thumbs"]  # no temporary file left


@pytest.mark.parametrize(("line", "says"), [
    ('{"image": "b", "method": "centre"}', "records.jsonl:2: the record lacks metric, status"),
    ('{"image": "b", "method": "centre", "metric": "deletion", "status": "ok", "values": {"auc": 1}}',
     "records.jsonl:2: the deletion record lacks its values fractions, scores"),
    ('{"image": "b", "method": "centre", "metric": "deletion", "status": "ok"', "records.jsonl:2: not a JSON record"),
    ('["b", "centre"]', "records.jsonl:2: a record is a JSON object"),
    ('{"image": 5, "method": "centre", "metric": "deletion", "status": "ok"}', "records.jsonl:2: the record lacks image"),
])
def test_a_bad_records_line_is_one_line_naming_the_file_and_line(tmp_path, capsys, line, says):
    good = {"image": "a", "method": "centre", "metric": "deletion", "status": "ok",
            "values": {"auc": 0.5, "fractions": [0.0, 1.0], "scores": [1.0, 0.0]}}
    (tmp_path / "records.jsonl").write_text(json.dumps(good) + "\n" + line + "\n")
    assert main(["report", str(tmp_path), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and says in error and "Traceback" not in error
    assert not (tmp_path / "report").exists()


def test_an_unfinished_last_line_is_left_out_and_the_run_is_not_changed(tmp_path):
    good = {"image": "a", "method": "centre", "metric": "deletion", "status": "ok",
            "values": {"auc": 0.5, "fractions": [0.0, 1.0], "scores": [1.0, 0.0]}}
    text = json.dumps(good) + "\n" + '{"image": "b", "meth'
    (tmp_path / "records.jsonl").write_text(text)
    write_report(tmp_path, progress=False)
    assert [image["n"] for image in _page_json(tmp_path / "report" / "report.html")["images"]] == ["a"]
    assert (tmp_path / "records.jsonl").read_text() == text  # a bench still writing it keeps its line


def test_an_explain_record_without_its_method_is_one_line(explain_run, tmp_path, capsys):
    record = next(explain_run.glob("*.json"))
    (tmp_path / record.name).write_text(json.dumps({**json.loads(record.read_text()), "method": None}))
    np.save(tmp_path / record.with_suffix(".npy").name, np.zeros((4, 4), np.float32))
    assert main(["report", str(tmp_path), "--quiet"]) == 2
    error = capsys.readouterr().err
    assert error.count("\n") == 1 and "names its method" in error
