"""Configuration: embedded defaults < config file < command-line flags.

The embedded defaults are `transfer_agent/transfer_agent.toml`. Unknown keys are errors
so that a typo in an operator's file does not silently fall back to a default.
"""
from __future__ import annotations

import ipaddress
import os
import re
import socket
import tomllib
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from .blobstore import LocalBlobStore
from .channels import channel_name

CONFIG_NAME = "transfer_agent.toml"


class ConfigError(ValueError):
    """A configuration that cannot be used; the message names file and key."""


def _defaults() -> dict[str, Any]:
    raw = resources.files("transfer_agent").joinpath(CONFIG_NAME).read_text("utf-8")
    return tomllib.loads(raw)


@dataclass
class Config:
    data_dir: Path
    host: str = "127.0.0.1"
    api_port: int = 8080
    console_port: int = 8081
    workers: int = 0
    policy: str = "default"
    shutdown_grace_seconds: float = 30.0
    log_level: str = "info"
    timezone: str = "Asia/Tokyo"  # folder dates, receipts and every time shown, whatever the server's zone
    default_channel: str = "default"
    stable_seconds: float = 5.0
    close_settle_seconds: float = 1.0
    tick_seconds: float = 0.25
    rescan_seconds: float = 10.0
    watcher: str = "native"
    max_attempts: int = 3
    ignore: list[str] = field(default_factory=list)
    fsync: bool = True
    delivery_retry_seconds: float = 1.0
    delivery_retry_max_seconds: float = 60.0
    purge_interval_seconds: float = 3600.0
    channel_policies: dict[str, str] = field(default_factory=dict)
    max_upload_mb: float = 100.0
    api_max_files: int = 50
    api_rate_per_minute: float = 60.0
    api_rate_burst: int = 20
    api_concurrent_per_key: int = 4
    api_mb_per_hour: float = 2048.0
    max_workers_per_source: int = 0
    reserve_workers: int = 1
    small_file_mb: float = 1.0
    # Who may read /metrics on the (internet-side) API port: channel names and volumes are internal.
    metrics_allow: list[str] = field(default_factory=lambda: ["127.0.0.1", "::1"])
    # The two listeners on separate networks: internet side (API) and LGWAN side (console); "" = host.
    api_host: str = ""
    console_host: str = ""
    api_tls_cert: str = ""
    api_tls_key: str = ""
    console_tls_cert: str = ""
    console_tls_key: str = ""
    header_timeout_seconds: float = 10.0  # the whole request head, however slowly it comes
    body_timeout_seconds: float = 30.0    # no byte of a request body for this long: closed
    body_min_bytes_per_second: float = 1024.0  # average a body must keep after body_timeout_seconds
    per_address_connections: int = 32     # open connections from one address, per listener
    console_trusted_proxies: list[str] = field(default_factory=list)  # may set X-Forwarded-For/-Proto
    database: str = ""  # "" = state/ledger.sqlite3; postgresql://USER@HOST:PORT/DB for the security cloud
    broker: str = ""  # "" = local worker pool; amqp://... = worker nodes over Celery (security cloud)
    broker_prefix: str = ""  # queue and exchange name prefix: several appliances on one RabbitMQ
    object_store: str = ""  # s3://BUCKET/PREFIX: originals and outputs to worker nodes through S3 (blobstore.py)
    s3_endpoint: str = ""  # the S3-compatible endpoint ("" = AWS_ENDPOINT_URL or AWS)
    # Security cloud, several serve nodes on one shared dir: this node's own folder (drop folders, state/
    # with its lock, anchor and sockets, logs) when it is not the data dir ("" = the data dir), and the
    # LGWAN-side inbox when it is not DATA_DIR/inbox (a share of its own).
    node_dir: str = ""
    inbox_dir: str = ""
    node_lease_seconds: float = 15.0  # a serve node silent this long loses its jobs to another (cluster.py)
    audit_syslog: bool = False  # also send each audit head to syslog (LOG_AUTHPRIV): an anchor off this disk
    # Channels: form, name shown to senders, digest recipients ([channels.NAME]); forms ([forms.NAME], forms/*.toml).
    channel_forms: dict[str, str] = field(default_factory=dict)
    channel_labels: dict[str, str] = field(default_factory=dict)
    channel_digest: dict[str, list[str]] = field(default_factory=dict)
    forms: dict[str, Any] = field(default_factory=dict)
    # Upload pages (internet side) and the mails of the appliance ([exchange], [notify]).
    exchange_public_url: str = ""
    exchange_allowed_hosts: list[str] = field(default_factory=list)
    exchange_link_per_hour: float = 60.0
    exchange_address_per_hour: float = 20.0
    exchange_burst: int = 5
    exchange_status_days: int = 90
    notify_smtp: str = ""
    notify_from: str = ""
    notify_templates: str = ""
    notify_retry_seconds: float = 30.0
    notify_retry_max_seconds: float = 3600.0
    notify_digest_hour: int = -1
    notify_digest_to: list[str] = field(default_factory=list)
    # SMTP intake (internet side, 0 = off) and the delivery of rebuilt mail to the LGWAN side ([mail]).
    smtp_port: int = 0
    smtp_host: str = ""
    smtp_tls_cert: str = ""  # STARTTLS is offered when both are given
    smtp_tls_key: str = ""
    mail_deliver: str = "maildir"  # maildir: inbox/mail/<address>/ | smtp: relay to the LGWAN mail server
    mail_relay: str = ""  # host:port of the LGWAN mail server (deliver = "smtp")
    mail_routes: dict[str, str] = field(default_factory=dict)  # recipient address or domain -> channel
    mail_hostname: str = ""  # our name in the greeting, Received and Maildir names ("" = the host's)
    mail_authserv_id: str = ""  # the name in our Authentication-Results ("" = mail_hostname)
    mail_max_size_mb: float = 25.0
    mail_max_recipients: int = 100
    mail_max_line_length: int = 1000  # octets with CRLF (RFC 5321 4.5.3.1.6)
    mail_per_address_connections: int = 16
    mail_command_timeout_seconds: float = 60.0
    mail_data_timeout_seconds: float = 30.0
    mail_data_min_bytes_per_second: float = 1024.0
    mail_handover_seconds: float = 30.0  # wait for the core to quarantine a message before the 250
    mail_dedup_hours: float = 120.0  # a sender's retry of a transaction we recorded is not taken twice
    mail_dns: bool = True  # SPF lookups at intake ("none" without DNS)
    mail_dns_servers: list[str] = field(default_factory=list)  # "" = the system's resolver; "ip" or "ip:port"
    mail_relay_timeout_seconds: float = 30.0
    mail_relay_starttls: bool = False  # use STARTTLS to the relay when it offers it
    mail_relay_give_up_hours: float = 0.0  # > 0: then the sender gets a DSN (Postfix: 120); 0 = never lost, retried
    mail_notice_from: str = ""  # From of notice mails ("" = postmaster@mail_hostname)
    mail_console_url: str = ""  # named in notice mails: where clerks ask for originals
    source: str = "<defaults>"

    def form_for(self, channel: str) -> Any:
        """The form of a channel: the one it names, else the built-in `default`."""
        return self.forms[self.channel_forms.get(channel, "default")]

    def channel_label(self, channel: str) -> str:
        """The channel's name for people (display_name), else its folder name."""
        return self.channel_labels.get(channel) or channel

    def metrics_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """metrics_allow as networks ("10.0.0.0/8", "127.0.0.1"); ValueError names a bad entry."""
        return [ipaddress.ip_network(a, strict=False) for a in self.metrics_allow]

    @property
    def api_bind(self) -> str:
        return self.api_host or self.host

    @property
    def console_bind(self) -> str:
        return self.console_host or self.host

    @property
    def smtp_bind(self) -> str:
        return self.smtp_host or self.api_host or self.host

    @property
    def mail_name(self) -> str:
        """Our host name for the greeting, Received, Maildir names and notices."""
        return self.mail_hostname or socket.getfqdn() or "localhost"

    # Layout under the data directory.
    @property
    def node(self) -> Path:
        """This node's own folder: the data dir, unless --data-dir names one beside --shared-dir."""
        return Path(self.node_dir).absolute() if self.node_dir else self.data_dir

    @property
    def dropbox(self) -> Path:
        return self.node / "dropbox"

    @property
    def inbox(self) -> Path:
        return Path(self.inbox_dir).absolute() if self.inbox_dir else self.data_dir / "inbox"

    @property
    def quarantine(self) -> Path:
        return self.data_dir / "quarantine"

    @property
    def state(self) -> Path:
        """This node's state (lock, anchor, agent.json, sockets; the SQLite ledger of a one-box)."""
        return self.node / "state"

    @property
    def results_root(self) -> Path:
        """The result cache, shared by every serve node (under the data dir)."""
        return self.data_dir / "state" / "results"

    @property
    def work(self) -> Path:
        return self.data_dir / "work"

    def blob_store(self) -> LocalBlobStore:
        """Originals, results and job outputs (blobstore.py): the data directory, which is the shared
        directory on a serve node of the security cloud."""
        return LocalBlobStore(self.data_dir, self.fsync)

    @property
    def ledger_path(self) -> Path:
        return self.data_dir / "state" / "ledger.sqlite3"

    @property
    def ledger_target(self) -> Path | str:
        """What `Ledger` opens: the SQLite file, or the PostgreSQL URL of `database`."""
        return self.database or self.ledger_path

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers > 0 else (os.cpu_count() or 1)


