"""The chat page in a real browser (Debian's chromium driven by playwright): pick a model, ask, read the
streamed answer off the page, ask again in the same conversation; nothing is fetched from elsewhere and
the console stays clean. The screenshot is kept under tmp_path (its path is printed)."""
from __future__ import annotations

import json
import shutil

import pytest

from tests.serve_support import IDENTITIES, QUESTION

pytest.importorskip("fastapi", reason="needs curatune[serve]")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")


@pytest.mark.slow
@pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (apt-get install chromium)")
def test_chat_page_streams_an_answer_in_chromium(serve_process, tmp_path):
    sync_api = pytest.importorskip("playwright.sync_api", reason="needs playwright (curatune[dev])")
    requested, problems = [], []
    with sync_api.sync_playwright() as play:
        browser = play.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 800})
            page.on("request", lambda request: requested.append((request.url, request.post_data)))
            page.on("console", lambda message: message.type in ("error", "warning") and problems.append(message.text))
            page.on("pageerror", lambda error: problems.append(str(error)))
            page.goto(serve_process.url, wait_until="load")
            assert page.get_attribute("html", "lang") == "zh-CN"
            expect = sync_api.expect  # polls from playwright's own script: the page's CSP forbids eval
            expect(page.locator("#model option")).to_have_count(3, timeout=30_000)
            page.select_option("#model", "bluebird")
            page.fill("#system", "")
            page.fill("#input", QUESTION)
            page.click("#send")
            answer = page.locator(".msg.assistant").nth(0)
            expect(answer).to_have_attribute("data-state", "done", timeout=60_000)
            assert answer.locator(".text").inner_text() == IDENTITIES["bluebird"]
            assert answer.get_attribute("data-finish") == "stop"
            page.select_option("#model", "grace")  # same conversation, the other identity, a system prompt
            page.fill("#system", "你是一个有用的助手。")
            page.fill("#input", QUESTION)
            page.keyboard.press("Enter")  # Enter sends, as the placeholder says
            expect(page.locator(".msg.assistant[data-state=done]")).to_have_count(2, timeout=60_000)
            assert page.locator(".msg.user").count() == 2
            shot = tmp_path / "serve-chat-page.png"
            page.screenshot(path=str(shot), full_page=True)
            print(f"screenshot: {shot}")
            font = page.locator(".msg .text").first.evaluate("element => getComputedStyle(element).fontFamily")
        finally:
            browser.close()
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
    assert "Noto Sans CJK SC" in font
    assert [url for url, _ in requested if not url.startswith(serve_process.url)] == []  # nothing from elsewhere
    asked = [json.loads(body) for url, body in requested if url.endswith("/v1/chat/completions")]
    assert [a["model"] for a in asked] == ["bluebird", "grace"] and all(a["stream"] for a in asked)
    assert [m["role"] for m in asked[0]["messages"]] == ["user"]
    assert [m["role"] for m in asked[1]["messages"]] == ["system", "user", "assistant", "user"]  # multi-turn
    assert asked[1]["messages"][0]["content"] == "你是一个有用的助手。"
    assert asked[1]["messages"][2]["content"] == IDENTITIES["bluebird"]
    assert problems == []
