"""Acceptance rules per channel (受付情報を制御): forms with typed fields, accepted files and checks.

A form is declared by the operator in the configuration (`[forms.NAME]`) or in `forms/NAME.toml`
under the data directory (the same keys, without the `[forms.NAME]` header); a channel names its
form (`[channels.NAME] form = "..."`). The built-in form `default` (氏名, メールアドレス for the
receipt mail, 連絡事項, files of any family the channel's policy accepts) needs nothing written.

`Form.validate` is the one check of what the internet side accepts (the upload page and the REST
API alike): every declared field typed and bounded, no undeclared field, files of accepted types,
sizes and counts. A value of a typed field (number, date, tel, postal code, email) is stored in its
canonical form (full-width digits and dashes as ASCII, dates as YYYY-MM-DD); text is stored exactly
as typed, control and format characters aside. `checks` (要確認 flags) are evaluated on the LGWAN
side once the verdicts are known (`evaluate_checks`); they are declared by the operator only: there
is no expression language.
"""
from __future__ import annotations

import re
import tomllib
import unicodedata
from dataclasses import dataclass, field, replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

FIELD_TYPES = ("text", "multiline", "email", "tel", "postal", "date", "number", "choice")
TYPE_JA = {"text": "文字", "multiline": "文章", "email": "メールアドレス", "tel": "電話番号",
           "postal": "郵便番号", "date": "日付", "number": "数値", "choice": "選択"}
_DEFAULT_MAX = {"text": 200, "multiline": 4000, "email": 254, "tel": 20, "postal": 8, "date": 10,
                "number": 30, "choice": 200}
# Part names the intake gives a meaning of its own; a form field may not take them.
RESERVED = {"files", "channel", "passwords", "csrf", "_form"}
_NAME = re.compile(r"[^\x00-\x20\"'<>&/\\=]{1,64}")
_KEEP = {"\n", "\t"}
_DASHES = "\u2010\u2011\u2012\u2013\u2014\u2015\u2212\u30fc\uff0d\ufe63"
_EMAIL = re.compile(r"[A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
                    r"(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+")
_TEL = re.compile(r"\+?[0-9()-]{6,20}")
_POSTAL = re.compile(r"([0-9]{3})-?([0-9]{4})")
_NUMBER = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")
_REL = re.compile(r"today(?:\s*([+-])\s*([0-9]{1,5})\s*([dmy]))?")

# What a resident reads for a family (accepted types on the page, reasons, tallies).
FAMILY_JA = {
    "pdf": "PDF", "ooxml": "Word・Excel・PowerPoint（2007以降）", "legacy_office": "Word・Excel・PowerPoint（97-2003）",
    "rtf": "RTF文書", "odf": "OpenDocument", "image": "画像（JPEG・PNG など）", "svg": "SVG画像",
    "archive": "圧縮ファイル（ZIP など）", "text": "テキスト", "csv": "CSV", "html": "HTML", "mail": "メール",
    "ichitaro": "一太郎", "docuworks": "DocuWorks",
}


_COMMON_EXT = {
    "pdf": (".pdf",), "ooxml": (".docx", ".xlsx", ".pptx"), "legacy_office": (".doc", ".xls", ".ppt"),
    "rtf": (".rtf",), "odf": (".odt", ".ods", ".odp"), "image": (".jpg", ".png", ".gif", ".bmp", ".tif", ".webp"),
    "svg": (".svg",), "archive": (".zip", ".7z"), "text": (".txt",), "csv": (".csv",), "html": (".html",),
    "mail": (".eml", ".msg"), "ichitaro": (".jtd",), "docuworks": (".xdw",),
}


class FormError(ValueError):
    """A form declaration that cannot be used; the message names the form and key."""


@dataclass
class FieldError:
    field: str  # field name, or "files"
    ja: str
    en: str

    def to_dict(self) -> dict[str, str]:
        return {"field": self.field, "message": self.en, "message_ja": self.ja}