# section -> key -> (attribute, type)
_SCHEMA: dict[str, dict[str, tuple[str, type]]] = {
    "service": {
        "data_dir": ("data_dir", str), "host": ("host", str), "api_port": ("api_port", int),
        "console_port": ("console_port", int), "workers": ("workers", int), "policy": ("policy", str),
        "shutdown_grace_seconds": ("shutdown_grace_seconds", float), "log_level": ("log_level", str),
        "timezone": ("timezone", str),
        "api_host": ("api_host", str), "console_host": ("console_host", str),
        "api_tls_cert": ("api_tls_cert", str), "api_tls_key": ("api_tls_key", str),
        "console_tls_cert": ("console_tls_cert", str), "console_tls_key": ("console_tls_key", str),
        "database": ("database", str), "broker": ("broker", str), "broker_prefix": ("broker_prefix", str),
        "object_store": ("object_store", str), "s3_endpoint": ("s3_endpoint", str),
        "inbox": ("inbox_dir", str), "node_lease_seconds": ("node_lease_seconds", float),
        "smtp_port": ("smtp_port", int), "smtp_host": ("smtp_host", str),
        "smtp_tls_cert": ("smtp_tls_cert", str), "smtp_tls_key": ("smtp_tls_key", str),
    },
    "http": {"header_timeout_seconds": ("header_timeout_seconds", float),
             "body_timeout_seconds": ("body_timeout_seconds", float),
             "per_address_connections": ("per_address_connections", int),
             "body_min_bytes_per_second": ("body_min_bytes_per_second", float),
             "console_trusted_proxies": ("console_trusted_proxies", list)},
    "intake": {
        "default_channel": ("default_channel", str), "stable_seconds": ("stable_seconds", float),
        "close_settle_seconds": ("close_settle_seconds", float), "tick_seconds": ("tick_seconds", float),
        "rescan_seconds": ("rescan_seconds", float), "watcher": ("watcher", str),
        "max_attempts": ("max_attempts", int), "ignore": ("ignore", list),
    },
    "delivery": {"fsync": ("fsync", bool), "retry_seconds": ("delivery_retry_seconds", float),
                 "retry_max_seconds": ("delivery_retry_max_seconds", float)},
    "retention": {"purge_interval_seconds": ("purge_interval_seconds", float)},
    "audit": {"syslog": ("audit_syslog", bool)},
    "api": {"max_upload_mb": ("max_upload_mb", float), "max_files": ("api_max_files", int),
            "rate_per_minute": ("api_rate_per_minute", float), "rate_burst": ("api_rate_burst", int),
            "metrics_allow": ("metrics_allow", list), "concurrent_per_key": ("api_concurrent_per_key", int),
            "mb_per_hour": ("api_mb_per_hour", float)},
    "dispatch": {"max_workers_per_source": ("max_workers_per_source", int),
                 "reserve_workers": ("reserve_workers", int), "small_file_mb": ("small_file_mb", float)},
    "exchange": {"public_url": ("exchange_public_url", str), "allowed_hosts": ("exchange_allowed_hosts", list),
                 "link_per_hour": ("exchange_link_per_hour", float),
                 "address_per_hour": ("exchange_address_per_hour", float), "burst": ("exchange_burst", int),
                 "status_days": ("exchange_status_days", int)},
    "notify": {"smtp": ("notify_smtp", str), "from": ("notify_from", str), "templates": ("notify_templates", str),
               "retry_seconds": ("notify_retry_seconds", float),
               "retry_max_seconds": ("notify_retry_max_seconds", float),
               "digest_hour": ("notify_digest_hour", int), "digest_to": ("notify_digest_to", list)},
    "mail": {"deliver": ("mail_deliver", str), "relay": ("mail_relay", str), "hostname": ("mail_hostname", str),
             "authserv_id": ("mail_authserv_id", str), "max_size_mb": ("mail_max_size_mb", float),
             "max_recipients": ("mail_max_recipients", int), "max_line_length": ("mail_max_line_length", int),
             "per_address_connections": ("mail_per_address_connections", int),
             "command_timeout_seconds": ("mail_command_timeout_seconds", float),
             "data_timeout_seconds": ("mail_data_timeout_seconds", float),
             "data_min_bytes_per_second": ("mail_data_min_bytes_per_second", float),
             "handover_seconds": ("mail_handover_seconds", float), "dedup_hours": ("mail_dedup_hours", float),
             "dns": ("mail_dns", bool), "dns_servers": ("mail_dns_servers", list),
             "relay_timeout_seconds": ("mail_relay_timeout_seconds", float),
             "relay_starttls": ("mail_relay_starttls", bool),
             "relay_give_up_hours": ("mail_relay_give_up_hours", float), "notice_from": ("mail_notice_from", str),
             "console_url": ("mail_console_url", str)},
}
_CHANNEL_KEYS = {"policy": str, "form": str, "display_name": str, "digest": list}


