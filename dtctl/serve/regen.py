"""Regenerate the Python stubs of the vendored ``orchestrator_service.proto``.

``python -m dtctl.serve.regen`` rewrites ``dtctl/serve/proto/*_pb2*.py(i)`` with ``grpcio-tools``;
``--check`` writes nothing and exits 1 when the committed stubs differ from what it would generate
(the test suite runs the check). The stubs are committed so that installing ``dtctl[serve]`` needs no
compiler.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

PROTO_DIR = Path(__file__).resolve().parent / "proto"
PROTO_NAME = "orchestrator_service.proto"
# The import path the stubs are generated under: they import each other as dtctl.serve.proto.*.
PROTO_REL = Path("dtctl") / "serve" / "proto" / PROTO_NAME
GENERATED = (
    "orchestrator_service_pb2.py",
    "orchestrator_service_pb2.pyi",
    "orchestrator_service_pb2_grpc.py",
)


# The stubs are compiled under a protobuf package of their own, so that they and the SDK's stubs (the same
# messages, without a package) can be loaded in one process without clashing in the default descriptor
# pool. Package names never travel on the wire; the gRPC service keeps its upstream name, restored below.
PACKAGE = "dtctl_serve"
SERVICE = "TaskHubSidecarService"


def generate(out_root: Path) -> dict[str, bytes]:
    """Run protoc on the vendored file; returns the generated files by name."""
    source_root = out_root / "src"
    packaged = source_root / PROTO_REL
    packaged.parent.mkdir(parents=True)
    text = (PROTO_DIR / PROTO_NAME).read_text(encoding="utf-8")
    packaged.write_text(text.replace('syntax = "proto3";', f'syntax = "proto3";\npackage {PACKAGE};', 1))
    files = _protoc(source_root, out_root)
    grpc_name = "orchestrator_service_pb2_grpc.py"
    restored = files[grpc_name].decode().replace(f"{PACKAGE}.{SERVICE}", SERVICE)
    files[grpc_name] = restored.encode()
    return files


def _protoc(source_root: Path, out_root: Path) -> dict[str, bytes]:
    try:
        from grpc_tools import protoc
    except ImportError:
        raise SystemExit("regenerating the stubs needs grpcio-tools: pip install grpcio-tools") from None
    include = Path(protoc.__file__).resolve().parent / "_proto"
    args = [
        "protoc",
        f"-I{source_root}",
        f"-I{include}",
        f"--python_out={out_root}",
        f"--pyi_out={out_root}",
        f"--grpc_python_out={out_root}",
        str(PROTO_REL),
    ]
    code = protoc.main(args)
    if code != 0:
        raise SystemExit(f"protoc failed with exit code {code}")
    out_dir = out_root / PROTO_REL.parent
    return {name: (out_dir / name).read_bytes() for name in GENERATED}


def differences() -> list[str]:
    """Generated files whose committed copy differs (or is missing)."""
    with tempfile.TemporaryDirectory() as tmp:
        fresh = generate(Path(tmp))
    return [
        name
        for name, content in fresh.items()
        if not (PROTO_DIR / name).exists() or (PROTO_DIR / name).read_bytes() != content
    ]


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if args == ["--check"]:
        stale = differences()
        if stale:
            sys.stderr.write(f"stale generated stubs: {', '.join(stale)}; run python -m dtctl.serve.regen\n")
            return 1
        return 0
    if args:
        sys.stderr.write("usage: python -m dtctl.serve.regen [--check]\n")
        return 2
    with tempfile.TemporaryDirectory() as tmp:
        for name, content in generate(Path(tmp)).items():
            (PROTO_DIR / name).write_bytes(content)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
