//! Tracing: the pipeline opens a DEBUG span per request (`request`, with `request_id` and
//! `tenant`), one per stage under it, and one per Bulk operation the proxy carries out
//! (`bulk_op`). Under the default INFO filter they cost a level check each; `RUST_LOG` or the
//! log level shows them, and the `otel` feature exports them (OTLP over HTTP).

/// The OTLP export of the pipeline's spans, configured by OpenTelemetry's own environment
/// variables: `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) turns it
/// on, `OTEL_SERVICE_NAME` names the service (`scimgate` when unset), and the exporter reads
/// the rest (`OTEL_EXPORTER_OTLP_HEADERS`, `…_TIMEOUT`) itself.
#[cfg(feature = "otel")]
pub mod otel {
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::ExporterBuildError;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use opentelemetry_sdk::Resource;
    use tracing::{Level, Subscriber};
    use tracing_subscriber::filter::Targets;
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    const ENDPOINTS: [&str; 2] = [
        "OTEL_EXPORTER_OTLP_ENDPOINT",
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
    ];

    /// Spans on their way to a collector, batched on a thread of the exporter's own.
    pub struct Export {
        provider: SdkTracerProvider,
    }

    impl Export {
        /// The export, when the environment names a collector.
        pub fn from_env() -> Result<Option<Self>, ExporterBuildError> {
            let named = |var: &&str| std::env::var_os(var).is_some_and(|v| !v.is_empty());
            if !ENDPOINTS.iter().any(named) {
                return Ok(None);
            }
            let exporter = opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .build()?;
            let mut resource = Resource::builder();
            if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
                resource = resource.with_service_name("scimgate");
            }
            let provider = SdkTracerProvider::builder()
                .with_resource(resource.build())
                .with_batch_exporter(exporter)
                .build();
            Ok(Some(Self { provider }))
        }

        /// The layer that hands spans to the exporter. Its own filter takes scimgate's spans
        /// down to DEBUG, where the stage spans are, whatever the log's filter keeps.
        pub fn layer<S>(&self) -> impl Layer<S>
        where
            S: Subscriber + for<'a> LookupSpan<'a>,
        {
            let tracer = self.provider.tracer("scimgate");
            let ours = Targets::new().with_target("scimgate", Level::DEBUG);
            tracing_opentelemetry::layer()
                .with_tracer(tracer)
                .with_filter(ours)
        }

