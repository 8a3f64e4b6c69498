//! Arrow schemas of the lake tables and conversions between domain values and record batches.
//!
//! The `*_to_batch` functions include the Kafka coordinates (`kafka_partition`,
//! `kafka_offset`); the `*_from_batch` functions look columns up by name and ignore extra
//! columns (such as the `event_date` partition column or the Kafka coordinates), so they accept
//! the result of any query that selects at least the domain columns. String columns may come
//! back from DataFusion as `Utf8View` or `LargeUtf8`; they are accepted too.

use std::sync::{Arc, LazyLock};

use arrow::array::{
    Array, ArrayRef, BooleanArray, Float64Array, Int32Array, Int64Array, StringArray,
    TimestampMillisecondArray,
};
use arrow::datatypes::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow::record_batch::RecordBatch;
use domain::{AccountType, Channel, Currency, GeoPoint, Label, Transaction, UserProfile};

use crate::{LakeError, Record};

const UTC: &str = "UTC";

fn timestamp_type() -> DataType {
    DataType::Timestamp(TimeUnit::Millisecond, Some(UTC.into()))
}

static TRANSACTIONS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("transaction_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("account_id", DataType::Utf8, false),
        Field::new("amount_minor", DataType::Int64, false),
        Field::new("currency", DataType::Utf8, false),
        Field::new("merchant_id", DataType::Utf8, false),
        Field::new("merchant_category", DataType::Utf8, false),
        Field::new("channel", DataType::Utf8, false),
        Field::new("device_id", DataType::Utf8, false),
        Field::new("country", DataType::Utf8, false),
        Field::new("lat", DataType::Float64, true),
        Field::new("lon", DataType::Float64, true),
        Field::new("event_time", timestamp_type(), false),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
    ]))
});

static LABELS_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("transaction_id", DataType::Utf8, false),
        Field::new("user_id", DataType::Utf8, false),
        Field::new("is_fraud", DataType::Boolean, false),
        Field::new("reported_at", timestamp_type(), false),
        Field::new("event_time", timestamp_type(), false),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
    ]))
});

static PROFILES_SCHEMA: LazyLock<SchemaRef> = LazyLock::new(|| {
    Arc::new(Schema::new(vec![
        Field::new("user_id", DataType::Utf8, false),
        Field::new("account_opened_at", timestamp_type(), false),
        Field::new("account_type", DataType::Utf8, false),
        Field::new("home_country", DataType::Utf8, false),
        Field::new("credit_band", DataType::Int32, false),
        Field::new("income_band", DataType::Int32, false),
        Field::new("valid_from", timestamp_type(), false),
        Field::new("kafka_partition", DataType::Int32, false),
        Field::new("kafka_offset", DataType::Int64, false),
    ]))
});

/// Schema of the `profiles` files (without the `event_date` partition column).
pub fn profiles_schema() -> SchemaRef {
    Arc::clone(&PROFILES_SCHEMA)
}

/// Schema of the `transactions` files (without the `event_date` partition column).
pub fn transactions_schema() -> SchemaRef {
    Arc::clone(&TRANSACTIONS_SCHEMA)
}

/// Schema of the `labels` files (without the `event_date` partition column).
pub fn labels_schema() -> SchemaRef {
    Arc::clone(&LABELS_SCHEMA)
}

fn strings<'a, T: 'a>(records: &[&'a Record<T>], f: impl Fn(&'a T) -> &'a str) -> ArrayRef {
    Arc::new(StringArray::from_iter_values(
        records.iter().map(|r| f(&r.value)),
    ))
}

fn timestamps<T>(records: &[&Record<T>], f: impl Fn(&T) -> i64) -> ArrayRef {
    Arc::new(
        TimestampMillisecondArray::from_iter_values(records.iter().map(|r| f(&r.value)))
            .with_timezone(UTC),
    )
}

fn kafka_columns<T>(records: &[&Record<T>]) -> [ArrayRef; 2] {
    [
        Arc::new(Int32Array::from_iter_values(
            records.iter().map(|r| r.partition),
        )),
        Arc::new(Int64Array::from_iter_values(
            records.iter().map(|r| r.offset),
        )),
    ]
}

