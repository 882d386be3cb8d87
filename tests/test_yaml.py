"""The YAML loader (hybridkit._yaml): plain data in, everything else refused with the fix.

Each refusal is checked for the exact error type (ConfigError), what the message says was found
and the fix it names; the alias and nesting bombs are also checked to be refused fast.
"""
from __future__ import annotations

import json
import os
import re
import threading
import time
from pathlib import Path

import pytest
import yaml

from hybridkit._config import ConfigError
from hybridkit._yaml import MAX_ALIAS_NODES, load_yaml, read_yaml
from hybridkit.data import load_dataset_config
from hybridkit.experiment import apply_overrides, load_config

ROOT = Path(__file__).resolve().parents[1]


def _laughs(levels: int = 9) -> str:
    """The "billion laughs": each level a list of 9 aliases of the level below (9**levels leaves)."""
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    names = "abcdefghijklmnop"
    for i in range(1, levels):
        lines.append(f"{names[i]}: &{names[i]} [" + ", ".join([f"*{names[i - 1]}"] * 9) + "]")
    return "\n".join(lines) + "\n"


def _refused(text: str, pattern: str, **kw):
    with pytest.raises(ConfigError, match=pattern) as info:
        load_yaml(text, where="c.yaml", **kw)
    assert type(info.value) is ConfigError and "Fix:" in str(info.value)
    return str(info.value)


# --------------------------------------------------------------------------- the examples
def test_billion_laughs_is_refused_at_once(tmp_path):
    text = _laughs()
    assert len(text) < 1100  # about 1 kB, as in the issue
    path = tmp_path / "laughs.yaml"
    path.write_text("name: lol\n" + text)
    t0 = time.perf_counter()
    with pytest.raises(ConfigError, match=r"laughs\.yaml holds aliases that expand to 490,329,066 values from 30 "
                                          r"written ones .*Fix: write the values out"):
        load_config(path)
    assert time.perf_counter() - t0 < 1.0  # main: > 40 s and a 58 MB config.json


def test_duplicate_keys_name_the_key_and_both_lines():
    _refused("name: a\ncycles: 2\ndata:\n  noise: 0.1\ncycles: 5\n",
             r"holds the key 'cycles' twice in one mapping \(first on line 2; YAML would keep the last one "
             r"silently\) \(line 5, column 1\)\. Fix: keep one of them")


def test_duplicate_keys_inside_a_section_and_a_flow_mapping():
    _refused("data:\n  noise: 0.1\n  seed: 1\n  noise: 0.2\n", r"'noise' twice .*first on line 2.*\(line 4")
    _refused("pde_params: {viscosity: 0.5, dt: 0.1, viscosity: 1.0}\n", r"'viscosity' twice .*Fix: keep one")


@pytest.mark.parametrize("text, found, fix", [
    ("date: 2024-01-31\n", r"a date / timestamp \(2024-01-31\)", r"quote it to keep it as text"),
    ("when: 2001-12-14t21:59:43.10-05:00\n", r"a date / timestamp \(2001-12-14t21:59:43\.10-05:00\)", r"quote it"),
    ("s: !!set {a, b}\n", r"a !!set", r"write a list instead"),
    ("b: !!binary aGVsbG8=\n", r"!!binary data \(aGVsbG8=\)", r"store arrays in a file"),
])
def test_values_json_has_no_type_for(text, found, fix):
    _refused(text, rf"holds {found}, which JSON has no type for \(line 1, column \d+\)\. Fix: {fix}")


def test_3000_levels_of_nesting_are_refused_without_recursion_error():
    t0 = time.perf_counter()
    _refused("[" * 3000 + "]" * 3000, r"holds more than 64 levels of nesting .*Fix: flatten the structure")
    _refused("a: " + "{b: " * 3000 + "1" + "}" * 3000, r"more than 64 levels")
    assert time.perf_counter() - t0 < 5.0


