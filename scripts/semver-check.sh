#!/usr/bin/env bash
# Semver check for the next release: compares the public API of each
# publishable crate in the working tree with a baseline and says whether the
# planned version bump covers the changes (cargo-semver-checks).
#
#   scripts/semver-check.sh                   # baseline: the packaged 0.1.0 crates (see below)
#   BASELINE=registry scripts/semver-check.sh # baseline: the versions on crates.io (after the first publish)
#   BASELINE=v0.1.0 scripts/semver-check.sh   # baseline: a git tag or commit
#
# The default baseline is the 0.1.0 release as packaged: the .crate files of
# `cargo package` run on the release commit (tag v0.1.0, or BASELINE_REV),
# unpacked, so it works before anything is on crates.io and checks exactly
# what was shipped. Needs cargo-semver-checks (`cargo install --locked
# cargo-semver-checks`; it builds gix and rustdoc-types, a few minutes) and
# network only for that install. Its rustdoc JSON needs the same toolchain
# for both sides; the script uses the installed one.
#
# Until 0.1.0 is on crates.io, the packaged libhoney-tracing and libhoney-tower
# name libhoney-sdk 0.1.0 from crates.io and cannot be built alone: for those
# the script compares with the release's git tree (the same sources) and says so.
#
# Exit status: 0 when no crate needs a bigger bump than its version has, 1
# otherwise (every crate is checked), 2 when the baseline is missing. Before
# 1.0, cargo-semver-checks treats 0.x -> 0.(x+1) as breaking-allowed; it still
# lists every break, which goes into CHANGELOG.md under "Breaking".
#
# Tried 2026-12-07 with cargo-semver-checks 0.51.0 against commit 0ca8c23
# (the first packageable one, standing in for the 0.1.0 tag): 25 s with the
# rustdoc of both sides cached, about 2 min 20 s without; libhoney-sdk: 4
# major checks fail (the get_* getters, the NotInitialized variants, encode_on
# hidden), all listed in CHANGELOG.md; the other three: no update required.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v cargo-semver-checks >/dev/null ||
    { echo "install it first: cargo install --locked cargo-semver-checks"; exit 2; }

packages=$(cargo metadata --format-version 1 --no-deps --offline | python3 -c '
import json, sys
print(" ".join(p["name"] for p in json.load(sys.stdin)["packages"] if p["publish"] != []))')
baseline=${BASELINE:-packaged}
work=$(mktemp -d)
status=0
# Every crate is checked even when one fails; the exit status says whether any did.
check() { cargo semver-checks check-release "$@" || status=1; }
trap 'git worktree remove --force "$work/tree" 2>/dev/null || true; rm -rf "$work"' EXIT

case $baseline in
registry)
    for p in $packages; do check -p "$p"; done ;;
packaged)
    rev=${BASELINE_REV:-v0.1.0}
    git rev-parse --verify --quiet "$rev^{commit}" >/dev/null ||
        { echo "no $rev: tag the 0.1.0 release commit, or set BASELINE_REV"; exit 2; }
    git worktree add --detach "$work/tree" "$rev" >/dev/null
    # shellcheck disable=SC2046
    if (cd "$work/tree" && CARGO_TARGET_DIR="$work/target" \
        cargo package --no-verify --allow-dirty $(printf -- '-p %s ' $packages) >"$work/package.log" 2>&1); then
        mkdir "$work/baseline"
        for c in "$work"/target/package/*.crate; do tar -xzf "$c" -C "$work/baseline"; done
        for p in $packages; do
            dir=$(ls -d "$work"/baseline/"$p"-[0-9]* 2>/dev/null | head -1)
            if [ -z "$dir" ]; then echo "$p: new since $rev, nothing to compare"; continue; fi
            if ! cargo semver-checks check-release -p "$p" --baseline-root "$dir" 2>&1 |
                tee "$work/$p.log"; then
                if grep -q "failed to update dependencies" "$work/$p.log"; then
                    # Its packaged manifest needs the other crates from
                    # crates.io, which they are not on before the first
                    # publish: compare with the release's git tree instead.
                    echo "$p: packaged $rev needs unpublished crates; comparing with the git tree of $rev"
                    check -p "$p" --baseline-rev "$rev"
                else
                    status=1
                fi
            fi
        done
    else
        # A commit from before the crates could be packaged (no version on
        # the path dependencies): compare with its source tree instead.
        tail -3 "$work/package.log"
        echo "$rev cannot be packaged; comparing with its git tree (--baseline-rev) instead"
        for p in $packages; do check -p "$p" --baseline-rev "$rev"; done
    fi ;;
*)
    for p in $packages; do check -p "$p" --baseline-rev "$baseline"; done ;;
esac
exit $status
