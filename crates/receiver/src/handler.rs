//! Request routing and the Events API semantics.

use std::cell::RefCell;
use std::convert::Infallible;
use std::fmt::Write as _;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, LengthLimitError, Limited};
use hyper::body::Incoming;
use hyper::header::{
    HeaderMap, HeaderValue, ALLOW, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, RETRY_AFTER,
};
use hyper::{Method, Request, Response, StatusCode};
use tokio::sync::OwnedSemaphorePermit;

use crate::decode::{self, DecodeError, Encoding};
use crate::scan::{EventCheck, ScanOptions, ERR_EMPTY, ERR_MALFORMED, ERR_TOO_LARGE};
use crate::server::{ConnCtx, DownRequest, Started};
use crate::state::{lock, Shared};
use crate::{json, msgpack, timefmt, Endpoint, Fault, ReceivedEvent, ReceivedRequest};

type Resp = Response<Full<Bytes>>;

const UNKNOWN_KEY: &str = "{\"error\":\"unknown API key - check your credentials\"}";
const NOT_FOUND: &str = "{\"error\":\"not found\"}";
const METHOD_NOT_ALLOWED: &str = "{\"error\":\"method not allowed\"}";
const MALFORMED_STATUS_BODY: &str = "this is not a JSON status array";

thread_local! {
    /// Reused decompression output buffer (one per worker thread).
    static DECODE_BUF: RefCell<Vec<u8>> = const { RefCell::new(Vec::new()) };
}

enum Route {
    Batch(String),
    Single(String),
    /// A data route whose dataset name the API refuses (the reason).
    BadDataset(&'static str),
    Auth,
    Stats,
    Reset,
    NotFound,
    BadMethod(&'static str),
}

fn dataset_segment(rest: &str) -> Option<&str> {
    (!rest.is_empty() && !rest.contains('/')).then_some(rest)
}

/// Routes a request path. `prefix` is the configured path prefix (empty,
/// or `/`-led without a trailing `/`): the API routes are served under it
/// and only there; the control endpoints are always at the root.
fn route(method: &Method, path: &str, prefix: &str) -> Route {
    let post = method == Method::POST;
    let get = method == Method::GET;
    match path {
        "/_receiver/stats" if get => return Route::Stats,
        "/_receiver/stats" => return Route::BadMethod("GET"),
        "/_receiver/reset" if post => return Route::Reset,
        "/_receiver/reset" => return Route::BadMethod("POST"),
        _ => {}
    }
    let Some(path) = path
        .strip_prefix(prefix)
        .filter(|rest| rest.starts_with('/'))
    else {
        return Route::NotFound;
    };
    if let Some(rest) = path.strip_prefix("/1/batch/") {
        return match dataset_segment(rest) {
            Some(ds) if post => decode_dataset(ds).map_or_else(Route::BadDataset, Route::Batch),
            Some(_) => Route::BadMethod("POST"),
            None => Route::NotFound,
        };
    }
    if let Some(rest) = path.strip_prefix("/1/events/") {
        return match dataset_segment(rest) {
            Some(ds) if post => decode_dataset(ds).map_or_else(Route::BadDataset, Route::Single),
            Some(_) => Route::BadMethod("POST"),
            None => Route::NotFound,
        };
    }
    match path {
        "/1/auth" if get => Route::Auth,
        "/1/auth" => Route::BadMethod("GET"),
        _ => Route::NotFound,
    }
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// The error for a dataset name with an encoded slash (`%2F`), which the
/// API refuses (a dataset name cannot contain `/`).
pub(crate) const ERR_DATASET_SLASH: &str = "Dataset names may not contain an encoded slash (%2F).";
/// The error for a dataset name that is not UTF-8 once percent-decoded.
pub(crate) const ERR_DATASET_UTF8: &str = "Dataset name is not valid UTF-8.";

/// Decodes the `%XX` escapes of a dataset path segment (invalid escapes are
/// kept literally). An encoded slash, or bytes that are not UTF-8 once
/// decoded, are refused, as the API refuses them.
pub(crate) fn decode_dataset(s: &str) -> Result<String, &'static str> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'%' && i + 2 < b.len() {
            if let (Some(h), Some(l)) = (hex(b[i + 1]), hex(b[i + 2])) {
                let byte = h << 4 | l;
                if byte == b'/' {
                    return Err(ERR_DATASET_SLASH);
                }
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(b[i]);
        i += 1;
    }
    String::from_utf8(out).map_err(|_| ERR_DATASET_UTF8)
}

fn response(status: u16, body: impl Into<Bytes>) -> Resp {
    let mut r = Response::new(Full::new(body.into()));
    *r.status_mut() = StatusCode::from_u16(status)
        .ok()
        .filter(|s| (200..=599).contains(&s.as_u16()))
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    r
}

fn json_response(status: u16, body: impl Into<Bytes>) -> Resp {
    let mut r = response(status, body);
    r.headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    r
}

fn error_body(msg: &str) -> String {
    let mut s = String::with_capacity(msg.len() + 12);
    s.push_str("{\"error\":");
    push_json_str(&mut s, msg);
    s.push('}');
    s
}

fn push_json_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("\"\""),
    }
}

