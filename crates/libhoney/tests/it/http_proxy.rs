//! `Config::proxy` routes the default HTTP transmission through an HTTP proxy.
//! ureq 3 tunnels every request (also to `http://` targets) with `CONNECT`,
//! so the test proxy (`http_support::proxy`) speaks `CONNECT` only, checks
//! the basic `Proxy-Authorization`, and relays bytes to the receiver. The
//! tests are shared with the tokio transmission (`tokio_proxy`), as
//! are those of HTTPS with `Config::tls_root_certificates_pem`
//! (`http_support::tls`).

use crate::http_support;

use http_support::proxy::{self, base64};
use http_support::tls;

#[test]
fn base64_matches_known_values() {
    assert_eq!(base64(b"user:pass"), "dXNlcjpwYXNz");
    assert_eq!(base64(b"ab"), "YWI=");
    assert_eq!(base64(b"a"), "YQ==");
}

http_test!(proxy::events_go_through_the_proxy_with_basic_credentials);
http_test!(proxy::percent_encoded_credentials_are_decoded_once);
http_test!(proxy::wrong_proxy_credentials_fail_as_transport_errors);
http_test!(proxy::the_proxy_is_not_used_without_config_proxy);
http_test!(tls::https_with_configured_roots_delivers);
http_test!(tls::https_without_the_root_is_refused);
http_test!(tls::https_with_configured_roots_through_a_proxy_delivers);

#[test]
fn tls_roots_are_checked_when_the_client_is_built() {
    tls::roots_are_checked_when_the_client_is_built();
}