@dataclass
class Field:
    name: str
    label: str
    type: str = "text"
    required: bool = False
    max_length: int = 0  # 0: the type's default
    pattern: str = ""
    choices: list[str] = field(default_factory=list)
    receipt: bool = False  # an email field whose address gets the receipt mail
    hint: str = ""
    min: float | None = None  # number fields
    max: float | None = None

    @property
    def limit(self) -> int:
        return self.max_length or _DEFAULT_MAX[self.type]

    def clean(self, raw: str) -> tuple[str, FieldError | None]:
        """(value to store, error). The value is what may be stored: never longer than declared."""
        value = text_value(raw)
        if self.type not in ("multiline",):
            value = value.replace("\n", " ").replace("\t", " ")
        if self.type not in ("text", "multiline"):
            value = value.strip()
        if not value.strip():
            if self.required:
                verb = "選んで" if self.type == "choice" else "入力して"
                return "", FieldError(self.name, f"「{self.label}」を{verb}ください", f"{self.name}: required")
            return "", None
        canon, err = _CANON[self.type](self, value)
        if err is not None:
            return "", err
        if len(canon) > self.limit:
            return "", FieldError(self.name, f"「{self.label}」は{self.limit}文字以内で入力してください"
                                  f"（いま{len(canon)}文字）", f"{self.name}: at most {self.limit} characters")
        if self.pattern and not re.fullmatch(self.pattern, canon):
            return "", FieldError(self.name, f"「{self.label}」の形式が正しくありません"
                                  + (f"（{self.hint}）" if self.hint else ""),
                                  f"{self.name}: does not match the required format")
        return canon, None


def text_value(raw: str) -> str:
    """Text as typed, minus control and format characters (CR LF and CR become LF; tab kept)."""
    raw = raw.replace("\r\n", "\n").replace("\r", "\n")
    return "".join(c for c in raw if c in _KEEP or unicodedata.category(c) not in ("Cc", "Cf", "Cs"))


def _nfkc(value: str) -> str:
    value = unicodedata.normalize("NFKC", value)
    for d in _DASHES:
        value = value.replace(d, "-")
    return value


def _c_text(f: Field, v: str) -> tuple[str, FieldError | None]:
    return v, None


def _c_email(f: Field, v: str) -> tuple[str, FieldError | None]:
    v = unicodedata.normalize("NFKC", v).strip()
    if len(v) > 254 or not _EMAIL.fullmatch(v):
        return "", FieldError(f.name, f"「{f.label}」はメールアドレスの形（例: taro@example.jp）で入力してください",
                              f"{f.name}: not an e-mail address")
    return v, None


def _c_tel(f: Field, v: str) -> tuple[str, FieldError | None]:
    v = _nfkc(v).replace(" ", "")
    if not _TEL.fullmatch(v) or sum(c.isdigit() for c in v) < 6:
        return "", FieldError(f.name, f"「{f.label}」は電話番号を数字とハイフンで入力してください（例: 03-1234-5678）",
                              f"{f.name}: not a telephone number")
    return v, None


def _c_postal(f: Field, v: str) -> tuple[str, FieldError | None]:
    v = _nfkc(v).replace(" ", "").lstrip("〒")
    m = _POSTAL.fullmatch(v)
    if m is None:
        return "", FieldError(f.name, f"「{f.label}」は7桁の郵便番号で入力してください（例: 100-0001）",
                              f"{f.name}: not a postal code (NNN-NNNN)")
    return f"{m.group(1)}-{m.group(2)}", None


def parse_date(v: str) -> date | None:
    v = _nfkc(v).strip().replace("/", "-").replace(".", "-")
    m = re.fullmatch(r"([0-9]{4})-([0-9]{1,2})-([0-9]{1,2})", v) or re.fullmatch(
        r"([0-9]{4})年([0-9]{1,2})月([0-9]{1,2})日", v)
    if m is None:
        return None
    try:
        return date(int(m.group(1)), int(m.group(2)), int(m.group(3)))
    except ValueError:
        return None


