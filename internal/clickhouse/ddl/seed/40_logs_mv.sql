CREATE MATERIALIZED VIEW {{ident .Database}}.logs_mv{{.OnCluster}} TO {{ident .Database}}.logs
(
    `eventId` UInt32,
    `level` LowCardinality(String),
    `source` LowCardinality(String),
    `timestamp` DateTime64(6),
    `computer` LowCardinality(String),
    `user` LowCardinality(String),
    `message` String
)
AS SELECT eventId, level, source, timestamp, computer, user, message
FROM {{ident .Database}}.logs_queue
WHERE length(_error) = 0
