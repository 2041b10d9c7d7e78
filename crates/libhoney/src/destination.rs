//! Where an event goes: API host, API key and dataset, checked once and shared.

use std::fmt;
use std::sync::Arc;

use crate::config::{check_api_host, mask_key, resolve_dataset};
use crate::error::SendError;

/// An (api_host, api_key, dataset) triple, shared by reference count between a
/// builder and every event it makes; its validity is worked out once when it is
/// built, not on every send.
#[derive(Clone)]
pub(crate) struct Destination(Arc<Inner>);

struct Inner {
    api_host: String,
    api_key: String,
    dataset: String,
    problem: Option<SendError>,
}

impl Destination {
    pub(crate) fn new(api_host: &str, api_key: &str, dataset: &str) -> Self {
        let dataset = resolve_dataset(api_key, dataset);
        let api_host = api_host.trim_end_matches('/').to_string();
        let problem = if api_host.is_empty() {
            Some(SendError::MissingApiHost)
        } else if let Err(reason) = check_api_host(&api_host) {
            Some(SendError::InvalidApiHost {
                host: crate::config::redact_userinfo(&api_host).into_owned(),
                reason,
            })
        } else if api_key.is_empty() {
            Some(SendError::MissingApiKey)
        } else if dataset.is_empty() {
            Some(SendError::MissingDataset)
        } else {
            None
        };
        Destination(Arc::new(Inner {
            api_host,
            api_key: api_key.to_string(),
            dataset,
            problem,
        }))
    }

    pub(crate) fn api_host(&self) -> &str {
        &self.0.api_host
    }
    pub(crate) fn api_key(&self) -> &str {
        &self.0.api_key
    }
    pub(crate) fn dataset(&self) -> &str {
        &self.0.dataset
    }
    pub(crate) fn problem(&self) -> Option<&SendError> {
        self.0.problem.as_ref()
    }

    pub(crate) fn with_api_host(&self, host: &str) -> Self {
        Destination::new(host, self.api_key(), self.dataset())
    }
    pub(crate) fn with_api_key(&self, key: &str) -> Self {
        Destination::new(self.api_host(), key, self.dataset())
    }
    pub(crate) fn with_dataset(&self, dataset: &str) -> Self {
        Destination::new(self.api_host(), self.api_key(), dataset)
    }

    /// Same destination? Pointer equality first, then by value.
    pub(crate) fn same(&self, other: &Destination) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
            || (self.0.dataset == other.0.dataset
                && self.0.api_key == other.0.api_key
                && self.0.api_host == other.0.api_host)
    }
}

impl PartialEq for Destination {
    fn eq(&self, other: &Self) -> bool {
        self.same(other)
    }
}
impl Eq for Destination {}

impl std::hash::Hash for Destination {
    fn hash<H: std::hash::Hasher>(&self, state: &mut H) {
        self.0.api_host.hash(state);
        self.0.api_key.hash(state);
        self.0.dataset.hash(state);
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field(
                "api_host",
                &crate::config::redact_userinfo(&self.0.api_host),
            )
            .field("api_key", &mask_key(&self.0.api_key))
            .field("dataset", &self.0.dataset)
            .finish()
    }
}

/// Percent-escapes a dataset name for one URL path segment: everything but
/// `A-Z a-z 0-9 - _ . ~` (so `/` becomes `%2F`, never a new path segment).
pub(crate) fn escape_path_segment(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push('%');
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789ABCDEF"[usize::from(b & 15)]));
        }
    }
    out
}

impl Destination {
    /// This destination's batch endpoint (for the HTTP transmissions).
    #[cfg_attr(not(any(feature = "http", feature = "tokio")), allow(dead_code))]
    pub(crate) fn batch_url(&self) -> String {
        batch_url(self.api_host(), self.dataset())
    }
}

/// The batch endpoint of a destination: `{api_host with its path}/1/batch/{dataset}`.
#[cfg_attr(not(any(feature = "http", feature = "tokio")), allow(dead_code))]
fn batch_url(api_host: &str, dataset: &str) -> String {
    format!(
        "{}/1/batch/{}",
        api_host.trim_end_matches('/'),
        escape_path_segment(dataset)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_matches_libhoney_go() {
        assert_eq!(escape_path_segment("foo/bar"), "foo%2Fbar");
        assert_eq!(escape_path_segment("foo(bar)"), "foo%28bar%29");
        assert_eq!(escape_path_segment("[x]{y}"), "%5Bx%5D%7By%7D");
        assert_eq!(escape_path_segment("my ds"), "my%20ds");
        assert_eq!(escape_path_segment("ok-_.~9"), "ok-_.~9");
        assert_eq!(escape_path_segment("é"), "%C3%A9");
    }

    #[test]
    fn urls_keep_the_host_path() {
        assert_eq!(
            batch_url("http://h/prefix/", "a/b"),
            "http://h/prefix/1/batch/a%2Fb"
        );
        assert_eq!(
            batch_url("https://api.honeycomb.io", "ds"),
            "https://api.honeycomb.io/1/batch/ds"
        );
    }

    #[test]
    fn problems_are_found_once() {
        let d = Destination::new("https://api.honeycomb.io/", "key", "ds");
        assert!(d.problem().is_none());
        assert_eq!(d.api_host(), "https://api.honeycomb.io");
        assert_eq!(
            Destination::new("", "k", "d").problem(),
            Some(&SendError::MissingApiHost)
        );
        assert!(matches!(
            Destination::new("nope", "k", "d").problem(),
            Some(SendError::InvalidApiHost { .. })
        ));
        assert_eq!(
            Destination::new("http://h", "", "d").problem(),
            Some(&SendError::MissingApiKey)
        );
        let classic = "c1a551c000d68f9ed1e96432ac1a3380";
        assert_eq!(
            Destination::new("http://h", classic, "").problem(),
            Some(&SendError::MissingDataset)
        );
        let env = Destination::new("http://h", "hcaik_envkey", "  ");
        assert!(env.problem().is_none());
        assert_eq!(env.dataset(), "unknown_dataset");
        assert!(
            format!("{env:?}").contains("XXXXXXXXkey")
                || !format!("{env:?}").contains("hcaik_envkey")
        );
    }
}
