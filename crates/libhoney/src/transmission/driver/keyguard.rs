//! Keeps API keys out of the HTTP client's TRACE log.
//!
//! `ureq_proto` (the protocol half of ureq) logs every request it writes as
//! a hex dump at TRACE (`ureq_proto::util`, 16 bytes a line, hex and text),
//! headers included: with a logger at TRACE for all targets, the
//! `X-Honeycomb-Team` header, and so the API key, could be read back from
//! the log (issue #14). The crate has no feature to turn this off, and the
//! dump is written before any transport sees the bytes, over HTTP and
//! HTTPS alike.
//!
//! So the default transmission never hands ureq the key. It puts a
//! stand-in in the header ([`KeyGuard::stand_in`]: `libhoney-key-ref-N-`
//! padded with `x` to at least the key's length, which says nothing about
//! the key), and [`GuardConnector`], the last connector of the agent's
//! chain (above TLS), swaps the key in for the stand-in in the request head
//! just before the bytes go to TLS or the socket, after ureq has logged
//! them. Since a stand-in is never shorter than its key, the swap never
//! needs more room than ureq's output buffer holds.
//!
//! Bounds: up to [`MAX_KEYS`] distinct keys get stand-ins (one small
//! allocation each, for the life of the transmission); later keys are sent
//! as they are, and can then appear in ureq's TRACE dump.

use std::collections::HashMap;
use std::fmt;
use std::sync::{Arc, Mutex};

use ureq::unversioned::transport::{Buffers, ConnectionDetails, Connector, NextTimeout, Transport};

use crate::sync::LockExt;

/// The start of every stand-in.
const PREFIX: &[u8] = b"libhoney-key-ref-";
/// Most distinct keys given stand-ins.
pub(crate) const MAX_KEYS: usize = 4096;

#[derive(Default)]
struct Registry {
    by_key: HashMap<String, usize>,
    /// `(stand-in, key)` by number.
    refs: Vec<(String, String)>,
}

/// The keys in use and their stand-ins, shared by the transmission (which
/// writes stand-ins) and its connections (which swap keys in).
#[derive(Clone, Default)]
pub(crate) struct KeyGuard(Arc<Mutex<Registry>>);

impl fmt::Debug for KeyGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("KeyGuard")
    }
}

impl KeyGuard {
    /// What to put in the `X-Honeycomb-Team` header instead of `key`
    /// (`key` itself past [`MAX_KEYS`] distinct keys). Takes a lock; the
    /// first time a key is seen, allocates its stand-in.
    pub(crate) fn stand_in(&self, key: &str) -> String {
        let mut r = self.0.lock_unpoisoned();
        if let Some(&i) = r.by_key.get(key) {
            return r.refs[i].0.clone();
        }
        if r.refs.len() >= MAX_KEYS {
            return key.to_owned();
        }
        let i = r.refs.len();
        let mut s = format!("{}{i}-", String::from_utf8_lossy(PREFIX));
        while s.len() < key.len() {
            s.push('x');
        }
        r.by_key.insert(key.to_owned(), i);
        r.refs.push((s.clone(), key.to_owned()));
        s
    }

    /// Swaps keys in for the stand-ins in the request head at the start of
    /// `out[..amount]`; returns the new amount (never larger).
    fn swap_in(&self, out: &mut [u8], amount: usize) -> usize {
        let mut amount = amount.min(out.len());
        // Only a write that starts a request head (a method, then a space):
        // the bytes of a body are not scanned (that cost 2 % of a saturated
        // client's CPU).
        let method = out[..amount.min(8)]
            .iter()
            .take_while(|b| b.is_ascii_uppercase())
            .count();
        if method == 0 || out.get(method) != Some(&b' ') || method >= amount {
            return amount;
        }
        // Only the head: up to its blank line, or all of it if the head
        // spans several writes (a stand-in cut in two is left alone, and
        // then refused by the API as a wrong key: never leaked).
        let head_end = find(&out[..amount], b"\r\n\r\n").unwrap_or(amount);
        let mut from = 0;
        while let Some(at) = find(&out[from..head_end.min(amount)], PREFIX).map(|i| i + from) {
            let end = out[at..amount]
                .iter()
                .position(|&b| b == b'\r' || b == b'\n')
                .map_or(amount, |i| at + i);
            let Ok(stand_in) = std::str::from_utf8(&out[at..end]) else {
                from = at + PREFIX.len();
                continue;
            };
            let key = {
                let r = self.0.lock_unpoisoned();
                stand_in
                    .get(PREFIX.len()..)
                    .and_then(|rest| rest.split('-').next())
                    .and_then(|n| n.parse::<usize>().ok())
                    .and_then(|i| r.refs.get(i))
                    .filter(|(s, _)| s == stand_in)
                    .map(|(_, k)| k.clone())
            };
            let Some(key) = key else {
                from = at + PREFIX.len();
                continue;
            };
            let (k, s) = (key.len(), end - at);
            out[at..at + k].copy_from_slice(key.as_bytes());
            out.copy_within(end..amount, at + k);
            amount -= s - k;
            from = at + k;
        }
        amount
    }
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

/// The last connector of the agent's chain: wraps each connection so that
/// keys are swapped in as the request leaves (see the module docs).
#[derive(Debug)]
pub(crate) struct GuardConnector(pub(crate) KeyGuard);

impl Connector<Box<dyn Transport>> for GuardConnector {
    type Out = Box<dyn Transport>;