fn header(h: &HeaderMap, name: &str) -> Option<String> {
    h.get(name)
        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
}

/// What the handler needs from the request head.
struct Meta {
    method: String,
    path: String,
    api_key: String,
    content_encoding: Option<String>,
    content_type: Option<String>,
    user_agent: Option<String>,
    event_time: Option<String>,
    samplerate: Option<String>,
    headers: Vec<(String, String)>,
}

impl Meta {
    fn new(parts: &hyper::http::request::Parts, keep_headers: bool) -> Meta {
        let h = &parts.headers;
        Meta {
            method: parts.method.as_str().to_owned(),
            path: parts.uri.path().to_owned(),
            api_key: header(h, "x-honeycomb-team").unwrap_or_default(),
            content_encoding: header(h, "content-encoding"),
            content_type: header(h, "content-type"),
            user_agent: header(h, "user-agent"),
            event_time: header(h, "x-honeycomb-event-time"),
            samplerate: header(h, "x-honeycomb-samplerate"),
            headers: if keep_headers {
                h.iter()
                    .map(|(k, v)| {
                        (
                            k.as_str().to_owned(),
                            String::from_utf8_lossy(v.as_bytes()).into_owned(),
                        )
                    })
                    .collect()
            } else {
                Vec::new()
            },
        }
    }

    fn is_msgpack(&self) -> bool {
        self.content_type.as_deref().is_some_and(|c| {
            c.as_bytes()
                .windows(7)
                .any(|w| w.eq_ignore_ascii_case(b"msgpack"))
        })
    }
}

enum BodyError {
    TooLarge,
    Io,
    /// Not received within `body_read_timeout`.
    Timeout,
}

/// A request body, with its share of the body memory budget (held until
/// the request is answered).
struct Body {
    bytes: Bytes,
    _budget: Option<OwnedSemaphorePermit>,
}

/// Reads a body of at most `limit` bytes (one that declares more is refused
/// before any is read), within the body read timeout and the body memory
/// budget (see `ReceiverBuilder::max_buffered_body_bytes`).
async fn read_body(
    body: Incoming,
    declared: Option<u64>,
    limit: usize,
    shared: &Shared,
) -> Result<Body, BodyError> {
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge);
    }
    let limits = &shared.cfg.limits;
    let want = declared.map_or(limit, |n| n as usize);
    let want = u32::try_from(want.min(limits.max_buffered_body_bytes)).unwrap_or(u32::MAX);
    let read = async {
        let budget = if want == 0 {
            None
        } else {
            let permit = shared.body_budget.clone().acquire_many_owned(want).await;
            Some(permit.map_err(|_| BodyError::Io)?)
        };
        match Limited::new(body, limit).collect().await {
            Ok(c) => Ok(Body {
                bytes: c.to_bytes(),
                _budget: budget,
            }),
            Err(e) if e.is::<LengthLimitError>() => Err(BodyError::TooLarge),
            Err(_) => Err(BodyError::Io),
        }
    };
    tokio::time::timeout(limits.body_read_timeout, read)
        .await
        .unwrap_or(Err(BodyError::Timeout))
}