def _apply(values: dict[str, Any], data: dict[str, Any], source: str, text: str = "") -> None:
    def at(section: str, key: str | None = None) -> str:
        n = _line_of(text, section, key)
        return f"{source}: line {n}" if n else source

    for section, body in data.items():
        if section == "channels":
            if not isinstance(body, dict):
                raise ConfigError(f"{at('channels')}: [channels] must be a table")
            for name, ch in body.items():
                if not isinstance(ch, dict) or set(ch) - set(_CHANNEL_KEYS) or not all(
                        isinstance(v, _CHANNEL_KEYS[k]) for k, v in ch.items()):
                    raise ConfigError(f"{at('channels', name)}: channels.{name}: allowed keys are policy = \"NAME_OR_FILE\","
                                      " form = \"NAME\", display_name = \"...\", digest = [\"address\", ...]")
                key = channel_name(name)
                for k, table in (("policy", "channel_policies"), ("form", "channel_forms"),
                                 ("display_name", "channel_labels")):
                    if k not in ch:
                        continue
                    v = ch[k].strip() if k == "display_name" else ch[k]
                    if key in values[table] and values[table][key] != v:
                        raise ConfigError(f"{at('channels', name)}: channels.{name}: the same channel as another entry once"
                                          f" names are compared (NFKC, case folded): {key!r}")
                    values[table][key] = v
                if "digest" in ch:
                    if not all(isinstance(a, str) for a in ch["digest"]):
                        raise ConfigError(f"{at('channels', name)}: channels.{name}.digest: a list of mail addresses")
                    values["channel_digest"][key] = list(ch["digest"])
            continue
        if section == "forms":
            if not isinstance(body, dict):
                raise ConfigError(f"{at('forms')}: [forms] must be a table of forms ([forms.NAME])")
            values["form_decls"].update({name: (fb, source) for name, fb in body.items()})
            continue
        if section == "mail" and isinstance(body, dict) and "routes" in body:
            body = dict(body)
            routes = body.pop("routes")
            if not isinstance(routes, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                                       for k, v in routes.items()):
                raise ConfigError(f"{at('mail', 'routes')}: [mail.routes] must map recipient addresses or domains to channel"
                                  " names (\"kokuho@city.example.lg.jp\" = \"国保課\")")
            values["mail_routes"].update(routes)
        spec = _SCHEMA.get(section)
        if spec is None or not isinstance(body, dict):
            known = sorted(_SCHEMA) + ["channels", "forms"]
            raise ConfigError(f"{at(section)}: unknown section [{section}] (expected one of {known})"
                              + _shown(text, at(section), _close(section, known, "[{}]")))
        for key, value in body.items():
            if key not in spec:
                fix = _close(key, sorted(spec), "{} = " + _toml_value(value))
                home = [sec for sec, sp in _SCHEMA.items() if key in sp]
                if fix is None and home:  # a key of another section: say where it goes
                    fix = f"[{home[0]}]\n       {key} = {_toml_value(value)}   (a key of [{home[0]}])"
                raise ConfigError(f"{at(section, key)}: {section}.{key}: unknown key (expected one of {sorted(spec)})"
                                  + _shown(text, at(section, key), fix))
            attr, typ = spec[key]
            ok = isinstance(value, typ) and not (typ is int and isinstance(value, bool))
            if typ is float and isinstance(value, int) and not isinstance(value, bool):
                value, ok = float(value), True
            if typ is list:
                ok = ok and all(isinstance(v, str) for v in value)
            if not ok:
                default = _defaults().get(section, {}).get(key)
                fix = f"{key} = {_toml_value(default)}   (the default)" if default is not None else None
                raise ConfigError(f"{at(section, key)}: {section}.{key} = {value!r}: must be {_TYPE_WORDS[typ]}"
                                  + _shown(text, at(section, key), fix))
            values[attr] = value


