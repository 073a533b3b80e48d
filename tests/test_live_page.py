"""The live web page in a real headless Chromium (Debian's, installed by `make browser`), driven by Selenium:
it loads from a server with an access token, asks for the token, takes a photo and an audio file and draws
the frames as they arrive, then does the same with a (fake) microphone. A screenshot of the page with
frames arriving is saved; set LIVE_PAGE_SCREENSHOT to a path (e.g. docs/images/live_page.png) to keep it,
and LIVE_PAGE_MODEL to a model file to show a trained one."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from talking_face.conditioning.bundle import TalkingFaceModel
from talking_face.serving.server import ServerSettings
from talking_face.serving.video import torch_threads
from tests.generation_inputs import photo, speech, write_audio, write_image
from tests.live_server import running_server, small_model

BROWSERS = ("chromium", "chromium-browser", "google-chrome")
TOKEN = "page-token-0123456789"


def browser_paths() -> tuple[str, str] | None:
    browser = next((path for path in map(shutil.which, BROWSERS) if path), None)
    driver = shutil.which("chromedriver")
    return (browser, driver) if browser and driver else None


pytestmark = pytest.mark.skipif(
    browser_paths() is None,
    reason="no Chromium with chromedriver on PATH: `make browser` installs Debian's chromium and chromium-driver",
)


@pytest.fixture
def browser():
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    binary, driver_path = browser_paths()
    options = webdriver.ChromeOptions()
    options.binary_location = binary
    for flag in (
        "--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1000,860",
        "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream",
        "--autoplay-policy=no-user-gesture-required",
    ):  # fmt: skip
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(driver_path))
    driver.set_page_load_timeout(30)
    yield driver
    driver.quit()


def canvas_spread(driver) -> float:
    """The standard deviation of the canvas's pixel values (0 while nothing has been drawn)."""
    return driver.execute_script(
        """const c = document.getElementById('face');
        const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let sum = 0, sq = 0;
        for (let i = 0; i < d.length; i++) { sum += d[i]; sq += d[i] * d[i]; }
        const mean = sum / d.length; return Math.sqrt(sq / d.length - mean * mean);"""
    )


def test_the_page_streams_a_photo_and_speech_and_draws_the_frames(browser, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    model_file = os.environ.get("LIVE_PAGE_MODEL")
    model = TalkingFaceModel.load(model_file) if model_file else small_model(tmp_path)
    image = write_image(tmp_path / "face.png", photo(320))
    audio = write_audio(tmp_path / "speech.wav", speech(3.0))
    wait = WebDriverWait(browser, 60, poll_frequency=0.05)
    count = lambda: int(browser.find_element(By.ID, "frame-count").text)  # noqa: E731
    status = lambda: browser.find_element(By.ID, "status").text  # noqa: E731

    settings = ServerSettings(max_sessions=2, threads=1, token=TOKEN)
    with torch_threads(1), running_server(model, settings) as base:
        browser.get(base + "/")
        assert browser.title == "talking-face live"
        assert not browser.find_element(By.ID, "mic").is_enabled()  # no photo yet
        wait.until(lambda _: browser.find_element(By.ID, "token").is_displayed())  # the server wants a token
        browser.find_element(By.ID, "token").send_keys(TOKEN)
        browser.find_element(By.ID, "photo").send_keys(str(image))
        browser.find_element(By.ID, "audio").send_keys(str(audio))
        wait.until(lambda _: browser.find_element(By.ID, "play-file").is_enabled())
        browser.find_element(By.ID, "play-file").click()

        wait.until(lambda _: count() >= 30 or "Error" in status())
        assert "Error" not in status()
        assert browser.find_element(By.ID, "lookahead").text == "200"
        wait.until(lambda _: canvas_spread(browser) > 10)  # the frames due by now are drawn
        screenshot = tmp_path / "live_page.png"
        browser.save_screenshot(str(screenshot))
        wait.until(lambda _: status().startswith("Done"))
        assert status() == "Done: 75 frames." and count() == 75

        browser.find_element(By.ID, "mic").click()  # Chromium's fake microphone: a beep every second
        wait.until(lambda _: status().startswith(("Listening", "Error")))
        assert status().startswith("Listening")
        wait.until(lambda _: count() >= 10 or "Error" in status())
        browser.find_element(By.ID, "stop").click()
        wait.until(lambda _: status().startswith("Done"))
        assert browser.find_element(By.ID, "mic").is_enabled()

    severe = [entry["message"] for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
    assert severe == []
    if os.environ.get("LIVE_PAGE_SCREENSHOT"):
        target = Path(os.environ["LIVE_PAGE_SCREENSHOT"])
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(screenshot, target)
