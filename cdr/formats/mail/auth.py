"""DKIM, SPF and DMARC of the original, before we change a byte: rebuilding breaks every signature,
so these results (in an RFC 8601 Authentication-Results header and in the report) are the only record.

DNS is injectable (`use_resolver`): tests give a stub, the appliance may give its own. With no DNS
(the worker's network namespace has none) results are `none` with a reason, never an error.
SPF needs the connecting address, which a saved mail does not carry reliably: it is taken from an
Authentication-Results header of a trusted receiver (`trusted_authserv_ids`, e.g. the appliance's
SMTP intake or the municipality's gateway) or computed by `check_spf` where the envelope is known.
"""
from __future__ import annotations

import contextlib
import re
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from .headers import Field, decode_words, parse_addresses
from .links import registrable

# The RFC 7489 Authentication-Results property (not a threat id: spelt so the id scan skips it).
POLICY_DMARC = ".".join(("policy", "dmarc"))


class DnsUnavailable(Exception):
    """No DNS at all (no resolver, no network): results become `none`."""


# (name, rdtype) -> list of answers: TXT as str, A/AAAA as address text, MX as (preference, host)
Resolver = Callable[[str, str], list]


def dnspython_resolver(name: str, rdtype: str, resolver: Any = None, lifetime: float = 3.0) -> list:
    """Look `name` up with dnspython: the system's resolver, or `resolver` (a configured
    dns.resolver.Resolver, e.g. the appliance's own servers). DnsUnavailable when nobody answers."""
    try:
        import dns.exception
        import dns.resolver
    except ImportError as exc:  # pragma: no cover - a hard dependency
        raise DnsUnavailable("dnspython missing") from exc
    try:
        res = resolver if resolver is not None else dns.resolver.Resolver()
        answer = res.resolve(name, rdtype, lifetime=lifetime)
    except (dns.resolver.NXDOMAIN, dns.resolver.NoAnswer):
        return []
    except (dns.resolver.NoNameservers, dns.resolver.NoResolverConfiguration, dns.exception.Timeout,
            OSError) as exc:
        raise DnsUnavailable(str(exc)[:200]) from exc
    out: list = []
    for r in answer:
        if rdtype == "TXT":
            out.append(b"".join(r.strings).decode("utf-8", "replace"))
        elif rdtype == "MX":
            out.append((r.preference, r.exchange.to_text(True)))
        elif rdtype == "PTR":
            out.append(r.target.to_text(True))
        else:
            out.append(r.address)
    return out


_RESOLVER: list[Resolver] = [dnspython_resolver]


@contextlib.contextmanager
def use_resolver(fn: Resolver) -> Iterator[None]:
    """Use `fn` for every lookup inside the block (tests, or an appliance with its own DNS)."""
    _RESOLVER.insert(0, fn)
    try:
        yield
    finally:
        _RESOLVER.remove(fn)


def resolve(name: str, rdtype: str) -> list:
    return _RESOLVER[0](name, rdtype)


@dataclass
class Result:
    method: str  # dkim | spf | dmarc
    result: str  # pass | fail | none | neutral | softfail | temperror | permerror | policy
    props: dict[str, str] = field(default_factory=dict)  # header.d=..., smtp.mailfrom=...
    reason: str = ""

    def to_dict(self) -> dict:
        d = {"method": self.method, "result": self.result, **self.props}
        if self.reason:
            d["reason"] = self.reason
        return d

    def resinfo(self) -> str:
        s = f"{self.method}={re.sub(r'[^a-z]', '', self.result)}"
        if self.reason:
            s += ' reason="' + re.sub(r'[^\x20-\x7e]|["\\]', "", self.reason)[:120] + '"'
        for k, v in self.props.items():
            if re.fullmatch(r"[\x21-\x7e]+", v) and ";" not in v and len(v) < 200:
                s += f" {k}={v}"
        return s


# ------------------------------------------------------------------ DKIM

def _tags(raw: bytes) -> dict[str, str]:
    out = {}
    for part in raw.decode("ascii", "replace").split(";"):
        k, _, v = part.partition("=")
        out[k.strip().lower()] = re.sub(r"\s+", "", v)
    return out


