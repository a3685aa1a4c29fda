package pipeline

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync/atomic"
	"time"

	"github.com/mwaa-kafka/pipeline/internal/flagenv"
	"github.com/mwaa-kafka/pipeline/internal/kafkaout"
	"github.com/mwaa-kafka/pipeline/internal/readerspec"
	"github.com/mwaa-kafka/pipeline/internal/secrets"
)

// ReplayConfig is the configuration of `reader replay`: it sends the lines Kafka refused (dead letters of
// reason delivery_failed) to the topic again, without duplicating those already there.
type ReplayConfig struct {
	// Topic receives the replayed lines.
	Topic string
	// DLQFile, when set, is the dead-letter file to read; otherwise DLQTopic is read.
	DLQTopic, DLQFile string
	// Since skips dead letters older than it (the zero time: none).
	Since time.Time
	// Dedupe looks every line up in Topic before sending it and sends only what is missing. Without it,
	// lines marked possibly persisted are skipped (not sent) and the others sent unchecked.
	Dedupe bool
	// Lookback is how far before the oldest dead letter Dedupe searches Topic: a line is produced at most
	// the producer's message timeout (5 minutes by default) before it is dead-lettered.
	Lookback time.Duration
	// DryRun reads and counts, sends nothing.
	DryRun bool
	// Timeout bounds the whole replay.
	Timeout time.Duration

	Credentials secrets.Config
	Kafka       kafkaout.Config
}

// RegisterFlags registers replay's flags. They read the reader's READER_* variables, so a one-off task with
// the reader's environment finds the same topics and credentials.
func (c *ReplayConfig) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&c.Topic, "topic", readerspec.Topic, "Kafka topic the lines are sent to again")
	fs.StringVar(&c.DLQTopic, "dlq-topic", readerspec.DLQTopic, "Kafka topic to read dead letters from (ignored when --dlq-file is set)")
	fs.StringVar(&c.DLQFile, "dlq-file", "", "dead-letter file (JSON lines) to read instead of the topic")
	fs.Func("since", "replay only dead letters at or after this time (RFC 3339; default: all)", func(s string) error {
		t, err := time.Parse(time.RFC3339, s)
		c.Since = t
		return err
	})
	fs.BoolVar(&c.Dedupe, "dedupe", true, "look each line up in --topic first and send only the missing ones; "+
		"--dedupe=false skips the lines marked possibly_persisted instead")
	fs.DurationVar(&c.Lookback, "lookback", 10*time.Minute, "how far before the oldest dead letter --dedupe searches the topic (at least the producer's message timeout, 5m)")
	fs.BoolVar(&c.DryRun, "dry-run", false, "read and count, send nothing")
	fs.DurationVar(&c.Timeout, "timeout", 30*time.Minute, "bound on the whole replay")
	c.Credentials.RegisterFlags(fs)
	c.Kafka.RegisterFlags(fs)
}

// ParseReplayConfig reads replay's flags from args, with READER_<FLAG> variables as fallbacks (see
// ParseConfig for help and mistakes).
func ParseReplayConfig(args []string, getenv func(string) string, stdout, stderr io.Writer) (ReplayConfig, error) {
	var c ReplayConfig
	fs := flag.NewFlagSet("reader replay", flag.ContinueOnError)
	c.RegisterFlags(fs)
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "Usage: reader replay [flags]\n\nSends the lines Kafka refused (dead letters of reason %s) to the topic again,\n"+
			"without duplicating those already there. Prints a JSON summary.\n\n", ReasonDeliveryFailed)
		fs.PrintDefaults()
	}
	if err := flagenv.Parse(fs, args, readerspec.EnvPrefix, getenv, stdout, stderr); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return c, err
		}
		return c, fmt.Errorf("%w: %w", ErrInvalidConfig, err)
	}
	if c.Credentials.Endpoint == "" {
		c.Credentials.Endpoint = getenv(secrets.EndpointEnv)
	}
	bad := func(format string, a ...any) (ReplayConfig, error) {
		return c, fmt.Errorf("%w: %w: %s", flagenv.ErrUsage, ErrInvalidConfig, fmt.Sprintf(format, a...))
	}
	switch {
	case c.Topic == "":
		return bad("--topic is empty")
	case c.DLQFile == "" && c.DLQTopic == "":
		return bad("set --dlq-topic or --dlq-file")
	case c.DLQFile == "" && c.DLQTopic == c.Topic:
		return bad("--dlq-topic must differ from --topic")
	case c.Lookback < 0 || c.Timeout <= 0:
		return bad("--lookback must not be negative and --timeout must be positive")
	case !c.Kafka.SecurityProtocol.UsesSASL() && c.Kafka.Brokers == "":
		return bad("--security-protocol %s needs --bootstrap", c.Kafka.SecurityProtocol)
	}
	if err := c.Kafka.Validate(); err != nil {
		return c, fmt.Errorf("%w: %w: %w", flagenv.ErrUsage, ErrInvalidConfig, err)
	}
	return c, nil
}

