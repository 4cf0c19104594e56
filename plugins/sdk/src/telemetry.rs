//! Telemetry set-up for plugins: `tracing` to stderr (human text, or JSON
//! when `KERNO_LOG_FORMAT=json`; filter from `RUST_LOG`, default `info`) and,
//! with the `otlp` feature, span export over OTLP/gRPC when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set. The W3C trace context of the current
//! span is injected into the gRPC metadata of every kernel call
//! (`traceparent`), so a request can be followed across processes.

use tonic::metadata::MetadataMap;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

/// Selects the log format: `text` (default) or `json`.
pub const LOG_FORMAT_ENV: &str = "KERNO_LOG_FORMAT";
/// The OTLP collector endpoint; export is on only when it is set.
pub const OTLP_ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Why telemetry could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A global subscriber was already installed.
    #[error("a tracing subscriber is already installed: {0}")]
    AlreadyInstalled(#[source] tracing_subscriber::util::TryInitError),
    /// The OTLP exporter could not be built.
    #[error("cannot build the otlp exporter: {0}")]
    Exporter(String),
}

/// Flushes and stops span export when dropped; keep it alive in `main`.
#[must_use = "dropping the guard stops span export"]
pub struct TelemetryGuard {
    #[cfg(feature = "otlp")]
    provider: Option<opentelemetry_sdk::trace::SdkTracerProvider>,
}

impl Drop for TelemetryGuard {
    fn drop(&mut self) {
        #[cfg(feature = "otlp")]
        if let Some(provider) = self.provider.take()
            && let Err(e) = provider.shutdown()
        {
            eprintln!("otlp span export did not shut down cleanly: {e}");
        }
    }
}

/// Whether logs should be JSON, from the value of `KERNO_LOG_FORMAT`.
fn json_format(value: Option<&str>) -> bool {
    value.is_some_and(|v| v.eq_ignore_ascii_case("json"))
}

/// Installs the global subscriber for a process named `service_name`.
/// Call it once, inside the tokio runtime (the OTLP exporter needs it).
pub fn init(service_name: &str) -> Result<TelemetryGuard, TelemetryError> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let json = json_format(std::env::var(LOG_FORMAT_ENV).ok().as_deref());
    // Colours only for a person at a terminal, not in log files.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let text_layer = (!json).then(|| {
        tracing_subscriber::fmt::layer()
            .with_ansi(ansi)
            .with_writer(std::io::stderr)
    });
    let json_layer = json.then(|| {
        tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_writer(std::io::stderr)
    });
    let registry = tracing_subscriber::registry()
        .with(filter)
        .with(text_layer)
        .with(json_layer);

    #[cfg(feature = "otlp")]
    {
        let endpoint = std::env::var(OTLP_ENDPOINT_ENV)
            .ok()
            .filter(|e| !e.is_empty());
        let (otel_layer, provider) = match endpoint {
            Some(endpoint) => {
                let (layer, provider) = otlp::layer(service_name, &endpoint)?;
                (Some(layer), Some(provider))
            }
            None => (None, None),
        };
        registry
            .with(otel_layer)
            .try_init()
            .map_err(TelemetryError::AlreadyInstalled)?;
        Ok(TelemetryGuard { provider })
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = service_name;
        registry
            .try_init()
            .map_err(TelemetryError::AlreadyInstalled)?;
        if std::env::var(OTLP_ENDPOINT_ENV).is_ok() {
            tracing::warn!(
                "OTEL_EXPORTER_OTLP_ENDPOINT is set but kerno-sdk was built without the otlp feature"
            );
        }
        Ok(TelemetryGuard {})
    }
}

/// Writes the current span's trace context into gRPC metadata (no-op without
/// the `otlp` feature or when export is off).
pub fn inject_context(metadata: &mut MetadataMap) {
    #[cfg(feature = "otlp")]
    otlp::inject(metadata);
    #[cfg(not(feature = "otlp"))]
    let _ = metadata;
}

/// Makes `span` a child of the trace context found in incoming gRPC metadata
/// (for a plugin's own gRPC handlers).
pub fn set_parent_from(metadata: &MetadataMap, span: &tracing::Span) {
    #[cfg(feature = "otlp")]
    otlp::extract(metadata, span);
    #[cfg(not(feature = "otlp"))]
    let _ = (metadata, span);
}

