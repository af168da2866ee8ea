"""A real browser on the real app: headless Chromium uploads a photo, runs Compare, and sees the results.

Playwright drives the system's Chromium (Debian's `chromium` package; browser downloads are not possible
here), so this checks what gradio_client cannot: the page loads, the upload widget takes a file, the
Compare button works, and overlays, legends and tables are rendered in the DOM. The screenshot is saved
under test-artifacts/ (path printed). Without Chromium the test is skipped locally and fails under CI=true.
"""

from __future__ import annotations

import os

import pytest
from browser import chromium_page, chromium_path, run_compare, save_compare_view
from conftest import EXAMPLES, REPO

PHOTO = EXAMPLES / "street-city.jpg"
ARTIFACTS = REPO / "test-artifacts"


def _missing(reason: str):
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (required under CI=true; `make test` installs it)")
    pytest.skip(reason)


@pytest.fixture
def browser_page(tmp_path):
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _missing("Playwright for Python is not installed (pip install -r requirements-test.txt)")
    executable = chromium_path()
    if executable is None:
        _missing("Chromium is not installed (apt-get install chromium, or set SEGGALLERY_CHROMIUM)")
    with chromium_page(tmp_path / "profile", executable) as page:
        yield page


def test_compare_in_a_real_browser(app_server, browser_page):
    page = browser_page
    status = run_compare(page, app_server.url, PHOTO)
    assert "3 of 3 models ran" in status, status

    overlays = page.locator(".sg-overlay img")
    assert overlays.count() == 3
    for index in range(3):
        natural = overlays.nth(index).evaluate("img => [img.complete, img.naturalWidth, img.naturalHeight]")
        assert natural[0] and natural[1] > 100 and natural[2] > 100, natural

    legends = page.locator(".block.sg-legend-box")  # gradio puts elem_classes on the block and on its content
    filled = [legends.nth(i) for i in range(legends.count()) if legends.nth(i).locator(".sg-swatch").count() > 0]
    assert len(filled) == 3, "one legend per model, each with colour swatches"
    for legend in filled:
        assert legend.is_visible() and "%" in legend.inner_text()

    captions = page.locator(".block.sg-caption")
    assert sum(" ms on cpu" in captions.nth(i).inner_text() for i in range(captions.count())) == 3

    headers = " ".join(page.locator("[role=columnheader]").all_inner_texts())
    cells = [text.strip() for text in page.get_by_role("gridcell").all_inner_texts()]
    for name in ("FCN ResNet-50", "DeepLabV3 ResNet-50", "LR-ASPP MobileNetV3-Large"):
        assert f"{name} %" in headers, f"the area table has a column for {name}"
        assert name in cells, f"the timing table has a row for {name}"
    assert "forward" in headers and cells.count("cold (includes loading)") + cells.count("warm") == 3
    assert cells.count("voc21") >= 2, "the area table has a row per class found"
    ARTIFACTS.mkdir(exist_ok=True)
    screenshot, view = ARTIFACTS / "browser-compare.png", ARTIFACTS / "browser-compare-view.png"
    page.screenshot(path=str(screenshot), full_page=True)
    save_compare_view(page, view)  # what tests/browser.py saves as assets/screenshot.jpg
    print(f"\nbrowser screenshots: {screenshot} (whole page), {view} (Compare view)")
    assert screenshot.stat().st_size > 50_000 and view.stat().st_size > 50_000

    # removing a model by hand leaves the selection of no preset, and the preset picker says so
    from playwright.sync_api import expect

    from seggallery.catalog import presets

    preset = page.get_by_label("Preset", exact=True)
    expect(preset).to_have_value(next(iter(presets())))  # the default preset, whose models just ran
    page.locator(".token button, .token .token-remove").last.click()
    expect(preset).to_have_value("", timeout=20_000)
    assert page.uncaught == [], f"uncaught errors in the page: {page.uncaught}"
