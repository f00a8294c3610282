"""One command-line convention for every Tenfold package.

    X <verb> [POSITIONAL ...] [--preset NAME] [--config file.yaml] [--key value ...] [--print-config]

Each verb is a function taking one config dataclass. Its fields become flags (nested dataclasses give dotted flags,
``--optim.lr 3e-4``); ``--preset NAME`` starts from the verb's section of the package's ``configs/NAME.yaml``, a YAML
file given with ``--config`` overrides it and flags override both (nested sections keep their field's default
instance: only the keys given change);
``--print-config`` prints the resolved configuration as YAML and exits. User errors (bad path, bad value, malformed
data: any :class:`~tenfold_core.errors.UserError`) print one line on stderr and exit 2, without a traceback.

Example::

    app = App("funet", "Frame-UNet video segmentation", version="0.1.0", package="funet")

    @dataclass
    class DemoConfig:
        out: str = arg("runs/demo", help="output folder")
        steps: int = 100

    @app.command("demo", DemoConfig, help="run the embedded demo")
    def demo(cfg: DemoConfig) -> None: ...

    main = app.main            # the console-script entry point
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import os
import sys
import types
import typing
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Literal, get_args, get_origin

import yaml

from tenfold_core.errors import ConfigError, UserError
from tenfold_core.io import is_rank_zero, json_safe

__all__ = [
    "App",
    "emit",
    "arg",
    "parse_config",
    "config_to_dict",
    "load_preset",
    "run_cli",
    "find_app",
    "preset_path",
]


def arg(default: Any = dataclasses.MISSING, *, help: str = "", positional: bool = False, factory=None) -> Any:
    """A dataclass field with CLI help text; ``positional=True`` makes it a positional argument."""
    meta = {"help": help, "positional": positional}
    if factory is not None:
        return dataclasses.field(default_factory=factory, metadata=meta)
    if isinstance(default, (list, dict, set)):
        value = default
        return dataclasses.field(default_factory=lambda: type(value)(value), metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


# ---------------------------------------------------------------------------------------------------- conversion
def _strip_optional(tp: Any) -> tuple[Any, bool]:
    origin = get_origin(tp)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _type_name(tp: Any) -> str:
    tp, optional = _strip_optional(tp)
    if get_origin(tp) is Literal:
        name = "one of " + ", ".join(repr(a) for a in get_args(tp))
    elif get_origin(tp) in (list, tuple):
        inner = get_args(tp)
        name = f"a list of {_type_name(inner[0])}" if inner else "a list"
    else:
        name = {int: "an integer", float: "a number", bool: "true/false", str: "a string"}.get(
            tp, getattr(tp, "__name__", str(tp))
        )
    return name + (" (or null)" if optional else "")


def _coerce(value: Any, tp: Any, where: str) -> Any:
    """Convert a YAML/flag value to the annotated type, or raise ConfigError naming ``where``."""
    base, optional = _strip_optional(tp)
    if value is None or (optional and isinstance(value, str) and value.lower() in ("none", "null", "~")):
        if optional or base is Any:
            return None
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got null")
    try:
        if base is Any:
            return value
        origin = get_origin(base)
        if origin is Literal:
            choices = get_args(base)
            for c in choices:
                if value == c or (isinstance(value, str) and str(c) == value):
                    return c
            raise ValueError
        if origin in (list, tuple, Sequence) or base in (list, tuple):
            if isinstance(value, str):
                s = value.strip()
                value = yaml.safe_load(s) if s.startswith("[") else [v for v in s.split(",") if v.strip()]
            if not isinstance(value, (list, tuple)):
                value = [value]
            inner = get_args(base)
            items = (
                [_coerce(v, inner[0], f"{where}[{i}]") for i, v in enumerate(value)] if inner else list(value)
            )
            return tuple(items) if (origin is tuple or base is tuple) else items
        if origin is dict or base is dict:
            if isinstance(value, str):
                value = yaml.safe_load(value)
            if not isinstance(value, dict):
                raise ValueError
            return dict(value)
        if base is bool:
            if isinstance(value, bool):
                return value
            s = str(value).strip().lower()
            if s in ("1", "true", "yes", "on"):
                return True
            if s in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if base is int:
            if isinstance(value, bool):
                raise ValueError
            if isinstance(value, float) and value.is_integer():
                return int(value)
            return int(str(value).replace("_", ""))
        if base is float:
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if base is str:
            if isinstance(value, (dict, list)):
                raise ValueError
            return str(value)
        if base is Path:
            return Path(value)
        return base(value)
    except ConfigError:
        raise
    except (ValueError, TypeError, OverflowError, yaml.YAMLError):
        raise ConfigError(f"{where}: expected {_type_name(tp)}, got {value!r}") from None


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def _is_dataclass_type(tp: Any) -> bool:
    return isinstance(tp, type) and dataclasses.is_dataclass(tp)


def _field_default(f: dataclasses.Field) -> Any:
    """The default value of a field (a fresh one from its factory), or MISSING."""
    if f.default is not dataclasses.MISSING:
        return f.default
    if f.default_factory is not dataclasses.MISSING:  # type: ignore[misc]
        return f.default_factory()  # type: ignore[misc]
    return dataclasses.MISSING


def _build(cls: type, values: dict[str, Any], prefix: str, source: str, base: Any = None) -> Any:
    """Build ``cls`` from ``values``; fields not given keep ``base``'s value (a section's default instance, so
    ``train: TrainConfig = arg(factory=lambda: TrainConfig(monitor="val_acc"))`` keeps its monitor when only
    ``--train.max_epochs`` is given), else the field default."""
    hints = _hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls) if f.init}
    unknown = set(values) - set(fields)
    if unknown:
        key = prefix + sorted(unknown)[0]
        raise ConfigError(f"{source}: unknown key '{key}' (known: {', '.join(prefix + k for k in fields)})")
    kwargs = {}
    for name, f in fields.items():
        tp = hints[name]
        default = getattr(base, name) if base is not None else _field_default(f)
        if name not in values:
            if default is dataclasses.MISSING:
                if _is_dataclass_type(tp):
                    kwargs[name] = _build(tp, {}, prefix + name + ".", source)
                    continue
                raise ConfigError(f"{source}: missing required value '{prefix + name}'")
            if base is not None:
                kwargs[name] = copy.deepcopy(default)
            continue
        v = values[name]
        if _is_dataclass_type(tp) or dataclasses.is_dataclass(default):
            if v is None:
                v = {}
            if not isinstance(v, dict):
                raise ConfigError(f"{source}: '{prefix + name}' must be a mapping")
            sub_base = (
                default if dataclasses.is_dataclass(default) and not isinstance(default, type) else None
            )
            sub_cls = type(sub_base) if sub_base is not None else tp
            kwargs[name] = _build(sub_cls, v, prefix + name + ".", source, sub_base)
        else:
            kwargs[name] = _coerce(v, tp, f"{source}: '{prefix + name}'")
    try:
        return cls(**kwargs)
    except (ValueError, TypeError, OverflowError) as e:  # __post_init__ validation
        raise ConfigError(f"{source}: {e}") from None


def build_config(cls: type, values: dict[str, Any], source: str = "config") -> Any:
    """A config dataclass from nested plain data (e.g. a saved ``config.json`` section), checked and coerced as the
    CLI does; ConfigError naming ``source`` and the key."""
    return _build(cls, dict(values), "", source)


def config_to_dict(cfg: Any) -> dict[str, Any]:
    """A dataclass config as plain YAML/JSON-friendly data."""

    def conv(v):
        if dataclasses.is_dataclass(v):
            return {f.name: conv(getattr(v, f.name)) for f in dataclasses.fields(v)}
        if isinstance(v, (list, tuple)):
            return [conv(x) for x in v]
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, Path):
            return str(v)
        return v

    return conv(cfg)


def _flatten(cls: type, prefix: str = "", base: Any = None) -> list[tuple[str, Any, dataclasses.Field, Any]]:
    """(dotted key, type, field, default value) of every leaf field; defaults come from section default instances."""
    out = []
    hints = _hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        tp = hints[f.name]
        default = getattr(base, f.name) if base is not None else _field_default(f)
        if _is_dataclass_type(tp) or (dataclasses.is_dataclass(default) and not isinstance(default, type)):
            sub = default if dataclasses.is_dataclass(default) and not isinstance(default, type) else None
            out.extend(_flatten(type(sub) if sub is not None else tp, prefix + f.name + ".", sub))
        else:
            out.append((prefix + f.name, tp, f, default))
    return out


def _set_dotted(d: dict, key: str, value: Any) -> None:
    parts = key.split(".")
    for p in parts[:-1]:
        d = d.setdefault(p, {})
        if not isinstance(d, dict):
            raise ConfigError(f"'{key}': '{p}' is not a mapping")
    d[parts[-1]] = value


def _merge(a: dict, b: dict) -> dict:
    out = dict(a)
    for k, v in b.items():
        out[k] = _merge(out[k], v) if isinstance(out.get(k), dict) and isinstance(v, dict) else v
    return out


def load_yaml_config(path: str | os.PathLike, flag: str = "--config") -> dict[str, Any]:
    p = Path(path)
    if p.is_dir():
        raise ConfigError(f"{flag} {p}: is a folder, expected a YAML file")
    if not p.is_file():
        raise ConfigError(f"{flag} {p}: no such file")
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" line {mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{flag} {p}{where}: not valid YAML ({getattr(e, 'problem', e)})") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{flag} {p}: not UTF-8 text") from None
    except OSError as e:
        raise ConfigError(f"{flag} {p}: cannot read ({e.strerror})") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{flag} {p}: expected a mapping of keys to values, got {type(data).__name__}")
    return data


def parse_config(
    cls: type,
    overrides: dict[str, Any] | None = None,
    config_file: str | None = None,
    preset: dict[str, Any] | None = None,
    preset_source: str = "preset",
) -> Any:
    """Build a config dataclass as the CLI does: ``preset`` values < YAML ``config_file`` < dotted-key ``overrides``."""
    values: dict[str, Any] = dict(preset or {})
    source = preset_source if preset else "config"
    if config_file:
        values = _merge(values, load_yaml_config(config_file))
        source = f"--config {config_file}"
    flat: dict[str, Any] = {}
    for k, v in (overrides or {}).items():
        _set_dotted(flat, k, v)
    values = _merge(values, flat)
    return _build(cls, values, "", source)


# -------------------------------------------------------------------------------------------------- presets
def _package_dir(package: str) -> Path | None:
    import importlib.util

    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations)))


def preset_dirs(package: str) -> list[Path]:
    """Where ``package``'s presets live: ``<package>/configs`` (wheels ship them there), then the source checkout's
    ``packages/X/configs`` next to ``src/``."""
    pkg = _package_dir(package)
    if pkg is None:
        return []
    out = [pkg / "configs"]
    if pkg.parent.name == "src":
        out.append(pkg.parent.parent / "configs")
    return out


def preset_path(package: str, preset: str) -> Path:
    """The YAML file of a named preset; ConfigError listing the presets that exist when there is none."""
    if not preset or "/" in preset or "\\" in preset or preset.startswith("."):
        raise ConfigError(f"--preset {preset!r}: expected a preset name such as demo, paper or tiny")
    dirs = preset_dirs(package)
    for d in dirs:
        f = d / f"{preset}.yaml"
        if f.is_file():
            return f
    known = sorted({p.stem for d in dirs if d.is_dir() for p in d.glob("*.yaml")})
    raise ConfigError(
        f"--preset {preset}: {package} has no such preset (known: {', '.join(known) or 'none'})"
    )


def preset_section(package: str, preset: str, verb: str) -> tuple[dict[str, Any], str]:
    """The mapping for ``verb`` in ``<package>/configs/<preset>.yaml`` and a source label for messages."""
    path = preset_path(package, preset)
    data = load_yaml_config(path, flag="--preset")
    if verb not in data:
        raise ConfigError(
            f"--preset {preset} ({path}): no section for verb '{verb}' (has: {', '.join(map(str, data)) or 'none'})"
        )
    section = data[verb]
    if section is None:
        section = {}
    if not isinstance(section, dict):
        raise ConfigError(f"--preset {preset} ({path}): section '{verb}' must be a mapping")
    return section, f"--preset {preset} ({path.name})"


def find_app(package: str) -> App:
    """The :class:`App` of ``package`` (``<package>.cli.app``, or the one App instance in that module)."""
    import importlib

    mod = importlib.import_module(f"{package}.cli")
    app = getattr(mod, "app", None)
    if isinstance(app, App):
        return app
    apps = [v for v in vars(mod).values() if isinstance(v, App)]
    if len(apps) != 1:
        raise LookupError(f"{package}.cli has no App instance named 'app'")
    return apps[0]


def load_preset(
    package: str, preset: str, verb: str, overrides: dict[str, Any] | None = None, config: type | None = None
) -> Any:
    """The config object of ``package``'s ``verb`` built from ``configs/<preset>.yaml`` and dotted-key (or nested)
    ``overrides``, exactly as ``X <verb> --preset <preset> --key value`` builds it.

    ``config`` (the verb's config class) defaults to the one registered on ``<package>.cli.app``.
    """
    if config is None:
        app = find_app(package)
        if verb not in app.commands:
            raise ConfigError(f"{package}: no verb '{verb}' (verbs: {', '.join(app.commands)})")
        config = app.commands[verb].config
    section, source = preset_section(package, preset, verb)
    flat: dict[str, Any] = {}
    for k, v in (overrides or {}).items():
        if isinstance(v, dict) and "." not in k:
            flat = _merge(flat, {k: v})
        else:
            _set_dotted(flat, k, v)
    return _build(config, _merge(section, flat), "", source)


# ---------------------------------------------------------------------------------------------------- the app
def _esc(text: str) -> str:
    """argparse %-formats help strings: keep a literal '%' (e.g. "30 % of words") literal."""
    return text.replace("%", "%%")


class _Parser(argparse.ArgumentParser):
    def __init__(self, *args: Any, **kwargs: Any):
        # no prefix matching: `--train.device 5` must be an error, not a silent `--train.devices 5`
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> typing.NoReturn:  # one line, exit 2
        self.exit(2, f"{self.prog}: error: {message}\n")


@dataclasses.dataclass
class _Command:
    name: str
    config: type
    fn: Callable[[Any], Any]
    help: str
    trains: bool = False
    show: Callable[[Any, Any], Any] | None = None


def _lazy(target: str) -> Callable[[Any], Any]:
    """``"pkg.module:function"`` -> a function that imports the module on its first call (keeps ``--help`` cheap)."""
    mod, sep, attr = target.partition(":")
    if not sep or not mod or not attr:
        raise ValueError(f"run target must be 'package.module:function', got {target!r}")

    def call(cfg: Any) -> Any:
        import importlib

        fn: Any = importlib.import_module(mod)
        for part in attr.split("."):
            fn = getattr(fn, part)
        return fn(cfg)

    call.__name__ = attr.split(".")[-1]
    call.__qualname__ = target
    return call


def emit(result: Any) -> Any:
    """The one output style of every verb: a dict/list printed as JSON (indent 2; NaN as null, numpy/torch values as
    numbers, anything else unknown as its ``str``; :func:`tenfold_core.io.json_safe`) on stdout, a string as it is,
    on rank 0 only; anything else prints nothing. Returns ``result``."""
    if not is_rank_zero() or result is None:
        return result
    if isinstance(result, str):
        sys.stdout.write(result if result.endswith("\n") else result + "\n")
    elif isinstance(result, (dict, list, tuple)):
        sys.stdout.write(json.dumps(json_safe(result, fallback=str), indent=2) + "\n")
    return result


class App:
    """A package's command-line interface: verbs, each with one config dataclass.

    ``package`` (the import name) enables ``--preset NAME``: the verb's section of ``<package>/configs/NAME.yaml``.
    Values resolve as preset < ``--config FILE`` < flags. ``trains=True`` marks the verbs that train (the workspace
    tests run each of them under DDP from the ``tiny`` preset). Building the App imports nothing heavy.
    """

    def __init__(
        self, prog: str, description: str = "", version: str | None = None, package: str | None = None
    ):
        self.prog = prog
        self.description = description
        self.version = version
        self.package = package
        self.commands: dict[str, _Command] = {}

    def command(
        self,
        name: str,
        config: type,
        help: str = "",
        trains: bool = False,
        run: str | None = None,
        show: Callable[[Any, Any], Any] | None = None,
    ) -> Callable:
        """Register a verb. ``run="pkg.module:function"`` registers it at once, importing the module only when the
        verb runs (``X --help`` stays cheap); without ``run`` this is a decorator for the verb function. What the
        function returns is printed by :func:`emit` (a dict/list as JSON); ``show(result, cfg)``, when given, picks
        what is printed instead (``None``: nothing). :meth:`run` returns the function's result itself."""
        if not _is_dataclass_type(config):
            raise TypeError("config must be a dataclass type")

        def deco(fn: Callable[[Any], Any]) -> Callable[[Any], Any]:
            self.commands[name] = _Command(
                name, config, fn, help or (fn.__doc__ or "").strip().split("\n")[0], trains, show
            )
            return fn

        if run is not None:
            return deco(_lazy(run))
        return deco

    @property
    def training_verbs(self) -> list[str]:
        return [n for n, c in self.commands.items() if c.trains]

    def _add_verb(self, sub, cmd: _Command) -> None:
        h = _esc(cmd.help)
        sp = sub.add_parser(cmd.name, help=h, description=h, argument_default=argparse.SUPPRESS)
        if self.package:
            sp.add_argument(
                "--preset", metavar="NAME", help=f"start from the '{cmd.name}' section of configs/NAME.yaml"
            )
        sp.add_argument("--config", metavar="FILE.yaml", help="YAML file of values (overrides the preset)")
        sp.add_argument(
            "--print-config", action="store_true", help="print the resolved config as YAML and exit"
        )
        for key, tp, f, default in _flatten(cmd.config):
            helptext = _esc(f.metadata.get("help", ""))
            shown = None if default is dataclasses.MISSING else default
            tail = _esc(f" [{_type_name(tp)}; default: {shown!r}]")
            if f.metadata.get("positional"):
                # always optional for argparse: a value may come from --preset/--config; _build names what is missing
                sp.add_argument(key, nargs="?", help=helptext + tail)
                continue
            base, _ = _strip_optional(tp)
            if base is bool:
                sp.add_argument(f"--{key}", nargs="?", const="true", metavar="BOOL", help=helptext + tail)
                if "." not in key:
                    sp.add_argument(
                        f"--no-{key}", dest=key, action="store_const", const="false", help=argparse.SUPPRESS
                    )
            else:
                sp.add_argument(f"--{key}", metavar=key.split(".")[-1].upper(), help=helptext + tail)

    def _parser(self, verb: str | None = None) -> _Parser:
        p = _Parser(prog=self.prog, description=_esc(self.description))
        if self.version:
            p.add_argument("--version", action="version", version=f"{self.prog} {self.version}")
        sub = p.add_subparsers(dest="_verb", metavar="<verb>", parser_class=_Parser)
        sub.required = True
        for cmd in self.commands.values():
            if verb is None or cmd.name == verb:
                self._add_verb(sub, cmd)
            else:  # only the chosen verb's flags are built (cheap --help / parse for apps with many verbs)
                sub.add_parser(cmd.name, help=_esc(cmd.help), add_help=False)
        return p

    def parse(self, argv: Sequence[str] | None = None) -> tuple[_Command, Any, bool]:
        argv = list(sys.argv[1:] if argv is None else argv)
        verb = next((a for a in argv if not a.startswith("-")), None)
        ns = vars(self._parser(verb if verb in self.commands else None).parse_args(argv))
        cmd = self.commands[ns.pop("_verb")]
        config_file = ns.pop("config", None)
        preset_name = ns.pop("preset", None)
        print_config = bool(ns.pop("print_config", False))
        preset, source = None, "preset"
        if preset_name is not None:
            preset, source = preset_section(self.package or self.prog, preset_name, cmd.name)
        cfg = parse_config(cmd.config, ns, config_file, preset=preset, preset_source=source)
        return cmd, cfg, print_config

    def run(self, argv: Sequence[str] | None = None) -> Any:
        """Parse and run a verb, raising exceptions (for tests and programmatic use)."""
        cmd, cfg, print_config = self.parse(argv)
        if print_config:
            sys.stdout.write(yaml.safe_dump(config_to_dict(cfg), sort_keys=False))
            return None
        if cmd.trains:
            check_training_sections(cfg)
        result = cmd.fn(cfg)
        emit(cmd.show(result, cfg) if cmd.show is not None else result)
        return result

    def main(self, argv: Sequence[str] | None = None) -> int:
        """Console-script entry point: user errors -> one line on stderr and exit 2."""
        return run_cli(lambda: self.run(argv), self.prog)


def _training_sections(cfg: Any) -> list[Any]:
    from tenfold_core.config import TrainConfig

    if isinstance(cfg, TrainConfig):
        return [cfg]
    if not dataclasses.is_dataclass(cfg):
        return []
    return [t for f in dataclasses.fields(cfg) for t in _training_sections(getattr(cfg, f.name))]


def check_training_sections(cfg: Any) -> None:
    """Before a training verb runs: every ``train`` section's out_dir can be a folder and its devices exist, so a
    verb that writes into out_dir (a tokenizer, a cache, shards) before ``fit`` fails with one line, not a traceback,
    and a verb that would skip training (finished sweep cells) does not report success for an impossible request."""
    sections = _training_sections(cfg)
    if not sections:
        return
    from tenfold_core.train import check_devices, check_out_dir  # the verb imports the trainer anyway

    for t in sections:
        check_out_dir(t.out_dir)
        check_devices(t)


def run_cli(fn: Callable[[], Any], prog: str) -> int:
    try:
        result = fn()
    except UserError as e:
        sys.stderr.write(f"{prog}: error: {e}\n")
        raise SystemExit(e.exit_code) from None
    except KeyboardInterrupt:
        sys.stderr.write(f"{prog}: interrupted\n")
        raise SystemExit(130) from None
    return result if isinstance(result, int) else 0


# ------------------------------------------------------------------------------------------------- `tenfold` CLI
def tenfold_main(argv: Sequence[str] | None = None) -> int:
    """`tenfold demo [--only X] [--out DIR]`: run every installed package's demo and print a summary table."""
    from tenfold_core.demo_all import main as demo_main

    return demo_main(argv)
