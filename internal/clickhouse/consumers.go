package clickhouse

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"time"
)

// ErrKafkaTableStuck: logs_queue is not consuming (no consumer, a recent exception with no commit since, or
// no poll for longer than allowed while its topic has messages it has not read). It is the named health
// failure for the ClickHouse side of the pipeline.
var ErrKafkaTableStuck = errors.New("kafka table stuck")

// KafkaConsumer is one consumer of a Kafka table, from system.kafka_consumers.
type KafkaConsumer struct {
	ID string `json:"id"`
	// Assignments are the partitions it holds and its position in each.
	Assignments []Assignment `json:"assignments"`
	// LastException is the newest of the exceptions ClickHouse keeps for it ("" when none), at
	// LastExceptionTime.
	LastException     string    `json:"lastException,omitempty"`
	LastExceptionTime time.Time `json:"lastExceptionTime,omitzero"`
	// RecentExceptions are the distinct texts of the exceptions in the last minute before
	// LastExceptionTime, newest first, at most five: librdkafka's newest is often a consequence ("1/1
	// brokers are down") of an earlier cause ("SASL authentication error").
	RecentExceptions []string `json:"recentExceptions,omitempty"`
	// LastPoll and LastCommit are zero when it never polled or committed.
	LastPoll     time.Time `json:"lastPoll,omitzero"`
	LastCommit   time.Time `json:"lastCommit,omitzero"`
	MessagesRead uint64    `json:"messagesRead"`
}

// Assignment is a partition a consumer holds.
type Assignment struct {
	Topic     string `json:"topic"`
	Partition int32  `json:"partition"`
	// Offset is the consumer's current offset (-1001, librdkafka's "invalid", before its first read).
	Offset int64 `json:"offset"`
}

// KafkaTableStatus is the consumer state of a database's logs_queue and the count of messages that did not
// parse (logs_errors).
type KafkaTableStatus struct {
	Database string `json:"database"`
	// Topic and Group are the topic logs_queue reads and its consumer group, from its definition ("" when
	// the table does not exist).
	Topic     string          `json:"topic,omitempty"`
	Group     string          `json:"group,omitempty"`
	Consumers []KafkaConsumer `json:"consumers"`
	ErrorRows uint64          `json:"errorRows"`
	// Progress is what the brokers said of the topic and the group, when the caller asked them (the health
	// check does; KafkaStatus reads ClickHouse only).
	Progress *Progress `json:"progress,omitempty"`
}

// Progress is what the brokers say about the topic logs_queue reads: each partition's end offset (its high
// watermark) and the offset logs_queue's consumer group committed in it. A nil map means unknown.
type Progress struct {
	End       map[int32]int64 `json:"end,omitempty"`
	Committed map[int32]int64 `json:"committed,omitempty"`
}

// CaughtUp reports whether the group has committed every message of the topic: in each partition an
// offset at its end (a partition never written to, end 0, needs none), and at least one committed offset
// at all (a group that never committed has shown nothing). The engine commits after writing a block, so
// then every message is in the table.
func (p Progress) CaughtUp() bool {
	if len(p.End) == 0 || p.Committed == nil {
		return false
	}
	committed := false
	for part, end := range p.End {
		c, ok := p.Committed[part]
		if ok {
			committed = true
		}
		if end > 0 && (!ok || c < end) {
			return false
		}
	}
	return committed
}