def test_empty_file_is_refused_not_run_with_defaults(tmp_path):
    for text in ("", "\n\n", "# only a comment\n", "---\n"):
        path = tmp_path / "empty.yaml"
        path.write_text(text)
        with pytest.raises(ConfigError, match=r"empty\.yaml holds (no YAML document|an empty YAML document).*"
                                              r"Fix: write a value: a config file holds a mapping of settings "
                                              r"\('\{\}' for all defaults\)"):
            load_config(path)
    (tmp_path / "defaults.yaml").write_text("{}\n")  # asking for the defaults explicitly still works
    cfg, doc = load_config(tmp_path / "defaults.yaml")
    assert doc == {} and cfg.name == "experiment"


def test_several_documents_are_refused():
    _refused("name: a\n---\nname: b\n", r"holds more than one YAML document \(a second '---'\) \(line 2.*Fix: keep "
                                        r"one document per file")


# --------------------------------------------------------------------------- more of each class
def test_recursive_alias_is_refused():
    _refused("a: &x [1, *x]\n", r"holds a recursive alias .*Fix: replace the alias by a copy")
    _refused("a: &x {b: *x}\n", r"recursive alias")


def test_aliases_within_the_budget_work_and_share_nothing():
    doc = load_yaml("base: &b {resolution: [64], dt: 0.1}\ndata: {pde_params: *b}\nother: {<<: *b, dt: 0.2}\n")
    assert doc["data"]["pde_params"] == {"resolution": [64], "dt": 0.1}
    assert doc["other"] == {"resolution": [64], "dt": 0.2}  # merge keys: explicit keys win, not a duplicate


def test_alias_budget_counts_expansion_not_text():
    wide = "a: &a [" + ", ".join(["1"] * 100) + "]\nb: [" + ", ".join(["*a"] * 99) + "]\n"  # 9,900 added
    assert len(load_yaml(wide)["b"]) == 99
    _refused(wide, r"aliases that expand to 10,\d+ values .*at most 5,000 may come from aliases",
             max_alias_nodes=5_000)
    assert MAX_ALIAS_NODES >= 9_900


def test_nesting_by_aliases_counts_too():
    inner = "[" * 40 + "1" + "]" * 40
    _refused(f"a: &a {inner}\nb: {'[' * 40}*a{']' * 40}\n", r"levels of nesting once aliases are expanded")


@pytest.mark.parametrize("text, pattern", [
    ("n: !!python/object/apply:os.getcwd []\n", r"could not determine a constructor for the tag "
                                                r"'tag:yaml.org,2002:python/object/apply:os.getcwd'"),
    ("n: !!python/name:os.system\n", r"python/name:os\.system"),
    ("n: !custom 3\n", r"the tag '!custom'"),
    ("o: !!omap [a: 1, b: 2]\n", r"an !!omap"),
    ("p: !!pairs [a: 1]\n", r"!!pairs"),
])
def test_tags_are_refused(text, pattern):
    message = _refused(text, pattern)
    assert "Fix: " in message


@pytest.mark.parametrize("text, shown, kind", [
    ("1: a\n", "1", "an integer"), ("on: 2\n", "on", "a boolean"), ("null: 1\n", "null", "null"),
    ("1.5: x\n", "1.5", "a number"), ("? [a, b]\n: 1\n", "a sequence", "not a string"),
])
def test_keys_must_be_strings(text, shown, kind):
    _refused(text, rf"holds the mapping key '{re.escape(shown)}', which YAML reads as {kind}; keys must be strings.*"
                   rf"Fix: quote the key")


def test_surprising_yaml_1_1_numbers_are_refused():
    _refused("seed: 010\n", r"'010', which YAML 1\.1 reads as the octal number 8 .*Fix: drop the leading zero")
    _refused("steps: 1:30\n", r"'1:30', which YAML 1\.1 reads as a base-60 number .*Fix: write the number in decimal")
    assert load_yaml("seed: '010'\nzero: 0\nhex: 0x10\n") == {"seed": "010", "zero": 0, "hex": 16}


