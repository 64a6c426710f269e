"""Notebook 06 in a real browser: JupyterLab, headless Chromium, a slider moved by the keyboard.

Runs a copy of the notebook in a private JupyterLab (127.0.0.1, a token, its own settings and
run folder) so the committed notebook is never touched. Needs Debian's `chromium` (apt) and
Playwright for Python, which drives it through the system executable: no browser download.
Skipped with the reason when either is missing; `.ci/run` installs Chromium first.
"""

from __future__ import annotations

import hashlib
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

NOTEBOOK = Path(__file__).resolve().parents[1] / "notebooks" / "06_controllable_editing.ipynb"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu",
                 "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
RUN_ALL_SECONDS = 600  # the smoke profile trains its networks first in an empty run folder


def chromium_path() -> str | None:
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if path := shutil.which(name):
            return path
    return None


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_settings(folder: Path) -> None:
    """JupyterLab user settings: no autosave (it would write outputs into the copy while the
    test reads it), no news or update toasts (they cover the notebook), and every cell kept in
    the page (by default cells scrolled out of view are detached, prompts and all)."""
    settings = {
        "@jupyterlab/docmanager-extension/plugin.jupyterlab-settings": {"autosave": False},
        "@jupyterlab/notebook-extension/tracker.jupyterlab-settings": {"windowingMode": "none"},
        "@jupyterlab/apputils-extension/notification.jupyterlab-settings": {
            "fetchNews": "false", "checkForUpdates": False},
    }
    for name, values in settings.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(values))


def api(url: str, token: str, method: str = "GET") -> object:
    request = urllib.request.Request(url, method=method,
                                     headers={"Authorization": f"token {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture()
def jupyterlab(tmp_path):
    """A JupyterLab server on a free port serving a copy of notebook 06 (and the figures it
    reads); yields its URL and token, and stops it (the whole process group) afterwards."""
    work, settings = tmp_path / "work", tmp_path / "settings"
    work.mkdir()
    write_settings(settings)
    shutil.copy(NOTEBOOK, work / NOTEBOOK.name)
    # The notebook reads its committed "before" figure from beside it.
    shutil.copytree(NOTEBOOK.parent / "figures", work / "figures")
    port, token = free_port(), secrets.token_hex(16)
    env = {**os.environ, "UNMASK_PROFILE": "smoke", "UNMASK_RUNS": str(tmp_path / "runs"),
           "JUPYTER_RUNTIME_DIR": str(tmp_path / "runtime")}
    command = [sys.executable, "-m", "jupyter", "lab", "--no-browser", "--ip=127.0.0.1",
               f"--port={port}", f"--IdentityProvider.token={token}",
               f"--ServerApp.root_dir={work}", f"--LabApp.user_settings_dir={settings}",
               f"--LabApp.workspaces_dir={tmp_path / 'workspaces'}", "--allow-root"]
    log = (tmp_path / "server.log").open("w")
    server = subprocess.Popen(command, env=env, stdout=log, stderr=subprocess.STDOUT,
                              start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(120):
            try:
                api(f"{url}/api/status", token)
                break
            except OSError:
                if server.poll() is not None:
                    pytest.fail(f"JupyterLab exited: {(tmp_path / 'server.log').read_text()}")
                time.sleep(0.5)
        else:
            pytest.fail("JupyterLab did not answer within 60 s")
        # A reopened notebook would re-attach an old kernel: start from none.
        for session in api(f"{url}/api/sessions", token):
            api(f"{url}/api/sessions/{session['id']}", token, method="DELETE")
        yield url, token, work / NOTEBOOK.name
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
        log.close()


def test_moving_a_slider_in_the_browser_changes_the_result(jupyterlab):
    browser_path = chromium_path()
    if browser_path is None:
        pytest.skip("no Chromium on this machine (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api",
                                   reason="Playwright for Python is not installed")
    committed = hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest()
    url, token, copy = jupyterlab
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=browser_path, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1400, "height": 1000})
            page.goto(f"{url}/lab/tree/{copy.name}?token={token}")
            page.locator(".jp-Notebook .jp-Cell").first.click(timeout=60_000)
            # "Run All Cells" stays disabled until a cell of the notebook has been clicked.
            page.locator(".lm-MenuBar-itemLabel", has_text="Run").first.click()
            page.get_by_role("menuitem", name="Run All Cells", exact=True).click()
            cells = page.locator(".jp-Notebook .jp-CodeCell")
            prompts = page.locator(".jp-Notebook .jp-CodeCell .jp-InputArea-prompt")
            deadline = time.monotonic() + RUN_ALL_SECONDS
            # Waiting for the kernel's "idle" is racy: wait for every cell's execution count.
            while not all(text.strip()[1:-2].isdigit() for text in prompts.all_inner_texts()):
                outputs = "\n".join(page.locator(".jp-OutputArea-output").all_inner_texts())
                assert "Traceback" not in outputs, outputs[-3000:]
                assert time.monotonic() < deadline, "the notebook did not finish running"
                page.wait_for_timeout(1000)
            assert cells.count() == prompts.count() > 0
            result = page.locator(".jp-Notebook .widget-image").nth(2)
            result.wait_for(timeout=30_000)
            before = result.get_attribute("src")
            handle = page.locator(".widget-slider .noUi-handle").first
            handle.click()
            readout = page.locator(".widget-slider .widget-readout").first.inner_text()
            for _ in range(5):
                handle.press("ArrowRight")
            page.wait_for_function(
                "([element, before]) => element.getAttribute('src') !== before",
                arg=[result.element_handle(), before], timeout=30_000)
            assert page.locator(".widget-slider .widget-readout").first.inner_text() != readout
        finally:
            browser.close()
    assert hashlib.sha256(NOTEBOOK.read_bytes()).hexdigest() == committed
