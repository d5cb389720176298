//! Small helpers the gap fillers share: upstream replies handed on as answers, and the
//! request body read as JSON.

use http::{header, Response};
use http_body_util::{Either, Full};
use serde_json::Value;

use super::error::EmulateError;
use crate::body::Body;
use crate::ctx::RequestCtx;

/// An upstream reply handed on as the answer; stage 10 rewrites it if it is an error.
pub fn relay(reply: crate::upstream::Reply) -> Response<Body> {
    let mut response = Response::new(Either::Right(Full::new(reply.body)));
    *response.status_mut() = reply.status;
    for name in [header::CONTENT_TYPE, header::LOCATION, header::ETAG] {
        if let Some(v) = reply.headers.get(&name) {
            response.headers_mut().insert(name, v.clone());
        }
    }
    response
}

/// The request body as JSON (parsed once per request).
pub fn body_json(ctx: &mut RequestCtx) -> Result<&Value, EmulateError> {
    ctx.body.json().map_err(EmulateError::BadJson)
}
