CREATE TABLE {{ident .Database}}.logs{{.OnCluster}}
(
    `eventId` UInt32,
    `level` LowCardinality(String),
    `source` LowCardinality(String),
    `timestamp` DateTime64(6),
    `computer` LowCardinality(String),
    `user` LowCardinality(String),
    `message` String,
    `kafka_partition` UInt32,
    `kafka_offset` UInt64,
    `kafka_key` String,
    `row_hash` UInt64 MATERIALIZED cityHash64(eventId, level, source, timestamp, computer, user, message)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY (eventId, kafka_key, row_hash, timestamp)
SETTINGS index_granularity = 8192
