CREATE MATERIALIZED VIEW {{ident .Database}}.logs_mv{{.OnCluster}} TO {{ident .Database}}.logs
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
    `kafka_key` String
)
AS SELECT
    eventId,
    level,
    source,
    timestamp,
    computer,
    user,
    message,
    toUInt32(_partition) AS kafka_partition,
    _offset AS kafka_offset,
    if(empty(_key), concat('@', toString(_partition), ':', toString(_offset)), _key) AS kafka_key
FROM {{ident .Database}}.logs_queue
WHERE length(_error) = 0
