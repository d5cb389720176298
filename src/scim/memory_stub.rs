//! Temporary stand-in until the memory store lands.
use super::request::Method;
#[derive(Debug, Default)]
pub struct MemoryStore;
pub struct StoreRequest<'a> { pub method: Method, pub path: &'a str, pub query: Option<&'a str>, pub body: &'a [u8], pub base_url: &'a str }
pub struct StoreResponse { pub status: u16, pub body: Vec<u8>, pub location: Option<String>, pub etag: Option<String> }
impl MemoryStore { pub fn new() -> Self { Self } pub fn handle(&self, _r: &StoreRequest<'_>) -> StoreResponse { StoreResponse { status: 200, body: b"{}".to_vec(), location: None, etag: None } } }
