use crate::{BusError, Delivery, KafkaConfig, topics};
use proto::prost::Message;
use proto::v1::QuarantineRecord;
use rdkafka::message::{Header, OwnedHeaders};
use rdkafka::producer::{FutureProducer, FutureRecord};
use rdkafka::util::Timeout;
use service_runtime::telemetry::current_context_headers;

/// An idempotent producer of protobuf values.
#[derive(Clone)]
pub struct Producer {
    inner: FutureProducer,
}

impl std::fmt::Debug for Producer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Producer").finish_non_exhaustive()
    }
}

impl Producer {
    /// One metadata round trip to the cluster for `topic`, within `timeout`: for readiness
    /// probes of services that produce only when a request comes.
    pub async fn ping(&self, topic: &str, timeout: std::time::Duration) -> Result<(), BusError> {
        use rdkafka::producer::Producer as _;
        let (producer, topic) = (self.inner.clone(), topic.to_owned());
        // `fetch_metadata` blocks on the round trip.
        tokio::task::spawn_blocking(move || {
            producer
                .client()
                .fetch_metadata(Some(&topic), timeout)
                .map(|_| ())
        })
        .await
        .map_err(|e| BusError::Task(format!("metadata probe: {e}")))?
        .map_err(BusError::from)
    }

    pub fn new(cfg: &KafkaConfig, client_id: &str) -> Result<Producer, BusError> {
        let inner = cfg
            .client(client_id)?
            .set("enable.idempotence", "true")
            .set("acks", "all")
            .set("linger.ms", "5")
            .set("compression.type", "lz4")
            .set("message.timeout.ms", "30000")
            .create()?;
        Ok(Producer { inner })
    }

    /// Sends one message and waits for the broker's acknowledgement; returns (partition, offset).
    pub async fn send<M: Message>(
        &self,
        topic: &str,
        key: &str,
        value: &M,
    ) -> Result<(i32, i64), BusError> {
        self.send_bytes(topic, key, &value.encode_to_vec()).await
    }

    /// Sends already-encoded bytes (used for quarantine of undecodable input).
    pub async fn send_bytes(
        &self,
        topic: &str,
        key: &str,
        payload: &[u8],
    ) -> Result<(i32, i64), BusError> {
        let mut headers = OwnedHeaders::new();
        for (k, v) in &current_context_headers().0 {
            headers = headers.insert(Header {
                key: k,
                value: Some(v.as_bytes()),
            });
        }
        let record = FutureRecord::to(topic)
            .key(key)
            .payload(payload)
            .headers(headers);
        let delivery = self
            .inner
            .send(record, Timeout::Never)
            .await
            .map_err(|(e, _)| BusError::Kafka(e))?;
        Ok((delivery.partition, delivery.offset))
    }

    /// Sends many messages concurrently (librdkafka batches them) and waits for all acks.
    /// Fails if any failed; messages are idempotent so a retry of the whole batch is safe.
    pub async fn send_all<'a, M: Message + 'a>(
        &self,
        topic: &str,
        items: impl IntoIterator<Item = (&'a str, &'a M)>,
    ) -> Result<Vec<(i32, i64)>, BusError> {
        let sends = items
            .into_iter()
            .map(|(key, value)| self.send(topic, key, value));
        futures::future::try_join_all(sends).await
    }

    /// [`Producer::send_all`], each message sent within its span, so it carries that span's
    /// trace context (e.g. the span of the record it was computed from).
    pub async fn send_all_traced<'a, M: Message + 'a>(
        &self,
        topic: &str,
        items: impl IntoIterator<Item = (&'a str, &'a M, &'a tracing::Span)>,
    ) -> Result<Vec<(i32, i64)>, BusError> {
        use tracing::Instrument as _;
        let sends = items
            .into_iter()
            .map(|(key, value, span)| self.send(topic, key, value).instrument(span.clone()));
        futures::future::try_join_all(sends).await
    }

    /// Publishes a record that failed validation at `stage` before reaching a topic (ingest),
    /// with the reason, to the quarantine topic.
    #[allow(clippy::too_many_arguments)]
    pub async fn quarantine(
        &self,
        stage: &str,
        source_topic: &str,
        key: &str,
        payload: Vec<u8>,
        field: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), BusError> {
        let record = QuarantineRecord {
            source_topic: source_topic.to_owned(),
            reason: reason.to_owned(),
            payload,
            quarantined_at: Some(proto::time::from_unix_ms(now_ms)),
            field: field.to_owned(),
            stage: stage.to_owned(),
            source_partition: -1,
            source_offset: -1,
        };
        self.send(topics::QUARANTINE, key, &record)
            .await
            .map(|_| ())
    }

    /// Publishes a consumed record that `stage` cannot process, with the field at fault
    /// (`""` when unknown) and the reason, to the quarantine topic.
    pub async fn quarantine_delivery(
        &self,
        d: &Delivery,
        stage: &str,
        field: &str,
        reason: &str,
        now_ms: i64,
    ) -> Result<(), BusError> {
        let record = QuarantineRecord {
            source_topic: d.topic.clone(),
            reason: reason.to_owned(),
            payload: d.payload.clone(),
            quarantined_at: Some(proto::time::from_unix_ms(now_ms)),
            field: field.to_owned(),
            stage: stage.to_owned(),
            source_partition: d.partition,
            source_offset: d.offset,
        };
        let key = d.key.as_deref().unwrap_or_default();
        self.send(topics::QUARANTINE, key, &record)
            .await
            .map(|_| ())
    }
}
