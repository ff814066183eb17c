"""The QRLogin example (Examples/QRLogin) driven in real headless Chromium.

The built `.build/debug/QRLogin` binary (a Hummingbird app with Herald's Relay in the same
ServiceGroup) runs on free ports; Debian's `chromium` is driven through `chromedriver` and
Selenium. The browser loads the login page, whose own client (`herald-client.js`, no
third-party JavaScript) subscribes to `login.<code>` over Herald; the test, as the "third
party", confirms the code with an HTTP POST (or clicks Confirm on the scan page in a second
window); the page receives `wechat.login` over Herald and redirects to the dashboard.

Waits are event-driven (WebDriverWait on the DOM, `wait_until` on HTTP answers), never sleeps.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from browser import headless_chromium
from conftest import free_port, wait_until

ROOT = Path(__file__).resolve().parents[2]
QRLOGIN_BINARY = Path(os.environ.get("QRLOGIN_BINARY", ROOT / ".build" / "debug" / "QRLogin"))
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"
# Generous: CI is a shared 2-core machine, and these are upper bounds, not expectations.
TIMEOUT = 30
CODE_LENGTH = 43  # 256 random bits, base64url


# --------------------------------------------------------------------------------------------
# fixtures


class QRLogin:
    """One QRLogin process on free ports; its output goes to `log_path`."""

    def __init__(self, directory: Path, args: list[str]):
        if not QRLOGIN_BINARY.is_file() or not os.access(QRLOGIN_BINARY, os.X_OK):
            pytest.fail(f"QRLogin binary not found at {QRLOGIN_BINARY}; run `swift build` first")
        self.port = free_port()
        self.herald_port = free_port()
        while self.herald_port == self.port:
            self.herald_port = free_port()
        self.log_path = directory / f"qrlogin-{self.port}.log"
        self.args = [str(QRLOGIN_BINARY), "--host", "127.0.0.1", "--port", str(self.port),
                     "--herald-port", str(self.herald_port), "--log-level", "debug", *args]
        log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT, cwd=directory)
        log.close()
        wait_until(self._ready, timeout=TIMEOUT, message=f"QRLogin on ports {self.port}/{self.herald_port}")

    def _ready(self) -> bool:
        if self.process.poll() is not None:
            pytest.fail(f"QRLogin exited with {self.process.returncode} during start-up:\n{self.log_tail()}")
        try:
            return (requests.get(self.url("/stats"), timeout=1).status_code == 200 and
                    requests.get(self.herald_url("/health"), timeout=1).status_code == 200)
        except requests.ConnectionError:
            return False

    def url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.port}{path}"

    def herald_url(self, path: str = "") -> str:
        return f"http://127.0.0.1:{self.herald_port}{path}"

    def confirm(self, code: str) -> requests.Response:
        """The third party's callback, as `curl -X POST …/confirm/<code>` sends it."""
        return requests.post(self.url(f"/confirm/{code}"), timeout=10)

    def browser_requests(self) -> list[str]:
        """`METHOD route` of every request headless Chromium made to the app, oldest first."""
        stats = requests.get(self.url("/stats"), timeout=5).json()
        return [f"{r['method']} {r['route']}" for r in stats["requests"] if "HeadlessChrome" in r["userAgent"]]

    def log_tail(self, lines: int = 60) -> str:
        return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)


@pytest.fixture
def qrlogin_factory(request, tmp_path):
    """`start(*args)` runs a QRLogin with extra CLI args; stopped after the test, log tail
    printed if the test failed. A process that died or logged a Swift 'Fatal error' fails it."""
    started: list[QRLogin] = []

    def start(*args: str) -> QRLogin:
        app = QRLogin(tmp_path, list(args))
        started.append(app)
        return app

    yield start

    failed = getattr(request.node, "rep_call", None) is not None and request.node.rep_call.failed
    problems = []
    for app in started:
        if app.process.poll() is not None:
            problems.append(f"QRLogin on port {app.port} died with exit code {app.process.returncode}")
        app.stop()
        if "Fatal error" in app.log_path.read_text(errors="replace"):
            problems.append(f"QRLogin on port {app.port} logged 'Fatal error'")
        if failed or problems:
            print(f"\n----- QRLogin log tail ({' '.join(app.args[1:])}) -----\n{app.log_tail()}")
    assert not problems, "; ".join(problems)


