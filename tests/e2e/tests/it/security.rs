//! Security options end to end (issue 9, item 7): the real binaries on a private stack where
//! Redis admits only an ACL user and the broker only SASL SCRAM-SHA-512, with every gRPC
//! server on TLS, client certificates (mTLS) and bearer tokens. Transactions go in through
//! ingest, are folded into Redis by the feature-service, scored by inference (its call to the
//! feature-service on TLS with a token), and each credential left out is refused.

use crate::faults::{registry_with_a_model, transaction};
use bus::{KafkaConfig, Producer, topics};
use e2e::{PrivateStack, STACK_USER, Service, now_ms};
use proto::v1;
use proto::v1::feature_service_client::FeatureServiceClient;
use proto::v1::inference_service_client::InferenceServiceClient;
use proto::v1::ingest_service_client::IngestServiceClient;
use service_runtime::security::ClientSecurity;
use service_runtime::test_pki::Pki;
use std::path::Path;
use std::time::{Duration, Instant};

const TOKEN: &str = "e2e-token-0123456789abcdef";

/// The environment that puts a service's gRPC server on TLS with client certificates and
/// tokens, its certificate issued by `pki` for `localhost`.
fn server_security(pki: &Pki, name: &str, tokens: &Path) -> Vec<(String, String)> {
    let (cert, key) = pki.issue(name, "localhost");
    let path = |p: &Path| p.display().to_string();
    vec![
        ("VIGIL_SERVER__TLS__CERT_FILE".into(), path(&cert)),
        ("VIGIL_SERVER__TLS__KEY_FILE".into(), path(&key)),
        (
            "VIGIL_SERVER__TLS__CLIENT_CA_FILE".into(),
            path(&pki.ca_file()),
        ),
        ("VIGIL_SERVER__AUTH__TOKENS_FILE".into(), path(tokens)),
    ]
}

