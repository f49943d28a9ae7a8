//! `/console/certificate`: how a phone comes to trust this server (`tls = "local_ca"`): the
//! CA's fingerprint to compare, QR codes of its download address for each name phones use,
//! and the steps for Android, iOS and desktop browsers.

use actix_web::{HttpRequest, HttpResponse};
use askama::Template;
use base64::Engine as _;

use super::view::Chrome;
use super::{Console, ConsoleError, page};

#[derive(Template)]
#[template(path = "console/certificate.html")]
struct CertificatePage {
    chrome: Chrome,
    /// `None` when the server does not run its own CA.
    ca: Option<CaView>,
    tls_mode: String,
}

struct CaView {
    fingerprint: String,
    server_fingerprint: String,
    names: String,
    expires: String,
    uncovered: Vec<String>,
    /// One per address a phone may use: the download URL and its QR code as an image.
    downloads: Vec<Download>,
}

struct Download {
    url: String,
    qr: String,
}

pub async fn show(who: Console, req: HttpRequest) -> Result<HttpResponse, ConsoleError> {
    let state = &who.state;
    let ca = match &state.trust {
        None => None,
        Some(trust) => {
            let port = req
                .connection_info()
                .host()
                .rsplit_once(':')
                .map(|(_, p)| p.to_owned())
                .filter(|p| p.chars().all(|c| c.is_ascii_digit()))
                .unwrap_or_else(|| state.config.listen.port().to_string());
            let port = if port == "443" {
                String::new()
            } else {
                format!(":{port}")
            };
            // The names a phone on the network can use; loopback ones only if there is no other.
            let mut hosts: Vec<&String> = state
                .config
                .tls_names
                .iter()
                .filter(|n| !is_loopback(n))
                .collect();
            if hosts.is_empty() {
                hosts = state.config.tls_names.iter().collect();
            }
            let downloads = hosts
                .into_iter()
                .map(|host| {
                    let host = if host.contains(':') {
                        format!("[{host}]")
                    } else {
                        host.clone()
                    };
                    let url = format!("https://{host}{port}/ca.crt");
                    Ok(Download {
                        qr: qr_data_uri(&url)?,
                        url,
                    })
                })
                .collect::<Result<Vec<_>, ConsoleError>>()?;
            Some(CaView {
                fingerprint: trust.ca_fingerprint.clone(),
                server_fingerprint: trust.server_fingerprint.clone(),
                names: trust.names.join(", "),
                expires: time::OffsetDateTime::from_unix_timestamp(
                    trust.server_not_after.as_secs(),
                )
                .map(|t| t.date().to_string())
                .unwrap_or_default(),
                uncovered: trust.uncovered.clone(),
                downloads,
            })
        }
    };
    page(&CertificatePage {
        chrome: who.chrome("certificate"),
        ca,
        tls_mode: format!("{:?}", state.config.tls),
    })
}

fn is_loopback(name: &str) -> bool {
    name == "localhost"
        || name.ends_with(".localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A QR code of `text` as a `data:` SVG image (the CSP allows `data:` images, no inline markup
/// is trusted).
fn qr_data_uri(text: &str) -> Result<String, ConsoleError> {
    let code = qrcode::QrCode::with_error_correction_level(text, qrcode::EcLevel::M)
        .map_err(|e| ConsoleError::Internal(format!("QR code: {e}")))?;
    let svg = code
        .render::<qrcode::render::svg::Color<'_>>()
        .min_dimensions(220, 220)
        .quiet_zone(true)
        .build();
    Ok(format!(
        "data:image/svg+xml;base64,{}",
        base64::engine::general_purpose::STANDARD.encode(svg)
    ))
}
