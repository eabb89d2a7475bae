"""Typed errors that handlers raise; the pipeline turns each into a `blocked` verdict."""
from __future__ import annotations


class CdrError(Exception):
    """Base for every error that blocks a file. Carries a bilingual reason."""

    threat_id = "file.malformed"
    default_ja = "ファイルを安全に処理できませんでした"
    default_en = "the file could not be processed safely"

    def __init__(self, en: str | None = None, ja: str | None = None, threat_id: str | None = None,
                 location: str = "") -> None:
        self.en = en or self.default_en
        self.ja = ja or self.default_ja
        if threat_id:
            self.threat_id = threat_id
        self.location = location
        self.children: list = []  # nested results (archive members) to keep in the report
        self.mail: dict | None = None  # a blocked mail still reports its sender, subject, ... (FileResult.mail)
        super().__init__(self.en)


class Blocked(CdrError):
    """The policy or a finding says this content must not be delivered."""

    threat_id = "file.blocked"
    default_ja = "ポリシーにより配送を停止しました"
    default_en = "blocked by policy"


class Malformed(CdrError):
    """The file is damaged or does not follow its format."""

    threat_id = "file.malformed"
    default_ja = "ファイルが壊れているか形式が不正です"
    default_en = "the file is damaged or malformed"


class LimitExceeded(CdrError):
    """A policy limit (pages, pixels, members, size, ratio, ...) was exceeded."""

    threat_id = "file.limit"
    default_ja = "ポリシーの上限を超えています"
    default_en = "a policy limit was exceeded"


class Encrypted(CdrError):
    """Encrypted content and no (or a wrong) password."""

    threat_id = "file.encrypted"
    default_ja = "パスワードで保護されているため処理できません。送信者にパスワードを確認してください"
    default_en = "password protected; ask the sender for the password"


class Unsupported(CdrError):
    """No handler or no safe way to rebuild this type."""

    threat_id = "file.unsupported"
    default_ja = "このファイル形式は受け付けていません"
    default_en = "this file type is not accepted"


class ToolMissing(CdrError):
    """An external tool (LibreOffice, pdftoppm) needed by the policy is missing or failed."""

    threat_id = "file.tool_failed"
    default_ja = "変換ツールが利用できないため処理できませんでした"
    default_en = "the conversion tool is unavailable or failed"


class SandboxUnavailable(RuntimeError):
    """The worker sandbox (cdr.sandbox) cannot be set up here: workers must not start."""

    def __init__(self, what: str) -> None:
        super().__init__(f"worker sandbox unavailable: {what}. Fix this, or run without the sandbox "
                         "(not as root) with CDR_WORKER_SANDBOX=0")
        self.what = what