#[cfg(feature = "otlp")]
mod otlp {
    use opentelemetry::propagation::{Extractor, Injector};
    use opentelemetry::trace::TracerProvider as _;
    use opentelemetry_otlp::WithExportConfig;
    use opentelemetry_sdk::propagation::TraceContextPropagator;
    use opentelemetry_sdk::trace::SdkTracerProvider;
    use tonic::metadata::{MetadataKey, MetadataMap, MetadataValue};
    use tracing_opentelemetry::OpenTelemetrySpanExt;

    use super::TelemetryError;

    pub(super) fn layer<S>(
        service_name: &str,
        endpoint: &str,
    ) -> Result<
        (
            tracing_opentelemetry::OpenTelemetryLayer<S, opentelemetry_sdk::trace::Tracer>,
            SdkTracerProvider,
        ),
        TelemetryError,
    >
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        let exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_tonic()
            .with_endpoint(endpoint)
            .build()
            .map_err(|e| TelemetryError::Exporter(e.to_string()))?;
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(
                opentelemetry_sdk::Resource::builder()
                    .with_service_name(service_name.to_owned())
                    .build(),
            )
            .build();
        opentelemetry::global::set_text_map_propagator(TraceContextPropagator::new());
        opentelemetry::global::set_tracer_provider(provider.clone());
        let tracer = provider.tracer(service_name.to_owned());
        Ok((tracing_opentelemetry::layer().with_tracer(tracer), provider))
    }

    struct MetadataInjector<'a>(&'a mut MetadataMap);

    impl Injector for MetadataInjector<'_> {
        fn set(&mut self, key: &str, value: String) {
            if let (Ok(key), Ok(value)) = (
                MetadataKey::from_bytes(key.as_bytes()),
                MetadataValue::try_from(value.as_str()),
            ) {
                self.0.insert(key, value);
            }
        }
    }

    struct MetadataExtractor<'a>(&'a MetadataMap);

    impl Extractor for MetadataExtractor<'_> {
        fn get(&self, key: &str) -> Option<&str> {
            self.0.get(key).and_then(|v| v.to_str().ok())
        }

        fn keys(&self) -> Vec<&str> {
            self.0
                .keys()
                .filter_map(|k| match k {
                    tonic::metadata::KeyRef::Ascii(k) => Some(k.as_str()),
                    tonic::metadata::KeyRef::Binary(_) => None,
                })
                .collect()
        }
    }

    pub(super) fn inject(metadata: &mut MetadataMap) {
        let context = tracing::Span::current().context();
        opentelemetry::global::get_text_map_propagator(|p| {
            p.inject_context(&context, &mut MetadataInjector(metadata));
        });
    }

    pub(super) fn extract(metadata: &MetadataMap, span: &tracing::Span) {
        let context = opentelemetry::global::get_text_map_propagator(|p| {
            p.extract(&MetadataExtractor(metadata))
        });
        // A span that is not recorded by the OpenTelemetry layer cannot take
        // a parent; nothing to do then.
        let _ = span.set_parent(context);
    }

    #[cfg(test)]
    mod tests {
        use super::*;
        use opentelemetry::propagation::TextMapPropagator;
        use opentelemetry::trace::{
            SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState,
        };

        #[test]
        fn trace_context_round_trips_through_grpc_metadata() {
            let propagator = TraceContextPropagator::new();
            let span_context = SpanContext::new(
                TraceId::from(0x0af7651916cd43dd8448eb211c80319c_u128),
                SpanId::from(0xb7ad6b7169203331_u64),
                TraceFlags::SAMPLED,
                true,
                TraceState::default(),
            );
            let cx = opentelemetry::Context::new().with_remote_span_context(span_context.clone());
            let mut metadata = MetadataMap::new();
            propagator.inject_context(&cx, &mut MetadataInjector(&mut metadata));
            assert_eq!(
                metadata.get("traceparent").and_then(|v| v.to_str().ok()),
                Some("00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01")
            );
            let back = propagator.extract(&MetadataExtractor(&metadata));
            assert_eq!(
                back.span().span_context().trace_id(),
                span_context.trace_id()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_format_is_json_only_when_asked() {
        assert!(json_format(Some("json")));
        assert!(json_format(Some("JSON")));
        assert!(!json_format(Some("text")));
        assert!(!json_format(None));
    }
}
