//! [`Body`]: one body type for both directions. A handler receives the
//! request's incoming stream in it and answers with bytes in it; the client
//! does the reverse. Small and allocation-free for the common case (a
//! complete buffer), open to any other `http_body::Body` through
//! [`Body::wrap`].

use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::Bytes;
use http_body_util::combinators::BoxBody;
use http_body_util::BodyExt;
use hyper::body::{Body as HttpBody, Frame, Incoming, SizeHint};

use crate::client::Checkout;

/// The error a [`Body`] can yield: whatever the underlying stream failed
/// with (a hyper error for bodies read from the network).
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// An HTTP body, request or response: `http_body::Body<Data = Bytes>`.
pub struct Body {
    kind: Kind,
}

enum Kind {
    /// A complete buffer, yielded once (`None` once yielded or if empty).
    Full(Option<Bytes>),
    /// Read from a connection this side serves.
    Incoming(Incoming),
    /// A client response: the connection goes back to its pool once the
    /// body has been read to its end.
    Pooled(Incoming, Option<Checkout>),
    Boxed(BoxBody<Bytes, BoxError>),
}

impl Body {
    /// A body with no bytes.
    pub fn empty() -> Body {
        Body {
            kind: Kind::Full(None),
        }
    }

    /// Any other body (a stream, a body with trailers).
    pub fn wrap<B>(body: B) -> Body
    where
        B: HttpBody<Data = Bytes> + Send + Sync + 'static,
        B::Error: Into<BoxError>,
    {
        Body {
            kind: Kind::Boxed(body.map_err(Into::into).boxed()),
        }
    }

    pub(crate) fn pooled(incoming: Incoming, checkout: Checkout) -> Body {
        Body {
            kind: Kind::Pooled(incoming, Some(checkout)),
        }
    }

    /// Read the whole body (trailers are discarded).
    pub async fn bytes(self) -> Result<Bytes, BoxError> {
        Ok(self.collect().await?.to_bytes())
    }
}

impl Default for Body {
    fn default() -> Body {
        Body::empty()
    }
}

impl fmt::Debug for Body {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match &self.kind {
            Kind::Full(Some(b)) => return f.debug_tuple("Body").field(&b.len()).finish(),
            Kind::Full(None) => "empty",
            Kind::Incoming(_) | Kind::Pooled(..) => "incoming",
            Kind::Boxed(_) => "boxed",
        };
        f.debug_tuple("Body").field(&kind).finish()
    }
}

impl From<Bytes> for Body {
    fn from(b: Bytes) -> Body {
        Body {
            kind: Kind::Full((!b.is_empty()).then_some(b)),
        }
    }
}

impl From<&'static str> for Body {
    fn from(s: &'static str) -> Body {
        Bytes::from_static(s.as_bytes()).into()
    }
}

impl From<&'static [u8]> for Body {
    fn from(s: &'static [u8]) -> Body {
        Bytes::from_static(s).into()
    }
}

impl From<String> for Body {
    fn from(s: String) -> Body {
        Bytes::from(s).into()
    }
}

impl From<Vec<u8>> for Body {
    fn from(v: Vec<u8>) -> Body {
        Bytes::from(v).into()
    }
}

impl From<Incoming> for Body {
    fn from(b: Incoming) -> Body {
        Body {
            kind: Kind::Incoming(b),
        }
    }
}

impl HttpBody for Body {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        match &mut self.get_mut().kind {
            Kind::Full(b) => Poll::Ready(b.take().map(|b| Ok(Frame::data(b)))),
            Kind::Incoming(b) => Pin::new(b).poll_frame(cx).map_err(Into::into),
            Kind::Pooled(b, checkout) => {
                let r = Pin::new(b).poll_frame(cx).map_err(Into::into);
                if let Poll::Ready(None) = r {
                    if let Some(c) = checkout.take() {
                        c.release();
                    }
                }
                r
            }
            Kind::Boxed(b) => Pin::new(b).poll_frame(cx),
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Full(b) => b.is_none(),
            Kind::Incoming(b) | Kind::Pooled(b, _) => b.is_end_stream(),
            Kind::Boxed(b) => b.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Full(b) => SizeHint::with_exact(b.as_ref().map_or(0, |b| b.len() as u64)),
            Kind::Incoming(b) | Kind::Pooled(b, _) => b.size_hint(),
            Kind::Boxed(b) => b.size_hint(),
        }
    }
}
