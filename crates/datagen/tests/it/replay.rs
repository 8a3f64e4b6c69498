use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use datagen::generate;
use datagen::replay::{ReplayConfig, ReplayError, connect, replay};
use domain::convert::{label_to_proto, transaction_from_proto};
use proto::tonic::{self, Request, Response, Status};
use proto::v1;
use proto::v1::ingest_service_server::{IngestService, IngestServiceServer};
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;

use crate::faulty;

/// Ingest's contract without Kafka: validates, dedupes by id, counts labels.
#[derive(Debug, Default)]
struct FakeIngest {
    seen: Mutex<HashSet<String>>,
    labels: Mutex<Vec<v1::Label>>,
    profiles: Mutex<Vec<v1::UserProfile>>,
}

#[tonic::async_trait]
impl IngestService for FakeIngest {
    async fn submit(
        &self,
        _: Request<v1::SubmitRequest>,
    ) -> Result<Response<v1::SubmitResponse>, Status> {
        Err(Status::unimplemented("submit"))
    }

    async fn submit_batch(
        &self,
        request: Request<v1::SubmitBatchRequest>,
    ) -> Result<Response<v1::SubmitBatchResponse>, Status> {
        let mut response = v1::SubmitBatchResponse::default();
        let mut seen = self.seen.lock().map_err(|_| Status::internal("poisoned"))?;
        for (i, t) in request.into_inner().transactions.iter().enumerate() {
            match transaction_from_proto(t) {
                Err(e) => response.rejected.push(v1::Rejection {
                    index: i as u32,
                    transaction_id: t.transaction_id.clone(),
                    field: e.field.to_owned(),
                    reason: e.reason,
                }),
                Ok(t) if !seen.insert(t.transaction_id.clone()) => response.duplicates += 1,
                Ok(_) => response.accepted += 1,
            }
        }
        Ok(Response::new(response))
    }

    async fn submit_stream(
        &self,
        _: Request<tonic::Streaming<v1::Transaction>>,
    ) -> Result<Response<v1::SubmitBatchResponse>, Status> {
        Err(Status::unimplemented("submit_stream"))
    }

    async fn submit_labels(
        &self,
        request: Request<v1::SubmitLabelsRequest>,
    ) -> Result<Response<v1::SubmitLabelsResponse>, Status> {
        let labels = request.into_inner().labels;
        let accepted = labels.len() as u32;
        self.labels
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .extend(labels);
        Ok(Response::new(v1::SubmitLabelsResponse { accepted }))
    }

    async fn submit_profiles(
        &self,
        request: Request<v1::SubmitProfilesRequest>,
    ) -> Result<Response<v1::SubmitProfilesResponse>, Status> {
        let profiles = request.into_inner().profiles;
        for (i, p) in profiles.iter().enumerate() {
            domain::convert::profile_from_proto(p)
                .map_err(|e| Status::invalid_argument(format!("profiles[{i}]: {e}")))?;
        }
        let accepted = profiles.len() as u32;
        self.profiles
            .lock()
            .map_err(|_| Status::internal("poisoned"))?
            .extend(profiles);
        Ok(Response::new(v1::SubmitProfilesResponse { accepted }))
    }
}

#[tokio::test]
async fn sends_only_the_profile_versions_already_valid() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let fake = serve(listener).await;
    let mut config = faulty(5);
    config.transactions = Some(200);
    let ds = generate(&config).expect("generates");
    assert!(ds.stats.profiles as usize > ds.profiles.len() / 2);
    let mid = config.start_ms + (config.end_ms() - config.start_ms) / 2;
    let due = ds
        .profiles
        .iter()
        .filter(|p| p.valid_from_ms <= mid)
        .count();
    assert!(
        due < ds.profiles.len(),
        "some versions change inside the window"
    );
    let mut client = connect(&url, 5, Duration::from_secs(2), &Default::default())
        .await
        .expect("connects");
    let wire = ds
        .profiles
        .iter()
        .map(domain::convert::profile_to_proto)
        .collect();
    let summary = datagen::replay::send_profiles(&mut client, wire, mid)
        .await
        .expect("sends");
    assert_eq!(summary.sent as usize, due);
    assert_eq!(summary.accepted as usize, due);
    assert_eq!(
        (summary.sent + summary.not_yet_valid) as usize,
        ds.profiles.len()
    );
    assert_eq!(fake.profiles.lock().expect("lock").len(), due);
}

async fn serve(listener: TcpListener) -> std::sync::Arc<FakeIngest> {
    let fake = std::sync::Arc::new(FakeIngest::default());
    let service = IngestServiceServer::from_arc(fake.clone());
    tokio::spawn(
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(TcpListenerStream::new(listener)),
    );
    fake
}

