use crate::{BusError, KafkaConfig};
use rdkafka::consumer::{CommitMode, Consumer as _, StreamConsumer};
use rdkafka::message::{BorrowedMessage, Headers, Message};
use rdkafka::{Offset, TopicPartitionList};
use service_runtime::telemetry::HeaderCarrier;
use std::collections::BTreeMap;
use std::time::Duration;

/// One consumed message, detached from the consumer.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<String>,
    pub payload: Vec<u8>,
    pub headers: HeaderCarrier,
}

impl Delivery {
    fn from_borrowed(m: &BorrowedMessage<'_>) -> Delivery {
        let mut headers = HeaderCarrier::default();
        if let Some(hs) = m.headers() {
            for h in hs.iter() {
                if let Some(v) = h.value.and_then(|v| std::str::from_utf8(v).ok()) {
                    headers.0.push((h.key.to_owned(), v.to_owned()));
                }
            }
        }
        Delivery {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(|k| String::from_utf8_lossy(k).into_owned()),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers,
        }
    }

    /// Decodes the protobuf value.
    pub fn decode<M: proto::prost::Message + Default>(
        &self,
        what: &'static str,
    ) -> Result<M, BusError> {
        M::decode(self.payload.as_slice()).map_err(|source| BusError::Decode {
            what,
            topic: self.topic.clone(),
            partition: self.partition,
            offset: self.offset,
            source,
        })
    }

    /// A span for processing this record, child of the trace context in its headers (the
    /// producer's span), so one transaction's trace continues across services. Messages a
    /// stage publishes while it is entered carry it on (`Producer` injects the current span).
    pub fn span(&self, stage: &'static str) -> tracing::Span {
        let span = tracing::info_span!(
            "consume",
            stage,
            topic = %self.topic,
            partition = self.partition,
            offset = self.offset,
            otel.kind = "consumer",
        );
        service_runtime::telemetry::set_parent_from_headers(&span, &self.headers);
        span
    }

    /// True when this delivery is below the stored next-offset of its partition, i.e. it was
    /// already applied and must be skipped.
    pub fn is_below(&self, next_offsets: &BTreeMap<i32, i64>) -> bool {
        next_offsets
            .get(&self.partition)
            .is_some_and(|next| self.offset < *next)
    }
}

/// A consumer-group member with manual offset commits.
pub struct Consumer {
    inner: StreamConsumer,
    /// The next offset of every (topic, partition) committed so far, for the final commit.
    committed: std::sync::Mutex<BTreeMap<(String, i32), i64>>,
    /// Partitions sought back by [`Consumer::rewind`], to their target, until a delivery at
    /// or before the target shows the rewind took effect.
    rewound: std::sync::Mutex<BTreeMap<(String, i32), i64>>,
}

impl std::fmt::Debug for Consumer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Consumer").finish_non_exhaustive()
    }
}

impl Consumer {
    /// Joins `group` and subscribes to `topics`; starts from the earliest offset when the group
    /// has no committed offset.
    pub fn new(cfg: &KafkaConfig, group: &str, topics: &[&str]) -> Result<Consumer, BusError> {
        let session = cfg.session_timeout_ms();
        let inner: StreamConsumer = cfg
            .client(group)?
            .set("group.id", group)
            .set("enable.auto.commit", "false")
            .set("enable.auto.offset.store", "false")
            .set("auto.offset.reset", "earliest")
            .set("session.timeout.ms", session.to_string())
            .set("heartbeat.interval.ms", (session / 4).max(500).to_string())
            .set("max.poll.interval.ms", "300000")
            .create()?;
        inner.subscribe(topics)?;
        Ok(Consumer {
            inner,
            committed: std::sync::Mutex::default(),
            rewound: std::sync::Mutex::default(),
        })
    }

