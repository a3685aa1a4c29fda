CREATE TABLE {{ident .Database}}.logs{{.OnCluster}}
(
    `eventId` UInt32,
    `level` LowCardinality(String),
    `source` LowCardinality(String),
    `timestamp` DateTime64(6),
    `computer` LowCardinality(String),
    `user` LowCardinality(String),
    `message` String
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(timestamp)
ORDER BY eventId
SETTINGS index_granularity = 8192
