"""The message catalogue: what clerks read, in Japanese and English.

Verdicts, threat ids, actions, why a file was blocked (its kind: password, size, policy, ...), and file
types. Each threat entry: what was found (短い名前), why it matters and what was done (一文の説明), then
the same in English. `explain` follows the finding's action (a password that opened the file is not
"ask the sender for the password"). Unknown ids fall back to their family, so a new handler never breaks
the console; tests/test_threat_labels.py fails until every id the code can emit has its entry.
"""
from __future__ import annotations

import re
from typing import Any

THREATS: dict[str, tuple[str, ...]] = {
    # PDF
    "pdf.javascript": ("PDF内のJavaScript", "開いたときに自動で動くプログラムです。ウイルス感染に悪用されるため削除しました。",
        "JavaScript in the PDF", "A program that runs when the file is opened; used to infect computers, so it was removed."),
    "pdf.open_action": ("PDFを開いたときの自動動作", "開いた瞬間に実行される動作の指定です。悪用を防ぐため削除しました。",
        "action on opening the PDF", "An action run the moment the file opens; removed to prevent misuse."),
    "pdf.additional_actions": ("PDFの追加動作", "ページ表示や操作に連動して動く仕組みです。悪用を防ぐため削除しました。",
        "additional PDF actions", "Actions tied to page views or clicks; removed to prevent misuse."),
    "pdf.launch": ("外部プログラムの起動指示", "PDFから別のプログラムを起動させる指示です。危険なため削除しました。",
        "instruction to start a program", "An instruction to start another program from the PDF; removed as dangerous."),
    "pdf.embedded_file": ("PDFの添付ファイル", "PDFの中に別のファイルが埋め込まれていました。",
        "file attached to the PDF", "Another file was embedded in the PDF."),
    "pdf.xfa": ("XFAフォーム", "動的フォーム（XFA）はスクリプトを含み得るため削除しました。",
        "XFA form", "Dynamic XFA forms can hold scripts; removed."),
    "pdf.rich_media": ("動画・Flash等の埋め込み", "マルチメディア要素は攻撃に使われることがあるため削除しました。",
        "embedded video, Flash or 3D", "Multimedia elements are used in attacks; removed."),
    "pdf.submit_form": ("フォーム送信の指示", "入力内容を外部へ送信する指示です。情報漏えいを防ぐため削除しました。",
        "form submission", "An instruction to send what is typed to an outside server; removed to prevent leaks."),
    "pdf.remote_goto": ("外部文書へのジャンプ", "別のファイルやネットワーク上の文書を開く指示を削除しました。",
        "jump to another document", "An instruction to open another file or a document on the network; removed."),
    "pdf.uri": ("外部リンク（URL）", "インターネット上のページへのリンクです。",
        "web link (URL)", "A link to a page on the internet."),
    "pdf.trailing_data": ("PDF末尾の余分なデータ", "ファイルの終わりの後ろに隠れたデータがあったため取り除きました。",
        "data after the end of the PDF", "Hidden data after the end of the file was removed."),
    "pdf.encrypted": ("暗号化されたPDF", "パスワード保護のため中身を確認できません。",
        "encrypted PDF", "Password protection prevents checking the content."),
    "pdf.external_ref": ("外部ファイルの参照", "開くときに別のファイルの中身を読み込む指定です。削除しました。",
        "reference to an outside file", "An instruction to load another file's content when opened; removed."),
    "pdf.import_data": ("外部データの取り込み指示", "別のファイルからフォームにデータを読み込む指示を削除しました。",
        "data import instruction", "An instruction to load form data from another file; removed."),
    "pdf.named_action": ("PDFの特殊な動作指示", "印刷や保存などを自動で行わせる指示です。ページ移動以外は削除しました。",
        "special PDF action", "Instructions such as automatic printing or saving; all but page moves removed."),
    "pdf.leading_data": ("PDF先頭の余分なデータ", "ファイルの始まりの前に別のデータが付いていたため取り除きました。",
        "data before the PDF", "Other data in front of the PDF was removed."),
    "pdf.incremental_update": ("PDFの追記履歴", "以前の版の内容（追記前の版）は引き継いでいません。表示される最新の内容は残っています。",
        "earlier PDF revisions", "Earlier revisions were not carried over; the latest content as displayed is kept."),
    "pdf.metadata": ("PDFの文書情報", "作成者などの文書情報（メタデータ）はポリシーにより引き継いでいません。",
        "PDF document information", "Author and other document information were not carried over, by policy."),
    "pdf.bomb": ("巨大なデータを含むPDF", "展開すると極端に大きくなるデータを含むため処理を止めました。",
        "PDF with huge data", "Data that expands enormously; processing was stopped."),
    "pdf.rendered": ("PDFの画像化", "ポリシーにより、各ページを画像にしたPDFとして配送しました。文字の選択や検索はできません。",
        "PDF converted to images", "By policy each page was delivered as an image; text cannot be selected or searched."),
    "pdf.image_recoded": ("PDF内の画像の作り直し", "JBIG2・JPEG 2000・ファクス形式の画像を展開し、劣化のない形式で保存し直しました。見た目は同じですが、ファイルは大きくなります。",
        "images in the PDF stored again", "JBIG2, JPEG 2000 and fax images were decoded and stored again without loss; "
        "the pages look the same, the file is larger."),
    "pdf.font_rebuilt": ("PDF内のフォントの作り直し", "埋め込みフォントを読み直して作り直しました。表示に使わない部分は引き継いでいません。",
        "fonts in the PDF rebuilt", "Embedded fonts were read and written again; parts a PDF does not draw with "
        "were not carried over."),
    "pdf.unknown_key": ("PDFの規格外の項目", "PDFの規格にない項目や型の違う値は引き継いでいません。表示される内容は残っています。",
        "entries outside the PDF specification", "Entries the PDF specification does not define (or with a value of "
        "the wrong type) were not carried over; the content as displayed is kept."),
    "pdf.other_annotation": ("許可されていない種類の注釈", "許可された種類以外の注釈（壊れたものを含む）を削除しました。見た目はページの一部として残しています。",
        "annotation of a type not allowed", "An annotation of a type not on the allow-list (or damaged) was removed; "
        "where it was visible, its appearance was kept as part of the page."),
    "pdf.hidden_data": ("PDF内に隠れたデータ", "圧縮データの終わりの後ろや壊れた圧縮データに紛れていた、危険な指示を含むデータを取り除きました。",
        "data hidden in a PDF stream", "Data holding dangerous instructions after the end of compressed data, or "
        "in damaged compressed data, was removed."),
    "pdf.other_action": ("許可されていない動作指示", "ページ移動とWebリンク以外の動作指示（壊れたものを含む）を削除しました。",
        "action not allowed", "An action other than a page move or a web link (or a damaged one) was removed."),
    # Office (OOXML: docx/xlsx/pptx)
    "ooxml.vba": ("マクロ（VBA）", "文書に組み込まれたプログラムです。ウイルスに悪用されるため削除しました。",
        "macros (VBA)", "Programs built into the document, used by viruses; removed."),
    "ooxml.xlm_macrosheet": ("Excel 4.0 マクロシート", "古い形式のマクロです。悪用が多いため削除しました。",
        "Excel 4.0 macro sheet", "An old kind of macro, often misused; removed."),
    "ooxml.activex": ("ActiveXコントロール", "文書内で動く部品です。危険なため削除しました。",
        "ActiveX control", "A component that runs inside the document; removed as dangerous."),
    "ooxml.ole_object": ("埋め込みオブジェクト（OLE）", "文書に埋め込まれた別のファイルやプログラムを削除しました。",
        "embedded object (OLE)", "Another file or program embedded in the document was removed."),
    "ooxml.external_relationship": ("外部参照", "開くときに外部のファイルやサーバーを読み込む指定を削除しました。",
        "external reference", "An instruction to load an outside file or server when opened; removed."),
    "ooxml.remote_template": ("外部テンプレートの読み込み", "開くときに外部からテンプレートを取得する指定です。攻撃に使われるため削除しました。",
        "remote template", "An instruction to fetch a template from outside when opened, used in attacks; removed."),
    "ooxml.dde": ("DDE（他アプリ連携）", "他のプログラムを動かせる連携機能です。危険なため無効化しました。",
        "DDE (link to other programs)", "A link that can start other programs; disabled as dangerous."),
    "ooxml.external_link": ("外部ブックへのリンク", "他のファイルの値を参照するリンクを削除しました。",
        "link to another workbook", "A link reading values from another file was removed."),
    "ooxml.alt_chunk": ("別形式の埋め込み文書", "文書内に埋め込まれた別形式のデータを削除しました。",
        "embedded document in another format", "Data in another format embedded in the document was removed."),
    "ooxml.macro_content_type": ("マクロ有効形式", "マクロを含める形式だったため、マクロなしの形式に変換しました。",
        "macro-enabled format", "The file was in a format that can hold macros; converted to the format without macros."),
    "ooxml.macro_reference": ("マクロの呼び出し", "ボタンや図形からマクロを呼び出す指定を削除しました。",
        "macro call", "Buttons or shapes calling a macro; the call was removed."),
    "ooxml.custom_ui": ("独自のリボン・メニュー", "マクロを呼び出すための独自メニュー定義を削除しました。",
        "custom ribbon or menu", "A custom menu definition used to call macros was removed."),
    "ooxml.dangerous_function": ("危険な関数", "外部からデータを取得したりプログラムを動かしたりする関数を削除し、表示されていた値を残しました。",
        "dangerous function", "Functions that fetch outside data or run programs were removed; the value shown is kept."),
    "ooxml.data_connection": ("外部データ接続", "データベースや外部ファイルへの接続設定を削除しました。",
        "external data connection", "Connections to databases or outside files were removed."),
    "ooxml.hyperlink": ("リンク", "ウェブ以外を開くリンク、またはポリシーにより全てのリンクを削除しました。文字は残っています。",
        "link", "Links that do not go to the web (or, by policy, all links) were removed; the text stays."),
    "ooxml.web_extension": ("Officeアドイン", "インターネットから読み込まれるアドインの指定を削除しました。",
        "Office add-in", "An add-in loaded from the internet was removed."),
    "ooxml.web_publish": ("Webページの自動発行", "保存のたびに送信者が指定した場所（社外のサーバーなど）へWebページを書き出す設定を削除しました。表の内容は残っています。",
        "automatic web publishing", "A setting that wrote a web page to a place the sender chose (such as an outside server) "
        "on every save was removed; the cells are kept."),
    "ooxml.online_video": ("オンラインビデオ", "クリックするとインターネット上のページを文書内で表示する仕組みを削除しました。ビデオの表紙の画像は残っています。",
        "online video", "A web page that the document showed when its video was clicked was removed; the video's "
        "cover picture is kept."),
    "ooxml.embedded_font": ("埋め込みフォント", "文書に埋め込まれたフォントを削除しました。表示はパソコンのフォントで代用されます。",
        "embedded font", "Fonts embedded in the document were removed; the computer's fonts are used instead."),
    "ooxml.signature": ("デジタル署名", "再構築により署名は無効になるため、署名データを削除しました。",
        "digital signature", "Rebuilding invalidates a signature, so the signature data was removed."),
    "ooxml.metadata": ("文書のプロパティ", "作成者などの文書情報は、ポリシーにより引き継いでいません。表示や計算に関わる作成アプリケーション名とバージョンは残しています。",
        "document properties", "Author and other document information were not carried over, by policy; the "
        "application's name and version, which change how the file is shown and calculated, were kept."),
    "ooxml.hidden_sheet": ("非表示のシート", "「再表示」でも出てこない隠しシート（veryHidden）を通常の非表示シートに変えました。Excel の「再表示」で確認できます。",
        "hidden sheet", "A sheet hidden from Unhide (veryHidden) was made an ordinary hidden sheet; Excel's Unhide shows it."),
    "ooxml.unknown_part": ("不明な構成部品", "用途を確認できない部品を文書から取り除きました。",
        "unknown part", "A part whose purpose could not be established was left out."),
    "ooxml.unknown_markup": ("規格外の記述", "文書の形式で定義されていない要素や属性を取り除きました。表示される内容は変わりません。",
        "markup outside the standard", "Elements or attributes the format does not define were removed; what is displayed does not change."),
    "ooxml.custom_xml": ("独自のXMLデータ", "文書に付属する独自形式のデータ（表示されない管理情報など）を取り除きました。",
        "custom XML data", "Custom data attached to the document (management information that is not displayed) was removed."),
    "ooxml.encrypted": ("暗号化されたOffice文書", "パスワード保護のため中身を確認できません。送信者にパスワードを確認してください。",
        "password-protected Office document", "Password protection prevents checking the content. Ask the sender for the password."),
    "ooxml.xlsb": ("Excelバイナリ形式（xlsb）", "この形式は安全に再構築できないため受け付けていません。xlsx形式での再送を依頼してください。",
        "Excel binary workbook (xlsb)", "This format cannot be rebuilt safely and is not accepted. Ask for the file as .xlsx."),
    # Legacy Office (OLE2: doc/xls/ppt) and RTF
    "ole.vba": ("マクロ（VBA）", "旧形式のOffice文書に含まれるプログラムです。削除しました。",
        "macros (VBA)", "Programs in an old-format Office document; removed."),
    "ole.xlm": ("Excel 4.0 マクロ", "旧形式のマクロです。悪用が多いため削除しました。",
        "Excel 4.0 macros", "An old kind of macro, often misused; removed."),
    "ole.object": ("埋め込みオブジェクト", "文書に埋め込まれた別のファイルやプログラムを削除しました。",
        "embedded object", "Another file or program embedded in the document was removed."),
    "ole.converted": ("新しい形式への変換", "安全に処理するため、旧形式のOffice文書を新しい形式に変換しました。",
        "conversion to the current format", "To process it safely, the old-format Office document was converted to the current format."),
    "ole.encrypted": ("暗号化されたOffice文書", "パスワード保護のため中身を確認できません。",
        "password-protected Office document", "Password protection prevents checking the content."),
    "ole.activex": ("ActiveXコントロール", "旧形式のOffice文書に含まれる、文書内で動く部品です。危険なため削除しました。",
        "ActiveX control", "A component that runs inside an old-format Office document; removed as dangerous."),
    "ole.dde": ("DDE・OLEリンク（他アプリ連携）", "他のプログラムからデータを取り込む連携です。危険なため削除し、表示されていた値を残しました。",
        "DDE/OLE link (link to other programs)", "A link pulling data from other programs; removed as dangerous, the value shown is kept."),
    "ole.external_link": ("外部ブック・外部データへのリンク", "他のファイルやデータベースの値を参照する指定を削除しました。表示されていた値は残っています。",
        "link to another workbook or outside data", "References to values in other files or databases were removed; the values shown stay."),
    "ole.hyperlink": ("リンク", "ウェブ以外を開くリンク、またはポリシーにより全てのリンクを削除しました。文字は残っています。",
        "link", "Links that do not go to the web (or, by policy, all links) were removed; the text stays."),
    "ole.hidden_sheet": ("非表示のシート", "「再表示」でも出てこない隠しシート（veryHidden）を通常の非表示シートに変えました。Excel の「再表示」で確認できます。",
        "hidden sheet", "A sheet hidden from Unhide (veryHidden) was made an ordinary hidden sheet; Excel's Unhide shows it."),
    "ole.macro_reference": ("マクロの呼び出し", "図形やボタンからマクロを呼び出す指定を削除しました。",
        "macro call", "Shapes or buttons calling a macro; the call was removed."),
    "ole.dangerous_function": ("危険な関数", "外部からデータを取得したりプログラムを動かしたりする関数を削除し、表示されていた値を残しました。",
        "dangerous function", "Functions that fetch outside data or run programs were removed; the value shown is kept."),
    "ole.formula": ("読み取れない数式", "安全に確認できない数式を、表示されていた値に置き換えました。",
        "unreadable formula", "A formula that could not be checked safely was replaced by the value it showed."),
    "ole.metadata": ("文書のプロパティ", "作成者などの文書情報は、ポリシーにより引き継いでいません。表示に必要な情報（文字コードなど）は残しています。",
        "document properties", "Author and other document information were not carried over, by policy; what display needs (code page) is kept."),
    "ole.field": ("危険なフィールド命令", "外部のファイルやサーバーからの読み込み、マクロの実行に使われるフィールドを無効化しました。表示されていた結果は残しています。",
        "dangerous field", "Fields that load outside files or servers or run macros were disabled; their displayed result stays."),
    "ole.remote_template": ("外部テンプレートの読み込み", "開くときに外部のテンプレートを読み込む指定を削除しました。",
        "remote template", "An instruction to load an outside template when opened was removed."),
    "ole.data_connection": ("外部データへの接続", "差し込み印刷などで外部のデータに接続する指定を削除しました。",
        "external data connection", "Connections to outside data (mail merge and the like) were removed."),
    "ole.customization": ("ツールバー・ショートカットの設定", "マクロの呼び出しに使われるメニューやキー割り当ての設定を削除しました。",
        "toolbar and shortcut settings", "Menu and key settings used to call macros were removed."),
    "ole.script": ("図形に付いたスクリプト", "図形に付けられたスクリプトやアプレットを削除しました。図形はそのまま残しています。",
        "script on a shape", "Scripts or applets attached to shapes were removed; the shapes stay."),
    "ole.action": ("クリック時の動作", "クリックでプログラムやマクロを実行する指定を削除しました。図形や文字は残しています。",
        "click action", "Clicks that run a program or macro were removed; shapes and text stay."),
    "rtf.object": ("RTF内の埋め込みオブジェクト", "RTF文書に埋め込まれたプログラムやファイルを削除しました。",
        "embedded object in RTF", "Programs or files embedded in the RTF document were removed."),
    "rtf.remote_template": ("外部テンプレートの読み込み", "開くときに外部からデータを取得する指定を削除しました。",
        "remote template", "An instruction to fetch data from outside when opened was removed."),
    "rtf.field": ("RTFのフィールド命令", "外部の読み込みなどに使われるフィールドを無効化しました。",
        "RTF field", "Fields used to load outside content were disabled."),
    "rtf.unknown_control": ("規格外・対象外のRTF命令", "文書の形式で定義されていない、または許可していない制御語を取り除きました。表示される内容は変わりません。",
        "unknown RTF control words", "Control words outside the format or the allow-list were left out; what is shown does not change."),
    "rtf.picture": ("RTF内の不正な画像データ", "画像の形式と中身が一致しない、または画像として読めないデータを削除しました。",
        "invalid picture data in RTF", "Picture data that was not an image of the type it named was removed."),
    "rtf.hidden_data": ("画像に隠されたデータ", "画像の終わりの後ろに付け足されたデータを切り取りました。画像はそのまま残しています。",
        "data hidden in a picture", "Data appended after the end of a picture was cut off; the picture stays."),
    # OpenDocument (odt/ods/odp) and 一太郎
    "odf.macro": ("マクロ（Basic・スクリプト）", "文書に組み込まれたプログラムです。削除しました。",
        "macros (Basic, scripts)", "Programs built into the document; removed."),
    "odf.event": ("自動で動く動作の指定", "開いたときや操作したときにマクロを動かす指定を削除しました。",
        "automatic action", "Instructions to run macros on opening or on actions were removed."),
    "odf.external_link": ("外部参照", "開くときに外部のファイルやサーバーを読み込む指定を削除しました。",
        "external reference", "An instruction to load an outside file or server when opened was removed."),
    "odf.object": ("埋め込みオブジェクト", "文書に埋め込まれた別のファイルやプログラムを削除しました。",
        "embedded object", "Another file or program embedded in the document was removed."),
    "odf.formula": ("危険な数式", "外部からデータを取得したり他の文書を参照したりする数式を削除し、表示されていた値を残しました。",
        "dangerous formula", "Formulas that fetch outside data or read other documents were removed; the value shown is kept."),
    "odf.encrypted": ("暗号化された文書", "パスワード保護のため中身を確認できません。",
        "encrypted document", "Password protection prevents checking the content."),
    "odf.unknown_markup": ("規格外の記述", "文書の形式で定義されていない要素や属性を取り除きました。",
        "markup outside the standard", "Elements or attributes the format does not define were removed."),
    "odf.metadata": ("文書のプロパティ", "作成者などの文書情報をポリシーにより削除しました。表示に関わる作成アプリケーション名は残しています。",
        "document properties", "Author and other document information were not carried over, by policy; the name "
        "of the application that wrote the file, which changes how it is laid out, was kept."),
    "ichitaro.macro": ("一太郎のマクロ", "文書に組み込まれたプログラムが含まれていました。",
        "Ichitaro macro", "The document contained a built-in program."),
    # Images
    "image.metadata": ("画像の付加情報（メタデータ）", "撮影場所（位置情報）などの付加情報を削除しました。画像そのものは変わりません。",
        "image metadata", "Location (GPS) and other added information was removed; the picture itself is unchanged."),
    "image.trailing_data": ("画像末尾の余分なデータ", "画像の後ろに隠れたデータがあったため取り除きました。",
        "data after the image", "Hidden data after the image was removed."),
    "image.hidden_data": ("画像データ内の読まれないデータ", "画像の圧縮データの中に、表示には使われない余分なデータや壊れた部分がありました。画素から作り直しました。",
        "unread data inside the image", "The compressed image data held unused or damaged parts; the image was rebuilt from its pixels."),
    "image.bomb": ("巨大な画像", "展開すると極端に大きくなる画像です。処理できないため止めました。",
        "huge image", "An image that expands enormously; it cannot be processed."),
    "image.icc": ("色プロファイル", "画像の色情報の埋め込みデータを整理しました。",
        "colour profile", "The embedded colour information was tidied."),
    "svg.script": ("SVG内のスクリプト", "画像に埋め込まれたプログラムです。削除しました。",
        "script in SVG", "A program embedded in the picture; removed."),
    "svg.external_ref": ("SVGの外部参照", "外部から画像やデータを読み込む指定を削除しました。",
        "SVG external reference", "Instructions to load pictures or data from outside were removed."),
    "svg.event_handler": ("SVGの動作指定", "クリックや表示に連動してプログラムを動かす指定を削除しました。",
        "SVG event handler", "Instructions running a program on a click or display were removed."),
    "svg.foreign_object": ("SVG内の埋め込みHTML", "画像の中に埋め込まれたウェブページ部分を削除しました。",
        "HTML inside SVG", "A web page part embedded in the picture was removed."),
    "svg.entity": ("SVGの定義展開", "外部読み込みや大量展開に悪用される定義（エンティティ）を削除しました。",
        "SVG entity", "Definitions (entities) misused for outside loading or mass expansion were removed."),
    "svg.rasterized": ("SVGの画像化", "ポリシーにより、SVGを通常の画像（PNG）に変換して配送しました。",
        "SVG converted to an image", "By policy the SVG was delivered as an ordinary picture (PNG)."),
    # Archives
    "archive.bomb": ("圧縮爆弾", "展開すると極端に大きくなる圧縮ファイルです。処理を止めました。",
        "archive bomb", "An archive that expands enormously; processing was stopped."),
    "archive.path_traversal": ("不正なフォルダ指定", "展開先の外にファイルを書き出そうとする名前が含まれていました。",
        "invalid folder in a name", "A name tried to write outside the extraction folder."),
    "archive.symlink": ("シンボリックリンク", "別の場所を指すリンクが含まれていたため除外しました。",
        "symbolic link", "A link pointing elsewhere was left out."),
    "archive.encrypted": ("パスワード付き圧縮ファイル", "パスワードで保護されているため中身を確認できません。送信者にパスワードを確認してください。",
        "password-protected archive", "Password protection prevents checking the content. Ask the sender for the password."),
    "archive.too_deep": ("入れ子が深すぎる圧縮ファイル", "圧縮ファイルの中に何重にも圧縮ファイルが入っていました。",
        "archive nested too deep", "Archives were packed inside archives too many times."),
    "archive.too_many_members": ("ファイル数が多すぎる圧縮ファイル", "上限を超える数のファイルが含まれていました。",
        "too many files in the archive", "The archive holds more files than allowed."),
    "archive.bad_name": ("不正なファイル名", "圧縮ファイル内に使えない名前のファイルがありました。",
        "invalid file name", "A file in the archive had a name that cannot be used."),
    "archive.duplicate_name": ("重複したファイル名", "同じ名前のファイルがあったため、上書きされないよう名前を変えました。",
        "duplicate file name", "Files with the same name were renamed so that none overwrites another."),
    "archive.special_file": ("特殊ファイル", "デバイスファイルなど通常のファイルでないものは除外しました。",
        "special file", "Device files and other non-regular files were left out."),
    "archive.comment": ("圧縮ファイルのコメント", "圧縮ファイルに付いていたコメントを取り除きました。",
        "archive comment", "The comment attached to the archive was removed."),
    "archive.hidden_data": ("圧縮ファイル内の隠しデータ", "ファイル一覧に載らない隠れたデータがあったため取り除きました。",
        "hidden data in the archive", "Hidden data not listed in the archive's directory was removed."),
    "archive.member_blocked": ("配送できない中身", "圧縮ファイル内の一部のファイルは安全でないため除外しました。詳細は各ファイルの結果をご覧ください。",
        "content not delivered", "Some files in the archive were left out as unsafe; see each file's result."),
    "archive.member_sanitized": ("無害化した中身", "圧縮ファイル内のファイルを無害化しました。詳細は各ファイルの結果をご覧ください。",
        "content sanitized", "Files in the archive were sanitized; see each file's result."),
    "archive.all_members_blocked": ("すべての中身が配送不可", "圧縮ファイル内のどのファイルも安全に配送できなかったため、圧縮ファイルごと止めました。",
        "no content deliverable", "No file in the archive could be delivered safely, so the whole archive was stopped."),
    "archive.unsupported": ("未対応の圧縮形式", "この圧縮形式（RARなど）は安全に作り直せないため受け付けていません。ZIP形式での再送を依頼してください。",
        "unsupported archive format", "This format (RAR and the like) cannot be rebuilt safely and is not accepted. Ask for a ZIP."),
    # Text, HTML, CSV
    "text.binary_data": ("テキスト内のバイナリデータ", "文字ではないデータ（プログラムや圧縮ファイルの可能性）が含まれていたため配送を止めました。",
        "binary data in text", "Data that is not text (possibly a program or an archive) was found, so delivery was stopped."),
    "csv.formula": ("CSVの数式", "Excelで開くと命令として実行される恐れのある値を、文字として扱うよう無害化しました。",
        "formula in CSV", "Values that Excel would run as commands were made plain text (a leading apostrophe)."),
    "html.active_content": ("HTML内のスクリプト等", "スクリプトや外部読み込みなど動作する部分を削除しました。",
        "scripts in HTML", "Scripts, outside loading and other active parts were removed."),
    "html.external_ref": ("HTMLの外部読み込み", "開いたときに外部から画像などを読み込む指定や、共有フォルダへのリンクを削除しました。",
        "HTML outside loading", "Instructions loading pictures from outside, and links to file shares, were removed."),
    "html.hyperlink": ("リンク", "ポリシーにより、ページ外へのリンクを削除しました。文字は残っています。",
        "link", "By policy, links leaving the page were removed; the text stays."),
    # Mail (.eml, .msg, winmail.dat)
    "mail.ambiguous_mime": ("あいまいなメール構造", "読むソフトによって内容が変わる構造（重複ヘッダー、紛らわしい区切り、隠れた部品など）でした。該当部分を削除するか、メールごと止めました。",
        "ambiguous mail structure", "A structure that different programs read differently (duplicate headers, confusing boundaries, hidden parts); that part was removed, or the whole mail stopped."),
    "mail.attachment_blocked": ("配送できない添付ファイル", "安全に配送できない添付ファイルを削除し、理由を書いたお知らせに置き換えました。",
        "attachment not delivered", "An attachment that cannot be delivered safely was removed and replaced by a notice giving the reason."),
    "mail.attachment_name": ("偽装された添付ファイル名", "拡張子を偽装する表示方向制御文字や末尾の点・空白を名前から取り除きました。",
        "disguised attachment name", "Direction-control characters and trailing dots or spaces that disguise the extension were removed from the name."),
    "mail.attachment_sanitized": ("無害化した添付ファイル", "添付ファイルを無害化しました。詳細は各添付ファイルの結果をご覧ください。",
        "attachment sanitized", "Attachments were sanitized; see each attachment's result."),
    "mail.bomb": ("展開すると巨大になるメール", "復号すると元の大きさの何倍にもなるデータを含むため処理を止めました。",
        "mail that expands enormously", "Data that decodes to many times its size; processing was stopped."),
    "mail.deceptive_link": ("不審なリンク", "表示と実際のリンク先が違う、IPアドレス宛て、または見た目の似た文字を使ったリンクです。本文冒頭で注意を促しています。",
        "suspicious link", "A link whose text and target differ, that goes to an IP address or uses look-alike letters; a warning is at the top of the body."),
    "mail.decode_defect": ("読み取れない文字", "文字コードの誤りで読み取れない文字がありました（「\ufffd」で表示）。",
        "unreadable characters", "Some characters could not be read because of a wrong character set (shown as \"\ufffd\")."),
    "mail.dmarc_fail": ("なりすましの疑い（DMARC失敗）", "送信ドメイン認証に失敗し、送信元ドメインが受信拒否を指定していたため配送を止めました。",
        "possible spoofing (DMARC failed)", "Sender authentication failed and the sender's domain asks receivers to reject such mail; delivery was stopped."),
    "mail.form": ("HTMLメール内の入力フォーム", "パスワード等を入力させて送信するフォームを削除しました。",
        "form in an HTML mail", "A form asking for passwords or other input was removed."),
    "mail.frame": ("HTMLメール内のフレーム・埋め込み", "別のページやプログラムを読み込む部分を削除しました。",
        "frame or embedding in an HTML mail", "Parts loading another page or a program were removed."),
    "mail.header_injection": ("ヘッダー内の不正な改行", "宛先の追加などに悪用される改行文字をヘッダーから取り除きました。",
        "line break hidden in a header", "Line breaks misused to add recipients and the like were removed from the header."),
    "mail.header_limit": ("巨大なヘッダー", "ヘッダーが上限を超える大きさだったため処理を止めました。",
        "huge header", "The header was larger than allowed; processing was stopped."),
    "mail.html_converted": ("HTMLメールのテキスト化", "ポリシーにより、HTML形式の本文を読みやすいテキストに変換しました。",
        "HTML mail converted to text", "By policy the HTML body was converted to readable text."),
    "mail.link": ("本文のリンク", "ポリシーにより、リンクをクリックできない形にするか削除しました。",
        "links in the body", "By policy links were made unclickable or removed."),
    "mail.malformed": ("壊れたメール", "メールの形式が不正なため、安全に処理できませんでした。",
        "damaged mail", "The mail is malformed and could not be processed safely."),
    "mail.remote_content": ("外部からの自動読み込み", "開いただけで外部から画像等を読み込む指定（開封確認に使われるWebビーコン等）を削除しました。",
        "automatic loading from outside", "Pictures and the like loaded from outside on opening (web beacons that report the mail was read) were removed."),
    "mail.script": ("HTMLメール内のスクリプト", "メールを開いたときに動くプログラムや自動動作を削除しました。",
        "script in an HTML mail", "Programs and automatic actions run when the mail is opened were removed."),
    "mail.smime_encrypted": ("暗号化されたメール", "暗号化されていて中身を確認できないため配送を止めました。復号した状態での送付を依頼してください。",
        "encrypted mail", "The mail is encrypted and cannot be checked, so delivery was stopped. Ask for it unencrypted."),
    "mail.smime_signed": ("電子署名付きメール", "電子署名（S/MIME等）が付いていました。作り直すと署名は無効になるため、署名を外して内容を配送しました。",
        "signed mail", "The mail carried an electronic signature (S/MIME); rebuilding invalidates it, so the signature was removed and the content delivered."),
    "mail.tnef": ("Outlook形式の添付（winmail.dat）", "winmail.dat の中の添付ファイルを取り出し、通常の添付ファイルとして配送しました。",
        "Outlook attachment (winmail.dat)", "The attachments inside winmail.dat were taken out and delivered as ordinary attachments."),
    "mail.too_deep": ("入れ子が深すぎるメール", "メールの中に何重にもメールや部品が入っていたため処理を止めました。",
        "mail nested too deep", "Mails or parts were nested too many times; processing was stopped."),
    "mail.too_many_parts": ("部品が多すぎるメール", "上限を超える数の部品が含まれていたため処理を止めました。",
        "too many parts", "The mail holds more parts than allowed; processing was stopped."),
    "mail.uuencode": ("本文に埋め込まれたファイル", "本文に埋め込まれたファイル（uuencode）を取り出し、添付ファイルとして検査しました。",
        "file embedded in the body", "A file embedded in the body (uuencode) was taken out and checked as an attachment."),
    # Whole-file outcomes
    "file.type_mismatch": ("拡張子と中身の不一致", "ファイル名の拡張子と実際の形式が違っていました。",
        "extension does not match content", "The file name's extension differs from the actual format."),
    "file.executable": ("実行ファイル", "プログラム（実行ファイル）は受け付けていません。",
        "executable file", "Programs (executable files) are not accepted."),
    "file.unsupported": ("未対応の形式", "このファイル形式は安全に処理できないため受け付けていません。",
        "unsupported format", "This file format cannot be processed safely and is not accepted."),
    "file.malformed": ("壊れたファイル", "ファイルが壊れているか形式が不正なため、安全に処理できませんでした。",
        "damaged file", "The file is damaged or malformed and could not be processed safely."),
    "file.not_regular": ("通常のファイルでないもの", "リンクや特殊ファイルは受け付けていないため処理しませんでした。",
        "not an ordinary file", "Links and special files are not accepted and were not processed."),
    "file.encrypted": ("パスワード保護", "パスワードで保護されているため処理できません。送信者にパスワードを確認してください。",
        "password protection", "Password protection prevents processing. Ask the sender for the password."),
    "file.limit": ("処理上限の超過", "大きさやページ数などが上限を超えたため処理を止めました。",
        "processing limit exceeded", "Size, page count or another limit was exceeded, so processing was stopped."),
    "file.timeout": ("処理時間の超過", "処理に時間がかかりすぎたため止めました。",
        "processing took too long", "Processing took too long and was stopped."),
    "file.blocked": ("ポリシーによる停止", "受け付けないと定められた内容のため配送を止めました。",
        "stopped by policy", "Content the policy does not accept; delivery was stopped."),
    "file.tool_failed": ("変換処理の失敗", "変換ツールが正常に終了しなかったため配送を止めました。",
        "conversion failed", "The conversion tool did not finish normally; delivery was stopped."),
    "policy.blocked": ("ポリシーによる停止", "この種類のファイルは受け付けないと定められています。",
        "stopped by policy", "The policy does not accept this kind of file."),
    "policy.text_only": ("テキストのみ配送", "ポリシーにより、本文のテキストだけを取り出して配送しました。",
        "text only", "By policy only the text of the file was delivered."),
    "verify.failed": ("再検査の失敗", "無害化した結果を再検査できなかったため配送を止めました。",
        "re-check failed", "The sanitized result could not be re-checked, so delivery was stopped."),
    "verify.residual": ("無害化後も残った危険", "無害化後の再検査で危険な部分が残っていたため配送を止めました。",
        "danger left after sanitizing", "The re-check after sanitizing still found active content, so delivery was stopped."),
    "worker.crashed": ("処理の異常終了", "処理中にエラーが起きたため、安全のため配送を止めました。",
        "processing ended abnormally", "An error occurred while processing; delivery was stopped for safety."),
    "worker.error": ("処理エラー", "処理中にエラーが起きたため、安全のため配送を止めました。",
        "processing error", "An error occurred while processing; delivery was stopped for safety."),
    "worker.protocol": ("処理結果の検証失敗", "処理結果を確認できなかったため、安全のため配送を止めました。",
        "result could not be checked", "The processing result could not be verified; delivery was stopped for safety."),
    "worker.interrupted": ("処理の中断", "処理が何度も中断された（サービスの停止や再起動）ため、安全のため配送を止めました。",
        "processing interrupted", "Processing was interrupted repeatedly (the service stopped or restarted); delivery was stopped for safety."),
    "worker.sandbox": ("隔離環境の不備", "処理を隔離する環境を用意できなかったため、安全のため配送を止めました。",
        "isolation unavailable", "The isolated environment for processing could not be set up; delivery was stopped for safety."),
}


