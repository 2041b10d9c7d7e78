//! Test helpers: a tiny blocking HTTP/1.1 client over `std::net::TcpStream`,
//! body encoders (gzip, zstd, msgpack) and event builders.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use serde_json::{json, Value};

/// A parsed HTTP response.
#[derive(Debug)]
pub struct Resp {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Resp {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {:?}", self.text()))
    }
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
    /// The per-event statuses of a batch answer.
    pub fn statuses(&self) -> Vec<u64> {
        self.json()
            .as_array()
            .expect("status array")
            .iter()
            .map(|s| s["status"].as_u64().expect("status"))
            .collect()
    }
}

/// One keep-alive connection.
pub struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> io::Result<Conn> {
        let s = TcpStream::connect(addr)?;
        s.set_read_timeout(Some(Duration::from_secs(10)))?;
        s.set_nodelay(true)?;
        Ok(Conn {
            reader: BufReader::new(s),
        })
    }

    pub fn stream(&mut self) -> &mut TcpStream {
        self.reader.get_mut()
    }

    /// Writes a request (with Content-Length) without reading the answer.
    pub fn send(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<()> {
        let mut head = format!("{method} {path} HTTP/1.1\r\nHost: test\r\n");
        for (k, v) in headers {
            head.push_str(&format!("{k}: {v}\r\n"));
        }
        head.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        let s = self.reader.get_mut();
        s.write_all(head.as_bytes())?;
        s.write_all(body)?;
        s.flush()
    }

    /// Reads one response (Content-Length or chunked bodies).
    pub fn read_response(&mut self) -> io::Result<Resp> {
        let mut line = String::new();
        if self.reader.read_line(&mut line)? == 0 {
            return Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "connection closed",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, line.clone()))?;
        let mut headers = Vec::new();
        loop {
            let mut h = String::new();
            self.reader.read_line(&mut h)?;
            let h = h.trim_end();
            if h.is_empty() {
                break;
            }
            if let Some((k, v)) = h.split_once(':') {
                headers.push((k.trim().to_ascii_lowercase(), v.trim().to_owned()));
            }
        }
        let get = |n: &str| headers.iter().find(|(k, _)| k == n).map(|(_, v)| v.clone());
        let mut body = Vec::new();
        if let Some(len) = get("content-length") {
            let len: usize = len.parse().unwrap_or(0);
            body.resize(len, 0);
            self.reader.read_exact(&mut body)?;
        } else if get("transfer-encoding").is_some_and(|t| t.contains("chunked")) {
            loop {
                let mut sz = String::new();
                self.reader.read_line(&mut sz)?;
                let n = usize::from_str_radix(sz.trim(), 16).unwrap_or(0);
                let mut chunk = vec![0; n + 2];
                self.reader.read_exact(&mut chunk)?;
                if n == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..n]);
            }
        }
        Ok(Resp {
            status,
            headers,
            body,
        })
    }

    pub fn request(
        &mut self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> io::Result<Resp> {
        self.send(method, path, headers, body)?;
        self.read_response()
    }

    /// True if the peer closed the connection without sending anything.
    pub fn closed_without_answer(&mut self) -> bool {
        let mut b = [0u8; 1];
        match self.reader.read(&mut b) {
            Ok(0) => true,
            Err(e) => e.kind() == io::ErrorKind::ConnectionReset,
            Ok(_) => false,
        }
    }
}

