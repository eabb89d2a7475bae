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
    "pdf.external_ref": ("外部ファイルの参照", "開くときに別のファイルの中身を読み込む指定です。削除しました。"),
    "pdf.import_data": ("外部データの取り込み指示", "別のファイルからフォームにデータを読み込む指示を削除しました。"),
    "pdf.named_action": ("PDFの特殊な動作指示", "印刷や保存などを自動で行わせる指示です。ページ移動以外は削除しました。"),
    "pdf.leading_data": ("PDF先頭の余分なデータ", "ファイルの始まりの前に別のデータが付いていたため取り除きました。"),
    "pdf.incremental_update": ("PDFの追記履歴", "以前の版の内容（追記前の版）は引き継いでいません。表示される最新の内容は残っています。"),
    "pdf.metadata": ("PDFの文書情報", "作成者などの文書情報（メタデータ）はポリシーにより引き継いでいません。"),
    "pdf.bomb": ("巨大なデータを含むPDF", "展開すると極端に大きくなるデータを含むため処理を止めました。"),
    "pdf.rendered": ("PDFの画像化", "ポリシーにより、各ページを画像にしたPDFとして配送しました。文字の選択や検索はできません。"),
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
    "ooxml.macro_reference": ("マクロの呼び出し", "ボタンや図形からマクロを呼び出す指定を削除しました。"),
    "ooxml.custom_ui": ("独自のリボン・メニュー", "マクロを呼び出すための独自メニュー定義を削除しました。"),
    "ooxml.dangerous_function": ("危険な関数", "外部からデータを取得したりプログラムを動かしたりする関数を削除し、表示されていた値を残しました。"),
    "ooxml.data_connection": ("外部データ接続", "データベースや外部ファイルへの接続設定を削除しました。"),
    "ooxml.hyperlink": ("リンク", "ウェブ以外を開くリンク、またはポリシーにより全てのリンクを削除しました。文字は残っています。"),
    "ooxml.web_extension": ("Officeアドイン", "インターネットから読み込まれるアドインの指定を削除しました。"),
    "ooxml.embedded_font": ("埋め込みフォント", "文書に埋め込まれたフォントを削除しました。表示はパソコンのフォントで代用されます。"),
    "ooxml.signature": ("デジタル署名", "再構築により署名は無効になるため、署名データを削除しました。"),
    "ooxml.metadata": ("文書のプロパティ", "作成者などの文書情報をポリシーにより削除しました。"),
    "ooxml.unknown_part": ("不明な構成部品", "用途を確認できない部品を文書から取り除きました。"),
    "ooxml.encrypted": ("暗号化されたOffice文書", "パスワード保護のため中身を確認できません。送信者にパスワードを確認してください。"),
    "ooxml.xlsb": ("Excelバイナリ形式（xlsb）", "この形式は安全に再構築できないため受け付けていません。xlsx形式での再送を依頼してください。"),
    # Legacy Office (OLE2: doc/xls/ppt) and RTF
    "ole.vba": ("マクロ（VBA）", "旧形式のOffice文書に含まれるプログラムです。削除しました。"),
    "ole.xlm": ("Excel 4.0 マクロ", "旧形式のマクロです。悪用が多いため削除しました。"),
    "ole.object": ("埋め込みオブジェクト", "文書に埋め込まれた別のファイルやプログラムを削除しました。"),
    "ole.converted": ("新しい形式への変換", "安全に処理するため、旧形式のOffice文書を新しい形式に変換しました。"),
    "ole.encrypted": ("暗号化されたOffice文書", "パスワード保護のため中身を確認できません。"),
    "rtf.object": ("RTF内の埋め込みオブジェクト", "RTF文書に埋め込まれたプログラムやファイルを削除しました。"),
    "rtf.remote_template": ("外部テンプレートの読み込み", "開くときに外部からデータを取得する指定を削除しました。"),
    "rtf.field": ("RTFのフィールド命令", "外部の読み込みなどに使われるフィールドを無効化しました。"),
    # OpenDocument (odt/ods/odp) and 一太郎
    "odf.macro": ("マクロ（Basic・スクリプト）", "文書に組み込まれたプログラムです。削除しました。"),
    "odf.event": ("自動で動く動作の指定", "開いたときや操作したときにマクロを動かす指定を削除しました。"),
    "odf.external_link": ("外部参照", "開くときに外部のファイルやサーバーを読み込む指定を削除しました。"),
    "odf.object": ("埋め込みオブジェクト", "文書に埋め込まれた別のファイルやプログラムを削除しました。"),
    "odf.formula": ("危険な数式", "外部からデータを取得したり他の文書を参照したりする数式を削除し、表示されていた値を残しました。"),
    "odf.encrypted": ("暗号化された文書", "パスワード保護のため中身を確認できません。"),
    "ichitaro.macro": ("一太郎のマクロ", "文書に組み込まれたプログラムが含まれていました。"),
    # Images
    "image.metadata": ("画像の付加情報（メタデータ）", "撮影場所（位置情報）などの付加情報を削除しました。画像そのものは変わりません。"),
    "image.trailing_data": ("画像末尾の余分なデータ", "画像の後ろに隠れたデータがあったため取り除きました。"),
    "image.bomb": ("巨大な画像", "展開すると極端に大きくなる画像です。処理できないため止めました。"),
    "image.icc": ("色プロファイル", "画像の色情報の埋め込みデータを整理しました。"),
    "svg.script": ("SVG内のスクリプト", "画像に埋め込まれたプログラムです。削除しました。"),
    "svg.external_ref": ("SVGの外部参照", "外部から画像やデータを読み込む指定を削除しました。"),
    "svg.event_handler": ("SVGの動作指定", "クリックや表示に連動してプログラムを動かす指定を削除しました。"),
    "svg.foreign_object": ("SVG内の埋め込みHTML", "画像の中に埋め込まれたウェブページ部分を削除しました。"),
    "svg.entity": ("SVGの定義展開", "外部読み込みや大量展開に悪用される定義（エンティティ）を削除しました。"),
    "svg.rasterized": ("SVGの画像化", "ポリシーにより、SVGを通常の画像（PNG）に変換して配送しました。"),
    # Archives
    "archive.bomb": ("圧縮爆弾", "展開すると極端に大きくなる圧縮ファイルです。処理を止めました。"),
    "archive.path_traversal": ("不正なフォルダ指定", "展開先の外にファイルを書き出そうとする名前が含まれていました。"),
    "archive.symlink": ("シンボリックリンク", "別の場所を指すリンクが含まれていたため除外しました。"),
    "archive.encrypted": ("パスワード付き圧縮ファイル", "パスワードで保護されているため中身を確認できません。送信者にパスワードを確認してください。"),
    "archive.too_deep": ("入れ子が深すぎる圧縮ファイル", "圧縮ファイルの中に何重にも圧縮ファイルが入っていました。"),
    "archive.too_many_members": ("ファイル数が多すぎる圧縮ファイル", "上限を超える数のファイルが含まれていました。"),
    "archive.bad_name": ("不正なファイル名", "圧縮ファイル内に使えない名前のファイルがありました。"),
    "archive.duplicate_name": ("重複したファイル名", "同じ名前のファイルがあったため、上書きされないよう名前を変えました。"),
    "archive.special_file": ("特殊ファイル", "デバイスファイルなど通常のファイルでないものは除外しました。"),
    "archive.comment": ("圧縮ファイルのコメント", "圧縮ファイルに付いていたコメントを取り除きました。"),
    "archive.hidden_data": ("圧縮ファイル内の隠しデータ", "ファイル一覧に載らない隠れたデータがあったため取り除きました。"),
    "archive.member_blocked": ("配送できない中身", "圧縮ファイル内の一部のファイルは安全でないため除外しました。詳細は各ファイルの結果をご覧ください。"),
    "archive.member_sanitized": ("無害化した中身", "圧縮ファイル内のファイルを無害化しました。詳細は各ファイルの結果をご覧ください。"),
    "archive.all_members_blocked": ("すべての中身が配送不可", "圧縮ファイル内のどのファイルも安全に配送できなかったため、圧縮ファイルごと止めました。"),
    "archive.unsupported": ("未対応の圧縮形式", "この圧縮形式（RARなど）は安全に作り直せないため受け付けていません。ZIP形式での再送を依頼してください。"),
    # Text, HTML, CSV
    "text.binary_data": ("テキスト内のバイナリデータ", "文字ではないデータ（プログラムや圧縮ファイルの可能性）が含まれていたため配送を止めました。"),
    "csv.formula": ("CSVの数式", "Excelで開くと命令として実行される恐れのある値を、文字として扱うよう無害化しました。"),
    "html.active_content": ("HTML内のスクリプト等", "スクリプトや外部読み込みなど動作する部分を削除しました。"),
    "html.external_ref": ("HTMLの外部読み込み", "開いたときに外部から画像などを読み込む指定や、共有フォルダへのリンクを削除しました。"),
    "html.hyperlink": ("リンク", "ポリシーにより、ページ外へのリンクを削除しました。文字は残っています。"),
    # Whole-file outcomes
    "file.type_mismatch": ("拡張子と中身の不一致", "ファイル名の拡張子と実際の形式が違っていました。"),
    "file.executable": ("実行ファイル", "プログラム（実行ファイル）は受け付けていません。"),
    "file.unsupported": ("未対応の形式", "このファイル形式は安全に処理できないため受け付けていません。"),
    "file.malformed": ("壊れたファイル", "ファイルが壊れているか形式が不正なため、安全に処理できませんでした。"),
    "file.not_regular": ("通常のファイルでないもの", "リンクや特殊ファイルは受け付けていないため処理しませんでした。"),
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
    "odf": "OpenDocument文書の危険な要素", "ichitaro": "一太郎文書の要素", "text": "テキストの問題",
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