_TYPE_WORDS = {int: "a whole number (no quotes)", float: "a number (no quotes)", bool: "true or false",
               str: 'text in quotes ("...")', list: 'a list of texts (["a", "b"])'}
_HEADER = re.compile(r"\s*\[\[?\s*([^\]]*?)\s*\]\]?\s*(#.*)?")


def _key_parts(dotted: str) -> list[str]:
    return [p.strip().strip('"').strip("'") for p in re.findall(r'"[^"]*"|\'[^\']*\'|[^.]+', dotted)]


def _line_of(text: str, section: str, key: str | None = None) -> int | None:
    """The line of `[section]` (or of `key` in it: `key = ...` under [section], or the [section.key] table)."""
    current: list[str] = []
    for n, line in enumerate(text.splitlines(), 1):
        m = _HEADER.fullmatch(line)
        if m:
            current = _key_parts(m.group(1))
            if current[:1] == [section] and (key is None or current[1:2] == [key]):
                return n
            continue
        if key is not None and current == [section]:
            kv = re.match(r"\s*([^=]+?)\s*=", line)
            if kv and _key_parts(kv.group(1))[:1] == [key]:
                return n
    return None


def _toml_value(v: Any) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, list):
        return "[" + ", ".join(_toml_value(x) for x in v) + "]"
    return '"' + str(v).replace("\\", "\\\\").replace('"', '\\"') + '"'


