CREATE MATERIALIZED VIEW {{ident .Database}}.logs_errors_mv{{.OnCluster}} TO {{ident .Database}}.logs_errors
(
    `topic` LowCardinality(String),
    `partition` UInt64,
    `offset` UInt64,
    `message_timestamp` Nullable(DateTime),
    `error` String,
    `raw_message` String
)
AS SELECT
    _topic AS topic,
    _partition AS partition,
    _offset AS offset,
    _timestamp AS message_timestamp,
    _error AS error,
    _raw_message AS raw_message
FROM {{ident .Database}}.logs_queue
WHERE length(_error) > 0