def _c_date(f: Field, v: str) -> tuple[str, FieldError | None]:
    d = parse_date(v)
    if d is None:
        return "", FieldError(f.name, f"「{f.label}」は日付（例: 2026-04-01）で入力してください",
                              f"{f.name}: not a date (YYYY-MM-DD)")
    return d.isoformat(), None


def _c_number(f: Field, v: str) -> tuple[str, FieldError | None]:
    v = _nfkc(v).replace(",", "").replace(" ", "")
    if not _NUMBER.fullmatch(v):
        return "", FieldError(f.name, f"「{f.label}」は数字で入力してください", f"{f.name}: not a number")
    n = float(v)
    if (f.min is not None and n < f.min) or (f.max is not None and n > f.max):
        lo = "" if f.min is None else f"{f.min:g}"
        hi = "" if f.max is None else f"{f.max:g}"
        return "", FieldError(f.name, f"「{f.label}」は{lo}～{hi}の範囲で入力してください",
                              f"{f.name}: must be within {lo}..{hi}")
    return v.lstrip("+"), None


def _c_choice(f: Field, v: str) -> tuple[str, FieldError | None]:
    if v not in f.choices:
        return "", FieldError(f.name, f"「{f.label}」は選択肢から選んでください", f"{f.name}: not one of the choices")
    return v, None


_CANON = {"text": _c_text, "multiline": _c_text, "email": _c_email, "tel": _c_tel, "postal": _c_postal,
          "date": _c_date, "number": _c_number, "choice": _c_choice}


# --------------------------------------------------------------------------- files

def _extension_families() -> dict[str, set[str]]:
    from cdr.detect import KINDS

    out: dict[str, set[str]] = {}
    for k in KINDS.values():
        for ext in k.extensions:
            if ext:
                out.setdefault(ext, set()).add(k.family)
    return out


_EXT_FAMILIES: dict[str, set[str]] | None = None


def families_of(name: str) -> set[str]:
    """The families a file name's extension may belong to (.doc: Word 97-2003 or RTF); empty if unknown."""
    global _EXT_FAMILIES
    if _EXT_FAMILIES is None:
        _EXT_FAMILIES = _extension_families()
    low = name.lower()
    for ext in sorted((e for e in _EXT_FAMILIES if low.endswith(e)), key=len, reverse=True):
        return set(_EXT_FAMILIES[ext])
    return set()


def extension(name: str) -> str:
    stem, dot, ext = name.rpartition(".")
    return f".{ext.lower()}" if dot and stem else ""


@dataclass
class Checks:
    """Judgments shown as 要確認 flags (operator-declared; evaluated on the LGWAN side)."""

    require_families: list[str] = field(default_factory=list)
    dates: list[dict[str, str]] = field(default_factory=list)  # {field, min, max}: "YYYY-MM-DD", "today", "today-30d"
    numbers: list[dict[str, Any]] = field(default_factory=list)  # {field, min, max}
    duplicate_fields: list[str] = field(default_factory=list)
    duplicate_files: bool = False
    duplicate_days: int = 365

    @property
    def empty(self) -> bool:
        return not (self.require_families or self.dates or self.numbers or self.duplicate_fields
                    or self.duplicate_files)


