CREATE TABLE {{ident .Database}}.logs_queue{{.OnCluster}}
(
    `eventId` UInt32,
    `level` LowCardinality(String),
    `source` LowCardinality(String),
    `timestamp` DateTime64(6),
    `computer` LowCardinality(String),
    `user` LowCardinality(String),
    `message` String
)
ENGINE = Kafka({{ident .Collection}})
SETTINGS
    kafka_topic_list = {{str .Topic}},
    kafka_group_name = {{str .ConsumerGroup}},
    kafka_format = 'JSONEachRow',
    kafka_handle_error_mode = 'stream',
    kafka_num_consumers = {{.NumConsumers}},
    kafka_thread_per_consumer = 0
COMMENT {{str .CredentialsComment}}
