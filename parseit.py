"""Configuration: one YAML file from config_yaml/ plus command-line overrides.

The schema (config_schema.py) is the single definition of what a configuration holds: every key, its
type, its allowed values and a one-line description. `yaml-gen.py` writes the per-dataset files from
it, and `parse_config` checks a file and the command line against it before any work starts.

Precedence, lowest first: the YAML file; the YAML's `method_overrides[<al_type>]` (for example the
stage-1 learning rate of WSL); the command line.

Command line: `--key value` or `--key=value` for every key. Keys inside a section are written
`--section.key` (the separator is a dot), or by their bare name when that name is unique outside
`method_overrides` (so the paper's `--lr 0.1 --base_width 24` keep working). Booleans accept
true/false in any case and 1/0; `null` (or `None`) sets a nullable key to null; lists are written
`[a,b]` or `a,b`.

Options of the original that have no effect here (IGNORED_ORIGINAL_KEYS) are accepted on the command
line, in a YAML file (where the original's files held them) and in `method_overrides`, reported in one
line on stderr, and left out of the configuration.
"""

from __future__ import annotations

import errno
import math
import sys
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, NoReturn

import yaml

import constants as C
from atomic_io import atomic_write_text
from config_checks import check_keys
from config_schema import LEAVES, SCHEMA, SEPARATOR, ConfigError, Key, accepts, key_spec, key_task, section_task

REPO_ROOT = Path(__file__).resolve().parent
# A source checkout has pyproject.toml next to this file; the installed package (the wheel) does not ship it.
SOURCE_CHECKOUT = (REPO_ROOT / "pyproject.toml").is_file()
CONFIG_DIR = REPO_ROOT / "config_yaml"
OVERRIDES_SECTION = "method_overrides"
# The original wrote its optimiser keys as --optn0__<key>.
OPTIMIZER_PREFIX = "optn0__"
# Keys of the original that change nothing here (one network, one optimiser, one loss; the task and
# the classifier freeze follow from al_type), by their place in a YAML file: a YAML file may still
# hold them there, so that configuration files written before they were dropped keep loading.
IGNORED_ORIGINAL_PATHS = frozenset({
    "clustering", "share_masks", "use_dist_global_hist", "sigma_histc", "loss", "segloss_l", "segloss_pl",
    "scale_seg_u_sch", "seg_elbon", "subtask", "freeze_classifier",
    "model.name_model", "model.backbone", "optimizer.name_optimizer",
})
# Every spelling of a key that the original's generated scripts pass and that has no effect here:
# accepted so that its command lines run unchanged, reported, and ignored.
IGNORED_ORIGINAL_KEYS = frozenset({
    "optn0__lr_scheduler", "optn0__t_max", "optn0__beta1", "optn0__beta2", "optn0__eps_adam", "optn0__amsgrad",
    "dropoutnetssl", "resize_mask_opt_mask", "scale_seg_u_end", "scale_seg_u_sigma", "scale_seg_u_p_abstention",
    "num_workers", "pair_w_batch_size", "segloss",
    *IGNORED_ORIGINAL_PATHS, *(path.rpartition(".")[2] for path in IGNORED_ORIGINAL_PATHS),
    "optn0__name_optimizer",
})


# Keys that say which run a call is: its folder, data, method, seed and rounds. A method's overrides cannot
# change them (a run of one method would be another method's, or land in another folder).
RUN_IDENTITY_KEYS = frozenset({"task", "al_type", "dataset", "data_root", "fold_folder", "split", "fold", "MYSEED",
                               "exp_id", "exp_root", "debug_subfolder", "al_it", "al_it_end"})
# Folder keys that must not be empty (an empty path would be the repository itself).


def resolve_key(name: str) -> str:
    """Dotted path of a command-line or override key name; ConfigError if unknown or ambiguous."""
    given = name
    if name.startswith(OPTIMIZER_PREFIX):
        name = "optimizer" + SEPARATOR + name[len(OPTIMIZER_PREFIX):]
    if SEPARATOR in name:
        section, _, leaf = name.rpartition(SEPARATOR)
        if section in SCHEMA and leaf in SCHEMA[section]:
            return name
    elif name in LEAVES:
        paths = LEAVES[name]
        if len(paths) > 1:
            raise ConfigError(f"key '{name}' is ambiguous: write one of {', '.join('--' + p for p in paths)}")
        return paths[0]
    raise ConfigError(f"unknown key '{given}': see 'python main.py --help' for the list of keys")


