//! CORS: browser apps on any origin may call every endpoint. No cookies are
//! involved, so `*` is safe; `Authorization` must be listed by name (a `*` does not
//! cover it). The answers do not depend on the origin or on what a preflight asks
//! (the lists are fixed), so they carry no `Vary`.
//!
//! Written out rather than taken from tower-http, whose `CorsLayer` does this well
//! but not cheaply for a server that answers in microseconds: hyper clones the
//! whole service stack for every request, the layer's header values (shared,
//! counted) with it, and the layer builds a header map per request. Counted on a
//! FHIR read (bench/instructions.sh), that was about 3,900 of its 38,000
//! instructions; this layer takes about 900. A fixed policy needs neither: its
//! headers are static values, and the layer is a unit.

use std::convert::Infallible;
use std::task::{Context, Poll};

use axum::extract::Request;
use axum::http::{HeaderValue, Method, header};
use axum::response::{IntoResponse, Response};
use futures_util::future::{Either, FutureExt, Map, Ready, ready};
use tower::{Layer, Service};

const ANY_ORIGIN: HeaderValue = HeaderValue::from_static("*");
const METHODS: HeaderValue = HeaderValue::from_static("GET,POST,PUT,PATCH,DELETE,OPTIONS");
/// What an app sends beyond the CORS-safelisted headers: its token, JSON bodies,
/// and the conditions and preferences of the FHIR API.
const HEADERS: HeaderValue =
    HeaderValue::from_static("authorization,content-type,accept,if-match,if-none-match,if-none-exist,prefer");
/// What an app may read of an answer beyond the safelisted headers.
const EXPOSED: HeaderValue =
    HeaderValue::from_static("etag,last-modified,location,content-location,www-authenticate");

#[derive(Clone, Copy)]
pub(crate) struct CorsLayer;

impl<S> Layer<S> for CorsLayer {
    type Service = Cors<S>;

    fn layer(&self, inner: S) -> Cors<S> {
        Cors(inner)
    }
}

#[derive(Clone)]
pub(crate) struct Cors<S>(S);

type Answered<F> = Map<F, fn(Result<Response, Infallible>) -> Result<Response, Infallible>>;

impl<S> Service<Request> for Cors<S>
where
    S: Service<Request, Response = Response, Error = Infallible>,
{
    type Response = Response;
    type Error = Infallible;
    type Future = Either<Ready<Result<Response, Infallible>>, Answered<S::Future>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.0.poll_ready(cx)
    }

    fn call(&mut self, request: Request) -> Self::Future {
        // Every OPTIONS request is taken for a preflight, answered here, as
        // tower-http does: the app has no OPTIONS routes of its own.
        if request.method() == Method::OPTIONS {
            return Either::Left(ready(Ok(preflight())));
        }
        Either::Right(self.0.call(request).map(exposed as fn(_) -> _))
    }
}

fn preflight() -> Response {
    let mut response = ().into_response();
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    headers.insert(header::ACCESS_CONTROL_ALLOW_METHODS, METHODS);
    headers.insert(header::ACCESS_CONTROL_ALLOW_HEADERS, HEADERS);
    response
}

fn exposed(answer: Result<Response, Infallible>) -> Result<Response, Infallible> {
    let Ok(mut response) = answer;
    let headers = response.headers_mut();
    headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, ANY_ORIGIN);
    headers.insert(header::ACCESS_CONTROL_EXPOSE_HEADERS, EXPOSED);
    Ok(response)
}