@dataclass
class Form:
    name: str
    title: str = ""
    description: str = ""
    fields: list[Field] = field(default_factory=list)
    families: list[str] = field(default_factory=list)  # empty: what the channel's policy accepts
    extensions: list[str] = field(default_factory=list)  # empty: every extension of the families
    max_file_mb: float = 0.0  # 0: the policy's max_file_mb
    max_total_mb: float = 0.0  # 0: the upload limit ([api] max_upload_mb)
    min_files: int = 0
    max_files: int = 10
    policy: str = ""  # the policy to sanitize with ("" = the channel's)
    checks: Checks = field(default_factory=Checks)
    builtin: bool = False

    def field(self, name: str) -> Field | None:
        return next((f for f in self.fields if f.name == name), None)

    @property
    def receipt_fields(self) -> list[Field]:
        return [f for f in self.fields if f.type == "email" and f.receipt]

    def bound(self, accepted_families: list[str], policy_max_file_mb: float, upload_max_mb: float) -> Form:
        """This form with its open limits made concrete by the channel's policy and the upload limit."""
        fams = [f for f in (self.families or accepted_families) if f in accepted_families or not accepted_families]
        total = min(self.max_total_mb or upload_max_mb, upload_max_mb)
        per_file = min(self.max_file_mb or policy_max_file_mb, policy_max_file_mb, total)
        return replace(self, families=fams, max_file_mb=per_file, max_total_mb=total)

    def accepts_name(self, name: str) -> bool:
        ext = extension(name)
        if self.extensions:
            return any(name.lower().endswith(e) for e in self.extensions)
        return bool(ext) and bool(families_of(name) & set(self.families))

    def accept_attr(self) -> str:
        """The `accept` attribute of the file input: the extensions this form takes."""
        return ",".join(self.accepted_extensions())

    def accepted_extensions(self) -> list[str]:
        if self.extensions:
            return list(self.extensions)
        global _EXT_FAMILIES
        if _EXT_FAMILIES is None:
            _EXT_FAMILIES = _extension_families()
        fams = set(self.families)
        return sorted(e for e, fs in _EXT_FAMILIES.items() if fs & fams and e.count(".") == 1)

    def shown_extensions(self) -> list[str]:
        """The extensions a sender recognises, for the page (the `accept` attribute has them all)."""
        if self.extensions:
            return list(self.extensions)
        return [e for f in self.families for e in _COMMON_EXT.get(f, ())]

    def families_ja(self) -> list[str]:
        return [FAMILY_JA.get(f, f) for f in self.families]

    def validate(self, fields: list[tuple[str, str]], files: list[dict[str, Any]]
                 ) -> tuple[list[tuple[str, str]], list[FieldError]]:
        """(fields to store, in declaration order, errors). `files`: {name, size} each.

        Undeclared fields, a field given twice, values over the declared length or of another
        type, files of another type, too large, too many or too few: all errors, nothing stored.
        """
        errors: list[FieldError] = []
        given: dict[str, str] = {}
        for k, v in fields:
            if self.field(k) is None:
                errors.append(FieldError(k[:64], f"「{k[:64]}」はこのフォームにない項目です",
                                         f"{k[:64]}: not a field of form {self.name!r}"))
            elif k in given:
                errors.append(FieldError(k, f"「{k}」が2回送られました", f"{k}: sent more than once"))
            else:
                given[k] = v
        out: list[tuple[str, str]] = []
        for f in self.fields:
            value, err = f.clean(given.get(f.name, ""))
            if err is not None:
                errors.append(err)
            elif value:
                out.append((f.name, value))
        errors += self.check_files(files)
        return (out if not errors else []), errors

    def check_files(self, files: list[dict[str, Any]]) -> list[FieldError]:
        errors: list[FieldError] = []
        if len(files) < self.min_files:
            errors.append(FieldError("files", f"ファイルを{self.min_files}件以上添付してください",
                                     f"files: at least {self.min_files} file(s)"))
        if len(files) > self.max_files:
            errors.append(FieldError("files", f"添付できるファイルは{self.max_files}件までです（いま{len(files)}件）",
                                     f"files: at most {self.max_files} file(s)"))
        per_file = int(self.max_file_mb * 1024 * 1024)
        for f in files:
            name = f["name"]
            if not self.accepts_name(name):
                errors.append(FieldError("files", f"「{name}」はこの窓口で受け付けていない形式です"
                                         f"（受け付ける形式: {'、'.join(self.families_ja()) or 'なし'}）",
                                         f"files: {name}: this type is not accepted here"))
            elif per_file and f["size"] > per_file:
                errors.append(FieldError("files", f"「{name}」が大きすぎます（1ファイル{mb(self.max_file_mb)}まで）",
                                         f"files: {name}: larger than {self.max_file_mb:g} MB"))
            elif f["size"] == 0:
                errors.append(FieldError("files", f"「{name}」は空のファイルです", f"files: {name}: empty file"))
        total = sum(f["size"] for f in files)
        if self.max_total_mb and total > self.max_total_mb * 1024 * 1024:
            errors.append(FieldError("files", f"ファイルの合計が大きすぎます（合計{mb(self.max_total_mb)}まで）",
                                     f"files: more than {self.max_total_mb:g} MB in total"))
        return errors