// ReplaySummary is what a replay did, printed as one JSON line.
type ReplaySummary struct {
	// DeadLetters counts the dead letters read (at or after --since), by reason.
	DeadLetters map[string]uint64 `json:"dead_letters"`
	// Candidates are the delivery_failed dead letters that hold their whole line.
	Candidates uint64 `json:"candidates"`
	// SampleOnly are delivery_failed dead letters holding only a sample of a longer line: they cannot be
	// replayed (the source must resend them).
	SampleOnly uint64 `json:"sample_only"`
	// PossiblyPersisted are the candidates marked possibly_persisted.
	PossiblyPersisted uint64 `json:"possibly_persisted"`
	// AlreadyInTopic are candidates --dedupe found in the topic, not sent.
	AlreadyInTopic uint64 `json:"already_in_topic"`
	// SkippedPossiblyPersisted are candidates marked possibly_persisted that --dedupe=false did not send.
	SkippedPossiblyPersisted uint64 `json:"skipped_possibly_persisted"`
	// Searched is how many messages of the topic --dedupe read, from SearchedFrom on.
	Searched     uint64    `json:"searched_messages"`
	SearchedFrom time.Time `json:"searched_from,omitzero"`
	// Replayed are the lines the broker acknowledged; Failed those it did not (with DryRun: neither).
	Replayed uint64 `json:"replayed"`
	Failed   uint64 `json:"failed"`
	DryRun   bool   `json:"dry_run,omitempty"`
	Error    string `json:"error,omitempty"`
}

// ErrReplayFailed is returned when some lines could not be sent again.
var ErrReplayFailed = errors.New("replay failed")

// Replay runs `reader replay` and prints its summary as one JSON line to stdout.
func Replay(ctx context.Context, cfg ReplayConfig, stdout io.Writer, log *slog.Logger) (ReplaySummary, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.Timeout)
	defer cancel()
	sum, err := replay(ctx, cfg, log)
	if err == nil && sum.Failed > 0 {
		err = fmt.Errorf("%w: %d lines not acknowledged", ErrReplayFailed, sum.Failed)
	}
	if err != nil {
		sum.Error = err.Error()
	}
	b, _ := json.Marshal(sum)
	fmt.Fprintln(stdout, string(b))
	return sum, err
}

func replay(ctx context.Context, cfg ReplayConfig, log *slog.Logger) (ReplaySummary, error) {
	sum := ReplaySummary{DeadLetters: map[string]uint64{}, DryRun: cfg.DryRun}
	creds, err := loadCredentials(ctx, Config{Credentials: cfg.Credentials, Kafka: cfg.Kafka}, log)
	if err != nil {
		return sum, err
	}
	conn := cfg.Kafka.Connection.WithCredentials(creds)

	// The candidates, in dead-letter order.
	var cands []DeadLetter
	oldest := time.Time{}
	add := func(dl DeadLetter) {
		if dl.Time.Before(cfg.Since) {
			return
		}
		sum.DeadLetters[dl.Reason]++
		if dl.Reason != ReasonDeliveryFailed {
			return
		}
		if dl.LineBytes > len(dl.Line) {
			sum.SampleOnly++
			return
		}
		sum.Candidates++
		if dl.PossiblyPersisted {
			sum.PossiblyPersisted++
		}
		if oldest.IsZero() || dl.Time.Before(oldest) {
			oldest = dl.Time
		}
		cands = append(cands, dl)
	}
	if cfg.DLQFile != "" {
		err = readDeadLetterFile(cfg.DLQFile, add)
	} else {
		err = kafkaout.ReadTopic(ctx, conn, "log-pipeline-replay", cfg.DLQTopic, cfg.Since, func(m kafkaout.Message) error {
			add(deadLetterFromMessage(m))
			return nil
		})
	}
	if err != nil {
		return sum, err
	}

	send := cands[:0:0]
	if cfg.Dedupe && len(cands) > 0 {
		if send, err = missing(ctx, conn, cfg.Topic, cands, oldest.Add(-cfg.Lookback), &sum); err != nil {
			return sum, err
		}
	} else {
		for _, dl := range cands {
			if dl.PossiblyPersisted {
				sum.SkippedPossiblyPersisted++
				continue
			}
			send = append(send, dl)
		}
	}
	if cfg.DryRun || len(send) == 0 {
		return sum, nil
	}
	return sum, produceAll(ctx, cfg, conn, send, &sum, log)
}