def _describe(spec: Key) -> str:
    if spec.choices is not None:
        allowed = "one of " + ", ".join(str(c) for c in spec.choices)
    else:
        allowed = {bool: "true/false (or 1/0)", int: "an integer", float: "a number", str: "a string",
                   list: "a list"}[spec.type]
    if spec.minimum is not None or spec.maximum is not None:
        lo = "(-inf" if spec.minimum is None else f"[{spec.minimum:g}"
        hi = "inf)" if spec.maximum is None else f"{spec.maximum:g}]"
        allowed += f" in {lo}, {hi}"
    if spec.nullable:
        allowed += ", or null"
    return allowed


def coerce(path: str, value: Any, from_text: bool) -> Any:
    """Check (and for command-line text, convert) one value against its key's spec."""
    spec = key_spec(path)

    def bad() -> NoReturn:
        raise ConfigError(f"bad value {value!r} for key '{path}': expected {_describe(spec)}")

    is_choice = spec.choices is not None and value in spec.choices
    if value is None or (from_text and isinstance(value, str) and value.lower() in ("null", "none")
                         and not is_choice):
        if spec.nullable:
            return None
        bad()
    if spec.type is bool:
        if isinstance(value, bool):
            out: Any = value
        elif from_text and isinstance(value, str) and value.lower() in ("true", "1", "false", "0"):
            out = value.lower() in ("true", "1")
        else:
            bad()
    elif spec.type is int:
        if isinstance(value, bool):
            bad()
        if isinstance(value, int):
            out = value
        elif from_text and isinstance(value, str):
            try:
                out = int(value)
            except ValueError:
                bad()
        else:
            bad()
    elif spec.type is float:
        if isinstance(value, bool):
            bad()
        if isinstance(value, (int, float)):
            out = float(value)
        elif from_text and isinstance(value, str):
            try:
                out = float(value)
            except ValueError:
                bad()
        else:
            bad()
    elif spec.type is list:
        if isinstance(value, list):
            out = value
        elif from_text and isinstance(value, str):
            text = value.strip()
            out = yaml.safe_load(text) if text.startswith("[") else [v.strip() for v in text.split(",") if v.strip()]
            if not isinstance(out, list):
                bad()
        else:
            bad()
    else:
        if isinstance(value, str):
            out = value
        elif from_text:
            out = str(value)
        elif isinstance(value, (int, float)) and not isinstance(value, bool):
            out = str(value)  # e.g. cudaid: 0 in a hand-written YAML
        else:
            bad()
    if spec.choices is not None and out not in spec.choices:
        bad()
    if isinstance(out, float) and not math.isfinite(out):
        bad()
    if isinstance(out, (int, float)) and not isinstance(out, bool) and not _within(out, spec):
        bad()
    return out


def _within(value: float, spec: Key) -> bool:
    return ((spec.minimum is None or value >= spec.minimum)
            and (spec.maximum is None or value <= spec.maximum))