    /// Waits for at least one message, then gathers more for up to `linger` or `max` messages.
    pub async fn next_batch(
        &self,
        max: usize,
        linger: Duration,
    ) -> Result<Vec<Delivery>, BusError> {
        let first = self.inner.recv().await?;
        let mut batch = vec![Delivery::from_borrowed(&first)];
        drop(first);
        let deadline = tokio::time::Instant::now() + linger;
        while batch.len() < max {
            match tokio::time::timeout_at(deadline, self.inner.recv()).await {
                Ok(Ok(m)) => batch.push(Delivery::from_borrowed(&m)),
                Ok(Err(e)) => return Err(e.into()),
                Err(_elapsed) => break,
            }
        }
        Ok(batch)
    }

    /// Moves the fetch position of an assigned partition back to `offset` (a caller whose own
    /// store of offsets went backwards, e.g. a Redis that lost its last writes). Deliveries
    /// already fetched past it are dropped by librdkafka, and until the partition is delivered
    /// from `offset` again, [`Consumer::commit`] commits no offset past it, so a crash in
    /// between resumes from `offset` too.
    pub fn rewind(&self, topic: &str, partition: i32, offset: i64) -> Result<(), BusError> {
        // A blocking call, bounded and rare (only after a store lost writes).
        self.inner.seek(
            topic,
            partition,
            Offset::Offset(offset),
            Duration::from_secs(2),
        )?;
        self.rewound
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert((topic.to_owned(), partition), offset);
        Ok(())
    }

    /// Commits, for each partition of `deliveries`, the offset after the last one (async
    /// commit: the caller's own store is the source of truth, this is a resume hint). A
    /// partition rewound since these were fetched gets its rewind target instead.
    pub fn commit(&self, deliveries: &[Delivery]) -> Result<(), BusError> {
        let mut next: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        let mut first: BTreeMap<(&str, i32), i64> = BTreeMap::new();
        for d in deliveries {
            let e = next
                .entry((d.topic.as_str(), d.partition))
                .or_insert(d.offset + 1);
            *e = (*e).max(d.offset + 1);
            let f = first
                .entry((d.topic.as_str(), d.partition))
                .or_insert(d.offset);
            *f = (*f).min(d.offset);
        }
        {
            let mut rewound = self
                .rewound
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for (key, offset) in next.iter_mut() {
                let owned = (key.0.to_owned(), key.1);
                if let Some(&target) = rewound.get(&owned) {
                    if first[key] <= target {
                        // Delivered from the target again: the rewind took effect.
                        rewound.remove(&owned);
                    } else {
                        *offset = (*offset).min(target);
                    }
                }
            }
        }
        if next.is_empty() {
            return Ok(());
        }
        let mut tpl = TopicPartitionList::new();
        for ((topic, partition), offset) in next {
            tpl.add_partition_offset(topic, partition, Offset::Offset(offset))?;
        }
        self.inner.commit(&tpl, CommitMode::Async)?;
        let mut committed = self
            .committed
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        for e in tpl.elements() {
            if let Offset::Offset(o) = e.offset() {
                committed.insert((e.topic().to_owned(), e.partition()), o);
            }
        }
        Ok(())
    }

    /// The group's committed next offsets of `partitions` of `topic`, as the broker holds them
    /// (a partition with none is left out). A blocking call, bounded by `timeout`: a caller
    /// whose own store of offsets may have lost writes while no member was running compares
    /// it with what the group had reached.
    pub fn group_offsets(
        &self,
        topic: &str,
        partitions: &[i32],
        timeout: Duration,
    ) -> Result<BTreeMap<i32, i64>, BusError> {
        let mut tpl = TopicPartitionList::new();
        for p in partitions {
            tpl.add_partition(topic, *p);
        }
        let committed = self.inner.committed_offsets(tpl, timeout)?;
        Ok(committed
            .elements_for_topic(topic)
            .iter()
            .filter_map(|e| match e.offset() {
                Offset::Offset(o) => Some((e.partition(), o)),
                _ => None,
            })
            .collect())
    }

