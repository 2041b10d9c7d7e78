# Sourced by the .ci scripts that need it; not run on its own.

# The project's MSRV: the SDK's rust-version (the README and clippy.toml say
# the same; `.ci/msrv` checks that). A crate may declare a newer one of its
# own (libhoney-tower: its `tonic` feature).
sdk_rust_version() {
    cargo metadata --format-version 1 --no-deps --offline |
        python3 -c 'import json,sys; print(next(p["rust_version"] for p in json.load(sys.stdin)["packages"] if p["name"] == "libhoney-sdk"))'
}
