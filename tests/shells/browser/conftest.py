"""The admin in a real browser: a live gunicorn, a real worker, and Debian's headless Chromium.

``admin_url``: one gunicorn (2 workers, 4 threads each) for the session,
``DEBUG=false``, serving the admin's static files through whitenoise (its
finders: no collectstatic step), on the test database; a server error's
traceback goes to its log (``admin-gunicorn.log`` under the session's
``admin-server`` folder). ``browser``: one Chromium for the
session, driven through Debian's ``chromium-driver``; selenium-manager is
never asked to download a browser or a driver (``SE_OFFLINE``), and a
missing ``chromium`` fails the test with the command that installs it.
``page``: the browser for one test, logged out, and saving a screenshot and
the page's HTML under ``<basetemp>/browser-artifacts/`` when the test fails.
``admin``: a superuser with a known password; ``login`` signs it in.
``worker``: one real Celery worker on the test database (``stack``).
"""
from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from django.conf import settings
from django.contrib.auth import get_user_model
from selenium import webdriver
from selenium.common.exceptions import TimeoutException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webdriver import WebDriver
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.conftest import Stack, _database_url
from tests.shells.api.conftest import start_api

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
INSTALL = "apt-get install -y chromium chromium-driver"
PASSWORD = "correct-horse-battery-staple"  # a test user's password


@dataclass(frozen=True)
class AdminUser:
    username: str
    password: str
    pk: int


@pytest.fixture(scope="session")
def admin_url(django_db_setup, tmp_path_factory) -> Iterator[str]:
    """The base URL of a live gunicorn serving the admin (``…/admin/``) with DEBUG off."""
    env = {**os.environ, "DATABASE_URL": _database_url(), "REDIS_URL": settings.CELERY_BROKER_URL,
           "PYTHONUNBUFFERED": "1", "DEBUG": "false",
           # A 500's traceback in the server's log (see server_settings).
           "DJANGO_SETTINGS_MODULE": "tests.shells.browser.server_settings",
           # Threads: Chromium opens spare connections it may never use, and each
           # would hold a sync worker until gunicorn's timeout.
           "GUNICORN_CMD_ARGS": "--threads 4"}
    server = Stack(env, tmp_path_factory.mktemp("admin-server"))
    try:
        api = start_api(server, name="admin-gunicorn")
        yield api.removesuffix("/api/v1")
    finally:
        server.stop_all()  # before the test database is dropped: its connections would hold it


def _require(path: str, what: str) -> None:
    if not (Path(path).is_file() and os.access(path, os.X_OK)):
        pytest.fail(f"the browser tests need Debian's {what} at {path}: {INSTALL}", pytrace=False)


def chromium_options() -> webdriver.ChromeOptions:
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1400,1000",
                     "--disable-gpu", "--lang=en-US"):
        options.add_argument(argument)
    return options


@pytest.fixture(scope="session")
def browser(tmp_path_factory) -> Iterator[WebDriver]:
    """One headless Chromium for the session (starting one costs seconds of the two cores)."""
    _require(CHROMIUM, "chromium")
    _require(CHROMEDRIVER, "chromium-driver")
    # Both paths are given, so selenium-manager has nothing to find; offline it could not download anyway.
    os.environ["SE_OFFLINE"] = "true"
    log = tmp_path_factory.mktemp("chromedriver") / "chromedriver.log"
    driver = webdriver.Chrome(options=chromium_options(), service=Service(CHROMEDRIVER, log_output=str(log)))
    driver.set_page_load_timeout(60)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    report = yield
    setattr(item, f"report_{report.when}", report)  # read by ``page`` when it tears down
    return report


@pytest.fixture
def page(request: pytest.FixtureRequest, browser: WebDriver, admin_url: str,
         tmp_path_factory: pytest.TempPathFactory) -> Iterator[WebDriver]:
    """The browser for one test, with no session left over from the last; a screenshot when it fails."""
    browser.delete_all_cookies()
    yield browser
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        saved = save_artifacts(browser, tmp_path_factory.getbasetemp() / "browser-artifacts", request.node.name)
        print(f"\nbrowser artifacts of {request.node.nodeid}: {', '.join(map(str, saved))}")


def save_artifacts(driver: WebDriver, folder: Path, name: str) -> list[Path]:
    """A screenshot and the HTML of the page the browser is on, named after the test."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = re.sub(r"[^A-Za-z0-9_.-]+", "_", name)[:120]
    png, html = folder / f"{stem}.png", folder / f"{stem}.html"
    driver.save_screenshot(str(png))
    html.write_text(f"<!-- {driver.current_url} -->\n{driver.page_source}")
    return [png, html]


@pytest.fixture
def admin(transactional_db) -> AdminUser:
    user = get_user_model().objects.create_superuser("root", "root@example.test", PASSWORD)
    return AdminUser(user.get_username(), PASSWORD, user.pk)


@pytest.fixture
def login(page: WebDriver, admin_url: str, admin: AdminUser) -> Callable[..., WebDriver]:
    """Sign ``admin`` (or another user) in through the admin's login form; returns the driver."""
    def sign_in(user: AdminUser = admin) -> WebDriver:
        page.get(f"{admin_url}/admin/login/?next=/admin/")
        page.find_element(By.NAME, "username").send_keys(user.username)
        page.find_element(By.NAME, "password").send_keys(user.password)
        page.find_element(By.CSS_SELECTOR, "input[type=submit], button[type=submit]").click()
        wait_until(page, lambda d: "/admin/login/" not in d.current_url, "the login to go through")
        # The click's navigation must finish before the test navigates again: a ``get``
        # issued while the landing page still loads can return on the landing page's
        # load, before the asked-for page's document exists.
        wait_until(page, lambda d: d.execute_script("return document.readyState") == "complete"
                   and d.find_elements(By.CSS_SELECTOR, "#logout-form"), "the landing page to load signed in")
        return page
    return sign_in


@pytest.fixture
def worker(stack: Stack) -> subprocess.Popen:
    """One real Celery worker on the test database and queue."""
    return stack.worker()


def wait_until(driver: WebDriver, condition: Callable[[WebDriver], object], what: str,
               timeout: float = 30) -> object:
    """Wait for a condition in the page; a timeout names what never happened, with the page's URL."""
    try:
        return WebDriverWait(driver, timeout, poll_frequency=0.2).until(condition)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout}s waiting for {what} on {driver.current_url}") from None


def text_of(driver: WebDriver, css: str) -> str:
    return find(driver, css).text


def find(driver: WebDriver, css: str, timeout: float = 10) -> WebElement:
    """The first element matching ``css``, waited for: a page may still be building it."""
    found = wait_until(driver, lambda d: d.find_elements(By.CSS_SELECTOR, css), f"an element matching {css!r}",
                       timeout=timeout)
    return found[0]  # type: ignore[index]