/// Converts transactions (with their Kafka coordinates) to a batch of [`transactions_schema`].
pub fn transactions_to_batch(records: &[Record<Transaction>]) -> Result<RecordBatch, LakeError> {
    transactions_batch(&records.iter().collect::<Vec<_>>())
}

pub(crate) fn transactions_batch(
    records: &[&Record<Transaction>],
) -> Result<RecordBatch, LakeError> {
    let mut columns: Vec<ArrayRef> = vec![
        strings(records, |t| &t.transaction_id),
        strings(records, |t| &t.user_id),
        strings(records, |t| &t.account_id),
        Arc::new(Int64Array::from_iter_values(
            records.iter().map(|r| r.value.amount_minor),
        )),
        strings(records, |t| t.currency.as_str()),
        strings(records, |t| &t.merchant_id),
        strings(records, |t| &t.merchant_category),
        strings(records, |t| t.channel.as_str()),
        strings(records, |t| &t.device_id),
        strings(records, |t| &t.country),
        Arc::new(Float64Array::from_iter(
            records.iter().map(|r| r.value.geo.map(|g| g.lat)),
        )),
        Arc::new(Float64Array::from_iter(
            records.iter().map(|r| r.value.geo.map(|g| g.lon)),
        )),
        timestamps(records, |t| t.event_time_ms),
    ];
    columns.extend(kafka_columns(records));
    Ok(RecordBatch::try_new(transactions_schema(), columns)?)
}

/// Converts labels (with their Kafka coordinates) to a batch of [`labels_schema`].
pub fn labels_to_batch(records: &[Record<Label>]) -> Result<RecordBatch, LakeError> {
    labels_batch(&records.iter().collect::<Vec<_>>())
}

pub(crate) fn labels_batch(records: &[&Record<Label>]) -> Result<RecordBatch, LakeError> {
    let mut columns: Vec<ArrayRef> = vec![
        strings(records, |l| &l.transaction_id),
        strings(records, |l| &l.user_id),
        Arc::new(BooleanArray::from_iter(
            records.iter().map(|r| Some(r.value.is_fraud)),
        )),
        timestamps(records, |l| l.reported_at_ms),
        timestamps(records, |l| l.event_time_ms),
    ];
    columns.extend(kafka_columns(records));
    Ok(RecordBatch::try_new(labels_schema(), columns)?)
}

/// Converts profile versions (with their Kafka coordinates) to a batch of [`profiles_schema`].
pub fn profiles_to_batch(records: &[Record<UserProfile>]) -> Result<RecordBatch, LakeError> {
    profiles_batch(&records.iter().collect::<Vec<_>>())
}

pub(crate) fn profiles_batch(records: &[&Record<UserProfile>]) -> Result<RecordBatch, LakeError> {
    let bands = |f: fn(&UserProfile) -> u8| -> ArrayRef {
        Arc::new(Int32Array::from_iter_values(
            records.iter().map(|r| i32::from(f(&r.value))),
        ))
    };
    let mut columns: Vec<ArrayRef> = vec![
        strings(records, |p| &p.user_id),
        timestamps(records, |p| p.account_opened_ms),
        strings(records, |p| p.account_type.as_str()),
        strings(records, |p| &p.home_country),
        bands(|p| p.credit_band),
        bands(|p| p.income_band),
        timestamps(records, |p| p.valid_from_ms),
    ];
    columns.extend(kafka_columns(records));
    Ok(RecordBatch::try_new(profiles_schema(), columns)?)
}