def _close(word: str, known: list[str], form: str) -> str | None:
    import difflib

    match = difflib.get_close_matches(word, known, n=1, cutoff=0.6)
    return form.format(match[0]) if match else None


def _shown(text: str, where: str, fix: str | None) -> str:
    """The offending line as the file has it and, when we can tell, the line as it should be."""
    m = re.search(r": line (\d+)$", where)
    out = ""
    if m and text:
        n = int(m.group(1))
        out += f"\n  {n} | {text.splitlines()[n - 1]}"
    return out + (f"\n  fix: {fix}" if fix else "")


def load_config(config_file: str | Path | None = None, data_dir: str | Path | None = None,
                **overrides: Any) -> Config:
    """Build the configuration. `overrides` are command-line values (None = not given)."""
    values: dict[str, Any] = {"channel_policies": {}, "channel_forms": {}, "channel_labels": {},
                              "channel_digest": {}, "form_decls": {}, "mail_routes": {}}
    _apply(values, _defaults(), "<embedded defaults>")
    source = "<defaults>"
    path: Path | None = Path(config_file) if config_file else None
    if path is None and data_dir is not None and (Path(data_dir) / CONFIG_NAME).is_file():
        path = Path(data_dir) / CONFIG_NAME
    if path is not None:
        text = ""
        try:
            text = path.read_text("utf-8")
            data = tomllib.loads(text)
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not UTF-8 text: {exc}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigError(toml_error(path, exc)) from None
        _apply(values, data, str(path), text)
        source = str(path)
    if data_dir is not None:
        values["data_dir"] = str(data_dir)
    for key, value in overrides.items():
        if value is not None:
            values[key] = value
    decls = values.pop("form_decls")
    cfg = Config(data_dir=Path(values.pop("data_dir")).absolute(), source=source, **values)
    _load_forms(cfg, decls, path)
    _validate(cfg)
    cfg.default_channel = channel_name(cfg.default_channel)
    from . import clock

    clock.set_zone(cfg.timezone)  # every process of the appliance loads its configuration first
    return cfg


