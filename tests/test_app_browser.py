"""The browser demo (`examples/app/app.py`) served for real and driven in headless Chromium: the page loads fast, and
the types it shows for a typed or selected mention, and for typed candidate labels, are the pipeline's own; bad input
shows the pipeline's message and no traceback.

Needs gradio and selenium (the `[app]` extra) and Debian's `chromium` and `chromium-driver`; without them the test
skips, naming what is missing, except under CI (`CI` set), where it fails.
"""

import importlib.util
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from tiny import make_tiny_model, make_tiny_tokenizer


pytestmark = pytest.mark.slow  # a server process and a browser: about 20 s, run by CI's slow set

APP = Path(__file__).resolve().parents[1] / "examples" / "app" / "app.py"
CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
CHROMIUM_FLAGS = (
    "--headless --no-sandbox --disable-gpu --disable-quic --no-first-run --disable-background-networking "
    "--disable-component-update --disable-sync --window-size=1280,1000"
).split()
PAGE_LOAD_LIMIT_S = 10.0
TEXT = "paris wrote to mark twain , and paris is a big city ."
SECOND_PARIS = (TEXT.rindex("paris"), TEXT.rindex("paris") + len("paris"))


def missing_requirements() -> list[str]:
    """What the test needs and this machine lacks, each with how to install it."""
    missing = [
        f"{name} (pip install -e '.[app]')" for name in ("gradio", "selenium") if not importlib.util.find_spec(name)
    ]
    missing += [
        f"{path} (apt-get install chromium chromium-driver)" for path in (CHROMIUM, CHROMEDRIVER) if not path.is_file()
    ]
    return missing


@pytest.fixture(scope="module", autouse=True)
def browser_requirements():
    """Skip in a user's clone without the browser stack; fail under CI, which installs it (`.ci/run`)."""
    missing = missing_requirements()
    if missing and os.environ.get("CI"):
        pytest.fail(f"the browser test needs {', '.join(missing)}; CI must provide them")
    if missing:
        pytest.skip(f"the browser test needs {', '.join(missing)}")


@pytest.fixture(scope="module")
def model_folder(tmp_path_factory) -> str:
    """A tiny random FiveFine model saved with its tokenizer, as `save_pretrained` writes any trained one."""
    path = tmp_path_factory.mktemp("tiny-app-model")
    tokenizer = make_tiny_tokenizer()
    make_tiny_model(tokenizer).save_pretrained(path)
    tokenizer.save_pretrained(path)
    return str(path)


@pytest.fixture(scope="module")
def typer(model_folder):
    """The pipeline loaded straight from the folder: what the page must agree with."""
    from transformers import pipeline

    import modeling_entity_typing  # noqa: F401  (registers the task)

    return pipeline("entity-typing", model=model_folder)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def app_url(model_folder, tmp_path_factory):
    """The app served from a subprocess on a free local port, stopped after the module."""
    port = free_port()
    log_path = tmp_path_factory.mktemp("app-log") / "app.log"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "GRADIO_ANALYTICS_ENABLED": "False"}
    command = [sys.executable, str(APP), "--model", model_folder, "--host", "127.0.0.1", "--port", str(port)]
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180  # imports and model load on a busy 2-core machine
        while True:
            if process.poll() is not None:
                pytest.fail(f"the app exited with {process.returncode}:\n{log_path.read_text()}")
            try:
                with urllib.request.urlopen(url, timeout=5) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the app did not answer on {url} within 180 s:\n{log_path.read_text()}")
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture
def driver(tmp_path):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for flag in [*CHROMIUM_FLAGS, f"--user-data-dir={tmp_path / 'chromium-profile'}"]:
        options.add_argument(flag)
    # An explicit driver path: selenium-manager (which would download a driver) is never run.
    browser = webdriver.Chrome(service=Service(executable_path=str(CHROMEDRIVER)), options=options)
    browser.set_page_load_timeout(60)
    yield browser
    browser.quit()


def field(browser, elem_id: str):
    return browser.find_element("css selector", f"#{elem_id} textarea, #{elem_id} input")


def fill(browser, values: dict[str, str], submit: bool = True) -> None:
    """Replace the text of the page's boxes (by elem_id), then press the button."""
    from selenium.webdriver.common.keys import Keys

    for elem_id, value in values.items():
        box = field(browser, elem_id)
        box.send_keys(Keys.CONTROL, "a")  # keystrokes, not `clear()`: the page only sees input events
        box.send_keys(Keys.BACKSPACE, value)
    if submit:
        browser.find_element("id", "submit").click()