class Config(Mapping):
    """Immutable, attribute-access view of a resolved configuration (sections are Configs too)."""

    def __init__(self, data: Mapping[str, Any]):
        object.__setattr__(self, "_data", {k: Config(v) if isinstance(v, Mapping) else v
                                           for k, v in data.items()})

    def __getitem__(self, key: str) -> Any:
        return self._data[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def __getattr__(self, key: str) -> Any:
        try:
            return self._data[key]
        except KeyError:
            raise AttributeError(key) from None

    def __setattr__(self, key: str, value: Any) -> None:
        raise AttributeError("Config is immutable; derive a new one with .replace(...)")

    def to_dict(self) -> dict[str, Any]:
        return {k: v.to_dict() if isinstance(v, Config) else v for k, v in self._data.items()}

    def replace(self, **changes: Any) -> Config:
        """A copy with top-level or dotted keys changed (each value checked against the schema)."""
        data = self.to_dict()
        for name, value in changes.items():
            path = resolve_key(name.replace("__", SEPARATOR))
            _set_path(data, path, coerce(path, value, from_text=False))
        return Config(data)

    def __repr__(self) -> str:
        return f"Config({self.to_dict()!r})"


def _set_path(data: dict, path: str, value: Any) -> None:
    section, _, name = path.rpartition(SEPARATOR)
    (data[section] if section else data)[name] = value


def _get_path(data: Mapping, path: str) -> Any:
    section, _, name = path.rpartition(SEPARATOR)
    return (data[section] if section else data)[name]


class _UniqueKeyLoader(yaml.SafeLoader):
    """yaml.SafeLoader that refuses a key given twice in one mapping (PyYAML keeps the last value in silence)."""

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: dict[tuple[str, str], int] = {}
        for key, _ in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == "tag:yaml.org,2002:merge":
                continue
            line = key.start_mark.line + 1
            if (key.tag, key.value) in seen:
                raise yaml.constructor.ConstructorError(
                    None, None, f"key '{key.value}' is given twice, at lines {seen[key.tag, key.value]} and {line}",
                    key.start_mark)
            seen[key.tag, key.value] = line
        return super().construct_mapping(node, deep)


def load_yaml(text: str) -> Any:
    """yaml.safe_load, refusing duplicate keys (yaml.YAMLError)."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # a SafeLoader: plain data only


def yaml_path(name: str, config_dir: Path = CONFIG_DIR) -> Path:
    """config_yaml/<name> (with or without .yaml), or an explicit path to a YAML file."""
    candidate = Path(name)
    alias = C.DATASET_ALIASES.get(candidate.stem)
    if alias is not None and candidate.parent == Path("."):
        candidate = Path(alias)
    if candidate.suffix not in (".yaml", ".yml"):
        candidate = candidate.with_suffix(".yaml")
    if candidate.parent == Path(".") and not candidate.exists():
        candidate = config_dir / candidate.name
    elif not candidate.is_file():
        candidate = resource_path(candidate)   # e.g. config_yaml/glas.yaml from outside the repository
    if not candidate.is_file():
        available = ", ".join(sorted(p.stem for p in config_dir.glob("*.yaml")))
        raise ConfigError(f"config file '{name}' not found: pass --yaml with one of: {available}")
    return candidate


def _check_file(raw: Any, source: Path) -> tuple[dict[str, Any], list[str]]:
    """Validate a YAML file's content: exactly the schema's keys, each of the right type.

    Returns the values and the options of the original the file holds (dotted paths, in file order),
    which are left out of the values.
    """
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping of keys; regenerate it with 'python yaml-gen.py'")
    task = raw.get("task")
    task = C.TASK_ALIASES.get(task, task) if isinstance(task, str) else task
    if task is not None:
        raw = {**raw, "task": coerce("task", task, from_text=False)}
    data: dict[str, Any] = {}
    ignored: list[str] = []
    for section, keys in SCHEMA.items():
        block = raw if not section else raw.get(section)
        wanted = [name for name in keys if accepts(task or C.TASK_JOINT, f"{section}{SEPARATOR}{name}" if section
                                                   else name)]
        if not wanted:
            if block is not None:
                raise ConfigError(f"{source}: section '{section}' belongs to the {section_task(section)} "
                                  f"task and this file's task is {task or C.TASK_JOINT}: remove it")
            continue
        if not isinstance(block, dict):
            raise ConfigError(f"{source}: section '{section}' is missing; regenerate it with 'python yaml-gen.py'")
        out = data if not section else data.setdefault(section, {})
        for name in keys:
            path = f"{section}{SEPARATOR}{name}" if section else name
            if name not in wanted:
                if name in block:
                    raise ConfigError(f"{source}: key '{path}' belongs to the {key_task(path)} task and this file's "
                                      f"task is {task}: remove it or regenerate the file with 'python yaml-gen.py'")
                continue
            if name not in block:
                raise ConfigError(f"{source}: key '{path}' is missing; regenerate it with 'python yaml-gen.py'")
            out[name] = coerce(path, block[name], from_text=False)
        prefix = f"{section}{SEPARATOR}" if section else ""
        ignored += [prefix + name for name in block if prefix + name in IGNORED_ORIGINAL_PATHS]
        extra = (set(block) - set(keys) - (set(SCHEMA) | {OVERRIDES_SECTION} if not section else set())
                 - {name for name in block if prefix + name in IGNORED_ORIGINAL_PATHS})
        if extra:
            raise ConfigError(f"{source}: unknown key '{min(extra)}'{' in ' + section if section else ''}; "
                              "remove it or regenerate the file with 'python yaml-gen.py'")
    data[OVERRIDES_SECTION], in_overrides = _check_overrides(raw.get(OVERRIDES_SECTION) or {}, data["task"], source)
    return data, ignored + in_overrides


def _check_overrides(overrides: Any, task: str, source: Path) -> tuple[dict[str, dict[str, Any]], list[str]]:
    """A file's method_overrides, checked: {method: {key: value}}, and the options of the original they hold.
    A key that says which run a call is (RUN_IDENTITY_KEYS) cannot differ by method."""
    if not isinstance(overrides, dict):
        raise ConfigError(f"{source}: '{OVERRIDES_SECTION}' must map a method name to {{key: value}}")
    checked: dict[str, dict[str, Any]] = {}
    ignored: list[str] = []
    for method, changes in overrides.items():
        if method not in C.METHODS:
            raise ConfigError(f"{source}: {OVERRIDES_SECTION} names unknown method '{method}'; "
                              f"use one of {', '.join(C.METHODS)}")
        if not isinstance(changes, dict):
            raise ConfigError(f"{source}: {OVERRIDES_SECTION}.{method} must be a mapping of key: value")
        ignored += [f"{OVERRIDES_SECTION}.{method}.{name}" for name in changes if name in IGNORED_ORIGINAL_KEYS]
        kept = {name: v for name, v in changes.items() if name not in IGNORED_ORIGINAL_KEYS}
        for name in kept:
            where = f"{source}: {OVERRIDES_SECTION}.{method}.{name}"
            if resolve_key(name) in RUN_IDENTITY_KEYS:
                raise ConfigError(f"{where}: {resolve_key(name)} says which run a call is (its folder, data, method, "
                                  "seed or round) and cannot differ by method: remove it, and set it at the top of "
                                  "the file or on the command line")
            _check_task_key(resolve_key(name), task, where, "remove it")
        checked[method] = {name: coerce(resolve_key(name), v, from_text=False) for name, v in kept.items()}
    return checked, ignored


def _check_task_key(path: str, task: str, where: str, fix: str) -> None:
    owner = key_task(path)
    if not accepts(task, path):
        raise ConfigError(f"{where} applies to the {owner} task only and the configuration's task is {task}: {fix}")


def split_command_line(argv: Sequence[str]) -> tuple[str | None, dict[str, str]]:
    """(--yaml value, {key: raw text}) from `--key value` / `--key=value` tokens."""
    yaml_name: str | None = None
    pairs: dict[str, str] = {}
    i = 0
    while i < len(argv):
        token = argv[i]
        if not token.startswith("--") or token == "--":
            raise ConfigError(f"unexpected argument '{token}': write options as --key value")
        name, eq, value = token[2:].partition("=")
        if not eq:
            if i + 1 >= len(argv) or (argv[i + 1].startswith("--") and not _is_number(argv[i + 1])):
                raise ConfigError(f"option '--{name}' has no value: write --{name} VALUE")
            value = argv[i + 1]
            i += 1
        i += 1
        if name == "yaml":
            yaml_name = value
        else:
            if name in pairs:
                pairs.pop(name)  # the last occurrence wins, as with argparse
            pairs[name] = value
    return yaml_name, pairs


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def parse_config(argv: Sequence[str] | None = None, config_dir: Path = CONFIG_DIR) -> Config:
    """Resolve a configuration from `--yaml NAME` and `--key value` overrides (ConfigError on any problem)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    yaml_name, pairs = split_command_line(argv)
    if yaml_name is None:
        raise ConfigError("no configuration given: pass --yaml <dataset>.yaml (files in config_yaml/)")
    source = yaml_path(yaml_name, config_dir)
    try:
        raw = load_yaml(source.read_text(encoding="utf-8"))
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{source} is not UTF-8 text (byte 0x{exc.object[exc.start]:02x} at offset {exc.start}): "
                          "save it as UTF-8 or regenerate it with 'python yaml-gen.py'") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{source} is not valid YAML ({str(exc).splitlines()[0]}): fix or regenerate it") from None
    data, in_file = _check_file(raw, source)
    overrides = data.pop(OVERRIDES_SECTION)

    on_cli = sorted(name for name in pairs if name in IGNORED_ORIGINAL_KEYS)
    groups = [f"{', '.join(names)} ({where})" for names, where in ((on_cli, "command line"), (in_file, source.name))
              if names]
    if groups:
        print(f"note: ignoring options of the original that have no effect here: {'; '.join(groups)}",
              file=sys.stderr)
    if "dataset" in pairs:
        pairs["dataset"] = C.DATASET_ALIASES.get(pairs["dataset"], pairs["dataset"])
    if "task" in pairs:
        pairs["task"] = C.TASK_ALIASES.get(pairs["task"], pairs["task"])
    cli = {resolve_key(name): coerce(resolve_key(name), value, from_text=True) for name, value in pairs.items()
           if name not in IGNORED_ORIGINAL_KEYS}
    if cli.get("task", data["task"]) != data["task"]:
        raise ConfigError(f"{source.name} is a {data['task']} configuration: the task comes with the file, so pass "
                          f"--yaml with a {cli['task']} configuration instead of --task {cli['task']}")
    for path in cli:
        _check_task_key(path, data["task"], f"--{path}", f"drop it, or pass --yaml with a {key_task(path)} "
                        "configuration")
    method = cli.get("al_type", data["al_type"])
    for name, value in overrides.get(method, {}).items():
        _set_path(data, resolve_key(name), value)
    for path, value in cli.items():
        _set_path(data, path, value)
    data[OVERRIDES_SECTION] = overrides
    check_keys(data)
    data["yaml"] = source.name
    return Config(data)


