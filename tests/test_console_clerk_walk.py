"""A clerk's walk through the console in Debian's chromium (Playwright), one file per verdict and case:
clean, sanitized (a .docm that arrives as .docx, a CSV with formulas), text only, blocked (a program),
a password-protected ZIP opened with the password the clerk enters, a file over the size limit, and an
e-application whose fields look like markup. Each page is saved as a screenshot under
test-artefacts/console/ (CDR_TEST_ARTEFACTS to move it) for a person to look at."""
from __future__ import annotations

import io
import os
import re
from pathlib import Path

import httpx
import pytest

from tests.browser_helpers import chromium, login, needs_chromium
from tests.portal_helpers import CONFIG, ROOT, add_user, new_key, start, wait_done

ARTEFACTS = Path(os.environ.get("CDR_TEST_ARTEFACTS", ROOT / "test-artefacts")) / "console"
CSV = "氏名,金額,備考\n山田,=HYPERLINK(\"http://evil\"),至急\n佐藤,1200,@SUM(A1)\n".encode()
PPAP_PASSWORD = "とどいた合言葉"

pytestmark = needs_chromium


def _ppap() -> bytes:
    import pyzipper

    buf = io.BytesIO()
    with pyzipper.AESZipFile(buf, "w", compression=pyzipper.ZIP_DEFLATED, encryption=pyzipper.WZ_AES) as z:
        z.setpassword(PPAP_PASSWORD.encode())
        z.writestr("申請書.txt", "PPAPの中身です。\n".encode())
    return buf.getvalue()


