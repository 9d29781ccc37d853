# Sourced by the project's scripts: where builds, data and artifacts live.
# One Cargo target directory outside the clone, kept across runs and fresh clones on the same
# machine (a cold native build is the slowest step of CI). Cargo decides freshness by mtime, so
# two checkouts edited at the same time must not share it: give a second working copy its own
# CARGO_TARGET_DIR.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/edgerec/target}"
# Raw and imported data (never committed), and the trained model, bundle and parity fixtures.
export EDGEREC_DATA="${EDGEREC_DATA:-$PWD/data}"
export EDGEREC_ARTIFACTS="${EDGEREC_ARTIFACTS:-$PWD/artifacts}"
# The trainer CLI as built by `cargo build -p edgerec-cli` (the one profile tests use too).
export EDGEREC_BIN="$CARGO_TARGET_DIR/debug/edgerec"
export PATH="$HOME/.cargo/bin:$PATH"
step() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