def shown_scores(browser) -> list[tuple[str, float]]:
    """The labels the page shows, top to bottom, with the score of each bar.

    Gradio re-renders the bars when an answer arrives; a row found just before that is gone when it is read (a stale
    element, seen in CI under full CPU load), so the page is read again, a few times at most."""
    from selenium.common.exceptions import StaleElementReferenceException

    for attempt in range(5):
        try:
            rows = browser.find_elements("css selector", "#scores [data-testid$='-confidence-set']")
            return [
                (
                    row.find_element("css selector", "dt").text,
                    float(row.find_element("tag name", "meter").get_attribute("value")),
                )
                for row in rows
            ]
        except StaleElementReferenceException:
            if attempt == 4:
                raise
            time.sleep(0.2)


def status_text(browser) -> str:
    return browser.find_element("id", "status").text


def wait_for(browser, condition, what: str, timeout: float = 60.0):
    """Wait until `condition(browser)` is true; fail saying what was expected and what the page shows."""
    from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        WebDriverWait(
            browser, timeout, poll_frequency=0.2, ignored_exceptions=(StaleElementReferenceException,)
        ).until(condition)
    except TimeoutException:
        pytest.fail(
            f"waited {timeout} s for {what}; the page shows {shown_scores(browser)} / {status_text(browser)!r}"
        )


def expect_labels(browser, expected: dict) -> None:
    """The page's labels become exactly the pipeline's, in its order; then their scores are the pipeline's."""
    labels = [item["label"] for item in expected["labels"]]
    wait_for(browser, lambda b: [label for label, _ in shown_scores(b)] == labels, f"the labels {labels}")
    scores = [score for _, score in shown_scores(browser)]
    assert scores == pytest.approx([item["score"] for item in expected["labels"]], abs=1e-6)
    start, end = expected["span"]
    assert f"(characters {start} to {end})" in status_text(browser)


def test_the_page_types_like_the_pipeline(driver, app_url, typer, tmp_path):
    started = time.monotonic()
    driver.get(app_url)
    wait_for(driver, lambda b: b.find_elements("id", "submit"), "the page", timeout=PAGE_LOAD_LIMIT_S)
    load_seconds = time.monotonic() - started
    print(f"page load: {load_seconds:.2f} s")
    assert load_seconds < PAGE_LOAD_LIMIT_S

    # a typed mention, capped at 3 labels
    fill(driver, {"text": TEXT, "mention": "mark twain", "labels": "", "threshold": "", "top-k": "3"})
    expected = typer(TEXT, span="mark twain", top_k=3)
    assert len(expected["labels"]) == 3
    expect_labels(driver, expected)
    spans = driver.find_element("id", "spans").text.lower()  # the mention, tagged with its best type
    assert "mark twain" in spans and expected["labels"][0]["label"].lower() in spans

    # the mention selected in the text: its offsets, so the second "paris" is typed, not the first
    first, second = (typer(TEXT, span=span, threshold=0.0) for span in ("paris", SECOND_PARIS))
    assert first["labels"] != second["labels"]  # otherwise this step could not tell the two apart
    fill(driver, {"mention": "", "top-k": "", "threshold": "0"}, submit=False)
    select = "arguments[0].focus(); arguments[0].setSelectionRange(arguments[1], arguments[2]);"
    driver.execute_script(select, field(driver, "text"), *SECOND_PARIS)
    wait_for(
        driver, lambda b: field(b, "mention").get_attribute("value") == "paris", "the selection in the mention box"
    )
    driver.find_element("id", "submit").click()
    expect_labels(driver, second)

    # typed candidate labels
    fill(driver, {"mention": "mark twain", "labels": "writer, city\nsports team", "threshold": "0"})
    expected = typer(TEXT, span="mark twain", threshold=0.0, candidate_labels=["writer", "city", "sports team"])
    expect_labels(driver, expected)
    driver.save_screenshot(str(tmp_path / "app.png"))
    assert (tmp_path / "app.png").stat().st_size > 0


@pytest.mark.parametrize(
    ("text", "mention", "threshold", "options"),
    [(TEXT, "zurich", "", {}), (TEXT, "mark twain", "1.5", {"threshold": 1.5}), ("", "paris", "", {})],
    ids=["mention-not-in-text", "threshold-out-of-range", "empty-text"],
)
def test_bad_input_shows_the_pipeline_message(driver, app_url, typer, text, mention, threshold, options):
    with pytest.raises(ValueError) as raised:
        typer(text, span=mention, **options)
    driver.get(app_url)
    wait_for(driver, lambda b: b.find_elements("id", "submit"), "the page")
    fill(driver, {"text": text, "mention": mention, "threshold": threshold})
    message = str(raised.value)
    wait_for(driver, lambda b: message in status_text(b), f"the message {message!r}")
    assert status_text(driver) == f"Error: {message}"
    assert shown_scores(driver) == []
    assert "Traceback" not in driver.page_source
