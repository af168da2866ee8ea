"""Drive the app in headless Chromium: the browser test's helpers, and the README screenshot.

    python tests/browser.py [--out assets/screenshot.jpg] [--photo assets/examples/street-city.jpg] [--ask-at 0.45,0.8]

starts `python app.py` on a free local port with the standard weight caches (so the first run downloads
the default preset's weights), uploads the photo in Chromium, presses Compare with the default preset
(FCN, DeepLabV3, LR-ASPP) and saves the Compare tab down to the model captions. It needs Chromium
(Debian: apt-get install chromium; or set SEGGALLERY_CHROMIUM) and Playwright for Python.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
VIEWPORT = {"width": 1400, "height": 1000}


def chromium_path() -> str | None:
    """$SEGGALLERY_CHROMIUM, Debian's /usr/bin/chromium, or a chromium on PATH."""
    candidates = [os.environ.get("SEGGALLERY_CHROMIUM"), "/usr/bin/chromium", shutil.which("chromium"),
                  shutil.which("chromium-browser")]
    return next((c for c in candidates if c and Path(c).is_file()), None)


@contextlib.contextmanager
def chromium_page(profile_dir: Path, executable: str):
    """A page in a fresh headless Chromium profile; uncaught page errors are collected in page.uncaught."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(profile_dir), executable_path=executable, headless=True, args=CHROMIUM_ARGS, viewport=VIEWPORT)
        page = context.new_page()
        page.uncaught = []
        page.on("pageerror", lambda error: page.uncaught.append(str(error)))
        try:
            yield page
        finally:
            context.close()


def choose_models(page, names: list[str]) -> None:
    """Replace the Compare tab's model selection with `names` (display names, as the dropdown lists them)."""
    picker = page.get_by_label("Models (up to", exact=False)
    for _ in range(10):  # remove the preset's models one by one (each chip has a remove button)
        chips = page.locator(".token button, .token .token-remove")
        if chips.count() == 0:
            break
        chips.first.click()
    for name in names:
        picker.click()
        picker.fill(name)
        page.get_by_role("option", name=name, exact=False).first.click()
    page.keyboard.press("Escape")


def run_compare(page, url: str, photo: Path, timeout_ms: int = 240_000, models: list[str] | None = None) -> str:
    """Open the app, upload `photo`, press Compare (with the default preset, or `models`), wait for the results."""
    page.goto(url, wait_until="domcontentloaded")
    compare = page.get_by_role("button", name="Compare", exact=True)
    compare.wait_for(timeout=60_000)
    if models:
        choose_models(page, models)
    page.locator("input[type=file]").first.set_input_files(str(photo))
    page.locator(".image-frame img, [data-testid=image] img").first.wait_for(timeout=60_000)  # the upload is shown
    compare.click()
    status = page.locator("#sg-status")
    status.get_by_text("models ran").wait_for(timeout=timeout_ms)
    page.locator(".block.sg-caption").last.wait_for(timeout=60_000)
    # the status line can arrive before the browser has fetched the tiles' pictures: wait for those too
    page.wait_for_function("() => [...document.querySelectorAll('.sg-overlay img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)", timeout=60_000)
    return status.inner_text()


def ask_at(page, fx: float = 0.6, fy: float = 0.6) -> str:
    """Point and ask: click the first overlay at (fx, fy) of its size, wait for the answer and for the tiles to be
    redrawn with the point marked; returns the answer's text."""
    first = page.locator(".sg-overlay img").first
    first.wait_for(state="visible")
    page.wait_for_function("() => { const i = document.querySelector('.sg-overlay img'); return i && i.complete && i.naturalWidth > 0; }")
    before = first.get_attribute("src")
    for attempt in range(3):  # a click that lands while the page is still wiring its events is not lost for good
        box = first.bounding_box()
        first.click(position={"x": box["width"] * fx, "y": box["height"] * fy})
        try:
            page.wait_for_function("() => document.querySelector('#sg-inspect').innerText.includes('At (')", timeout=30_000)
            break
        except Exception:  # noqa: BLE001 - playwright's TimeoutError: click again
            if attempt == 2:
                raise
    page.wait_for_function("(old) => document.querySelector('.sg-overlay img').getAttribute('src') !== old", arg=before,
                           timeout=60_000)  # the tiles were redrawn with the point marked
    page.wait_for_function("() => [...document.querySelectorAll('.sg-overlay img')]"
                           ".every(img => img.complete && img.naturalWidth > 0)", timeout=60_000)
    return page.locator("#sg-inspect").inner_text()


