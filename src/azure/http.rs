//! HTTP helpers every Azure client here shares: bounded body reads, `Retry-After`, and error
//! text that never carries a URL (a continuation URL or a query may hold a token).

use bytes::Bytes;

/// A `Retry-After` header in seconds (the API sends seconds, never an HTTP date).
pub fn retry_after_secs(resp: &reqwest::Response) -> Option<u64> {
    resp.headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

/// Why a response body could not be read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    #[error("the response body is larger than {limit} bytes")]
    TooLarge { limit: usize },
    #[error("reading the response body failed: {0}")]
    Read(String),
}

/// Reads a response body to its end, refusing one larger than `limit` bytes: a declared
/// length over the limit is refused before reading, a streamed one as soon as it passes it.
/// The client's request timeout bounds a server that trickles bytes.
pub async fn read_capped(mut resp: reqwest::Response, limit: usize) -> Result<Bytes, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit as u64) {
        return Err(BodyError::TooLarge { limit });
    }
    let expected = resp.content_length().unwrap_or(0) as usize;
    let mut body = bytes::BytesMut::with_capacity(expected.min(limit));
    while let Some(chunk) = resp
        .chunk()
        .await
        .map_err(|e| BodyError::Read(without_url(&e)))?
    {
        if body.len() + chunk.len() > limit {
            return Err(BodyError::TooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body.freeze())
}

/// What went wrong with a request, without its URL (a URL may carry a token).
pub fn without_url(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "the response body could not be read"
    } else {
        "request failed"
    };
    kind.to_string()
}