# What a finding's action changes in the sentence: the plain explanation above says what is usually
# done; these say what happened when it differs ((id, action) -> Japanese, English).
_OPENED = ("指定されたパスワードで開いて中身を検査しました。配送したファイルにはパスワードはかかっていません。",
           "Opened with the password supplied and checked; the delivered file has no password.")
_PROTECTED = ("パスワードで保護されています。", "It is password protected.")
BY_ACTION: dict[tuple[str, str], tuple[str, str]] = {
    **{(f"{fam}.encrypted", act): _OPENED for fam in ("archive", "ooxml", "ole", "odf", "pdf", "file")
       for act in ("converted", "reported")},
    **{(f"{fam}.encrypted", "found"): _PROTECTED for fam in ("archive", "ooxml", "ole", "odf", "pdf", "file")},
    **{(f"{fam}.encrypted", "blocked"): (
        "パスワードで保護されているため中身を確認できません。送信者からパスワードを別の方法（電話など）で受け取り、"
        "職員コンソールの報告画面で入力してください。",
        "Password protection prevents checking the content. Get the password from the sender another way (by "
        "phone, for example) and enter it on the report page of the staff console.")
       for fam in ("archive", "ooxml", "ole", "odf", "pdf", "file")},
    ("archive.encrypted", "removed"): (
        "パスワードで保護された中身を開けなかったため、その中身は除外しました。",
        "A password-protected member could not be opened and was left out."),
    ("pdf.encrypted", "removed"): (
        "暗号化を解いて作り直しました。配送したPDFにはパスワードも利用制限もかかっていません。",
        "The encryption was removed while rebuilding; the delivered PDF has no password or restrictions."),
    ("file.malformed", "repaired"): ("壊れた部分を修復して作り直しました。", "Damaged parts were repaired while rebuilding."),
    ("csv.formula", "found"): ("Excelで開くと命令として実行される恐れのある値があります。",
                               "Values that Excel would run as commands were found."),
    ("archive.duplicate_name", "found"): ("同じ名前のファイルがあります。", "Files with the same name were found."),
    **{(f"{fam}.hidden_sheet", "reported"): ("非表示のシートがあります（そのまま非表示です）。Excel の「再表示」で確認できます。",
                                              "A hidden sheet is in the workbook (still hidden); Excel's Unhide shows it.")
       for fam in ("ooxml", "ole")},
}

