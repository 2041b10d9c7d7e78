//! With `proxy_from_env` (the default), the tokio transmission reads
//! `HTTP_PROXY`/`HTTPS_PROXY`/`ALL_PROXY` and `NO_PROXY` when it starts.
//! The environment is the process's: this test runs alone in a child process
//! (`own_process`, see `main.rs`), so it sets it before anything else reads it.
use crate::http_support;

use http_support::{proxy, Kind};

#[test]
fn proxy_settings_come_from_the_environment() {
    if !crate::own_process::alone(module_path!(), "proxy_settings_come_from_the_environment") {
        return;
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(proxy::proxy_settings_come_from_the_environment(Kind::Tokio));
}
