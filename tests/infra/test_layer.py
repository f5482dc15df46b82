"""The Lambda layer as `sam build` makes it (`layer/build.sh`, packages from the registry): it must import on the
runtime and architecture template.yaml names, whatever Python and machine build it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

from devstack import ROOT


def test_the_layers_compiled_packages_are_built_for_the_templates_runtime(tmp_path: Path) -> None:
    template = (ROOT / "template.yaml").read_text()
    runtime = re.search(r"^ *Runtime: python(\d+)\.(\d+) *$", template, re.MULTILINE)
    architecture = re.search(r"^ *BuildArchitecture: *(\w+) *$", template, re.MULTILINE)
    assert runtime and architecture
    subprocess.run([str(ROOT / "layer" / "build.sh"), str(tmp_path)], check=True, capture_output=True)

    extensions = sorted(p.name for p in (tmp_path / "python").rglob("*.so"))
    # pydantic-core, confluent-kafka, pybase64 and msgspec are compiled: a layer without them would not import.
    compiled = {(p.parent.name, p.name.split(".")[0]) for p in (tmp_path / "python").rglob("*.so")}
    assert compiled >= {
        ("pydantic_core", "_pydantic_core"),
        ("confluent_kafka", "cimpl"),
        ("pybase64", "_pybase64"),
        ("msgspec", "_core"),
    }
    machine = {"x86_64": "x86_64", "arm64": "aarch64"}[architecture.group(1)]
    wanted = f".cpython-{runtime.group(1)}{runtime.group(2)}-{machine}-linux-gnu.so"
    assert [name for name in extensions if not name.endswith((wanted, ".abi3.so"))] == []