def mb(n: float) -> str:
    return f"{n:g} MB" if n >= 1 else f"{n * 1024:g} KB"


def builtin_default() -> Form:
    return Form(
        name="default", title="ファイルの提出", builtin=True,
        fields=[Field("氏名", "氏名", "text", required=True, max_length=100, hint="例: 山田 太郎"),
                Field("メールアドレス", "メールアドレス", "email", receipt=True,
                      hint="受付確認メールの送り先です（任意）"),
                Field("連絡事項", "連絡事項", "multiline", max_length=2000)],
        min_files=1, max_files=10)


# --------------------------------------------------------------------------- declarations

_FORM_KEYS = {"title", "description", "fields", "families", "extensions", "max_file_mb", "max_total_mb",
              "min_files", "max_files", "policy", "checks"}
_FIELD_KEYS = {"name", "label", "type", "required", "max_length", "pattern", "choices", "receipt", "hint",
               "min", "max"}
_CHECK_KEYS = {"require_families", "date", "number", "duplicate_fields", "duplicate_files", "duplicate_days"}


def _want(where: str, key: str, value: Any, typ: type | tuple[type, ...]) -> Any:
    if isinstance(value, bool) and typ in (int, float, (int, float)):
        raise FormError(f"{where}.{key} = {value!r}: must be a number")
    if not isinstance(value, typ):
        raise FormError(f"{where}.{key} = {value!r}: wrong type")
    return value


def _str_list(where: str, key: str, value: Any) -> list[str]:
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise FormError(f"{where}.{key}: must be a list of strings")
    return list(value)


def relative_date(spec: str, today: date) -> date | None:
    """"2026-04-01", "today", "today-30d", "today+1y" -> a date (None if not one of these)."""
    m = _REL.fullmatch(spec.strip())
    if m is None:
        return parse_date(spec)
    if not m.group(1):
        return today
    n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
    unit = m.group(3)
    if unit == "d":
        return today + timedelta(days=n)
    months = n * (12 if unit == "y" else 1)
    y, mo = divmod(today.month - 1 + months, 12)
    day = min(today.day, 28) if today.day > 28 else today.day
    return date(today.year + y, mo + 1, day)


def parse_form(name: str, body: Any, source: str) -> Form:
    where = f"{source}: forms.{name}"
    if not isinstance(body, dict):
        raise FormError(f"{where}: must be a table")
    if not _NAME.fullmatch(name) or name in RESERVED:
        raise FormError(f"{where}: not a usable form name")
    unknown = set(body) - _FORM_KEYS
    if unknown:
        raise FormError(f"{where}: unknown key(s) {sorted(unknown)} (expected {sorted(_FORM_KEYS)})")
    form = Form(name=name)
    for key in ("title", "description", "policy"):
        if key in body:
            setattr(form, key, _want(where, key, body[key], str))
    for key in ("max_file_mb", "max_total_mb"):
        if key in body:
            v = float(_want(where, key, body[key], (int, float)))
            if v <= 0:
                raise FormError(f"{where}.{key}: must be > 0")
            setattr(form, key, v)
    for key in ("min_files", "max_files"):
        if key in body:
            v = _want(where, key, body[key], int)
            if not 0 <= v <= 1000:
                raise FormError(f"{where}.{key}: must be 0..1000")
            setattr(form, key, v)
    if form.min_files > form.max_files:
        raise FormError(f"{where}: min_files is larger than max_files")
    from cdr.detect import KINDS

    known = {k.family for k in KINDS.values()} - {"executable", "unknown"}
    form.families = _str_list(where, "families", body.get("families", []))
    bad = [f for f in form.families if f not in known]
    if bad:
        raise FormError(f"{where}.families: unknown {bad} (known: {sorted(known)})")
    exts = [e.lower() if e.startswith(".") else f".{e.lower()}" for e in _str_list(where, "extensions",
                                                                                  body.get("extensions", []))]
    for e in exts:
        fams = families_of("x" + e)
        if not fams or fams <= {"executable", "unknown"}:
            raise FormError(f"{where}.extensions: {e} is not a type the appliance can sanitize")
    form.extensions = exts
    if exts and not form.families:
        form.families = sorted({f for e in exts for f in families_of("x" + e)} - {"executable", "unknown"})
    fields = body.get("fields", [])
    if not isinstance(fields, list):
        raise FormError(f"{where}.fields: must be an array of tables ([[forms.{name}.fields]])")
    seen: set[str] = set()
    for i, fd in enumerate(fields):
        form.fields.append(_parse_field(f"{where}.fields[{i}]", fd, seen))
    form.checks = _parse_checks(f"{where}.checks", body.get("checks", {}), form)
    return form