def save_compare_view(page, path: Path, with_inspector: bool = False) -> None:
    """The Compare tab from the top down to the last model caption (not the tables below), or down to the point
    and ask answer below the tiles."""
    captions = page.locator(".block.sg-caption")
    boxes = [captions.nth(i).bounding_box() for i in range(captions.count())]
    if with_inspector:
        boxes.append(page.locator("#sg-inspect").bounding_box())
    bottom = max(box["y"] + box["height"] for box in boxes)
    clip = {"x": 0, "y": 0, "width": VIEWPORT["width"], "height": bottom + 24}
    options = {"quality": 85} if path.suffix.lower() in (".jpg", ".jpeg") else {}  # the README's copy stays small
    page.screenshot(path=str(path), full_page=True, clip=clip, **options)


def tile_boxes(page) -> dict[str, list[dict]]:
    """Bounding boxes (x, y, width, height) of the visible grid, and of its tiles' picture blocks and images."""
    return page.evaluate("""() => {
        const box = el => { const r = el.getBoundingClientRect(); return {x: r.x, y: r.y, width: r.width, height: r.height}; };
        const shown = sel => [...document.querySelectorAll(sel)].filter(el => el.offsetParent !== null).map(box);
        return {grid: shown('.sg-grid'), photo: shown('.block.sg-photo'), overlays: shown('.block.sg-overlay'),
                photo_img: shown('.block.sg-photo img'), overlay_imgs: shown('.block.sg-overlay img')};
    }""")


def horizontal_scrolls(page) -> list[str]:
    """What scrolls sideways: the page itself, or any element wider inside than it is (a table in its wrapper)."""
    return page.evaluate("""() => {
        const found = [];
        const root = document.scrollingElement;
        if (root.scrollWidth > root.clientWidth + 1) found.push(`page: ${root.scrollWidth} > ${root.clientWidth}`);
        for (const el of document.querySelectorAll('body *')) {
            if (el.offsetParent === null || el.clientWidth === 0) continue;
            const style = getComputedStyle(el);
            if (!['auto', 'scroll'].includes(style.overflowX)) continue;
            if (el.scrollWidth > el.clientWidth + 1)
                found.push(`${el.tagName.toLowerCase()}.${[...el.classList].join('.')} in #${el.closest('[id]')?.id}: ${el.scrollWidth} > ${el.clientWidth}`);
        }
        return found;
    }""")


@contextlib.contextmanager
def serve_app(timeout_s: float = 180):
    """`python app.py` on a free 127.0.0.1 port; yields its URL."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "GRADIO_SERVER_NAME": "127.0.0.1", "GRADIO_SERVER_PORT": str(port), "GRADIO_ANALYTICS_ENABLED": "False"}
    process = subprocess.Popen([sys.executable, "app.py"], cwd=REPO, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            if process.poll() is not None:
                raise RuntimeError(f"app.py exited with {process.returncode}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(url, timeout=2):
                    break
            if time.monotonic() > deadline:
                raise RuntimeError(f"app.py did not answer on {url} within {timeout_s:.0f} s")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=REPO / "assets" / "screenshot.jpg")
    parser.add_argument("--photo", type=Path, default=REPO / "assets" / "examples" / "street-city.jpg")
    parser.add_argument("--models", default="", help="display names to select, comma separated (default: the default preset)")
    parser.add_argument("--ask-at", default="0.1,0.75", metavar="FX,FY",
                        help="point and ask at this fraction of the first overlay's width and height ('' for no click)")
    args = parser.parse_args(argv)
    executable = chromium_path()
    if executable is None:
        print("Chromium is not installed (apt-get install chromium, or set SEGGALLERY_CHROMIUM)", file=sys.stderr)
        return 2
    with serve_app() as url, tempfile.TemporaryDirectory() as profile, chromium_page(Path(profile), executable) as page:
        status = run_compare(page, url, args.photo, models=[m.strip() for m in args.models.split(",") if m.strip()])
        if args.ask_at:
            fx, fy = (float(v) for v in args.ask_at.split(","))
            status += "\n" + ask_at(page, fx, fy)
        save_compare_view(page, args.out, with_inspector=bool(args.ask_at))
    print(f"{status}\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