def test_exponents_are_numbers():
    """PyYAML reads 1e-3 as the string "1e-3"; the loader reads YAML 1.2 floats."""
    assert yaml.safe_load("x: 1e-3") == {"x": "1e-3"}
    doc = load_yaml("a: 1e-3\nb: 1E5\nc: 1.0e5\nd: -.5\ne: 12\nf: '1e-3'\ng: .inf\n")
    assert doc == {"a": 1e-3, "b": 1e5, "c": 1e5, "d": -0.5, "e": 12, "f": "1e-3", "g": float("inf")}
    assert type(doc["e"]) is int


def test_not_regular_files_are_refused_without_blocking(tmp_path):
    with pytest.raises(ConfigError, match=r"Expected a YAML file at .*, found a directory\. Fix: give the path"):
        read_yaml(tmp_path)
    link = tmp_path / "zero.yaml"
    link.symlink_to("/dev/zero")
    with pytest.raises(ConfigError, match=r"found a character device\. Fix"):
        load_config(link)
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    outcome = []
    worker = threading.Thread(target=lambda: outcome.append(_error_of(load_config, fifo)), daemon=True)
    worker.start()
    worker.join(5)
    if worker.is_alive():  # unblock the reader before failing
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    assert not worker.is_alive(), "reading a FIFO blocked"
    assert isinstance(outcome[0], ConfigError) and "found a FIFO (named pipe). Fix" in str(outcome[0])


def _error_of(fn, *args):
    try:
        fn(*args)
    except Exception as e:  # noqa: BLE001  (returned to the test thread)
        return e
    return None


def test_oversized_file_is_refused(tmp_path):
    path = tmp_path / "big.yaml"
    path.write_text("a: [" + "1, " * 3000 + "1]\n")
    with pytest.raises(ConfigError, match=r"at most 1,024 bytes, .*big\.yaml has 9,007\. Fix: keep large arrays"):
        read_yaml(path, max_bytes=1024)


def test_override_values_use_the_same_loader():
    with pytest.raises(ConfigError, match=r"override 'cycles=' holds no YAML document.*Fix: write a value.*an "
                                          r"override null for none"):
        apply_overrides({}, ["cycles="])
    with pytest.raises(ConfigError, match=r"override 'data=\{a: 1, a: 2\}' holds the key 'a' twice"):
        apply_overrides({}, ["data={a: 1, a: 2}"])
    with pytest.raises(ConfigError, match=r"override 'name=2024-01-31' holds a date"):
        apply_overrides({}, ["name=2024-01-31"])
    assert apply_overrides({}, ["data.observed_region=null", "hybrid.alpha_physical=1e-2"]) == {
        "data": {"observed_region": None}, "hybrid": {"alpha_physical": 0.01}}


def test_dataset_configs_use_the_same_loader(tmp_path):
    path = tmp_path / "d.yaml"
    path.write_text("data:\n  name: x\n  num_sims: 4\n  num_sims: 8\n")
    with pytest.raises(ConfigError, match=r"d\.yaml holds the key 'num_sims' twice .*line 3.*Fix: keep one"):
        load_dataset_config(path)
    path.write_text("data: {name: x, num_sims: 4}\n")
    assert load_dataset_config(path).num_sims == 4


def test_every_shipped_config_loads_as_json_data():
    """What the loader returns is plain JSON data, equal to what PyYAML reads for normal files."""
    paths = sorted((ROOT / "configs").glob("*.yaml"))
    assert paths
    for path in paths:
        doc = read_yaml(path)
        assert json.loads(json.dumps(doc, allow_nan=False)) == doc == yaml.safe_load(path.read_text())


def test_invalid_syntax_and_encoding_say_so():
    _refused("data: {num_train: [1, 2\n", r"c\.yaml is not valid YAML: while parsing a flow sequence .*Fix: correct "
                                         r"the YAML syntax")
    with pytest.raises(ConfigError, match=r"is not valid YAML: 'utf-8' codec can't decode .*Fix: save it as UTF-8"):
        load_yaml("name: caf\xe9\n".encode("latin-1"))
    _refused("a: \x07\n", r"is not valid YAML: unacceptable character")