// KafkaStatus reads logs_queue's consumers from system.kafka_consumers and counts logs_errors.
func KafkaStatus(ctx context.Context, c *Client, db string) (KafkaTableStatus, error) {
	type row struct {
		ID         string   `json:"consumer_id"`
		Topics     []string `json:"topics"`
		Partitions []int32  `json:"partitions"`
		Offsets    []int64  `json:"offsets"`
		ExcTimes   []int64  `json:"exc_times"`
		ExcTexts   []string `json:"exc_texts"`
		LastPoll   int64    `json:"last_poll"`
		LastCommit int64    `json:"last_commit"`
		Read       uint64   `json:"num_messages_read"`
	}
	rows, err := QueryRows[row](ctx, c, Query{SQL: `SELECT consumer_id, assignments.topic AS topics,
    assignments.partition_id AS partitions, assignments.current_offset AS offsets,
    arrayMap(t -> toUnixTimestamp(t), exceptions.time) AS exc_times, exceptions.text AS exc_texts,
    toUnixTimestamp(last_poll_time) AS last_poll, toUnixTimestamp(last_commit_time) AS last_commit, num_messages_read
FROM system.kafka_consumers
WHERE database = {db:String} AND table = 'logs_queue'
ORDER BY consumer_id`, Params: map[string]string{"db": db}})
	if err != nil {
		return KafkaTableStatus{}, fmt.Errorf("reading the consumers of %s.logs_queue: %w", db, err)
	}
	st := KafkaTableStatus{Database: db, Consumers: []KafkaConsumer{}}
	def, exists, err := storedCreate(ctx, c, db, "logs_queue")
	if err != nil {
		return st, err
	}
	if exists {
		st.Topic, st.Group = settingValue(def, "kafka_topic_list"), settingValue(def, "kafka_group_name")
	}
	for _, r := range rows {
		k := KafkaConsumer{ID: r.ID, MessagesRead: r.Read, LastPoll: unixOrZero(r.LastPoll), LastCommit: unixOrZero(r.LastCommit),
			Assignments: []Assignment{}}
		for i := range r.Partitions {
			a := Assignment{Partition: r.Partitions[i]}
			if i < len(r.Topics) {
				a.Topic = r.Topics[i]
			}
			if i < len(r.Offsets) {
				a.Offset = r.Offsets[i]
			}
			k.Assignments = append(k.Assignments, a)
		}
		for i := range r.ExcTexts {
			if i < len(r.ExcTimes) && (k.LastException == "" || !unixOrZero(r.ExcTimes[i]).Before(k.LastExceptionTime)) {
				k.LastException, k.LastExceptionTime = r.ExcTexts[i], unixOrZero(r.ExcTimes[i])
			}
		}
		seen := map[string]bool{}
		for i := len(r.ExcTexts) - 1; i >= 0 && len(k.RecentExceptions) < 5; i-- {
			if i < len(r.ExcTimes) && k.LastExceptionTime.Sub(unixOrZero(r.ExcTimes[i])) <= time.Minute && !seen[r.ExcTexts[i]] {
				seen[r.ExcTexts[i]] = true
				k.RecentExceptions = append(k.RecentExceptions, r.ExcTexts[i])
			}
		}
		st.Consumers = append(st.Consumers, k)
	}
	n, err := QueryRows[struct {
		N uint64 `json:"n"`
	}](ctx, c, Query{SQL: "SELECT count() AS n FROM " + QuoteIdent(db) + ".logs_errors"})
	if err != nil {
		return st, fmt.Errorf("counting %s.logs_errors: %w", db, err)
	}
	if len(n) == 1 {
		st.ErrorRows = n[0].N
	}
	return st, nil
}

// settingValue returns the string value of a Kafka engine setting in a stored CREATE statement, "" when it
// is not there.
func settingValue(def, name string) string {
	m := regexp.MustCompile(regexp.QuoteMeta(name) + ` = '((?:[^'\\]|\\.)*)'`).FindStringSubmatch(def)
	if m == nil {
		return ""
	}
	return settingUnescaper.Replace(m[1])
}