@pytest.fixture
def qrlogin(qrlogin_factory):
    """A QRLogin with a 1 s heartbeat (so pings mark time while the page waits) and a pong
    deadline of 3 s (a page that did not answer pings would be dropped within the test)."""
    return qrlogin_factory("--ping-interval", "1", "--ping-timeout", "3")


@pytest.fixture
def browser(request):
    """Headless Chromium (Debian's) through chromedriver; console errors are printed on failure."""
    yield from headless_chromium(request, "900,900", "--disable-backgrounding-occluded-windows")


# --------------------------------------------------------------------------------------------
# helpers


def wait(driver, condition, message: str, timeout: float = TIMEOUT):
    return WebDriverWait(driver, timeout, poll_frequency=0.05).until(condition, message)


def status(driver) -> dict:
    """The login page's status element: state, pings answered, connections made."""
    return driver.execute_script(
        "const s = document.getElementById('status');"
        "return s ? {state: s.dataset.state, pings: +s.dataset.pings, connects: +s.dataset.connects} : null;")


def open_login_page(driver, app: QRLogin) -> str:
    """Loads `/`, waits until the page says it is waiting (connected and subscribed), then
    until Herald has handled that subscription; returns the page's code."""
    driver.get(app.url("/"))
    code = driver.find_element(By.ID, "code").text
    assert len(code) == CODE_LENGTH and all(c.isalnum() or c in "-_" for c in code), code
    assert driver.find_element(By.TAG_NAME, "body").get_attribute("data-code") == code
    wait(driver, lambda d: (status(d) or {}).get("state") == "waiting", "login page never reported waiting")
    herald_handled_subscription(driver)
    return code


_sync = iter(range(1, 1_000_000))


def herald_handled_subscription(driver) -> None:
    """Barrier: proves Herald has handled the page's `subscribe` to `login.<code>`.

    Herald acknowledges nothing for a public subscribe, but handles one connection's packets in
    order and refuses a private channel at once (`subscription_error`, 403) when no auth host is
    configured. So the page's own client sends such a subscribe after its channel's, and the
    refusal arriving over the same connection proves the channel's subscribe was handled."""
    channel = f"private-qrlogin-sync.{next(_sync)}"
    driver.execute_script("window.qrlogin.client.subscribe(arguments[0]);", channel)
    wait(driver, lambda d: d.execute_script(
        "return window.qrlogin.received.some(e => e[0] === 'subscription_error' && e[1] === arguments[0]);",
        channel), f"Herald's answer to the {channel} barrier")


def wait_for_dashboard(driver) -> None:
    wait(driver, lambda d: d.current_url.split("?")[0].endswith("/dashboard"), "the page never redirected to /dashboard")
    wait(driver, lambda d: d.find_element(By.ID, "result").text == "Logged in", "dashboard without 'Logged in'")


def received_events(driver) -> list[list]:
    """The events the login page received (it keeps them in sessionStorage across the redirect)."""
    return json.loads(driver.execute_script("return sessionStorage.getItem('qrlogin.received') || '[]';"))


def wechat_events(driver) -> list[list]:
    return [e for e in received_events(driver) if e[0] == "wechat.login"]


def screenshot(driver, name: str) -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    path = ARTIFACTS / name
    assert driver.save_screenshot(str(path)), f"screenshot {path} not written"
    assert path.stat().st_size > 0
    return path


# --------------------------------------------------------------------------------------------
# tests


