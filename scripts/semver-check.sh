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
# Before 1.0, cargo-semver-checks treats 0.x -> 0.(x+1) as breaking-allowed;
# it still lists every break, which goes into CHANGELOG.md under "Breaking".
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
            check -p "$p" --baseline-root "$dir"
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