fn declared_length(h: &HeaderMap) -> Option<u64> {
    h.get(CONTENT_LENGTH)?.to_str().ok()?.trim().parse().ok()
}

/// The answer to a body not received in time; the connection is closed.
fn body_timeout_response() -> Resp {
    let mut r = json_response(408, error_body("Request body was not received in time."));
    r.headers_mut()
        .insert(CONNECTION, HeaderValue::from_static("close"));
    r
}

/// The hyper service function.
pub(crate) async fn handle(
    req: Request<Incoming>,
    shared: Arc<Shared>,
    ctx: Arc<ConnCtx>,
) -> Result<Resp, Infallible> {
    // Busy until answered: the idle and header timeouts do not apply, the
    // body's does (see `read_body`).
    let _busy = ctx.activity.busy();
    let route = route(req.method(), req.uri().path(), &shared.cfg.path_prefix);
    match route {
        Route::Stats => {
            let body = serde_json::to_string(&shared.stats()).unwrap_or_default();
            return Ok(json_response(200, body));
        }
        Route::Reset => {
            shared.reset();
            return Ok(json_response(200, "{}"));
        }
        _ => {}
    }
    let (parts, body) = req.into_parts();
    let declared = declared_length(&parts.headers);
    let record = shared.cfg.record;
    let meta = Meta::new(&parts, record);
    let index = shared.next_index.fetch_add(1, Ordering::Relaxed);
    shared.counters.requests.fetch_add(1, Ordering::Relaxed);
    let max_body = shared.cfg.max_body_bytes;
    let wire_limit = max_body.saturating_mul(2).saturating_add(65_536);

    let (endpoint, dataset) = match route {
        Route::Batch(ds) => (Endpoint::Batch, ds),
        Route::Single(ds) => (Endpoint::Single, ds),
        other => {
            // Simple answers; the body is read (and ignored) so that the
            // connection stays usable.
            let wire = match read_body(body, declared, wire_limit, &shared).await {
                Ok(b) => b.bytes,
                Err(BodyError::Timeout) => return Ok(body_timeout_response()),
                Err(_) => Bytes::new(),
            };
            shared
                .counters
                .bytes_received
                .fetch_add(wire.len() as u64, Ordering::Relaxed);
            let (status, body, allow) = match other {
                Route::Auth if shared.cfg.key_ok(&meta.api_key) => {
                    let mut b = String::from("{\"team\":{\"slug\":");
                    push_json_str(&mut b, &shared.cfg.team_slug);
                    b.push_str("},\"environment\":{\"slug\":");
                    push_json_str(&mut b, &shared.cfg.environment_slug);
                    b.push_str("},\"api_key_access\":{\"events\":true,\"markers\":true}}");
                    (200, b, None)
                }
                Route::Auth => (401, UNKNOWN_KEY.to_owned(), None),
                Route::BadMethod(allow) => (405, METHOD_NOT_ALLOWED.to_owned(), Some(allow)),
                Route::BadDataset(e) => (400, error_body(e), None),
                _ => (404, NOT_FOUND.to_owned(), None),
            };
            if record {
                push_request(
                    &shared,
                    request_record(&meta, index, None, wire.len(), Vec::new(), 0, status, &body),
                );
            }
            let mut r = json_response(status, body);
            if let Some(allow) = allow {
                r.headers_mut()
                    .insert(ALLOW, HeaderValue::from_static(allow));
            }
            return Ok(r);
        }
    };

    let fault = shared.next_fault();
    let body = match read_body(body, declared, wire_limit, &shared).await {
        Ok(b) => b,
        Err(BodyError::Timeout) => return Ok(body_timeout_response()),
        Err(BodyError::TooLarge) => {
            let body = error_body(ERR_TOO_LARGE);
            if record {
                push_request(
                    &shared,
                    request_record(&meta, index, Some(&dataset), 0, Vec::new(), 0, 400, &body),
                );
            }
            let mut r = json_response(400, body);
            r.headers_mut()
                .insert(CONNECTION, HeaderValue::from_static("close"));
            return Ok(r);
        }
        Err(BodyError::Io) => {
            ctx.drop_now.notify_one();
            return std::future::pending().await;
        }
    };
    let wire = &body.bytes;
    shared
        .counters
        .bytes_received
        .fetch_add(wire.len() as u64, Ordering::Relaxed);
    if let Some(Fault::Delay(d)) = &fault {
        tokio::time::sleep(*d).await;
    }
    let req = DataRequest {
        shared: &shared,
        meta: &meta,
        endpoint,
        dataset: &dataset,
        index,
        wire,
        fault: fault.as_ref(),
    };
    match req.process() {
        Some(resp) => Ok(resp),
        None => {
            if let Some(Fault::Down(duration)) = fault {
                // Close this connection only once new ones are refused (the
                // outage closes it anyway, dropping this handler).
                let (tx, rx) = tokio::sync::oneshot::channel();
                let down = DownRequest {
                    duration,
                    started: Started::Async(tx),
                };
                if shared.down_tx.send(down).is_ok() {
                    let _ = rx.await;
                }
            }
            ctx.drop_now.notify_one();
            std::future::pending().await
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn request_record(
    meta: &Meta,
    index: u64,
    dataset: Option<&str>,
    body_bytes: usize,
    decoded_body: Vec<u8>,
    events: usize,
    status: u16,
    response_body: &str,
) -> ReceivedRequest {
    ReceivedRequest {
        index,
        method: meta.method.clone(),
        path: meta.path.clone(),
        dataset: dataset.map(str::to_owned),
        headers: meta.headers.clone(),
        content_encoding: meta.content_encoding.clone(),
        content_type: meta.content_type.clone(),
        user_agent: meta.user_agent.clone(),
        body_bytes,
        decoded_body,
        events,
        response_status: status,
        response_body: response_body.to_owned(),
    }
}

fn push_request(shared: &Shared, r: ReceivedRequest) {
    lock(&shared.records).requests.push(r);
}

/// The outcome of a batch or single-event request before faults that
/// replace the whole answer.
struct Verdict {
    status: u16,
    body: String,
    /// Per event: accepted?
    accepted: Vec<bool>,
}

impl Verdict {
    fn request_error(status: u16, msg: &str) -> Verdict {
        Verdict {
            status,
            body: error_body(msg),
            accepted: Vec::new(),
        }
    }
}

struct DataRequest<'a> {
    shared: &'a Shared,
    meta: &'a Meta,
    endpoint: Endpoint,
    dataset: &'a str,
    index: u64,
    wire: &'a Bytes,
    fault: Option<&'a Fault>,
}

impl DataRequest<'_> {
    /// Decodes, validates, applies faults, commits accepted events and
    /// builds the answer. `None` means: drop the connection, no answer.
    fn process(&self) -> Option<Resp> {
        DECODE_BUF.with(|cell| match cell.try_borrow_mut() {
            Ok(mut buf) => self.process_with(&mut buf),
            Err(_) => self.process_with(&mut Vec::new()),
        })
    }

    fn process_with(&self, buf: &mut Vec<u8>) -> Option<Resp> {
        let shared = self.shared;
        let cfg = &shared.cfg;
        let opts = ScanOptions {
            want_values: cfg.record || shared.output.is_some(),
            track: cfg.track.as_deref(),
        };
        let mut checks: Vec<EventCheck> = Vec::new();
        let (verdict, decoded) = match self.decode(buf) {
            Ok(body) => (self.verdict_for(body, &mut checks, opts), body),
            Err(v) => (v, &[][..]),
        };
        shared
            .counters
            .bytes_decoded
            .fetch_add(decoded.len() as u64, Ordering::Relaxed);

        // Faults that replace the whole answer.
        let mut verdict = verdict;
        let mut drop_conn = false;
        let mut retry_after = None;
        match self.fault {
            Some(Fault::Status {
                status,
                body,
                retry_after: ra,
            }) => {
                verdict.status = *status;
                verdict.body = body.clone();
                verdict.accepted.iter_mut().for_each(|a| *a = false);
                retry_after = ra.as_deref();
            }
            Some(Fault::DropConnection) | Some(Fault::Down(_)) => {
                drop_conn = true;
                verdict.accepted.iter_mut().for_each(|a| *a = false);
            }
            _ => {}
        }

        self.commit(&mut checks, &verdict, decoded, drop_conn);
        if drop_conn {
            return None;
        }
        // Plain (non-JSON) answers: a successful single event (empty body)
        // and fault bodies, which are sent exactly as configured.
        let plain = matches!(
            self.fault,
            Some(Fault::MalformedStatusBody | Fault::Status { .. })
        ) || (self.endpoint == Endpoint::Single && verdict.status == 200);
        let mut r = if plain {
            response(verdict.status, verdict.body)
        } else {
            json_response(verdict.status, verdict.body)
        };
        if let Some(ra) = retry_after.and_then(|v| HeaderValue::from_str(v).ok()) {
            r.headers_mut().insert(RETRY_AFTER, ra);
        }
        Some(r)
    }

    /// Authentication and decoding: the decoded body, or a request-level
    /// error.
    fn decode<'s>(&'s self, buf: &'s mut Vec<u8>) -> Result<&'s [u8], Verdict> {
        let cfg = &self.shared.cfg;
        if !cfg.key_ok(&self.meta.api_key) {
            return Err(Verdict {
                status: 401,
                body: UNKNOWN_KEY.to_owned(),
                accepted: Vec::new(),
            });
        }
        if self.wire.is_empty() {
            return Err(Verdict::request_error(400, ERR_EMPTY));
        }
        let body: &[u8] = match Encoding::from_header(self.meta.content_encoding.as_deref()) {
            Encoding::Identity if self.wire.len() > cfg.max_body_bytes => {
                return Err(Verdict::request_error(400, ERR_TOO_LARGE))
            }
            Encoding::Identity => &self.wire[..],
            Encoding::Unsupported => return Err(Verdict::request_error(400, ERR_MALFORMED)),
            enc => match decode::decode_into(enc, self.wire, cfg.max_body_bytes, buf) {
                Ok(()) => &buf[..],
                Err(DecodeError::TooLarge) => {
                    return Err(Verdict::request_error(400, ERR_TOO_LARGE))
                }
                Err(DecodeError::Malformed) => {
                    return Err(Verdict::request_error(400, ERR_MALFORMED))
                }
            },
        };
        if body.is_empty() {
            return Err(Verdict::request_error(400, ERR_EMPTY));
        }
        Ok(body)
    }

    /// Scans the decoded body and builds the per-event verdict (with
    /// status-array faults applied).
    fn verdict_for(
        &self,
        body: &[u8],
        checks: &mut Vec<EventCheck>,
        opts: ScanOptions<'_>,
    ) -> Verdict {
        let msgpack = self.meta.is_msgpack();
        match self.endpoint {
            Endpoint::Batch => {
                let res = if msgpack {
                    msgpack::scan_batch(body, opts, checks)
                } else {
                    json::scan_batch(body, opts, checks)
                };
                if let Err(e) = res {
                    checks.clear();
                    return Verdict::request_error(400, e);
                }
                batch_verdict(checks, self.fault)
            }
            Endpoint::Single => {
                let res = if msgpack {
                    msgpack::scan_single(body, opts)
                } else {
                    json::scan_single(body, opts)
                };
                match res {
                    Err(e) => Verdict::request_error(400, e),
                    Ok(mut c) => {
                        if let Some(p) = c.parsed.as_mut() {
                            p.time = self.meta.event_time.as_deref().map(|t| {
                                timefmt::epoch_str_to_rfc3339(t).unwrap_or_else(|| t.to_owned())
                            });
                            p.samplerate = self
                                .meta
                                .samplerate
                                .as_deref()
                                .and_then(|s| s.trim().parse().ok());
                        }
                        checks.push(c);
                        match self.fault {
                            Some(Fault::EventStatus {
                                index: 0,
                                status,
                                error,
                            }) => Verdict {
                                status: *status,
                                body: error_body(error),
                                accepted: vec![(200..300).contains(status)],
                            },
                            _ => Verdict {
                                status: 200,
                                body: String::new(),
                                accepted: vec![true],
                            },
                        }
                    }
                }
            }
        }
    }

    /// Records and counts the outcome. Accepted events are recorded before
    /// the counters move, so a waiter that sees the count also sees them.
    fn commit(&self, checks: &mut [EventCheck], v: &Verdict, decoded: &[u8], dropped: bool) {
        let shared = self.shared;
        let cfg = &shared.cfg;
        let n = checks.len();
        let n_acc = v.accepted.iter().filter(|a| **a).count();
        if let Some(t) = &shared.tracker {
            if n_acc > 0 {
                lock(t).insert_all(
                    checks
                        .iter()
                        .zip(&v.accepted)
                        .filter(|(_, a)| **a)
                        .filter_map(|(c, _)| c.tracked),
                );
            }
        }
        let events: Vec<ReceivedEvent> = if cfg.record || shared.output.is_some() {
            let single = self.endpoint == Endpoint::Single;
            checks
                .iter_mut()
                .zip(&v.accepted)
                .enumerate()
                .filter(|(_, (_, a))| **a)
                .filter_map(|(i, (c, _))| {
                    let p = c.parsed.take()?;
                    Some(ReceivedEvent {
                        dataset: self.dataset.to_owned(),
                        api_key: self.meta.api_key.clone(),
                        data: p.data,
                        time: p.time,
                        samplerate: p.samplerate,
                        endpoint: self.endpoint,
                        request_index: self.index,
                        position: if single { 0 } else { i },
                    })
                })
                .collect()
        } else {
            Vec::new()
        };
        if let Some(out) = &shared.output {
            out.write(&events);
        }
        if cfg.record {
            let decoded_body = decoded.to_vec();
            let (status, body) = if dropped {
                (0, "")
            } else {
                (v.status, v.body.as_str())
            };
            let req = request_record(
                self.meta,
                self.index,
                Some(self.dataset),
                self.wire.len(),
                decoded_body,
                n,
                status,
                body,
            );
            let mut rec = lock(&shared.records);
            rec.events.extend(events);
            rec.requests.push(req);
        }
        let c = &shared.counters;
        c.events_rejected
            .fetch_add((n - n_acc) as u64, Ordering::Relaxed);
        c.events_accepted.fetch_add(n_acc as u64, Ordering::Release);
        if n_acc > 0 {
            shared.notify_accepted();
        }
    }
}

/// Builds the per-event status array, applying status-array faults.
fn batch_verdict(checks: &[EventCheck], fault: Option<&Fault>) -> Verdict {
    let n = checks.len();
    let mut accepted: Vec<bool> = checks.iter().map(|c| c.error.is_none()).collect();
    if let Some(Fault::MalformedStatusBody) = fault {
        accepted.iter_mut().for_each(|a| *a = false);
        return Verdict {
            status: 200,
            body: MALFORMED_STATUS_BODY.to_owned(),
            accepted,
        };
    }
    let shown = match fault {
        Some(Fault::ShortStatusArray { len }) => (*len).min(n),
        _ => n,
    };
    let extra = match fault {
        Some(Fault::LongStatusArray { extra }) => *extra,
        _ => 0,
    };
    let mut body = String::with_capacity((shown + extra) * 15 + 2);
    body.push('[');
    for (i, c) in checks.iter().enumerate().take(shown) {
        if i > 0 {
            body.push(',');
        }
        match fault {
            Some(Fault::EventStatus {
                index,
                status,
                error,
            }) if *index == i => {
                let _ = write!(body, "{{\"status\":{status}");
                if !error.is_empty() {
                    body.push_str(",\"error\":");
                    push_json_str(&mut body, error);
                }
                body.push('}');
                accepted[i] = accepted[i] && *status == 202;
            }
            _ => match c.error {
                None => body.push_str("{\"status\":202}"),
                Some(e) => {
                    body.push_str("{\"status\":400,\"error\":");
                    push_json_str(&mut body, e);
                    body.push('}');
                }
            },
        }
    }
    for a in accepted.iter_mut().skip(shown) {
        *a = false;
    }
    for i in 0..extra {
        if shown + i > 0 {
            body.push(',');
        }
        body.push_str("{\"status\":202}");
    }
    body.push(']');
    Verdict {
        status: 200,
        body,
        accepted,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dataset_decoding() {
        let ok = |s: &str| decode_dataset(s).unwrap();
        assert_eq!(ok("my%20ds"), "my ds");
        assert_eq!(ok("100%"), "100%");
        assert_eq!(ok("%zz%4"), "%zz%4");
        assert_eq!(ok("%E2%9C%93"), "\u{2713}");
        assert_eq!(ok("a+b"), "a+b");
        assert_eq!(ok("%252F"), "%2F", "an escaped percent sign is no slash");
        assert_eq!(decode_dataset("a%2Fb"), Err(ERR_DATASET_SLASH));
        assert_eq!(decode_dataset("a%2fb"), Err(ERR_DATASET_SLASH));
        assert_eq!(decode_dataset("%FF%FE"), Err(ERR_DATASET_UTF8));
        assert_eq!(decode_dataset("%C3"), Err(ERR_DATASET_UTF8), "truncated");
    }

    #[test]
    fn routing() {
        let route = |m: &Method, p: &str| super::route(m, p, "");
        assert!(matches!(route(&Method::POST, "/1/batch/ds"), Route::Batch(d) if d == "ds"));
        assert!(matches!(
            route(&Method::GET, "/1/batch/ds"),
            Route::BadMethod("POST")
        ));
        assert!(matches!(route(&Method::POST, "/1/batch/"), Route::NotFound));
        assert!(matches!(
            route(&Method::POST, "/1/batch/a/b"),
            Route::NotFound
        ));
        assert!(matches!(route(&Method::POST, "/1/events/x%20y"), Route::Single(d) if d == "x y"));
        assert!(matches!(
            route(&Method::POST, "/1/batch/a%2Fb"),
            Route::BadDataset(ERR_DATASET_SLASH)
        ));
        assert!(matches!(
            route(&Method::POST, "/1/events/%FF%FE"),
            Route::BadDataset(ERR_DATASET_UTF8)
        ));
        assert!(matches!(route(&Method::GET, "/1/auth"), Route::Auth));
        assert!(matches!(
            route(&Method::POST, "/1/auth"),
            Route::BadMethod("GET")
        ));
        assert!(matches!(route(&Method::GET, "/nope"), Route::NotFound));
        assert!(matches!(
            route(&Method::GET, "/_receiver/stats"),
            Route::Stats
        ));
    }

    #[test]
    fn routing_under_a_prefix() {
        let r = |m: &Method, p: &str| super::route(m, p, "/pre/fix");
        assert!(matches!(r(&Method::POST, "/pre/fix/1/batch/ds"), Route::Batch(d) if d == "ds"));
        assert!(
            matches!(r(&Method::POST, "/pre/fix/1/events/a%20b"), Route::Single(d) if d == "a b")
        );
        assert!(matches!(r(&Method::GET, "/pre/fix/1/auth"), Route::Auth));
        assert!(matches!(
            r(&Method::GET, "/pre/fix/1/batch/ds"),
            Route::BadMethod("POST")
        ));
        for p in [
            "/1/batch/ds",
            "/1/auth",
            "/pre/1/batch/ds",
            "/pre/fix1/batch/ds",
            "/pre/fixx/1/batch/ds",
            "/pre/fix",
            "/pre/fix/",
            "/pre/fix/pre/fix/1/batch/ds",
            "/PRE/FIX/1/batch/ds",
        ] {
            assert!(matches!(r(&Method::POST, p), Route::NotFound), "{p}");
        }
        // Control endpoints stay at the root.
        assert!(matches!(r(&Method::GET, "/_receiver/stats"), Route::Stats));
        assert!(matches!(r(&Method::POST, "/_receiver/reset"), Route::Reset));
        assert!(matches!(
            r(&Method::GET, "/pre/fix/_receiver/stats"),
            Route::NotFound
        ));
    }
}
