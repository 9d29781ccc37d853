"""Reads wasm-pack.toml, the wasm build's one configuration, for scripts/build-wasm.sh and
scripts/build-tv.sh.

    python3 scripts/wasm-config.py        prints shell assignments (eval them)

Fails (exit 1, saying which key) when Cargo.toml's [package.metadata.wasm-pack] differs from
wasm-pack.toml's [wasm-pack] (what `wasm-pack build` reads must be what the build uses), or when
a key the build needs is missing.
"""
import json
import shlex
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def fail(message):
    print(f"wasm-pack.toml: {message}", file=sys.stderr)
    sys.exit(1)


def main():
    config = tomllib.loads((ROOT / "wasm-pack.toml").read_text())
    cargo = tomllib.loads((ROOT / "Cargo.toml").read_text())
    mirrored = cargo.get("package", {}).get("metadata", {}).get("wasm-pack")
    if mirrored != config.get("wasm-pack"):
        fail(
            "[wasm-pack] and Cargo.toml's [package.metadata.wasm-pack] differ "
            f"({config.get('wasm-pack')} vs {mirrored}): wasm-pack build reads the latter"
        )
    try:
        build = config["build"]
        flavours = config["flavours"]
        opt = config["wasm-opt"]
        out = {
            "crate": build["crate"],
            "profile": build["profile"],
            "simd_rustflags": " ".join(flavours["simd"]["rustflags"]),
            "baseline_rustflags": " ".join(flavours["baseline"]["rustflags"]),
            "baseline_target_dir": flavours["baseline"]["target-dir"],
            "simd_file": flavours["simd"]["file"],
            "baseline_file": flavours["baseline"]["file"],
            "tv_crate": config["plain-abi"]["crate"],
            "tv_out": config["plain-abi"]["out"],
            "tv_target_dir": config["plain-abi"]["target-dir"],
            "tv_rustflags": " ".join(config["plain-abi"]["rustflags"]),
        }
        arrays = {
            "targets": list(build["targets"]),
            "simd_targets": flavours["simd"]["targets"],
            "baseline_targets": flavours["baseline"]["targets"],
            "wasm_opt_args": opt["args"],
            "features": opt["features"],
            "baseline_opt": opt["baseline"],
        }
        dirs = build["targets"]
        budgets = {f["file"]: {"gzipBytes": f["gzip-budget"]} for f in flavours.values()}
        budgets[Path(out["tv_out"]).name] = {"gzipBytes": config["plain-abi"]["gzip-budget"]}
    except KeyError as e:
        fail(f"missing key {e}")
    for flavour in ("simd", "baseline"):
        if "web" not in flavours[flavour]["targets"]:
            fail(f"flavour {flavour} must list the web target: the package ships each module there, once")
    for name in arrays["simd_targets"] + arrays["baseline_targets"]:
        if name not in dirs:
            fail(f"flavour target {name} is not in [build] targets")
    lines = [f"{k}={shlex.quote(v)}" for k, v in out.items()]
    lines += [f"{k}=({' '.join(shlex.quote(x) for x in v)})" for k, v in arrays.items()]
    lines += [f"declare -A target_dirs=({' '.join(f'[{k}]={shlex.quote(v)}' for k, v in dirs.items())})"]
    lines.append(f"budgets={shlex.quote(json.dumps(budgets))}")
    print("\n".join(lines))


main()
