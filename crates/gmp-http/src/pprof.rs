//! [`pprof_handler`]: Go's `net/http/pprof` goroutine endpoint,
//! `/debug/pprof/goroutine?debug=0|1|2`, answering from the runtime's
//! goroutine profile.

use std::convert::Infallible;
use std::future::{ready, Ready};

use http::header::{CONTENT_DISPOSITION, CONTENT_TYPE};
use http::{Method, StatusCode};

use crate::body::Body;
use crate::{Request, Response};

/// The path the handler answers.
const GOROUTINE_PATH: &str = "/debug/pprof/goroutine";

/// A service answering `GET /debug/pprof/goroutine?debug=N` as Go's
/// `net/http/pprof` does: `debug=0` (the default) a gzipped
/// `profile.proto` for `go tool pprof`, `debug=1` the grouped text form,
/// `debug=2` the full goroutine dump. Other paths get 404.
pub fn pprof_handler() -> PprofHandler {
    PprofHandler
}

/// The service [`pprof_handler`] returns.
#[derive(Clone, Copy, Debug, Default)]
pub struct PprofHandler;

impl hyper::service::Service<Request> for PprofHandler {
    type Response = Response;
    type Error = Infallible;
    type Future = Ready<Result<Response, Infallible>>;

    fn call(&self, req: Request) -> Self::Future {
        ready(Ok(respond(&req)))
    }
}

fn respond(req: &Request) -> Response {
    let path = req.uri().path();
    if path != GOROUTINE_PATH && path != "/debug/pprof/goroutine/" {
        return plain(StatusCode::NOT_FOUND, "404 page not found\n");
    }
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return plain(StatusCode::METHOD_NOT_ALLOWED, "method not allowed\n");
    }
    let debug = match debug_param(req.uri().query()) {
        Ok(d) => d,
        Err(v) => {
            return plain(
                StatusCode::BAD_REQUEST,
                format!("invalid debug value {v:?}: want 0, 1 or 2\n"),
            )
        }
    };
    let profile = gmp_core::rt::goroutine_profile(debug);
    let mut resp = Response::new(Body::from(profile));
    let h = resp.headers_mut();
    if debug == 0 {
        h.insert(CONTENT_TYPE, "application/octet-stream".parse().unwrap());
        h.insert(
            CONTENT_DISPOSITION,
            "attachment; filename=\"goroutine\"".parse().unwrap(),
        );
    } else {
        h.insert(CONTENT_TYPE, "text/plain; charset=utf-8".parse().unwrap());
    }
    resp
}

/// `debug` from the query string: absent means 0, as in Go; anything but a
/// small number is an error naming the value.
fn debug_param(query: Option<&str>) -> Result<u8, String> {
    let value = query
        .unwrap_or("")
        .split('&')
        .filter_map(|kv| kv.split_once('=').or(Some((kv, ""))))
        .find(|(k, _)| *k == "debug")
        .map(|(_, v)| v);
    match value {
        None => Ok(0),
        Some(v) => match v.parse::<u8>() {
            Ok(d @ 0..=2) => Ok(d),
            _ => Err(v.to_string()),
        },
    }
}

fn plain(status: StatusCode, text: impl Into<Body>) -> Response {
    let mut resp = Response::new(text.into());
    *resp.status_mut() = status;
    resp.headers_mut()
        .insert(CONTENT_TYPE, "text/plain; charset=utf-8".parse().unwrap());
    resp
}

#[cfg(test)]
mod tests {
    use super::debug_param;

    #[test]
    fn debug_param_parses_go_style() {
        assert_eq!(debug_param(None), Ok(0));
        assert_eq!(debug_param(Some("debug=1")), Ok(1));
        assert_eq!(debug_param(Some("x=y&debug=2")), Ok(2));
        assert_eq!(debug_param(Some("debug=7")), Err("7".into()));
        assert_eq!(debug_param(Some("debug=abc")), Err("abc".into()));
        assert_eq!(debug_param(Some("debug")), Err("".into()));
    }
}
