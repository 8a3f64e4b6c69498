//! Every TCP connection a Vigil service holds has TCP_NODELAY (issue 9, item 5): the gRPC
//! connections it accepted and opened, its admin connections, its Redis connection (fred) and
//! its Kafka connections (librdkafka). With Nagle on, a small write made while the previous one
//! is unacknowledged waits for the peer's delayed ACK — the 40 ms per hop issue 9 measured.
//!
//! The option is read on the running binaries' own sockets: each socket descriptor of the
//! process is duplicated into this test with `pidfd_getfd(2)` (Linux ≥ 5.6; same user) and
//! `getsockopt(TCP_NODELAY)` is asked of the copy, which shares the socket.

use e2e::{Stack, now_ms};
use proto::v1;
use proto::v1::inference_service_client::InferenceServiceClient;
use proto::v1::ingest_service_client::IngestServiceClient;
use rustix::net::{AddressFamily, sockopt};
use rustix::process::{Pid, PidfdFlags, PidfdGetfdFlags, pidfd_getfd, pidfd_open};

/// A connected TCP socket of a process: its peer and TCP_NODELAY.
#[derive(Debug)]
struct Connection {
    peer: String,
    nodelay: bool,
}

/// The connected TCP sockets of process `pid` (listening sockets have no peer and are left
/// out: what they are set to does not reach a byte on the wire).
fn connections(pid: u32) -> Vec<Connection> {
    let pidfd = pidfd_open(
        Pid::from_raw(pid as i32).expect("a pid is positive"),
        PidfdFlags::empty(),
    )
    .expect("pidfd_open");
    let mut found = Vec::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("/proc/<pid>/fd") {
        let entry = entry.expect("fd entry");
        // A descriptor can close between the listing and the read: skip it then.
        let Ok(link) = std::fs::read_link(entry.path()) else {
            continue;
        };
        if !link.to_string_lossy().starts_with("socket:") {
            continue;
        }
        let target: i32 = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse().ok())
            .expect("fd names are numbers");
        let Ok(fd) = pidfd_getfd(&pidfd, target, PidfdGetfdFlags::empty()) else {
            continue;
        };
        let domain = sockopt::socket_domain(&fd).expect("SO_DOMAIN");
        if domain != AddressFamily::INET && domain != AddressFamily::INET6 {
            continue;
        }
        if sockopt::socket_protocol(&fd).expect("SO_PROTOCOL") != Some(rustix::net::ipproto::TCP) {
            continue;
        }
        let Ok(Some(peer)) = rustix::net::getpeername(&fd) else {
            continue;
        };
        found.push(Connection {
            peer: format!("{peer:?}"),
            nodelay: sockopt::tcp_nodelay(&fd).expect("TCP_NODELAY"),
        });
    }
    found
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn every_connection_of_every_service_has_tcp_nodelay() {
    let stack = Stack::from_env();
    let dir = tempfile::tempdir().unwrap();
    let run = format!("so{}", now_ms());
    let (features, mut services) =
        crate::faults::start_loop(&stack, dir.path(), &run, Vec::new()).await;

    // Traffic on every kind of connection: a submit (ingest → Redis, ingest → Kafka, the
    // consumers' fetches) and a Score (inference → feature-service → Redis), with the
    // harness's connections to ingest and inference held open while the sockets are read.
    let mut ingest = IngestServiceClient::connect(services[0].endpoint())
        .await
        .unwrap();
    let submitted = ingest
        .submit(v1::SubmitRequest {
            transaction: Some(crate::faults::transaction(
                &run,
                "t0",
                "u0",
                now_ms() - 1_000,
            )),
        })
        .await
        .unwrap()
        .into_inner();
    assert!(!submitted.duplicate, "{submitted:?}");
    let mut inference = InferenceServiceClient::connect(services[1].endpoint())
        .await
        .unwrap();
    let scored = inference
        .score(v1::ScoreRequest {
            transaction: Some(crate::faults::transaction(
                &run,
                "t1",
                "u0",
                now_ms() - 1_000,
            )),
            explain: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !scored.degraded,
        "the Score went through the feature-service"
    );
    // The consumers have joined their groups and fetch: the inference stream scores t0.
    services[1]
        .until_metric("vigil_inference_stream_scores_total", 1.0)
        .await;

    services.push(features);
    let redis_port = stack
        .redis_url
        .rsplit(':')
        .next()
        .and_then(|p| p.trim_end_matches('/').parse::<u16>().ok())
        .expect("redis url ends in a port");
    for s in &services {
        let all = connections(s.pid());
        eprintln!("{}: {} connections: {all:?}", s.name, all.len());
        assert!(!all.is_empty(), "{} holds no TCP connection", s.name);
        let without: Vec<&Connection> = all.iter().filter(|c| !c.nodelay).collect();
        assert!(
            without.is_empty(),
            "{}: connections without TCP_NODELAY: {without:?}",
            s.name
        );
        // The kinds that must have been seen: Redis where the service holds a store.
        if matches!(s.name.as_str(), "ingest" | "feature-service") {
            assert!(
                all.iter()
                    .any(|c| c.peer.contains(&format!("{redis_port}"))),
                "{}: no Redis connection among {all:?}",
                s.name
            );
        }
    }
}