/// Converts a batch with (at least) the domain columns of [`profiles_schema`] back to profile
/// versions. The error names the first column that is missing, of the wrong type, null or
/// invalid.
pub fn profiles_from_batch(batch: &RecordBatch) -> Result<Vec<UserProfile>, LakeError> {
    let user_id = StringColumn::get(batch, "user_id")?;
    let opened = TimestampColumn::get(batch, "account_opened_at")?;
    let account_type = StringColumn::get(batch, "account_type")?;
    let home_country = StringColumn::get(batch, "home_country")?;
    let credit_band = Int32Column::get(batch, "credit_band")?;
    let income_band = Int32Column::get(batch, "income_band")?;
    let valid_from = TimestampColumn::get(batch, "valid_from")?;
    let band = |c: &Int32Column<'_>, row: usize| -> Result<u8, LakeError> {
        let v = c.value(row)?;
        u8::try_from(v)
            .ok()
            .filter(|b| (1..=5).contains(b))
            .ok_or_else(|| LakeError::column(c.name, format!("band {v} at row {row}")))
    };
    (0..batch.num_rows())
        .map(|row| {
            let type_name = account_type.value(row)?;
            Ok(UserProfile {
                user_id: user_id.value(row)?.to_owned(),
                account_opened_ms: opened.value(row)?,
                account_type: AccountType::parse(type_name).ok_or_else(|| {
                    LakeError::column(
                        "account_type",
                        format!("unknown account type {type_name:?} at row {row}"),
                    )
                })?,
                home_country: home_country.value(row)?.to_owned(),
                credit_band: band(&credit_band, row)?,
                income_band: band(&income_band, row)?,
                valid_from_ms: valid_from.value(row)?,
            })
        })
        .collect()
}

/// Converts a batch with (at least) the domain columns of [`transactions_schema`] back to
/// transactions. The error names the first column that is missing, of the wrong type, null
/// where a value is required, or holds an invalid value.
pub fn transactions_from_batch(batch: &RecordBatch) -> Result<Vec<Transaction>, LakeError> {
    let transaction_id = StringColumn::get(batch, "transaction_id")?;
    let user_id = StringColumn::get(batch, "user_id")?;
    let account_id = StringColumn::get(batch, "account_id")?;
    let amount_minor = Int64Column::get(batch, "amount_minor")?;
    let currency = StringColumn::get(batch, "currency")?;
    let merchant_id = StringColumn::get(batch, "merchant_id")?;
    let merchant_category = StringColumn::get(batch, "merchant_category")?;
    let channel = StringColumn::get(batch, "channel")?;
    let device_id = StringColumn::get(batch, "device_id")?;
    let country = StringColumn::get(batch, "country")?;
    let lat = Float64Column::get(batch, "lat")?;
    let lon = Float64Column::get(batch, "lon")?;
    let event_time = TimestampColumn::get(batch, "event_time")?;

    (0..batch.num_rows())
        .map(|row| {
            let currency_code = currency.value(row)?;
            let channel_name = channel.value(row)?;
            let geo = match (lat.optional(row), lon.optional(row)) {
                (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon }),
                (None, None) => None,
                (Some(_), None) => {
                    return Err(LakeError::column("lon", format!("null at row {row}")));
                }
                (None, Some(_)) => {
                    return Err(LakeError::column("lat", format!("null at row {row}")));
                }
            };
            Ok(Transaction {
                transaction_id: transaction_id.value(row)?.to_owned(),
                user_id: user_id.value(row)?.to_owned(),
                account_id: account_id.value(row)?.to_owned(),
                amount_minor: amount_minor.value(row)?,
                currency: Currency::parse(currency_code).ok_or_else(|| {
                    LakeError::column(
                        "currency",
                        format!("invalid currency code {currency_code:?} at row {row}"),
                    )
                })?,
                merchant_id: merchant_id.value(row)?.to_owned(),
                merchant_category: merchant_category.value(row)?.to_owned(),
                channel: Channel::parse(channel_name).ok_or_else(|| {
                    LakeError::column(
                        "channel",
                        format!("unknown channel {channel_name:?} at row {row}"),
                    )
                })?,
                device_id: device_id.value(row)?.to_owned(),
                country: country.value(row)?.to_owned(),
                geo,
                event_time_ms: event_time.value(row)?,
            })
        })
        .collect()
}