def _drop(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name("." + path.name + ".part")
    tmp.write_bytes(data)
    tmp.rename(path)


@pytest.fixture(scope="module")
def walk(tmp_path_factory, corpus):
    base = tmp_path_factory.mktemp("walk")
    rules = ROOT / "rules"
    small = base / "small.toml"
    small.write_text((rules / "default.toml").read_text("utf-8").replace("max_file_mb = 100", "max_file_mb = 1"),
                     "utf-8")
    config = CONFIG + f'\n[channels."テキスト課"]\npolicy = "{rules / "text-only.toml"}"\n' \
                      f'[channels."小さい課"]\npolicy = "{small}"\n'
    a = start(base / "data", config=config)
    add_user(a.data_dir, "yamada", "clerk", "clerk-pass-1", "山田 花子")
    odir, ooxml = corpus("ooxml")
    docm = (odir / next(rel for rel in ooxml if rel.endswith("hostile/vba.docm"))).read_bytes()
    notice = (odir / next(rel for rel in ooxml if rel.endswith("benign/notice.docx"))).read_bytes()
    box = a.data_dir / "dropbox"
    _drop(box / "kokuho" / "通知文.docx", notice)
    _drop(box / "議事録.txt", "会議の議事録です。\n".encode())
    _drop(box / "kokuho" / "申請書.docm", docm)
    _drop(box / "kokuho" / "名簿.csv", CSV)
    _drop(box / "kokuho" / "請求書.exe", b"MZ" + b"\0" * 200)
    _drop(box / "kokuho" / "資料.zip", _ppap())
    _drop(box / "テキスト課" / "通知.docm", docm)
    big = box / "小さい課" / "大きな図面.pdf"
    big.parent.mkdir(parents=True)
    with open(big, "wb") as f:
        f.truncate(3 * 1024 * 1024)
    key = new_key(a.data_dir, "電子申請システム")
    with httpx.Client(base_url=a.api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as c:
        r = c.post("/api/v1/submissions", data={"氏名": "山田 花子 <hanako@example.jp>", "備考": "<b>至急</b> & よろしく"},
                   files=[("files", ("<img src=x onerror=alert(1)>.txt", "添付です\n".encode()))])
        assert r.status_code == 202, r.text
        receipt = r.json()["receipt"]
        wait_done(c, r.json()["status_url"])
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    with chromium() as browser:
        _ctx, page = login(browser, a.console, "yamada", "clerk-pass-1")
        page.wait_for_url("**/deliveries")
        yield {"app": a, "page": page, "receipt": receipt}
    a.stop()


def _shot(page, name: str) -> None:
    page.screenshot(path=str(ARTEFACTS / f"{name}.png"), full_page=True)


def _open(walk, name: str) -> None:
    """Open a file's report from the list, as a clerk does: by the name it has on the share."""
    page = walk["page"]
    for _ in range(300):
        page.goto(walk["app"].console + "/deliveries")
        row = page.locator("#deliveries tbody tr", has_text=name)
        if row.count() and "処理中" not in row.first.inner_text():
            break
        page.wait_for_timeout(200)
    row.first.locator("td.name a").click()
    page.wait_for_url("**/deliveries/*")


def test_list_shows_names_verdicts_and_japan_time(walk):
    page = walk["page"]
    _open(walk, "大きな図面.pdf")  # the last to settle: every file is final by then
    page.goto(walk["app"].console + "/deliveries")
    table = page.inner_text("#deliveries")
    for text in ("議事録.txt", "申請書.docx", "送信時: 申請書.docm", "名簿.csv", "請求書.exe", "資料.zip",
                 "通知_テキスト.txt", "大きな図面.pdf", "問題なし", "無害化済み", "配送停止", walk["receipt"]):
        assert text in table, text
    assert re.search(r"\d{4}-\d\d-\d\d \d\d:\d\d JST", table)
    # A clean document whose properties were not carried over: a note, not a finding beside 問題なし.
    row = page.locator("#deliveries tbody tr", has_text="通知文.docx").inner_text()
    assert "問題なし" in row and "お知らせ：文書のプロパティ" in row, row
    assert "application/" not in table and "word/" not in table  # no MIME types or part names in the list
    assert page.evaluate("document.documentElement.scrollWidth") <= 1366
    _shot(page, "01_list")


def test_clean(walk):
    _open(walk, "議事録.txt")
    page = walk["page"]
    assert page.inner_text("#verdict") == "問題なし"
    assert "そのままお使いいただけます" in page.inner_text("#sentence")
    assert page.inner_text("#type").startswith("テキスト")
    assert "報告（議事録.txt.報告.txt）" in page.inner_text("ul.downloads")
    with page.expect_download() as dl:
        page.click("#dl-report")
    report = Path(dl.value.path()).read_bytes()
    assert report.startswith(b"\xef\xbb\xbf") and "判定：問題なし" in report.decode("utf-8-sig")
    _shot(page, "02_clean")


def test_sanitized_docm_arrives_as_docx(walk):
    _open(walk, "申請書.docx")
    page = walk["page"]
    assert page.inner_text("#name") == "申請書.docx" and "申請書.docm" in page.inner_text("#sent-name")
    assert page.inner_text("#verdict") == "無害化済み"
    assert "取り除いたものは下記" in page.inner_text("#sentence")
    threats = page.inner_text("#threats")
    assert "マクロ（VBA）" in threats and "削除" in threats
    assert page.inner_text("#type").startswith("Word文書（マクロ付き）")
    # Technical detail (MIME type, part names, ids) is folded away until asked for.
    assert not page.locator("#threats details.tech code").first.is_visible()
    assert not page.locator("#type details.tech code").is_visible()
    page.locator("#threats details.tech summary").first.click()
    assert page.locator("#threats details.tech code").first.is_visible()
    _shot(page, "03_sanitized_docm")


def test_csv_findings_show_the_cell_and_its_apostrophe(walk):
    _open(walk, "名簿.csv")
    page = walk["page"]
    threats = page.inner_text("#threats")
    assert "B2（2行目・2列目）：=HYPERLINK(\"http://evil\") → '=HYPERLINK(\"http://evil\")" in threats
    assert "C3（3行目・3列目）：@SUM(A1) → '@SUM(A1)" in threats
    assert "至急" not in threats  # the cell, not the rest of its line
    _shot(page, "04_sanitized_csv")


def test_text_only(walk):
    _open(walk, "通知_テキスト.txt")
    page = walk["page"]
    sentence = page.inner_text("#sentence")
    assert "文字（テキスト）だけ" in sentence and "画像" in sentence and "含まれません" in sentence
    assert "内容（文章・表・画像）はそのまま" not in page.content()
    assert "配送したのは文字だけのファイル" in page.inner_text("#text-only-note")  # the findings were the original's
    _shot(page, "05_text_only")


def test_blocked_program(walk):
    _open(walk, "請求書.exe")
    page = walk["page"]
    assert page.inner_text("#verdict") == "配送停止"
    assert "開くだけで動作するファイルは受け付けていない" in page.inner_text("#sentence")
    assert page.inner_text("#reason").startswith("理由:")
    _shot(page, "06_blocked_exe")


def test_too_large_is_listed_with_its_notice(walk):
    _open(walk, "大きな図面.pdf")
    page = walk["page"]
    assert page.inner_text("#verdict") == "配送停止"
    assert "上限" in page.inner_text("#sentence") and "3.0 MB" in page.inner_text("#reason")
    assert page.locator("#no-original").is_visible() and not page.locator("form.request").count()
    _shot(page, "07_too_large")


def test_password_retry_supersedes_the_notice(walk):
    _open(walk, "資料.zip")
    page = walk["page"]
    assert "パスワードで保護されているため" in page.inner_text("#sentence")
    _shot(page, "08_ppap_blocked")
    first = page.url
    for password, want in (("まちがい", "配送停止"), (PPAP_PASSWORD, "無害化済み")):
        page.goto(first)
        page.fill("#password-retry input[name=password]", password)
        page.click("#password-retry button[type=submit]")
        page.wait_for_url("**/deliveries/*")
        for _ in range(300):
            if "処理中" not in page.inner_text("#verdict"):
                break
            page.wait_for_timeout(200)
            page.reload()
        assert page.inner_text("#verdict") == want
    text = page.content()
    assert "指定されたパスワードで開いて中身を検査しました" in text and "送信者にパスワードを確認" not in text
    assert "パスワードのかからないファイルにして配送しました" in page.inner_text("#sentence")
    _shot(page, "09_ppap_delivered")
    page.goto(first)
    assert page.locator("#superseded").is_visible() and not page.locator("#password-retry").count()
    # One row per kind of finding: the ZIP and its member are one 'password-protected' row naming the member.
    rows = page.locator("#threats tbody tr")
    assert rows.count() == 1 and "申請書.txt" in rows.first.inner_text(), page.inner_text("#threats")
    _shot(page, "10_ppap_superseded")
    # The list shows one live verdict for the file: the notice and the failed retry say they were replaced.
    page.goto(walk["app"].console + "/deliveries?q=資料")
    listed = page.locator("#deliveries tbody tr")
    assert listed.count() == 3
    texts = [listed.nth(i).inner_text() for i in range(3)]
    assert "無害化済み" in texts[0] and "パスワードを指定した再処理" in texts[0] and "置き換え済み" not in texts[0]
    assert "パスワードを指定した再処理" in texts[1] and "置き換え済み" in texts[1]
    assert "パスワードを指定した再処理" not in texts[2] and "置き換え済み" in texts[2]
    _shot(page, "12_ppap_list")
    folder = walk["app"].data_dir / "inbox" / "kokuho"
    names = [p.name for p in folder.rglob("*") if p.name.startswith("資料")]
    assert "資料.zip" in names and not [n for n in names if n.endswith(".blocked.json") or "(2)" in n], names


def test_e_application_fields_are_shown_exactly_and_escaped(walk):
    page = walk["page"]
    page.goto(walk["app"].console + "/deliveries?receipt=" + walk["receipt"])
    page.locator("#deliveries tbody tr td.name a").first.click()
    page.wait_for_url("**/deliveries/*")
    fields = page.inner_text("#form-fields")
    assert "山田 花子 <hanako@example.jp>" in fields and "<b>至急</b> & よろしく" in fields
    assert page.locator("#form-fields b").count() == 0 and page.locator("img").count() == 0  # text, never markup
    assert "<img src=x onerror=alert(1)>.txt" in page.inner_text("#sent-name")
    _shot(page, "11_e_application")