_FAMILY: dict[str, tuple[str, str]] = {
    "pdf": ("PDFの危険な要素", "active PDF content"), "ooxml": ("Office文書の危険な要素", "active Office content"),
    "ole": ("旧形式Office文書の危険な要素", "active content in an old Office document"),
    "rtf": ("RTF文書の危険な要素", "active RTF content"), "image": ("画像の不要な要素", "extra image data"),
    "svg": ("SVG画像の危険な要素", "active SVG content"), "archive": ("圧縮ファイルの問題", "archive problem"),
    "csv": ("CSVの危険な値", "dangerous CSV value"), "html": ("HTMLの危険な要素", "active HTML content"),
    "odf": ("OpenDocument文書の危険な要素", "active OpenDocument content"),
    "ichitaro": ("一太郎文書の要素", "Ichitaro content"), "text": ("テキストの問題", "text problem"),
    "file": ("ファイルの問題", "file problem"), "policy": ("ポリシー", "policy"), "verify": ("再検査", "re-check"),
    "worker": ("処理エラー", "processing error"), "mail": ("メールの問題", "mail problem"),
}

# Policy families as a clerk names them (the [release] never list, said in the report and the console).
FAMILIES: dict[str, tuple[str, str]] = {
    "executable": ("実行ファイル（プログラム）", "executables (programs)"), "unknown": ("種類の分からないファイル", "unknown types"),
    "pdf": ("PDF", "PDF"), "ooxml": ("Word・Excel・PowerPoint文書", "Word, Excel and PowerPoint documents"),
    "legacy_office": ("旧形式のOffice文書（.doc .xls .ppt）", "old Office documents (.doc .xls .ppt)"),
    "rtf": ("RTF文書", "RTF documents"), "odf": ("OpenDocument文書", "OpenDocument files"), "image": ("画像", "pictures"),
    "svg": ("SVG画像", "SVG pictures"), "archive": ("圧縮ファイル", "archives"), "text": ("テキスト", "text files"),
    "csv": ("CSV", "CSV files"), "html": ("HTML", "HTML files"), "mail": ("メール", "mails"),
    "ichitaro": ("一太郎文書", "Ichitaro documents"), "docuworks": ("DocuWorks文書", "DocuWorks documents"),
}


