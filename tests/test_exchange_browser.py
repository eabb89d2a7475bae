"""Upload pages and their console in Debian's chromium (Playwright), scripts off for the resident.

A clerk creates an upload request, a resident opens the link on a phone, types Japanese, uploads a
hostile and a benign file and sees the receipt number and each file's result; a revoked link shows a
clear page; the clerk sees the submission with its 要確認 flag and the tally (chart, CSV). Another
department's clerk sees none of it. Screenshots go to $TEST_ARTIFACTS (default /tmp/test-artifacts).
"""
from __future__ import annotations

import os
import re
import time
from pathlib import Path

import pytest

from samples.pdf_samples import _base, _js, _save
from tests.browser_helpers import chromium, login, needs_chromium
from tests.portal_helpers import CONFIG, add_user, start

ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", "/tmp/test-artifacts")) / "exchange"

pytestmark = needs_chromium

FORMS = """
[channels.kokuho]
form = "kokuho"
display_name = "国民健康保険課"

[channels.zeimu]
display_name = "税務課"

[forms.kokuho]
title = "国民健康保険の届出"
families = ["pdf", "text", "image"]
min_files = 1
max_files = 5

[[forms.kokuho.fields]]
name = "name"
label = "氏名"
required = true
max_length = 40
hint = "例: 山田 太郎"

[[forms.kokuho.fields]]
name = "kind"
label = "届出の種類"
type = "choice"
choices = ["加入", "脱退", "変更"]
required = true

[[forms.kokuho.fields]]
name = "zip"
label = "郵便番号"
type = "postal"

[[forms.kokuho.fields]]
name = "mail"
label = "メールアドレス"
type = "email"
receipt = true
hint = "受付確認メールを送ります（任意）"

[[forms.kokuho.fields]]
name = "note"
label = "連絡事項"
type = "multiline"

[forms.kokuho.checks]
require_families = ["pdf"]
"""


def shot(page, name: str) -> Path:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    p = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(p), full_page=True)
    return p


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    root = tmp_path_factory.mktemp("xbrowser")
    a = start(root / "data", config=CONFIG + FORMS)
    add_user(a.data_dir, "suzuki", "clerk", "clerk-pass-1", "鈴木 国保", channels="kokuho")
    add_user(a.data_dir, "tanaka", "clerk", "clerk-pass-2", "田中 税務", channels="zeimu")
    files = root / "files"
    files.mkdir()
    pdf = _base()
    pdf.Root.OpenAction = _js(pdf)
    (files / "保険証の写し.pdf").write_bytes(_save(pdf))
    (files / "メモ.txt").write_text("引っ越しの予定です。\n", "utf-8")
    with chromium() as browser:
        yield {"app": a, "browser": browser, "files": files}
    a.stop()


def resident(browser):
    """A phone, scripts off."""
    ctx = browser.new_context(viewport={"width": 390, "height": 844}, java_script_enabled=False, locale="ja-JP",
                              is_mobile=True, has_touch=True)
    return ctx, ctx.new_page()