        /// Sends the spans still batched; on shutdown, after the last request.
        pub fn shutdown(self) {
            if let Err(e) = self.provider.shutdown() {
                eprintln!("scimgate: flushing spans to the OpenTelemetry collector: {e}");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::{Arc, Mutex};

    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::Subscriber;
    use tracing_subscriber::layer::{Context, SubscriberExt};
    use tracing_subscriber::registry::LookupSpan;
    use tracing_subscriber::Layer;

    use crate::config::Config;
    use crate::runtime::Runtime;

    /// A span as the test saw it: its name, its fields, and its parent.
    #[derive(Debug, Clone)]
    struct Seen {
        name: &'static str,
        parent: Option<Id>,
        fields: HashMap<String, String>,
    }

    /// Keeps every span of this crate, by id.
    #[derive(Clone, Default)]
    struct Spans(Arc<Mutex<HashMap<Id, Seen>>>);

    struct Fields<'a>(&'a mut HashMap<String, String>);

    impl Visit for Fields<'_> {
        fn record_str(&mut self, field: &Field, value: &str) {
            self.0.insert(field.name().to_owned(), value.to_owned());
        }
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            self.0.insert(field.name().to_owned(), format!("{value:?}"));
        }
    }

    impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for Spans {
        fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
            if !attrs.metadata().target().starts_with("scimgate") {
                return;
            }
            let parent = ctx.span(id).and_then(|s| s.parent()).map(|p| p.id());
            let mut fields = HashMap::new();
            attrs.record(&mut Fields(&mut fields));
            let seen = Seen {
                name: attrs.metadata().name(),
                parent,
                fields,
            };
            self.0
                .lock()
                .expect("not poisoned")
                .insert(id.clone(), seen);
        }

        fn on_record(&self, id: &Id, values: &Record<'_>, _: Context<'_, S>) {
            if let Some(seen) = self.0.lock().expect("not poisoned").get_mut(id) {
                values.record(&mut Fields(&mut seen.fields));
            }
        }
    }

    impl Spans {
        fn all(&self) -> HashMap<Id, Seen> {
            self.0.lock().expect("not poisoned").clone()
        }
    }

    /// The span's ancestors, nearest first, and itself before them.
    fn lineage<'a>(spans: &'a HashMap<Id, Seen>, id: &Id) -> Vec<&'a Seen> {
        let mut out = Vec::new();
        let mut next = spans.get(id);
        while let Some(seen) = next {
            out.push(seen);
            next = seen.parent.as_ref().and_then(|p| spans.get(p));
        }
        out
    }

    /// The names of the spans under the `request` span whose request id is `request_id`.
    fn stages_of(spans: &HashMap<Id, Seen>, request_id: &str) -> Vec<&'static str> {
        let mut names: Vec<_> = spans
            .keys()
            .filter(|id| {
                lineage(spans, id).iter().skip(1).any(|s| {
                    s.name == "request"
                        && s.fields.get("request_id").map(String::as_str) == Some(request_id)
                })
            })
            .map(|id| spans[id].name)
            .collect();
        names.sort_unstable();
        names.dedup();
        names
    }

    async fn proxy() -> std::net::SocketAddr {
        let dir = tempfile::tempdir().expect("temp dir");
        let text = format!(
            "[server]\nlisten = \"127.0.0.1:0\"\n[[tenant]]\nid = \"t\"\nroute = {{ path_prefix = \"/t\" }}\nupstream = {{ url = \"memory:\" }}\nauth.bearer = [{{ sha256 = \"{}\" }}]\n",
            crate::auth::token_hash("secret")
        );
        let config = Config::from_toml(&text, &dir.path().join("scimgate.toml")).expect("valid");
        let rt = Arc::new(Runtime::build(config).expect("built"));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bound");
        let addr = listener.local_addr().expect("bound address");
        // The senders are leaked with the task: the proxy serves until the test ends.
        let (stop, stopped) = tokio::sync::watch::channel(false);
        let (hurry, hurried) = tokio::sync::watch::channel(false);
        tokio::spawn(async move {
            let _keep = (stop, hurry, dir);
            let workers = crate::listener::Workers::start(1).expect("one worker: this one");
            crate::listener::serve(listener, &workers, rt, stopped, hurried).await
        });
        addr
    }

    async fn post(addr: std::net::SocketAddr, path: &str, request_id: &str, body: &str) -> u16 {
        let response = reqwest::Client::new()
            .post(format!("http://{addr}/t{path}"))
            .bearer_auth("secret")
            .header("x-request-id", request_id)
            .header("content-type", "application/scim+json")
            .body(body.to_owned())
            .send()
            .await
            .expect("answered");
        let status = response.status().as_u16();
        response.bytes().await.expect("body read");
        status
    }

    // Current-thread runtime: the proxy's tasks run on the thread the subscriber is set on.
    #[tokio::test]
    async fn each_stage_opens_a_span_under_the_request_span_with_its_id() {
        let spans = Spans::default();
        let subscriber = tracing_subscriber::registry().with(spans.clone());
        let _default = tracing::subscriber::set_default(subscriber);
        let addr = proxy().await;

        let user = r#"{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"ada"}"#;
        assert_eq!(post(addr, "/Users", "trace-create", user).await, 201);
        let bulk = r#"{"schemas":["urn:ietf:params:scim:api:messages:2.0:BulkRequest"],
            "Operations":[{"method":"POST","path":"/Users","bulkId":"b1",
            "data":{"schemas":["urn:ietf:params:scim:schemas:core:2.0:User"],"userName":"bob"}}]}"#;
        assert_eq!(post(addr, "/Bulk", "trace-bulk", bulk).await, 200);

        let all = spans.all();
        let request = all
            .values()
            .find(|s| s.name == "request" && s.fields["request_id"] == "trace-create")
            .expect("a request span with the caller's request id");
        assert_eq!(request.fields.get("tenant").map(String::as_str), Some("t"));
        let expected = [
            "answer",
            "authenticate",
            "classify",
            "fill",
            "filter",
            "forward",
            "normalize",
            "record",
            "route",
        ];
        assert_eq!(stages_of(&all, "trace-create"), expected);

        // The Bulk's operation is a span of its own, with the stages it passes under it.
        let op = all
            .iter()
            .find(|(_, s)| s.name == "bulk_op")
            .expect("a span for the Bulk operation");
        assert_eq!(op.1.fields.get("index").map(String::as_str), Some("0"));
        let under_op: Vec<_> = all
            .iter()
            .filter(|(id, _)| {
                lineage(&all, id)
                    .iter()
                    .skip(1)
                    .any(|s| s.name == "bulk_op")
            })
            .map(|(_, s)| s.name)
            .collect();
        for stage in ["classify", "normalize", "forward", "answer", "record"] {
            assert!(
                under_op.contains(&stage),
                "{stage} under bulk_op: {under_op:?}"
            );
        }
        assert!(stages_of(&all, "trace-bulk").contains(&"bulk_op"));
    }
}