/// Converts a batch with (at least) the domain columns of [`labels_schema`] back to labels.
/// The error names the first column that is missing, of the wrong type or null.
pub fn labels_from_batch(batch: &RecordBatch) -> Result<Vec<Label>, LakeError> {
    let transaction_id = StringColumn::get(batch, "transaction_id")?;
    let user_id = StringColumn::get(batch, "user_id")?;
    let is_fraud = BooleanColumn::get(batch, "is_fraud")?;
    let reported_at = TimestampColumn::get(batch, "reported_at")?;
    let event_time = TimestampColumn::get(batch, "event_time")?;
    (0..batch.num_rows())
        .map(|row| {
            Ok(Label {
                transaction_id: transaction_id.value(row)?.to_owned(),
                user_id: user_id.value(row)?.to_owned(),
                is_fraud: is_fraud.value(row)?,
                reported_at_ms: reported_at.value(row)?,
                event_time_ms: event_time.value(row)?,
                // Not stored: the lake joins a label to its transaction by id.
                merchant_id: String::new(),
            })
        })
        .collect()
}

/// What a training-set build needs of a label record: which transaction, the verdict, when
/// it was reported, and where it was consumed (to break ties between two labels reported at
/// the same millisecond: the one consumed last wins).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LabelVerdict {
    pub transaction_id: String,
    pub is_fraud: bool,
    pub reported_at_ms: i64,
    pub partition: i32,
    pub offset: i64,
}

/// The [`LabelVerdict`]s of a batch of the labels table (with its Kafka coordinates).
pub fn label_verdicts_from_batch(batch: &RecordBatch) -> Result<Vec<LabelVerdict>, LakeError> {
    let transaction_id = StringColumn::get(batch, "transaction_id")?;
    let is_fraud = BooleanColumn::get(batch, "is_fraud")?;
    let reported_at = TimestampColumn::get(batch, "reported_at")?;
    let partition = Int32Column::get(batch, "kafka_partition")?;
    let offset = Int64Column::get(batch, "kafka_offset")?;
    (0..batch.num_rows())
        .map(|row| {
            Ok(LabelVerdict {
                transaction_id: transaction_id.value(row)?.to_owned(),
                is_fraud: is_fraud.value(row)?,
                reported_at_ms: reported_at.value(row)?,
                partition: partition.value(row)?,
                offset: offset.value(row)?,
            })
        })
        .collect()
}

fn find_column<'a>(batch: &'a RecordBatch, name: &str) -> Result<&'a ArrayRef, LakeError> {
    batch
        .column_by_name(name)
        .ok_or_else(|| LakeError::column(name, "missing"))
}

fn wrong_type(name: &str, expected: &str, found: &DataType) -> LakeError {
    LakeError::column(name, format!("expected {expected}, found {found}"))
}

/// A typed column of a batch, remembered with its name for error messages.
pub(crate) struct Column<'a, A> {
    name: &'a str,
    array: A,
}

impl<A: Array> Column<'_, A> {
    fn check_null(&self, row: usize) -> Result<(), LakeError> {
        if self.array.is_null(row) {
            Err(LakeError::column(self.name, format!("null at row {row}")))
        } else {
            Ok(())
        }
    }
}

pub(crate) type StringColumn<'a> = Column<'a, StringArray>;
pub(crate) type Int64Column<'a> = Column<'a, Int64Array>;
pub(crate) type Int32Column<'a> = Column<'a, Int32Array>;
type Float64Column<'a> = Column<'a, Float64Array>;
type BooleanColumn<'a> = Column<'a, BooleanArray>;
type TimestampColumn<'a> = Column<'a, TimestampMillisecondArray>;

impl<'a> StringColumn<'a> {
    pub(crate) fn get(batch: &RecordBatch, name: &'a str) -> Result<Self, LakeError> {
        let array = find_column(batch, name)?;
        let array = match array.data_type() {
            DataType::Utf8 => Arc::clone(array),
            DataType::Utf8View | DataType::LargeUtf8 => {
                arrow::compute::cast(array, &DataType::Utf8)?
            }
            DataType::Dictionary(_, value) if value.is_string() => {
                arrow::compute::cast(array, &DataType::Utf8)?
            }
            other => return Err(wrong_type(name, "a string", other)),
        };
        let array = array
            .as_any()
            .downcast_ref::<StringArray>()
            .cloned()
            .ok_or_else(|| wrong_type(name, "a string", array.data_type()))?;
        Ok(Column { name, array })
    }

