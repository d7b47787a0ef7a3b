# The browser fixtures live with the browser harness in portal/tests/browser; driver browser
# tests use the same ones.
from portal.tests.browser.conftest import browser, page, width  # noqa: F401