def _load_forms(cfg: Config, decls: dict[str, tuple[Any, str]], path: Path | None) -> None:
    """Forms of the configuration and of forms/*.toml (data dir, then beside the config file); a channel's
    form must exist, and the policy a form names becomes the channel's unless the channel names one."""
    from .forms import FormError, load_forms

    folders = [cfg.data_dir / "forms"]
    if path is not None and (path.parent / "forms").resolve() != folders[0].resolve():
        folders.append(path.parent / "forms")
    try:
        forms = load_forms(decls, folders)
    except FormError as exc:
        raise ConfigError(str(exc)) from None
    cfg.forms = forms
    for ch, name in cfg.channel_forms.items():
        if name not in forms:
            raise ConfigError(f"channels.{ch}.form = {name!r}: no such form (declare [forms.{name}] or"
                              f" forms/{name}.toml; known: {sorted(forms)})")
        fp = forms[name].policy
        if fp and cfg.channel_policies.get(ch, fp) != fp:
            raise ConfigError(f"channels.{ch}: policy {cfg.channel_policies[ch]!r} differs from the policy"
                              f" {fp!r} of its form {name!r}; name one of them")
        if fp:
            cfg.channel_policies[ch] = fp


_AT = re.compile(r"\(at line (\d+), column (\d+)\)")
_BARE = re.compile(r"[A-Za-z0-9_-]+")


def _quote_keys(dotted: str) -> str:
    """`channels.国保課` -> `channels."国保課"`: a bare key may hold only ASCII letters, digits, _ and -."""
    parts = [p.strip() for p in dotted.split(".")]
    return ".".join(p if _BARE.fullmatch(p) or p.startswith(('"', "'")) else f'"{p}"' for p in parts)


def toml_error(path: Path, exc: tomllib.TOMLDecodeError) -> str:
    """The TOML error with its line, the line itself and, for the usual mistakes, the line as it should be."""
    msg = _AT.sub("", str(exc)).strip()
    m = _AT.search(str(exc))
    if not m:
        return f"{path}: not valid TOML: {msg}"
    n = int(m.group(1))
    try:
        lines = path.read_text("utf-8").splitlines()
    except (OSError, UnicodeDecodeError):
        lines = []
    text = lines[n - 1] if 0 < n <= len(lines) else ""
    out = [f"{path}: line {n}: not valid TOML: {msg}", f"  {n} | {text}"]
    fix, why = None, "names other than ASCII letters, digits, _ and - go in quotes"
    head = re.fullmatch(r"\s*(\[\[?)([^\]]*)(\]\]?)(.*)", text)
    if head:
        fixed = _quote_keys(head.group(2))
        if fixed != head.group(2).strip():
            fix = f"{head.group(1)}{fixed}{head.group(3)}{head.group(4)}"
    else:
        kv = re.fullmatch(r"(\s*)([^=\"']+?)\s*=\s*(.*)", text)
        if kv:
            key, value = _quote_keys(kv.group(2)), kv.group(3)
            bare = value.strip()
            if bare and not re.fullmatch(r"""(".*"|'.*'|\[.*|\{.*|true|false|[-+0-9_.eE:TZ ]+|inf|nan)(\s*#.*)?""",
                                         bare):
                value = '"' + bare.replace("\\", "\\\\").replace('"', '\\"') + '"'
            if (key, value) != (kv.group(2), kv.group(3)):
                fix = f"{kv.group(1)}{key} = {value}"
                if key == kv.group(2):
                    why = "text values go in quotes"
    if fix is not None:
        out.append(f"  fix: {fix}   ({why})")
    return "\n".join(out)