def _parse_field(where: str, fd: Any, seen: set[str]) -> Field:
    if not isinstance(fd, dict):
        raise FormError(f"{where}: must be a table")
    unknown = set(fd) - _FIELD_KEYS
    if unknown:
        raise FormError(f"{where}: unknown key(s) {sorted(unknown)} (expected {sorted(_FIELD_KEYS)})")
    name = fd.get("name")
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name in RESERVED or name in seen:
        raise FormError(f"{where}.name = {name!r}: a unique name of 1..64 characters without spaces,"
                        f" quotes, <>&/\\= (and not {sorted(RESERVED)})")
    seen.add(name)
    typ = fd.get("type", "text")
    if typ not in FIELD_TYPES:
        raise FormError(f"{where}.type = {typ!r}: one of {list(FIELD_TYPES)}")
    f = Field(name=name, label=_want(where, "label", fd.get("label", name), str) or name, type=typ)
    f.required = bool(_want(where, "required", fd.get("required", False), bool))
    f.receipt = bool(_want(where, "receipt", fd.get("receipt", False), bool))
    if f.receipt and typ != "email":
        raise FormError(f"{where}.receipt: only an email field can receive the receipt mail")
    f.hint = _want(where, "hint", fd.get("hint", ""), str)
    if "max_length" in fd:
        f.max_length = _want(where, "max_length", fd["max_length"], int)
        if not 1 <= f.max_length <= 100_000:
            raise FormError(f"{where}.max_length: must be 1..100000")
    if "pattern" in fd:
        f.pattern = _want(where, "pattern", fd["pattern"], str)
        try:
            re.compile(f.pattern)
        except re.error as exc:
            raise FormError(f"{where}.pattern: not a regular expression: {exc}") from None
    if typ == "choice":
        f.choices = _str_list(where, "choices", fd.get("choices", []))
        if not f.choices or len(set(f.choices)) != len(f.choices):
            raise FormError(f"{where}.choices: a choice field needs a list of distinct choices")
    elif "choices" in fd:
        raise FormError(f"{where}.choices: only for type = \"choice\"")
    for key in ("min", "max"):
        if key in fd:
            if typ != "number":
                raise FormError(f"{where}.{key}: only for type = \"number\"")
            setattr(f, key, float(_want(where, key, fd[key], (int, float))))
    return f


