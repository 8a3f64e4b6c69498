//! One transaction's trace crosses every service (issue 9, item 6): a client sends `Submit`
//! with a W3C `traceparent`; ingest's server span continues it, the record carries it on the
//! transactions topic, the speed layer's record span continues it and publishes the vector in
//! it, inference's stream-scoring span continues it and publishes the score in it, and the
//! drift-monitor's record span continues it. Each service exports its spans by OTLP/gRPC to a
//! receiver run by this test (the OpenTelemetry collector's own `TraceService` protocol).

use e2e::{Stack, now_ms};
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
    TraceService, TraceServiceServer,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use proto::v1;
use proto::v1::inference_service_client::InferenceServiceClient;
use proto::v1::ingest_service_client::IngestServiceClient;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// (service.name, span name) of each span received, by trace id.
type Traces = BTreeMap<Vec<u8>, Vec<(String, String)>>;

#[derive(Debug, Clone, Default)]
struct Collector(Arc<Mutex<Traces>>);

#[tonic::async_trait]
impl TraceService for Collector {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let mut traces = self.0.lock().unwrap();
        for rs in request.into_inner().resource_spans {
            let service = rs
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|kv| kv.key == "service.name")
                .and_then(|kv| match kv.value.as_ref()?.value.as_ref()? {
                    Value::StringValue(s) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            for span in rs.scope_spans.into_iter().flat_map(|s| s.spans) {
                traces
                    .entry(span.trace_id)
                    .or_default()
                    .push((service.clone(), span.name));
            }
        }
        Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_transactions_trace_spans_ingest_feature_service_inference_and_drift_monitor() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("tr{}", now_ms());
    let collector = Collector::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let otlp = format!("http://{}", listener.local_addr().unwrap());
    let server = tonic::transport::Server::builder()
        .add_service(TraceServiceServer::new(collector.clone()))
        .serve_with_incoming(tokio_stream::wrappers::TcpListenerStream::new(listener));
    tokio::spawn(server);

    let (_features, services) = crate::faults::start_loop(
        &stack,
        dir.path(),
        &run,
        vec![("VIGIL_TELEMETRY__OTLP_ENDPOINT".into(), otlp)],
    )
    .await;

    // The client's trace: a fixed trace id, sampled.
    let trace_id: Vec<u8> = (1..=16).collect();
    let hex: String = trace_id.iter().map(|b| format!("{b:02x}")).collect();
    let mut request = tonic::Request::new(v1::SubmitRequest {
        transaction: Some(crate::faults::transaction(
            &run,
            "t0",
            "u0",
            now_ms() - 1_000,
        )),
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{hex}-0102030405060708-01").parse().unwrap(),
    );
    let mut ingest = IngestServiceClient::connect(services[0].endpoint())
        .await
        .unwrap();
    let r = ingest.submit(request).await.unwrap().into_inner();
    assert!(!r.duplicate, "{r:?}");

    // Each service exports in batches (every 5 s by default).
    let expected: BTreeSet<&str> =
        ["ingest", "feature-service", "inference", "drift-monitor"].into();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let spans = collector
            .0
            .lock()
            .unwrap()
            .get(&trace_id)
            .cloned()
            .unwrap_or_default();
        let services: BTreeSet<&str> = spans.iter().map(|(s, _)| s.as_str()).collect();
        if expected.iter().all(|s| services.contains(s)) {
            eprintln!("traces: one trace, {} spans: {spans:?}", spans.len());
            // A server span in ingest, a consumer span in each of the other three.
            assert!(
                spans.contains(&("ingest".into(), "grpc.request".into())),
                "{spans:?}"
            );
            for s in ["feature-service", "inference", "drift-monitor"] {
                assert!(spans.contains(&(s.into(), "consume".into())), "{spans:?}");
            }
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the trace reached only {services:?}; traces seen: {}",
            collector.0.lock().unwrap().len()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // A synchronous Score under a second client trace: inference's server span continues
    // it, and the score record it publishes carries it to the drift-monitor.
    // Unique to this run: the topics keep earlier runs' records, which new consumer groups
    // read again, so a fixed id could be found on a record this run never published.
    let trace2: Vec<u8> = (u128::from(now_ms().unsigned_abs()) << 32 | 0xa5a5)
        .to_be_bytes()
        .to_vec();
    let hex2: String = trace2.iter().map(|b| format!("{b:02x}")).collect();
    let mut request = tonic::Request::new(v1::ScoreRequest {
        transaction: Some(crate::faults::transaction(
            &run,
            "t1",
            "u0",
            now_ms() - 1_000,
        )),
        explain: false,
    });
    request.metadata_mut().insert(
        "traceparent",
        format!("00-{hex2}-0102030405060709-01").parse().unwrap(),
    );
    let mut inference = InferenceServiceClient::connect(services[1].endpoint())
        .await
        .unwrap();
    inference.score(request).await.unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let spans = collector
            .0
            .lock()
            .unwrap()
            .get(&trace2)
            .cloned()
            .unwrap_or_default();
        if spans.contains(&("inference".into(), "grpc.request".into()))
            && spans.contains(&("drift-monitor".into(), "consume".into()))
        {
            eprintln!(
                "traces: the Score's trace, {} spans: {spans:?}",
                spans.len()
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the Score's trace reached only {spans:?}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