def test_login_page_redirects_to_dashboard_when_a_third_party_confirms(qrlogin, browser):
    code = open_login_page(browser, qrlogin)
    screenshot(browser, "qrlogin-waiting.png")

    # While it waits, the page makes no requests: let Herald's heartbeat tick a few times (1 s
    # apart; each ping is answered, so the first connection survives the 3 s pong deadline).
    wait(browser, lambda d: status(d)["pings"] >= 5, "five pings answered while waiting")
    assert status(browser)["connects"] == 1, "the page had to reconnect: were pings answered?"
    assert status(browser)["state"] == "waiting"
    assert qrlogin.browser_requests() == ["GET /", "GET /herald-client.js"]

    answer = qrlogin.confirm(code)
    assert answer.status_code == 200, answer.text
    assert answer.json() == {"status": "confirmed", "channel": f"login.{code}", "listeners": 1}

    wait_for_dashboard(browser)
    assert "Logged in" in browser.find_element(By.TAG_NAME, "body").text
    screenshot(browser, "qrlogin.png")

    # The page got exactly one wechat.login, on its own channel, with a token; the browser
    # asked for nothing but the page, the client script and the dashboard.
    [event] = wechat_events(browser)
    assert event[1] == f"login.{code}"
    assert isinstance(event[2]["token"], str) and len(event[2]["token"]) == CODE_LENGTH
    assert browser.current_url == qrlogin.url(f"/dashboard?token={event[2]['token']}")
    assert qrlogin.browser_requests() == ["GET /", "GET /herald-client.js", "GET /dashboard"]

    # The token was for one use; the session cookie it bought keeps the dashboard open.
    assert requests.get(qrlogin.url("/dashboard"), params={"token": event[2]["token"]}, timeout=5).status_code == 401
    browser.refresh()
    wait(browser, lambda d: d.find_element(By.ID, "result").text == "Logged in", "dashboard after reload (cookie)")


def test_confirm_button_on_the_scan_page_in_a_second_window(qrlogin, browser):
    code = open_login_page(browser, qrlogin)
    login_window = browser.current_window_handle

    browser.switch_to.new_window("window")
    browser.get(qrlogin.url(f"/scan/{code}"))
    assert browser.find_element(By.ID, "code").text == code
    browser.find_element(By.ID, "confirm").click()
    wait(browser, lambda d: d.find_element(By.ID, "result").get_attribute("data-result") == "confirmed",
         "the scan page's Confirm did not confirm")

    browser.switch_to.window(login_window)
    wait_for_dashboard(browser)
    [event] = wechat_events(browser)
    assert event[1] == f"login.{code}"
    assert browser.current_url.endswith(f"/dashboard?token={event[2]['token']}")

    # A second press of Confirm is refused: the code was used.
    second = requests.post(qrlogin.url(f"/confirm/{code}"), headers={"Accept": "text/html"}, timeout=5)
    assert second.status_code == 409 and 'data-result="already-used"' in second.text


def test_a_page_waiting_on_another_code_does_not_get_the_event(qrlogin, browser):
    code_a = open_login_page(browser, qrlogin)
    window_a = browser.current_window_handle
    browser.switch_to.new_window("window")
    code_b = open_login_page(browser, qrlogin)
    window_b = browser.current_window_handle
    assert code_a != code_b

    answer = qrlogin.confirm(code_a)
    assert answer.json()["listeners"] == 1, "exactly one page listens on a code's channel"
    browser.switch_to.window(window_a)
    wait_for_dashboard(browser)

    # B is still waiting. Herald delivers one connection's events in order, so once B has its
    # own event, A's would have reached it first had Herald sent it there.
    browser.switch_to.window(window_b)
    assert status(browser)["state"] == "waiting"
    assert qrlogin.confirm(code_b).status_code == 200
    wait_for_dashboard(browser)
    events_b = wechat_events(browser)
    assert [e[1] for e in events_b] == [f"login.{code_b}"], events_b

    browser.switch_to.window(window_a)
    events_a = wechat_events(browser)
    assert [e[1] for e in events_a] == [f"login.{code_a}"], events_a
    assert events_a[0][2]["token"] != events_b[0][2]["token"]


def test_the_client_reconnects_and_subscribes_again(qrlogin, browser):
    code = open_login_page(browser, qrlogin)
    # Cut the page's WebSocket under the client, as a network drop would.
    browser.execute_script("window.qrlogin.client.ws.close();")
    wait(browser, lambda d: status(d)["connects"] == 2 and status(d)["state"] == "waiting",
         "the client never reconnected")
    herald_handled_subscription(browser)

    assert qrlogin.confirm(code).status_code == 200
    wait_for_dashboard(browser)
    assert [e[1] for e in wechat_events(browser)] == [f"login.{code}"]
    # Reconnecting went to Herald only: the app saw the page, the script and the dashboard.
    assert qrlogin.browser_requests() == ["GET /", "GET /herald-client.js", "GET /dashboard"]