var settingUnescaper = strings.NewReplacer(`\\`, `\`, `\'`, `'`)

func unixOrZero(s int64) time.Time {
	if s <= 0 {
		return time.Time{}
	}
	return time.Unix(s, 0).UTC()
}

// Check returns an error wrapping ErrKafkaTableStuck when logs_queue is not consuming at now:
//   - it has no consumer (no view reads it, or the table is detached);
//   - a consumer's newest exception is younger than staleAfter and no commit followed it;
//   - no consumer polled within staleAfter while the topic has unread messages. p.End holds the topic's end
//     offsets by partition (the high watermarks); nil means unknown, and then a stale poll alone counts,
//     since a healthy Kafka table polls every few seconds even when the topic is idle. A consumer that has
//     not polled yet (just created) does not count as stale.
//
// A table whose group has committed up to the topic's end offsets (p.CaughtUp) is healthy whatever its
// exceptions say: after a broker outage an idle table keeps the outage's exceptions and has nothing to
// commit, and it would otherwise be reported stuck for staleAfter. A table that cannot read any more shows
// as soon as a message waits (the group is then behind).
func (st KafkaTableStatus) Check(now time.Time, staleAfter time.Duration, p Progress) error {
	if len(st.Consumers) == 0 {
		return fmt.Errorf("%s.logs_queue has no consumer (is a materialized view attached?): %w", st.Database, ErrKafkaTableStuck)
	}
	if p.CaughtUp() {
		return nil
	}
	ends := p.End
	var lastPoll time.Time
	for _, k := range st.Consumers {
		if k.LastException != "" && now.Sub(k.LastExceptionTime) < staleAfter && k.LastCommit.Before(k.LastExceptionTime) {
			recent := k.RecentExceptions
			if len(recent) == 0 {
				recent = []string{k.LastException}
			}
			return fmt.Errorf("%s.logs_queue consumer %s: exception at %s with no commit since: %s: %w",
				st.Database, k.ID, k.LastExceptionTime.Format(time.RFC3339), strings.Join(recent, " | "), ErrKafkaTableStuck)
		}
		if k.LastPoll.After(lastPoll) {
			lastPoll = k.LastPoll
		}
	}
	if lastPoll.IsZero() || now.Sub(lastPoll) < staleAfter {
		return nil
	}
	lag, known := st.Lag(ends)
	if known && lag == 0 {
		return nil
	}
	since := "since " + lastPoll.Format(time.RFC3339)
	what := "lag unknown"
	if known {
		what = strconv.FormatInt(lag, 10) + " messages unread"
	}
	return fmt.Errorf("%s.logs_queue: no poll %s (over %s) with %s: %w", st.Database, since, staleAfter, what, ErrKafkaTableStuck)
}

// Lag sums, over the partitions in ends, the messages past the assigned consumers' offsets (a partition no
// consumer holds counts whole). known is false when ends is nil.
func (st KafkaTableStatus) Lag(ends map[int32]int64) (lag int64, known bool) {
	if ends == nil {
		return 0, false
	}
	pos := map[int32]int64{}
	for _, k := range st.Consumers {
		for _, a := range k.Assignments {
			if a.Offset >= 0 {
				pos[a.Partition] = a.Offset
			}
		}
	}
	for p, end := range ends {
		if d := end - pos[p]; d > 0 {
			lag += d
		}
	}
	return lag, true
}

// WriteKafkaStatus prints the status as a table a person reads.
func WriteKafkaStatus(w io.Writer, st KafkaTableStatus) error {
	rows := make([][]string, 0, len(st.Consumers))
	for _, k := range st.Consumers {
		parts := make([]string, len(k.Assignments))
		for i, a := range k.Assignments {
			parts[i] = a.Topic + "/" + strconv.Itoa(int(a.Partition)) + "@" + strconv.FormatInt(a.Offset, 10)
		}
		sort.Strings(parts)
		exc := "-"
		if k.LastException != "" {
			exc = k.LastExceptionTime.Format(time.DateTime) + " " + k.LastException
		}
		rows = append(rows, []string{k.ID, strings.Join(parts, ","), strconv.FormatUint(k.MessagesRead, 10), timeOrNever(k.LastPoll), exc})
	}
	if _, err := fmt.Fprintf(w, "Kafka table %s.logs_queue: %d consumer(s); logs_errors holds %d row(s)\n", st.Database, len(st.Consumers), st.ErrorRows); err != nil {
		return fmt.Errorf("writing status: %w", err)
	}
	return WriteTable(w, []string{"consumer", "partitions", "messages_read", "last_poll", "last_exception"}, rows)
}

func timeOrNever(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Format(time.DateTime)
}