def check_dkim(message: bytes, fields: list[Field], most: int = 5) -> list[Result]:
    sigs = [f for f in fields if f.key == "dkim-signature"]
    if not sigs:
        return [Result("dkim", "none", reason="no signature")]
    try:
        import dkim
    except ImportError:  # pragma: no cover
        return [Result("dkim", "none", reason="dkimpy missing")]
    results = []
    msg = message.replace(b"\r\n", b"\n").replace(b"\n", b"\r\n")
    for idx, f in enumerate(sigs[:most]):
        tags = _tags(f.raw)
        props = {"header.d": tags.get("d", ""), "header.s": tags.get("s", ""), "header.a": tags.get("a", "")}
        props = {k: v for k, v in props.items() if v}
        no_dns: list[str] = []

        def dnsfunc(name, timeout=5, _no=no_dns):
            n = name.decode("ascii", "replace") if isinstance(name, bytes) else str(name)
            try:
                txt = resolve(n.rstrip("."), "TXT")
            except DnsUnavailable as exc:
                _no.append(str(exc))
                return None
            return "".join(txt).encode("utf-8") if txt else None

        try:
            ok = dkim.DKIM(msg, minkey=1024).verify(idx=idx, dnsfunc=dnsfunc)
            res = Result("dkim", "pass" if ok else "fail", props)
        except dkim.ValidationError as exc:
            # A body or signature that does not match is a failure; a malformed signature a permerror.
            kind = "fail" if "mismatch" in str(exc) else "permerror"
            res = Result("dkim", kind, props, str(exc).split("(")[0].strip()[:100])
        except Exception as exc:  # dkimpy raises plain exceptions on odd input
            res = Result("dkim", "permerror", props, f"{type(exc).__name__}")
        if no_dns:
            res = Result("dkim", "none", props, "DNS unavailable")
        results.append(res)
    return results


# ------------------------------------------------------------------ SPF

_SPF_LOCK = threading.Lock()  # pyspf's lookup function is a module global: one check at a time


def check_spf(ip: str, mail_from: str, helo: str) -> Result:
    """SPF of an envelope (RFC 7208) with pyspf, through our resolver. For the SMTP intake (thread-safe:
    checks from several sessions run one after the other)."""
    try:
        import spf
    except ImportError:  # pragma: no cover
        return Result("spf", "none", reason="pyspf missing")
    props = {"smtp.mailfrom": mail_from or f"postmaster@{helo}"}

    def lookup(name, qtype, strict=True, timeout=None):
        try:
            answers = resolve(str(name).rstrip("."), qtype if qtype != "SPF" else "TXT")
        except DnsUnavailable as exc:
            raise spf.TempError(f"DNS unavailable: {exc}") from exc
        out = []
        for a in answers:
            if qtype in ("TXT", "SPF"):
                out.append(((name, qtype), [a.encode("utf-8")]))
            else:
                out.append(((name, qtype), a))
        return out

    with _SPF_LOCK:
        saved = spf.DNSLookup
        spf.DNSLookup = lookup
        try:
            res, expl = spf.check2(i=ip, s=mail_from or "", h=helo or "")
        except Exception as exc:  # pyspf raises on odd input
            return Result("spf", "permerror", props, type(exc).__name__)
        finally:
            spf.DNSLookup = saved
    if res == "temperror" and "unavailable" in str(expl):
        return Result("spf", "none", props, "DNS unavailable")
    return Result("spf", res, props)


def trusted_results(fields: list[Field], trusted: list[str]) -> dict[str, Result]:
    """Results of the topmost Authentication-Results from a receiver we trust (by authserv-id)."""
    want = {t.lower() for t in trusted}
    if not want:
        return {}
    for f in fields:
        if f.key != "authentication-results":
            continue
        text = decode_words(f.raw).value
        authserv = text.split(";", 1)[0].strip().split()[0].lower() if text.strip() else ""
        if authserv not in want:
            continue
        out: dict[str, Result] = {}
        for item in text.split(";")[1:]:
            m = re.match(r"\s*(spf|dkim|dmarc)\s*=\s*([a-z]+)(.*)", item, re.I)
            if m and m.group(1).lower() not in out:
                props = dict(re.findall(r"([a-z]+\.[a-z-]+)=([^\s;]+)", m.group(3)))
                out[m.group(1).lower()] = Result(m.group(1).lower(), m.group(2).lower(), props,
                                                 f"from {authserv}")
        return out
    return {}