/// One request on a fresh connection.
pub fn request(
    addr: SocketAddr,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Resp {
    Conn::open(addr)
        .expect("connect")
        .request(method, path, headers, body)
        .expect("request")
}

/// `POST path` with these headers, on a fresh connection.
pub fn post(addr: SocketAddr, path: &str, headers: &[(&str, &str)], body: &[u8]) -> Resp {
    request(addr, "POST", path, headers, body)
}

/// `GET path` with these headers and no body, on a fresh connection.
pub fn get(addr: SocketAddr, path: &str, headers: &[(&str, &str)]) -> Resp {
    request(addr, "GET", path, headers, b"")
}

pub const KEY: (&str, &str) = ("X-Honeycomb-Team", "test-key");

/// `n` events `{"data":{"seq":start+i,"name":"ev"}}` as a JSON array.
pub fn batch_json(start: u64, n: u64) -> Vec<u8> {
    let evs: Vec<Value> = (start..start + n)
        .map(|i| json!({"data": {"seq": i, "name": "ev"}}))
        .collect();
    serde_json::to_vec(&evs).unwrap()
}

pub fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

pub fn zstd(data: &[u8]) -> Vec<u8> {
    zstd::bulk::compress(data, 2).unwrap()
}

/// A minimal msgpack encoder for tests.
#[derive(Default)]
pub struct Mp(pub Vec<u8>);

impl Mp {
    pub fn array(&mut self, n: usize) -> &mut Self {
        self.container(0x90, 0xdd, n)
    }
    pub fn map(&mut self, n: usize) -> &mut Self {
        self.container(0x80, 0xdf, n)
    }
    /// An array or map header of `n` elements: the `fix` form below 16, the
    /// 32-bit `long` one above.
    fn container(&mut self, fix: u8, long: u8, n: usize) -> &mut Self {
        if n < 16 {
            self.0.push(fix | n as u8);
        } else {
            self.0.push(long);
            self.0.extend_from_slice(&(n as u32).to_be_bytes());
        }
        self
    }
    pub fn str(&mut self, s: &str) -> &mut Self {
        self.0.push(0xdb);
        self.0.extend_from_slice(&(s.len() as u32).to_be_bytes());
        self.0.extend_from_slice(s.as_bytes());
        self
    }
    pub fn uint(&mut self, v: u64) -> &mut Self {
        self.tagged(0xcf, &v.to_be_bytes())
    }
    pub fn int(&mut self, v: i64) -> &mut Self {
        self.tagged(0xd3, &v.to_be_bytes())
    }
    pub fn float(&mut self, v: f64) -> &mut Self {
        self.tagged(0xcb, &v.to_be_bytes())
    }
    /// A type byte, then `bytes`.
    fn tagged(&mut self, tag: u8, bytes: &[u8]) -> &mut Self {
        self.0.push(tag);
        self.0.extend_from_slice(bytes);
        self
    }
    pub fn bool(&mut self, v: bool) -> &mut Self {
        self.0.push(if v { 0xc3 } else { 0xc2 });
        self
    }
    pub fn nil(&mut self) -> &mut Self {
        self.0.push(0xc0);
        self
    }
    /// Timestamp extension (type -1), 96-bit form.
    pub fn timestamp96(&mut self, secs: i64, nanos: u32) -> &mut Self {
        self.0.extend_from_slice(&[0xc7, 12, 0xff]);
        self.0.extend_from_slice(&nanos.to_be_bytes());
        self.0.extend_from_slice(&secs.to_be_bytes());
        self
    }
    /// Timestamp extension (type -1), 64-bit form.
    pub fn timestamp64(&mut self, secs: u64, nanos: u32) -> &mut Self {
        self.0.extend_from_slice(&[0xd7, 0xff]);
        self.0
            .extend_from_slice(&(((nanos as u64) << 34) | secs).to_be_bytes());
        self
    }
    /// Timestamp extension (type -1), 32-bit form.
    pub fn timestamp32(&mut self, secs: u32) -> &mut Self {
        self.0.extend_from_slice(&[0xd6, 0xff]);
        self.0.extend_from_slice(&secs.to_be_bytes());
        self
    }
    /// Encodes a JSON value.
    pub fn value(&mut self, v: &Value) -> &mut Self {
        match v {
            Value::Null => self.nil(),
            Value::Bool(b) => self.bool(*b),
            Value::Number(n) => {
                if let Some(u) = n.as_u64() {
                    self.uint(u)
                } else if let Some(i) = n.as_i64() {
                    self.int(i)
                } else {
                    self.float(n.as_f64().unwrap())
                }
            }
            Value::String(s) => self.str(s),
            Value::Array(a) => {
                self.array(a.len());
                for x in a {
                    self.value(x);
                }
                self
            }
            Value::Object(o) => {
                self.map(o.len());
                for (k, x) in o {
                    self.str(k);
                    self.value(x);
                }
                self
            }
        }
    }
}
