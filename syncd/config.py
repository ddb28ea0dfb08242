"""Settings: a TOML file plus ``SYNCD_`` environment overrides, validated up front.

The file comes from ``--config``, else ``$SYNCD_CONFIG``, else ``./syncd.toml``.
Environment variables override it key by key, ``__`` separating the levels:
``SYNCD_DAEMON__POLL_INTERVAL=30``, ``SYNCD_CONNECTORS__ZENDESK__TOKEN=...``.

The core sections are one pydantic-settings model whose sources are the TOML
file and the environment. Each ``[connectors.<name>]`` table is validated on
its own by the model its connector plugin declares (``config_model``), which
the core model cannot know in advance.

Every problem becomes one line naming where the value came from (the file or
the environment variable), the dotted key, what is wrong and what to do; all
of them are reported together in :class:`~syncd.errors.ConfigError`. Secret
values never appear in a message, and every secret loaded is registered with
:func:`syncd.logs.register_secret` so that no log line can show it either.
"""

from __future__ import annotations

import ast
import difflib
import json
import os
import re
import tomllib
from contextvars import ContextVar
from pathlib import Path
from typing import Any, Literal, Mapping, Union, get_args, get_origin

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import (
    BaseSettings,
    EnvSettingsSource,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    SettingsError,
    TomlConfigSettingsSource,
)
from pydantic_settings.sources.utils import parse_env_vars

from connectors.base import ConnectorConfig, connector_class, load_registry
from syncd.errors import ConfigError, unknown_key_message
from syncd.http import object_or_empty
from syncd.logs import redact_value, register_secret

CONFIG_ENV = "SYNCD_CONFIG"
DEFAULT_FILE = "syncd.toml"
ENV_PREFIX = "SYNCD_"
ENV_DELIMITER = "__"
# Lowercase because environment variable names are matched case-insensitively.
CONNECTOR_NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")


