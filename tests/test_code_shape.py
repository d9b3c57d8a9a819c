"""The package stays readable (issue 24): no module above 700 lines, no function above 80, and every encoder head
makes its one encoder call with the inputs passed through `**kwargs`."""

import ast
from pathlib import Path

PACKAGE_DIR = Path(__file__).resolve().parents[1] / "src" / "sora_hf"
MAX_MODULE_LINES = 700
MAX_FUNCTION_LINES = 80
HEAD_MODULES = ("modeling_sora_heads.py", "modeling_sora_pretraining.py")


def modules() -> list[Path]:
    return sorted(PACKAGE_DIR.rglob("*.py"))


def test_no_module_is_longer_than_700_lines():
    long = {
        str(path.relative_to(PACKAGE_DIR)): n
        for path in modules()
        if (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_MODULE_LINES
    }
    assert not long, f"split these modules by concept: {long}"


def test_no_function_is_longer_than_80_lines():
    long = {}
    for path in modules():
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                length = node.end_lineno - node.lineno + 1
                if length > MAX_FUNCTION_LINES:
                    long[f"{path.relative_to(PACKAGE_DIR)}:{node.lineno} {node.name}"] = length
    assert not long, f"split these functions into named steps: {long}"


def test_each_head_calls_the_encoder_once_passing_kwargs_through():
    for name in HEAD_MODULES:
        tree = ast.parse((PACKAGE_DIR / name).read_text(encoding="utf-8"))
        for cls in (
            node for node in tree.body if isinstance(node, ast.ClassDef) and node.name.startswith("SoraFor")
        ):
            forward = next(
                (f for f in cls.body if isinstance(f, ast.FunctionDef) and f.name == "forward"), None
            )
            if forward is None:
                continue
            calls = [
                node
                for node in ast.walk(forward)
                if isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "encoder"
            ]
            assert len(calls) == 1, f"{cls.name}.forward calls the encoder {len(calls)} times"
            assert any(keyword.arg is None for keyword in calls[0].keywords), f"{cls.name}: no **kwargs"
            assert len(calls[0].args) + len(calls[0].keywords) <= 5, f"{cls.name}: spell fewer encoder inputs"