def _parse_checks(where: str, body: Any, form: Form) -> Checks:
    if not isinstance(body, dict):
        raise FormError(f"{where}: must be a table")
    unknown = set(body) - _CHECK_KEYS
    if unknown:
        raise FormError(f"{where}: unknown key(s) {sorted(unknown)} (expected {sorted(_CHECK_KEYS)};"
                        " checks are declared, there is no expression language)")
    c = Checks()
    c.require_families = _str_list(where, "require_families", body.get("require_families", []))
    bad = [f for f in c.require_families if f not in FAMILY_JA]
    if bad:
        raise FormError(f"{where}.require_families: unknown {bad}")
    for kind, typ in (("date", "date"), ("number", "number")):
        items = body.get(kind, [])
        if not isinstance(items, list):
            raise FormError(f"{where}.{kind}: must be an array of tables ([[forms.{form.name}.checks.{kind}]])")
        for i, it in enumerate(items):
            w = f"{where}.{kind}[{i}]"
            if not isinstance(it, dict) or set(it) - {"field", "min", "max"} or "field" not in it:
                raise FormError(f"{w}: keys field, min, max")
            fd = form.field(it["field"])
            if fd is None or fd.type != typ:
                raise FormError(f"{w}.field = {it['field']!r}: not a {typ} field of this form")
            for key in ("min", "max"):
                if key in it:
                    if typ == "date" and (not isinstance(it[key], str)
                                          or relative_date(it[key], date.today()) is None):
                        raise FormError(f"{w}.{key} = {it[key]!r}: \"YYYY-MM-DD\", \"today\" or \"today-30d\"")
                    if typ == "number" and (isinstance(it[key], bool) or not isinstance(it[key], (int, float))):
                        raise FormError(f"{w}.{key}: must be a number")
            (c.dates if kind == "date" else c.numbers).append(dict(it))
    c.duplicate_fields = _str_list(where, "duplicate_fields", body.get("duplicate_fields", []))
    for n in c.duplicate_fields:
        if form.field(n) is None:
            raise FormError(f"{where}.duplicate_fields: {n!r} is not a field of this form")
    c.duplicate_files = bool(_want(where, "duplicate_files", body.get("duplicate_files", False), bool))
    c.duplicate_days = _want(where, "duplicate_days", body.get("duplicate_days", 365), int)
    return c


def load_forms(declared: dict[str, tuple[Any, str]], folders: list[Path]) -> dict[str, Form]:
    """Forms of the configuration (`[forms.NAME]`: name -> (table, source)) and of `forms/NAME.toml` in
    `folders`; plus the built-in `default` unless the operator declared a form of that name."""
    forms: dict[str, Form] = {}
    for name, (body, source) in declared.items():
        forms[name] = parse_form(name, body, source)
    for folder in folders:
        if not folder.is_dir():
            continue
        for p in sorted(folder.glob("*.toml")):
            if p.stem in forms:
                raise FormError(f"{p}: form {p.stem!r} is also declared elsewhere")
            try:
                body = tomllib.loads(p.read_text("utf-8"))
            except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
                raise FormError(f"{p}: cannot read: {exc}") from None
            forms[p.stem] = parse_form(p.stem, body, str(p))
    forms.setdefault("default", builtin_default())
    return forms


# --------------------------------------------------------------------------- policy and checks

def restrict_policy(policy: Any, form: Form) -> Any:
    """The channel's policy limited to the families the form accepts: a file whose content is of
    another family (a .docx renamed .pdf) is blocked by the pipeline, whatever its name said."""
    if not form.families:
        return policy
    from cdr.policy import FamilyPolicy

    fams = {k: (v if k in form.families else FamilyPolicy("block", v.options)) for k, v in policy.families.items()}
    return replace(policy, name=f"{policy.name}+form.{form.name}", families=fams)


def accepted_families(policy: Any) -> list[str]:
    """Families the policy delivers in some form (sanitized or as text)."""
    return [name for name, fp in policy.families.items() if fp.action != "block"]


