//! Name resolution for the [`Http`](super::threads::Http) transmission's HTTP client.
//!
//! ureq resolves the API host before every request, even when it then reuses
//! a pooled connection, and whenever a timeout applies (ours always does: the
//! `request_timeout`) it resolves on a new thread so that it can give up in
//! time. Left alone, that is one thread started and joined per batch (2,000
//! per million events at the default batch size, measured with `strace -f`),
//! and for a host name one DNS lookup per batch.
//!
//! [`Resolver`] avoids both: an IP address in the URL needs no lookup at all,
//! and a host name's addresses are kept for [`TTL`], and forgotten at once
//! when a request fails at the transport level, so that a moved host is
//! looked up again on the retry. A lookup itself is ureq's own, with its
//! timeout.

use crate::sync::LockExt;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ureq::config::Config;
use ureq::http::Uri;
use ureq::unversioned::resolver::{DefaultResolver, ResolvedSocketAddrs};
use ureq::unversioned::transport::NextTimeout;

/// How long a host name's addresses are used before they are looked up again.
/// Connections already open are kept whatever the addresses (as Go's and
/// Python's HTTP clients do); this only decides where new connections go.
pub(crate) const TTL: Duration = Duration::from_secs(30);

/// How many host names it remembers (a client talks to one API host, or a
/// few with per-event hosts); past that, the oldest entry makes room.
const MAX_HOSTS: usize = 8;

/// ureq's resolver, without a lookup for IP addresses and with a short cache
/// for host names. Cheap to clone; clones share the cache.
#[derive(Clone, Debug, Default)]
pub(crate) struct Resolver {
    inner: Arc<Inner>,
}

#[derive(Debug, Default)]
struct Inner {
    lookup: DefaultResolver,
    /// `(host:port, when looked up, addresses)`.
    cache: Mutex<Vec<(String, Instant, ResolvedSocketAddrs)>>,
}

impl Resolver {
    /// Forgets every cached host name (after a transport failure: the next
    /// attempt looks the name up again).
    pub(crate) fn forget(&self) {
        self.cache().clear();
    }

    fn cache(&self) -> std::sync::MutexGuard<'_, Vec<(String, Instant, ResolvedSocketAddrs)>> {
        self.inner.cache.lock_unpoisoned()
    }
}

/// The address of a URL whose host is an IP address (`127.0.0.1`, `[::1]`).
fn ip_literal(uri: &Uri) -> Option<SocketAddr> {
    let authority = uri.authority()?;
    let host = authority.host();
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let ip: IpAddr = host.parse().ok()?;
    let port = authority
        .port_u16()
        .unwrap_or(if uri.scheme_str() == Some("https") {
            443
        } else {
            80
        });
    Some(SocketAddr::new(ip, port))
}

impl ureq::unversioned::resolver::Resolver for Resolver {
    fn resolve(
        &self,
        uri: &Uri,
        config: &Config,
        timeout: NextTimeout,
    ) -> Result<ResolvedSocketAddrs, ureq::Error> {
        if let Some(addr) = ip_literal(uri) {
            let mut out = self.empty();
            for a in config.ip_family().keep_wanted(std::iter::once(addr)) {
                out.push(a);
            }
            return if out.is_empty() {
                Err(ureq::Error::HostNotFound)
            } else {
                Ok(out)
            };
        }
        let Some(authority) = uri.authority() else {
            return self.inner.lookup.resolve(uri, config, timeout);
        };
        let key = authority.as_str();
        let now = Instant::now();
        {
            let mut cache = self.cache();
            cache.retain(|(_, at, _)| now.saturating_duration_since(*at) < TTL);
            if let Some((_, _, addrs)) = cache.iter().find(|(k, _, _)| k == key) {
                return Ok(addrs.clone());
            }
        }
        // Looked up outside the lock: a slow lookup holds up no other host.
        let addrs = self.inner.lookup.resolve(uri, config, timeout)?;
        let mut cache = self.cache();
        if cache.len() >= MAX_HOSTS {
            cache.remove(0);
        }
        cache.push((key.to_string(), now, addrs.clone()));
        Ok(addrs)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use ureq::unversioned::resolver::Resolver as _;

    fn resolve(r: &Resolver, url: &str) -> Result<Vec<SocketAddr>, ureq::Error> {
        let uri: Uri = url.parse().unwrap();
        let config = Config::default();
        let timeout = NextTimeout {
            after: ureq::unversioned::transport::time::Duration::Exact(Duration::from_secs(5)),
            reason: ureq::Timeout::Resolve,
            ..NextTimeout::default()
        };
        r.resolve(&uri, &config, timeout).map(|a| a.to_vec())
    }

    #[test]
    fn ip_addresses_need_no_lookup() {
        let r = Resolver::default();
        assert_eq!(
            resolve(&r, "http://127.0.0.1:8080/1/batch/d").unwrap(),
            vec!["127.0.0.1:8080".parse().unwrap()]
        );
        assert_eq!(
            resolve(&r, "https://[::1]/x").unwrap(),
            vec!["[::1]:443".parse().unwrap()]
        );
        assert_eq!(
            resolve(&r, "http://10.1.2.3/x").unwrap(),
            vec!["10.1.2.3:80".parse().unwrap()]
        );
        assert!(r.cache().is_empty(), "addresses are not cached");
    }

    #[test]
    fn host_names_are_looked_up_once_then_cached_until_forgotten() {
        let r = Resolver::default();
        let first = resolve(&r, "http://localhost:9/x").unwrap();
        assert!(!first.is_empty());
        assert!(first.iter().all(|a| a.ip().is_loopback() && a.port() == 9));
        assert_eq!(r.cache().len(), 1);
        // Served from the cache: the same addresses, still one entry.
        assert_eq!(resolve(&r, "http://localhost:9/other").unwrap(), first);
        assert_eq!(r.cache().len(), 1);
        // Another port is another entry.
        resolve(&r, "http://localhost:10/x").unwrap();
        assert_eq!(r.cache().len(), 2);
        r.forget();
        assert!(r.cache().is_empty());
    }

    #[test]
    fn expired_entries_are_looked_up_again() {
        let r = Resolver::default();
        resolve(&r, "http://localhost:9/x").unwrap();
        // Age the entry past the TTL.
        r.cache()[0].1 = Instant::now() - TTL - Duration::from_secs(1);
        resolve(&r, "http://localhost:9/x").unwrap();
        let cache = r.cache();
        assert_eq!(cache.len(), 1);
        assert!(cache[0].1.elapsed() < TTL, "the entry was refreshed");
    }

    #[test]
    fn the_cache_is_bounded() {
        let r = Resolver::default();
        for port in 0..(MAX_HOSTS as u16 + 3) {
            resolve(&r, &format!("http://localhost:{}/x", 1000 + port)).unwrap();
        }
        let cache = r.cache();
        assert_eq!(cache.len(), MAX_HOSTS);
        assert_eq!(
            cache.last().unwrap().0,
            format!("localhost:{}", 1000 + MAX_HOSTS as u16 + 2)
        );
    }
}
