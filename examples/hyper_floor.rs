//! The least a proxy built on hyper does, to measure what scimgate's own work costs on top of
//! its HTTP library: one current-thread runtime, hyper's HTTP/1 server, and for each client
//! connection one HTTP/1 connection to the app, opened when the client connects. A path under
//! `FROM` is sent to the app under `TO`; nothing else is looked at: no authentication, routing,
//! header hygiene, timeouts, limits, logs or metrics. Not a proxy to run: a row of
//! `benches/load.sh` (`FLOOR_BIN`) and of the comparison in BENCHMARKS.md.
//!
//! `cargo build --release --example hyper_floor`, then
//! `target/release/examples/hyper_floor LISTEN APP FROM TO`, e.g.
//! `hyper_floor 127.0.0.1:8081 127.0.0.1:8080 /bench/ /scim/v2/`.

use std::convert::Infallible;
use std::rc::Rc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::client::conn::http1::SendRequest;
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Mutex;

struct Args {
    listen: String,
    app: String,
    from: String,
    to: String,
}

fn main() -> std::io::Result<()> {
    let mut args = std::env::args().skip(1);
    let (Some(listen), Some(app), Some(from), Some(to)) =
        (args.next(), args.next(), args.next(), args.next())
    else {
        eprintln!("usage: hyper_floor LISTEN APP FROM TO");
        std::process::exit(2);
    };
    let args = Rc::new(Args {
        listen,
        app,
        from,
        to,
    });
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    tokio::task::LocalSet::new().block_on(&runtime, serve(args))
}

async fn serve(args: Rc<Args>) -> std::io::Result<()> {
    let listener = TcpListener::bind(&args.listen).await?;
    loop {
        let (client, _) = listener.accept().await?;
        let args = args.clone();
        tokio::task::spawn_local(async move {
            if let Err(e) = connection(client, args).await {
                eprintln!("hyper_floor: {e}");
            }
        });
    }
}

/// One client connection and its own connection to the app, for as long as the client stays.
async fn connection(client: TcpStream, args: Rc<Args>) -> Result<(), Box<dyn std::error::Error>> {
    client.set_nodelay(true)?;
    let app = TcpStream::connect(&args.app).await?;
    app.set_nodelay(true)?;
    let (sender, app_conn) = hyper::client::conn::http1::handshake(TokioIo::new(app)).await?;
    tokio::task::spawn_local(app_conn);
    // HTTP/1 serves one request at a time per connection: the lock is never contended.
    let sender = Rc::new(Mutex::new(sender));
    let service = hyper::service::service_fn(move |request| {
        let (sender, args) = (sender.clone(), args.clone());
        async move { Ok::<_, Infallible>(forward(request, &sender, &args).await) }
    });
    hyper::server::conn::http1::Builder::new()
        .serve_connection(TokioIo::new(client), service)
        .await?;
    Ok(())
}

async fn forward(
    request: Request<Incoming>,
    sender: &Mutex<SendRequest<Full<Bytes>>>,
    args: &Args,
) -> Response<Full<Bytes>> {
    let bad_gateway = || {
        let mut answer = Response::new(Full::new(Bytes::new()));
        *answer.status_mut() = StatusCode::BAD_GATEWAY;
        answer
    };
    let (mut parts, body) = request.into_parts();
    let path = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let Some(rest) = path.strip_prefix(&args.from) else {
        return bad_gateway();
    };
    let Ok(uri) = Uri::try_from(format!("{}{rest}", args.to)) else {
        return bad_gateway();
    };
    parts.uri = uri;
    let Ok(body) = body.collect().await.map(|b| b.to_bytes()) else {
        return bad_gateway();
    };
    let mut sender = sender.lock().await;
    if sender.ready().await.is_err() {
        return bad_gateway();
    }
    let Ok(answer) = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await
    else {
        return bad_gateway();
    };
    drop(sender);
    let (parts, body) = answer.into_parts();
    match body.collect().await {
        Ok(body) => Response::from_parts(parts, Full::new(body.to_bytes())),
        Err(_) => bad_gateway(),
    }
}