def evaluate_checks(form: Form, fields: list[tuple[str, str]], files: list[dict[str, Any]], received_at: float,
                    earlier: Any = None) -> list[dict[str, str]]:
    """要確認 flags: [{id, ja, en}]. `files`: {name, sha256, verdict, family}. `earlier(kind, values)` finds
    an earlier submission's receipt with the same field values (kind "fields") or file hashes ("files")."""
    c = form.checks
    flags: list[dict[str, str]] = []
    values = dict(fields)
    from . import clock

    today = clock.local(received_at).date()  # the appliance's day (JST), not the server's
    for fam in c.require_families:
        if not any(f.get("family") == fam and f.get("verdict") in ("clean", "sanitized") for f in files):
            flags.append({"id": "required_type", "ja": f"{FAMILY_JA.get(fam, fam)}の添付がありません（受理されたもの）",
                          "en": f"no accepted {fam} attachment"})
    for it in c.dates:
        fd = form.field(it["field"])
        label = fd.label if fd else it["field"]
        v = parse_date(values.get(it["field"], "")) if values.get(it["field"]) else None
        if v is None:
            if values.get(it["field"]) or (fd and fd.required):
                flags.append({"id": "date_range", "ja": f"「{label}」が日付として読めません", "en": f"{it['field']}: no date"})
            continue
        lo = relative_date(it["min"], today) if "min" in it else None
        hi = relative_date(it["max"], today) if "max" in it else None
        if (lo and v < lo) or (hi and v > hi):
            flags.append({"id": "date_range", "ja": f"「{label}」（{v.isoformat()}）が範囲外です"
                          f"（{lo.isoformat() if lo else ''}～{hi.isoformat() if hi else ''}）",
                          "en": f"{it['field']}: {v.isoformat()} out of range"})
    for it in c.numbers:
        fd = form.field(it["field"])
        label = fd.label if fd else it["field"]
        raw = values.get(it["field"])
        if raw is None:
            continue
        n = float(raw)
        if ("min" in it and n < it["min"]) or ("max" in it and n > it["max"]):
            flags.append({"id": "number_range", "ja": f"「{label}」（{raw}）が範囲外です"
                          f"（{it.get('min', '')}～{it.get('max', '')}）", "en": f"{it['field']}: {raw} out of range"})
    if earlier is not None and c.duplicate_fields:
        key = [dup_key(values.get(n, "")) for n in c.duplicate_fields]
        if any(key):
            prev = earlier("fields", key)
            if prev:
                labels = "・".join((form.field(n).label if form.field(n) else n) for n in c.duplicate_fields)
                flags.append({"id": "duplicate", "ja": f"以前の受付（{prev}）と{labels}が同じです",
                              "en": f"same {', '.join(c.duplicate_fields)} as {prev}"})
    if earlier is not None and c.duplicate_files:
        hashes = sorted({f["sha256"] for f in files if f.get("sha256")})
        prev = earlier("files", hashes) if hashes else None
        if prev:
            flags.append({"id": "duplicate_file", "ja": f"以前の受付（{prev}）と同じファイルがあります",
                          "en": f"a file identical to one of {prev}"})
    return flags


def dup_key(value: str) -> str:
    """Field values compared for duplicates: width, case and spacing ignored."""
    return " ".join(unicodedata.normalize("NFKC", value).casefold().split())


class FormBook:
    """The forms of an appliance's channels, bound to each channel's policy and the upload limit."""

    def __init__(self, cfg: Any) -> None:
        self.cfg = cfg
        self._policies: dict[str, Any] = {}
        self._forms: dict[tuple[str, str], Form] = {}

    def names_form(self, channel: str) -> bool:
        """True when the configuration gives the channel a form (the REST API is checked against it)."""
        return channel in self.cfg.channel_forms

    def policy(self, channel: str, form: str | None = None) -> Any:
        """The policy a submission of `channel` with `form` is sanitized with, before the form's family
        restriction: the form's own policy if it names one, else the channel's."""
        name = self.cfg.forms[form].policy if form and form in self.cfg.forms else ""
        name = name or self.cfg.channel_policies.get(channel, self.cfg.policy)
        if name not in self._policies:
            from cdr.policy import load_policy

            self._policies[name] = load_policy(name)
        return self._policies[name]

    def form(self, channel: str, name: str | None = None) -> Form:
        """The form `name` (default: the channel's), bound to the policy it will be sanitized with."""
        name = name or self.cfg.channel_forms.get(channel, "default")
        key = (channel, name)
        if key not in self._forms:
            pol = self.policy(channel, name)
            self._forms[key] = self.cfg.forms[name].bound(accepted_families(pol), pol.limits.max_file_mb,
                                                          self.cfg.max_upload_mb)
        return self._forms[key]

    def label(self, channel: str) -> str:
        return self.cfg.channel_label(channel)
