//! The PWA, embedded in the binary at build time (see `build.rs`). Paths are looked up in a
//! fixed table, so no request can reach the file system.

use actix_web::http::header;
use actix_web::{HttpRequest, HttpResponse};

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    pub path: &'static str,
    pub content_type: &'static str,
    /// A strong ETag: the first 8 bytes of the SHA-256 of `body`, quoted.
    pub etag: &'static str,
    pub body: &'static [u8],
    pub gzip: &'static [u8],
}

include!(concat!(env!("OUT_DIR"), "/assets.rs"));

/// The asset for a URL path (`/` is the app shell).
pub fn find(path: &str) -> Option<&'static Asset> {
    let path = if path == "/" { "/index.html" } else { path };
    ASSETS.iter().find(|a| a.path == path)
}

pub async fn serve(req: HttpRequest) -> HttpResponse {
    let Some(asset) = find(req.path()) else {
        return HttpResponse::NotFound()
            .content_type("text/plain; charset=utf-8")
            .body("not found");
    };
    let unchanged = req
        .headers()
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|tag| tag.trim() == asset.etag));
    if unchanged {
        return HttpResponse::NotModified()
            .insert_header((header::ETAG, asset.etag))
            .finish();
    }
    let accepts_gzip = req
        .headers()
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|e| e.trim().starts_with("gzip")));
    let mut res = HttpResponse::Ok();
    res.content_type(asset.content_type)
        .insert_header((header::VARY, "Accept-Encoding"))
        .insert_header((header::ETAG, asset.etag));
    if asset.path == "/sw.js" {
        // The service worker may control the whole origin.
        res.insert_header(("Service-Worker-Allowed", "/"));
    }
    if accepts_gzip && asset.gzip.len() < asset.body.len() {
        res.insert_header((header::CONTENT_ENCODING, "gzip"))
            .body(asset.gzip)
    } else {
        res.body(asset.body)
    }
}