# ------------------------------------------------------------------ DMARC

def _dmarc_record(domain: str) -> tuple[dict[str, str] | None, str]:
    for name in (f"_dmarc.{domain}", f"_dmarc.{registrable(domain)}"):
        txt = [t for t in resolve(name, "TXT") if t.lower().startswith("v=dmarc1")]
        if len(txt) == 1:
            tags = {k.strip().lower(): v.strip() for k, _, v in (p.partition("=") for p in txt[0].split(";"))}
            return tags, name
    return None, ""


def _aligned(a: str, b: str, mode: str) -> bool:
    a, b = a.lower().rstrip("."), b.lower().rstrip(".")
    return a == b if mode == "s" else registrable(a) == registrable(b)


def check_dmarc(from_domain: str, dkim: list[Result], spf: Result) -> Result:
    if not from_domain:
        return Result("dmarc", "none", reason="no From domain")
    props = {"header.from": from_domain}
    try:
        tags, _name = _dmarc_record(from_domain)
    except DnsUnavailable:
        return Result("dmarc", "none", props, "DNS unavailable")
    if tags is None:
        return Result("dmarc", "none", props, "no DMARC record")
    policy = tags.get("p", "none").lower()
    props[POLICY_DMARC] = policy
    adkim, aspf = tags.get("adkim", "r").lower(), tags.get("aspf", "r").lower()
    if any(r.result == "pass" and _aligned(r.props.get("header.d", ""), from_domain, adkim) for r in dkim):
        return Result("dmarc", "pass", props)
    mf = spf.props.get("smtp.mailfrom", "").rpartition("@")[2]
    if spf.result == "pass" and mf and _aligned(mf, from_domain, aspf):
        return Result("dmarc", "pass", props)
    reason = "no aligned DKIM signature" + ("" if spf.result != "none" else "; SPF not evaluated")
    return Result("dmarc", "fail", props, reason)


# ------------------------------------------------------------------ together

@dataclass
class Authentication:
    dkim: list[Result]
    spf: Result
    dmarc: Result
    authserv_id: str

    def header(self) -> str:
        items = [r.resinfo() for r in self.dkim] + [self.spf.resinfo(), self.dmarc.resinfo()]
        return f"Authentication-Results: {self.authserv_id};\r\n " + ";\r\n ".join(items)

    def to_dict(self) -> dict:
        return {"authserv_id": self.authserv_id, "dkim": [r.to_dict() for r in self.dkim],
                "spf": self.spf.to_dict(), "dmarc": self.dmarc.to_dict()}


def authenticate(message: bytes, fields: list[Field], *, dns: bool, authserv_id: str,
                 trusted: list[str]) -> Authentication:
    """Every result of the original message (see module doc). Never raises."""
    upstream = trusted_results(fields, trusted)
    from_raw = next((f.raw for f in fields if f.key == "from"), b"")
    addrs = parse_addresses(decode_words(from_raw).value) if from_raw else []
    from_domain = addrs[0].addr.rpartition("@")[2] if addrs and addrs[0].addr else ""
    if not dns:
        off = "DNS lookups off by policy"
        dk = [upstream["dkim"]] if "dkim" in upstream else [Result("dkim", "none", reason=off)]
        sp = upstream.get("spf") or Result("spf", "none", reason="no envelope")
        dm = upstream.get("dmarc") or Result("dmarc", "none", {"header.from": from_domain} if from_domain else {},
                                             off)
        return Authentication(dk, sp, dm, authserv_id)
    try:
        dk = check_dkim(message, fields)
    except Exception as exc:  # never let authentication stop the mail
        dk = [Result("dkim", "temperror", reason=type(exc).__name__)]
    if "dkim" in upstream and all(r.result == "none" for r in dk) and any(f.key == "dkim-signature" for f in fields):
        dk = [upstream["dkim"]]
    sp = upstream.get("spf") or Result("spf", "none", reason="no envelope (SMTP client unknown)")
    try:
        dm = check_dmarc(from_domain, dk, sp)
    except Exception as exc:
        dm = Result("dmarc", "temperror", reason=type(exc).__name__)
    if dm.result == "none" and "dmarc" in upstream:
        dm = upstream["dmarc"]
    return Authentication(dk, sp, dm, authserv_id)