def test_an_expired_code_cannot_be_confirmed(qrlogin_factory, browser):
    app = qrlogin_factory("--code-ttl", "3")
    browser.get(app.url("/"))
    code = browser.find_element(By.ID, "code").text
    # The page's own timer says "expired" once the code's lifetime has passed since the page
    # was rendered, so by then the server has expired the code too.
    wait(browser, lambda d: status(d)["state"] == "expired", "the page never showed the code as expired")
    answer = app.confirm(code)
    assert answer.status_code == 404
    assert answer.json()["error"] == "unknown"
    assert requests.get(app.url(f"/scan/{code}"), timeout=5).status_code == 404


def test_bad_input_gets_clear_answers(qrlogin):
    # Unknown and malformed codes: 404 JSON for callers, 404 page for browsers.
    for code in ["A" * CODE_LENGTH, "short", "%3Cscript%3E", "A" * 5000]:
        answer = qrlogin.confirm(code)
        assert answer.status_code == 404, (code, answer.status_code)
        assert answer.headers["Content-Type"] == "application/json"
        assert answer.json() == {"error": "unknown", "message": "This login code does not exist or has expired."}
    assert requests.get(qrlogin.url("/scan/" + "A" * CODE_LENGTH), timeout=5).status_code == 404

    # A real code: the first confirmation wins, the second is 409.
    page = requests.get(qrlogin.url("/"), timeout=5)
    code = page.text.split('data-code="', 1)[1].split('"', 1)[0]
    assert len(code) == CODE_LENGTH
    assert requests.get(qrlogin.url(f"/scan/{code}"), timeout=5).status_code == 200
    first = qrlogin.confirm(code)
    assert first.status_code == 200 and first.json()["listeners"] == 0
    again = qrlogin.confirm(code)
    assert again.status_code == 409 and again.json()["error"] == "already-used"
    assert requests.get(qrlogin.url(f"/scan/{code}"), timeout=5).status_code == 409

    # The dashboard wants a valid token or session.
    for params in [{}, {"token": ""}, {"token": "B" * CODE_LENGTH}, {"token": "x" * 10_000}]:
        assert requests.get(qrlogin.url("/dashboard"), params=params, timeout=5).status_code == 401
    assert requests.get(qrlogin.url("/dashboard"), cookies={"qrlogin_session": "C" * CODE_LENGTH},
                        timeout=5).status_code == 401

    # Herald admits the app's pages and nothing else.
    handshake = qrlogin.herald_url("/socket.io/?EIO=4&transport=polling")
    assert requests.get(handshake, headers={"Origin": qrlogin.url()}, timeout=5).status_code == 200
    assert requests.get(handshake, headers={"Origin": "http://evil.example"}, timeout=5).status_code == 403

    # The request log names routes, never codes or tokens.
    assert code not in requests.get(qrlogin.url("/stats"), timeout=5).text


def test_bad_command_line_is_refused_with_usage(tmp_path):
    if not QRLOGIN_BINARY.is_file():
        pytest.fail(f"QRLogin binary not found at {QRLOGIN_BINARY}; run `swift build` first")
    for args, message in [(["--port", "x"], "--port must be a port number"),
                          (["--port", "7000", "--herald-port", "7000"], "must differ"),
                          (["--frobnicate"], "unknown option"),
                          (["--code-ttl", "-1"], "--code-ttl must be"),
                          (["--herald-url", "ftp://x"], "--herald-url must start")]:
        result = subprocess.run([str(QRLOGIN_BINARY), *args], capture_output=True, text=True, timeout=30, cwd=tmp_path)
        assert result.returncode == 64, (args, result.returncode, result.stderr)
        assert message in result.stderr and "USAGE: QRLogin" in result.stderr