def _validate(cfg: Config) -> None:
    from . import clock

    try:
        clock.load(cfg.timezone)
    except ValueError as exc:
        raise ConfigError(f"service.timezone: {exc}") from None
    for name in ("api_port", "console_port", "smtp_port"):
        if not 0 <= getattr(cfg, name) <= 65535:
            raise ConfigError(f"{name} = {getattr(cfg, name)}: must be 0..65535")
    for side in ("api", "console", "smtp"):
        cert, key = getattr(cfg, f"{side}_tls_cert"), getattr(cfg, f"{side}_tls_key")
        if bool(cert) != bool(key):
            raise ConfigError(f"{side}_tls_cert and {side}_tls_key go together (both or neither)")
        for p in (cert, key):
            if p and not Path(p).is_file():
                raise ConfigError(f"{side} TLS: {p}: no such file")
    if cfg.header_timeout_seconds <= 0 or cfg.body_timeout_seconds <= 0 or cfg.per_address_connections < 1:
        raise ConfigError("http: timeouts must be > 0 and per_address_connections >= 1")
    try:
        [ipaddress.ip_network(a, strict=False) for a in cfg.console_trusted_proxies]
    except ValueError as exc:
        raise ConfigError(f"http.console_trusted_proxies: {exc}") from None
    from .db import is_postgres

    if cfg.database and not is_postgres(cfg.database):
        raise ConfigError(f"database = {cfg.database!r}: must be a postgresql://USER@HOST:PORT/DB URL (or empty"
                          " for the embedded SQLite ledger)")
    if cfg.broker and not cfg.database:
        raise ConfigError("broker (worker nodes) needs database = \"postgresql://...\": the nodes share the ledger")
    if cfg.watcher not in ("native", "polling"):
        raise ConfigError(f"intake.watcher = {cfg.watcher!r}: must be \"native\" or \"polling\"")
    for name in ("stable_seconds", "close_settle_seconds", "tick_seconds", "rescan_seconds",
                 "purge_interval_seconds", "delivery_retry_seconds", "node_lease_seconds"):
        if getattr(cfg, name) <= 0:
            raise ConfigError(f"{name} = {getattr(cfg, name)}: must be > 0")
    if cfg.delivery_retry_max_seconds < cfg.delivery_retry_seconds:
        raise ConfigError(f"delivery.retry_max_seconds = {cfg.delivery_retry_max_seconds}: must be >= retry_seconds")
    if cfg.max_workers_per_source < 0 or cfg.reserve_workers < 0 or cfg.small_file_mb < 0:
        raise ConfigError("dispatch: max_workers_per_source, reserve_workers and small_file_mb must be >= 0")
    if cfg.api_concurrent_per_key < 0 or cfg.api_mb_per_hour < 0:
        raise ConfigError("api: concurrent_per_key and mb_per_hour must be >= 0 (0 = no limit)")
    if cfg.workers < 0 or cfg.max_attempts < 1:
        raise ConfigError("workers must be >= 0 and max_attempts >= 1")
    try:
        cfg.metrics_networks()
    except ValueError as exc:
        raise ConfigError(f"api.metrics_allow: {exc}") from None
    from .files import clean_name  # the one naming rule of inbox folders

    if not cfg.default_channel or clean_name(cfg.default_channel) != cfg.default_channel:
        raise ConfigError(f"intake.default_channel = {cfg.default_channel!r}: not a usable folder name"
                          f" (would be {clean_name(cfg.default_channel or '_')!r})")
    if cfg.notify_smtp:
        host, sep, port = cfg.notify_smtp.rpartition(":")
        if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError(f"notify.smtp = {cfg.notify_smtp!r}: must be \"host:port\"")
    if cfg.notify_templates:
        from .notify import check_templates

        try:
            cfg.notify_templates = str(check_templates(cfg.notify_templates, cfg.data_dir))
        except ValueError as exc:
            raise ConfigError(str(exc)) from None
    if not -1 <= cfg.notify_digest_hour <= 23:
        raise ConfigError("notify.digest_hour: 0..23, or -1 for no daily digest")
    if cfg.notify_retry_seconds <= 0 or cfg.notify_retry_max_seconds < cfg.notify_retry_seconds:
        raise ConfigError("notify: retry_seconds > 0 and retry_max_seconds >= retry_seconds")
    if cfg.exchange_public_url and not cfg.exchange_public_url.startswith(("http://", "https://")):
        raise ConfigError(f"exchange.public_url = {cfg.exchange_public_url!r}: must start with https:// (or http://)")
    if cfg.exchange_link_per_hour < 0 or cfg.exchange_address_per_hour < 0 or cfg.exchange_burst < 1:
        raise ConfigError("exchange: link_per_hour and address_per_hour >= 0 (0 = no limit), burst >= 1")
    for name in {*cfg.channel_policies, *cfg.channel_forms, *cfg.channel_labels, *cfg.channel_digest}:
        if clean_name(name) != name:
            raise ConfigError(f"channels.{name}: not a usable folder name (would be {clean_name(name)!r})")
    _validate_mail(cfg)