def summary(cfg: Config) -> str:
    """A few lines naming what a run does, printed at start."""
    o = cfg.optimizer
    head = (f"{cfg.al_type} on {cfg.dataset} (split {cfg.split}, fold {cfg.fold}) seed {cfg.MYSEED}, "
            f"round {cfg.al_it}{'' if cfg.al_it_end is None else f'..{cfg.al_it_end}'} of {cfg.max_al_its}\n")
    solver = cfg.classification.solver if cfg.task == C.TASK_CLASSIFICATION else "sgd"
    optimiser = f"{solver.upper() if solver == 'sgd' else 'Adam'} lr {o.lr:g} ({o.name_lr_scheduler} {o.step_size}/{o.gamma:g})"
    tail = (f"batch {cfg.batch_size} | epochs {cfg.max_epochs} | {optimiser}\n"
            f"  device {cfg.device} | deterministic {cfg.deterministic}")
    if cfg.task == C.TASK_CLASSIFICATION:
        k = cfg.classification
        return (head + f"  classification | {k.model}{' ImageNet' if k.pretrained else ''} "
                f"dropout {k.head_dropout:g} | n_start {k.n_start}/class n_new {k.n_new} patience {k.patience} | "
                + tail)
    if cfg.task == C.TASK_SEGMENTATION:
        s = cfg.segmentation
        return (head + f"  segmentation | {s.seg_model} ({cfg.model.num_classes} classes) dropout {s.seg_dropout:g} | "
                f"{s.image_height}x{s.image_width} px | n_start {s.seg_n_start} n_new {s.seg_n_new} | " + tail)
    m = cfg.model
    return (head + f"  data {cfg.data_root} | crop {cfg.crop_size} x{cfg.ratio_scale_patch} | batch {cfg.batch_size} | "
            f"epochs {cfg.max_epochs} | {optimiser}\n"
            f"  model ResNet-18 hybrid bw {m.base_width} leak {m.leak} dropout {m.backbone_dropout:g} | "
            f"lambda {cfg.scale_seg_u:g} knn {cfg.knn} | device {cfg.device} | deterministic {cfg.deterministic}")


