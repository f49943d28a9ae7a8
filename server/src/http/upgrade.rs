//! WebSocket upgrades, handled on the connection itself.
//!
//! actix-http hands every HTTP/1.1 request asking for a WebSocket upgrade to [`service`] with
//! the connection's stream. The request still goes through the whole application (routes,
//! middleware, authentication in [`super::api::sync`]) like any other; what differs is the
//! answer's delivery. If the handler accepted the upgrade, it put an [`Accepted`] on its `101`
//! response; the response head is written here and the stream is handed to the sync connection
//! ([`crate::sync::socket::open`]), without actix's HTTP buffers. Any other answer (refused
//! credentials, an unknown path) is written whole and the connection closed.

use std::convert::Infallible;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use actix_codec::{AsyncRead, AsyncWrite, Framed};
use actix_http::body::{BodySize, BoxBody, MessageBody};
use actix_http::{HttpMessage as _, Request, Response, StatusCode, h1};
use actix_service::{IntoServiceFactory, Service, ServiceFactory, fn_factory, fn_service};
use actix_web::dev::{AppConfig, ServiceResponse};
use futures_util::SinkExt as _;

use crate::app::AppState;
use crate::sync::connection::{self, Authenticated};
use crate::sync::socket;

/// On a request's extensions: it came through [`service`], which can take the stream over.
#[derive(Debug, Clone, Copy)]
pub struct Upgrading;

/// On a `101` response's extensions: the handler accepted the upgrade for this client.
pub struct Accepted {
    pub state: Arc<AppState>,
    pub auth: Authenticated,
}

impl std::fmt::Debug for Accepted {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accepted")
            .field("device", &self.auth.device)
            .finish_non_exhaustive()
    }
}

/// The upgrade service for one worker: it answers through its own copy of the application.
pub fn service<T, F, I, S, B>(
    app: F,
) -> impl ServiceFactory<
    (Request, Framed<T, h1::Codec>),
    Config = (),
    Response = (),
    Error = Infallible,
    InitError = (),
>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    F: Fn() -> I + Clone + 'static,
    I: IntoServiceFactory<S, Request>,
    S: ServiceFactory<
            Request,
            Config = AppConfig,
            Response = ServiceResponse<B>,
            Error = actix_web::Error,
            InitError = (),
        > + 'static,
    B: MessageBody + 'static,
{
    fn_factory(move || {
        let app = app().into_factory();
        async move {
            let app = Rc::new(app.new_service(AppConfig::default()).await?);
            Ok(fn_service(move |(req, framed)| {
                let app = app.clone();
                async move {
                    serve(&*app, req, framed).await;
                    Ok::<(), Infallible>(())
                }
            }))
        }
    })
}

/// Answers one upgrade request, and runs the sync connection if it was accepted.
async fn serve<T, S, B>(app: &S, req: Request, mut framed: Framed<T, h1::Codec>)
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
    S: Service<Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
    B: MessageBody + 'static,
{
    req.extensions_mut().insert(Upgrading);
    let mut response: Response<BoxBody> = match app.call(req).await {
        Ok(res) => res.into_parts().1.map_into_boxed_body().into(),
        Err(e) => Response::from(e),
    };
    let accepted = response.extensions_mut().remove::<Accepted>();
    let (head, body) = response.into_parts();
    match accepted {
        Some(Accepted { state, auth }) if head.status() == StatusCode::SWITCHING_PROTOCOLS => {
            if framed
                .send(h1::Message::Item((head, BodySize::None)))
                .await
                .is_err()
            {
                return;
            }
            let parts = framed.into_parts();
            let (writer, reader) = socket::open(
                parts.io,
                parts.read_buf,
                state.config.max_frame_bytes,
                Duration::from_secs(state.config.idle_connection_seconds),
            );
            connection::run(state, auth, writer, reader).await;
        }
        _ => {
            // Error bodies are short JSON or text; one that cannot be read is sent empty.
            let body = actix_http::body::to_bytes(body).await.unwrap_or_default();
            let size = BodySize::Sized(body.len() as u64);
            let _ = framed.send(h1::Message::Item((head, size))).await;
            let _ = framed.send(h1::Message::Chunk(Some(body))).await;
            let _ = framed.send(h1::Message::Chunk(None)).await;
            let _ = framed.close().await;
        }
    }
}
