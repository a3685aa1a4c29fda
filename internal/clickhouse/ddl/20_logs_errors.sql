CREATE TABLE {{ident .Database}}.logs_errors{{.OnCluster}}
(
    `topic` LowCardinality(String),
    `partition` UInt64,
    `offset` UInt64,
    `message_timestamp` Nullable(DateTime),
    `error` String,
    `raw_message` String,
    `received_at` DateTime64(3) DEFAULT now64(3)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(received_at)
ORDER BY (topic, partition, offset)
SETTINGS index_granularity = 8192