# --- the core sections -------------------------------------------------------------


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class StoreSettings(_Section):
    """Where syncd keeps its state: an SQLite file (``path``, the default) or a
    PostgreSQL database (``url``), which several ``syncd run`` replicas can share.
    The password goes apart from the URL, like the connectors' secrets: from the
    environment (``SYNCD_STORE__PASSWORD``) or a file (``password_file``)."""

    path: str = Field("syncd.db", min_length=1)
    url: str | None = None
    password: SecretStr | None = None
    password_file: str | None = None
    schema_name: str | None = Field(None, alias="schema")
    pool_size: int = Field(4, ge=1, le=100)
    # A replica's hold on a feed lasts this long unless renewed (every cycle):
    # a replica that dies is replaced after at most this many seconds.
    lease_seconds: float = Field(60.0, gt=0)

    @field_validator("schema_name")
    @classmethod
    def _plain_schema_name(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^[a-z_][a-z0-9_]*$", value):
            raise ValueError('must be a plain lower-case name such as "syncd" (letters, digits, _)')
        return value

    @field_validator("url")
    @classmethod
    def _no_password_in_url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^postgres(ql)?://", value):
            raise ValueError(
                'must be a PostgreSQL URL such as "postgresql://syncd@db.example.com:5432/syncd" '
                "(leave it out to keep the store in the SQLite file store.path)"
            )
        if value is not None and re.search(r"://[^/@:]*:[^/@]+@", value):
            raise ValueError(
                "the URL holds a password: remove it and set SYNCD_STORE__PASSWORD or store.password_file instead"
            )
        return value

    def read_password(self) -> str | None:
        secret = self.password
        if secret is None and self.password_file is not None:
            with open(self.password_file, encoding="utf-8") as fh:
                secret = SecretStr(fh.read().strip())
        register_secret(secret)
        return None if secret is None else secret.get_secret_value()


class DaemonSettings(_Section):
    poll_interval: float = Field(60.0, gt=0)
    jitter: float = Field(0.1, ge=0, le=1)
    health_address: str = "127.0.0.1:9187"
    # Off by default: "host:port" where signed webhooks make syncd poll a feed at once (docs/webhooks.md).
    webhook_address: str = ""
    shutdown_timeout: float = Field(30.0, gt=0)
    max_attempts: int = Field(8, ge=1)
    backoff_max: float = Field(3600.0, gt=0)
    # The existence check of linked issues (deleted, hidden or moved out of reach
    # when syncd no longer writes to them), and of the mirrored comments whose feed
    # does not show deletions: every presence_interval seconds, at most
    # presence_budget requests per tracker each (docs/reliability.md has the figures).
    presence_interval: float = Field(3600.0, gt=0)
    presence_budget: int = Field(200, ge=0)

    @field_validator("health_address", "webhook_address")
    @classmethod
    def _host_port(cls, value: str, info: ValidationInfo) -> str:
        if value == "":
            return value
        host, sep, port = value.rpartition(":")
        bracketed = host.startswith("[") and host.endswith("]")
        if (
            not sep
            or not host
            or not port.isdigit()
            or not 0 < int(port) < 65536
            or (":" in host and not bracketed)
            or any(c.isspace() for c in host)
        ):
            raise ValueError(
                'must be "host:port" such as "127.0.0.1:9187" (or "[::1]:9187"), or "" to '
                + ("disable the health endpoint" if info.field_name == "health_address" else "turn the listener off")
            )
        return value


class LogSettings(_Section):
    level: Literal["debug", "info", "warning", "error"] = "info"
    format: Literal["auto", "json", "console"] = "auto"


# Canonical ticket statuses (connectors.base.TICKET_STATUSES) but "closed", which is final.
ReopenStatus = Literal["new", "open", "pending", "hold", "solved"]


def _default_reopen_statuses() -> list[ReopenStatus]:
    return ["solved", "pending"]


class SyncSettings(_Section):
    # The connector (a [connectors.<name>] table) whose role is helpdesk; left
    # out, the one connector whose kind is a helpdesk (see _only_helpdesk).
    helpdesk: str = ""
    # Tracker connectors to link tickets to; left out, every connector whose kind is a tracker.
    trackers: list[str] = Field(default_factory=list, min_length=1)
    linked_tag: str = "syncd_linked"
    reopen_statuses: list[ReopenStatus] = Field(default_factory=_default_reopen_statuses)
    mappings: str = "mappings"  # beside the config file: the admin's copy of mappings/examples/
    # Links the first sync finds (made before syncd watched): a note per ticket, or adopted quietly.
    existing_links: Literal["announce", "adopt"] = "announce"

    @field_validator("trackers")
    @classmethod
    def _no_duplicates(cls, value: list[str]) -> list[str]:
        seen: set[str] = set()
        for name in value:
            if name in seen:
                raise ValueError(f'lists "{name}" more than once; list each tracker once')
            seen.add(name)
        return value

    @field_validator("linked_tag")
    @classmethod
    def _tag_syntax(cls, value: str) -> str:
        if not re.fullmatch(r"[^\s,]+", value):
            raise ValueError('must be one tag: no spaces or commas, e.g. "syncd_linked"')
        return value

    @field_validator("reopen_statuses", mode="before")
    @classmethod
    def _reopenable(cls, value: Any) -> Any:
        if isinstance(value, list) and "closed" in value:
            raise ValueError('cannot contain "closed": a closed ticket is never reopened; remove it')
        return value


# --- sources ------------------------------------------------------------------------

# The sources of the load in progress; Settings() outside load_config reads the environment only.
_ACTIVE_SOURCES: ContextVar[tuple[PydanticBaseSettingsSource, ...] | None] = ContextVar(
    "syncd_config_sources", default=None
)


class _EnvSource(EnvSettingsSource):
    """The environment source, reading a given mapping and reporting bad values per variable.

    Connector tables are left as strings: their types are known only once
    the connector's kind is, and load_config decodes them against that model.
    """

    def __init__(self, settings_cls: type[BaseSettings], env: Mapping[str, str]):
        self._env = env
        self.problems: list[tuple[str, str]] = []  # (variable, message)
        super().__init__(settings_cls)

    def _load_env_vars(self) -> Mapping[str, str | None]:
        return parse_env_vars(self._env, self.case_sensitive, self.env_ignore_empty, self.env_parse_none_str)

    def variable(self, lowered: str) -> str:
        """The variable as the user spelled it."""
        return next((name for name in self._env if name.lower() == lowered), lowered.upper())

    def origins(self) -> dict[tuple[str, ...], str]:
        """Dotted key path -> the variable that set it."""
        found: dict[tuple[str, ...], str] = {}
        for name in self._env:
            if name.upper().startswith(ENV_PREFIX) and name.upper() != CONFIG_ENV:
                path = tuple(name[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER))
                found[path] = name
        return found

    def decode_complex_value(self, field_name: str, field: Any, value: Any) -> Any:
        try:
            return super().decode_complex_value(field_name, field, value)
        except ValueError:
            # A list may also be written as "a,b" in the environment.
            if field is not None and _is_list(field.annotation) and not value.lstrip().startswith("["):
                return [item.strip() for item in value.split(",") if item.strip()]
            raise

    def explode_env_vars(self, field_name: str, field: Any, env_vars: Mapping[str, str | None]) -> dict[str, Any]:
        prefix = f"{self.env_prefix}{field_name}{ENV_DELIMITER}".lower()
        ours = {k: v for k, v in env_vars.items() if k.lower().startswith(prefix) and v is not None}
        result: dict[str, Any] = {}
        for name, value in ours.items():
            if field_name == "connectors":
                *parents, last = name[len(prefix) :].split(ENV_DELIMITER)
                node = result
                for part in parents:
                    node = node.setdefault(part, {})
                    if not isinstance(node, dict):
                        break
                else:
                    node[last] = value
                continue
            try:
                _merge(result, super().explode_env_vars(field_name, field, {name: value}))
            except ValueError as exc:
                self.problems.append((self.variable(name), _json_problem(exc)))
        return result

    def __call__(self) -> dict[str, Any]:
        self.problems = []
        try:
            return super().__call__()
        except SettingsError as exc:  # a whole section given as one bad JSON value
            field = re.search(r'field "([^"]+)"', str(exc))
            name = self.variable(f"{self.env_prefix}{field.group(1) if field else ''}".lower())
            self.problems.append(
                (name, f"not valid JSON; set single keys instead, e.g. {name}{ENV_DELIMITER}<KEY>=<value>")
            )
            return {}


def _json_problem(exc: ValueError) -> str:
    detail = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
    return f'not valid JSON ({detail}); write a list as ["a", "b"] or a,b'


# --- the settings -------------------------------------------------------------------


class Settings(BaseSettings):
    """Validated settings. Build them with :func:`load_config`."""

    model_config = SettingsConfigDict(
        env_prefix=ENV_PREFIX, env_nested_delimiter=ENV_DELIMITER, extra="forbid", frozen=True
    )

    store: StoreSettings = StoreSettings()
    daemon: DaemonSettings = DaemonSettings()
    log: LogSettings = LogSettings()
    sync: SyncSettings = SyncSettings()
    connectors: dict[str, ConnectorConfig] = Field(default_factory=dict)

    _source: Path | None = PrivateAttr(default=None)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        active = _ACTIVE_SOURCES.get()
        if active is None:
            return (init_settings, _EnvSource(settings_cls, os.environ))
        return (init_settings, *active)  # first wins: arguments, then environment, then file

    @property
    def source(self) -> Path | None:
        """The config file these settings came from (absolute)."""
        return self._source

    @property
    def base_dir(self) -> Path:
        """Relative paths in the config are relative to this directory."""
        return self._source.parent if self._source else Path.cwd()

    @property
    def store_path(self) -> Path:
        return (self.base_dir / self.store.path).resolve()

    @property
    def store_location(self) -> str | Path:
        """The PostgreSQL URL when ``store.url`` is set, the SQLite file otherwise."""
        return self.store.url if self.store.url else self.store_path

    def store_options(self) -> dict[str, Any]:
        """What :class:`syncd.store.Store` needs beside the location (password, schema, pool)."""
        if not self.store.url:
            return {}
        store = self.store
        return {"password": store.read_password(), "schema": store.schema_name, "pool_size": store.pool_size}

    @property
    def mappings_path(self) -> Path:
        return (self.base_dir / self.sync.mappings).resolve()

    def describe(self) -> dict[str, Any]:
        """Everything, with secrets shown as "***" (for `syncd check`)."""
        return {
            "source": str(self._source) if self._source else None,
            "store": {"url": self.store.url, "schema": self.store.schema_name}
            if self.store.url
            else {"path": str(self.store_path)},
            "daemon": self.daemon.model_dump(),
            "log": self.log.model_dump(),
            "sync": {**self.sync.model_dump(), "mappings": str(self.mappings_path)},
            "connectors": {name: redact_value(cfg.model_dump()) for name, cfg in sorted(self.connectors.items())},
        }


# --- loading ------------------------------------------------------------------------


def load_config(
    path: str | Path | None = None, *, env: Mapping[str, str] = os.environ, registry: Mapping[str, Any] | None = None
) -> Settings:
    """Read, merge and validate the configuration; ConfigError lists every problem."""
    file = _locate(path, env)
    label = str(file)
    toml_source = _read_toml(file, label)
    env_source = _EnvSource(Settings, env)
    file_data = toml_source()
    env_data = env_source()
    report = _Report(label, env_source.origins())
    for variable, message in env_source.problems:
        report.env_line(variable, message)
    merged = _merge(_merge({}, file_data), env_data)
    base_dir = file.resolve().parent
    registry = load_registry() if registry is None else registry

    connectors = _load_connectors(merged, file_data, env_data, registry, base_dir, report)
    store_table = file_data.get("store")
    if isinstance(store_table, dict) and "password" in store_table:
        report.line(
            ("store", "password"),
            "a secret written in the config file; put it in the environment (SYNCD_STORE__PASSWORD) "
            "or in a file named by store.password_file",
        )

    token = _ACTIVE_SOURCES.set((env_source, toml_source))
    settings: Settings | None = None
    try:
        settings = Settings(connectors=connectors)
    except ValidationError as exc:
        # Failed connector tables are already reported from their own models.
        report.validation(exc, Settings, skip=lambda loc: loc[:1] == ("connectors",))
    finally:
        _ACTIVE_SOURCES.reset(token)

    helpdesk, trackers = _check_sync(merged.get("sync"), connectors, merged.get("connectors"), registry, report)
    if report.problems:
        raise ConfigError(report.lines())
    assert settings is not None
    if (helpdesk, trackers) != (settings.sync.helpdesk, settings.sync.trackers):
        sync = settings.sync.model_copy(update={"helpdesk": helpdesk, "trackers": trackers})
        settings = settings.model_copy(update={"sync": sync})
    settings._source = file.resolve()
    return settings


def _locate(path: str | Path | None, env: Mapping[str, str]) -> Path:
    if path is not None:
        file, how = Path(path), "check the path given with --config"
    elif env.get(CONFIG_ENV):
        file, how = Path(env[CONFIG_ENV]), f"fix {CONFIG_ENV} or pass --config PATH"
    else:
        file = Path(DEFAULT_FILE)
        how = f"pass --config PATH, set {CONFIG_ENV}, or copy config.example.toml to {DEFAULT_FILE} in {Path.cwd()}"
    if not file.exists():
        raise ConfigError([f"{file}: config file not found (tried {file.absolute()}); {how}"])
    if file.is_dir():
        raise ConfigError([f"{file}: is a directory, not a config file; point to the .toml file inside it"])
    return file


def _read_toml(file: Path, label: str) -> TomlConfigSettingsSource:
    try:
        return TomlConfigSettingsSource(Settings, toml_file=file)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError([_toml_problem(label, file, exc)]) from None
    except UnicodeDecodeError as exc:
        line = exc.object[: exc.start].count(b"\n") + 1
        raise ConfigError([f"{label}: line {line}: not UTF-8 text; save the file as UTF-8"]) from None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError(
            [f"{label}: cannot read the config file ({reason}); make it readable by the user running syncd"]
        ) from None


_TOML_AT = re.compile(r"^(?P<detail>.*) \(at line (?P<line>\d+), column (?P<col>\d+)\)$", re.S)


def _toml_problem(label: str, file: Path, exc: tomllib.TOMLDecodeError) -> str:
    found = _TOML_AT.match(str(exc))
    if not found:
        return f"{label}: TOML syntax error: {exc}; fix the syntax"
    detail, line, col = found["detail"], int(found["line"]), int(found["col"])
    twice = re.fullmatch(r"Cannot declare (\(.*\)) twice", detail)
    if twice:
        table = ".".join(ast.literal_eval(twice.group(1)))
        return (
            f"{label}: {table}: table [{table}] is defined twice (again at line {line}); "
            "TOML allows each table once: merge the two into one"
        )
    if detail == "Cannot overwrite a value":
        key = _key_on_line(file, line)
        if key:
            return f"{label}: {key}: set twice (again at line {line}); keep one of them"
    return f"{label}: line {line}, column {col}: TOML syntax error: {detail}; fix the syntax there"


def _key_on_line(file: Path, line: int) -> str | None:
    """The dotted key a ``key = value`` line sets, with its table header."""
    table = ""
    lines = file.read_text(encoding="utf-8").splitlines()
    for text in lines[: line - 1]:
        header = re.match(r"\s*\[\[?\s*([^\]]+?)\s*\]\]?\s*(#.*)?$", text)
        if header:
            table = header.group(1).replace('"', "").replace(" ", "")
    assignment = re.match(r"\s*([\w.\-\" ]+?)\s*=", lines[line - 1]) if line <= len(lines) else None
    if not assignment:
        return None
    key = assignment.group(1).replace('"', "").replace(" ", "")
    return f"{table}.{key}" if table else key


# --- connectors ---------------------------------------------------------------------


def _load_connectors(
    merged: dict[str, Any],
    file_data: dict[str, Any],
    env_data: dict[str, Any],
    registry: Mapping[str, Any],
    base_dir: Path,
    report: "_Report",
) -> dict[str, ConnectorConfig]:
    tables = merged.get("connectors", {})
    if not isinstance(tables, dict):
        report.line(("connectors",), "must be tables: write [connectors.<name>] with kind = ... under it")
        return {}
    file_tables = object_or_empty(file_data.get("connectors"))
    env_tables = env_data.get("connectors") or {}
    loaded: dict[str, ConnectorConfig] = {}
    for name, table in sorted(tables.items()):
        loc = ("connectors", name)
        if not isinstance(table, dict):
            report.line(loc, f"must be a table: write [connectors.{name}] with kind = ... under it")
            continue
        if name not in file_tables and "kind" not in table:
            variable = report.origin(loc + (sorted(table)[0],)) if table else None
            report.env_line(
                variable or _env_name(loc),
                f"there is no [connectors.{name}] table in the file; add one with kind = ..., or unset the variable",
                loc,
            )
            continue
        if not CONNECTOR_NAME_RE.match(name):
            report.line(
                loc,
                "connector names must be lowercase letters, digits and _ (they appear "
                f"in SYNCD_CONNECTORS__<NAME>__<KEY>); rename [connectors.{name}]",
            )
            continue
        model = _connector_model(name, table.get("kind"), registry, report)
        if model is None:
            continue
        file_table = object_or_empty(file_tables.get(name))
        env_table = object_or_empty(env_tables.get(name))
        data = dict(table)
        for key, value in env_table.items():
            field = model.model_fields.get(key)
            if field is not None and isinstance(value, str) and _is_complex(field.annotation):
                try:
                    data[key] = _decode_env(value, field.annotation)
                except ValueError as exc:
                    report.line(loc + (key,), _json_problem(exc))
        secrets = [key for key, field in model.model_fields.items() if _mentions(field.annotation, SecretStr)]
        for key in secrets:
            if key in file_table:
                register_secret(str(file_table[key]))
                alternative = f" or {key}_file" if f"{key}_file" in model.model_fields else ""
                report.file_line(
                    loc + (key,),
                    "a secret written in the config file; put secrets in the "
                    f"environment ({_env_name(loc + (key,))}){alternative}",
                )
        before = len(report.problems)
        for key in secrets:
            if data.get(key) is not None and data.get(f"{key}_file") is not None:
                report.line(
                    loc + (key,),
                    f"given twice, here and as {key}_file: syncd would not know which one is meant; keep one of them",
                )
        _check_secret_files(loc, data, model, base_dir, report)
        file_problems = len(report.problems) > before
        try:
            config = model.model_validate(data)
        except ValidationError as exc:
            # A model's own check of an unreadable *_file would repeat what was just said.
            report.validation(exc, model, prefix=loc, skip=(lambda where: where == loc) if file_problems else None)
            continue
        for key in secrets:
            register_secret(getattr(config, key, None))
        loaded[name] = config
    return loaded


def _connector_model(
    name: str, kind: Any, registry: Mapping[str, Any], report: "_Report"
) -> type[ConnectorConfig] | None:
    loc = ("connectors", name, "kind")
    known = sorted(registry)
    if kind is None:
        report.line(
            loc, f'missing; add kind = "<one of: {", ".join(known) or "none installed"}>" to [connectors.{name}]'
        )
        return None
    if not isinstance(kind, str):
        report.line(loc, f"must be a string, one of: {', '.join(known)}")
        return None
    try:
        return connector_class(kind, dict(registry)).config_model
    except ConfigError:
        close = difflib.get_close_matches(kind, known, n=1)
        hint = f'; did you mean "{close[0]}"?' if close else "; install the plugin that provides it"
        report.line(loc, f'unknown connector kind "{kind}" (known: {", ".join(known) or "none installed"}){hint}')
    except Exception as exc:  # a registered plugin that fails to import
        report.line(
            loc,
            f'connector kind "{kind}" is installed but cannot be loaded '
            f"({type(exc).__name__}: {exc}); reinstall syncd or the plugin",
        )
    return None


def _check_secret_files(
    loc: tuple[str, ...], data: dict[str, Any], model: type[BaseModel], base_dir: Path, report: "_Report"
) -> None:
    """``*_file`` keys must name a readable file; resolve them and register what they hold."""
    for key, value in list(data.items()):
        if not key.endswith("_file") or key not in model.model_fields or not isinstance(value, str):
            continue
        path = (base_dir / os.path.expanduser(value)).resolve()
        data[key] = str(path)
        if not path.exists():
            report.line(loc + (key,), f"{path} does not exist; create it holding only the secret, or correct the path")
        elif not path.is_file():
            report.line(loc + (key,), f"{path} is not a regular file; point it at the file holding the secret")
        else:
            try:
                register_secret(path.read_text(encoding="utf-8").strip())
            except OSError as exc:
                report.line(
                    loc + (key,),
                    f"{path} cannot be read ({exc.strerror or type(exc).__name__}); "
                    "make it readable by the user running syncd",
                )
            except UnicodeDecodeError:
                report.line(loc + (key,), f"{path} is not UTF-8 text; it should hold only the secret")


def _role(config: ConnectorConfig, registry: Mapping[str, Any]) -> str | None:
    """The role (helpdesk, tracker) of a loaded connector's kind, from the connector registry."""
    try:
        return connector_class(config.kind, dict(registry)).role
    except Exception:
        return None  # its kind is reported with its table


def _of_role(role: str, loaded: dict[str, ConnectorConfig], registry: Mapping[str, Any]) -> list[str]:
    """The loaded connectors whose kind has ``role``, by name."""
    return sorted(name for name, config in loaded.items() if _role(config, registry) == role)


def _only_helpdesk(
    loaded: dict[str, ConnectorConfig], defined: list[str], registry: Mapping[str, Any], report: "_Report"
) -> str:
    """sync.helpdesk left out: the one defined connector whose kind is a helpdesk."""
    helpdesks = _of_role("helpdesk", loaded, registry)
    if len(helpdesks) == 1:
        return helpdesks[0]
    if helpdesks:
        report.line(
            ("sync", "helpdesk"),
            f"not set, and {len(helpdesks)} connectors are helpdesks ({', '.join(helpdesks)}); "
            f'name the one to sync, e.g. helpdesk = "{helpdesks[0]}"',
        )
    elif loaded and set(defined) <= set(loaded):  # (a table that failed is reported on its own)
        report.line(
            ("sync", "helpdesk"),
            f"not set, and no connector is a helpdesk (defined: {', '.join(sorted(loaded))}); "
            "add a [connectors.<name>] table whose kind is a helpdesk",
        )
    return ""


def _all_trackers(
    loaded: dict[str, ConnectorConfig], defined: list[str], registry: Mapping[str, Any], report: "_Report"
) -> list[str]:
    """sync.trackers left out: every defined connector whose kind is a tracker."""
    trackers = _of_role("tracker", loaded, registry)
    if not trackers and loaded and set(defined) <= set(loaded):
        report.line(
            ("sync", "trackers"),
            f"not set, and no connector is a tracker (defined: {', '.join(sorted(loaded))}); "
            "add a [connectors.<name>] table whose kind is a tracker",
        )
    return trackers


def _check_sync(
    sync: Any, loaded: dict[str, ConnectorConfig], tables: Any, registry: Mapping[str, Any], report: "_Report"
) -> tuple[str, list[str]]:
    """sync.helpdesk and sync.trackers must name defined connectors of the right role.

    Returns them, each filled in from the defined connectors when left out."""
    try:
        settings = SyncSettings.model_validate(sync if isinstance(sync, dict) else {})
    except ValidationError:
        return "", []  # already reported
    defined = sorted(tables) if isinstance(tables, dict) else []
    helpdesk = settings.helpdesk or _only_helpdesk(loaded, defined, registry, report)
    trackers = settings.trackers or _all_trackers(loaded, defined, registry, report)
    wanted: list[tuple[tuple[str | int, ...], str, str]] = []
    if settings.helpdesk:
        wanted.append((("sync", "helpdesk"), settings.helpdesk, "helpdesk"))
    wanted += [(("sync", "trackers", i), name, "tracker") for i, name in enumerate(settings.trackers)]
    for loc, name, role in wanted:
        if name not in defined:
            report.line(
                loc,
                f'no connector named "{name}" (defined: {", ".join(defined) or "none"}); '
                f"add a [connectors.{name}] table or name one of those",
            )
            continue
        if name not in loaded:
            continue  # its table has problems of its own
        actual = _role(loaded[name], registry)
        if actual is not None and actual != role:
            report.line(loc, f'connector "{name}" is a {actual}, not a {role}; name a {role} connector here')
    return helpdesk, trackers


# --- problem lines ------------------------------------------------------------------


class _Report:
    """Collects problems, each attributed to the file or to the variable that set it."""

    def __init__(self, label: str, origins: dict[tuple[str, ...], str]):
        self.label = label
        self.origins = origins
        self.problems: list[tuple[tuple[str, ...], str]] = []

    def origin(self, loc: tuple[Any, ...]) -> str | None:
        parts = tuple(str(p).lower() for p in loc)
        for end in range(len(parts), 0, -1):
            if parts[:end] in self.origins:
                return self.origins[parts[:end]]
        return None

    def line(self, loc: tuple[Any, ...], message: str) -> None:
        variable = self.origin(loc)
        if variable:
            self.env_line(variable, message, loc)
        else:
            self.file_line(loc, message)

    def file_line(self, loc: tuple[Any, ...], message: str) -> None:
        self.problems.append((_sort_key(loc), f"{self.label}: {_dotted(loc)}: {message}"))

    def env_line(self, variable: str, message: str, loc: tuple[Any, ...] | None = None) -> None:
        key = loc if loc is not None else tuple(variable[len(ENV_PREFIX) :].lower().split(ENV_DELIMITER))
        self.problems.append((_sort_key(key), f"environment {variable}: {message}"))

    def lines(self) -> list[str]:
        return [text for _, text in sorted(self.problems)]

    def validation(
        self, exc: ValidationError, model: type[BaseModel], prefix: tuple[str, ...] = (), skip: Any = None
    ) -> None:
        for error in exc.errors(include_url=False):
            loc = prefix + tuple(error["loc"])
            if skip is not None and skip(loc):
                continue
            self.line(loc, self._message(error, model, tuple(error["loc"]), loc))

    def _message(self, error: ErrorDetails, model: type[BaseModel], rel: tuple[Any, ...], loc: tuple[Any, ...]) -> str:
        kind, key = error["type"], str(rel[-1]) if rel else ""
        parent = _model_at(model, rel[:-1])
        field = parent.model_fields.get(key) if parent else None
        secret = field is not None and _mentions(field.annotation, SecretStr)
        table = _dotted(loc[:-1])
        if kind == "missing":
            if secret:
                alternative = f" or {key}_file" if parent and f"{key}_file" in parent.model_fields else ""
                return f"missing secret; set {_env_name(loc)} in the environment{alternative}"
            where = f"[{table}]" if table else "the top of the file"
            return f"missing; add {key} = ... to {where}"
        if kind == "extra_forbidden":
            return unknown_key_message(key, parent.model_fields if parent else ())
        if kind in ("too_short", "string_too_short"):
            return "must not be empty"
        if kind in ("model_type", "dict_type", "model_attributes_type"):
            return f"must be a table: write [{_dotted(loc)}] with its keys under it"
        message = error["msg"].removeprefix("Value error, ").removeprefix("Assertion failed, ")
        if loc[:1] == ("connectors",) and len(loc) > 1:  # a model's own hint about its variables
            message = message.replace("SYNCD_CONNECTORS__<NAME>__", f"SYNCD_CONNECTORS__{str(loc[1]).upper()}__")
        message = message.replace("Input should be", "must be")
        value = error.get("input")
        if not secret and not _secret_named(loc) and isinstance(value, (str, int, float, bool)):
            message += f" (got {json.dumps(value, ensure_ascii=False)})"
        return message


def _dotted(loc: tuple[Any, ...]) -> str:
    text = ""
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _sort_key(loc: tuple[Any, ...]) -> tuple[str, ...]:
    return tuple(f"{p:08d}" if isinstance(p, int) else str(p) for p in loc)


def _env_name(loc: tuple[Any, ...]) -> str:
    return ENV_PREFIX + ENV_DELIMITER.join(str(p).upper() for p in loc)


def _secret_named(loc: tuple[Any, ...]) -> bool:
    return any(isinstance(p, str) and redact_value("x", p) != "x" for p in loc)


def _model_at(model: type[BaseModel], rel: tuple[Any, ...]) -> type[BaseModel] | None:
    """The model class that holds the field at ``rel`` (None inside lists/dicts)."""
    current: Any = model
    for part in rel:
        field = current.model_fields.get(part) if isinstance(part, str) else None
        if field is None:
            return None
        current = next(
            (
                a
                for a in (field.annotation, *get_args(field.annotation))
                if isinstance(a, type) and issubclass(a, BaseModel)
            ),
            None,
        )
        if current is None:
            return None
    return current


def _mentions(annotation: Any, target: type) -> bool:
    if annotation is target:
        return True
    return any(_mentions(arg, target) for arg in get_args(annotation))


def _is_list(annotation: Any) -> bool:
    origin = get_origin(annotation)
    if origin is Union or (origin is not None and origin.__name__ == "UnionType"):
        return any(_is_list(arg) for arg in get_args(annotation))
    return origin in (list, tuple, set, frozenset)


def _is_complex(annotation: Any) -> bool:
    if _is_list(annotation) or get_origin(annotation) is dict:
        return True
    return any(isinstance(a, type) and issubclass(a, BaseModel) for a in (annotation, *get_args(annotation)))


def _decode_env(value: str, annotation: Any) -> Any:
    if value.lstrip().startswith(("[", "{")) or not _is_list(annotation):
        return json.loads(value)
    return [item.strip() for item in value.split(",") if item.strip()]


def _merge(into: dict[str, Any], update: dict[str, Any]) -> dict[str, Any]:
    """Deep-merge ``update`` into ``into`` (tables merge, other values replace)."""
    for key, value in update.items():
        if isinstance(value, dict) and isinstance(into.get(key), dict):
            _merge(into[key], value)
        elif isinstance(value, dict):
            into[key] = _merge({}, value)
        else:
            into[key] = value
    return into