def family_label(family: str, lang: str = "ja") -> str:
    return FAMILIES.get(family, (family, family))[_lang(lang)]


ACTIONS: dict[str, tuple[str, str]] = {
    "removed": ("削除", "removed"), "neutralized": ("無効化", "neutralized"), "converted": ("変換", "converted"),
    "repaired": ("修復", "repaired"), "blocked": ("配送停止", "blocked"), "renamed": ("名前変更", "renamed"),
    "found": ("検出", "found"),
    # Not active content: a note (document properties not carried over, earlier revisions, ...).
    "reported": ("お知らせ", "note"),
}

VERDICTS: dict[str, tuple[str, str]] = {
    "clean": ("問題なし", "clean"), "sanitized": ("無害化済み", "sanitized"), "blocked": ("配送停止", "blocked"),
    "received": ("受付", "received"), "processing": ("処理中", "processing"), "done": ("完了", "done"),
}
ACTIONS_JA = {k: v[0] for k, v in ACTIONS.items()}
VERDICTS_JA = {k: v[0] for k, v in VERDICTS.items()}

# What a verdict means for the clerk (the report's first sentence). Blocked files get their kind's sentence.
VERDICT_SENTENCES: dict[str, tuple[str, str]] = {
    "clean": ("危険な要素は見つかりませんでした。作り直したファイルをそのままお使いいただけます。",
              "Nothing active was found. The rebuilt file can be used as it is."),
    "sanitized": ("危険な要素を取り除いて作り直したファイルを配送しました。文章・表・画像などの内容は残っています。"
                  "取り除いたものは下記のとおりです。",
                  "Active content was removed and the rebuilt file delivered. Text, tables and pictures are kept. "
                  "What was removed is listed below."),
    # A password-protected file opened with the password a clerk entered, and nothing else found in it.
    "opened": ("指定されたパスワードで開いて中身を検査し、パスワードのかからないファイルにして配送しました。"
               "中身に危険な要素は見つかりませんでした。",
               "Opened with the password supplied and checked; it was delivered without a password. Nothing active "
               "was found in it."),
    "text_only": ("ポリシーにより、文字（テキスト）だけを取り出したファイルを配送しました。表の罫線・画像・書式は含まれません。"
                  "元の形式のファイルが必要な場合は、原本の取り出しを申請してください。",
                  "By policy only the text was taken out and delivered: no table lines, pictures or formatting. If "
                  "you need the file in its own format, request the original."),
}