#[tokio::test]
async fn replays_at_the_target_rate_and_reports_what_ingest_said() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let fake = serve(listener).await;

    let mut config = faulty(3);
    config.transactions = Some(1_000);
    let ds = generate(&config).expect("generates");
    let transactions: Vec<_> = ds.wire_stream().map(|r| r.to_proto()).collect();
    let labels: Vec<_> = ds.labels.iter().map(label_to_proto).collect();
    let mut client = connect(&url, 5, Duration::from_secs(2), &Default::default())
        .await
        .expect("connects");
    let rate = 4_000.0;
    let summary = replay(
        &mut client,
        transactions.clone(),
        labels.clone(),
        &ReplayConfig {
            rate,
            batch: 100,
            all_labels: false,
        },
        std::future::pending(),
    )
    .await
    .expect("replays");

    let s = &ds.stats;
    assert_eq!(summary.sent as usize, transactions.len());
    assert_eq!(summary.accepted, s.transactions);
    assert_eq!(summary.duplicates, s.duplicates);
    assert_eq!(summary.rejected, s.corrupt);
    assert_eq!(summary.rejected_by_field.values().sum::<u64>(), s.corrupt);
    // ~20 sends a second: batches of rate/20 = 200, capped at 100.
    assert_eq!(summary.batches as usize, transactions.len().div_ceil(100));
    // The first batch goes at once; each later one waits for its tick.
    let min_elapsed = Duration::from_secs_f64((summary.batches - 1) as f64 * 100.0 / rate);
    assert!(summary.elapsed >= min_elapsed, "{summary}");

    // Only labels reported by the last replayed event time.
    let horizon = summary.last_event_time_ms.expect("sent something");
    let due = ds
        .labels
        .iter()
        .filter(|l| l.reported_at_ms <= horizon)
        .count();
    assert!(due > 0 && due < ds.labels.len());
    assert_eq!(summary.labels_sent as usize, due);
    assert_eq!(fake.labels.lock().expect("lock").len(), due);
    assert!(summary.to_string().contains("duplicates"));

    // Replayed again: every valid one is now a duplicate; --all-labels sends them all.
    let again = replay(
        &mut client,
        transactions,
        labels,
        &ReplayConfig {
            rate: 1e6,
            batch: 500,
            all_labels: true,
        },
        std::future::pending(),
    )
    .await
    .expect("replays");
    assert_eq!(again.accepted, 0);
    assert_eq!(again.duplicates, s.transactions + s.duplicates);
    assert_eq!(again.labels_sent as usize, ds.labels.len());
}

#[tokio::test]
async fn waits_for_a_late_server_but_not_forever() {
    // A port nobody listens on: bounded attempts, then an error.
    let port = {
        let l = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        l.local_addr().expect("addr").port()
    };
    let url = format!("http://127.0.0.1:{port}");
    let err = connect(&url, 2, Duration::from_millis(200), &Default::default())
        .await
        .expect_err("nobody listens");
    assert!(
        matches!(err, ReplayError::Connect { attempts: 2, .. }),
        "{err}"
    );

    // The server comes up while the client retries.
    let server = tokio::spawn(async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .expect("rebind");
        serve(listener).await
    });
    let mut client = connect(&url, 20, Duration::from_millis(500), &Default::default())
        .await
        .expect("connects eventually");
    let _fake = server.await.expect("server task");
    let summary = replay(
        &mut client,
        Vec::new(),
        Vec::new(),
        &ReplayConfig {
            rate: 10.0,
            batch: 10,
            all_labels: true,
        },
        std::future::pending(),
    )
    .await
    .expect("replays nothing");
    assert_eq!(summary.sent, 0);
    assert!(
        connect(
            "not a url",
            1,
            Duration::from_millis(10),
            &Default::default()
        )
        .await
        .is_err()
    );
}

#[tokio::test]
async fn stops_on_shutdown_with_a_partial_summary() {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let _fake = serve(listener).await;
    let ds = generate(&faulty(4)).expect("generates");
    let transactions: Vec<_> = ds.wire_stream().map(|r| r.to_proto()).collect();
    let mut client = connect(&url, 5, Duration::from_secs(2), &Default::default())
        .await
        .expect("connects");
    let summary = replay(
        &mut client,
        transactions,
        Vec::new(),
        &ReplayConfig {
            rate: 100.0,
            batch: 10,
            all_labels: false,
        },
        tokio::time::sleep(Duration::from_millis(200)),
    )
    .await
    .expect("replays");
    assert!(summary.interrupted);
    assert!(summary.sent > 0 && summary.sent < 100, "{summary}");
}
