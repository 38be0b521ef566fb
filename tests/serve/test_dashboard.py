"""The dashboard in a real headless browser (Debian's chromium + chromedriver, via Selenium)."""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serve.conftest import Served

webdriver = pytest.importorskip("selenium.webdriver")
CHROMIUM, DRIVER = "/usr/bin/chromium", "/usr/bin/chromedriver"


@pytest.fixture()
def live_server(served: Served) -> Iterator[str]:
    import uvicorn

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(served.app, host="127.0.0.1", port=port, access_log=False,
                                           log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.time() + 20
    while not server.started and time.time() < deadline:
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


def test_dashboard_looks_up_a_user_and_draws_charts(served: Served, live_server: str) -> None:
    if not (Path(CHROMIUM).exists() and Path(DRIVER).exists()):
        pytest.skip("chromium/chromedriver missing: run `make chromium`")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service as DriverService
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    key = served.service.keys.create(["read", "admin"])
    profile = tempfile.mkdtemp(prefix="socialrec-chromium-")
    options = Options()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=DriverService(DRIVER), options=options)
    try:
        served.recs("user_0005")  # traffic for the charts
        driver.get(f"{live_server}/#key={key}")
        driver.find_element(By.ID, "user").send_keys("user_0005")
        driver.find_element(By.ID, "lookup").click()
        wait = WebDriverWait(driver, 20)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#recs li .why")) == 10)
        sentences = [e.text for e in driver.find_elements(By.CSS_SELECTOR, "#recs li .why")]
        assert all("recommended because" in s for s in sentences)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#friends li")) == 10)
        wait.until(lambda d: len(d.find_elements(By.CSS_SELECTOR, "#activity li")) >= 1)
        wait.until(lambda d: d.find_element(By.ID, "chart-rps").get_attribute("data-points") not in (None, "", "0"))
        assert driver.find_element(By.ID, "p99").text not in ("", "-")
        wait.until(lambda d: d.find_element(By.ID, "chart-trends").get_attribute("data-points") not in (None, "", "0"))
        assert "model v" in driver.find_element(By.ID, "status").text
    finally:
        driver.quit()
        shutil.rmtree(profile, ignore_errors=True)
