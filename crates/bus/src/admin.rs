//! Explicit topic creation, and the end offsets of a topic.

use crate::{BusError, KafkaConfig};
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::consumer::{BaseConsumer, Consumer as _};
use rdkafka::types::RDKafkaErrorCode;
use std::collections::BTreeMap;
use std::time::Duration;

/// Creates the topics that do not exist yet (idempotent).
pub async fn ensure_topics(cfg: &KafkaConfig, topics: &[&str]) -> Result<(), BusError> {
    let admin: AdminClient<DefaultClientContext> = cfg.client("vigil-admin")?.create()?;
    let new: Vec<NewTopic<'_>> = topics
        .iter()
        .map(|t| {
            NewTopic::new(
                t,
                cfg.partitions,
                TopicReplication::Fixed(cfg.replication_factor),
            )
        })
        .collect();
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(10)));
    for result in admin.create_topics(&new, &opts).await? {
        match result {
            Ok(_) | Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => {
                return Err(BusError::CreateTopic {
                    topic,
                    reason: code.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// The end offset (high watermark: the next offset to be written) of each partition
/// `0..partitions` of `topic`.
pub async fn end_offsets(
    cfg: &KafkaConfig,
    topic: &str,
    partitions: i32,
) -> Result<BTreeMap<i32, i64>, BusError> {
    let consumer: BaseConsumer = cfg.client("vigil-admin")?.create()?;
    let topic = topic.to_owned();
    // `fetch_watermarks` blocks on a broker round trip.
    tokio::task::spawn_blocking(move || {
        (0..partitions)
            .map(|p| {
                let (_, high) = consumer.fetch_watermarks(&topic, p, Duration::from_secs(10))?;
                Ok((p, high))
            })
            .collect()
    })
    .await
    .map_err(|e| BusError::Task(format!("fetching watermarks: {e}")))?
}