def config_differences(saved: Mapping[str, Any], current: Mapping[str, Any],
                       ignore: Sequence[str] = ()) -> list[str]:
    """Dotted schema keys whose values differ between a saved and the current resolved configuration.

    A key the saved configuration lacks is not a difference: the run was started by a version that
    predates the key. A key the current configuration lacks is one. Keys outside the schema (such as
    options of the original that earlier versions kept) are not compared.
    """
    out = []
    for section, keys in SCHEMA.items():
        for name in keys:
            path = f"{section}{SEPARATOR}{name}" if section else name
            if path in ignore:
                continue
            try:
                a = _get_path(saved, path)
            except (KeyError, TypeError):
                continue
            try:
                b = _get_path(current, path)
            except (KeyError, TypeError):
                out.append(path)
                continue
            if a != b:
                out.append(path)
    return out


def work_root() -> Path:
    """Where relative paths lead: the repository root in a source checkout (as every script and test expects);
    the current working directory in an installed copy, so that nothing is written into site-packages."""
    return REPO_ROOT if SOURCE_CHECKOUT else Path.cwd()


def resolve_path(path: str | Path) -> Path:
    """A path of the configuration or the command line: relative ones are taken from work_root()."""
    p = Path(path).expanduser()
    return p if p.is_absolute() else work_root() / p


