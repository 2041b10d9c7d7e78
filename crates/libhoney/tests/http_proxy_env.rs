//! The default HTTP transmission takes its proxy from the environment (through
//! ureq) when `proxy_from_env` is on. The environment is the process's: this
//! file holds one test.

mod http_support;

use http_support::{block_on, proxy, Kind};

#[test]
fn proxy_settings_come_from_the_environment() {
    block_on(proxy::proxy_settings_come_from_the_environment(Kind::Http));
}
