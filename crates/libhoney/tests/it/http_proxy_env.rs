//! The default HTTP transmission takes its proxy from the environment (through
//! ureq) when `proxy_from_env` is on. The environment is the process's: this
//! test runs alone in a child process (`own_process`, see `main.rs`).

use crate::http_support;

use http_support::{block_on, proxy, Kind};

#[test]
fn proxy_settings_come_from_the_environment() {
    if !crate::own_process::alone(module_path!(), "proxy_settings_come_from_the_environment") {
        return;
    }
    block_on(proxy::proxy_settings_come_from_the_environment(Kind::Http));
}
