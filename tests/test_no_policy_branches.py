"""One policy switch: only `damdp_lite/policies.py` (the factory) may tell the policy kinds apart.

Every other module of the package calls the `ChainPolicy` protocol, so a source that branches on
the kind -- `isinstance(x, GaussianPolicy)`, `type(cfg) is DiffusionConfig`, `kind == "gaussian"`,
`policy != "diffusion"`, `x in ("diffusion", ...)` -- is a second switch that a new policy kind
would have to find. Per-kind *data* (`policy_defaults`, run-name `labels`, argparse `choices`)
is not a branch and is allowed everywhere.

Allowed files: policies.py only. cli.py needs no exception: its alias and default handling
(`kind = implied.pop("policy", None)`, `kind or args.policy or "gaussian"`, "contradicts" when an
alias's implied kind differs from --policy) compares two kind *values*, never a kind literal,
so the checks below do not flag it.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "damdp_lite"
ALLOWED = {"policies.py"}
KINDS = {"diffusion", "gaussian"}
CLASSES = {"DiffusionPolicy", "GaussianPolicy", "DiffusionConfig", "GaussianConfig"}


def _names(node: ast.AST) -> set[str]:
    """Class names a node mentions (`GaussianPolicy`, `gaussian.GaussianPolicy`, tuples)."""
    out = set()
    for n in ast.walk(node):
        if isinstance(n, ast.Name):
            out.add(n.id)
        elif isinstance(n, ast.Attribute):
            out.add(n.attr)
    return out


def _kind_literals(node: ast.AST) -> set[str]:
    """The kind strings a comparison operand is or holds ("gaussian", ("diffusion", ...))."""
    consts = [node] if isinstance(node, ast.Constant) else (
        list(node.elts) if isinstance(node, ast.Tuple | ast.List | ast.Set) else [])
    return {c.value for c in consts if isinstance(c, ast.Constant) and c.value in KINDS}


def policy_branches(source: str) -> list[tuple[int, str]]:
    """(line, what) for each place in `source` that tells the policy kinds apart."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) \
                and node.func.id in ("isinstance", "issubclass") and len(node.args) == 2:
            hit = _names(node.args[1]) & CLASSES
            if hit:
                found.append((node.lineno, f"{node.func.id}(..., {sorted(hit)[0]})"))
        elif isinstance(node, ast.Compare):
            operands = [node.left, *node.comparators]
            literals = set().union(*(_kind_literals(o) for o in operands))
            classes = set().union(*(_names(o) for o in operands)) & CLASSES \
                if any(isinstance(op, ast.Is | ast.IsNot | ast.Eq | ast.NotEq)
                       for op in node.ops) else set()
            if literals:
                found.append((node.lineno, f"comparison with {sorted(literals)}"))
            elif classes:
                found.append((node.lineno, f"comparison with {sorted(classes)}"))
        elif isinstance(node, ast.MatchValue) and _kind_literals(node.value):
            found.append((node.lineno, f"match case {_kind_literals(node.value)}"))
    return sorted(found)


@pytest.mark.parametrize("snippet", [
    "if isinstance(policy, GaussianPolicy):\n    pass",
    "ok = isinstance(cfg, (DiffusionConfig, int))",
    "ok = issubclass(cls, gaussian.GaussianConfig)",
    "if type(cfg) is DiffusionConfig:\n    pass",
    "if kind == 'gaussian':\n    pass",
    "if 'diffusion' != config.policy:\n    pass",
    "K = cfg.num_steps if cfg.policy == 'diffusion' else 1",
    "if kind in ('diffusion', 'flow'):\n    pass",
    "match kind:\n    case 'gaussian':\n        pass",
])
def test_the_scan_finds_a_policy_branch(snippet):
    assert policy_branches(snippet), snippet


@pytest.mark.parametrize("snippet", [
    "labels = {'diffusion': 'diffppo', 'gaussian': 'ppo'}",
    "p.add_argument('--policy', choices=('diffusion', 'gaussian'))",
    "kind = kind or args.policy or 'gaussian'",
    "if kind is not None and args.policy not in (None, kind):\n    pass",
    "if kind not in POLICIES:\n    pass",
    "ok = isinstance(policy, ChainPolicy)",
])
def test_the_scan_allows_per_kind_data_and_the_protocol(snippet):
    assert policy_branches(snippet) == [], snippet


def test_only_the_policy_factory_branches_on_the_policy_kind():
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) > 20 and PACKAGE / "policies.py" in sources
    offences = [f"{path.relative_to(PACKAGE.parent)}:{line}: {what}"
                for path in sources if path.name not in ALLOWED or path.parent != PACKAGE
                for line, what in policy_branches(path.read_text())]
    assert offences == [], "branches on the policy kind outside policies.py:\n" + "\n".join(
        offences)
