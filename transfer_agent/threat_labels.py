"""Plain-Japanese explanations of threat ids for the clerk's report.

Each entry: what was found (短い名前) and why it matters (一文の説明). Unknown ids fall back to
their family, then to a generic sentence, so a new handler never breaks the console.
"""
from __future__ import annotations

THREATS: dict[str, tuple[str, str]] = {
    # PDF
    "pdf.javascript": ("PDF内のJavaScript", "開いたときに自動で動くプログラムです。ウイルス感染に悪用されるため削除しました。"),
    "pdf.open_action": ("PDFを開いたときの自動動作", "開いた瞬間に実行される動作の指定です。悪用を防ぐため削除しました。"),
    "pdf.additional_actions": ("PDFの追加動作", "ページ表示や操作に連動して動く仕組みです。悪用を防ぐため削除しました。"),
    "pdf.launch": ("外部プログラムの起動指示", "PDFから別のプログラムを起動させる指示です。危険なため削除しました。"),
    "pdf.embedded_file": ("PDFの添付ファイル", "PDFの中に別のファイルが埋め込まれていました。"),
    "pdf.xfa": ("XFAフォーム", "動的フォーム（XFA）はスクリプトを含み得るため削除しました。"),
    "pdf.rich_media": ("動画・Flash等の埋め込み", "マルチメディア要素は攻撃に使われることがあるため削除しました。"),
    "pdf.submit_form": ("フォーム送信の指示", "入力内容を外部へ送信する指示です。情報漏えいを防ぐため削除しました。"),
    "pdf.remote_goto": ("外部文書へのジャンプ", "別のファイルやネットワーク上の文書を開く指示を削除しました。"),
    "pdf.uri": ("外部リンク（URL）", "インターネット上のページへのリンクです。"),
    "pdf.trailing_data": ("PDF末尾の余分なデータ", "ファイルの終わりの後ろに隠れたデータがあったため取り除きました。"),
    "pdf.encrypted": ("暗号化されたPDF", "パスワード保護のため中身を確認できません。"),
    # Office (OOXML: docx/xlsx/pptx)
    "ooxml.vba": ("マクロ（VBA）", "文書に組み込まれたプログラムです。ウイルスに悪用されるため削除しました。"),
    "ooxml.xlm_macrosheet": ("Excel 4.0 マクロシート", "古い形式のマクロです。悪用が多いため削除しました。"),
    "ooxml.activex": ("ActiveXコントロール", "文書内で動く部品です。危険なため削除しました。"),
    "ooxml.ole_object": ("埋め込みオブジェクト（OLE）", "文書に埋め込まれた別のファイルやプログラムを削除しました。"),
    "ooxml.external_relationship": ("外部参照", "開くときに外部のファイルやサーバーを読み込む指定を削除しました。"),
    "ooxml.remote_template": ("外部テンプレートの読み込み", "開くときに外部からテンプレートを取得する指定です。攻撃に使われるため削除しました。"),
    "ooxml.dde": ("DDE（他アプリ連携）", "他のプログラムを動かせる連携機能です。危険なため無効化しました。"),
    "ooxml.external_link": ("外部ブックへのリンク", "他のファイルの値を参照するリンクを削除しました。"),
    "ooxml.alt_chunk": ("別形式の埋め込み文書", "文書内に埋め込まれた別形式のデータを削除しました。"),
    "ooxml.macro_content_type": ("マクロ有効形式", "マクロを含める形式だったため、マクロなしの形式に変換しました。"),
    # Legacy Office (OLE2: doc/xls/ppt) and RTF
    "ole.vba": ("マクロ（VBA）", "旧形式のOffice文書に含まれるプログラムです。削除しました。"),
    "ole.xlm": ("Excel 4.0 マクロ", "旧形式のマクロです。悪用が多いため削除しました。"),
    "ole.object": ("埋め込みオブジェクト", "文書に埋め込まれた別のファイルやプログラムを削除しました。"),
    "ole.converted": ("新しい形式への変換", "安全に処理するため、旧形式のOffice文書を新しい形式に変換しました。"),
    "ole.encrypted": ("暗号化されたOffice文書", "パスワード保護のため中身を確認できません。"),
    "rtf.object": ("RTF内の埋め込みオブジェクト", "RTF文書に埋め込まれたプログラムやファイルを削除しました。"),
    "rtf.remote_template": ("外部テンプレートの読み込み", "開くときに外部からデータを取得する指定を削除しました。"),
    "rtf.field": ("RTFのフィールド命令", "外部の読み込みなどに使われるフィールドを無効化しました。"),
    # Images
    "image.metadata": ("画像の付加情報（メタデータ）", "撮影場所（位置情報）などの付加情報を削除しました。画像そのものは変わりません。"),
    "image.trailing_data": ("画像末尾の余分なデータ", "画像の後ろに隠れたデータがあったため取り除きました。"),
    "image.bomb": ("巨大な画像", "展開すると極端に大きくなる画像です。処理できないため止めました。"),
    "image.icc": ("色プロファイル", "画像の色情報の埋め込みデータを整理しました。"),
    "svg.script": ("SVG内のスクリプト", "画像に埋め込まれたプログラムです。削除しました。"),
    "svg.external_ref": ("SVGの外部参照", "外部から画像やデータを読み込む指定を削除しました。"),
    # Archives
    "archive.bomb": ("圧縮爆弾", "展開すると極端に大きくなる圧縮ファイルです。処理を止めました。"),
    "archive.path_traversal": ("不正なフォルダ指定", "展開先の外にファイルを書き出そうとする名前が含まれていました。"),
    "archive.symlink": ("シンボリックリンク", "別の場所を指すリンクが含まれていたため除外しました。"),
    "archive.encrypted": ("パスワード付き圧縮ファイル", "パスワードで保護されているため中身を確認できません。送信者にパスワードを確認してください。"),
    "archive.too_deep": ("入れ子が深すぎる圧縮ファイル", "圧縮ファイルの中に何重にも圧縮ファイルが入っていました。"),
    "archive.too_many_members": ("ファイル数が多すぎる圧縮ファイル", "上限を超える数のファイルが含まれていました。"),
    "archive.bad_name": ("不正なファイル名", "圧縮ファイル内に使えない名前のファイルがありました。"),
    # Text, HTML, CSV
    "csv.formula": ("CSVの数式", "Excelで開くと命令として実行される恐れのある値を、文字として扱うよう無害化しました。"),
    "html.active_content": ("HTML内のスクリプト等", "スクリプトや外部読み込みなど動作する部分を削除しました。"),
    # Whole-file outcomes
    "file.type_mismatch": ("拡張子と中身の不一致", "ファイル名の拡張子と実際の形式が違っていました。"),
    "file.executable": ("実行ファイル", "プログラム（実行ファイル）は受け付けていません。"),
    "file.unsupported": ("未対応の形式", "このファイル形式は安全に処理できないため受け付けていません。"),
    "file.malformed": ("壊れたファイル", "ファイルが壊れているか形式が不正なため、安全に処理できませんでした。"),
    "file.encrypted": ("パスワード保護", "パスワードで保護されているため処理できません。送信者にパスワードを確認してください。"),
    "file.limit": ("処理上限の超過", "大きさやページ数などが上限を超えたため処理を止めました。"),
    "file.timeout": ("処理時間の超過", "処理に時間がかかりすぎたため止めました。"),
    "file.blocked": ("ポリシーによる停止", "受け付けないと定められた内容のため配送を止めました。"),
    "file.tool_failed": ("変換処理の失敗", "変換ツールが正常に終了しなかったため配送を止めました。"),
    "policy.blocked": ("ポリシーによる停止", "この種類のファイルは受け付けないと定められています。"),
    "policy.text_only": ("テキストのみ配送", "ポリシーにより、本文のテキストだけを取り出して配送しました。"),
    "verify.failed": ("再検査の失敗", "無害化した結果を再検査できなかったため配送を止めました。"),
    "verify.residual": ("無害化後も残った危険", "無害化後の再検査で危険な部分が残っていたため配送を止めました。"),
    "worker.crashed": ("処理の異常終了", "処理中にエラーが起きたため、安全のため配送を止めました。"),
    "worker.error": ("処理エラー", "処理中にエラーが起きたため、安全のため配送を止めました。"),
    "worker.protocol": ("処理結果の検証失敗", "処理結果を確認できなかったため、安全のため配送を止めました。"),
}