# Why a file was blocked, in the words a clerk needs: what happened and what to do.
BLOCK_KINDS: dict[str, tuple[str, str]] = {
    "password": ("パスワードで保護されているため中身を確認できず、配送していません。送信者からパスワードを別の方法（電話など）で"
                 "受け取り、職員コンソールの報告画面で入力すると、無害化して配送します。",
                 "It is password protected, so its content could not be checked and it was not delivered. Get the "
                 "password from the sender another way (by phone, for example) and enter it on the report page of "
                 "the staff console: the file is then sanitized and delivered."),
    "size": ("大きさや数が上限（ファイルの大きさ、ページ数、圧縮ファイルの中身の数や展開後の大きさなど）を超えたため、"
             "配送していません。送信者に、分割するなどして送り直すよう依頼してください。",
             "It exceeds a limit (file size, pages, the number or expanded size of archive members, ...) and was not "
             "delivered. Ask the sender to send it again in smaller parts."),
    "policy": ("この種類のファイルは受け付けない決まり（ポリシー）のため、配送していません。必要な場合は、PDFなど受け付けている"
               "形式で送り直すよう送信者に依頼してください。",
               "The policy does not accept this kind of file, so it was not delivered. If it is needed, ask the "
               "sender for it in an accepted format such as PDF."),
    "executable": ("プログラム（実行ファイル）やショートカットなど、開くだけで動作するファイルは受け付けていないため、"
                   "配送していません。",
                   "Programs, shortcuts and other files that act when opened are not accepted; it was not delivered."),
    "malformed": ("ファイルが壊れているか形式が正しくないため、安全に処理できず、配送していません。送信者に、作り直して"
                  "送り直すよう依頼してください。",
                  "The file is damaged or malformed and could not be processed safely; it was not delivered. Ask the "
                  "sender to save it again and resend it."),
    "residual": ("危険な要素を取り除いた後の再検査で、まだ危険な要素が見つかったため、配送していません。",
                 "The re-check after sanitizing still found active content, so it was not delivered."),
    "error": ("処理中にエラー（時間切れなど）が起きたため、安全のため配送していません。続く場合は管理者に連絡してください。",
              "An error (a timeout, for example) occurred while processing; for safety it was not delivered. If it "
              "happens again, contact the administrator."),
}
# The kind of every id that can block a file (the test checks that each blocking id has one); first
# found in this order decides: a residual finding says more than the error that follows it.
_KIND_ORDER = ("residual", "password", "executable", "size", "policy", "malformed", "error")
BLOCK_KIND: dict[str, str] = {
    "verify.residual": "residual", "verify.failed": "residual",
    "file.encrypted": "password", "archive.encrypted": "password", "ooxml.encrypted": "password",
    "ole.encrypted": "password", "odf.encrypted": "password", "pdf.encrypted": "password",
    "mail.smime_encrypted": "password",
    "file.executable": "executable", "file.not_regular": "executable",
    "file.limit": "size", "archive.bomb": "size", "archive.too_deep": "size", "archive.too_many_members": "size",
    "image.bomb": "size", "pdf.bomb": "size", "mail.bomb": "size", "mail.too_deep": "size",
    "mail.too_many_parts": "size", "mail.header_limit": "size",
    "policy.blocked": "policy", "file.blocked": "policy", "file.unsupported": "policy", "ooxml.xlsb": "policy",
    "archive.unsupported": "policy", "archive.all_members_blocked": "policy", "mail.dmarc_fail": "policy",
    "file.malformed": "malformed", "mail.malformed": "malformed", "mail.ambiguous_mime": "malformed",
    "text.binary_data": "malformed", "archive.path_traversal": "malformed", "archive.bad_name": "malformed",
    "rtf.object": "malformed", "mail.smime_signed": "malformed", "ooxml.xlm_macrosheet": "malformed",
    "svg.entity": "size", "csv.formula": "policy",
    "file.timeout": "error", "file.tool_failed": "error", "worker.crashed": "error", "worker.error": "error",
    "worker.protocol": "error", "worker.sandbox": "error", "worker.interrupted": "error",
}

