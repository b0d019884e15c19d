#!/usr/bin/env bash
# Builds yiwang and runs the whole test suite: unit tests, openraft's storage
# conformance suite, and integration tests that start the real `yiwang` binary on
# loopback and speak HTTPS with client certificates.
#
# Fails loudly, never skips: a missing tool is an error with the command to fix it.
# Honours CARGO_TARGET_DIR (CI keeps it outside the clone to reuse builds).
set -euo pipefail
cd "$(dirname "$0")/.."

say() { printf '\n=== %s\n' "$*" >&2; }
die() { printf 'ops/test.sh: %s\n' "$*" >&2; exit 1; }

command -v cargo >/dev/null || die "cargo is not installed (https://rustup.rs)"

say "toolchain: $(cargo --version)"

say "formatting (cargo fmt --check)"
cargo fmt --all -- --check || die "code is not formatted: run 'cargo fmt --all'"

say "build (workspace, all targets)"
cargo build --workspace --all-targets --locked

say "lints (cargo clippy -D warnings)"
cargo clippy --workspace --all-targets --locked -- -D warnings

# Only one crypto provider may exist: rustls panics when two are compiled in.
if cargo tree --workspace -i aws-lc-rs >/dev/null 2>&1; then
    die "aws-lc-rs is in the dependency tree; rustls must use ring only"
fi

# The disk-full audit test mounts a small tmpfs in a private user + mount namespace.
unshare --user --map-root-user --mount true 2>/dev/null \
    || die "unshare cannot create a user namespace (util-linux 'unshare', and kernel.unprivileged_userns_clone=1 or root); the disk-full audit test needs it"

# The policy matrix test moves a node's clock forward with libfaketime.
if ! command -v faketime >/dev/null; then
    command -v apt-get >/dev/null || die "faketime is missing and apt-get is not available: install libfaketime's faketime"
    echo "installing faketime (Debian package)" >&2
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q faketime >/tmp/test-faketime-apt.log 2>&1 \
        || { DEBIAN_FRONTEND=noninteractive apt-get update -q >>/tmp/test-faketime-apt.log 2>&1 || true
             DEBIAN_FRONTEND=noninteractive apt-get install -y -q faketime >>/tmp/test-faketime-apt.log 2>&1; } \
        || { tail -20 /tmp/test-faketime-apt.log >&2; die "cannot install faketime"; }
fi
faketime -f +2d true || die "faketime does not work here"

command -v python3 >/dev/null || die "python3 is required (apt-get install python3 python3-venv)"

# The discovery tests drive the real ckanapi client and parse the DCAT-AP export with
# rdflib, and the API test runs schemathesis against a live node: all from PyPI, in a
# venv kept outside the clone.
say "Python test packages (ckanapi, rdflib, schemathesis) in a venv"
venv=${YIWANG_TEST_VENV:-$HOME/.cache/yiwang-test-venv}
packages=('ckanapi==4.11' 'rdflib==7.6.0' 'schemathesis==4.32.5')
have_packages() {
    "$venv/bin/python" -c 'import ckanapi, rdflib' 2>/dev/null \
        && [ "$("$venv/bin/schemathesis" --version 2>/dev/null)" = "schemathesis, version 4.32.5" ]
}
if ! have_packages; then
    if ! python3 -m venv --help >/dev/null 2>&1 || ! python3 -c 'import ensurepip' 2>/dev/null; then
        command -v apt-get >/dev/null || die "python3 venv support is missing and apt-get is not available: install python3-venv"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv >/tmp/test-venv-apt.log 2>&1 \
            || { tail -20 /tmp/test-venv-apt.log >&2; die "cannot install python3-venv"; }
    fi
    [ -x "$venv/bin/pip" ] || python3 -m venv "$venv" || die "cannot create the venv $venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "${packages[@]}" \
        || die "cannot install ${packages[*]} from PyPI into $venv"
fi
have_packages || die "the venv $venv lacks one of ${packages[*]}"
export YIWANG_TEST_PYTHON="$venv/bin/python"
export YIWANG_TEST_SCHEMATHESIS="$venv/bin/schemathesis"
echo "Python: $YIWANG_TEST_PYTHON, schemathesis: $YIWANG_TEST_SCHEMATHESIS" >&2

say "test databases (PostgreSQL, MariaDB) in a throwaway directory"
dbdir=$(mktemp -d "${TMPDIR:-/tmp}/yiwang-testdb.XXXXXX")
cleanup() { ops/testdb.sh stop "$dbdir" || true; rm -rf "$dbdir"; }
trap cleanup EXIT
ops/testdb.sh start "$dbdir" >/dev/null || die "cannot start the test databases (see above)"
# shellcheck disable=SC1091
. "$dbdir/env"
[ -n "${YIWANG_TEST_PG_URL:-}" ] && [ -n "${YIWANG_TEST_MYSQL_URL:-}" ] || die "test database URLs missing"
echo "PostgreSQL: $YIWANG_TEST_PG_URL" >&2
echo "MariaDB:    ${YIWANG_TEST_MYSQL_URL/:yiwang-test@/:***@}" >&2

say "tests"
if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --locked --no-fail-fast
    # nextest does not run doctests.
    cargo test --workspace --locked --doc
else
    echo "cargo-nextest not found; using cargo test" >&2
    cargo test --workspace --locked --no-fail-fast
fi

say "evaluation tool unit tests (ops/eval, no server or data needed)"
python3 -m unittest discover -s ops/eval -p 'test_*.py' || die "ops/eval unit tests failed"

say "all tests passed"