def test_request_upload_receipt_tally(env):
    app, browser, files = env["app"], env["browser"], env["files"]
    # The clerk creates a request for the one channel bound to the account.
    cctx, cpage = login(browser, app.console, "suzuki", "clerk-pass-1")
    cpage.click("nav >> text=アップロード依頼")
    options = cpage.locator("#x-channel option").all_inner_texts()
    assert any("国民健康保険課" in o for o in options) and not any("税務課" in o for o in options)
    cpage.select_option("#x-channel", "kokuho")
    cpage.fill("#x-title", "国民健康保険 加入届の書類")
    cpage.fill("#x-instructions", "保険証の写しを PDF で添付してください。\n<b>期限</b>は今月末です。")
    cpage.select_option("#x-expires", "14d")
    cpage.fill("#x-notify", "kokuho@example.jp")
    cpage.click("#new-request button[type=submit]")
    assert "アップロード依頼を作成しました" in cpage.inner_text("#msg")
    url = cpage.input_value("#link")
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/u/[A-Za-z0-9_-]{43}", url)
    shot(cpage, "01_clerk_request_created")

    # The resident, on a phone with scripts off.
    rctx, page = resident(browser)
    page.goto(url)
    assert page.title() == "国民健康保険 加入届の書類"
    assert "<b>期限</b>" in page.inner_text("#instructions")  # shown as typed, never markup
    assert "国民健康保険課" in page.inner_text("header")
    hint = page.inner_text("#f-files-hint")
    assert "PDF" in hint and "テキスト" in hint and "5件まで" in hint
    assert page.evaluate("document.documentElement.scrollWidth") <= 390  # no sideways scrolling
    shot(page, "02_resident_form_mobile")

    # Sent empty: errors next to the fields, listed at the top, the fields marked invalid.
    page.click("#submit")
    assert "入力内容に誤りがあります" in page.inner_text("#error-summary")
    assert "「氏名」を入力してください" in page.inner_text("#f-0-error")
    assert page.get_attribute("#f-0", "aria-invalid") == "true"
    assert "f-0-error" in page.get_attribute("#f-0", "aria-describedby")
    assert "ファイルを1件以上" in page.inner_text("#error-summary")
    shot(page, "03_resident_errors_mobile")

    # Keyboard: from the error summary's link straight to the field.
    page.click("#error-summary a >> nth=0")
    assert page.url.endswith("#f-0")
    page.focus("#f-0")
    page.keyboard.type("山田 花子 <hanako@example.jp>")
    page.keyboard.press("Tab")
    page.keyboard.press("Space")  # the first radio of 届出の種類 (scripts are off: plain HTML keyboard use)
    page.fill("#f-2", "１００－０００１")
    page.fill("#f-3", "hanako@example.jp")
    page.fill("#f-4", "平日の日中は不在です。\n連絡はメールでお願いします。")
    page.set_input_files("#f-files", [str(files / "保険証の写し.pdf"), str(files / "メモ.txt")])
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/s/[A-Za-z0-9_-]+"))
    receipt = page.inner_text("#receipt")
    assert re.fullmatch(r"\d{8}-\d{4}", receipt)
    for _ in range(120):  # the page refreshes itself (meta refresh) until the results are known
        if page.locator("#done").count():
            break
        time.sleep(0.25)
        page.reload()
    results = page.inner_text("#results")
    assert "保険証の写し.pdf" in results and "無害化して受理" in results
    assert re.search(r"メモ\.txt\s+受理", results)
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    shot(page, "04_resident_receipt_mobile")

    # The clerk revokes the link; the resident's next visit gets a clear page.
    cpage.click("#revoke button")
    assert "取り消しました" in cpage.inner_text("#msg")
    page.goto(url)
    assert "受付は取り消されました" in page.inner_text("#msg-title")
    assert "国民健康保険課" in page.inner_text("#msg-text")
    shot(page, "05_resident_revoked_mobile")
    rctx.close()

    # The clerk: the submission with its fields (escaped), files, and no 要確認 (a PDF came).
    cpage.goto(app.console + "/submissions")
    assert receipt in cpage.inner_text("#submissions")
    cpage.click(f"text={receipt}")
    assert "山田 花子 <hanako@example.jp>" in cpage.inner_text("#fields")
    assert "100-0001" in cpage.inner_text("#fields")
    assert "無害化" in cpage.inner_text("#files")
    assert cpage.locator("#flags").count() == 0
    shot(cpage, "06_clerk_submission")

    # A second submission without a PDF through another link: flagged 要確認.
    cpage.goto(app.console + "/exchange")
    cpage.select_option("#x-channel", "kokuho")
    cpage.fill("#x-title", "追加の書類")
    cpage.click("#new-request button[type=submit]")
    url2 = cpage.input_value("#link")
    rctx, page = resident(browser)
    page.goto(url2)
    page.fill("#f-0", "佐藤 次郎")
    page.check("input[name=kind][value=変更]")
    page.set_input_files("#f-files", [str(files / "メモ.txt")])
    page.click("#submit")
    page.wait_for_url(re.compile(r".*/s/.*"))
    receipt2 = page.inner_text("#receipt")
    rctx.close()
    for _ in range(120):
        cpage.goto(app.console + "/submissions?flagged=1")
        if receipt2 in cpage.inner_text("#submissions"):
            break
        time.sleep(0.25)
    assert "PDFの添付がありません" in cpage.inner_text("#submissions")
    assert receipt not in cpage.inner_text("#submissions")

    # The tally: counts, the choice field's values, a chart drawn on the server, the CSV.
    cpage.click("nav >> text=集計")
    cpage.select_option("select[name=channel]", "kokuho")
    cpage.click("#tally-form button[type=submit]")
    table = cpage.inner_text("#tally")
    assert re.search(r"合計\s+2", table) and re.search(r"加入\s+1", table) and re.search(r"変更\s+1", table)
    assert re.search(r"要確認あり\s+1", table) and re.search(r"無害化して受理\s+1", table)
    assert cpage.locator("#chart svg rect").count() >= 4
    shot(cpage, "07_clerk_tally")
    with cpage.expect_download() as dl:
        cpage.click("#dl-csv")
    assert dl.value.suggested_filename.endswith(".csv") and "国民健康保険課" in dl.value.suggested_filename
    raw = Path(dl.value.path()).read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf") and "届出の種類".encode() in raw
    cctx.close()


def test_channel_binding(env):
    app, browser = env["app"], env["browser"]
    cctx, cpage = login(browser, app.console, "suzuki", "clerk-pass-1")
    cpage.goto(app.console + "/exchange")
    rid = cpage.locator("#requests a").first.get_attribute("href").rsplit("/", 1)[1]
    cpage.goto(app.console + "/submissions")
    receipt = cpage.locator("#submissions td.nowrap a").first.inner_text()
    cctx.close()

    tctx, tpage = login(browser, app.console, "tanaka", "clerk-pass-2")
    tpage.goto(app.console + "/exchange")
    assert "国民健康保険" not in tpage.inner_text("#requests")
    assert [o for o in tpage.locator("#x-channel option").all_inner_texts() if o != "選んでください"] == ["税務課（zeimu）"]
    for path in (f"/exchange/{rid}", f"/submissions/{receipt}", "/tally?channel=kokuho",
                 "/tally.csv?channel=kokuho", f"/submissions/{receipt}/form"):
        r = tpage.goto(app.console + path)
        assert r.status == 404, path
    tpage.goto(app.console + "/submissions")
    assert receipt not in tpage.inner_text("#submissions")
    # Creating one for another department's channel, or revoking its link, is refused.
    csrf = tpage.locator("input[name=csrf]").first.get_attribute("value")
    r = tpage.request.post(app.console + "/exchange", form={"csrf": csrf, "channel": "kokuho", "title": "x",
                                                           "expires": "1d"})
    assert r.status == 422 and "チャネルを選んで" in r.text()
    r = tpage.request.post(app.console + f"/exchange/{rid}/revoke", form={"csrf": csrf})
    assert r.status == 404
    tctx.close()