    fn connect(
        &self,
        _details: &ConnectionDetails,
        chained: Option<Box<dyn Transport>>,
    ) -> Result<Option<Self::Out>, ureq::Error> {
        Ok(chained.map(|inner| {
            Box::new(Guarded {
                inner,
                guard: self.0.clone(),
            }) as Box<dyn Transport>
        }))
    }
}

#[derive(Debug)]
struct Guarded {
    inner: Box<dyn Transport>,
    guard: KeyGuard,
}

impl Transport for Guarded {
    fn buffers(&mut self) -> &mut dyn Buffers {
        self.inner.buffers()
    }

    fn transmit_output(&mut self, amount: usize, timeout: NextTimeout) -> Result<(), ureq::Error> {
        let amount = self.guard.swap_in(self.inner.buffers().output(), amount);
        self.inner.transmit_output(amount, timeout)
    }

    fn maybe_await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.inner.maybe_await_input(timeout)
    }

    fn await_input(&mut self, timeout: NextTimeout) -> Result<bool, ureq::Error> {
        self.inner.await_input(timeout)
    }

    fn is_open(&mut self) -> bool {
        self.inner.is_open()
    }

    fn is_tls(&self) -> bool {
        self.inner.is_tls()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stand_ins_are_swapped_back_in_the_head_only() {
        let g = KeyGuard::default();
        let key = "hcaik_0123456789abcdef0123456789abcdef";
        let s = g.stand_in(key);
        assert!(s.len() >= key.len() && !s.contains("0123456789abcdef"));
        assert_eq!(g.stand_in(key), s, "stable");
        let short = g.stand_in("k");
        assert_ne!(short, s);
        let head =
            format!("POST /1/batch/d HTTP/1.1\r\nx-honeycomb-team: {s}\r\nhost: h\r\n\r\nbody {s}");
        let mut buf = head.clone().into_bytes();
        buf.extend_from_slice(&[0; 64]);
        let n = g.swap_in(&mut buf, head.len());
        let want = format!(
            "POST /1/batch/d HTTP/1.1\r\nx-honeycomb-team: {key}\r\nhost: h\r\n\r\nbody {s}"
        );
        assert_eq!(std::str::from_utf8(&buf[..n]).unwrap(), want);
        // The short key's longer stand-in shrinks the head.
        let head = format!("GET / HTTP/1.1\r\nx-honeycomb-team: {short}\r\n\r\n");
        let mut buf = head.clone().into_bytes();
        let n = g.swap_in(&mut buf, head.len());
        assert_eq!(
            std::str::from_utf8(&buf[..n]).unwrap(),
            "GET / HTTP/1.1\r\nx-honeycomb-team: k\r\n\r\n"
        );
        // Unknown or forged stand-ins are left alone.
        let forged =
            "GET / HTTP/1.1\r\nx: libhoney-key-ref-0-forged\r\nx: libhoney-key-ref-99-\r\n\r\n";
        let mut buf = forged.as_bytes().to_vec();
        assert_eq!(g.swap_in(&mut buf, forged.len()), forged.len());
        assert_eq!(buf, forged.as_bytes());
    }

    #[test]
    fn keys_past_the_bound_are_sent_as_they_are() {
        let g = KeyGuard::default();
        for i in 0..MAX_KEYS {
            assert!(g
                .stand_in(&format!("key-{i}"))
                .starts_with("libhoney-key-ref-"));
        }
        assert_eq!(g.stand_in("one-too-many"), "one-too-many");
        assert!(g.stand_in("key-7").starts_with("libhoney-key-ref-7-"));
    }
}
