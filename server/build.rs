//! Embeds the PWA into the server binary: every file of `pwa/web/` and of the wasm-bindgen
//! output in `pwa/dist/pkg/` (built by `cargo xtask wasm`), each with a gzip copy made here so
//! that serving compressed assets costs no CPU at run time, and an ETag (its SHA-256).
//!
//! The service worker's `VERSION` (a hash of `pwa/web/`, see `pwa/tools/stamp-sw.mjs`) gets
//! the wasm's hash appended here, so that a new wasm alone also makes browsers install the new
//! version of the app.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

fn main() {
    let manifest = PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest
        .parent()
        .expect("server/ is inside the workspace")
        .to_path_buf();
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("set by cargo"));
    let web = root.join("pwa/web");
    let pkg = root.join("pwa/dist/pkg");
    println!("cargo:rerun-if-changed={}", web.display());
    println!("cargo:rerun-if-changed={}", pkg.display());
    println!("cargo:rerun-if-changed={}", root.join("pwa/dist").display());

    let mut files = Vec::new();
    collect(&web, &web, "", &mut files);
    let wasm_built = pkg.join("saksi_wasm_bg.wasm").is_file();
    if wasm_built {
        collect(&pkg, &pkg, "/pkg", &mut files);
    }
    files.sort();

    let wasm_hash = if wasm_built {
        let mut h = Sha256::new();
        for name in ["saksi_wasm_bg.wasm", "saksi_wasm.js"] {
            h.update(std::fs::read(pkg.join(name)).expect("read wasm"));
        }
        hex(&h.finalize()[..6])
    } else {
        "nowasm".to_owned()
    };

    let gz_dir = out.join("gz");
    std::fs::create_dir_all(&gz_dir).expect("create OUT_DIR/gz");
    let mut code = String::from("pub static ASSETS: &[Asset] = &[\n");
    for (i, (url, path)) in files.iter().enumerate() {
        let mut bytes = std::fs::read(path).expect("read asset");
        let mut body_path = path.clone();
        if url == "/sw.js" {
            let text = String::from_utf8(bytes).expect("sw.js is UTF-8");
            let stamped = stamp_version(&text, &wasm_hash);
            body_path = out.join("sw.js");
            std::fs::write(&body_path, &stamped).expect("write stamped sw.js");
            bytes = stamped.into_bytes();
        }
        let etag = format!("\"{}\"", hex(&Sha256::digest(&bytes)[..8]));
        let gz_path = gz_dir.join(format!("{i}.gz"));
        let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(&bytes).expect("gzip in memory");
        std::fs::write(&gz_path, encoder.finish().expect("gzip in memory"))
            .expect("write gzip asset");
        writeln!(
            code,
            "    Asset {{ path: {url:?}, content_type: {ct:?}, etag: {etag:?}, body: include_bytes!({body:?}), gzip: include_bytes!({gz:?}) }},",
            ct = content_type(path),
            body = body_path.display().to_string(),
            gz = gz_path.display().to_string(),
        )
        .expect("write to string");
    }
    code.push_str("];\n");
    writeln!(code, "pub const WASM_BUILT: bool = {wasm_built};").expect("write to string");
    std::fs::write(out.join("assets.rs"), code).expect("write assets.rs");
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `const VERSION = "abc";` becomes `const VERSION = "abc-<wasm hash>";`.
fn stamp_version(sw: &str, wasm_hash: &str) -> String {
    const KEY: &str = "const VERSION = \"";
    match sw.find(KEY) {
        Some(start) => {
            let at = start + KEY.len();
            match sw[at..].find('"') {
                Some(end) => format!("{}-{wasm_hash}{}", &sw[..at + end], &sw[at + end..]),
                None => sw.to_owned(),
            }
        }
        None => sw.to_owned(),
    }
}

fn collect(base: &Path, dir: &Path, prefix: &str, files: &mut Vec<(String, PathBuf)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let name = entry.file_name().to_string_lossy().into_owned();
        if name.starts_with('.') {
            continue;
        }
        if path.is_dir() {
            collect(base, &path, prefix, files);
        } else {
            let rel = path
                .strip_prefix(base)
                .expect("inside base")
                .to_string_lossy()
                .replace('\\', "/");
            // wasm-bindgen writes a package.json and .gitignore we do not serve.
            if prefix == "/pkg" && !(rel.ends_with(".js") || rel.ends_with(".wasm")) {
                continue;
            }
            files.push((format!("{prefix}/{rel}"), path));
        }
    }
}

fn content_type(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .unwrap_or_default()
    {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "json" => "application/json",
        "webmanifest" => "application/manifest+json",
        "wasm" => "application/wasm",
        "png" => "image/png",
        "svg" => "image/svg+xml",
        "ico" => "image/x-icon",
        "txt" => "text/plain; charset=utf-8",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}
