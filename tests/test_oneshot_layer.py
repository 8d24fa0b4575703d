"""The one-shot layer (nas_lab/oneshot): the layering around it holds, built-in supernets offer its contract, a
supernet that does not is named, and DARTS refuses a space whose supernet runs single paths only.

Whether a supernet's single paths equal its extracted models is tested per family (test_hyvitas_supernet.py,
test_vitas_supernet.py), with the tolerance each states.
"""

import ast
import contextlib
import io
from pathlib import Path

import numpy as np
import pytest
import torch

import nas_lab
from nas_lab.cli.main import main
from nas_lab.core.space import Decision, Space
from nas_lab.oneshot.contract import Supernet, check_supernet, runs_mixtures, supports_mixture
from nas_lab.oneshot.training import new_supernet
from nas_lab.spaces.hyvitas import HyViTasSpace
from nas_lab.spaces.poolvit import PoolViTSpace
from nas_lab.spaces.vitas import ViTASSpace

PACKAGE = Path(nas_lab.__file__).parent
#: DESIGN.md's layers, each importing only from layers above it; objectives and searchers never import each other
ORDER = ("core", "nn", "spaces", "data", "oneshot", "objectives", "searchers", "study", "cli")


def imported_layers(path: Path, source: str | None = None) -> set[str]:
    """The nas_lab layers module ``path`` (its text, or ``source``) imports from, anywhere in it (imports inside
    functions included)."""
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    names = []
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolved against the module's package
                base = ".".join(package[: len(package) - node.level + 1] + ([base] if base else []))
            names += [f"{base}.{alias.name}" for alias in node.names]  # `from nas_lab import searchers` too
    return {n.split(".")[1] for n in names if n.startswith("nas_lab.") and n.split(".")[1] in ORDER}


def modules(layer: str) -> list[Path]:
    return sorted((PACKAGE / layer).rglob("*.py"))


def forbidden(layer: str) -> set[str]:
    """Layers ``layer`` must not import: every layer below it in DESIGN.md's order, and objectives and searchers
    each other (they meet only through the one-shot layer above both)."""
    below = set(ORDER[ORDER.index(layer) + 1:])
    return below | ({"objectives", "searchers"} - {layer}) if layer in ("objectives", "searchers") else below


def test_the_import_scanner_sees_lazy_relative_and_package_imports():
    assert imported_layers(PACKAGE / "objectives" / "supernet.py") >= {"core", "oneshot"}
    assert "oneshot" in imported_layers(PACKAGE / "searchers" / "darts.py")  # imported inside methods only
    source = "import numpy\ndef f():\n    from ..searchers import spos\n    from nas_lab import study, core\n"
    assert imported_layers(PACKAGE / "objectives" / "fake.py", source) == {"searchers", "study", "core"}
    assert imported_layers(PACKAGE / "objectives" / "sub" / "fake.py", "from ...oneshot import x") == {"oneshot"}


def test_layering_holds():
    found = {layer: {p: imported_layers(p) for p in modules(layer)} for layer in ORDER}
    assert found["oneshot"] and found["objectives"] and found["searchers"]
    bad = [f"{path.relative_to(PACKAGE.parent)} imports nas_lab.{wrong}"
           for layer, imports in found.items() for path, layers in imports.items()
           for wrong in sorted(layers & forbidden(layer))]
    assert not bad, bad
    assert not (PACKAGE / "searchers" / "supernet_training.py").exists()  # moved to oneshot/training.py, no shim


@pytest.mark.parametrize("space, mixture", [(HyViTasSpace(), True), (ViTASSpace(setting="cpu", positions=2), False),
                                            (PoolViTSpace(cnn_blocks=1, vit_blocks=1), False)],
                         ids=["hyvitas", "vitas", "poolvit"])
def test_built_in_supernets_offer_the_contract(space, mixture):
    torch.manual_seed(0)
    net = space.supernet(num_classes=10)
    assert isinstance(net, Supernet) and isinstance(net, torch.nn.Module)
    assert check_supernet(net, space) is net and net.space == space and net.num_classes == 10
    assert runs_mixtures(net) is mixture and supports_mixture(space) is mixture
    state = torch.random.get_rng_state()
    supports_mixture(space)  # built on the meta device: no weights drawn
    assert torch.equal(state, torch.random.get_rng_state())
    arch = space.sample(np.random.default_rng(0), 1)[0]
    x = torch.rand(2, 3, 32, 32)
    assert net.recalibrate(arch, [x]) is net and net(x, arch).shape == (2, 10)
    assert type(net.extract(arch)) is type(space.build(arch, num_classes=10))


class Plain(Space):
    """A space whose 'supernet' is a bare linear layer: no arch argument, no extract, no recalibrate."""

    name = "plain"
    decisions = (Decision("width", (1, 2), "size"),)

    def supernet(self, num_classes: int = 10, **task):
        return torch.nn.Linear(3, num_classes)


def test_a_supernet_without_the_contract_is_named():
    with pytest.raises(TypeError, match=r"space 'plain': its supernet \(Linear\) does not offer the one-shot contract "
                                        r"of nas_lab.oneshot.contract.Supernet; missing: space, num_classes, extract, "
                                        r"recalibrate"):
        new_supernet(Plain(), 10, np.random.default_rng(0), torch.device("cpu"))


def test_darts_refuses_a_single_path_supernet_before_training():
    err = io.StringIO()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(["run", "space=vitas", "space.setting=cpu", "searcher=darts", "objective=supernet.id", "--no-save",
                     "--no-progress"])
    assert code == 2 and len(err.getvalue().strip().splitlines()) == 1, err.getvalue()
    assert ("searcher 'darts' needs a supernet that runs a mixture of every decision, but the supernet of space "
            "'vitas-setting=cpu' runs single paths only; use searcher=spos") in err.getvalue()