# The type of a file as a clerk knows it (detected MIME type -> Japanese, English).
_W = "application/vnd.openxmlformats-officedocument.wordprocessingml"
_S = "application/vnd.openxmlformats-officedocument.spreadsheetml"
_P = "application/vnd.openxmlformats-officedocument.presentationml"
TYPES: dict[str, tuple[str, str]] = {
    "application/pdf": ("PDF", "PDF document"),
    f"{_W}.document": ("Word文書", "Word document"),
    "application/vnd.ms-word.document.macroEnabled.12": ("Word文書（マクロ付き）", "Word document (macro-enabled)"),
    f"{_W}.template": ("Wordテンプレート", "Word template"),
    "application/vnd.ms-word.template.macroEnabled.12": ("Wordテンプレート（マクロ付き）", "Word template (macro-enabled)"),
    f"{_S}.sheet": ("Excelブック", "Excel workbook"),
    "application/vnd.ms-excel.sheet.macroEnabled.12": ("Excelブック（マクロ付き）", "Excel workbook (macro-enabled)"),
    f"{_S}.template": ("Excelテンプレート", "Excel template"),
    "application/vnd.ms-excel.template.macroEnabled.12": ("Excelテンプレート（マクロ付き）",
                                                          "Excel template (macro-enabled)"),
    "application/vnd.ms-excel.sheet.binary.macroEnabled.12": ("Excelバイナリブック（xlsb）", "Excel binary workbook"),
    f"{_P}.presentation": ("PowerPointプレゼンテーション", "PowerPoint presentation"),
    "application/vnd.ms-powerpoint.presentation.macroEnabled.12": ("PowerPointプレゼンテーション（マクロ付き）",
                                                                   "PowerPoint presentation (macro-enabled)"),
    f"{_P}.template": ("PowerPointテンプレート", "PowerPoint template"),
    "application/vnd.ms-powerpoint.template.macroEnabled.12": ("PowerPointテンプレート（マクロ付き）",
                                                               "PowerPoint template (macro-enabled)"),
    f"{_P}.slideshow": ("PowerPointスライドショー", "PowerPoint slide show"),
    "application/vnd.ms-powerpoint.slideshow.macroEnabled.12": ("PowerPointスライドショー（マクロ付き）",
                                                                "PowerPoint slide show (macro-enabled)"),
    "application/x-ooxml-encrypted": ("パスワード付きOffice文書", "password-protected Office document"),
    "application/msword": ("Word 97-2003文書", "Word 97-2003 document"),
    "application/vnd.ms-excel": ("Excel 97-2003ブック", "Excel 97-2003 workbook"),
    "application/vnd.ms-powerpoint": ("PowerPoint 97-2003プレゼンテーション", "PowerPoint 97-2003 presentation"),
    "application/rtf": ("RTF文書", "Rich Text Format document"),
    "application/vnd.oasis.opendocument.text": ("OpenDocument文書（odt）", "OpenDocument text"),
    "application/vnd.oasis.opendocument.spreadsheet": ("OpenDocument表計算（ods）", "OpenDocument spreadsheet"),
    "application/vnd.oasis.opendocument.presentation": ("OpenDocumentプレゼンテーション（odp）",
                                                        "OpenDocument presentation"),
    "application/x-js-taro": ("一太郎文書", "Ichitaro document"),
    "application/vnd.fujixerox.docuworks": ("DocuWorks文書", "DocuWorks document"),
    "image/jpeg": ("JPEG画像", "JPEG image"), "image/png": ("PNG画像", "PNG image"), "image/gif": ("GIF画像", "GIF image"),
    "image/bmp": ("BMP画像", "BMP image"), "image/tiff": ("TIFF画像", "TIFF image"), "image/webp": ("WebP画像", "WebP image"),
    "image/svg+xml": ("SVG画像", "SVG image"),
    "application/zip": ("ZIP圧縮ファイル", "ZIP archive"), "application/x-tar": ("tarアーカイブ", "tar archive"),
    "application/gzip": ("gzip圧縮ファイル", "gzip archive"), "application/x-bzip2": ("bzip2圧縮ファイル", "bzip2 archive"),
    "application/x-xz": ("xz圧縮ファイル", "xz archive"), "application/x-7z-compressed": ("7-Zip圧縮ファイル", "7-Zip archive"),
    "application/vnd.rar": ("RAR圧縮ファイル", "RAR archive"),
    "text/plain": ("テキスト", "plain text"), "text/csv": ("CSV（表形式のテキスト）", "CSV text"),
    "text/html": ("HTML文書（ウェブページ）", "HTML document"),
    "application/vnd.microsoft.portable-executable": ("Windowsの実行ファイル", "Windows executable"),
    "application/x-elf": ("実行ファイル（ELF）", "ELF executable"), "application/x-mach-binary": ("実行ファイル（Mach-O）",
                                                                                           "Mach-O executable"),
    "application/java-vm": ("Javaのプログラム", "Java class file"),
    "application/x-msi": ("Windowsのインストーラー", "Windows Installer package"),
    "application/x-ms-shortcut": ("Windowsのショートカット", "Windows shortcut"),
    "application/x-mswinurl": ("インターネットショートカット", "Internet shortcut"),
    "application/x-iso9660-image": ("ディスクイメージ（ISO）", "disk image (ISO)"),
    "application/x-vhd": ("仮想ディスク（VHD）", "virtual disk image"), "application/x-raw-disk-image": ("ディスクイメージ",
                                                                                                "disk image"),
    "application/x-apple-diskimage": ("ディスクイメージ（DMG）", "disk image (DMG)"),
    "application/onenote": ("OneNoteのセクション", "OneNote section"),
    "application/vnd.ms-htmlhelp": ("HTMLヘルプ（CHM）", "compiled HTML help"),
    "application/hta": ("HTMLアプリケーション（HTA）", "HTML application"), "text/x-script": ("スクリプト", "script"),
    "message/rfc822": ("メール（eml）", "e-mail message"), "application/vnd.ms-outlook": ("Outlookのメール（msg）",
                                                                                    "Outlook message"),
    "application/vnd.ms-tnef": ("Outlookの添付形式（winmail.dat）", "Outlook TNEF attachment"),
    "application/octet-stream": ("不明な形式", "unknown data"),
}


