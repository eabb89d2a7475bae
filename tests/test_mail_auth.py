"""Mail: DKIM, SPF and DMARC of the original, through an injected resolver (a stub holding the
records), into the RFC 8601 header and the report; no DNS gives `none`, never an error."""
from __future__ import annotations

import base64
import email
from email import policy as email_policy
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from cdr.formats.mail import auth
from cdr.model import BLOCKED
from cdr.pipeline import process
from samples.mail_samples import head, text_part


@pytest.fixture(scope="module")
def key():
    k = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = k.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.TraditionalOpenSSL,
                          serialization.NoEncryption())
    pub = k.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return pem, base64.b64encode(pub).decode()


def stub(records: dict[tuple[str, str], list]):
    def resolve(name: str, rdtype: str) -> list:
        return records.get((name.lower().rstrip("."), rdtype), [])
    return resolve


def no_dns(name: str, rdtype: str) -> list:
    raise auth.DnsUnavailable("no network")


def signed_mail(pem: bytes, body: str = "本文です。\r\n", frm: str = "taro@example.jp", d: str = "example.jp") -> bytes:
    import dkim

    msg = head("=?UTF-8?B?" + base64.b64encode("署名".encode()).decode() + "?=", frm=f"Taro <{frm}>").encode() \
        + text_part(body, "UTF-8")
    sig = dkim.sign(msg, b"sel", d.encode(), pem, include_headers=[b"from", b"subject", b"date", b"to"])
    return sig + msg


def records(pubkey: str, dmarc: str = "v=DMARC1; p=reject") -> dict:
    return {("sel._domainkey.example.jp", "TXT"): [f"v=DKIM1; k=rsa; p={pubkey}"],
            ("_dmarc.example.jp", "TXT"): [dmarc]}


def sanitize(tmp_path: Path, data: bytes, policy):
    tmp_path.mkdir(parents=True, exist_ok=True)
    src = tmp_path / "in.eml"
    src.write_bytes(data)
    return process(src, "in.eml", tmp_path / "out", policy)


def ar_header(result) -> str:
    msg = email.message_from_bytes(Path(result.output).read_bytes(), policy=email_policy.default)
    return str(msg["Authentication-Results"])


def test_dkim_and_dmarc_pass_go_into_the_header_and_report(key, tmp_path, default_policy):
    pem, pub = key
    with auth.use_resolver(stub(records(pub))):
        r = sanitize(tmp_path, signed_mail(pem), default_policy)
    a = r.mail["authentication"]
    assert a["dkim"][0]["result"] == "pass" and a["dkim"][0]["header.d"] == "example.jp"
    assert a["dmarc"]["result"] == "pass" and a["dmarc"]["policy.dmarc"] == "reject"
    h = ar_header(r)
    assert h.startswith("lgwan-cdr;") and "dkim=pass header.d=example.jp header.s=sel" in h and "dmarc=pass" in h
    assert "DKIM-Signature" not in Path(r.output).read_text("ascii")  # a broken signature is not passed on


def test_tampered_body_fails_dkim_and_dmarc(key, tmp_path, default_policy):
    pem, pub = key
    data = signed_mail(pem).replace("本文です。".encode(), "改ざん後。".encode())
    with auth.use_resolver(stub(records(pub))):
        r = sanitize(tmp_path, data, default_policy)
    a = r.mail["authentication"]
    assert a["dkim"][0]["result"] == "fail" and a["dmarc"]["result"] == "fail"
    assert r.verdict != BLOCKED  # reported, not blocked, by the default policy
    d = default_policy.to_dict()
    d["families"]["mail"]["dmarc_fail"] = "block"
    with auth.use_resolver(stub(records(pub))):
        r2 = sanitize(tmp_path / "b", data, default_policy.from_dict(d))
    assert r2.verdict == BLOCKED and any(t["id"] == "mail.dmarc_fail" for t in r2.to_dict()["threats"])
    assert r2.mail["subject"] == "署名"


def test_foreign_domain_signature_is_not_aligned(key, tmp_path, default_policy):
    pem, pub = key
    recs = records(pub)
    recs[("sel._domainkey.mailer.example.net", "TXT")] = recs[("sel._domainkey.example.jp", "TXT")]
    with auth.use_resolver(stub(recs)):
        r = sanitize(tmp_path, signed_mail(pem, d="mailer.example.net"), default_policy)
    a = r.mail["authentication"]
    assert a["dkim"][0]["result"] == "pass" and a["dmarc"]["result"] == "fail"


def test_without_dns_every_result_is_none(key, tmp_path, default_policy):
    pem, _ = key
    with auth.use_resolver(no_dns):
        r = sanitize(tmp_path, signed_mail(pem), default_policy)
    a = r.mail["authentication"]
    assert [a["dkim"][0]["result"], a["spf"]["result"], a["dmarc"]["result"]] == ["none", "none", "none"]
    assert a["dkim"][0]["reason"] == "DNS unavailable"
    assert r.verdict != BLOCKED


def test_trusted_receiver_results_are_taken_over_and_others_ignored(tmp_path, default_policy):
    d = default_policy.to_dict()
    d["families"]["mail"]["trusted_authserv_ids"] = ["mx.city.example.lg.jp"]
    pol = default_policy.from_dict(d)
    data = (b"Authentication-Results: mx.city.example.lg.jp; spf=pass smtp.mailfrom=taro@example.jp\r\n"
            b"Authentication-Results: evil.example.com; dkim=pass header.d=example.jp; spf=pass\r\n"
            + head("x").encode() + text_part("x\r\n", "UTF-8"))
    with auth.use_resolver(stub({("_dmarc.example.jp", "TXT"): ["v=DMARC1; p=none"]})):
        r = sanitize(tmp_path, data, pol)
    a = r.mail["authentication"]
    assert a["spf"]["result"] == "pass" and a["spf"]["smtp.mailfrom"] == "taro@example.jp"
    assert a["dkim"][0]["result"] == "none"  # evil.example.com's claim is not believed
    assert a["dmarc"]["result"] == "pass"  # aligned SPF from the trusted receiver
    text = Path(r.output).read_text("ascii")
    assert "evil.example.com" not in text and text.count("Authentication-Results:") == 1


def test_check_spf_for_the_smtp_intake():
    recs = {("example.jp", "TXT"): ["v=spf1 ip4:192.0.2.0/24 -all"]}
    with auth.use_resolver(stub(recs)):
        assert auth.check_spf("192.0.2.10", "taro@example.jp", "mx.example.jp").result == "pass"
        assert auth.check_spf("198.51.100.1", "taro@example.jp", "mx.example.jp").result == "fail"
    with auth.use_resolver(no_dns):
        assert auth.check_spf("192.0.2.10", "taro@example.jp", "mx.example.jp").result == "none"