/// A Kafka client config for the secured stack, with the password in `password_file`.
fn kafka(stack: &PrivateStack, password_file: &Path) -> KafkaConfig {
    let mut k = KafkaConfig::new(stack.stack.brokers.clone(), true);
    k.security = bus::KafkaSecurity {
        protocol: bus::SecurityProtocol::SaslPlaintext,
        sasl_mechanism: Some(bus::SaslMechanism::ScramSha512),
        username: Some(STACK_USER.into()),
        password_file: Some(password_file.to_path_buf()),
        ..bus::KafkaSecurity::default()
    };
    k
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_secured_stack_scores_end_to_end_and_refuses_whoever_lacks_a_credential() {
    let dir = tempfile::tempdir().unwrap();
    let path = |name: &str| dir.path().join(name);
    let private = PrivateStack::start_secured(&path("stack"));
    let run = format!("sec{}", now_ms());
    let pki = Pki::new(&path("pki"));
    let tokens = path("tokens");
    std::fs::write(&tokens, format!("# the harness's token\n{TOKEN}\n")).unwrap();
    let token_file = path("token");
    std::fs::write(&token_file, format!("{TOKEN}\n")).unwrap();
    let (client_cert, client_key) = pki.issue("client", "vigil-client");
    let client = ClientSecurity {
        ca_file: Some(pki.ca_file()),
        cert_file: Some(client_cert.clone()),
        key_file: Some(client_key.clone()),
        tls_domain: None,
        token_file: Some(token_file.clone()),
    };
    let channel = |service: &Service, security: &ClientSecurity| {
        security
            .channel_lazy("e2e", &service.endpoint(), |e| {
                e.timeout(Duration::from_secs(10))
            })
            .unwrap()
    };

    // The three services of the synchronous path, each on TLS + mTLS + token, on Redis and
    // the broker through their credentials.
    let mut env = private.stack.env();
    env.extend(server_security(&pki, "ingest", &tokens));
    let mut ingest = Service::start_secured("ingest", env, dir.path(), client.clone());
    let mut env = private.stack.env();
    env.extend(server_security(&pki, "feature-service", &tokens));
    env.extend([
        (
            "VIGIL_LAKE__PATH".into(),
            path("lake").display().to_string(),
        ),
        (
            "VIGIL_FEATURE_SERVICE__SPEED_GROUP".into(),
            format!("fs-{run}"),
        ),
        (
            "VIGIL_FEATURE_SERVICE__LAKE_GROUP".into(),
            format!("lake-{run}"),
        ),
    ]);
    let mut features = Service::start_secured("feature-service", env, dir.path(), client.clone());
    registry_with_a_model(&path("registry"));
    ingest.wait_healthy().await;
    features.wait_healthy().await;
    let mut env = private.stack.env();
    env.extend(server_security(&pki, "inference", &tokens));
    let file = |p: &Path| p.display().to_string();
    env.extend([
        ("VIGIL_REGISTRY__PATH".into(), file(&path("registry"))),
        ("VIGIL_FEATURES__ENDPOINT".into(), features.endpoint()),
        (
            "VIGIL_FEATURES__SECURITY__CA_FILE".into(),
            file(&pki.ca_file()),
        ),
        (
            "VIGIL_FEATURES__SECURITY__CERT_FILE".into(),
            file(&client_cert),
        ),
        (
            "VIGIL_FEATURES__SECURITY__KEY_FILE".into(),
            file(&client_key),
        ),
        (
            "VIGIL_FEATURES__SECURITY__TOKEN_FILE".into(),
            file(&token_file),
        ),
        (
            "VIGIL_INFERENCE__CONSUMER_GROUP".into(),
            format!("inf-{run}"),
        ),
    ]);
    let mut inference = Service::start_secured("inference", env, dir.path(), client.clone());
    inference.wait_healthy().await;

    // In through ingest (TLS, certificate, token).
    let mut ingest_client = IngestServiceClient::new(channel(&ingest, &client));
    let sent: Vec<v1::Transaction> = (0..3)
        .map(|k| transaction(&run, &format!("t{k}"), "u1", now_ms() - 60_000 + k))
        .collect();
    let accepted = ingest_client
        .submit_batch(v1::SubmitBatchRequest {
            transactions: sent.clone(),
        })
        .await
        .unwrap()
        .into_inner();
    assert_eq!(accepted.accepted, 3, "{accepted:?}");

    // Folded into Redis by the feature-service (SASL consumer, ACL user): its own API says so.
    let mut features_client = FeatureServiceClient::new(channel(&features, &client));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let online = features_client
            .get_online_features(v1::GetOnlineFeaturesRequest {
                user_id: format!("{run}-u1"),
            })
            .await
            .map(|r| r.into_inner().transactions_seen);
        if online.as_ref().is_ok_and(|&n| n == 3) {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the feature-service never counted the 3 transactions: {online:?}; see {}",
            features.log_path().display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    // Scored synchronously: inference reached the feature-service over TLS with its token.
    let mut inference_client = InferenceServiceClient::new(channel(&inference, &client));
    let scored = inference_client
        .score(v1::ScoreRequest {
            transaction: Some(transaction(&run, "t9", "u1", now_ms() - 1_000)),
            explain: false,
        })
        .await
        .unwrap()
        .into_inner();
    assert!(
        !scored.degraded,
        "inference could not reach the secured feature-service: {scored:?}; see {}",
        inference.log_path().display()
    );

    // Without a token: the call is refused, counted; health still answers (probes).
    let no_token = ClientSecurity {
        token_file: None,
        ..client.clone()
    };
    let refused = IngestServiceClient::new(channel(&ingest, &no_token))
        .submit_batch(v1::SubmitBatchRequest {
            transactions: vec![transaction(&run, "x1", "u2", now_ms() - 1_000)],
        })
        .await
        .unwrap_err();
    assert_eq!(refused.code(), tonic::Code::Unauthenticated, "{refused:?}");
    assert!(ingest.metric("vigil_grpc_requests_unauthenticated_total") >= 1.0);
    // Without a client certificate: no connection at all.
    let no_cert = ClientSecurity {
        cert_file: None,
        key_file: None,
        ..client.clone()
    };
    let refused = IngestServiceClient::new(channel(&ingest, &no_cert))
        .submit_batch(v1::SubmitBatchRequest {
            transactions: vec![transaction(&run, "x2", "u2", now_ms() - 1_000)],
        })
        .await
        .unwrap_err();
    // The handshake fails (rustls' CertificateRequired alert, or the closed connection when
    // the client's TLS 1.3 handshake completed first): tonic reports a transport error —
    // UNKNOWN "transport error", or CANCELLED when hyper saw the connection close under the
    // request (2 of 8 runs here), its source still the transport's error.
    let from_transport =
        std::error::Error::source(&refused).is_some_and(|e| e.is::<tonic::transport::Error>());
    assert!(
        (refused.code() == tonic::Code::Unknown && refused.message().contains("transport error"))
            || (refused.code() == tonic::Code::Cancelled && from_transport),
        "{refused:?}"
    );
    // Plaintext to a TLS port: nothing either.
    let plain = ClientSecurity::default()
        .channel_lazy(
            "e2e",
            &format!("http://127.0.0.1:{}", ingest.grpc_port),
            |e| e.timeout(Duration::from_secs(10)),
        )
        .unwrap();
    let refused = IngestServiceClient::new(plain)
        .submit_batch(v1::SubmitBatchRequest {
            transactions: vec![transaction(&run, "x3", "u2", now_ms() - 1_000)],
        })
        .await;
    assert!(
        refused.is_err(),
        "a plaintext call was answered: {refused:?}"
    );

    // Redis without the ACL user's password: refused with Redis' reason.
    let wrong = path("wrong.password");
    std::fs::write(&wrong, "not-the-password\n").unwrap();
    let err = online_store::OnlineStore::connect(&online_store::RedisConfig {
        url: private.stack.redis_url.clone(),
        timeout_ms: 2_000,
        username: Some(STACK_USER.into()),
        password_file: Some(wrong.clone()),
    })
    .await
    .unwrap_err()
    .to_string();
    assert!(
        err.contains("WRONGPASS") || err.contains("invalid username-password"),
        "{err}"
    );
    let err = online_store::OnlineStore::connect(&online_store::RedisConfig {
        url: private.stack.redis_url.clone(),
        timeout_ms: 2_000,
        username: None,
        password_file: None,
    })
    .await;
    assert!(err.is_err(), "Redis let the default user in");
    online_store::OnlineStore::connect(&online_store::RedisConfig {
        url: private.stack.redis_url.clone(),
        timeout_ms: 2_000,
        username: Some(STACK_USER.into()),
        password_file: Some(private.redis_password_file()),
    })
    .await
    .expect("the ACL user with its password");

    // The broker without the SCRAM password: a metadata round trip fails.
    let good = Producer::new(&kafka(&private, &private.kafka_password_file()), "e2e-good").unwrap();
    good.ping(topics::TRANSACTIONS, Duration::from_secs(10))
        .await
        .expect("SCRAM with the right password");
    let bad = Producer::new(&kafka(&private, &wrong), "e2e-bad").unwrap();
    let err = bad
        .ping(topics::TRANSACTIONS, Duration::from_secs(5))
        .await
        .expect_err("the broker accepted a wrong SCRAM password");
    eprintln!("security: wrong SCRAM password refused: {err}");
    let anonymous = Producer::new(
        &KafkaConfig::new(private.stack.brokers.clone(), true),
        "e2e-anon",
    )
    .unwrap();
    anonymous
        .ping(topics::TRANSACTIONS, Duration::from_secs(5))
        .await
        .expect_err("the broker answered a client without SASL");
}