    pub(crate) fn value(&self, row: usize) -> Result<&str, LakeError> {
        self.check_null(row)?;
        Ok(self.array.value(row))
    }
}

/// Downcasts a column whose type was checked by `matches`.
fn primitive<'a, A: Array + Clone + 'static>(
    batch: &RecordBatch,
    name: &'a str,
    expected: &str,
    matches: impl Fn(&DataType) -> bool,
) -> Result<Column<'a, A>, LakeError> {
    let array = find_column(batch, name)?;
    if !matches(array.data_type()) {
        return Err(wrong_type(name, expected, array.data_type()));
    }
    let array = array
        .as_any()
        .downcast_ref::<A>()
        .cloned()
        .ok_or_else(|| wrong_type(name, expected, array.data_type()))?;
    Ok(Column { name, array })
}

impl<'a> Int64Column<'a> {
    pub(crate) fn get(batch: &RecordBatch, name: &'a str) -> Result<Self, LakeError> {
        primitive(batch, name, "Int64", |t| *t == DataType::Int64)
    }

    pub(crate) fn value(&self, row: usize) -> Result<i64, LakeError> {
        self.check_null(row)?;
        Ok(self.array.value(row))
    }
}

impl<'a> Int32Column<'a> {
    pub(crate) fn get(batch: &RecordBatch, name: &'a str) -> Result<Self, LakeError> {
        primitive(batch, name, "Int32", |t| *t == DataType::Int32)
    }

    pub(crate) fn value(&self, row: usize) -> Result<i32, LakeError> {
        self.check_null(row)?;
        Ok(self.array.value(row))
    }
}

impl<'a> Float64Column<'a> {
    fn get(batch: &RecordBatch, name: &'a str) -> Result<Self, LakeError> {
        primitive(batch, name, "Float64", |t| *t == DataType::Float64)
    }

    fn optional(&self, row: usize) -> Option<f64> {
        self.array.is_valid(row).then(|| self.array.value(row))
    }
}

impl<'a> BooleanColumn<'a> {
    fn get(batch: &RecordBatch, name: &'a str) -> Result<Self, LakeError> {
        primitive(batch, name, "Boolean", |t| *t == DataType::Boolean)
    }

    fn value(&self, row: usize) -> Result<bool, LakeError> {
        self.check_null(row)?;
        Ok(self.array.value(row))
    }
}

impl<'a> TimestampColumn<'a> {
    fn get(batch: &RecordBatch, name: &'a str) -> Result<Self, LakeError> {
        primitive(batch, name, "Timestamp(Millisecond)", |t| {
            matches!(t, DataType::Timestamp(TimeUnit::Millisecond, _))
        })
    }