def _validate_mail(cfg: Config) -> None:
    from .mailroutes import RouteError, Routes

    if cfg.mail_deliver not in ("maildir", "smtp"):
        raise ConfigError(f"mail.deliver = {cfg.mail_deliver!r}: must be \"maildir\" or \"smtp\"")
    if cfg.mail_deliver == "smtp" or cfg.mail_relay:
        try:
            from .smtp_relay import parse_hostport

            parse_hostport(cfg.mail_relay)
        except ValueError as exc:
            raise ConfigError(f"mail.relay = {cfg.mail_relay!r}: {exc} (deliver = \"smtp\" needs"
                              " \"host:port\" of the LGWAN mail server)") from None
    try:
        Routes(cfg.mail_routes, cfg.default_channel)
    except RouteError as exc:
        raise ConfigError(f"mail.routes: {exc}") from None
    for ch in cfg.mail_routes.values():
        if "/" in ch or "\\" in ch or ch.strip(". ") != ch.strip() or not ch.strip():
            raise ConfigError(f"mail.routes: channel {ch!r} is not a usable folder name")
    if cfg.smtp_port and not cfg.mail_routes:
        raise ConfigError("smtp_port is set but [mail.routes] is empty: every recipient would be refused"
                          " (map recipient domains or addresses to channels)")
    if cfg.mail_max_size_mb <= 0 or cfg.mail_max_recipients < 1 or not 78 <= cfg.mail_max_line_length <= 1 << 20:
        raise ConfigError("mail: max_size_mb must be > 0, max_recipients >= 1, max_line_length 78..1048576")
    if cfg.mail_relay_give_up_hours < 0:
        raise ConfigError("mail.relay_give_up_hours: hours >= 0 (0 = never give up)")
    if cfg.mail_per_address_connections < 1 or min(cfg.mail_command_timeout_seconds, cfg.mail_data_timeout_seconds,
                                                   cfg.mail_handover_seconds, cfg.mail_relay_timeout_seconds) <= 0:
        raise ConfigError("mail: timeouts must be > 0 and per_address_connections >= 1")
    for server in cfg.mail_dns_servers:
        host, _, port = server.rpartition(":") if server.count(":") == 1 else (server, "", "")
        try:
            ipaddress.ip_address(host or server)
            if port and not 0 < int(port) < 65536:
                raise ValueError
        except ValueError:
            raise ConfigError(f"mail.dns_servers: {server!r} is not an IP address (optionally :port)") from None
