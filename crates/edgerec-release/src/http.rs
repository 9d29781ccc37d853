//! The native client's transport: HTTP/1.1 GETs over TCP (hyper), each bounded in time and in
//! the bytes it reads.
//!
//! Plain `http://` only: the trust is in the signatures (a release server, a CDN or a proxy in
//! between can change bytes but not make a device accept them), and a TLS-terminating proxy
//! or the platform's HTTP stack (browsers, TV runtimes) covers transport privacy. Requests carry
//! the path and, for manifests, an `If-None-Match` — nothing about the user.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt as _, Empty};
use hyper::header::{ETAG, HOST, IF_NONE_MATCH};
use hyper_util::rt::TokioIo;

/// What a GET returned.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    /// The HTTP status.
    pub status: u16,
    /// The `ETag` header, if any.
    pub etag: Option<String>,
    /// The body: complete for `200`, empty for `304`, at most a few KiB of anything else.
    pub body: Vec<u8>,
}

/// Why a GET failed before a response was complete.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TransportError {
    /// The server could not be reached, or the connection broke.
    #[error("network: {0}")]
    Network(String),
    /// No complete answer within the timeout (a server that trickles its body included).
    #[error("timeout: {0}")]
    Timeout(String),
    /// The body went past `max_bytes`; reading stopped there.
    #[error("more than {max} bytes")]
    TooLong {
        /// The bound.
        max: u64,
    },
}

/// Fetches paths of one release server.
pub trait Transport {
    /// GETs `path` (e.g. `/v1/channels/stable/manifest`), sending `If-None-Match` when given,
    /// reading at most `max_bytes` of a `200` body.
    fn get(
        &mut self,
        path: &str,
        if_none_match: Option<&str>,
        max_bytes: u64,
    ) -> Result<Response, TransportError>;
}

/// The most bytes kept of a body that is not a `200` (an error message).
const MAX_ERROR_BODY: u64 = 4096;

/// [`Transport`] over HTTP/1.1 on a small current-thread runtime; one connection per request.
#[derive(Debug)]
pub struct HttpTransport {
    runtime: tokio::runtime::Runtime,
    host: String,
    port: u16,
    prefix: String,
    timeout: Duration,
}

impl HttpTransport {
    /// A transport for `url` (`http://host[:port][/prefix]`); every request, connecting
    /// included, must complete within `timeout`.
    pub fn new(url: &str, timeout: Duration) -> anyhow::Result<HttpTransport> {
        let rest = url.strip_prefix("http://").ok_or_else(|| {
            anyhow::anyhow!(
                "{url:?}: the native client speaks http:// (put TLS in a proxy in front of it; \
                 the signatures, not the transport, are what devices trust)"
            )
        })?;
        let (authority, prefix) = match rest.find('/') {
            Some(i) => (&rest[..i], rest[i..].trim_end_matches('/')),
            None => (rest, ""),
        };
        let (host, port) = match authority.strip_prefix('[') {
            // [v6] or [v6]:port
            Some(v6) => match v6.split_once(']') {
                Some((h, "")) => (h, None),
                Some((h, p)) => (h, Some(p.strip_prefix(':').unwrap_or(p))),
                None => anyhow::bail!("{url:?}: unclosed '['"),
            },
            None => match authority.rsplit_once(':') {
                Some((h, p)) => (h, Some(p)),
                None => (authority, None),
            },
        };
        let port = match port {
            Some(p) => p
                .parse::<u16>()
                .map_err(|_| anyhow::anyhow!("{url:?}: bad port {p:?}"))?,
            None => 80,
        };
        if host.is_empty() {
            anyhow::bail!("{url:?}: no host");
        }
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        Ok(HttpTransport {
            runtime,
            host: host.to_string(),
            port,
            prefix: prefix.to_string(),
            timeout,
        })
    }

    async fn fetch(
        &self,
        path: &str,
        if_none_match: Option<&str>,
        max_bytes: u64,
    ) -> Result<Response, TransportError> {
        let net = |e: &dyn std::fmt::Display| TransportError::Network(format!("{path}: {e}"));
        let stream = tokio::net::TcpStream::connect((self.host.as_str(), self.port))
            .await
            .map_err(|e| net(&e))?;
        let (mut sender, connection) =
            hyper::client::conn::http1::handshake::<_, Empty<Bytes>>(TokioIo::new(stream))
                .await
                .map_err(|e| net(&e))?;
        // Drives the connection; it ends when `sender` and the body are dropped.
        let driver = tokio::spawn(connection);
        let authority = if self.port == 80 {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        };
        let mut request = hyper::Request::get(format!("{}{path}", self.prefix))
            .header(HOST, authority)
            // Sections are checked byte for byte: ask for them as stored.
            .header("accept-encoding", "identity");
        if let Some(tag) = if_none_match {
            request = request.header(IF_NONE_MATCH, tag);
        }
        let request = request.body(Empty::new()).map_err(|e| net(&e))?;
        let answer = sender.send_request(request).await.map_err(|e| net(&e))?;
        let status = answer.status().as_u16();
        let etag = answer
            .headers()
            .get(ETAG)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let mut body = answer.into_body();
        let mut out = Vec::new();
        if status != 304 {
            let max = if status == 200 {
                max_bytes
            } else {
                MAX_ERROR_BODY
            };
            while let Some(frame) = body.frame().await {
                let frame = frame.map_err(|e| net(&e))?;
                if let Ok(data) = frame.into_data() {
                    if out.len() as u64 + data.len() as u64 > max {
                        if status != 200 {
                            break;
                        }
                        driver.abort();
                        return Err(TransportError::TooLong { max });
                    }
                    out.extend_from_slice(&data);
                }
            }
        }
        drop(body);
        drop(sender);
        driver.abort();
        Ok(Response {
            status,
            etag,
            body: out,
        })
    }
}

impl Transport for HttpTransport {
    fn get(
        &mut self,
        path: &str,
        if_none_match: Option<&str>,
        max_bytes: u64,
    ) -> Result<Response, TransportError> {
        let timeout = self.timeout;
        self.runtime.block_on(async {
            tokio::time::timeout(timeout, self.fetch(path, if_none_match, max_bytes))
                .await
                .unwrap_or_else(|_| {
                    Err(TransportError::Timeout(format!(
                        "{path}: no complete answer in {timeout:?}"
                    )))
                })
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let t = HttpTransport::new("http://127.0.0.1:8080/", Duration::from_secs(1)).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("127.0.0.1", 8080, "")
        );
        let t = HttpTransport::new("http://models.example/edge/", Duration::from_secs(1)).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("models.example", 80, "/edge")
        );
        let t = HttpTransport::new("http://[::1]:9", Duration::from_secs(1)).unwrap();
        assert_eq!((t.host.as_str(), t.port), ("::1", 9));
        let t = HttpTransport::new("http://[::1]/m", Duration::from_secs(1)).unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.prefix.as_str()),
            ("::1", 80, "/m")
        );
        for bad in [
            "https://x",
            "ftp://x",
            "http://",
            "http://x:port",
            "x:80",
            "http://[::1",
        ] {
            assert!(
                HttpTransport::new(bad, Duration::from_secs(1)).is_err(),
                "{bad}"
            );
        }
    }
}