// readDeadLetterFile hands every record of a dead-letter file to add. A line that is not a record (a
// partial one an interrupted writer left) is skipped; a file that cannot be read is an error.
func readDeadLetterFile(path string, add func(DeadLetter)) error {
	f, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("reading --dlq-file: %w", err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 16<<20)
	for sc.Scan() {
		var rec fileRecord
		if json.Unmarshal(sc.Bytes(), &rec) != nil || rec.Reason == "" {
			continue
		}
		add(rec.deadLetter())
	}
	if err := sc.Err(); err != nil {
		return fmt.Errorf("reading --dlq-file: %w", err)
	}
	return nil
}

// missing reads topic from since to its end and returns the candidates whose line it does not hold, as a
// multiset: a line dead-lettered twice and found once is sent once. A message may hold several
// newline-joined lines (--events-per-message).
func missing(ctx context.Context, conn kafkaout.Connection, topic string, cands []DeadLetter, since time.Time, sum *ReplaySummary) ([]DeadLetter, error) {
	need := make(map[[32]byte]int, len(cands))
	lengths := make(map[int]bool)
	for _, dl := range cands {
		need[sha256.Sum256(dl.Line)]++
		lengths[len(dl.Line)] = true
	}
	found := make(map[[32]byte]int)
	sum.SearchedFrom = since.UTC()
	err := kafkaout.ReadTopic(ctx, conn, "log-pipeline-replay", topic, since, func(m kafkaout.Message) error {
		sum.Searched++
		for line := range bytes.SplitSeq(m.Value, []byte{'\n'}) {
			if !lengths[len(line)] {
				continue
			}
			if h := sha256.Sum256(line); need[h] > found[h] {
				found[h]++
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("looking the lines up in %s: %w", topic, err)
	}
	var send []DeadLetter
	for _, dl := range cands {
		h := sha256.Sum256(dl.Line)
		if found[h] > 0 {
			found[h]--
			sum.AlreadyInTopic++
			continue
		}
		send = append(send, dl)
	}
	return send, nil
}

// produceAll sends every line of send to the topic with the reader's producer (acks=all, idempotence) and
// counts the acknowledgements.
func produceAll(ctx context.Context, cfg ReplayConfig, conn kafkaout.Connection, send []DeadLetter, sum *ReplaySummary, log *slog.Logger) error {
	var acked, failed atomic.Uint64
	kcfg := cfg.Kafka
	kcfg.Connection = conn
	kcfg.Logger = log
	prod, err := kafkaout.New(kcfg, func(_ string, _ []byte, err error) {
		if err != nil {
			failed.Add(1)
			log.Error("replayed line not acknowledged", "err", err)
			return
		}
		acked.Add(1)
	})
	if err != nil {
		return err
	}
	defer func() {
		prod.Close()
		sum.Replayed, sum.Failed = acked.Load(), failed.Load()
	}()
	if err := prod.CheckTopic(ctx, cfg.Topic); err != nil {
		return err
	}
	for i, dl := range send {
		if err := prod.Produce(ctx, cfg.Topic, dl.Line); err != nil {
			failed.Add(uint64(len(send) - i))
			return fmt.Errorf("replaying to %s: %w", cfg.Topic, err)
		}
	}
	prod.Flush(ctx)
	return nil
}