def _lang(lang: str) -> int:
    return 1 if lang == "en" else 0


def label(threat_id: str, lang: str = "ja") -> str:
    """What was found, in a few words."""
    entry = THREATS.get(threat_id)
    if entry is not None and (lang != "en" or len(entry) >= 4):
        return entry[2 if lang == "en" else 0]
    fam = _FAMILY.get(threat_id.split(".", 1)[0], ("その他の要素", "other content"))
    return f"{fam[_lang(lang)]}（{threat_id}）" if lang != "en" else f"{fam[1]} ({threat_id})"


_DONE = re.compile(r"削除|取り除|除外|無効化|変換し|作り直|置き換え|removed|disabled|converted|replaced|left out|tidied")


def explain(threat_id: str, action: str | None = None, lang: str = "ja") -> str:
    """Why it matters and what was done, true to the finding's action."""
    i = _lang(lang)
    if action and (threat_id, action) in BY_ACTION:
        return BY_ACTION[(threat_id, action)][i]
    entry = THREATS.get(threat_id)
    text = None
    if entry is not None and (lang != "en" or len(entry) >= 4):
        text = entry[3 if lang == "en" else 1]
    if text and action in ("found", "blocked") and _DONE.search(text):
        text = None  # the sentence says it was removed: not what happened here
    if text is None:
        name = label(threat_id, lang)
        if action == "blocked":
            return (f"{name}があるため、配送を止めました。", f"Because of this ({name}), the file was not delivered.")[i]
        if action == "found":
            return (f"{name}が見つかりました。", f"Found: {name}.")[i]
        return ("安全のため、この要素を取り除くか配送を止めました。",
                "For safety this was removed, or the file was not delivered.")[i]
    return text