_FAMILY: dict[str, str] = {
    "pdf": "PDFの危険な要素", "ooxml": "Office文書の危険な要素", "ole": "旧形式Office文書の危険な要素",
    "rtf": "RTF文書の危険な要素", "image": "画像の不要な要素", "svg": "SVG画像の危険な要素",
    "archive": "圧縮ファイルの問題", "csv": "CSVの危険な値", "html": "HTMLの危険な要素",
    "file": "ファイルの問題", "policy": "ポリシー", "verify": "再検査", "worker": "処理エラー",
}

ACTIONS_JA: dict[str, str] = {
    "removed": "削除", "neutralized": "無効化", "converted": "変換", "repaired": "修復",
    "blocked": "配送停止", "reported": "報告のみ", "renamed": "名前変更", "found": "検出",
}

VERDICTS_JA: dict[str, str] = {
    "clean": "問題なし", "sanitized": "無害化済み", "blocked": "配送停止",
    "received": "受付", "processing": "処理中", "done": "完了",
}


def label(threat_id: str) -> str:
    if threat_id in THREATS:
        return THREATS[threat_id][0]
    fam = threat_id.split(".", 1)[0]
    return _FAMILY.get(fam, "その他の要素") + f"（{threat_id}）"


def explain(threat_id: str) -> str:
    if threat_id in THREATS:
        return THREATS[threat_id][1]
    return "安全のため、この要素を取り除くか配送を止めました。"


def action_ja(action: str) -> str:
    return ACTIONS_JA.get(action, action)


def verdict_ja(verdict: str | None) -> str:
    return VERDICTS_JA.get(verdict or "", verdict or "—")