    /// The first offset of `partition` of `topic` the broker still holds (records before it
    /// were deleted by retention). A blocking call, bounded by `timeout`.
    pub fn first_offset(
        &self,
        topic: &str,
        partition: i32,
        timeout: Duration,
    ) -> Result<i64, BusError> {
        Ok(self.inner.fetch_watermarks(topic, partition, timeout)?.0)
    }

    /// The partitions of `topic` currently assigned to this member.
    pub fn assigned(&self, topic: &str) -> Result<Vec<i32>, BusError> {
        Ok(self
            .inner
            .assignment()?
            .elements_for_topic(topic)
            .iter()
            .map(|e| e.partition())
            .collect())
    }

    /// Commits synchronously what [`Self::commit`] committed asynchronously, for the
    /// partitions still assigned (graceful shutdown: the last async commit may not have
    /// reached the broker, and a partition already handed to another member is not rewound).
    pub fn commit_final(&self) -> Result<(), BusError> {
        let assigned = self.inner.assignment()?;
        let mut tpl = TopicPartitionList::new();
        {
            let committed = self
                .committed
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for ((topic, partition), offset) in committed.iter() {
                if assigned.find_partition(topic, *partition).is_some() {
                    tpl.add_partition_offset(topic, *partition, Offset::Offset(*offset))?;
                }
            }
        }
        if tpl.count() > 0 {
            self.inner.commit(&tpl, CommitMode::Sync)?;
        }
        Ok(())
    }
}

/// The last `last` records of every partition of `topic` as of now, oldest first within a
/// partition. Read by explicit assignment, outside any consumer group, committing nothing:
/// for state kept only in memory and rebuilt from a topic's tail after a restart (the drift
/// monitor's windows). Fails with [`BusError::Task`] when the tail is not read within
/// `timeout`.
pub async fn read_tail(
    cfg: &KafkaConfig,
    topic: &str,
    last: i64,
    timeout: Duration,
) -> Result<Vec<Delivery>, BusError> {
    let consumer: StreamConsumer = cfg
        .client("vigil-tail")?
        .set("group.id", format!("vigil-tail-{topic}"))
        .set("enable.auto.commit", "false")
        .set("enable.auto.offset.store", "false")
        .create()?;
    let (partitions, name) = (cfg.partitions, topic.to_owned());
    // `fetch_watermarks` blocks on a broker round trip.
    let (consumer, mut ranges) = tokio::task::spawn_blocking(move || {
        let mut ranges: BTreeMap<i32, (i64, i64)> = BTreeMap::new();
        for p in 0..partitions {
            let (low, high) = consumer.fetch_watermarks(&name, p, Duration::from_secs(10))?;
            let start = low.max(high - last);
            if start < high {
                ranges.insert(p, (start, high));
            }
        }
        Ok::<_, BusError>((consumer, ranges))
    })
    .await
    .map_err(|e| BusError::Task(format!("fetching watermarks: {e}")))??;
    if ranges.is_empty() {
        return Ok(Vec::new());
    }
    let mut tpl = TopicPartitionList::new();
    for (p, (start, _)) in &ranges {
        tpl.add_partition_offset(topic, *p, Offset::Offset(*start))?;
    }
    consumer.assign(&tpl)?;
    let mut out = Vec::new();
    let deadline = tokio::time::Instant::now() + timeout;
    while !ranges.is_empty() {
        let m = match tokio::time::timeout_at(deadline, consumer.recv()).await {
            Ok(m) => m?,
            Err(_) => {
                return Err(BusError::Task(format!(
                    "the tail of {topic} was not read within {timeout:?} ({} partitions left)",
                    ranges.len()
                )));
            }
        };
        let d = Delivery::from_borrowed(&m);
        let Some(&(_, high)) = ranges.get(&d.partition) else {
            continue; // a partition already read to its end
        };
        if d.offset + 1 >= high {
            ranges.remove(&d.partition);
        }
        if d.offset < high {
            out.push(d);
        }
    }
    Ok(out)
}