def action_label(action: str, lang: str = "ja") -> str:
    return ACTIONS.get(action, (action, action))[_lang(lang)]


def action_ja(action: str) -> str:
    return action_label(action)


def verdict_label(verdict: str | None, lang: str = "ja") -> str:
    if not verdict:
        return "—"
    return VERDICTS.get(verdict, (verdict, verdict))[_lang(lang)]


def verdict_ja(verdict: str | None) -> str:
    return verdict_label(verdict)


def type_label(mime: str | None, lang: str = "ja") -> str:
    """A detected MIME type as a clerk names it (Word文書, PDF, ZIP圧縮ファイル)."""
    if not mime:
        return "—"
    if mime in TYPES:
        return TYPES[mime][_lang(lang)]
    return ("不明な形式", "unknown data")[_lang(lang)] if lang != "en" else mime


def _blocking(result: dict[str, Any]) -> list[str]:
    return [str(t.get("id", "")) for t in result.get("threats") or [] if t.get("action") == "blocked"]


def block_kind(result: dict[str, Any]) -> str:
    """Why a blocked result was blocked, as one of BLOCK_KINDS."""
    kinds = {BLOCK_KIND.get(tid) for tid in _blocking(result)}
    if not kinds - {None} and any(str(t.get("id", "")).endswith(".encrypted") for t in result.get("threats") or []):
        kinds.add("password")
    for kind in _KIND_ORDER:
        if kind in kinds:
            return kind
    return "error"


def is_text_only(result: dict[str, Any]) -> bool:
    return any(t.get("id") == "policy.text_only" for t in result.get("threats") or [])


def _only_opened(result: dict[str, Any]) -> bool:
    """Sanitized only in that a password was taken off (PPAP opened with the clerk's password): every finding,
    members' included, is an *.encrypted one that was opened, or a note."""
    seen: list[tuple[str, str]] = []

    def walk(r: dict[str, Any]) -> None:
        seen.extend((str(t.get("id", "")), str(t.get("action", ""))) for t in r.get("threats") or [])
        for c in r.get("children") or []:
            walk(c)

    walk(result)
    return any(i.endswith(".encrypted") for i, _a in seen) and all(
        a == "reported" or (i.endswith(".encrypted") and a == "converted") for i, a in seen)


def verdict_sentence(result: dict[str, Any], lang: str = "ja") -> str:
    """The report's first sentence: what the clerk received, and for a blocked file why and what to do."""
    verdict = result.get("verdict")
    if verdict == "blocked":
        return BLOCK_KINDS[block_kind(result)][_lang(lang)]
    if verdict == "sanitized" and is_text_only(result):
        return VERDICT_SENTENCES["text_only"][_lang(lang)]
    if verdict == "sanitized" and _only_opened(result):
        return VERDICT_SENTENCES["opened"][_lang(lang)]
    return VERDICT_SENTENCES.get(verdict or "", ("", ""))[_lang(lang)]


_CELL = re.compile(r"row (\d+), column (\d+)(.*)")
_CELL_HOW = {" (as Shift_JIS)": "、Shift_JISとして読んだ場合", " (split on tab)": "、タブ区切りとして",
             " (split on semicolon)": "、セミコロン区切りとして"}


def _column(n: int) -> str:
    out = ""
    while n > 0:
        n, r = divmod(n - 1, 26)
        out = chr(65 + r) + out
    return out


def place(threat: dict[str, Any]) -> str:
    """Where a finding is, in words a clerk reads: a CSV cell as Excel names it (B2) with its value and
    what it became; "" when the location is only technical (a part name such as word/vbaProject.bin)."""
    loc, detail = str(threat.get("location") or ""), str(threat.get("detail") or "")
    m = _CELL.fullmatch(loc)
    if not m:
        more = re.fullmatch(r"(\d+) more cells", loc)
        return f"ほか {more.group(1)} セル" if more else ""
    row, col, how = int(m.group(1)), int(m.group(2)), m.group(3)
    where = f"{_column(col)}{row}（{row}行目・{col}列目{_CELL_HOW.get(how, how)}）"
    if threat.get("id") == "csv.formula" and detail:
        if threat.get("action") == "neutralized":
            return f"{where}：{detail} → '{detail}"  # the apostrophe it gained
        return f"{where}：{detail}"
    return where