def script_path(name: str) -> str:
    """How a generated command names a top-level script (main.py): relative in a source checkout, whose commands run
    from the repository root; absolute in an installed copy, whose commands run from the working directory."""
    return name if SOURCE_CHECKOUT else str(REPO_ROOT / name)


def resource_path(path: str | Path, *inside: str) -> Path:
    """A read-only resource (folds, configuration files): resolve_path's, or the copy shipped with the package when
    that lacks `path/inside...` (so that an installed copy runs from any folder, and folds made there for one
    dataset do not hide the shipped ones of another)."""
    found = resolve_path(path)
    shipped = REPO_ROOT / Path(path).expanduser()
    return shipped if not found.joinpath(*inside).exists() and shipped.joinpath(*inside).exists() else found


def save_config(cfg: Config, path: Path) -> None:
    atomic_write_text(path, yaml.safe_dump(cfg.to_dict(), sort_keys=False))


def help_text() -> str:
    lines = ["usage: python main.py --yaml <dataset>.yaml [--key value ...]", "",
             "keys (section keys also as --section.key):"]
    for section, keys in SCHEMA.items():
        if section:
            lines.append(f"[{section}]")
        for name, spec in keys.items():
            lines.append(f"  --{name:<24} {spec.doc} ({_describe(spec)})")
    lines += ["", "accepted and ignored (options of the original with no effect here): "
              + ", ".join(f"--{name}" for name in sorted(IGNORED_ORIGINAL_KEYS))]
    return "\n".join(lines)


def print_help() -> None:
    try:
        print(help_text())
    except BrokenPipeError:  # e.g. piped into head
        pass


@contextmanager
def exit_on_error(*expected: type[BaseException]) -> Iterator[None]:
    """Turn the user-facing errors of an entry point into one line on stderr and exit code 2.

    Only the error classes named (plus ConfigError) are caught, so programming errors keep
    their traceback.
    """
    try:
        yield
    except (ConfigError, *expected) as exc:
        print(f"error: {_one_line(exc)}", file=sys.stderr)
        sys.exit(2)


def _one_line(exc: BaseException) -> str:
    """The message of a user-facing error; for a file-system error, the path, the problem and what to do."""
    if isinstance(exc, OSError) and exc.errno is not None:
        where = f" {exc.filename}" if exc.filename else ""
        return f"cannot use{where}: {exc.strerror or exc}: {_OS_FIXES.get(exc.errno, _OS_FIX)}"
    return " ".join(str(exc).split())


# What to do about a file-system error, by its errno; the default suits a folder that cannot be written.
_OS_FIX = "check that the path (exp_root, cache_dir, data_root) is a folder this user can write in"
_OS_FIXES = {
    **dict.fromkeys((errno.ENOSPC, errno.EDQUOT),
                    "free space on that disk, or point exp_root / cache_dir to another disk"),
    **dict.fromkeys((errno.EACCES, errno.EPERM), "check that this user may read and write there"),
    **dict.fromkeys((errno.ENOTDIR, errno.EEXIST),
                    "a file stands where a folder is needed: move it away or choose another path"),
    errno.EISDIR: "a folder stands where a file is needed: move it away or choose another path",
    errno.EROFS: "the file system is read-only: point exp_root / cache_dir to a writable folder",
    errno.ENOENT: "check the path",
}
