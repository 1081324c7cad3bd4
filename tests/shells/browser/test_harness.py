"""The harness itself: a superuser signs in to the live admin, whose static files are served with DEBUG off."""
from __future__ import annotations

import httpx

from tests.shells.browser.conftest import find, wait_until


def test_a_superuser_signs_in_and_the_admin_is_styled(login, admin_url) -> None:
    page = login()
    assert page.current_url.rstrip("/").endswith("/admin")
    stylesheet = find(page, "link[rel=stylesheet][href*='admin/css/base']").get_attribute("href")
    assert stylesheet and httpx.get(stylesheet, timeout=10).status_code == 200, stylesheet
    # The stylesheet applied: Django's header bar is not the browser's default white.
    header = find(page, "#header")
    wait_until(page, lambda d: header.value_of_css_property("background-color") != "rgba(0, 0, 0, 0)",
               "the admin's stylesheet to apply")


def test_a_wrong_password_stays_on_the_login_page(page, admin_url, admin) -> None:
    page.get(f"{admin_url}/admin/login/")
    find(page, "input[name=username]").send_keys(admin.username)
    find(page, "input[name=password]").send_keys("not-the-password")
    find(page, "input[type=submit]").click()
    wait_until(page, lambda d: "/admin/login/" in d.current_url and "errornote" in d.page_source,
               "the login form's error")