    fn value(&self, row: usize) -> Result<i64, LakeError> {
        self.check_null(row)?;
        Ok(self.array.value(row))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::{label, records, transaction};

    #[test]
    fn profiles_round_trip_through_a_batch() -> Result<(), LakeError> {
        let p = UserProfile {
            user_id: "u1".into(),
            account_opened_ms: -86_400_000,
            account_type: AccountType::Student,
            home_country: "PT".into(),
            credit_band: 2,
            income_band: 4,
            valid_from_ms: 1_700_000_000_000,
        };
        let input = records(
            1,
            5,
            vec![
                p.clone(),
                UserProfile {
                    credit_band: 5,
                    ..p
                },
            ],
        );
        let batch = profiles_to_batch(&input)?;
        assert_eq!(batch.schema(), profiles_schema());
        let values: Vec<_> = input.into_iter().map(|r| r.value).collect();
        assert_eq!(profiles_from_batch(&batch)?, values);
        Ok(())
    }

    #[test]
    fn transactions_round_trip_through_a_batch() -> Result<(), LakeError> {
        let mut with_geo = transaction("t1", "u1", 1_700_000_000_000);
        with_geo.geo = Some(GeoPoint {
            lat: 48.85,
            lon: 2.35,
        });
        let input = records(
            3,
            10,
            vec![with_geo, transaction("t2", "u2", 1_700_000_001_000)],
        );
        let batch = transactions_to_batch(&input)?;
        assert_eq!(batch.schema(), transactions_schema());
        let offsets = batch
            .column_by_name("kafka_offset")
            .and_then(|c| c.as_any().downcast_ref::<Int64Array>())
            .map(|a| a.values().to_vec());
        assert_eq!(offsets, Some(vec![10, 11]));
        let values: Vec<_> = input.into_iter().map(|r| r.value).collect();
        assert_eq!(transactions_from_batch(&batch)?, values);
        Ok(())
    }

    #[test]
    fn labels_round_trip_through_a_batch() -> Result<(), LakeError> {
        let input = records(0, 0, vec![label("t1", true, 5), label("t2", false, 6)]);
        let batch = labels_to_batch(&input)?;
        let values: Vec<_> = input.into_iter().map(|r| r.value).collect();
        assert_eq!(labels_from_batch(&batch)?, values);
        Ok(())
    }

    #[test]
    fn string_views_are_accepted() -> Result<(), LakeError> {
        let input = records(0, 0, vec![transaction("t1", "u1", 1)]);
        let batch = transactions_to_batch(&input)?;
        let (mut fields, mut columns) = (Vec::new(), Vec::new());
        for (field, column) in batch.schema().fields().iter().zip(batch.columns()) {
            if *field.data_type() == DataType::Utf8 {
                fields.push(field.as_ref().clone().with_data_type(DataType::Utf8View));
                columns.push(arrow::compute::cast(column, &DataType::Utf8View)?);
            } else {
                fields.push(field.as_ref().clone());
                columns.push(Arc::clone(column));
            }
        }
        let view = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        assert_eq!(
            transactions_from_batch(&view)?,
            vec![input[0].value.clone()]
        );
        Ok(())
    }

    fn error_column(result: Result<impl std::fmt::Debug, LakeError>) -> String {
        match result {
            Err(LakeError::Column { column, .. }) => column,
            other => panic!("expected a column error, got {other:?}"),
        }
    }

    #[test]
    fn malformed_batches_name_the_column() -> Result<(), LakeError> {
        let batch = transactions_to_batch(&records(0, 0, vec![transaction("t1", "u1", 1)]))?;

        // Missing column.
        let mut without_merchant = batch.clone();
        let index = batch.schema().index_of("merchant_id")?;
        without_merchant.remove_column(index);
        let error = transactions_from_batch(&without_merchant).map(|_| ());
        assert!(
            error
                .as_ref()
                .is_err_and(|e| e.to_string().contains("merchant_id")),
            "{error:?}"
        );
        assert_eq!(error_column(error), "merchant_id");

        // Wrong type: amount_minor as a string.
        let index = batch.schema().index_of("amount_minor")?;
        let mut fields: Vec<Field> = batch
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[index] = Field::new("amount_minor", DataType::Utf8, false);
        let mut columns = batch.columns().to_vec();
        columns[index] = Arc::new(StringArray::from(vec!["12"]));
        let wrong = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        assert_eq!(
            error_column(transactions_from_batch(&wrong)),
            "amount_minor"
        );

        // Invalid value.
        let index = batch.schema().index_of("channel")?;
        let mut columns = batch.columns().to_vec();
        columns[index] = Arc::new(StringArray::from(vec!["pigeon"]));
        let bad = RecordBatch::try_new(batch.schema(), columns)?;
        assert_eq!(error_column(transactions_from_batch(&bad)), "channel");

        // Labels: wrong type for is_fraud.
        let labels = labels_to_batch(&records(0, 0, vec![label("t1", true, 1)]))?;
        let index = labels.schema().index_of("is_fraud")?;
        let mut fields: Vec<Field> = labels
            .schema()
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[index] = Field::new("is_fraud", DataType::Int32, false);
        let mut columns = labels.columns().to_vec();
        columns[index] = Arc::new(Int32Array::from(vec![1]));
        let wrong = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        assert_eq!(error_column(labels_from_batch(&wrong)), "is_fraud");
        Ok(())
    }
}
